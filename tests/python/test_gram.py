"""Tests for semrsm.gram: matched inner products G[i, j] = max_P <x_i, P y_j>.

The reference oracle is scipy's linear_sum_assignment on the affinity A = x_i y_j^T of each pair
(and, for small S, a brute force over all S! permutations).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import semrsm
from conftest import SEEDS as seeds, make, ref_gram, require_shared_file

n_samples = st.integers(min_value=1, max_value=6)
n_positions = st.integers(min_value=1, max_value=12)
n_channels = st.integers(min_value=1, max_value=5)
kinds = st.sampled_from(["normal", "ties", "offset"])


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def brute_gram(x, y=None):
    """Brute force over all S! permutations."""
    y = x if y is None else y
    s = x.shape[1]
    perms = np.array(list(itertools.permutations(range(s))))
    rows = np.arange(s)
    G = np.empty((x.shape[0], y.shape[0]))
    for i, xi in enumerate(x):
        for j, yj in enumerate(y):
            A = xi @ yj.T
            G[i, j] = A[rows, perms].sum(axis=1).max()
    return G


def norm_scale(x, y=None):
    """max_i,j ||x_i|| ||y_j||, an upper bound on |G| (Cauchy-Schwarz), at least 1."""
    y = x if y is None else y
    nx = np.sqrt(np.einsum("nsc,nsc->n", x, x))
    ny = np.sqrt(np.einsum("nsc,nsc->n", y, y))
    return max(1.0, float(nx.max() * ny.max()))


def assert_close(actual, expected, rtol, scale):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


@st.composite
def problems(draw, min_n=1, max_s=12, rectangular=None):
    """(x, y) in (N, S, C) layout; y is None for a square problem."""
    seed = draw(seeds)
    kind = draw(kinds)
    n = draw(st.integers(min_value=min_n, max_value=6))
    s = draw(st.integers(min_value=1, max_value=max_s))
    c = draw(n_channels)
    rect = draw(st.booleans()) if rectangular is None else rectangular
    rng = np.random.default_rng(seed)
    x = make(rng, kind, (n, s, c))
    y = None
    if rect:
        m = draw(st.integers(min_value=min_n, max_value=6))
        y = make(rng, kind, (m, s, c))
    return x, y


# ----------------------------------------------------------------------------
# 1. agreement with the scipy oracle and brute force
# ----------------------------------------------------------------------------


@given(problems())
def test_exact_matches_scipy_uncentred(problem):
    x, y = problem
    G = semrsm.gram(x, y, matcher="exact", center=False, layout="nsc")
    expected = ref_gram(x, y)
    assert G.shape == expected.shape
    assert G.dtype == np.float64
    assert_close(G, expected, 1e-9, norm_scale(x, y))


@given(problems(min_n=2))
def test_exact_matches_scipy_centred(problem):
    x, y = problem
    G = semrsm.gram(x, y, matcher="exact", center=True, layout="nsc")
    if y is None:
        xc, yc = x - x.mean(axis=0), None
    else:
        mean = y.mean(axis=0)
        xc, yc = x - mean, y - mean
    assert_close(G, ref_gram(xc, yc), 1e-9, norm_scale(xc, yc))


@given(problems(max_s=6))
def test_exact_matches_brute_force(problem):
    x, y = problem
    G = semrsm.gram(x, y, matcher="exact", center=False, layout="nsc")
    assert_close(G, brute_gram(x, y), 1e-9, norm_scale(x, y))


def test_known_small_example():
    # y_1 is x_0 with its two positions swapped: matched, the inner product is 1 + 4.
    x = np.array([[[1.0], [2.0]], [[2.0], [1.0]]])
    G = semrsm.gram(x, center=False, layout="nsc")
    np.testing.assert_array_equal(G, [[5.0, 5.0], [5.0, 5.0]])
    G0 = semrsm.gram(x, center=False, layout="nsc", matcher="none")
    np.testing.assert_array_equal(G0, [[5.0, 4.0], [4.0, 5.0]])


# ----------------------------------------------------------------------------
# 2. real representations
# ----------------------------------------------------------------------------

# a photo and its shifted crop, plus others
_ROWS = [0, 10, 3, 13, 5, 7]


@pytest.mark.parametrize("key", ["block15", "block10"])
def test_exact_matches_scipy_on_bundled_data(shifted_pairs, key):
    z = shifted_pairs[key][_ROWS]  # (6, C, H, W) float32
    n, c, h, w = z.shape
    xs = z.astype(np.float64).transpose(0, 2, 3, 1).reshape(n, h * w, c)
    G = semrsm.gram(z, center=False)
    assert_close(G, ref_gram(xs), 1e-9, norm_scale(xs))
    Gc = semrsm.gram(z, center=True)
    xc = xs - xs.mean(axis=0)
    assert_close(Gc, ref_gram(xc), 1e-9, norm_scale(xc))
    # rectangular: the first 3 against the last 3 (centred with y's mean)
    Gr = semrsm.gram(z[:3], z[3:], center=True)
    mean = xs[3:].mean(axis=0)
    assert_close(Gr, ref_gram(xs[:3] - mean, xs[3:] - mean), 1e-9, norm_scale(xs - mean))


@pytest.mark.parametrize("key", ["block10", "block10_dw"])
def test_exact_matches_scipy_on_shared_data(key):
    path = require_shared_file("effnet_lite0_s64_to_s4096.npz")
    with np.load(path) as archive:
        z = archive[key][:4]  # (4, C, 16, 16): S = 256
    n, c, h, w = z.shape
    assert h * w == 256
    xs = z.astype(np.float64).transpose(0, 2, 3, 1).reshape(n, h * w, c)
    G = semrsm.gram(z, center=False)
    assert_close(G, ref_gram(xs), 1e-9, norm_scale(xs))


# ----------------------------------------------------------------------------
# 3. invariances and inequalities
# ----------------------------------------------------------------------------


@given(problems(), seeds)
def test_permuting_one_sample_leaves_gram_unchanged(problem, seed):
    x, y = problem
    rng = np.random.default_rng(seed)
    G = semrsm.gram(x, y, center=False, layout="nsc")
    scale = norm_scale(x, y)
    xp = x.copy()
    k = int(rng.integers(x.shape[0]))
    xp[k] = xp[k][rng.permutation(x.shape[1])]
    assert_close(semrsm.gram(xp, y, center=False, layout="nsc"), G, 1e-9, scale)
    if y is not None:
        yp = y.copy()
        k = int(rng.integers(y.shape[0]))
        yp[k] = yp[k][rng.permutation(y.shape[1])]
        assert_close(semrsm.gram(x, yp, center=False, layout="nsc"), G, 1e-9, scale)


@given(problems(min_n=2), seeds)
def test_permuting_all_samples_alike_leaves_centred_gram_unchanged(problem, seed):
    x, y = problem
    perm = np.random.default_rng(seed).permutation(x.shape[1])
    G = semrsm.gram(x, y, center=True, layout="nsc")
    yp = None if y is None else y[:, perm]
    Gp = semrsm.gram(x[:, perm], yp, center=True, layout="nsc")
    assert_close(Gp, G, 1e-9, norm_scale(x, y))


@given(problems())
def test_semantic_at_least_spatio_semantic(problem):
    x, y = problem
    for center in (False, True):
        if center and (y if y is not None else x).shape[0] < 2:
            continue
        G = semrsm.gram(x, y, matcher="exact", center=center, layout="nsc")
        G0 = semrsm.gram(x, y, matcher="none", center=center, layout="nsc")
        assert np.all(G >= G0 - 1e-12 * norm_scale(x, y))


@given(problems())
def test_none_is_flattened_inner_product(problem):
    x, y = problem
    yy = x if y is None else y
    G0 = semrsm.gram(x, y, matcher="none", center=False, layout="nsc")
    expected = x.reshape(x.shape[0], -1) @ yy.reshape(yy.shape[0], -1).T
    assert_close(G0, expected, 1e-12, norm_scale(x, y))


@given(problems(rectangular=False))
def test_square_symmetric_and_diagonal(problem):
    x, _ = problem
    sq = np.einsum("nsc,nsc->n", x, x)
    for matcher in ("exact", "none"):
        G = semrsm.gram(x, matcher=matcher, center=False, layout="nsc")
        assert np.array_equal(G, G.T)
        assert_close(np.diag(G), sq, 1e-12, norm_scale(x))


@given(problems(rectangular=True))
def test_rectangular_is_block_of_square(problem):
    x, y = problem
    n = x.shape[0]
    for matcher in ("exact", "none"):
        G = semrsm.gram(x, y, matcher=matcher, center=False, layout="nsc")
        full = semrsm.gram(np.concatenate([x, y]), matcher=matcher, center=False, layout="nsc")
        assert_close(G, full[:n, n:], 1e-12, norm_scale(x, y))


@pytest.mark.parametrize("matcher", ["exact", "none"])
def test_threads_bit_identical(matcher):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(9, 20, 6))  # 45 pairs in the square case
    y = rng.normal(size=(5, 20, 6))  # 45 pairs in the rectangular case
    for yy in (None, y):
        a = semrsm.gram(x, yy, matcher=matcher, layout="nsc", threads=1)
        b = semrsm.gram(x, yy, matcher=matcher, layout="nsc", threads=2)
        c = semrsm.gram(x, yy, matcher=matcher, layout="nsc")
        assert np.array_equal(a, b)
        assert np.array_equal(a, c)
    pa = semrsm.gram(x, matcher=matcher, layout="nsc", threads=1, return_permutations=True)
    pb = semrsm.gram(x, matcher=matcher, layout="nsc", threads=2, return_permutations=True)
    assert np.array_equal(pa[0], pb[0])
    assert np.array_equal(pa[1], pb[1])


# ----------------------------------------------------------------------------
# 4. permutations
# ----------------------------------------------------------------------------


def _check_permutations(x, y, G, perm, scale):
    yy = x if y is None else y
    n, s, _ = x.shape
    m = yy.shape[0]
    assert perm.shape == (n, m, s)
    assert perm.dtype == np.int64
    identity = np.arange(s)
    for i in range(n):
        for j in range(m):
            p = perm[i, j]
            assert np.array_equal(np.sort(p), identity)
            value = np.einsum("sc,sc->", x[i], yy[j][p])
            assert_close(value, G[i, j], 1e-12, scale)
            if y is None:
                inverse = np.empty(s, dtype=np.int64)
                inverse[p] = identity
                assert np.array_equal(perm[j, i], inverse)


@given(problems())
def test_return_permutations_exact(problem):
    x, y = problem
    G, perm = semrsm.gram(x, y, center=False, layout="nsc", return_permutations=True)
    assert np.array_equal(G, semrsm.gram(x, y, center=False, layout="nsc"))
    _check_permutations(x, y, G, perm, norm_scale(x, y))


@pytest.mark.parametrize("s", [2, 3, 5, 8])
def test_return_permutations_with_heavy_ties(s):
    # every position alike (and an all-zero sample): every permutation is optimal
    x = np.concatenate([np.ones((2, s, 2)), np.zeros((1, s, 2))])
    x[1] *= -1.0
    G, perm = semrsm.gram(x, center=False, layout="nsc", return_permutations=True)
    _check_permutations(x, None, G, perm, norm_scale(x))


def test_return_permutations_diagonal_with_ties():
    # positions 1-3 of the second sample are equal, so a 3-cycle is an optimal self-matching;
    # perm[i, i] must still be a valid permutation (its own inverse, e.g. the identity).
    x = np.array([[2.0, 1.0, 0.0, -1.0], [-1.0, -2.0, -2.0, -2.0]]).reshape(2, 4, 1)
    for xx in (x, x[1:]):
        G, perm = semrsm.gram(xx, center=False, layout="nsc", return_permutations=True)
        _check_permutations(xx, None, G, perm, norm_scale(xx))


@given(problems())
def test_return_permutations_none_is_identity(problem):
    x, y = problem
    G, perm = semrsm.gram(x, y, matcher="none", center=False, layout="nsc", return_permutations=True)
    m = (x if y is None else y).shape[0]
    expected = np.broadcast_to(np.arange(x.shape[1]), (x.shape[0], m, x.shape[1]))
    assert perm.shape == expected.shape
    assert perm.dtype == np.int64
    assert np.array_equal(perm, expected)
    assert np.array_equal(G, semrsm.gram(x, y, matcher="none", center=False, layout="nsc"))


# ----------------------------------------------------------------------------
# 5. precision
# ----------------------------------------------------------------------------


@given(problems())
def test_float32_precision_close(problem):
    x, y = problem
    for matcher in ("exact", "none"):
        G64 = semrsm.gram(x, y, matcher=matcher, center=False, layout="nsc")
        G32 = semrsm.gram(x, y, matcher=matcher, center=False, layout="nsc", precision="float32")
        assert G32.dtype == np.float64
        scale = norm_scale(x, y)
        assert_close(G32, G64, 1e-4, scale)
        if matcher == "exact":
            assert np.all(G32 <= G64 + 1e-4 * scale)


# ----------------------------------------------------------------------------
# 6. layouts and input types
# ----------------------------------------------------------------------------


@given(seeds, n_samples, st.integers(1, 4), st.integers(1, 4), n_channels)
def test_layouts_agree(seed, n, h, w, c):
    rng = np.random.default_rng(seed)
    nchw = rng.normal(size=(n, c, h, w))
    nhwc = nchw.transpose(0, 2, 3, 1).copy()
    nsc = nhwc.reshape(n, h * w, c)
    ncs = nsc.transpose(0, 2, 1).copy()
    for matcher in ("exact", "none"):
        for center in (False, True) if n >= 2 else (False,):
            kw = dict(matcher=matcher, center=center)
            ref = semrsm.gram(nsc, layout="nsc", **kw)
            assert np.array_equal(semrsm.gram(nchw, layout="nchw", **kw), ref)
            assert np.array_equal(semrsm.gram(nhwc, layout="nhwc", **kw), ref)
            assert np.array_equal(semrsm.gram(ncs, layout="ncs", **kw), ref)
            # auto: 4-D is nchw, 3-D is nsc
            assert np.array_equal(semrsm.gram(nchw, **kw), ref)
            assert np.array_equal(semrsm.gram(nsc, **kw), ref)
            assert np.array_equal(semrsm.gram(nsc, layout="auto", **kw), ref)
            # rectangular (y's mean is used for centring, so y needs 2 samples then)
            k = 2 if center else 1
            ref_r = semrsm.gram(nsc, nsc[:k], layout="nsc", **kw)
            assert np.array_equal(semrsm.gram(nchw, nchw[:k], **kw), ref_r)
            assert np.array_equal(semrsm.gram(nhwc, nhwc[:k], layout="nhwc", **kw), ref_r)
            assert np.array_equal(semrsm.gram(ncs, ncs[:k], layout="ncs", **kw), ref_r)


def test_auto_layout_is_not_ncs():
    # 3-D input is (N, S, C) under "auto": a (N, C, S) array is read with C and S swapped.
    rng = np.random.default_rng(3)
    ncs = rng.normal(size=(4, 3, 7))
    via_ncs = semrsm.gram(ncs, layout="ncs", center=False)
    via_auto = semrsm.gram(ncs, center=False)
    np.testing.assert_array_equal(via_auto, semrsm.gram(ncs, layout="nsc", center=False))
    np.testing.assert_array_equal(
        via_ncs, semrsm.gram(ncs.transpose(0, 2, 1), layout="nsc", center=False)
    )


def test_accepts_ints_float32_lists():
    rng = np.random.default_rng(11)
    xi = rng.integers(-3, 4, size=(4, 5, 3))
    xf = xi.astype(np.float64)
    for matcher in ("exact", "none"):
        ref = semrsm.gram(xf, matcher=matcher)
        for variant in (xi, xi.astype(np.int32), xi.astype(np.int8), xi.astype(np.float32), xi.tolist()):
            assert np.array_equal(semrsm.gram(variant, matcher=matcher), ref)
        xu = (xi + 3).astype(np.uint8)
        assert np.array_equal(
            semrsm.gram(xu, matcher=matcher), semrsm.gram(xu.astype(np.float64), matcher=matcher)
        )
    # float32 data is converted to float64 exactly
    x32 = rng.normal(size=(4, 5, 3)).astype(np.float32)
    assert np.array_equal(semrsm.gram(x32), semrsm.gram(x32.astype(np.float64)))
    # a y given as a list
    assert np.array_equal(semrsm.gram(xf, xi[:2].tolist()), semrsm.gram(xf, xf[:2]))


def test_accepts_memory_mapped_npy(tmp_path):
    rng = np.random.default_rng(12)
    for dtype in (np.float64, np.float32):
        x = rng.normal(size=(5, 3, 2, 2)).astype(dtype)
        path = tmp_path / f"x_{np.dtype(dtype).name}.npy"
        np.save(path, x)
        mm = np.load(path, mmap_mode="r")
        assert isinstance(mm, np.memmap)
        for center in (False, True):
            for matcher in ("exact", "none"):
                expected = semrsm.gram(np.array(x), matcher=matcher, center=center)
                assert np.array_equal(semrsm.gram(mm, matcher=matcher, center=center), expected)
                assert np.array_equal(
                    semrsm.gram(mm, mm[:2], matcher=matcher, center=center),
                    semrsm.gram(np.array(x), np.array(x[:2]), matcher=matcher, center=center),
                )
        del mm


def test_non_contiguous_input():
    rng = np.random.default_rng(13)
    big = rng.normal(size=(8, 6, 4, 4))
    x = big[::2, :, ::2, 1:]  # strided view
    assert not x.flags.c_contiguous
    for matcher in ("exact", "none"):
        assert np.array_equal(semrsm.gram(x, matcher=matcher), semrsm.gram(x.copy(), matcher=matcher))


def test_inputs_not_modified():
    rng = np.random.default_rng(14)
    x = rng.normal(size=(5, 4, 3))
    y = rng.normal(size=(3, 4, 3))
    x4 = rng.normal(size=(4, 3, 2, 2)).astype(np.float32)
    x0, y0, x40 = x.copy(), y.copy(), x4.copy()
    for matcher in ("exact", "none"):
        for center in (False, True):
            semrsm.gram(x, matcher=matcher, center=center)
            semrsm.gram(x, y, matcher=matcher, center=center, return_permutations=True)
            semrsm.gram(x4, matcher=matcher, center=center, precision="float32")
            for kernel in ("linear", "cosine", "rbf"):
                semrsm.build(x, kernel=kernel, matcher=matcher, center=center)
                semrsm.build(x, y, kernel=kernel, matcher=matcher, center=center)
                semrsm.build(x4, kernel=kernel, matcher=matcher, center=center)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(x4, x40)
