"""``prefix_tokens=k`` (timm's ``num_prefix_tokens``): the first k tokens (a ViT's CLS and
register tokens) are compared position by position, the other S - k are matched:
``G_ij = sum_{t<k} <x_i[t], y_j[t]> + max_P <x_i[k:], P y_j[k:]>``."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_data_dir
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment as scipy_lsa

import semrsm
from semrsm import OptionError
from semrsm.__main__ import main as cli_main

APPROX = [("none", {}), ("greedy", {}), ("topk_greedy", {"k": 2}), ("batch_optimal", {"b": 2}), ("auction", {})]


def oracle(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """scipy's LAP on the patch affinity plus the prefix dot products, inputs (N, S, C)."""
    G = np.empty((len(x), len(y)))
    for i, xi in enumerate(x):
        for j, yj in enumerate(y):
            a = xi[k:] @ yj[k:].T
            r, c = scipy_lsa(a, maximize=True)
            G[i, j] = np.sum(xi[:k] * yj[:k]) + a[r, c].sum()
    return G


def centred(x: np.ndarray, center) -> np.ndarray:
    if center is True:
        return x - x.mean(axis=0)
    if center == "channel":
        return x - x.mean(axis=(0, 1))
    return x


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 5),
    s=st.integers(2, 7),
    c=st.integers(1, 4),
    k=st.integers(0, 6),
    center=st.sampled_from([True, "channel", False]),
    rect=st.booleans(),
)
def test_exact_matches_the_scipy_oracle(seed, n, s, c, k, center, rect):
    k = min(k, s - 1)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, s, c))
    y = rng.normal(size=(n + 1, s, c)) if rect else None
    G, perm, bound = semrsm.gram(
        x, y, layout="nsc", center=center, prefix_tokens=k, return_permutations=True, return_bound=True
    )
    ref = x if y is None else y
    mean = (ref - centred(ref, center))[0]  # the reference set's mean (y's when given; 0 if False)
    xc, yc = x - mean, ref - mean
    expected = oracle(xc, yc, k)
    if y is None:  # the diagonal is ||x_i||², the identity being optimal
        np.fill_diagonal(expected, np.einsum("nsc,nsc->n", xc, xc))
    np.testing.assert_allclose(G, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(bound, G, rtol=1e-10, atol=1e-10)
    # The prefix maps to itself, the rest is a permutation of the patches, and G is its sum.
    assert np.array_equal(perm[:, :, :k], np.broadcast_to(np.arange(k), perm.shape[:2] + (k,)))
    assert np.array_equal(np.sort(perm, axis=2), np.broadcast_to(np.arange(s), perm.shape))
    via_perm = np.einsum("isc,ijsc->ij", xc, yc[np.arange(len(yc))[None, :, None], perm])
    np.testing.assert_allclose(G, via_perm, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("matcher,opts", APPROX + [("shift", {})])
def test_approximations_below_exact_below_bound(matcher, opts):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 1 + 9, 3))  # 1 CLS + a 3 x 3 grid of patches (shift's square grid)
    k = 1
    exact = semrsm.gram(x, layout="nsc", prefix_tokens=k)
    G, perm, bound = semrsm.gram(
        x, layout="nsc", matcher=matcher, prefix_tokens=k, return_permutations=True, return_bound=True, **opts
    )
    assert np.all(G <= exact + 1e-10)
    assert np.all(exact <= bound + 1e-10)
    assert np.all(perm[:, :, 0] == 0)
    assert np.all(perm[:, :, 1:] >= 1)
    if matcher == "none":  # position by position anyway: the prefix changes nothing
        np.testing.assert_allclose(G, semrsm.gram(x, layout="nsc", matcher="none"), rtol=1e-12, atol=1e-12)


