"""layer_cka at scale (issue 12, point 5): ``resume=`` (finished tiles' partial sums on disk with the
tile engine's fingerprint sidecar; a killed run continues without recomputing them, bit-identically)
and ``client=`` (tiles of both layers on Dask workers, only partial sums sent back, added in tile
order: bit-identical to a local run)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from helpers import Crash, crash_after, kill_after_tiles
import semrsm
from semrsm import OptionError, _layer_cka, _tiles

RNG = np.random.default_rng(11)
X = RNG.normal(size=(13, 5, 3, 3))
Y = np.tanh(X[:, :3]) + 0.3 * RNG.normal(size=(13, 3, 3, 3))


def bits(value: float) -> int:
    return int(np.float64(value).view(np.uint64))


@pytest.mark.parametrize("kernel, extra", [("linear", {}), ("rbf", {"sigma": 4.0})])
def test_a_killed_run_resumes_without_recomputing_finished_tiles(tmp_path, monkeypatch, kernel, extra):
    state = tmp_path / "cka_state"
    kw = dict(kernel=kernel, matcher="greedy", tile=3, debiased=True, **extra)
    expected = semrsm.layer_cka(X, Y, **kw)
    crash_after(monkeypatch, _layer_cka, "_tile_partials", 4)
    with pytest.raises(Crash):
        semrsm.layer_cka(X, Y, resume=state, **kw)
    assert (tmp_path / "cka_state.partial").exists() and (tmp_path / "cka_state.partial.tiles").exists()
    monkeypatch.undo()
    computed = crash_after(monkeypatch, _layer_cka, "_tile_partials", 10**6)
    got = semrsm.layer_cka(X, Y, resume=state, **kw)
    n_tiles = len(_tiles.plan_tiles(13, 13, True, 3))
    assert computed == list(range(4, n_tiles))  # the first 4 tiles come from the file
    assert bits(got) == bits(expected)
    assert not any(p.name.startswith("cka_state") for p in tmp_path.iterdir())  # removed when done
    # the same stored sums serve the biased estimator too
    monkeypatch.undo()
    crash_after(monkeypatch, _layer_cka, "_tile_partials", 2)
    with pytest.raises(Crash):
        semrsm.layer_cka(X, Y, resume=str(state), **kw)
    monkeypatch.undo()
    assert bits(semrsm.layer_cka(X, Y, resume=state, **{**kw, "debiased": False})) == bits(
        semrsm.layer_cka(X, Y, **{**kw, "debiased": False})
    )


def test_resume_refuses_other_inputs_or_options(tmp_path, monkeypatch):
    state = tmp_path / "s"
    crash_after(monkeypatch, _layer_cka, "_tile_partials", 2)
    with pytest.raises(Crash):
        semrsm.layer_cka(X, Y, tile=3, resume=state)
    monkeypatch.undo()
    y2 = Y.copy()
    y2[4, 0, 0, 0] += 1e-9
    with pytest.raises(OptionError, match=r"cannot resume .* other inputs; delete"):
        semrsm.layer_cka(X, y2, tile=3, resume=state)
    with pytest.raises(OptionError, match=r"other options"):
        semrsm.layer_cka(X, Y, tile=3, resume=state, kernel="cosine")
    with pytest.raises(OptionError, match=r"other options"):
        semrsm.layer_cka(X, Y, tile=3, resume=state, prefix_tokens=(1, 0))
    with pytest.raises(OptionError, match=r"other options"):
        semrsm.layer_cka(X, Y, tile=3, resume=state, matcher="none")
    with pytest.raises(OptionError, match=r"tile_rows"):
        semrsm.layer_cka(X, Y, tile=4, resume=state)
    header = json.loads((tmp_path / "s.partial.tiles").read_bytes().split(b"\n")[0])
    assert header["what"] == "layer_cka" and len(header["inputs"]) == 2
    assert bits(semrsm.layer_cka(X, Y, tile=3, resume=state)) == bits(semrsm.layer_cka(X, Y, tile=3))


@pytest.mark.parametrize("bad", [True, 1, ["a"]])
def test_resume_needs_a_path(bad):
    with pytest.raises(OptionError, match=r"resume='cka_state' \(a path\)"):
        semrsm.layer_cka(X, Y, resume=bad)


def test_partial_sums_are_added_in_tile_order_whatever_the_arrival_order():
    ex = _tiles.plan_gram(X, tile=3)
    parts = [(t, RNG.normal(size=_layer_cka._width(3)) * 10.0 ** RNG.integers(-8, 8)) for t in ex.plan]
    results = []
    for order in (parts, parts[::-1], parts[1::2] + parts[::2]):
        moments = _layer_cka._Moments(13, 3)
        adder = _layer_cka._InOrder(moments, ex.plan, None)
        for tile, part in order:
            adder(tile, part)
        assert adder.complete
        results.append([bits(v) for v in moments.hsic(True)] + [bits(v) for v in moments.rows_k])
    assert results[0] == results[1] == results[2]


_LONG_RUN = textwrap.dedent(
    """
    import sys, numpy as np, semrsm
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 16, 8, 8)); y = np.tanh(x[:, :8]) + rng.normal(size=(60, 8, 8, 8))
    v = semrsm.layer_cka(x, y, tile=3, resume=sys.argv[1], progress=False, threads=1)
    print(repr(v))
    """
)


def test_kill_9_then_resume_is_bit_identical(tmp_path):
    state = tmp_path / "state"
    sidecar = tmp_path / "state.partial.tiles"
    kill_after_tiles(_LONG_RUN, [str(state)], sidecar)
    resumed = subprocess.run([sys.executable, "-c", _LONG_RUN, str(state)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 16, 8, 8))
    y = np.tanh(x[:, :8]) + rng.normal(size=(60, 8, 8, 8))
    assert bits(float(resumed.stdout.strip())) == bits(semrsm.layer_cka(x, y, tile=3))
    assert not sidecar.exists()


# --------------------------------------------------------------------------- Dask


def test_dask_is_bit_identical_to_a_local_run(dask_client, tmp_path, monkeypatch):
    x = RNG.normal(size=(21, 8, 4, 4)).astype(np.float32)
    y = (np.abs(x[:, :5]) + 0.5 * RNG.normal(size=(21, 5, 4, 4))).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    runs = (dict(tile=4, debiased=True), dict(tile=5, kernel="cosine", matcher="greedy", prefix_tokens=(2, 0)))
    local = [semrsm.layer_cka(x, y, **kw) for kw in runs]

    def nowhere(*args, **kwargs):
        raise AssertionError("tiles computed in the client process, not on the workers")

    monkeypatch.setattr(_layer_cka, "_partials", nowhere)  # the workers have their own module
    for kw, want in zip(runs, local):
        # x read by the workers from its file, y (in memory) scattered once
        remote = semrsm.layer_cka(tmp_path / "x.npy", y, client=dask_client, **kw)
        assert bits(remote) == bits(want)


def test_dask_resume_sends_only_unfinished_tiles(dask_client, tmp_path, monkeypatch):
    state = tmp_path / "s"
    crash_after(monkeypatch, _layer_cka, "_tile_partials", 3)
    with pytest.raises(Crash):
        semrsm.layer_cka(X, Y, tile=3, resume=state, matcher="none")
    monkeypatch.undo()
    from semrsm import _dask

    sent = []
    original = _dask._groups
    monkeypatch.setattr(_dask, "_groups", lambda e, todo: sent.extend(original(e, todo)) or original(e, todo))
    got = semrsm.layer_cka(X, Y, tile=3, resume=state, matcher="none", client=dask_client)
    n_tiles = len(_tiles.plan_tiles(13, 13, True, 3))
    assert sorted(t.index for group in sent for t in group) == list(range(3, n_tiles))
    assert bits(got) == bits(semrsm.layer_cka(X, Y, matcher="none", tile=3))


def test_client_must_be_a_client():
    pytest.importorskip("distributed")
    with pytest.raises(OptionError, match=r"client must be a dask.distributed.Client"):
        semrsm.layer_cka(X, Y, client="tcp://localhost:8786")
