"""matcher="none" straight from the raw rows (issue 8.1): ``_core.gram_none`` widens and centres
the input chunk by chunk inside the GEMM's loop. It must give the bits of the path through a
widened, centred float64 block and ``_core.gram`` (kept for permutations, bounds and inputs near
overflow), whatever the layout, dtype, tile or thread count, and match a float64 numpy oracle."""

from __future__ import annotations

import numpy as np
import pytest

import semrsm
from semrsm import NonFiniteError, OptionError, ShapeError, _core, _tiles

RNG = np.random.default_rng(81)


def bits(a):
    return np.asarray(a).view(np.uint64)


def through_blocks(x, y=None, **kw):
    """G computed the other way: Engine.block (widened, centred float64/float32 blocks) and
    _core.gram, one tile."""
    options = _tiles.check_options("none", {}, kw.get("center", True), kw.get("precision", "float64"), False, False, None)
    engine = _tiles.Engine.create(x, y, kw.get("layout", "auto"), options, tile=10**9)
    assert len(engine.plan) == 1
    xb = engine.block("x", 0, engine.x.n)
    yb = None if y is None else engine.block("y", 0, engine.y.n)
    return _core.gram(xb, yb, matcher="none")[0]


def oracle(x, y, layout, center):
    """float64 numpy: (N, S, C) flattened in (S, C) order, centred with y's (or x's) mean."""

    def nsc(a):
        a = np.asarray(a, dtype=np.float64)
        if layout == "nchw":
            return a.reshape(a.shape[0], a.shape[1], -1).transpose(0, 2, 1)
        if layout == "nhwc":
            return a.reshape(a.shape[0], -1, a.shape[3])
        return a

    vx = nsc(x)
    vy = vx if y is None else nsc(y)
    if center == "channel":
        mean = vy.mean(axis=(0, 1))
    elif center:
        mean = vy.mean(axis=0)
    else:
        mean = 0.0
    vx, vy = (vx - mean).reshape(len(vx), -1), (vy - mean).reshape(len(vy), -1)
    return vx @ vy.T


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int16])
@pytest.mark.parametrize("center", [True, "channel", False])
def test_direct_none_has_the_bits_of_the_block_path_in_every_layout(dtype, center):
    n, c, h, w = 23, 37, 5, 6  # S·C = 1110: several chunks of 512 products
    nchw = (RNG.normal(size=(n, c, h, w)) * 8).astype(dtype)
    nhwc = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))
    nsc = nhwc.reshape(n, h * w, c)
    want = through_blocks(nsc, layout="nsc", center=center)
    for data, layout in ((nchw, "nchw"), (nhwc, "nhwc"), (nsc, "nsc")):
        for threads, tile in ((1, None), (2, 7), (3, 23)):
            got = semrsm.gram(data, matcher="none", layout=layout, center=center, threads=threads, tile=tile)
            assert np.array_equal(bits(got), bits(want)), (layout, threads, tile)
    ref = oracle(nchw, None, "nchw", center)
    np.testing.assert_allclose(want, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    # rectangular: both centred with y's mean; x float32 against y float64 too
    y = nchw[:9].astype(np.float64) if center is not True else nchw[:9]
    want_r = through_blocks(nchw, y, center=center)
    got_r = semrsm.gram(nchw, y, matcher="none", center=center, tile=5)
    assert np.array_equal(bits(got_r), bits(want_r))
    np.testing.assert_allclose(got_r, oracle(nchw, y, "nchw", center), rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_direct_none_float32_precision_and_build_norms_unchanged(monkeypatch):
    x = RNG.normal(size=(30, 40, 4, 4)).astype(np.float32)
    new = [
        semrsm.gram(x, matcher="none", precision="float32"),
        semrsm.build(x, matcher="none", kernel="rbf"),
        semrsm.build(x, matcher="none", kernel="cosine", tile=7),
    ]
    monkeypatch.setattr(_tiles.Engine, "direct_none", property(lambda self: False))
    old = [
        semrsm.gram(x, matcher="none", precision="float32"),
        semrsm.build(x, matcher="none", kernel="rbf"),
        semrsm.build(x, matcher="none", kernel="cosine", tile=7),
    ]
    for a, b in zip(new, old):
        assert np.array_equal(bits(a), bits(b))


def test_direct_none_is_taken_and_the_block_path_kept_where_needed(monkeypatch):
    x = RNG.normal(size=(12, 3, 4, 4))
    calls = []
    gram, gram_none = _core.gram, _core.gram_none
    monkeypatch.setattr(_core, "gram", lambda *a, **k: calls.append("gram") or gram(*a, **k))
    monkeypatch.setattr(_core, "gram_none", lambda *a, **k: calls.append("none") or gram_none(*a, **k))
    G = semrsm.gram(x, matcher="none", tile=5)
    assert set(calls) == {"none"}
    calls.clear()
    G2, perm = semrsm.gram(x, matcher="none", return_permutations=True)
    assert set(calls) == {"gram"} and np.array_equal(bits(G), bits(G2))
    assert np.array_equal(perm, np.broadcast_to(np.arange(16), (12, 12, 16)))
    calls.clear()
    # values whose inner products could overflow go the checked way (and its error)
    with pytest.raises(NonFiniteError, match="products must stay below"):
        semrsm.gram(x * 1e152, matcher="none")
    assert calls == ["gram"]


def test_gram_none_core_rejects_bad_input():
    x = RNG.normal(size=(4, 3, 2))
    with pytest.raises(ShapeError, match="mean must have shape"):
        _core.gram_none(x, mean=np.zeros((2, 3)))
    with pytest.raises(ShapeError, match="same number of channels"):
        _core.gram_none(x, RNG.normal(size=(4, 3, 5)))
    with pytest.raises(ShapeError, match="every dimension"):
        _core.gram_none(np.zeros((0, 3, 2)))
    with pytest.raises(OptionError, match="precision"):
        _core.gram_none(x, precision="mixed")
    bad = x.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"\(2, 1, 0\)"):
        _core.gram_none(bad)
    with pytest.raises(NonFiniteError, match="float32 range"):
        _core.gram_none(x * 1e300, precision="float32")
    with pytest.raises(NonFiniteError, match="overflows"):
        _core.gram_none(x * 1e200)
    # the public call still names the user's index
    y = RNG.normal(size=(5, 3, 2, 2)).astype(np.float32)
    y[3, 2, 1, 0] = np.inf
    with pytest.raises(NonFiniteError, match=r"\(3, 2, 1, 0\)"):
        semrsm.gram(y, matcher="none")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_scan_mean_and_range_have_the_bits_of_the_row_by_row_numpy_sum(dtype, monkeypatch):
    # float32/float64 blocks go through _core.scan_rows (threads, columns split): the mean must
    # be numpy's row-by-row Σ x_i / N bit for bit, in row blocks of any size, the range exact
    x = (RNG.normal(size=(45, 7, 3, 5)) * 100).astype(dtype)
    n = len(x)
    want = np.zeros(x.shape[1:])
    for row in x:
        want += np.divide(row, n, dtype=np.float64, casting="unsafe")
    top = float(np.abs(x.astype(np.float64)).max())
    for threads, scan_bytes in ((1, 32 << 20), (3, 7 * 15 * 4 * 3)):  # one block; blocks of 2-3 rows
        monkeypatch.setattr(_tiles, "SCAN_BYTES", scan_bytes)
        sc = _tiles.scan(_tiles.prepare_input(x, "nchw", "x"), True, False, threads)
        assert np.array_equal(bits(sc.mean), bits(np.ascontiguousarray(want.reshape(7, 15).T)))
        assert sc.max_abs == top
    bad = x.astype(np.float32)
    bad[31, 2, 1, 4] = np.nan
    with pytest.raises(NonFiniteError, match=r"\(31, 2, 1, 4\)"):
        _tiles.scan(_tiles.prepare_input(bad, "nchw", "x"), True, False, 2)
    bad[31, 2, 1, 4] = -np.inf
    with pytest.raises(NonFiniteError, match=r"\(31, 2, 1, 4\)"):
        _tiles.scan(_tiles.prepare_input(bad, "nchw", "x"), False, False, 2)


def test_scan_rows_core_checks_its_accumulator():
    with pytest.raises(ShapeError, match="accumulator"):
        _core.scan_rows(np.zeros((2, 3)), np.zeros(4), 2.0)
    acc = np.zeros(3)
    assert _core.scan_rows(np.array([[1.0, -5.0, 2.0]], dtype=np.float32), acc, 4.0) == (5.0, True)
    assert np.array_equal(acc, [0.25, -1.25, 0.5])
