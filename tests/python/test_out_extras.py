"""``out=`` with ``return_permutations`` / ``return_bound`` (issue 7): companion files beside
``out`` (``rsm.perm.npy`` int32, ``rsm.bound.npy``), written tile by tile under the same
sidecar, fingerprint, resume and atomic rename as ``G``, returned memory-mapped, counted in the
memory estimate and checked against the free disk space."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import namedtuple

import numpy as np
import pytest

from helpers import Crash, crash_after, kill_after_tiles
import semrsm
from semrsm import OptionError, TooLargeError, _tiles

RNG = np.random.default_rng(17)
X = RNG.normal(size=(13, 4, 3, 3))  # S = 9
Y = RNG.normal(size=(6, 4, 3, 3))


def bits(a):
    return np.asarray(a, dtype=np.float64).view(np.uint64)


def _same(got, expected):
    G, P, B = got
    g, p, b = expected
    assert isinstance(G, np.memmap) and isinstance(P, np.memmap) and isinstance(B, np.memmap)
    assert P.dtype == np.int32 and np.array_equal(P, p)
    assert np.array_equal(bits(G), bits(g)) and np.array_equal(bits(B), bits(b))


@pytest.mark.parametrize("matcher", ["exact", "greedy", "none"])
@pytest.mark.parametrize("rect", [False, True])
def test_gram_out_with_permutations_and_bound_equals_memory(tmp_path, matcher, rect):
    y = Y if rect else None
    expected = semrsm.gram(X, y, matcher=matcher, return_permutations=True, return_bound=True)
    got = semrsm.gram(X, y, matcher=matcher, return_permutations=True, return_bound=True, out=tmp_path / "rsm.npy", tile=4)
    _same(got, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rsm.bound.npy", "rsm.npy", "rsm.perm.npy"]
    # one of the two alone; a name without .npy gets the suffix appended
    G, P = semrsm.gram(X, y, matcher=matcher, return_permutations=True, out=tmp_path / "G.bin", tile=5)
    assert np.array_equal(P, expected[1]) and (tmp_path / "G.bin.perm.npy").exists()
    G, B = semrsm.gram(X, y, matcher=matcher, return_bound=True, out=tmp_path / "H.npy", tile=5)
    assert np.array_equal(bits(B), bits(expected[2])) and not (tmp_path / "H.perm.npy").exists()


@pytest.mark.parametrize("kernel", ["linear", "cosine", "rbf"])
def test_build_out_with_bound_equals_memory(tmp_path, kernel):
    K, KB = semrsm.build(X, kernel=kernel, matcher="greedy", return_bound=True)
    k, kb = semrsm.build(X, kernel=kernel, matcher="greedy", return_bound=True, out=tmp_path / "K.npy", tile=4)
    assert isinstance(kb, np.memmap) and np.array_equal(bits(k), bits(K)) and np.array_equal(bits(kb), bits(KB))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["K.bound.npy", "K.npy"]


def test_crash_then_resume_with_permutations_and_bound(tmp_path, monkeypatch):
    out = tmp_path / "rsm.npy"
    np.save(tmp_path / "rsm.perm.npy", np.arange(3))  # a previous result, kept until the new one is complete
    opts = dict(matcher="greedy", return_permutations=True, return_bound=True, tile=3)
    expected = semrsm.gram(X, **opts)
    crash_after(monkeypatch, _tiles.Engine, "compute", 4)
    with pytest.raises(Crash):
        semrsm.gram(X, out=out, **opts)
    assert np.array_equal(np.load(tmp_path / "rsm.perm.npy"), np.arange(3))
    assert (tmp_path / "rsm.perm.npy.partial").exists() and (tmp_path / "rsm.bound.npy.partial").exists()
    monkeypatch.undo()
    # the fingerprint covers the flags: resuming without the permutations is refused
    with pytest.raises(OptionError, match="options"):
        semrsm.gram(X, out=out, resume=True, matcher="greedy", return_bound=True, tile=3)
    computed = crash_after(monkeypatch, _tiles.Engine, "compute", 10**6)
    got = semrsm.gram(X, out=out, resume=True, **opts)
    assert computed == list(range(4, len(_tiles.plan_tiles(13, 13, True, 3))))
    _same(got, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rsm.bound.npy", "rsm.npy", "rsm.perm.npy"]


def test_resume_with_a_missing_companion_starts_again(tmp_path, monkeypatch):
    out = tmp_path / "rsm.npy"
    opts = dict(matcher="greedy", return_permutations=True, tile=3)
    crash_after(monkeypatch, _tiles.Engine, "compute", 2)
    with pytest.raises(Crash):
        semrsm.gram(X, out=out, **opts)
    monkeypatch.undo()
    (tmp_path / "rsm.perm.npy.partial").unlink()
    computed = crash_after(monkeypatch, _tiles.Engine, "compute", 10**6)
    G, P = semrsm.gram(X, out=out, resume=True, **opts)
    assert computed[0] == 0  # nothing taken from the incomplete partial run
    assert np.array_equal(P, semrsm.gram(X, **opts)[1])


_LONG_RUN = textwrap.dedent(
    """
    import sys, numpy as np, semrsm
    x = np.random.default_rng(3).normal(size=(40, 16, 8, 8))
    semrsm.gram(x, tile=4, out=sys.argv[1], resume=sys.argv[2] == "1", progress=False, threads=1,
                matcher="greedy", return_permutations=True, return_bound=True)
    """
)


def test_kill_9_then_resume_with_permutations_and_bound(tmp_path):
    out = tmp_path / "rsm.npy"
    kill_after_tiles(_LONG_RUN, [str(out), "0"], tmp_path / "rsm.npy.partial.tiles")
    assert not out.exists() and not (tmp_path / "rsm.perm.npy").exists()
    subprocess.run([sys.executable, "-c", _LONG_RUN, str(out), "1"], check=True, timeout=300)
    x = np.random.default_rng(3).normal(size=(40, 16, 8, 8))
    expected = semrsm.gram(x, matcher="greedy", return_permutations=True, return_bound=True)
    _same(
        tuple(np.load(tmp_path / f, mmap_mode="r") for f in ("rsm.npy", "rsm.perm.npy", "rsm.bound.npy")),
        expected,
    )


def test_memory_estimate_counts_the_permutations_of_a_tile(tmp_path, monkeypatch):
    x = np.zeros((40, 1, 16, 16))  # S = 256: a 40 x 40 tile of permutations is 3.3 MB (+ its inverse)
    engine = _tiles.plan_gram(x, matcher="none", return_permutations=True, tile=40, center=False)
    with_perm = engine.memory_estimate(output_in_memory=False)["tile"]
    engine = _tiles.plan_gram(x, matcher="none", tile=40, center=False)
    assert with_perm - engine.memory_estimate(output_in_memory=False)["tile"] == 2 * 40 * 40 * 256 * 8
    monkeypatch.setattr(_tiles, "available_memory", lambda: 4 << 20)
    semrsm.gram(x, matcher="none", center=False, tile=40, out=tmp_path / "G.npy")  # G alone fits
    with pytest.raises(TooLargeError, match="tile"):
        semrsm.gram(x, matcher="none", center=False, tile=40, return_permutations=True, out=tmp_path / "P.npy")
    assert not any(p.name.startswith("P.") for p in tmp_path.iterdir())  # nothing allocated or written
    # the whole-result limit of permutations in memory does not apply to files
    monkeypatch.setattr(_tiles, "available_memory", lambda: None)
    monkeypatch.setattr(_tiles, "MAX_PERMUTATION_ENTRIES", 1000)
    with pytest.raises(TooLargeError, match="permutations"):
        semrsm.gram(X, return_permutations=True)
    _, P = semrsm.gram(X, return_permutations=True, out=tmp_path / "Q.npy")
    assert P.size > 1000


def test_files_that_cannot_fit_on_disk_are_refused_before_writing(tmp_path, monkeypatch):
    StatVfs = namedtuple("StatVfs", "f_bavail f_frsize")
    real = os.statvfs
    G_bytes = 13 * 13 * 8
    # room for G but not for its permutations (13 x 13 x 9 int32)
    monkeypatch.setattr(os, "statvfs", lambda p: StatVfs(G_bytes + 100, 1) if str(p) == str(tmp_path) else real(p))
    semrsm.gram(X, out=tmp_path / "G.npy")
    with pytest.raises(TooLargeError, match="free"):
        semrsm.gram(X, out=tmp_path / "R.npy", return_permutations=True)
    assert not any(p.name.startswith("R.") for p in tmp_path.iterdir())


def test_dask_out_with_permutations_and_bound(dask_client, tmp_path):
    opts = dict(matcher="greedy", return_permutations=True, return_bound=True, tile=4)
    got = semrsm.gram(X, Y, out=tmp_path / "rsm.npy", client=dask_client, **opts)
    _same(got, semrsm.gram(X, Y, **opts))
