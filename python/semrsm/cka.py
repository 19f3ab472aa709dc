"""Centred kernel alignment (CKA) between representational similarity matrices.

This module compares two representational similarity matrices (RSMs) with
centred kernel alignment, following Kornblith et al. (2019), "Similarity of
Neural Network Representations Revisited" (ICML). These are eq. 1 and eq. 2
of the semantic RSM paper:

* eq. 1, the Hilbert-Schmidt independence criterion (HSIC),
  ``HSIC(K, L) = tr(K H L H) / (n - 1)**2`` with the centring matrix
  ``H = I - 1 1^T / n`` (Gretton et al., 2005). :func:`hsic` calls this the
  ``"gretton"`` estimator. It is biased.
* eq. 2, ``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``.

The *biased* CKA (``debiased=False``) uses the ``"gretton"`` estimator. The
*debiased* CKA (``debiased=True``) uses the unbiased HSIC estimator of
Song et al. (2012), "Feature Selection via Dependence Maximization" (JMLR),
called ``"song"`` here. For symmetric matrices it equals an inner product
of U-centred matrices (Székely & Rizzo, 2014, "Partial distance correlation
with methods for dissimilarities", Annals of Statistics), which
:func:`center_gram` computes with ``unbiased=True``. The debiased estimators
need at least 4 items.

Every function takes square ``(n, n)`` matrices and accepts any RSM that
semrsm builds, semantic or spatio-semantic. :func:`center_gram` and
:func:`hsic` also take non-symmetric matrices (the formulas are defined for
them). :func:`cka` needs symmetric ones: a matrix symmetric up to rounding
(``|K - K.T| <= 1e-9 max|K|``, e.g. ``X @ X.T`` from BLAS) is symmetrised as
``(K + K.T) / 2``; any other is rejected with :class:`~semrsm.ShapeError`,
since on a non-symmetric matrix the "CKA" is no alignment of kernels and
can exceed 1. No function changes its inputs.

**Scale.** Every matrix is first divided by a power of two near its largest
magnitude (exact in floating point), so entries from 1e-300 to 1e300 give
the same CKA as unscaled ones and the "no variance" test is relative to the
matrix's own scale. :func:`hsic` multiplies the scale back and raises
:class:`~semrsm.NonFiniteError` if the result does not fit a float64.

All computations are ``O(n**2)``. Traces of products are computed as
elementwise sums, so no ``n x n`` matrix product is ever formed.
"""

from __future__ import annotations

import math

import numpy as np

from ._errors import NonFiniteError, OptionError, SemrsmError, ShapeError
from ._validation import check_flag

__all__ = ["center_gram", "hsic", "cka"]

_ESTIMATORS = ("gretton", "song")


#: Largest ``|K - K.T|``, relative to ``max|K|``, that counts as rounding (then symmetrised).
SYMMETRY_TOLERANCE = 1e-9


