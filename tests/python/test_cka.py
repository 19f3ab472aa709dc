"""Tests for semrsm.cka: centring, HSIC estimators and CKA."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semrsm._errors import NonFiniteError, OptionError, SemrsmError, ShapeError
from semrsm.cka import center_gram, cka, hsic

SETTINGS = settings(max_examples=40, deadline=None)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
sizes = st.integers(min_value=5, max_value=30)


# ----------------------------------------------------------------------------
# helpers: data and independent transcriptions of the formulas
# ----------------------------------------------------------------------------


def linear_gram(rng, n, p=None):
    p = int(rng.integers(2, 8)) if p is None else p
    X = rng.normal(size=(n, p))
    return X @ X.T


def rbf_gram(rng, n, p=3):
    X = rng.normal(size=(n, p))
    sq = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
    sigma2 = np.median(sq[np.triu_indices(n, 1)])
    return np.exp(-sq / (2.0 * sigma2))


def random_gram(rng, n):
    return linear_gram(rng, n) if rng.integers(2) else rbf_gram(rng, n)


def centering_matrix(n):
    return np.eye(n) - np.ones((n, n)) / n


def hsic_gretton_direct(K, L):
    n = K.shape[0]
    H = centering_matrix(n)
    return np.trace(K @ H @ L @ H) / (n - 1) ** 2


def hsic_song_direct(K, L):
    n = K.shape[0]
    Kt = K - np.diag(np.diag(K))
    Lt = L - np.diag(np.diag(L))
    one = np.ones(n)
    return (
        np.trace(Kt @ Lt)
        + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ Kt @ Lt @ one)
    ) / (n * (n - 3))


def cka_direct(K, L, hsic_fn):
    return hsic_fn(K, L) / np.sqrt(hsic_fn(K, K) * hsic_fn(L, L))


def u_center_loops(K):
    """Entry-by-entry U-centring, written with plain loops."""
    n = K.shape[0]
    Kz = np.array(K, dtype=float)
    for i in range(n):
        Kz[i, i] = 0.0
    total = Kz.sum()
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i, j] = (
                    Kz[i, j]
                    - Kz[i, :].sum() / (n - 2)
                    - Kz[:, j].sum() / (n - 2)
                    + total / ((n - 1) * (n - 2))
                )
    return out


# ----------------------------------------------------------------------------
# 1. CKA(K, K) = 1
# ----------------------------------------------------------------------------


@SETTINGS
@given(seed=seeds, n=sizes, debiased=st.booleans())
def test_cka_self_is_one_linear(seed, n, debiased):
    rng = np.random.default_rng(seed)
    K = linear_gram(rng, n)
    assert cka(K, K, debiased=debiased) == pytest.approx(1.0, rel=1e-12)


@SETTINGS
@given(seed=seeds, n=sizes, debiased=st.booleans())
def test_cka_self_is_one_rbf(seed, n, debiased):
    rng = np.random.default_rng(seed)
    K = rbf_gram(rng, n)
    assert cka(K, K, debiased=debiased) == pytest.approx(1.0, rel=1e-12)


# ----------------------------------------------------------------------------
# 2. invariance to isotropic scaling
# ----------------------------------------------------------------------------


@SETTINGS
@given(
    seed=seeds,
    n=sizes,
    debiased=st.booleans(),
    a=st.floats(min_value=1e-3, max_value=1e3),
    b=st.floats(min_value=1e-3, max_value=1e3),
)
def test_cka_scale_invariant(seed, n, debiased, a, b):
    rng = np.random.default_rng(seed)
    K = random_gram(rng, n)
    L = random_gram(rng, n)
    ref = cka(K, L, debiased=debiased)
    assert cka(a * K, L, debiased=debiased) == pytest.approx(ref, abs=1e-12)
    assert cka(K, b * L, debiased=debiased) == pytest.approx(ref, abs=1e-12)
    assert cka(a * K, b * L, debiased=debiased) == pytest.approx(
        ref, abs=1e-12
    )


@SETTINGS
@given(seed=seeds, n=sizes, a=st.floats(min_value=0.1, max_value=10.0))
def test_hsic_scales_bilinearly(seed, n, a):
    rng = np.random.default_rng(seed)
    K = random_gram(rng, n)
    L = random_gram(rng, n)
    for est in ("gretton", "song"):
        assert hsic(a * K, L, est) == pytest.approx(
            a * hsic(K, L, est), rel=1e-9, abs=1e-12
        )


# ----------------------------------------------------------------------------
# 3. agreement with direct transcriptions of the formulas
# ----------------------------------------------------------------------------


@SETTINGS
@given(seed=seeds, n=sizes)
def test_matches_direct_formulas(seed, n):
    rng = np.random.default_rng(seed)
    K = random_gram(rng, n)
    L = random_gram(rng, n)
    np.testing.assert_allclose(
        hsic(K, L, "gretton"), hsic_gretton_direct(K, L), rtol=1e-10
    )
    np.testing.assert_allclose(
        hsic(K, L), hsic_gretton_direct(K, L), rtol=1e-10
    )
    np.testing.assert_allclose(
        hsic(K, L, "song"), hsic_song_direct(K, L), rtol=1e-10, atol=1e-14
    )
    np.testing.assert_allclose(
        cka(K, L), cka_direct(K, L, hsic_gretton_direct), rtol=1e-10
    )
    np.testing.assert_allclose(
        cka(K, L, debiased=True),
        cka_direct(K, L, hsic_song_direct),
        rtol=1e-10,
        atol=1e-13,
    )


@SETTINGS
@given(seed=seeds, n=st.integers(min_value=4, max_value=20))
def test_hsic_matches_direct_formulas_non_symmetric(seed, n):
    # RSMs need not be symmetric; the estimators are defined for any square
    # matrix and must still agree with the textbook formulas.
    rng = np.random.default_rng(seed)
    K = rng.normal(size=(n, n))
    L = rng.normal(size=(n, n))
    np.testing.assert_allclose(
        hsic(K, L, "gretton"), hsic_gretton_direct(K, L), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        hsic(K, L, "song"), hsic_song_direct(K, L), rtol=1e-9, atol=1e-12
    )


def test_known_small_value():
    # By hand, n = 2 and K = diag(1, 0): H = [[.5, -.5], [-.5, .5]],
    # H K H = [[.25, -.25], [-.25, .25]], and tr(K H K H) is the sum of the
    # elementwise product of H K H with K, 0.25; (n - 1)**2 = 1.
    K = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert hsic(K, K) == pytest.approx(0.25)
    np.testing.assert_allclose(
        center_gram(K), [[0.25, -0.25], [-0.25, 0.25]], atol=1e-15
    )


# ----------------------------------------------------------------------------
# 4. debiased CKA: U-centring route equals Song's formula route
# ----------------------------------------------------------------------------


@SETTINGS
@given(seed=seeds, n=sizes)
def test_debiased_cka_u_centering_route(seed, n):
    rng = np.random.default_rng(seed)
    K = random_gram(rng, n)
    L = random_gram(rng, n)
    Kc = center_gram(K, unbiased=True)
    Lc = center_gram(L, unbiased=True)
    cka_u = np.sum(Kc * Lc) / np.sqrt(np.sum(Kc * Kc) * np.sum(Lc * Lc))
    np.testing.assert_allclose(
        cka(K, L, debiased=True), cka_u, rtol=1e-10, atol=1e-13
    )
    # and the U-centred inner product is n (n - 3) times Song's HSIC
    np.testing.assert_allclose(
        np.sum(Kc * Lc) / (n * (n - 3)),
        hsic_song_direct(K, L),
        rtol=1e-9,
        atol=1e-13,
    )


# ----------------------------------------------------------------------------
# 5. properties of the centred matrices
# ----------------------------------------------------------------------------


@SETTINGS
@given(seed=seeds, n=st.integers(min_value=1, max_value=30))
def test_biased_centering_properties(seed, n):
    rng = np.random.default_rng(seed)
    K = rng.normal(size=(n, n)) + 3.0  # arbitrary, non-symmetric, offset
    Kc = center_gram(K)
    scale = np.abs(K).max() * n
    np.testing.assert_allclose(Kc.sum(axis=0), 0.0, atol=1e-12 * scale)
    np.testing.assert_allclose(Kc.sum(axis=1), 0.0, atol=1e-12 * scale)
    np.testing.assert_allclose(center_gram(Kc), Kc, atol=1e-12 * scale)
    H = centering_matrix(n)
    np.testing.assert_allclose(Kc, H @ K @ H, atol=1e-12 * scale)


@SETTINGS
@given(seed=seeds, n=st.integers(min_value=4, max_value=30))
def test_unbiased_centering_properties(seed, n):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    K = A + A.T + 2.0  # symmetric
    Kc = center_gram(K, unbiased=True)
    scale = np.abs(K).max() * n
    assert np.all(np.diag(Kc) == 0.0)
    np.testing.assert_allclose(Kc.sum(axis=1), 0.0, atol=1e-12 * scale)
    np.testing.assert_allclose(Kc.sum(axis=0), 0.0, atol=1e-12 * scale)
    np.testing.assert_allclose(Kc, u_center_loops(K), atol=1e-12 * scale)
    # U-centring is idempotent on symmetric input
    np.testing.assert_allclose(
        center_gram(Kc, unbiased=True), Kc, atol=1e-12 * scale
    )


@SETTINGS
@given(seed=seeds, n=st.integers(min_value=4, max_value=15))
def test_unbiased_centering_non_symmetric(seed, n):
    rng = np.random.default_rng(seed)
    K = rng.normal(size=(n, n))
    Kc = center_gram(K, unbiased=True)
    np.testing.assert_allclose(Kc, u_center_loops(K), atol=1e-12)
    assert np.all(np.diag(Kc) == 0.0)


def test_center_gram_does_not_modify_input():
    rng = np.random.default_rng(0)
    K = rng.normal(size=(6, 6))
    L = rng.normal(size=(6, 6))
    K0, L0 = K.copy(), L.copy()
    center_gram(K)
    center_gram(K, unbiased=True)
    hsic(K, L)
    hsic(K, L, "song")
    cka(K @ K.T, L @ L.T)
    cka(K @ K.T, L @ L.T, debiased=True)
    np.testing.assert_array_equal(K, K0)
    np.testing.assert_array_equal(L, L0)


def test_integer_input_accepted():
    K = np.array([[3, 1, 0, 2], [1, 4, 1, 0], [0, 1, 5, 1], [2, 0, 1, 6]])
    out = center_gram(K)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, center_gram(K.astype(float)))
    assert cka(K, K) == pytest.approx(1.0)
    assert cka(K.tolist(), K) == pytest.approx(1.0)


# ----------------------------------------------------------------------------
# 6. linear CKA of representations
# ----------------------------------------------------------------------------


@SETTINGS
@given(
    seed=seeds,
    n=st.integers(min_value=8, max_value=30),
    p=st.integers(min_value=2, max_value=10),
    debiased=st.booleans(),
)
def test_linear_cka_orthogonal_invariance(seed, n, p, debiased):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    XQ = X @ Q
    assert cka(X @ X.T, XQ @ XQ.T, debiased=debiased) == pytest.approx(
        1.0, rel=1e-10
    )


@SETTINGS
@given(
    seed=seeds,
    n=st.integers(min_value=20, max_value=40),
    p=st.integers(min_value=2, max_value=5),
    debiased=st.booleans(),
)
def test_linear_cka_related_beats_independent(seed, n, p, debiased):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    Y_indep = rng.normal(size=(n, p))
    Y_close = X + 0.01 * rng.normal(size=(n, p))
    K = X @ X.T
    c_indep = cka(K, Y_indep @ Y_indep.T, debiased=debiased)
    c_close = cka(K, Y_close @ Y_close.T, debiased=debiased)
    assert c_close > 0.99
    assert c_indep < c_close - 0.05


# ----------------------------------------------------------------------------
# 7. symmetry and range
# ----------------------------------------------------------------------------


@SETTINGS
@given(seed=seeds, n=sizes)
def test_hsic_and_cka_symmetric(seed, n):
    rng = np.random.default_rng(seed)
    K = random_gram(rng, n)
    L = random_gram(rng, n)
    for est in ("gretton", "song"):
        assert hsic(K, L, est) == pytest.approx(
            hsic(L, K, est), rel=1e-10, abs=1e-14
        )
    for deb in (False, True):
        assert cka(K, L, debiased=deb) == pytest.approx(
            cka(L, K, debiased=deb), rel=1e-10, abs=1e-14
        )
    # the Gretton estimator is symmetric for any square matrices
    A = rng.normal(size=(n, n))
    B = rng.normal(size=(n, n))
    assert hsic(A, B) == pytest.approx(hsic(B, A), rel=1e-10, abs=1e-14)


@SETTINGS
@given(seed=seeds, n=sizes)
def test_biased_cka_range_psd(seed, n):
    rng = np.random.default_rng(seed)
    K = random_gram(rng, n)
    L = random_gram(rng, n)
    value = cka(K, L)
    assert -1e-12 <= value <= 1.0 + 1e-12
    assert hsic(K, L) >= -1e-14
    d = cka(K, L, debiased=True)
    assert -1.0 - 1e-12 <= d <= 1.0 + 1e-12


def test_cka_negative_correlation_possible_for_debiased():
    # Two symmetric matrices whose U-centred parts are negatives of each
    # other give debiased CKA = -1.
    rng = np.random.default_rng(3)
    K = linear_gram(rng, 10)
    Kc = center_gram(K, unbiased=True)
    assert cka(Kc, -Kc, debiased=True) == pytest.approx(-1.0, rel=1e-10)
    assert cka(K, -K) == pytest.approx(-1.0, rel=1e-10)


# ----------------------------------------------------------------------------
# 8. bad inputs
# ----------------------------------------------------------------------------

GOOD = np.eye(5) + 0.5


def test_error_is_value_error():
    assert issubclass(SemrsmError, ValueError)


@pytest.mark.parametrize(
    "func",
    [
        lambda M: center_gram(M),
        lambda M: center_gram(M, unbiased=True),
        lambda M: hsic(M, M),
        lambda M: hsic(M, M, "song"),
        lambda M: cka(M, M),
        lambda M: cka(M, M, debiased=True),
    ],
)
@pytest.mark.parametrize(
    "bad, pattern",
    [
        (np.arange(5.0), r"2-D"),
        (np.zeros((2, 3, 3)), r"2-D"),
        (np.zeros((5, 4)), r"square"),
        (np.zeros((0, 0)), r"empty"),
        (np.where(np.eye(5) > 0, np.nan, 1.0), r"NaN or infinite"),
        (np.where(np.eye(5) > 0, np.inf, 1.0), r"NaN or infinite"),
        (np.where(np.eye(5) > 0, -np.inf, 1.0), r"NaN or infinite"),
        (GOOD + 1j * GOOD, r"complex"),
        (np.array([["a", "b"], ["c", "d"]]), r"real numeric"),
        (np.array([[1, None], [None, 1]], dtype=object), r"real numeric"),
    ],
)
def test_bad_matrix_raises(func, bad, pattern):
    with pytest.raises(SemrsmError, match=pattern):
        func(bad)


@pytest.mark.parametrize(
    "func",
    [
        lambda K, L: hsic(K, L),
        lambda K, L: hsic(K, L, "song"),
        lambda K, L: cka(K, L),
        lambda K, L: cka(K, L, debiased=True),
    ],
)
def test_mismatched_shapes_raise(func):
    with pytest.raises(SemrsmError, match=r"same shape"):
        func(np.eye(5) + 0.5, np.eye(6) + 0.5)
    # the second argument is validated as well
    with pytest.raises(SemrsmError, match=r"L .*NaN"):
        func(GOOD, np.full((5, 5), np.nan))


@pytest.mark.parametrize("name", ["biased", "unbiased", "Gretton", "", None])
def test_unknown_estimator_raises(name):
    with pytest.raises(SemrsmError, match=r"unknown HSIC estimator") as info:
        hsic(GOOD, GOOD, estimator=name)
    assert "'gretton'" in str(info.value) and "'song'" in str(info.value)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_small_n_unbiased_raises(n):
    K = np.arange(n * n, dtype=float).reshape(n, n)
    with pytest.raises(SemrsmError, match=r"n >= 4"):
        center_gram(K, unbiased=True)
    with pytest.raises(SemrsmError, match=r"n >= 4"):
        hsic(K, K, "song")
    with pytest.raises(SemrsmError, match=r"n >= 4"):
        cka(K, K, debiased=True)


def test_n_one_biased():
    K = np.array([[2.0]])
    np.testing.assert_array_equal(center_gram(K), [[0.0]])
    with pytest.raises(SemrsmError, match=r"n >= 2"):
        hsic(K, K)
    with pytest.raises(SemrsmError, match=r"n >= 2"):
        cka(K, K)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("c", [0.0, 1.0, 0.1, -3.7, 1e6])
@pytest.mark.parametrize("n", [4, 7, 50])
def test_constant_rsm_raises(debiased, c, n):
    K = np.full((n, n), c)
    L = linear_gram(np.random.default_rng(n), n)
    pattern_k = r"undefined.*HSIC\(K, K\).*variance"
    pattern_l = r"undefined.*HSIC\(L, L\).*variance"
    with pytest.raises(SemrsmError, match=pattern_k):
        cka(K, L, debiased=debiased)
    with pytest.raises(SemrsmError, match=pattern_l):
        cka(L, K, debiased=debiased)


@pytest.mark.parametrize("n", [4, 9])
def test_constant_off_diagonal_debiased_raises(n):
    # The debiased estimator ignores the diagonal, so an RSM that is constant
    # off the diagonal has no variance for it, while the biased one is fine.
    K = np.full((n, n), 0.3) + np.diag(np.arange(1.0, n + 1))
    L = linear_gram(np.random.default_rng(1), n)
    assert np.isfinite(cka(K, L))
    with pytest.raises(SemrsmError, match=r"undefined"):
        cka(K, L, debiased=True)


def test_non_symmetric_matrices_are_rejected_by_cka():
    # An antisymmetric matrix has tr(K H K H) < 0; a CKA of it once gave 2.66. CKA needs kernels.
    A = np.random.default_rng(5).normal(size=(6, 6))
    K = A - A.T
    assert hsic(K, K) < 0  # hsic and center_gram still take non-symmetric matrices
    for M in (K, A, np.triu(A)):
        with pytest.raises(ShapeError, match=r"must be symmetric"):
            cka(M, np.eye(6) + 1.0)
        with pytest.raises(ShapeError, match=r"L must be symmetric"):
            cka(np.eye(6) + 1.0, M, debiased=True)


def test_cka_symmetrises_matrices_symmetric_up_to_rounding():
    x = np.random.default_rng(6).normal(size=(8, 5))
    K = x @ x.T
    K_noisy = K + np.triu(np.full_like(K, 1e-13 * np.abs(K).max()), 1)  # asymmetric at 1e-13
    L = np.tanh(x) @ np.tanh(x).T
    for debiased in (False, True):
        got = cka(K_noisy, L, debiased=debiased)
        want = cka((K_noisy + K_noisy.T) / 2, L, debiased=debiased)
        assert got == pytest.approx(want, rel=1e-14)
        assert got <= 1.0 + 1e-12


def _kernel_pair(seed=0, n=12):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = x + 0.8 * rng.normal(size=(n, 4))
    return x @ x.T, np.exp(-0.5 * ((y[:, None] - y[None]) ** 2).sum(-1))


@pytest.mark.parametrize("scale", [1e-300, 1e-170, 1e-100, 1e100, 1e155, 1e160, 1e200, 1e300])
@pytest.mark.parametrize("debiased", [False, True])
def test_cka_is_scale_invariant_over_the_float_range(scale, debiased):
    """Regression (issue 9.3): cka(1e155 K, L) was 0.0, debiased at 1e160 raised OverflowError,
    1e-170 and 1e200 were reported as "no variance"."""
    K, L = _kernel_pair()
    reference = cka(K, L, debiased=debiased)
    assert 0.05 < abs(reference) < 0.95
    assert cka(scale * K, L, debiased=debiased) == pytest.approx(reference, rel=1e-12)
    assert cka(K, scale * L, debiased=debiased) == pytest.approx(reference, rel=1e-12)
    assert cka(scale * K, scale * L, debiased=debiased) == pytest.approx(reference, rel=1e-12)


@pytest.mark.parametrize("scale", [1e-300, 1e-170, 1e170, 1e300])
def test_constant_matrix_still_has_no_variance_at_any_scale(scale):
    K, L = _kernel_pair()
    with pytest.raises(SemrsmError, match="no variance"):
        cka(np.full((12, 12), scale), L)
    with pytest.raises(SemrsmError, match="no variance"):
        cka(L, np.full((12, 12), scale), debiased=True)


@pytest.mark.parametrize("estimator", ["gretton", "song"])
def test_hsic_scales_exactly_or_raises(estimator):
    K, L = _kernel_pair(1)
    base = hsic(K, L, estimator)
    # powers of two: the scaling is exact, so the results must agree to rounding
    assert hsic(2.0**600 * K, 2.0**-500 * L, estimator) == pytest.approx(base * 2.0**100, rel=1e-13)
    assert hsic(1e-170 * K, L, estimator) == pytest.approx(1e-170 * base, rel=1e-13)
    with pytest.raises(NonFiniteError, match="float64 range"):
        hsic(1e200 * K, 1e200 * K, estimator)


def test_center_gram_is_scale_equivariant_and_never_overflows():
    K, _ = _kernel_pair(2)
    for unbiased in (False, True):
        base = center_gram(K, unbiased=unbiased)
        np.testing.assert_array_equal(center_gram(2.0**900 * K, unbiased=unbiased), 2.0**900 * base)
        np.testing.assert_allclose(center_gram(1e-300 * K, unbiased=unbiased), 1e-300 * base, rtol=1e-12, atol=0)
    with pytest.raises(NonFiniteError, match="float64 range"):
        center_gram(1.5e308 * np.array([[-1.0, -1.0, 1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0]]))


@pytest.mark.parametrize(
    "call,error",
    [
        (lambda: cka(np.full((3, 3), np.nan), np.eye(3)), NonFiniteError),
        (lambda: hsic(np.eye(3), np.full((3, 3), np.inf)), NonFiniteError),
        (lambda: center_gram(np.array([[1.0, np.nan], [0.0, 1.0]])), NonFiniteError),
        (lambda: cka(np.ones((3, 4)), np.ones((3, 4))), ShapeError),
        (lambda: hsic(np.ones((2, 2, 2)), np.ones((2, 2, 2))), ShapeError),
        (lambda: center_gram(np.ones(3)), ShapeError),
        (lambda: cka(np.eye(3), np.eye(4)), ShapeError),
        (lambda: cka(np.eye(3), np.eye(3), debiased=True), ShapeError),
        (lambda: center_gram(np.zeros((0, 0))), ShapeError),
        (lambda: hsic(np.eye(4), np.eye(4), estimator="unbiased"), OptionError),
        (lambda: cka(np.eye(4), np.eye(4), debiased="yes"), OptionError),
        (lambda: center_gram(np.eye(4), unbiased=1), OptionError),
    ],
)
def test_cka_functions_raise_the_specific_error(call, error):
    """Regression (issue 9.7): these raised only the base SemrsmError."""
    with pytest.raises(error):
        call()
