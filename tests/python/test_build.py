"""Tests for semrsm.build (kernels), semrsm.linear_sum_assignment and input validation."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment as scipy_lsa

import semrsm
from conftest import SEEDS as seeds, make, ref_gram
from semrsm import DTypeError, NonFiniteError, OptionError, SemrsmError, ShapeError, TooLargeError

kinds = st.sampled_from(["normal", "ties", "offset"])


# ----------------------------------------------------------------------------
# helpers: data and independent transcriptions of the formulas
# ----------------------------------------------------------------------------


def centred(x, y, center):
    if not center:
        return x, y
    mean = (x if y is None else y).mean(axis=0)
    return x - mean, (None if y is None else y - mean)


def sq_norms(a):
    return np.einsum("nsc,nsc->n", a, a)


def ref_d2(G, sx, sy, square):
    d2 = sx[:, None] + sy[None, :] - 2.0 * G
    d2 = np.maximum(d2, 0.0)
    if square:
        d2[np.diag_indices_from(d2)] = 0.0
    return d2


def ref_median_sigma(d2, square):
    if square:
        values = [d2[i, j] for i in range(d2.shape[0]) for j in range(i + 1, d2.shape[1])]
    else:
        values = list(d2.ravel())
    dist = np.sqrt(np.array([v for v in values if v > 0], dtype=np.float64))
    return 1.0 if dist.size == 0 else float(np.median(dist))


@st.composite
def problems(draw, min_n=2):
    seed = draw(seeds)
    kind = draw(kinds)
    n = draw(st.integers(min_value=min_n, max_value=6))
    s = draw(st.integers(min_value=1, max_value=10))
    c = draw(st.integers(min_value=1, max_value=5))
    rng = np.random.default_rng(seed)
    x = make(rng, kind, (n, s, c))
    y = make(rng, kind, (draw(st.integers(min_value=min_n, max_value=6)), s, c)) if draw(st.booleans()) else None
    return x, y


def scale_of(x, y):
    yy = x if y is None else y
    return max(1.0, float(np.sqrt(sq_norms(x).max() * sq_norms(yy).max())))


# ----------------------------------------------------------------------------
# 1. kernels equal their formulas
# ----------------------------------------------------------------------------


@given(problems(), st.sampled_from(["exact", "none"]), st.booleans())
def test_linear_kernel_is_gram(problem, matcher, center):
    x, y = problem
    K = semrsm.build(x, y, kernel="linear", matcher=matcher, center=center, layout="nsc")
    xc, yc = centred(x, y, center)
    np.testing.assert_allclose(K, ref_gram(xc, yc, matcher), rtol=1e-9, atol=1e-9 * scale_of(xc, yc))
    assert np.array_equal(K, semrsm.gram(x, y, matcher=matcher, center=center, layout="nsc"))


@given(problems(), st.sampled_from(["exact", "none"]), st.booleans())
def test_cosine_kernel_formula(problem, matcher, center):
    x, y = problem
    xc, yc = centred(x, y, center)
    yy = xc if yc is None else yc
    sx, sy = sq_norms(xc), sq_norms(yy)
    assume(sx.min() > 1e-9 * sx.max() and sy.min() > 1e-9 * sy.max())
    K = semrsm.build(x, y, kernel="cosine", matcher=matcher, center=center, layout="nsc")
    expected = ref_gram(xc, yc, matcher) / np.sqrt(np.outer(sx, sy))
    np.testing.assert_allclose(K, expected, rtol=1e-9, atol=1e-9)
    if y is None:
        assert np.all(np.diag(K) == 1.0)
        assert np.array_equal(K, K.T)


@given(problems(), st.sampled_from(["exact", "none"]), st.booleans(), st.floats(0.05, 20.0))
def test_rbf_kernel_formula_explicit_sigma(problem, matcher, center, rel_sigma):
    x, y = problem
    xc, yc = centred(x, y, center)
    yy = xc if yc is None else yc
    # a bandwidth on the scale of the data, so the kernel is neither all 0 nor all 1
    sigma = rel_sigma * max(1e-3, float(np.sqrt(sq_norms(xc).mean())))
    K = semrsm.build(x, y, kernel="rbf", matcher=matcher, center=center, sigma=sigma, layout="nsc")
    d2 = ref_d2(ref_gram(xc, yc, matcher), sq_norms(xc), sq_norms(yy), y is None)
    expected = np.exp(-d2 / (2.0 * sigma**2))
    np.testing.assert_allclose(K, expected, rtol=1e-7, atol=1e-9)
    if y is None:
        assert np.all(np.diag(K) == 1.0)
        assert np.array_equal(K, K.T)


@given(problems(min_n=1), st.sampled_from(["exact", "none"]))
def test_rbf_kernel_formula_median_sigma(problem, matcher):
    x, y = problem
    yy = x if y is None else y
    K = semrsm.build(x, y, kernel="rbf", matcher=matcher, center=False, layout="nsc")
    d2 = ref_d2(ref_gram(x, y, matcher), sq_norms(x), sq_norms(yy), y is None)
    sigma = ref_median_sigma(d2, y is None)
    expected = np.exp(-d2 / (2.0 * sigma**2))
    np.testing.assert_allclose(K, expected, rtol=1e-7, atol=1e-9)
    if y is None:
        assert np.all(np.diag(K) == 1.0)
    # the default sigma is exactly the median one: passing it explicitly changes nothing
    d2_lib = semrsm.kernels.squared_distances(
        semrsm.gram(x, y, matcher=matcher, center=False, layout="nsc"),
        sq_norms(x),
        sq_norms(yy),
        square=y is None,
    )
    sigma_lib = semrsm.kernels.median_sigma(d2_lib, square=y is None)
    np.testing.assert_allclose(sigma_lib, sigma, rtol=1e-7)
    K2 = semrsm.build(x, y, kernel="rbf", matcher=matcher, center=False, layout="nsc", sigma=sigma_lib)
    assert np.array_equal(K, K2)


def test_rbf_median_sigma_known_value():
    # three 1-channel samples at one position: 0, 1, 3 -> distances 1, 3, 2 -> median 2
    x = np.array([0.0, 1.0, 3.0]).reshape(3, 1, 1)
    K = semrsm.build(x, kernel="rbf", center=False, layout="nsc")
    d2 = np.array([[0, 1, 9], [1, 0, 4], [9, 4, 0]], dtype=float)
    np.testing.assert_allclose(K, np.exp(-d2 / 8.0), rtol=1e-14)
    # all samples identical: no non-zero distance, sigma = 1, all ones
    same = np.ones((3, 2, 2))
    np.testing.assert_array_equal(semrsm.build(same, kernel="rbf", center=False, layout="nsc"), 1.0)


# ----------------------------------------------------------------------------
# 2. bounds and the semantic >= spatio-semantic inequality
# ----------------------------------------------------------------------------


@given(problems(), st.booleans())
def test_kernels_bounded(problem, center):
    x, y = problem
    for matcher in ("exact", "none"):
        R = semrsm.build(x, y, kernel="rbf", matcher=matcher, center=center, layout="nsc")
        assert np.all(R > 0.0) and np.all(R <= 1.0)
        try:
            C = semrsm.build(x, y, kernel="cosine", matcher=matcher, center=center, layout="nsc")
        except SemrsmError as exc:  # a zero-norm sample (possible with integer data)
            assert "zero norm" in str(exc)
            continue
        assert np.all(C >= -1.0) and np.all(C <= 1.0)


@given(problems(), st.booleans(), st.floats(0.1, 10.0))
def test_semantic_kernels_at_least_spatio_semantic(problem, center, rel_sigma):
    x, y = problem
    xc, _ = centred(x, y, center)
    sigma = rel_sigma * max(1e-3, float(np.sqrt(sq_norms(xc).mean())))
    kw = dict(center=center, layout="nsc")
    R = semrsm.build(x, y, kernel="rbf", matcher="exact", sigma=sigma, **kw)
    R0 = semrsm.build(x, y, kernel="rbf", matcher="none", sigma=sigma, **kw)
    assert np.all(R >= R0 - 1e-12)
    try:
        C = semrsm.build(x, y, kernel="cosine", matcher="exact", **kw)
    except SemrsmError:
        return  # zero-norm sample
    C0 = semrsm.build(x, y, kernel="cosine", matcher="none", **kw)
    assert np.all(C >= C0 - 1e-12)


# ----------------------------------------------------------------------------
# 3. the paper's Fig. 2 claim on real data
# ----------------------------------------------------------------------------


def _shift_margins(K):
    """Per photo i: K[i, i+10] minus the mean of K[i, j] over the other photos; and NN hits."""
    margins, hits = [], 0
    for i in range(10):
        others = [j for j in range(20) if j not in (i, i + 10)]
        margins.append(K[i, i + 10] - K[i, others].mean())
        row = K[i].copy()
        row[i] = -np.inf
        hits += int(np.argmax(row) == i + 10)
    return np.array(margins), hits


# Observed (center=True, cosine): block10 mean margin exact 0.503 vs none 0.204, NN 10/10 both;
# block15 exact 0.740 vs none 0.627, NN 10/10 both.
@pytest.mark.parametrize("key, min_gain", [("block10", 0.2), ("block15", 0.05)])
def test_fig2_shifted_crop_more_similar_semantically(shifted_pairs, key, min_gain):
    z = shifted_pairs[key]
    assert z.shape[0] == 20
    K = semrsm.build(z, kernel="cosine", matcher="exact")
    K0 = semrsm.build(z, kernel="cosine", matcher="none")
    m, hits = _shift_margins(K)
    m0, _ = _shift_margins(K0)
    assert m.mean() > m0.mean() + min_gain
    assert np.all(m > 0.3)
    assert hits >= 9
    if key == "block10":
        # at the finer resolution the gain holds for every single photo
        assert np.all(m > m0 + 0.05)


# ----------------------------------------------------------------------------
# 4. linear_sum_assignment vs scipy
# ----------------------------------------------------------------------------


def _random_cost(rng, kind, n, m):
    if kind == "float64":
        return rng.normal(size=(n, m)) * 10 ** rng.uniform(-3, 3)
    if kind == "float32":
        return (rng.normal(size=(n, m)) * 10 ** rng.uniform(-3, 3)).astype(np.float32)
    if kind == "int_ties":
        return rng.integers(-3, 4, size=(n, m))
    return rng.integers(0, 2**40, size=(n, m))


@given(
    seeds,
    st.sampled_from(["float64", "float32", "int_ties", "int_large"]),
    st.integers(1, 9),
    st.integers(1, 9),
    st.booleans(),
)
def test_lsa_matches_scipy(seed, kind, n, m, maximize):
    rng = np.random.default_rng(seed)
    cost = _random_cost(rng, kind, n, m)
    rows, cols = semrsm.linear_sum_assignment(cost, maximize=maximize)
    r_ref, c_ref = scipy_lsa(cost, maximize=maximize)
    assert rows.shape == r_ref.shape == (min(n, m),)
    assert cols.shape == c_ref.shape
    assert np.issubdtype(rows.dtype, np.integer) and np.issubdtype(cols.dtype, np.integer)
    assert np.all(np.diff(rows) > 0)
    assert len(set(cols.tolist())) == cols.size
    assert rows.min() >= 0 and rows.max() < n and cols.min() >= 0 and cols.max() < m
    c64 = cost.astype(np.float64)
    got, want = c64[rows, cols].sum(), c64[r_ref, c_ref].sum()
    if kind.startswith("int"):
        assert got == want
    else:
        rtol = 1e-6 if kind == "float32" else 1e-12
        assert abs(got - want) <= rtol * np.abs(c64).sum()


def test_lsa_list_input_and_docstring_example():
    cost = [[4, 1, 3], [2, 0, 5], [3, 2, 2]]
    rows, cols = semrsm.linear_sum_assignment(cost)
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [1, 0, 2]
    rows, cols = semrsm.linear_sum_assignment(cost, maximize=True)
    r_ref, c_ref = scipy_lsa(np.array(cost), maximize=True)
    assert np.array(cost)[rows, cols].sum() == np.array(cost)[r_ref, c_ref].sum()


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
def test_lsa_empty(shape):
    rows, cols = semrsm.linear_sum_assignment(np.zeros(shape))
    r_ref, c_ref = scipy_lsa(np.zeros(shape))
    assert rows.shape == r_ref.shape == (0,)
    assert cols.shape == c_ref.shape == (0,)
    assert np.issubdtype(rows.dtype, np.integer) and np.issubdtype(cols.dtype, np.integer)


def test_lsa_does_not_modify_input():
    cost = np.random.default_rng(2).normal(size=(5, 7))
    before = cost.copy()
    semrsm.linear_sum_assignment(cost, maximize=True)
    semrsm.linear_sum_assignment(cost.T)
    np.testing.assert_array_equal(cost, before)


# ----------------------------------------------------------------------------
# 5. bad input
# ----------------------------------------------------------------------------

_RNG = np.random.default_rng(0)
X = _RNG.normal(size=(4, 5, 3))
X4 = _RNG.normal(size=(4, 3, 2, 2))


def _with(value, index, base=X):
    out = base.copy()
    out[index] = value
    return out


BAD_CALLS = [
    # (id, call, exception class, message regex)
    ("nan_in_x", lambda: semrsm.gram(_with(np.nan, (1, 2, 0))), NonFiniteError, r"x contains a non-finite value \(nan\) at index \(1, 2, 0\)"),
    ("nan_in_x_build", lambda: semrsm.build(_with(np.nan, (0, 0, 0, 1), X4), kernel="rbf"), NonFiniteError, r"x contains a non-finite value \(nan\)"),
    ("inf_in_y", lambda: semrsm.gram(X, _with(np.inf, (3, 4, 2))), NonFiniteError, r"y contains a non-finite value \(inf\)"),
    ("neg_inf_in_y", lambda: semrsm.build(X, _with(-np.inf, (0, 1, 1)), center=False), NonFiniteError, r"y contains a non-finite value \(-inf\)"),
    ("x_1d", lambda: semrsm.gram(np.zeros(3)), ShapeError, r"4-D .*, 3-D .* or 2-D .* got 1-D"),
    ("x_5d", lambda: semrsm.gram(np.zeros((2, 3, 4, 5, 6))), ShapeError, r"got 5-D"),
    ("x_1d_build", lambda: semrsm.build(np.zeros(5)), ShapeError, r"got 1-D"),
    ("x_empty_n", lambda: semrsm.gram(np.zeros((0, 3, 4))), ShapeError, r"x is empty.*\(0, 3, 4\)"),
    ("x_empty_s", lambda: semrsm.gram(np.zeros((3, 0, 4))), ShapeError, r"x is empty.*\(3, 0, 4\)"),
    ("x_empty_s_nocenter", lambda: semrsm.gram(np.zeros((3, 0, 4)), center=False), ShapeError, r"x is empty"),
    ("y_empty", lambda: semrsm.gram(X, np.zeros((0, 5, 3))), ShapeError, r"y is empty"),
    ("c_mismatch_nocenter", lambda: semrsm.gram(X, np.ones((2, 5, 4)), center=False), ShapeError, r"same number of channels C, got 3 and 4"),
    ("s_mismatch_nocenter", lambda: semrsm.gram(X, np.ones((2, 6, 3)), center=False), ShapeError, r"same number of spatial positions S, got 5 and 6"),
    # center=True is the default: the shape mismatch must still be a ShapeError
    ("c_mismatch", lambda: semrsm.gram(X, np.ones((2, 5, 4))), ShapeError, r"channels C"),
    ("s_mismatch", lambda: semrsm.gram(X, np.ones((2, 6, 3))), ShapeError, r"spatial positions S"),
    ("s_mismatch_nchw_build", lambda: semrsm.build(X4, np.ones((2, 3, 3, 3)), kernel="cosine"), ShapeError, r"spatial positions S"),
    ("unknown_kernel", lambda: semrsm.build(X, kernel="gauss"), OptionError, r"unknown kernel 'gauss'.*linear, cosine, rbf"),
    ("unknown_matcher", lambda: semrsm.gram(X, matcher="sinkhorn"), OptionError, r"unknown matcher \"sinkhorn\".*none, exact, greedy, topk_greedy, batch_optimal, auction"),
    ("unknown_matcher_build", lambda: semrsm.build(X, matcher="hungarian"), OptionError, r"unknown matcher"),
    ("matcher_not_str", lambda: semrsm.gram(X, matcher=None), OptionError, r"matcher must be a string"),
    ("unknown_layout", lambda: semrsm.gram(X, layout="nwhc"), OptionError, r"unknown layout 'nwhc'"),
    ("unknown_option_exact", lambda: semrsm.gram(X, b=512), OptionError, r"matcher \"exact\" takes no options, got \"b\""),
    ("unknown_option_none", lambda: semrsm.build(X, matcher="none", b=512), OptionError, r"takes no options"),
    ("unknown_option_huge", lambda: semrsm.gram(X, b=2**70), OptionError, r"b"),
    ("option_not_int", lambda: semrsm.gram(X, b=1.5), OptionError, r"matcher option b= must be an integer"),
    ("option_bool", lambda: semrsm.gram(X, b=True), OptionError, r"must be an integer"),
    ("sigma_linear", lambda: semrsm.build(X, kernel="linear", sigma=1.0), OptionError, r"sigma only applies to kernel='rbf'"),
    ("sigma_cosine", lambda: semrsm.build(X, kernel="cosine", sigma=1.0), OptionError, r"sigma only applies"),
    ("sigma_zero", lambda: semrsm.build(X, kernel="rbf", sigma=0.0), OptionError, r"sigma must be a positive"),
    ("sigma_negative", lambda: semrsm.build(X, kernel="rbf", sigma=-1.0), OptionError, r"sigma must be a positive"),
    ("sigma_nan", lambda: semrsm.build(X, kernel="rbf", sigma=float("nan")), OptionError, r"sigma must be a positive finite"),
    ("sigma_inf", lambda: semrsm.build(X, kernel="rbf", sigma=float("inf")), OptionError, r"sigma must be a positive finite"),
    ("sigma_str", lambda: semrsm.build(X, kernel="rbf", sigma="wide"), OptionError, r"sigma must be a positive number"),
    ("threads_zero", lambda: semrsm.gram(X, threads=0), OptionError, r"threads must be an integer from 1 to"),
    ("threads_negative", lambda: semrsm.gram(X, threads=-1), OptionError, r"threads must be an integer from 1 to"),
    ("threads_float", lambda: semrsm.gram(X, threads=1.5), OptionError, r"threads must be an integer from 1 to"),
    ("threads_bool", lambda: semrsm.build(X, threads=True), OptionError, r"threads must be an integer from 1 to"),
    ("threads_huge", lambda: semrsm.gram(X, threads=2**70), OptionError, r"threads"),
    ("precision_f16", lambda: semrsm.gram(X, precision="float16"), OptionError, r"unknown precision 'float16'"),
    ("precision_build", lambda: semrsm.build(X, precision="half"), OptionError, r"unknown precision"),
    ("center_not_bool", lambda: semrsm.gram(X, center="yes"), OptionError, r"center must be True, False or 'channel'"),
    ("complex", lambda: semrsm.gram(X + 1j), SemrsmError, r"real numbers .*complex128"),
    ("complex_y", lambda: semrsm.gram(X, X.astype(np.complex64)), SemrsmError, r"y must hold real numbers"),
    ("object", lambda: semrsm.gram(X.astype(object)), SemrsmError, r"real numbers .*object"),
    ("string", lambda: semrsm.build(np.full((2, 2, 2), "a")), SemrsmError, r"real numbers"),
    ("nchw_with_3d", lambda: semrsm.gram(X, layout="nchw"), ShapeError, r"layout 'nchw' needs a 4-D x, got 3-D"),
    ("nhwc_with_3d", lambda: semrsm.gram(X, layout="nhwc"), ShapeError, r"needs a 4-D x"),
    ("nsc_with_4d", lambda: semrsm.gram(X4, layout="nsc"), ShapeError, r"layout 'nsc' needs a 3-D x, got 4-D"),
    ("ncs_with_4d_y", lambda: semrsm.gram(X, X4, layout="ncs"), ShapeError, r"needs a 3-D y"),
    ("center_single_sample", lambda: semrsm.gram(X[:1]), ShapeError, r"center=True needs at least 2 samples in x"),
    ("center_single_sample_y", lambda: semrsm.build(X, X[:1], kernel="cosine"), ShapeError, r"at least 2 samples in y"),
    ("cosine_zero_sample", lambda: semrsm.build(np.stack([X[0], 0 * X[0]]), kernel="cosine", center=False), SemrsmError, r"sample 1 of x has zero norm"),
    ("cosine_zero_sample_y", lambda: semrsm.build(X, np.stack([X[1], 0 * X[1]]), kernel="cosine", center=False), SemrsmError, r"sample 1 of y has zero norm"),
    ("cosine_zero_after_centring", lambda: semrsm.build(np.stack([X[0], X[0]]), kernel="cosine"), SemrsmError, r"sample 0 of x has zero norm"),
    ("overflow", lambda: semrsm.gram(X * 1e200, center=False), NonFiniteError, r"are too large"),
    ("overflow_y", lambda: semrsm.build(X, X * 1e301, center=False), NonFiniteError, r"are too large"),
    ("overflow_float32", lambda: semrsm.gram(X * 1e20, center=False, precision="float32"), NonFiniteError, r"are too large"),
    ("lsa_1d", lambda: semrsm.linear_sum_assignment(np.zeros(3)), ShapeError, r"expected a matrix \(2-D array\), got a 1-D array: cost_matrix has shape \(3,\)"),
    ("lsa_3d", lambda: semrsm.linear_sum_assignment(np.zeros((2, 2, 2))), ShapeError, r"expected a matrix .* got a 3-D"),
    ("lsa_nan", lambda: semrsm.linear_sum_assignment(np.array([[1.0, np.nan], [0.0, 1.0]])), NonFiniteError, r"matrix contains invalid numeric entries: cost matrix has NaN at index \(0, 1\)"),
    ("lsa_neginf", lambda: semrsm.linear_sum_assignment(np.array([[1.0, 0.0], [-np.inf, 1.0]])), NonFiniteError, r"invalid numeric entries: .* -inf at index \(1, 0\); entries must be finite, or \+inf"),
    ("lsa_inf_maximize_float32", lambda: semrsm.linear_sum_assignment(np.array([[1, np.inf], [0, 1]], dtype=np.float32), maximize=True), NonFiniteError, r"invalid numeric entries: .* inf at index \(0, 1\); .* or -inf to forbid"),
    ("lsa_huge", lambda: semrsm.linear_sum_assignment(np.array([[1.0, 1e301], [0.0, 1.0]])), NonFiniteError, r"are too large"),
    ("lsa_infeasible", lambda: semrsm.linear_sum_assignment(np.array([[np.inf, 1.0], [np.inf, 2.0]])), SemrsmError, r"^cost matrix is infeasible: .*column 0 has no finite entry"),
    ("lsa_complex", lambda: semrsm.linear_sum_assignment(np.eye(2) + 0j), DTypeError, r"Cannot cast array data from dtype\('complex128'\)"),
]


@pytest.mark.parametrize("call, exc, pattern", [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises(call, exc, pattern):
    assert issubclass(exc, SemrsmError) and issubclass(exc, ValueError)
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, SemrsmError)


def test_error_hierarchy():
    for cls in (ShapeError, NonFiniteError, OptionError, TooLargeError):
        assert issubclass(cls, SemrsmError)
    assert issubclass(SemrsmError, ValueError)
    assert semrsm.SemrsmError is SemrsmError


def test_too_many_permutations_raises_before_computing():
    # 2000 * 2000 * 300 = 1.2e9 permutation entries > 2**30; the matching itself would take
    # minutes, so a quick return shows the limit is checked first.
    x = np.ones((2000, 300, 1), dtype=np.float32)
    start = time.perf_counter()
    with pytest.raises(TooLargeError, match=r"permutations for 2000 x 2000 pairs of 300 positions"):
        semrsm.gram(x, return_permutations=True)
    with pytest.raises(TooLargeError, match=r"permutations"):
        semrsm.gram(x, x, center=False, matcher="none", return_permutations=True)
    assert time.perf_counter() - start < 5.0


def test_nan_not_hidden_by_centring():
    # the NaN check happens on the raw input, before centring spreads it over all samples
    x = _with(np.nan, (2, 0, 0))
    with pytest.raises(NonFiniteError, match=r"index \(2, 0, 0\)"):
        semrsm.build(x, kernel="cosine", center=True)