def _as_square_matrix(M, name: str) -> np.ndarray:
    """Check that `M` is a finite, real, non-empty, square 2-D matrix.

    Parameters
    ----------
    M : array_like, shape (n, n)
        Candidate matrix.
    name : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray, shape (n, n), dtype float64
        The matrix as float64. It may be the input itself; callers must not
        write to it.

    Raises
    ------
    SemrsmError
        If `M` is not numeric and real.
    ShapeError
        If `M` is not 2-D, not square, or empty.
    NonFiniteError
        If `M` contains NaN or infinite values.
    """
    raw = np.asarray(M)
    if raw.dtype.kind not in "biuf":
        if raw.dtype.kind == "c":
            raise SemrsmError(
                f"{name} must be a real matrix, got complex dtype {raw.dtype}"
            )
        raise SemrsmError(
            f"{name} must be a real numeric matrix, got dtype {raw.dtype}"
        )
    arr = raw.astype(np.float64, copy=False)
    if arr.ndim != 2:
        raise ShapeError(
            f"{name} must be a 2-D matrix, got an array with {arr.ndim} "
            f"dimension(s) and shape {arr.shape}"
        )
    if arr.shape[0] != arr.shape[1]:
        raise ShapeError(f"{name} must be square, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ShapeError(f"{name} is empty (shape {arr.shape}); need n >= 1")
    if not np.all(np.isfinite(arr)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise NonFiniteError(
            f"{name} contains NaN or infinite values: {float(arr[index])} at index {index}"
        )
    return arr


def _symmetric(M: np.ndarray, name: str) -> np.ndarray:
    """`M` (validated) if symmetric, ``(M + M.T) / 2`` if symmetric up to rounding
    (:data:`SYMMETRY_TOLERANCE`), else :class:`ShapeError`."""
    scaled = _scaled(M)[0]
    worst = float(np.max(np.abs(scaled - scaled.T)))
    if worst > SYMMETRY_TOLERANCE:  # relative: the scaled matrix has max|.| in [0.5, 1)
        i, j = np.unravel_index(np.argmax(np.abs(scaled - scaled.T)), M.shape)
        raise ShapeError(
            f"{name} must be symmetric (a kernel matrix such as the RSM of one set "
            f"of inputs), but {name}[{i}, {j}] = {float(M[i, j])!r} and {name}[{j}, {i}] = "
            f"{float(M[j, i])!r}; CKA is not defined for non-symmetric matrices (it can exceed 1)"
        )
    if worst > 0:  # symmetric up to rounding: symmetrise (halves first: no overflow)
        return M * 0.5 + M.T * 0.5
    return M


def _scaled(M: np.ndarray) -> tuple[np.ndarray, int]:
    """``(M * 2**-e, e)`` with ``max|M * 2**-e|`` in ``[0.5, 1)`` (``e = 0`` for a zero matrix).

    Multiplying by a power of two is exact (short of subnormal results, which only lose
    entries below ``2**-1022`` of the largest), so no product of the scaled matrices
    can overflow and none of the tests on them depends on the input's scale.
    """
    peak = float(np.max(np.abs(M)))
    if peak == 0.0:
        return M, 0
    exponent = int(np.frexp(peak)[1])
    return np.ldexp(M, -exponent), exponent


def _check_pair(K, L) -> tuple[np.ndarray, np.ndarray]:
    """Validate two matrices and check that their shapes match.

    Parameters
    ----------
    K, L : array_like, shape (n, n)
        Matrices to compare.

    Returns
    -------
    K, L : numpy.ndarray, shape (n, n), dtype float64
        The validated matrices. Callers must not write to them.

    Raises
    ------
    SemrsmError
        If either matrix is invalid or their shapes differ.
    """
    K = _as_square_matrix(K, "K")
    L = _as_square_matrix(L, "L")
    if K.shape != L.shape:
        raise ShapeError(
            f"K and L must have the same shape (same number of items n), "
            f"got {K.shape} and {L.shape}"
        )
    return K, L


def _require_min_n(n: int, what: str, minimum: int = 4) -> None:
    """Raise unless ``n >= minimum``.

    Parameters
    ----------
    n : int
        Number of items.
    what : str
        Name of the computation, used in the error message.
    minimum : int, default 4
        Smallest allowed ``n``. The unbiased estimators need 4, the biased
        HSIC needs 2.

    Raises
    ------
    ShapeError
        If ``n < minimum``.
    """
    if n < minimum:
        raise ShapeError(f"{what} needs n >= {minimum} items, got n = {n}")


def _min_n(estimator: str) -> int:
    """Smallest number of items for which `estimator` is defined."""
    return 4 if estimator == "song" else 2


def _zero_tolerance(M: np.ndarray, estimator: str) -> float:
    """Rounding-error bound on ``HSIC(M, M)`` when its true value is 0.

    Parameters
    ----------
    M : numpy.ndarray, shape (n, n)
        Validated matrix.
    estimator : {"gretton", "song"}
        HSIC estimator.

    Returns
    -------
    float
        Values of ``HSIC(M, M)`` at or below this bound are treated as 0.
    """
    n = M.shape[0]
    eps = np.finfo(np.float64).eps
    scale = float(np.max(np.abs(M)))
    if estimator == "gretton":
        # Entries of H M H carry an absolute error of at most about
        # (n + a few) * eps * max|M| (the means are sums of n terms).
        return ((n + 16.0) * eps * scale) ** 2 * n**2 / (n - 1) ** 2
    # The "song" formula cancels terms of size about max|M|**2.
    return 64.0 * n * eps * scale**2


def _center_biased(K: np.ndarray) -> np.ndarray:
    """Compute ``H K H`` without forming ``H``; `K` must be validated."""
    row_means = K.mean(axis=1, keepdims=True)
    col_means = K.mean(axis=0, keepdims=True)
    return K - row_means - col_means + K.mean()


def _center_unbiased(K: np.ndarray) -> np.ndarray:
    """U-centre `K` (Székely & Rizzo, 2014); `K` must be validated, n >= 4."""
    n = K.shape[0]
    Kz = K.copy()
    np.fill_diagonal(Kz, 0.0)
    row_sums = Kz.sum(axis=1, keepdims=True)
    col_sums = Kz.sum(axis=0, keepdims=True)
    total = Kz.sum()
    out = (
        Kz
        - row_sums / (n - 2)
        - col_sums / (n - 2)
        + total / ((n - 1) * (n - 2))
    )
    np.fill_diagonal(out, 0.0)
    return out


def center_gram(K, unbiased: bool = False) -> np.ndarray:
    """Centre a square similarity (Gram) matrix.

    Parameters
    ----------
    K : array_like, shape (n, n)
        Finite real square matrix, for example an RSM. It does not have to be
        symmetric. It is not modified.
    unbiased : bool, default False
        If False, return the double-centred matrix ``H K H`` with
        ``H = I - 1 1^T / n``. It is computed by subtracting the row and
        column means and adding the grand mean, without forming ``H``.
        If True, return the U-centred matrix of Székely & Rizzo (2014), as
        used by the debiased CKA of Kornblith et al. (2019). The diagonal of
        `K` is first set to zero, then, for ``i != j``::

            K~[i, j] = K[i, j] - r[i] / (n - 2) - c[j] / (n - 2)
                       + s / ((n - 1) * (n - 2))

        where ``r``, ``c`` and ``s`` are the row sums, column sums and total
        of the zero-diagonal matrix. The diagonal of the result is 0.
        This needs ``n >= 4``.

    Returns
    -------
    numpy.ndarray, shape (n, n), dtype float64
        The centred matrix, a new array.

    Raises
    ------
    ShapeError
        If `K` is not a non-empty, square 2-D matrix, or if ``unbiased`` is
        True and ``n < 4``.
    NonFiniteError
        If `K` holds NaN or infinity, or the centred entries exceed the
        float64 range (entries near 1e308).
    OptionError
        If ``unbiased`` is not a bool.
    SemrsmError
        If `K` is not real (all of the above are subclasses).

    Examples
    --------
    >>> import numpy as np, semrsm
    >>> K = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 2.0]])
    >>> Kc = semrsm.center_gram(K)
    >>> bool(np.allclose(Kc.sum(axis=0), 0.0))
    True

    Notes
    -----
    The biased result has zero row and column sums, and centring it again
    does not change it. For a symmetric `K` the U-centred result has zero
    row and column sums too.
    """
    unbiased = check_flag(unbiased, "unbiased")
    K = _as_square_matrix(K, "K")
    if unbiased:
        _require_min_n(K.shape[0], "unbiased (U-)centring")
    Ks, exponent = _scaled(K)
    centred = _center_unbiased(Ks) if unbiased else _center_biased(Ks)
    with np.errstate(over="ignore"):
        out = np.ldexp(centred, exponent)
    if not np.all(np.isfinite(out)):
        raise NonFiniteError(
            "the centred matrix has entries beyond the float64 range "
            f"(max |K| = {np.max(np.abs(K)):g}); rescale K"
        )
    return out


def _hsic_checked(K: np.ndarray, L: np.ndarray, estimator: str) -> float:
    """HSIC of validated matrices of equal shape (n >= 4 for ``"song"``)."""
    n = K.shape[0]
    if estimator == "gretton":
        # tr(K H L H) = tr((H K H)(H L H)) = sum((H K H) * (H L H)^T), as
        # H H = H. Centring both matrices makes HSIC(K, K) of a symmetric K
        # equal ||H K H||_F**2 / (n - 1)**2, non-negative, with a rounding
        # error of second order when K is constant.
        Kc = _center_biased(K)
        Lc = Kc if L is K else _center_biased(L)
        return float(np.sum(Kc * Lc.T)) / (n - 1) ** 2
    # estimator == "song"
    Kt = K.copy()
    Lt = L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    trace_KL = np.sum(Kt * Lt.T)  # tr(K~ L~)
    # 1^T K~ L~ 1 = (K~^T 1) . (L~ 1) = column sums of K~ . row sums of L~
    cross = np.dot(Kt.sum(axis=0), Lt.sum(axis=1))
    totals = Kt.sum() * Lt.sum()
    value = (
        trace_KL
        + totals / ((n - 1) * (n - 2))
        - 2.0 * cross / (n - 2)
    )
    return float(value) / (n * (n - 3))


def _check_estimator(estimator) -> None:
    """Raise unless `estimator` names a known HSIC estimator."""
    if not isinstance(estimator, str) or estimator not in _ESTIMATORS:
        raise OptionError(
            f"unknown HSIC estimator {estimator!r}; valid estimators are "
            + ", ".join(repr(e) for e in _ESTIMATORS)
        )


def hsic(K, L, estimator: str = "gretton") -> float:
    """Hilbert-Schmidt independence criterion between two square matrices.

    Parameters
    ----------
    K, L : array_like, shape (n, n)
        Finite real square matrices of the same shape, for example two RSMs
        over the same ``n`` items. They do not have to be symmetric and are
        not modified.
    estimator : {"gretton", "song"}, default "gretton"
        ``"gretton"``: the biased estimator of Gretton et al. (2005),
        ``tr(K H L H) / (n - 1)**2`` with ``H = I - 1 1^T / n`` (eq. 1 of the
        semantic RSM paper).
        ``"song"``: the unbiased estimator of Song et al. (2012). With
        ``K~`` and ``L~`` equal to `K` and `L` with zeroed diagonals::

            [tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n - 1)(n - 2))
             - 2 / (n - 2) * 1^T K~ L~ 1] / (n (n - 3))

        This needs ``n >= 4``. The ``"gretton"`` estimator needs ``n >= 2``.

    Returns
    -------
    float
        The HSIC estimate. For symmetric `K` equal to `L`, and for positive
        semi-definite `K` and `L` with ``"gretton"``, it is non-negative.
        Otherwise it can be negative. It scales with the product of the
        scales of `K` and `L` and underflows to 0 below about 1e-308.

    Raises
    ------
    ShapeError
        If a matrix is not 2-D, square and non-empty, the shapes differ,
        ``n < 2``, or ``estimator="song"`` and ``n < 4``.
    NonFiniteError
        If a matrix holds NaN or infinity, or the HSIC itself exceeds the
        float64 range (e.g. ``hsic(1e200 * K, 1e200 * K)``).
    OptionError
        If the estimator is unknown.

    Examples
    --------
    >>> import numpy as np, semrsm
    >>> x = np.random.default_rng(0).normal(size=(10, 3))
    >>> K = x @ x.T
    >>> bool(semrsm.hsic(K, K) > 0), semrsm.hsic(K, 2 * K) == 2 * semrsm.hsic(K, K)
    (True, True)
    """
    _check_estimator(estimator)
    K, L = _check_pair(K, L)
    _require_min_n(
        K.shape[0], f"the {estimator!r} HSIC estimator", _min_n(estimator)
    )
    (Ks, ek), (Ls, el) = _scaled(K), _scaled(L)
    value = _hsic_checked(Ks, Ls, estimator)
    try:
        return math.ldexp(value, ek + el)
    except OverflowError:
        raise NonFiniteError(
            f"HSIC = {value!r} * 2**{ek + el} is beyond the float64 range; "
            "rescale K or L (CKA is scale-invariant and has no such limit)"
        ) from None


def cka(K, L, debiased: bool = False) -> float:
    """Centred kernel alignment between two square matrices.

    ``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``
    (eq. 2 of the semantic RSM paper; Kornblith et al., 2019).

    Parameters
    ----------
    K, L : array_like, shape (n, n)
        Finite real symmetric matrices of the same shape, for example two
        RSMs over the same ``n`` items (semantic or spatio-semantic). They
        are not modified. Any scale from 1e-300 to 1e300 works.
    debiased : bool, default False
        If False, use the biased ``"gretton"`` HSIC estimator. If True, use
        the unbiased ``"song"`` estimator, which is the same as working with
        U-centred matrices. The debiased CKA needs ``n >= 4``, the biased
        one ``n >= 2``.

    Returns
    -------
    float
        The CKA value. ``CKA(K, K)`` is 1. The result does not change when
        `K` or `L` is multiplied by a positive number. For positive
        semi-definite `K` and `L` the biased CKA lies in ``[0, 1]``.

    Raises
    ------
    ShapeError
        If a matrix is not 2-D, square, non-empty and symmetric, the shapes
        differ, ``n < 2``, or ``debiased`` is True and ``n < 4``.
    NonFiniteError
        If a matrix holds NaN or infinity.
    OptionError
        If ``debiased`` is not a bool.
    SemrsmError
        If ``HSIC(K, K)`` or ``HSIC(L, L)`` is not positive: one matrix has
        no variance once centred (for example a constant RSM), so CKA is
        undefined. Values within floating-point rounding error of 0
        (relative to the matrix's own largest entry) count as 0.

    Examples
    --------
    >>> import numpy as np, semrsm
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(10, 3))
    >>> K, L = x @ x.T, np.tanh(x) @ np.tanh(x).T
    >>> c = semrsm.cka(K, L)
    >>> bool(0 < c < 1), round(semrsm.cka(K, K), 12), bool(abs(semrsm.cka(1e200 * K, L) - c) < 1e-12)
    (True, 1.0, True)
    """
    debiased = check_flag(debiased, "debiased")
    K, L = _check_pair(K, L)
    estimator = "song" if debiased else "gretton"
    _require_min_n(
        K.shape[0],
        "debiased CKA" if debiased else "biased CKA",
        _min_n(estimator),
    )
    K, L = _symmetric(K, "K"), _symmetric(L, "L")
    # CKA does not depend on the scales: work on matrices with max|.| in [0.5, 1).
    K, L = _scaled(K)[0], _scaled(L)[0]
    hkk = _hsic_checked(K, K, estimator)
    hll = _hsic_checked(L, L, estimator)
    for name, M, value in (("K", K, hkk), ("L", L, hll)):
        if not value > _zero_tolerance(M, estimator):
            raise SemrsmError(
                f"CKA is undefined: HSIC({name}, {name}) = {value!r} relative to "
                f"its scale ({estimator} estimator): the RSM {name} has no "
                "variance after centring (for example it is constant)"
            )
    hkl = _hsic_checked(K, L, estimator)
    return float(hkl / np.sqrt(hkk * hll))
