"""Kernels computed from matched inner products.

For every kernel semrsm supports, the only quantity that depends on the pair is the matched inner
product ``G[i, j] = max_P <x_i, P y_j>`` (``semrsm.gram``); the rest are the squared norms of the
samples, which no permutation changes:

- linear: ``K = G``
- cosine: ``K = G / (||x_i|| ||y_j||)``
- RBF: ``K = exp(-d² / (2 σ²))`` with ``d² = ||x_i||² + ||y_j||² - 2 G = min_P ||x_i - P y_j||²``

With the identity matcher (``matcher="none"``) these are the classic spatio-semantic kernels of
Kornblith et al. (2019); with ``matcher="exact"`` they are the semantic kernels of the paper
(Appendix A).

The RBF bandwidth σ is a number or a rule applied to the matrix of squared distances
(:func:`resolve_sigma`): ``"median"`` (default, :func:`median_sigma`), ``"kornblith"``
(:func:`kornblith_sigma`, the rule of Kornblith et al.'s ``gram_rbf``) or any callable; a
``sigma_scale`` multiplies the result (``gram_rbf``'s ``threshold``). The README's "RBF bandwidth"
table says which published code uses which rule and how to reproduce its numbers.
"""

from __future__ import annotations

import numbers
from typing import Callable, Optional, Union

import numpy as np

from ._errors import OptionError, SemrsmError

__all__ = [
    "KERNELS",
    "SIGMA_RULES",
    "linear",
    "cosine",
    "rbf",
    "squared_distances",
    "median_sigma",
    "kornblith_sigma",
    "resolve_sigma",
]

#: Names accepted by ``semrsm.build(kernel=...)``.
KERNELS = ("linear", "cosine", "rbf")

#: Named bandwidth rules accepted by ``sigma=`` (besides numbers and callables).
SIGMA_RULES = ("median", "kornblith")

#: What ``sigma=`` accepts: a bandwidth, a rule's name, or a rule ``d2 -> σ``.
Sigma = Union[None, float, str, Callable[[np.ndarray], float]]


def linear(G: np.ndarray) -> np.ndarray:
    """Linear kernel: the matched inner products themselves (a copy of ``G``).

    Parameters
    ----------
    G : ndarray, shape (N, M)
        Matched inner products.

    Returns
    -------
    ndarray, shape (N, M)
    """
    return np.array(G, dtype=np.float64, copy=True)


def cosine(G: np.ndarray, sq_norms_x: np.ndarray, sq_norms_y: np.ndarray, *, square: bool = False) -> np.ndarray:
    """Cosine kernel ``G / (||x_i|| ||y_j||)``, clipped to [-1, 1] against rounding.

    Parameters
    ----------
    G : ndarray, shape (N, M)
        Matched inner products.
    sq_norms_x : ndarray, shape (N,)
        Squared L2 norms of the (centred) samples of ``x``.
    sq_norms_y : ndarray, shape (M,)
        Squared L2 norms of the samples of ``y`` (``sq_norms_x`` again for a square RSM).
    square : bool
        ``G`` compares ``x`` with itself: the diagonal is set to its exact value 1.

    Raises
    ------
    SemrsmError
        If a sample has zero norm (its cosine similarity is undefined).
    """
    nx = _norms(sq_norms_x, "x")
    ny = _norms(sq_norms_y, "y")
    K = np.clip(np.asarray(G, dtype=np.float64) / np.outer(nx, ny), -1.0, 1.0)
    if square:
        np.fill_diagonal(K, 1.0)
    return K


def squared_distances(
    G: np.ndarray, sq_norms_x: np.ndarray, sq_norms_y: np.ndarray, *, square: bool = False
) -> np.ndarray:
    """``d² = ||x_i||² + ||y_j||² - 2 G``, clipped at 0 against rounding.

    With ``square=True`` the diagonal is set to its exact value 0 (a sample matched with itself).
    """
    d2 = np.add.outer(np.asarray(sq_norms_x, np.float64), np.asarray(sq_norms_y, np.float64))
    d2 -= 2.0 * np.asarray(G, dtype=np.float64)
    np.maximum(d2, 0.0, out=d2)
    if square:
        np.fill_diagonal(d2, 0.0)
    return d2