def test_shift_grid_is_the_remaining_tokens():
    rng = np.random.default_rng(6)
    cls = rng.normal(size=(4, 1, 2))
    grid = rng.normal(size=(4, 2, 2, 2))  # N, C, H, W
    x = np.concatenate([cls, grid.reshape(4, 2, 4).transpose(0, 2, 1)], axis=1)
    G = semrsm.gram(x, layout="nsc", matcher="shift", prefix_tokens=1, center=False)
    patches = semrsm.gram(grid, matcher="shift", center=False)
    np.testing.assert_allclose(G, patches + np.einsum("nc,mc->nm", cls[:, 0], cls[:, 0]), rtol=1e-12)
    with pytest.raises(OptionError):  # w must divide S - k = 4
        semrsm.gram(x, layout="nsc", matcher="shift", prefix_tokens=1, w=3)


@pytest.mark.parametrize("matcher,opts", APPROX + [("exact", {})])
def test_k0_is_bit_identical_to_the_default(matcher, opts):
    x = np.random.default_rng(7).normal(size=(5, 6, 3))
    a = semrsm.gram(x, layout="nsc", matcher=matcher, return_permutations=True, return_bound=True, **opts)
    b = semrsm.gram(
        x, layout="nsc", matcher=matcher, return_permutations=True, return_bound=True, prefix_tokens=0, **opts
    )
    for u, v in zip(a, b):
        assert u.tobytes() == v.tobytes()


@pytest.mark.parametrize("center", [False, "channel"])
def test_patch_permutation_invariance_and_prefix_sensitivity(center):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(5, 7, 3))
    k = 2
    G = semrsm.gram(x, layout="nsc", center=center, prefix_tokens=k)
    shuffled = x.copy()
    shuffled[1, k:] = x[1, k + rng.permutation(7 - k)]
    np.testing.assert_allclose(semrsm.gram(shuffled, layout="nsc", center=center, prefix_tokens=k), G, rtol=1e-12)
    moved = x.copy()
    moved[1, [0, k + 1]] = x[1, [k + 1, 0]]  # a prefix token swapped into the patches
    changed = semrsm.gram(moved, layout="nsc", center=center, prefix_tokens=k)
    assert np.abs(changed - G).max() > 1e-3


def test_bit_identical_for_any_tile_and_thread_count():
    x = np.random.default_rng(9).normal(size=(9, 6, 3))
    y = np.random.default_rng(10).normal(size=(4, 6, 3))
    for yy in (None, y):
        ref = semrsm.gram(x, yy, layout="nsc", prefix_tokens=2, threads=1)
        for tile, threads in ((2, 1), (3, 2), (4, 3), (None, 2)):
            got = semrsm.gram(x, yy, layout="nsc", prefix_tokens=2, tile=tile, threads=threads)
            assert got.tobytes() == ref.tobytes()


def test_build_and_cli(tmp_path):
    x = np.random.default_rng(11).normal(size=(5, 6, 3))
    K = semrsm.build(x, layout="nsc", kernel="cosine", prefix_tokens=1)
    G = semrsm.gram(x, layout="nsc", prefix_tokens=1)
    d = np.sqrt(np.diag(G))
    np.testing.assert_allclose(K, G / np.outer(d, d), rtol=1e-12)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "K.npy"
    assert cli_main(["build", str(tmp_path / "x.npy"), "-o", str(out), "--layout", "nsc", "--prefix-tokens", "1"]) == 0
    np.testing.assert_array_equal(np.load(out), semrsm.build(x, layout="nsc", prefix_tokens=1))


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", None])
def test_bad_prefix_tokens(bad):
    with pytest.raises(OptionError, match="prefix_tokens"):
        semrsm.gram(np.ones((3, 4, 2)), layout="nsc", prefix_tokens=bad)


def test_prefix_tokens_must_leave_a_token_to_match():
    with pytest.raises(OptionError, match="S = 4"):
        semrsm.gram(np.ones((3, 4, 2)), layout="nsc", prefix_tokens=4)
    semrsm.gram(np.random.default_rng(0).normal(size=(3, 4, 2)), layout="nsc", prefix_tokens=3)


