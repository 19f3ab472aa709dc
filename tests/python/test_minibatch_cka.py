"""semrsm.minibatch_cka (Nguyen et al., 2021) against a numpy re-implementation written here from
the definitions: Song et al.'s unbiased HSIC, consecutive batches, whole-input centring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import semrsm
from conftest import SEEDS as seeds, make, ref_gram
from semrsm import OptionError, SemrsmError, ShapeError


def song_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """Unbiased HSIC (Song et al., 2012, eq. 5), term by term with explicit loops-free sums."""
    n = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    ones = np.ones(n)
    term1 = np.trace(Kt @ Lt)
    term2 = (ones @ Kt @ ones) * (ones @ Lt @ ones) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (ones @ Kt @ Lt @ ones)
    return float((term1 + term2 - term3) / (n * (n - 3)))


def oracle_kernel(v: np.ndarray, kernel: str, matcher: str) -> np.ndarray:
    """RSM of already centred (N, S, C) data: scipy's matched inner products, then the kernel."""
    G = ref_gram(v, matcher=matcher)
    if kernel == "linear":
        return G
    sq = np.einsum("nsc,nsc->n", v, v)
    if kernel == "cosine":
        return np.clip(G / np.sqrt(np.outer(sq, sq)), -1, 1)
    raise AssertionError(kernel)


def oracle_minibatch(x, y, b, kernel="linear", matcher="exact", whole_mean=True):
    n = x.shape[0]
    mx, my = x.mean(axis=0), y.mean(axis=0)
    sums = np.zeros(3)
    for start in range(0, n, b):
        xb, yb = x[start : start + b], y[start : start + b]
        if xb.shape[0] < 4:
            break
        if whole_mean:
            xb, yb = xb - mx, yb - my
        else:
            xb, yb = xb - xb.mean(axis=0), yb - yb.mean(axis=0)
        K, L = oracle_kernel(xb, kernel, matcher), oracle_kernel(yb, kernel, matcher)
        sums += (song_hsic(K, L), song_hsic(K, K), song_hsic(L, L))
    return sums[0] / np.sqrt(sums[1] * sums[2])


def _pair(seed, kind, n, s=4, c=3):
    rng = np.random.default_rng(seed)
    x = make(rng, kind, (n, s, c))
    y = np.tanh(x) + 0.5 * make(rng, kind, (n, s, c))
    return x, y


@given(seeds, st.sampled_from(["normal", "offset", "relu"]), st.integers(8, 17), st.integers(4, 7),
       st.sampled_from(["exact", "none"]), st.sampled_from(["linear", "cosine"]))