def median_sigma(d2: np.ndarray, *, square: bool = False) -> float:
    """Default RBF bandwidth: the median of the non-zero distances ``sqrt(d²)``.

    For a square RSM only the off-diagonal entries (``i < j``) are used; for a rectangular one all
    entries. This is computed over the whole matrix (the paper took it per mini-batch, so values
    differ slightly from the paper's). If no distance is non-zero, every kernel value is 1 for any
    σ and 1.0 is returned.

    Parameters
    ----------
    d2 : ndarray, shape (N, M)
        Squared distances, e.g. from :func:`squared_distances`.
    square : bool
        ``d2`` compares a set with itself.
    """
    d2 = np.asarray(d2, dtype=np.float64)
    values = d2[np.triu_indices(d2.shape[0], k=1)] if square else d2.ravel()
    values = values[values > 0]
    if values.size == 0:
        return 1.0
    return float(np.median(np.sqrt(values)))


def kornblith_sigma(d2: np.ndarray) -> float:
    """Bandwidth of Kornblith et al.'s ``gram_rbf``: ``σ = sqrt(median(d²))`` over *all* entries.

    ``gram_rbf(x, threshold)`` (Kornblith et al., 2019, the paper's public demo code) uses
    ``σ² = threshold² · median(d²)``, the median taken over the whole ``N × N`` matrix of squared
    distances, its zero diagonal included; ``sigma_scale`` plays the role of ``threshold``. For a
    rectangular ``d2`` all its entries are used.

    Parameters
    ----------
    d2 : ndarray, shape (N, M)
        Squared distances, e.g. from :func:`squared_distances`.

    Raises
    ------
    SemrsmError
        If that median is 0 (at least half of the distances are 0, e.g. duplicated samples):
        ``gram_rbf`` would divide by zero.
    """
    median = float(np.median(np.asarray(d2, dtype=np.float64)))
    if not median > 0:
        raise SemrsmError(
            "sigma='kornblith' is 0: the median of all squared distances (diagonal included) is 0, "
            "as when most samples are duplicates; use sigma='median' or a number"
        )
    return float(np.sqrt(median))


def check_sigma_rule(sigma: object) -> Sigma:
    """``None``, a rule of :data:`SIGMA_RULES`, a callable or a positive finite number; else
    :class:`OptionError`. Numbers come back as ``float``."""
    if sigma is None or callable(sigma) or (isinstance(sigma, str) and sigma in SIGMA_RULES):
        return sigma  # type: ignore[return-value]
    if isinstance(sigma, (str, bool)) or not isinstance(sigma, (numbers.Real, np.ndarray)):
        raise OptionError(
            f"sigma must be a positive number, one of {', '.join(map(repr, SIGMA_RULES))} or a "
            f"callable of the squared-distance matrix; got {sigma!r}"
        )
    return check_sigma(sigma)


def check_sigma_scale(sigma_scale: object) -> float:
    """A positive finite multiplier of σ, else :class:`OptionError`."""
    if isinstance(sigma_scale, bool) or not isinstance(sigma_scale, numbers.Real):
        raise OptionError(f"sigma_scale must be a positive number, got {sigma_scale!r}")
    value = float(sigma_scale)
    if not np.isfinite(value) or value <= 0:
        raise OptionError(f"sigma_scale must be a positive finite number, got {sigma_scale!r}")
    return value