def test_real_vit_layer11_with_its_cls_token():
    folder = shared_data_dir()
    path = None if folder is None else folder / "vit_s14_shifted_pairs.npz"
    if path is None or not path.exists():
        pytest.skip("shared data folder absent")
    with np.load(path) as data:
        x = np.asarray(data["layer11"][:6], dtype=np.float64)  # (6, 257, 384); token 0 is CLS
    G = semrsm.gram(x, layout="nsc", prefix_tokens=1)
    xc = x - x.mean(axis=0)
    expected = oracle(xc, xc, 1)
    np.fill_diagonal(expected, np.einsum("nsc,nsc->n", xc, xc))
    np.testing.assert_allclose(G, expected, rtol=1e-9)
    free = semrsm.gram(x, layout="nsc")  # CLS matched like a patch: never lower
    assert np.all(G <= free + 1e-6 * np.abs(free).max())
    assert np.all(G >= semrsm.gram(x, layout="nsc", matcher="none") - 1e-6 * np.abs(free).max())


# --------------------------------------------------------------------------- the CKA functions and match_affinity


def _cka_oracle(K: np.ndarray, L: np.ndarray, debiased: bool) -> float:
    """CKA with numpy: explicit centring matrix (Gretton) or Song et al.'s estimator."""
    from test_minibatch_cka import song_hsic

    if debiased:
        return song_hsic(K, L) / np.sqrt(song_hsic(K, K) * song_hsic(L, L))
    n = len(K)
    H = np.eye(n) - 1.0 / n
    kl, kk, ll = (np.sum((H @ A @ H) * B) for A, B in ((K, L), (K, K), (L, L)))
    return float(kl / np.sqrt(kk * ll))


def _scipy_rsm(x: np.ndarray, k: int) -> np.ndarray:
    """The linear semantic RSM of (N, S, C) features with k prefix tokens: numpy + scipy."""
    xc = x - x.mean(axis=0)
    G = oracle(xc, xc, k)
    np.fill_diagonal(G, np.einsum("nsc,nsc->n", xc, xc))
    return G


@pytest.mark.parametrize("debiased", [False, True])
def test_layer_cka_with_prefix_tokens_against_scipy_and_build(debiased):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(9, 1 + 6, 4))  # 1 CLS + 6 patches
    x[:, 0] += 3.0 * rng.normal(size=(9, 4))  # a strong CLS token, so that matching it would win
    y = np.tanh(x[:, :, :3]) + 0.2 * rng.normal(size=(9, 7, 3))
    for prefixes in ((1, 1), (1, 0), (0, 2)):
        kw = {} if prefixes[0] != prefixes[1] else {"prefix_tokens": prefixes[0]}
        got = semrsm.layer_cka(
            x, y, layout="nsc", debiased=debiased, tile=4, prefix_tokens=kw.get("prefix_tokens", prefixes)
        )
        K = semrsm.build(x, layout="nsc", prefix_tokens=prefixes[0])
        L = semrsm.build(y, layout="nsc", prefix_tokens=prefixes[1])
        assert got == pytest.approx(semrsm.cka(K, L, debiased=debiased), rel=1e-10, abs=1e-12)
        expected = _cka_oracle(_scipy_rsm(x, prefixes[0]), _scipy_rsm(y, prefixes[1]), debiased)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # the prefix changes the value: it is not ignored
    assert semrsm.layer_cka(x, y, layout="nsc", prefix_tokens=1) != pytest.approx(
        semrsm.layer_cka(x, y, layout="nsc"), rel=1e-6
    )


def test_minibatch_cka_with_prefix_tokens_against_scipy_and_build():
    from test_minibatch_cka import song_hsic

    rng = np.random.default_rng(13)
    x = rng.normal(size=(12, 1 + 5, 3))
    x[:, 0] *= 4.0
    y = x[:, :, :2] ** 2 + 0.3 * rng.normal(size=(12, 6, 2))
    for prefix_tokens, (kx, ky) in ((1, (1, 1)), ((1, 0), (1, 0)), ([0, 2], (0, 2))):
        got = semrsm.minibatch_cka(x, y, 6, layout="nsc", prefix_tokens=prefix_tokens)
        sums = np.zeros(3)
        xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)  # the whole input's mean
        for b in (slice(0, 6), slice(6, 12)):
            K = oracle(xc[b], xc[b], kx)
            L = oracle(yc[b], yc[b], ky)
            np.fill_diagonal(K, np.einsum("nsc,nsc->n", xc[b], xc[b]))
            np.fill_diagonal(L, np.einsum("nsc,nsc->n", yc[b], yc[b]))
            sums += (song_hsic(K, L), song_hsic(K, K), song_hsic(L, L))
        assert got == pytest.approx(sums[0] / np.sqrt(sums[1] * sums[2]), rel=1e-9)
    # streamed batches take it too
    pairs = [(x[:6] - x.mean(axis=0), y[:6] - y.mean(axis=0))]
    streamed = semrsm.minibatch_cka(pairs, layout="nsc", center=False, prefix_tokens=(1, 0))
    K = semrsm.build(pairs[0][0], layout="nsc", center=False, prefix_tokens=1)
    L = semrsm.build(pairs[0][1], layout="nsc", center=False)
    assert streamed == pytest.approx(semrsm.cka(K, L, debiased=True), rel=1e-10)


