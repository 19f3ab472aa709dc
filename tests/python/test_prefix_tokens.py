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
