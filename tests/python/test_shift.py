"""matcher="shift" (best circular 2-D shift) against a numpy oracle that tries every np.roll."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import semrsm
from semrsm import OptionError


def roll_oracle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """max over all circular shifts (dy, dx) of <x_i, roll(y_j)>, inputs (N, C, H, W)."""
    _, _, h, w = x.shape
    best = np.full((len(x), len(y)), -np.inf)
    for dy in range(h):
        for dx in range(w):
            rolled = np.roll(y, shift=(dy, dx), axis=(2, 3))
            best = np.maximum(best, np.einsum("nchw,mchw->nm", x, rolled))
    return best


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 5),
    c=st.integers(1, 4),
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    center=st.booleans(),
)
def test_shift_matches_the_roll_oracle(seed, n, c, h, w, center):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c, h, w))
    G = semrsm.gram(z, matcher="shift", center=center)
    zc = z - z.mean(axis=0) if center else z
    np.testing.assert_allclose(G, roll_oracle(zc, zc), rtol=1e-12, atol=1e-12)
    none = semrsm.gram(z, matcher="none", center=center)
    exact = semrsm.gram(z, matcher="exact", center=center)
    tol = 1e-12 * np.abs(exact).max()
    assert (G >= none - tol).all() and (G <= exact + tol).all()


def test_shift_layouts_and_rectangular():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(3, 2, 3, 4)), rng.normal(size=(5, 2, 3, 4))
    want = roll_oracle(x, y)
    np.testing.assert_allclose(semrsm.gram(x, y, matcher="shift", center=False), want, rtol=1e-12, atol=1e-12)
    nhwc = semrsm.gram(x.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1), matcher="shift", layout="nhwc", center=False)
    np.testing.assert_allclose(nhwc, want, rtol=1e-12, atol=1e-12)
    # 3-D (N, S, C) input needs w unless the grid is square.
    nsc = lambda a: a.reshape(len(a), 2, 12).transpose(0, 2, 1)  # noqa: E731
    np.testing.assert_allclose(semrsm.gram(nsc(x), nsc(y), matcher="shift", center=False, w=4), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(OptionError, match="w"):
        semrsm.gram(nsc(x), nsc(y), matcher="shift", center=False)
    with pytest.raises(OptionError, match="divide"):
        semrsm.gram(x, y, matcher="shift", w=5)


def test_shift_on_the_example_sits_between_none_and_exact(shifted_pairs):
    z = shifted_pairs["block15"]
    K = {m: semrsm.build(z, kernel="cosine", matcher=m) for m in ("none", "shift", "exact")}
    assert (K["shift"] >= K["none"] - 1e-12).all() and (K["shift"] <= K["exact"] + 1e-12).all()
    # The build's K_bound for shift comes from the generic certified path.
    K_shift, K_bound = semrsm.build(z, kernel="cosine", matcher="shift", return_bound=True)
    assert np.array_equal(K_shift, K["shift"]) and (K_bound >= K_shift - 1e-12).all()


def test_match_affinity_shift_finds_a_rolled_copy():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(6, 3, 5))  # C, H, W
    y = np.roll(x, shift=(1, 3), axis=(1, 2))
    xs, ys = x.reshape(6, 15).T, y.reshape(6, 15).T
    perm, value = semrsm.match_affinity(xs @ ys.T, matcher="shift", w=5)
    assert sorted(perm.tolist()) == list(range(15))
    assert value == pytest.approx(np.sum(x * x), rel=1e-12)
    assert np.allclose(ys[perm], xs)


# From semrsm's FEATURES_FROM (256) matched grid positions on, `gram` matches shifts from the
# samples by FFT; with return_bound=True (which needs the affinities) it still takes the
# affinity path. Both must give the same shift and the same G to the last bit.
def _both_paths(x, **options):
    fast, fast_perm = semrsm.gram(x, matcher="shift", return_permutations=True, **options)
    slow, slow_perm, _ = semrsm.gram(x, matcher="shift", return_permutations=True, return_bound=True, **options)
    return (fast, fast_perm), (slow, slow_perm)


def _assert_same(a, b):
    assert a[0].tobytes() == b[0].tobytes()
    assert np.array_equal(a[1], b[1])


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 3),
    c=st.integers(1, 11),
    grid=st.sampled_from([(16, 16), (17, 16), (8, 40), (1, 256), (256, 1), (15, 18), (20, 20)]),
    kind=st.sampled_from(["normal", "integers", "float32", "rolled"]),
    prefix=st.integers(0, 1),
)
def test_fft_path_is_the_affinity_path_bit_for_bit(seed, n, c, grid, kind, prefix):
    rng = np.random.default_rng(seed)
    h, w = grid
    z = rng.normal(size=(n, c, h, w))
    if kind == "integers":  # exact scores, many ties between shifts
        z = np.round(z)
    elif kind == "float32":
        z = z.astype(np.float32)
    elif kind == "rolled":  # each map a rolled copy of the first
        z = np.stack([np.roll(z[0], shift=(3 * k, 5 * k), axis=(1, 2)) for k in range(n)])
    x = z.reshape(n, c, h * w).transpose(0, 2, 1)
    if prefix:
        x = np.concatenate([rng.normal(size=(n, 1, c)).astype(x.dtype), x], axis=1)
    fast, slow = _both_paths(x, layout="nsc", w=w, center=False, prefix_tokens=prefix)
    _assert_same(fast, slow)
    if not prefix:
        zc = z.astype(np.float64)
        np.testing.assert_allclose(fast[0], roll_oracle(zc, zc), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("threads", [1, 2])
def test_fft_path_ties_and_degenerate_maps(threads):
    rng = np.random.default_rng(3)
    constant = np.full((3, 4, 16, 16), 0.5)  # every shift ties: the zero shift wins
    zero_and_noise = np.concatenate([np.zeros((1, 4, 16, 16)), rng.normal(size=(2, 4, 16, 16))])
    stripes = np.tile(np.array([1.0, -0.25]), (3, 4, 16, 8))  # period 2 along W: pairs of ties
    tiny = rng.normal(size=(3, 4, 16, 16)) * 1e-150  # products near subnormal: every shift re-scored
    small = rng.normal(size=(3, 4, 16, 16)) * 1e-120  # the FFT on the maps scaled to 1
    huge = rng.normal(size=(3, 4, 16, 16)) * 1e140
    for z in (constant, zero_and_noise, stripes, tiny, small, huge):
        fast, slow = _both_paths(z, center=False, threads=threads)
        _assert_same(fast, slow)
    G, perm = semrsm.gram(constant, matcher="shift", center=False, return_permutations=True)
    assert np.array_equal(perm[0, 1], np.arange(256))


def test_fft_path_on_real_maps():
    from conftest import require_shared_file

    with np.load(require_shared_file("effnet_lite0_s64_to_s4096.npz")) as f:
        z = f["block4"][:3].astype(np.float64)  # (3, 40, 32, 32): S = 1024
    fast, slow = _both_paths(z)
    _assert_same(fast, slow)
    # A map and its circularly shifted copy: the shift is found, G is the copy's own norm.
    pair = np.stack([z[0], np.roll(z[0], shift=(5, 11), axis=(1, 2))])
    G, perm = semrsm.gram(pair, matcher="shift", center=False, return_permutations=True)
    assert G[0, 1] == pytest.approx(np.sum(z[0] ** 2), rel=1e-12)
    assert perm[0, 1, 0] == 5 * 32 + 11
