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
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ._errors import OptionError, SemrsmError

__all__ = ["KERNELS", "linear", "cosine", "rbf", "squared_distances", "median_sigma"]

#: Names accepted by ``semrsm.build(kernel=...)``.
KERNELS = ("linear", "cosine", "rbf")


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


def rbf(
    G: np.ndarray,
    sq_norms_x: np.ndarray,
    sq_norms_y: np.ndarray,
    sigma: Optional[float] = None,
    *,
    square: bool = False,
) -> np.ndarray:
    """RBF kernel ``exp(-d² / (2 σ²))`` from matched inner products.

    Parameters
    ----------
    G : ndarray, shape (N, M)
        Matched inner products.
    sq_norms_x, sq_norms_y : ndarray, shapes (N,) and (M,)
        Squared L2 norms of the samples.
    sigma : float, optional
        Bandwidth; default :func:`median_sigma` of the distances.
    square : bool
        ``G`` compares ``x`` with itself (exact zero distance on the diagonal).

    Returns
    -------
    ndarray, shape (N, M)
        Values in (0, 1].
    """
    d2 = squared_distances(G, sq_norms_x, sq_norms_y, square=square)
    if sigma is None:
        sigma = median_sigma(d2, square=square)
    else:
        sigma = check_sigma(sigma)
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