def test_matches_numpy_oracle(seed, kind, n, b, matcher, kernel):
    x, y = _pair(seed, kind, n)
    got = semrsm.minibatch_cka(x, y, b, kernel=kernel, matcher=matcher, layout="nsc")
    assert got == pytest.approx(oracle_minibatch(x, y, b, kernel, matcher), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("n, b, used", [(10, 4, 8), (11, 4, 8), (12, 5, 10), (13, 5, 10), (14, 5, 14), (9, 5, 9), (8, 8, 8)])
def test_last_batch_kept_only_with_four_rows(n, b, used):
    x, y = _pair(1, "normal", n)
    got = semrsm.minibatch_cka(x, y, b, layout="nsc")
    assert got == pytest.approx(oracle_minibatch(x, y, b), rel=1e-10)
    # the rows after `used` do not matter (dropped), but the whole-input mean still uses them:
    # replacing them changes the value only through the mean
    if used < n:
        x2 = x.copy()
        x2[used:] = x2[used:][::-1]  # same mean, different dropped rows
        assert semrsm.minibatch_cka(x2, y, b, layout="nsc") == pytest.approx(got, rel=1e-12)


def test_one_batch_is_the_debiased_cka_of_the_full_rsms(shifted_pairs):
    x, y = shifted_pairs["block10"], shifted_pairs["block15"]
    for matcher in ("exact", "none"):
        full = semrsm.cka(semrsm.build(x, matcher=matcher), semrsm.build(y, matcher=matcher), debiased=True)
        assert semrsm.minibatch_cka(x, y, 20, matcher=matcher) == pytest.approx(full, rel=1e-10)
        assert semrsm.minibatch_cka(x, y, 64, matcher=matcher) == pytest.approx(full, rel=1e-10)


def test_whole_input_mean_not_the_batch_mean():
    """With semantic matching the centring changes the matched permutations: the whole-input mean
    (arrays) and each batch's own mean (streamed batches) give different values."""
    x, y = _pair(7, "offset", 16)
    whole = semrsm.minibatch_cka(x, y, 8, layout="nsc")
    per_batch = semrsm.minibatch_cka(((x[i : i + 8], y[i : i + 8]) for i in (0, 8)), layout="nsc")
    assert whole == pytest.approx(oracle_minibatch(x, y, 8, whole_mean=True), rel=1e-10)
    assert per_batch == pytest.approx(oracle_minibatch(x, y, 8, whole_mean=False), rel=1e-10)
    assert abs(whole - per_batch) > 1e-6


def test_streamed_pairs_equal_arrays_without_centring():
    x, y = _pair(3, "normal", 14)
    arrays = semrsm.minibatch_cka(x, y, 5, layout="nsc", center=False, kernel="rbf", sigma="kornblith")
    streamed = semrsm.minibatch_cka(
        iter([(x[0:5], y[0:5]), (x[5:10], y[5:10]), (x[10:14], y[10:14])]),
        layout="nsc", center=False, kernel="rbf", sigma="kornblith",
    )
    assert arrays == pytest.approx(streamed, rel=1e-14)
    # a last streamed batch of fewer than 4 rows is left out, like an array's
    with_tail = semrsm.minibatch_cka(
        [(x[0:5], y[0:5]), (x[5:10], y[5:10]), (x[10:13], y[10:13])], layout="nsc", center=False, kernel="rbf", sigma="kornblith"
    )
    two = semrsm.minibatch_cka([(x[0:5], y[0:5]), (x[5:10], y[5:10])], layout="nsc", center=False, kernel="rbf", sigma="kornblith")
    assert with_tail == two


def test_paths_and_memmaps_equal_arrays(tmp_path: Path):
    x, y = _pair(5, "normal", 12)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    want = semrsm.minibatch_cka(x, y, 6, layout="nsc")
    assert semrsm.minibatch_cka(str(tmp_path / "x.npy"), tmp_path / "y.npy", 6, layout="nsc") == want
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert semrsm.minibatch_cka(xm, y, 6, layout="nsc") == want


def test_float16_features_as_in_the_shared_data():
    x, y = _pair(6, "normal", 12, s=9, c=4)
    x16, y16 = x.astype(np.float16), y.astype(np.float16)
    got = semrsm.minibatch_cka(x16, y16, 6, layout="nsc")
    want = oracle_minibatch(x16.astype(np.float64), y16.astype(np.float64), 6)
    assert got == pytest.approx(want, rel=1e-9)


X, Y = _pair(0, "normal", 10)


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: semrsm.minibatch_cka(X, Y, 3, layout="nsc"), OptionError, r"batch_size must be an integer >= 4"),
        (lambda: semrsm.minibatch_cka(X, Y, 4.5, layout="nsc"), OptionError, r"batch_size must be an integer"),
        (lambda: semrsm.minibatch_cka(X, Y, True, layout="nsc"), OptionError, r"batch_size must be an integer"),
        (lambda: semrsm.minibatch_cka(X, Y, None, layout="nsc"), OptionError, r"batch_size"),
        (lambda: semrsm.minibatch_cka(X, Y[:9], 4, layout="nsc"), ShapeError, r"10 samples in x, 9 in y"),
        (lambda: semrsm.minibatch_cka(X[:3], Y[:3], 4, layout="nsc"), ShapeError, r"at least 4 samples"),
        (lambda: semrsm.minibatch_cka(X, layout="nsc"), OptionError, r"y is missing"),
        (lambda: semrsm.minibatch_cka([(X, Y)], batch_size=4, layout="nsc"), OptionError, r"batch_size applies to arrays"),
        (lambda: semrsm.minibatch_cka([(X[:3], Y[:3]), (X, Y)], layout="nsc"), ShapeError, r"batch 0 has fewer than 4 inputs but is not the last"),
        (lambda: semrsm.minibatch_cka([(X, Y[:5])], layout="nsc"), ShapeError, r"batch 0: x_batch and y_batch must hold the same inputs"),
        (lambda: semrsm.minibatch_cka([X], layout="nsc"), ShapeError, r"batch 0 must be a pair"),
        (lambda: semrsm.minibatch_cka([], layout="nsc"), ShapeError, r"no batch of at least 4 inputs"),
        (lambda: semrsm.minibatch_cka("x.npz", "y.npz", 4), OptionError, r"only \.npy paths"),
        (lambda: semrsm.minibatch_cka(X, Y, 4, layout="nsc", center="yes"), OptionError, r"center must be True, False or 'channel'"),
        (lambda: semrsm.minibatch_cka(X, Y, 4, layout="nsc", kernal="rbf"), OptionError, r"kernal"),
        (lambda: semrsm.minibatch_cka(np.ones((8, 2, 2)), np.ones((8, 2, 2)), 4, layout="nsc", center=False), SemrsmError, r"minibatch CKA is undefined"),
    ],
)
def test_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