@pytest.mark.parametrize("bad", [-1, (1,), (1, 2, 3), (1, -1), (0.5, 1), "1", True])
def test_cka_functions_check_prefix_tokens(bad):
    x = np.random.default_rng(0).normal(size=(8, 4, 2))
    with pytest.raises(OptionError, match=r"prefix_tokens must be an int >= 0 .* or a pair"):
        semrsm.layer_cka(x, x, layout="nsc", prefix_tokens=bad)
    with pytest.raises(OptionError, match=r"prefix_tokens must be an int >= 0 .* or a pair"):
        semrsm.minibatch_cka(x, x, 4, layout="nsc", prefix_tokens=bad)
    with pytest.raises(OptionError, match=r"S = 4"):
        semrsm.layer_cka(x, x, layout="nsc", prefix_tokens=(0, 4))
    with pytest.raises(OptionError, match=r"S = 4 of y"):
        semrsm.minibatch_cka(x, x, 4, layout="nsc", prefix_tokens=(0, 4))


@given(seed=st.integers(0, 2**31 - 1), s=st.integers(2, 8), k=st.integers(0, 7))
def test_match_affinity_with_prefix_tokens_against_scipy(seed, s, k):
    k = min(k, s - 1)
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(s, 3)), rng.normal(size=(s, 3))
    a = x @ y.T
    perm, value, bound = semrsm.match_affinity(a, prefix_tokens=k, return_bound=True)
    r, c = scipy_lsa(a[k:, k:], maximize=True)
    expected = np.trace(a[:k, :k]) + a[k:, k:][r, c].sum()
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert bound == pytest.approx(value, rel=1e-12, abs=1e-12)
    assert np.array_equal(perm[:k], np.arange(k)) and np.array_equal(np.sort(perm), np.arange(s))
    assert value == pytest.approx(a[np.arange(s), perm].sum(), rel=1e-12, abs=1e-12)
    # the same as gram's pair value (the affinity of the two samples)
    g = semrsm.gram(x[None], y[None], layout="nsc", center=False, prefix_tokens=k)[0, 0]
    assert value == pytest.approx(g, rel=1e-10, abs=1e-10)
    # approximations: value <= exact <= bound, prefix kept in place
    nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    for matcher, opts in APPROX:
        p, v, b = semrsm.match_affinity(a, nx, ny, matcher=matcher, prefix_tokens=k, return_bound=True, **opts)
        assert np.array_equal(p[:k], np.arange(k))
        assert v <= expected + 1e-10 and expected <= b + 1e-10


def test_match_affinity_prefix_errors():
    a = np.eye(3)
    with pytest.raises(OptionError, match=r"S = 3"):
        semrsm.match_affinity(a, prefix_tokens=3)
    with pytest.raises(OptionError, match="prefix_tokens"):
        semrsm.match_affinity(a, prefix_tokens=-1)
    bad = np.eye(3)
    bad[0, 2] = np.nan  # outside the matched block: still an error, with its index
    with pytest.raises(semrsm.NonFiniteError, match=r"\(0, 2\)"):
        semrsm.match_affinity(bad, prefix_tokens=1)
    with pytest.raises(semrsm.NonFiniteError, match=r"1e\+300"):
        semrsm.match_affinity(np.diag([1e301, 1.0, 1.0]), prefix_tokens=1)