def resolve_sigma(sigma: Sigma, d2: np.ndarray, *, square: bool = False, sigma_scale: float = 1.0) -> float:
    """The bandwidth σ that ``sigma`` names, for the squared distances ``d2``, times ``sigma_scale``.

    Parameters
    ----------
    sigma : float, {"median", "kornblith"}, callable or None
        A number: σ itself. ``None`` or ``"median"``: :func:`median_sigma` (the median of the
        non-zero distances). ``"kornblith"``: :func:`kornblith_sigma`. A callable: called with a
        read-only view of ``d2`` (the whole matrix, exact zeros on the diagonal of a square one),
        it returns σ.
    d2 : ndarray, shape (N, M)
        Squared distances, e.g. from :func:`squared_distances`.
    square : bool
        ``d2`` compares a set with itself.
    sigma_scale : float
        Multiplies σ (Kornblith et al.'s ``threshold``).

    Returns
    -------
    float
        σ, positive and finite.

    Raises
    ------
    OptionError
        For an unknown rule, a bad ``sigma_scale``, or a callable that does not return a positive
        finite number.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm.kernels import resolve_sigma
    >>> d2 = np.array([[0.0, 4.0, 16.0], [4.0, 0.0, 9.0], [16.0, 9.0, 0.0]])
    >>> resolve_sigma("median", d2, square=True), resolve_sigma("kornblith", d2, square=True)
    (3.0, 2.0)
    >>> resolve_sigma(lambda d2: float(np.sqrt(d2.max())), d2, sigma_scale=0.5)
    2.0
    """
    sigma = check_sigma_rule(sigma)
    scale = check_sigma_scale(sigma_scale)
    d2 = np.asarray(d2, dtype=np.float64)
    if sigma is None or sigma == "median":
        value = median_sigma(d2, square=square)
    elif sigma == "kornblith":
        value = kornblith_sigma(d2)
    elif callable(sigma):
        view = d2.view()
        view.flags.writeable = False
        returned = sigma(view)
        try:
            value = check_sigma(returned)
        except OptionError:
            raise OptionError(
                f"the sigma callable must return a positive finite number, got {returned!r}"
            ) from None
    else:
        value = float(sigma)  # type: ignore[arg-type]
    return check_sigma(value * scale)


def rbf(
    G: np.ndarray,
    sq_norms_x: np.ndarray,
    sq_norms_y: np.ndarray,
    sigma: Sigma = None,
    *,
    square: bool = False,
    sigma_scale: float = 1.0,
) -> np.ndarray:
    """RBF kernel ``exp(-d² / (2 σ²))`` from matched inner products.

    Parameters
    ----------
    G : ndarray, shape (N, M)
        Matched inner products.
    sq_norms_x, sq_norms_y : ndarray, shapes (N,) and (M,)
        Squared L2 norms of the samples.
    sigma : float, {"median", "kornblith"}, callable or None
        Bandwidth or the rule that gives it (:func:`resolve_sigma`); default ``"median"``.
    square : bool
        ``G`` compares ``x`` with itself (exact zero distance on the diagonal).
    sigma_scale : float
        Multiplies σ.

    Returns
    -------
    ndarray, shape (N, M)
        Values in (0, 1].
    """
    d2 = squared_distances(G, sq_norms_x, sq_norms_y, square=square)
    return gaussian(d2, resolve_sigma(sigma, d2, square=square, sigma_scale=sigma_scale))


def gaussian(d2: np.ndarray, sigma: float) -> np.ndarray:
    """``exp(-d² / (2 σ²))`` for squared distances ``d2`` and a positive finite ``sigma``."""
    # (d / σ)² / 2 rather than d² / (2σ²): σ² under- or overflows for σ below 1e-154 or above
    # 1e154 (σ = 1e-170 once gave 0/0 = NaN on the diagonal). A ratio beyond the float range
    # squares to inf and gives exactly 0, the true value's rounding.
    with np.errstate(over="ignore"):
        return np.exp(-0.5 * np.square(np.sqrt(d2) / sigma))


def check_sigma(sigma: object) -> float:
    """A positive finite bandwidth, else :class:`OptionError`."""
    try:
        value = float(sigma)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise OptionError(f"sigma must be a positive number, got {sigma!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise OptionError(f"sigma must be a positive finite number, got {sigma!r}")
    return value


def _norms(sq_norms: np.ndarray, name: str) -> np.ndarray:
    sq = np.asarray(sq_norms, dtype=np.float64)
    zero = np.flatnonzero(sq <= 0)
    if zero.size:
        raise SemrsmError(
            f"sample {int(zero[0])} of {name} has zero norm (after centering, if enabled); "
            "its cosine similarity is undefined. Use kernel='linear' or 'rbf', or center=False"
        )
    return np.sqrt(sq)
