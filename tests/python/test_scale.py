"""The tile engine (issue 7): tiles, inputs read in blocks, bounded memory, memory estimates,
progress, out=/resume, and the scale-related reliability fixes of issue 9 (9.2, 9.4, 9.8)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

from helpers import Crash, crash_after, kill_after_tiles, peak_rss_growth
import semrsm
from semrsm import _core, _tiles
from semrsm import NonFiniteError, OptionError, TooLargeError

RNG = np.random.default_rng(7)
X = RNG.normal(size=(13, 6, 3, 3))  # N, C, H, W: S = 9
Y = RNG.normal(size=(7, 6, 3, 3))


def bits(a):
    return np.asarray(a).view(np.uint64)


# --------------------------------------------------------------------------- bit-identity


@pytest.mark.parametrize("matcher", ["exact", "none", "greedy", "auction"])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_tile_size_and_threads_give_identical_bits(matcher, precision):
    whole = semrsm.gram(X, matcher=matcher, precision=precision)
    rect = semrsm.gram(X, Y, matcher=matcher, precision=precision)
    for tile, threads in [(1, 1), (2, 3), (5, 2), (6, None), (13, 1)]:
        g = semrsm.gram(X, matcher=matcher, precision=precision, tile=tile, threads=threads)
        assert np.array_equal(bits(g), bits(whole)), (tile, threads)
        r = semrsm.gram(X, Y, matcher=matcher, precision=precision, tile=tile, threads=threads)
        assert np.array_equal(bits(r), bits(rect)), (tile, threads)


def test_none_gemm_does_not_depend_on_tile_size_with_long_rows():
    # S·C = 2400: several of the GEMM's inner blocks per dot product.
    x = RNG.normal(size=(37, 24, 10, 10)).astype(np.float32)
    for precision in ("float64", "float32"):
        whole = semrsm.gram(x, matcher="none", precision=precision, tile=37)
        for tile in (1, 3, 16, 17):
            g = semrsm.gram(x, matcher="none", precision=precision, tile=tile)
            assert np.array_equal(bits(g), bits(whole)), (precision, tile)


def test_tiled_permutations_and_bounds_are_identical():
    G, P, B = semrsm.gram(X, matcher="greedy", return_permutations=True, return_bound=True)
    for tile in (1, 4):
        g, p, b = semrsm.gram(X, matcher="greedy", return_permutations=True, return_bound=True, tile=tile)
        assert np.array_equal(bits(g), bits(G)) and np.array_equal(p, P) and np.array_equal(bits(b), bits(B))
    # perm[j, i] is the inverse of perm[i, j] across tiles too
    s = P.shape[2]
    for i, j in [(0, 12), (3, 9)]:
        assert np.array_equal(P[j, i][P[i, j]], np.arange(s))


def test_build_kernels_identical_for_any_tile():
    for kernel in ("cosine", "rbf"):
        K = semrsm.build(X, kernel=kernel)
        assert np.array_equal(bits(semrsm.build(X, kernel=kernel, tile=3)), bits(K))


# --------------------------------------------------------------------------- inputs


def test_path_memmap_zarr_dask_inputs_agree(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, X.astype(np.float32))
    expected = semrsm.gram(X.astype(np.float32), tile=4)
    assert np.array_equal(bits(semrsm.gram(str(path), tile=4)), bits(expected))
    assert np.array_equal(bits(semrsm.gram(path, tile=5)), bits(expected))
    mm = np.load(path, mmap_mode="r")
    assert isinstance(_tiles.open_input(mm, "x"), _tiles.NpyFile)  # read with pread, not the map
    assert np.array_equal(bits(semrsm.gram(mm)), bits(expected))
    assert np.array_equal(bits(semrsm.gram(mm[2:])), bits(semrsm.gram(X.astype(np.float32)[2:])))
    zarr = pytest.importorskip("zarr")
    z = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=(4, 6, 3, 3), dtype="f4")
    z[:] = X.astype(np.float32)
    assert np.array_equal(bits(semrsm.gram(z, tile=3)), bits(expected))
    da = pytest.importorskip("dask.array")
    d = da.from_array(X.astype(np.float32), chunks=(5, 6, 3, 3))
    assert np.array_equal(bits(semrsm.gram(d, tile=6)), bits(expected))


def test_float32_input_is_never_copied_whole_to_float64():
    x = RNG.normal(size=(120, 32, 16, 16)).astype(np.float32)  # 3.9 MB; float64 copy 7.9 MB
    semrsm.gram(x[:4], matcher="none")  # warm up imports
    tracemalloc.start()
    try:
        semrsm.gram(x, matcher="none", tile=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes, peak  # blocks of 8 rows, not a full widened or centred copy


def test_npy_path_is_read_in_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(_tiles, "SCAN_BYTES", 1 << 20)
    x = RNG.normal(size=(120, 32, 16, 16)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    tracemalloc.start()
    try:
        G = semrsm.gram(path, matcher="none", tile=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes, peak
    np.testing.assert_allclose(G, semrsm.gram(x, matcher="none"), rtol=0, atol=0)


def test_nan_reported_in_user_index_for_blocks_and_files(tmp_path):
    x = X.copy()
    x[9, 4, 2, 1] = np.nan
    path = tmp_path / "bad.npy"
    np.save(path, x)
    for source in (x, path, np.load(path, mmap_mode="r")):
        with pytest.raises(NonFiniteError, match=r"\(9, 4, 2, 1\)"):
            semrsm.gram(source, tile=2)


def test_bad_paths(tmp_path):
    with pytest.raises(semrsm.SemrsmError, match="no such file"):
        semrsm.gram(tmp_path / "missing.npy")
    (tmp_path / "t.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(semrsm.SemrsmError, match="not a readable .npy"):
        semrsm.gram(tmp_path / "t.npy")
    np.save(tmp_path / "short.npy", X)
    data = (tmp_path / "short.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(data[:-100])
    with pytest.raises(semrsm.SemrsmError, match="not a readable .npy"):
        semrsm.gram(tmp_path / "short.npy")


# --------------------------------------------------------------------------- issue 9.2 / 9.8


def test_float32_none_with_huge_values_is_finite_or_an_error():
    # Issue 9.2: ±3e18 in float32 without centring; per position the products fit, the sum of
    # all S·C products does not.
    x = np.where(RNG.random((4, 8, 4, 4)) < 0.5, -3e18, 3e18)
    with pytest.raises(NonFiniteError, match="float64"):
        semrsm.gram(x, matcher="none", precision="float32", center=False)
    G = semrsm.gram(x, matcher="none", precision="float64", center=False)
    assert np.isfinite(G).all()
    np.testing.assert_allclose(G, x.reshape(4, -1) @ x.reshape(4, -1).T, rtol=0, atol=1e-12 * G.max())


def test_huge_finite_input_never_reports_inf_at_an_internal_index():
    # Issue 9.8: the mean of ±1e308 must not overflow, nor be blamed on index (0, 0, 0).
    x = np.full((4, 2, 2, 2), 1e308)
    x[1::2] = -1e308
    with pytest.raises(NonFiniteError) as info:
        semrsm.gram(x)
    message = str(info.value)
    assert "(inf)" not in message and "too large" in message
    x2 = np.full((4, 2, 2, 2), 1.7e308)
    x2[0, 1, 0, 1] = -1.7e308  # the mean is finite, this entry minus the mean overflows
    with pytest.raises(NonFiniteError, match=r"\[0, 1, 0, 1\]"):
        semrsm.gram(x2)
    # The mean is computed without overflow: equal values centre to exactly zero.
    G = semrsm.gram(np.full((3, 2, 2, 2), 1e308), matcher="none")
    assert np.array_equal(G, np.zeros((3, 3)))


# --------------------------------------------------------------------------- memory


def test_memory_estimate_raises_before_allocating(monkeypatch):
    monkeypatch.setattr(_tiles, "available_memory", lambda: 10 << 20)
    big = np.zeros((2000, 1, 1, 1))
    with pytest.raises(TooLargeError, match=r"output.*out="):
        semrsm.gram(big, matcher="none", center=False)
    with pytest.raises(TooLargeError, match="output"):
        semrsm.build(big, matcher="none", center=False)
    with pytest.raises(TooLargeError, match="permutations"):
        semrsm.gram(np.zeros((300, 1, 4, 4)), matcher="none", return_permutations=True, center=False)
    wide = np.zeros((2, 1, 32, 32))  # S = 1024: ~16 MiB of scratch per thread
    with pytest.raises(TooLargeError, match="fewer threads"):
        semrsm.gram(wide, matcher="greedy", threads=8, center=False)
    with pytest.raises(TooLargeError, match="fewer threads"):
        semrsm.build(wide, matcher="greedy", threads=8, center=False)
    # with out= the output is not held in memory
    monkeypatch.setattr(_tiles, "available_memory", lambda: 64 << 20)
    semrsm.gram(big[:300], matcher="none", center=False, out=None)


def test_default_tiles_bound_the_results_in_flight(tmp_path, monkeypatch):
    """With out=, only the tiles in flight are in memory, also when S·C is tiny (many rows fit in
    a block): the default tile keeps its results within TILE_BYTES, so a large N needs no tile=."""
    monkeypatch.setattr(_tiles, "TILE_BYTES", 1 << 20)
    x = RNG.normal(size=(700, 1, 1, 1))
    engine = _tiles.plan_gram(x, matcher="none")
    assert engine.rows < 700
    assert engine.memory_estimate(output_in_memory=False)["tile"] <= 1 << 20
    monkeypatch.setattr(_tiles, "available_memory", lambda: 8 << 20)  # < one 700 x 700 tile
    G = semrsm.gram(x, matcher="none", out=tmp_path / "G.npy", progress=False)
    monkeypatch.setattr(_tiles, "available_memory", lambda: None)
    assert np.array_equal(bits(G), bits(semrsm.gram(x, matcher="none", tile=700)))


def test_in_memory_none_uses_larger_blocks_within_half_the_input(tmp_path, monkeypatch):
    """In-memory matcher="none" runs read raw row blocks (the input's dtype, no float64 copy):
    an in-memory array is one tile (its blocks are views), another source (a .npy file) gets
    blocks of up to NONE_BLOCK_BYTES capped at half the input's own bytes (the two blocks in
    flight never exceed the input). Any tiling gives the same bits."""
    monkeypatch.setattr(_tiles, "BLOCK_BYTES", 1 << 20)
    monkeypatch.setattr(_tiles, "NONE_BLOCK_BYTES", 16 << 20)
    monkeypatch.setattr(_tiles, "available_memory", lambda: None)
    x = RNG.normal(size=(400, 64, 8, 8)).astype(np.float32)  # 6.6 MB; a float64 row is 32 KiB
    row = 64 * 64 * 8
    path = tmp_path / "x.npy"
    np.save(path, x)

    def rows(matcher="none", bound=False, data=x, **kw):
        o = _tiles.check_options(matcher, {}, True, "float64", False, bound, None)
        return _tiles.Engine.create(data, None, "auto", o, **kw).rows

    assert rows() == rows(in_memory=False) == (1 << 20) // row  # 32 rows
    assert rows(in_memory=True) == 400  # views of the array: one tile
    assert rows(in_memory=True, data=path) == x.nbytes // 2 // (row // 2)  # 200 raw float32 rows
    assert rows("exact", in_memory=True) == rows("none", bound=True, in_memory=True) == (1 << 20) // row
    # gram: in memory without a cluster only (not with out=)
    seen = []
    create = _tiles.Engine.create.__func__

    def spy(cls, *args, **kwargs):
        engine = create(cls, *args, **kwargs)
        seen.append(engine.rows)
        return engine

    monkeypatch.setattr(_tiles.Engine, "create", classmethod(spy))
    G = semrsm.gram(x, matcher="none")
    F = semrsm.gram(x, matcher="none", out=tmp_path / "G.npy")
    assert seen == [400, 32]
    assert np.array_equal(bits(G), bits(F)) and np.array_equal(bits(G), bits(semrsm.gram(x, matcher="none", tile=37)))


def test_out_file_pages_do_not_stay_resident(tmp_path):
    """The result written with out= does not accumulate in the process's resident memory: a
    128 MB output in 64 tiles raises the peak RSS (VmHWM, a fresh process) far less than its size."""
    grown = peak_rss_growth(
        'semrsm.gram(x[:50], matcher="none", tile=10)  # warm up imports and pools',
        f'semrsm.gram(x, matcher="none", tile=500, out={str(tmp_path / "G.npy")!r}, progress=False)',
    )
    assert int(grown) < 48 << 20  # the output is 128 MB; a tile of results is 8 MB


def test_fixed_limits_without_a_memory_estimate(monkeypatch):
    monkeypatch.setattr(_tiles, "available_memory", lambda: None)
    monkeypatch.setattr(_tiles, "MAX_PERMUTATION_ENTRIES", 1000)
    with pytest.raises(TooLargeError, match="permutations"):
        semrsm.gram(X, return_permutations=True)


_LIMITED = textwrap.dedent(
    """
    import resource, sys, numpy as np, semrsm
    from semrsm import _core
    soft = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (soft, resource.RLIM_INFINITY))
    rng = np.random.default_rng(0)
    def attempt(label, f):
        try:
            f()
            print(label, "ok")
        except semrsm.TooLargeError as e:
            print(label, "TooLargeError", str(e)[:60].replace(chr(10), " "))
    attempt("output", lambda: semrsm.gram(rng.normal(size=(30000, 1, 1, 1)), matcher="none"))
    attempt("threads", lambda: semrsm.gram(rng.normal(size=(12, 2, 64, 64)), matcher="greedy", threads=64))
    # straight into the core (no estimate): the allocation itself must fail cleanly
    attempt("core", lambda: _core.gram(np.zeros((30000, 1, 1)), matcher="none"))
    attempt("core-scratch", lambda: _core.gram(np.zeros((3, 8192, 1)), matcher="exact", threads=64))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS semantics")
