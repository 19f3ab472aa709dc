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
