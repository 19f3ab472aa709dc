"""semrsm.layer_cka: the exact CKA of the full RSMs accumulated tile by tile, against numpy
oracles (explicit centring matrices; Song et al.'s estimator) and against cka(build, build)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import semrsm
from conftest import SEEDS as seeds, make
from semrsm import OptionError, SemrsmError, ShapeError
from test_minibatch_cka import song_hsic


def gretton_cka(K: np.ndarray, L: np.ndarray) -> float:
    """tr(K H L H) / sqrt(tr(K H K H) tr(L H L H)) with the explicit centring matrix H."""
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    kl, kk, ll = (np.trace(A @ H @ B @ H) for A, B in ((K, L), (K, K), (L, L)))
    return float(kl / np.sqrt(kk * ll))


def song_cka(K: np.ndarray, L: np.ndarray) -> float:
    return song_hsic(K, L) / np.sqrt(song_hsic(K, K) * song_hsic(L, L))


KERNEL_ARGS = {"linear": {}, "cosine": {}, "rbf": {"sigma": 3.0}}


@given(
    seeds,
    st.sampled_from(["normal", "offset", "relu"]),
    st.integers(4, 13),
    st.sampled_from(["exact", "none", "greedy", "auction"]),
    st.sampled_from(sorted(KERNEL_ARGS)),
    st.booleans(),
    st.integers(1, 14),
)
def test_equals_cka_of_the_full_rsms_and_the_numpy_oracle(seed, kind, n, matcher, kernel, debiased, tile):
    rng = np.random.default_rng(seed)
    x = make(rng, kind, (n, 4, 3))
    y = np.tanh(make(rng, kind, (n, 5, 2)))
    kw = dict(kernel=kernel, matcher=matcher, layout="nsc", **KERNEL_ARGS[kernel])
    K, L = semrsm.build(x, **kw), semrsm.build(y, **kw)
    try:
        full = semrsm.cka(K, L, debiased=debiased)
    except SemrsmError:
        with pytest.raises(SemrsmError):
            semrsm.layer_cka(x, y, debiased=debiased, tile=tile, **kw)
        return
    got = semrsm.layer_cka(x, y, debiased=debiased, tile=tile, **kw)
    assert got == pytest.approx(full, rel=1e-10, abs=1e-10)
    oracle = song_cka(K, L) if debiased else gretton_cka(K, L)
    assert got == pytest.approx(oracle, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("matcher", ["exact", "none"])
def test_real_layers(shifted_pairs, matcher, debiased):
    x, y = shifted_pairs["block10"], shifted_pairs["block15"]
    full = semrsm.cka(semrsm.build(x, matcher=matcher), semrsm.build(y, matcher=matcher), debiased=debiased)
    for tile in (3, 7, None):
        got = semrsm.layer_cka(x, y, matcher=matcher, debiased=debiased, tile=tile)
        assert got == pytest.approx(full, rel=1e-10, abs=1e-10)


def test_paths_and_a_different_tile_each_time(tmp_path):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(15, 3, 2, 2)), rng.normal(size=(15, 2, 3, 1))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    want = semrsm.layer_cka(x, y, debiased=True)
    assert semrsm.layer_cka(str(tmp_path / "x.npy"), tmp_path / "y.npy", debiased=True) == pytest.approx(want, rel=1e-12)


def test_never_holds_an_n_by_n_matrix():
    """N = 3000: one N x N float64 matrix is 72 MB; the Python side of layer_cka stays far below
    (tiles of 200 rows: 0.3 MB each). tracemalloc sees numpy's allocations."""
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=(n, 2, 2, 2)).astype(np.float32)
    y = (x[:, :1] ** 2 + rng.normal(size=(n, 1, 2, 2))).astype(np.float32)
    tracemalloc.start()
    try:
        value = semrsm.layer_cka(x, y, matcher="none", tile=200, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * n * n / 8, peak  # under 1/8 of one RSM
    xs, ys = x.reshape(n, -1).astype(np.float64), y.reshape(n, -1).astype(np.float64)
    xs, ys = xs - xs.mean(0), ys - ys.mean(0)
    # linear CKA of centred features: ||ysᵀ xs||² / (||xsᵀ xs|| ||ysᵀ ys||) (Kornblith et al., eq. 4)
    oracle = np.linalg.norm(ys.T @ xs) ** 2 / (np.linalg.norm(xs.T @ xs) * np.linalg.norm(ys.T @ ys))
    assert value == pytest.approx(oracle, rel=1e-9)


X = np.random.default_rng(0).normal(size=(8, 3, 2))


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: semrsm.layer_cka(X, X, kernel="rbf", layout="nsc"), OptionError, r"needs a numeric sigma"),
        (lambda: semrsm.layer_cka(X, X, kernel="rbf", sigma="median", layout="nsc"), OptionError, r"needs a numeric sigma"),
        (lambda: semrsm.layer_cka(X, X, kernel="linear", sigma=1.0, layout="nsc"), OptionError, r"sigma only applies"),
        (lambda: semrsm.layer_cka(X, X[:7], layout="nsc"), ShapeError, r"8 samples in x, 7 in y"),
        (lambda: semrsm.layer_cka(X[:3], X[:3], layout="nsc", debiased=True), ShapeError, r"n >= 4"),
        (lambda: semrsm.layer_cka(X, np.ones((8, 3, 2)), layout="nsc"), SemrsmError, r"CKA is undefined"),
        (lambda: semrsm.layer_cka(X, X, layout="nsc", kernal="rbf"), OptionError, r"kernal"),
        (lambda: semrsm.layer_cka(X, X, layout="nsc", debiased="yes"), OptionError, r"debiased must be True or False"),
        (lambda: semrsm.layer_cka(X, X, layout="nsc", tile=0), OptionError, r"tile must be"),
    ],
)
def test_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