def test_out_of_memory_is_an_error_not_an_abort():
    # Issue 9.4: under an address-space limit, no SIGABRT; TooLargeError from the estimate and
    # from the core's fallible allocations.
    import resource

    used = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
    limit = max(used, 1 << 30) + (3 << 30)
    del resource
    result = subprocess.run(
        [sys.executable, "-c", _LIMITED, str(limit)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert set(lines) == {"output", "threads", "core", "core-scratch"}, result.stdout
    for label, outcome in lines.items():
        assert outcome.startswith("TooLargeError"), (label, outcome)


# --------------------------------------------------------------------------- progress


class _Recorder:
    instances: list = []

    def __init__(self, *args, **kwargs):
        self.total = kwargs.get("total")
        self.n = kwargs.get("initial", 0)
        self.closed = False
        _Recorder.instances.append(self)

    def update(self, k):
        self.n += k

    def close(self):
        self.closed = True


def test_progress_true_shows_a_bar_with_the_right_total(monkeypatch):
    import tqdm.auto

    _Recorder.instances = []
    monkeypatch.setattr(tqdm.auto, "tqdm", _Recorder)
    semrsm.gram(X, progress=True, tile=4)
    semrsm.gram(X, Y, progress=True, tile=4, matcher="none")
    square, rect = _Recorder.instances
    n, m = X.shape[0], Y.shape[0]
    assert (square.total, square.n, square.closed) == (n * (n + 1) // 2, n * (n + 1) // 2, True)
    assert (rect.total, rect.n) == (n * m, n * m)
    _Recorder.instances = []
    semrsm.gram(X, progress=False)
    assert _Recorder.instances == []


def test_default_progress_is_silent_off_a_terminal(capfd):
    semrsm.gram(X)
    assert capfd.readouterr().err == ""
    with pytest.raises(OptionError, match="progress"):
        semrsm.gram(X, progress="yes")


def test_core_progress_counts_every_pair():
    got = []
    xs = np.ascontiguousarray(X.reshape(13, 6, 9).transpose(0, 2, 1))
    _core.gram(xs, progress=got.append)
    assert sum(got) == 13 * 14 // 2
    got.clear()
    _core.gram(xs, xs[:5], matcher="none", progress=got.append)
    assert sum(got) == 13 * 5


# --------------------------------------------------------------------------- out= / resume


def test_out_equals_memory_and_returns_a_memmap(tmp_path):
    out = tmp_path / "G.npy"
    G = semrsm.gram(X, out=out, tile=4)
    assert isinstance(G, np.memmap) and np.array_equal(bits(G), bits(semrsm.gram(X)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["G.npy"]
    K = semrsm.build(X, kernel="rbf", out=tmp_path / "K.npy", tile=4)
    assert np.array_equal(bits(K), bits(semrsm.build(X, kernel="rbf")))
    K = semrsm.build(X, Y, kernel="cosine", out=tmp_path / "K.npy", tile=3)
    assert np.array_equal(bits(K), bits(semrsm.build(X, Y, kernel="cosine")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["G.npy", "K.npy"]


def test_out_options_are_checked(tmp_path):
    with pytest.raises(OptionError, match="is a directory"):
        semrsm.gram(X, out=tmp_path)
    G = semrsm.gram(X, out=tmp_path / "G.bin")  # the name is used exactly; the format is .npy
    assert np.array_equal(np.load(tmp_path / "G.bin"), G)
    with pytest.raises(OptionError, match="does not exist"):
        semrsm.gram(X, out=tmp_path / "nope" / "G.npy")
    with pytest.raises(OptionError, match="out="):
        semrsm.gram(X, resume=True)


def test_a_crash_keeps_the_old_out_and_resume_finishes_bit_identically(tmp_path, monkeypatch):
    out = tmp_path / "G.npy"
    np.save(out, np.arange(4.0))  # a previous result
    expected = semrsm.gram(X, matcher="greedy", tile=3)
    computed = crash_after(monkeypatch, _tiles.Engine, "compute", 4)
    with pytest.raises(Crash):
        semrsm.gram(X, matcher="greedy", tile=3, out=out)
    assert np.array_equal(np.load(out), np.arange(4.0))  # untouched
    assert (tmp_path / "G.npy.partial").exists()
    monkeypatch.undo()
    computed = crash_after(monkeypatch, _tiles.Engine, "compute", 10**6)
    G = semrsm.gram(X, matcher="greedy", tile=3, out=out, resume=True)
    n_tiles = len(_tiles.plan_tiles(13, 13, True, 3))
    assert computed == list(range(4, n_tiles))  # finished tiles are not recomputed
    assert np.array_equal(bits(G), bits(expected))
    assert not (tmp_path / "G.npy.partial").exists() and not (tmp_path / "G.npy.partial.tiles").exists()


def test_resume_refuses_other_data_or_options(tmp_path, monkeypatch):
    out = tmp_path / "G.npy"
    crash_after(monkeypatch, _tiles.Engine, "compute", 2)
    with pytest.raises(Crash):
        semrsm.gram(X, tile=3, out=out)
    monkeypatch.undo()
    x2 = X.copy()
    x2[5, 0, 0, 0] += 1e-9
    with pytest.raises(OptionError, match="inputs"):
        semrsm.gram(x2, tile=3, out=out, resume=True)
    with pytest.raises(OptionError, match="options"):
        semrsm.gram(X, tile=3, out=out, resume=True, matcher="greedy")
    with pytest.raises(OptionError, match="tile_rows"):
        semrsm.gram(X, tile=4, out=out, resume=True)
    state = json.loads((tmp_path / "G.npy.partial.tiles").read_bytes().split(b"\n")[0])
    assert state["options"]["matcher"] == "exact"
    G = semrsm.gram(X, tile=3, out=out, resume=True)
    assert np.array_equal(bits(G), bits(semrsm.gram(X)))


_LONG_RUN = textwrap.dedent(
    """
    import sys, numpy as np, semrsm
    x = np.random.default_rng(3).normal(size=(48, 16, 8, 8))
    semrsm.gram(x, tile=4, out=sys.argv[1], resume=sys.argv[2] == "1", progress=False, threads=1)
    """
)


def test_kill_9_then_resume_is_bit_identical(tmp_path):
    out = tmp_path / "G.npy"
    kill_after_tiles(_LONG_RUN, [str(out), "0"], tmp_path / "G.npy.partial.tiles")
    assert not out.exists()
    subprocess.run([sys.executable, "-c", _LONG_RUN, str(out), "1"], check=True, timeout=300)
    x = np.random.default_rng(3).normal(size=(48, 16, 8, 8))
    assert np.array_equal(bits(np.load(out)), bits(semrsm.gram(x)))


# --------------------------------------------------------------------------- Dask


def test_dask_cluster_is_bit_identical_to_a_local_run(dask_client, tmp_path):
    x = RNG.normal(size=(21, 8, 4, 4)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    local = semrsm.gram(x, tile=4)
    # a path: workers read their rows from the file
    assert np.array_equal(bits(semrsm.gram(path, tile=4, client=dask_client)), bits(local))
    # an in-memory array (scattered once), rectangular, with permutations and bounds
    G, P, B = semrsm.gram(x, x[:9], matcher="greedy", return_permutations=True, return_bound=True, tile=5)
    g, p, b = semrsm.gram(
        x, x[:9], matcher="greedy", return_permutations=True, return_bound=True, tile=5, client=dask_client
    )
    assert np.array_equal(bits(g), bits(G)) and np.array_equal(p, P) and np.array_equal(bits(b), bits(B))
    # zarr, into out= with a kernel
    zarr = pytest.importorskip("zarr")
    z = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=x.shape, chunks=(4, 8, 4, 4), dtype="f4")
    z[:] = x
    K = semrsm.build(z, kernel="cosine", matcher="none", tile=4, client=dask_client, out=tmp_path / "K.npy")
    assert np.array_equal(bits(K), bits(semrsm.build(x, kernel="cosine", matcher="none")))


def test_dask_resume_skips_finished_tiles(dask_client, tmp_path, monkeypatch):
    out = tmp_path / "G.npy"
    crash_after(monkeypatch, _tiles.Engine, "compute", 3)
    with pytest.raises(Crash):
        semrsm.gram(X, tile=3, out=out)
    monkeypatch.undo()
    from semrsm import _dask

    sent = []
    original = _dask._groups
    monkeypatch.setattr(_dask, "_groups", lambda e, todo: sent.extend(original(e, todo)) or original(e, todo))
    G = semrsm.gram(X, tile=3, out=out, resume=True, client=dask_client)
    assert sorted(t.index for group in sent for t in group) == list(range(3, len(_tiles.plan_tiles(13, 13, True, 3))))
    assert np.array_equal(bits(G), bits(semrsm.gram(X)))
