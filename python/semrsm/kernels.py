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
from typing import Callable, Iterable, Optional, Union

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
    "streaming_sigma",
    "middle_values",
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


#: Values gathered into memory by :func:`middle_values` once a bucket holds at most this many
#: (8 MiB of float64); larger buckets are split further by the next 16 bits.
SELECT_GATHER = 1 << 20

_ABS = np.uint64(0x7FFF_FFFF_FFFF_FFFF)


class _Rank:
    """One rank sought by :func:`middle_values`: its rank among the values whose top ``known``
    bits equal ``prefix``; ``gather`` once those are few enough to partition in memory."""

    def __init__(self, rank: int):
        self.rank = rank
        self.prefix = 0
        self.known = 0
        self.gather = False
        self.value: Optional[int] = None

    def narrow(self, hist: np.ndarray) -> None:
        """Fix the next 16 bits from the histogram of those bits among the candidates."""
        cum = np.cumsum(hist)
        bucket = int(np.searchsorted(cum, self.rank, side="right"))
        self.rank -= int(cum[bucket - 1]) if bucket else 0
        self.prefix = (self.prefix << 16) | bucket
        self.known += 16
        if self.known == 64:  # every bit fixed: the candidates left are all this value
            self.value = self.prefix
        elif int(hist[bucket]) <= SELECT_GATHER:
            self.gather = True


def middle_values(
    blocks: Callable[[], Iterable[np.ndarray]], *, positive: bool = False
) -> Optional[tuple[float, float]]:
    """The two middle values of a multiset of non-negative float64 values given in blocks.

    Exact selection in a few passes over ``blocks()`` (a function returning a fresh iterable of
    1-D float64 arrays each time it is called) with ``O(65536 + SELECT_GATHER)`` memory: the bit
    patterns of non-negative doubles order like the numbers (as unsigned integers), so pass 1
    histograms the top 16 bits of every value, finds the bucket holding the wanted rank, and
    each further pass histograms the next 16 bits within that bucket, until the bucket holds
    few values (gathered and partitioned in memory) or all 64 bits are fixed (ties). Both
    middle ranks of an even count are selected in the same passes.

    Parameters
    ----------
    blocks : callable
        ``blocks()`` yields the values (each value once, in any blocks). Negative zero counts
        as zero; negative or NaN values are not allowed.
    positive : bool
        Only count values ``> 0``.

    Returns
    -------
    (lo, hi) or None
        The values of rank ``(n - 1) // 2`` and ``n // 2`` in sorted order (equal for odd ``n``),
        so that ``np.median(values)`` is ``lo`` (odd) or ``(lo + hi) / 2`` (even); None for
        no values.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm.kernels import middle_values
    >>> v = np.array([5.0, 0.0, 2.0, 2.0, 9.0, 1.0])
    >>> middle_values(lambda: np.array_split(v, 3))
    (2.0, 2.0)
    >>> middle_values(lambda: [v], positive=True)
    (2.0, 2.0)
    """

    def bits() -> Iterable[np.ndarray]:
        for b in blocks():
            u = np.ascontiguousarray(b, dtype=np.float64).reshape(-1).view(np.uint64) & _ABS
            yield u[u != 0] if positive else u

    count = 0
    hist = np.zeros(1 << 16, dtype=np.int64)
    for u in bits():
        count += u.size
        hist += np.bincount((u >> np.uint64(48)).astype(np.intp), minlength=1 << 16)
    if count == 0:
        return None
    targets = [_Rank(r) for r in sorted({(count - 1) // 2, count // 2})]
    for t in targets:
        t.narrow(hist)
    while any(t.value is None for t in targets):
        open_ = [t for t in targets if t.value is None]
        hists = [np.zeros(1 << 16, dtype=np.int64) for _ in open_]
        gathered: list[list[np.ndarray]] = [[] for _ in open_]
        for u in bits():
            for t, h, g in zip(open_, hists, gathered):
                inside = u[(u >> np.uint64(64 - t.known)) == np.uint64(t.prefix)]
                if t.gather:
                    g.append(inside)
                else:
                    digits = (inside >> np.uint64(48 - t.known)) & np.uint64(0xFFFF)
                    h += np.bincount(digits.astype(np.intp), minlength=1 << 16)
        for t, h, g in zip(open_, hists, gathered):
            if t.gather:
                values = np.concatenate(g) if g else np.zeros(0, np.uint64)
                t.value = int(np.partition(values, t.rank)[t.rank])
            else:
                t.narrow(h)
    found = np.array([t.value for t in targets], dtype=np.uint64).view(np.float64)
    lo, hi = found[0], found[-1]
    return float(lo), float(hi)


def streaming_sigma(
    sigma: Sigma,
    d2_blocks: Callable[[], Iterable[tuple[np.ndarray, Optional[np.ndarray]]]],
    *,
    sigma_scale: float = 1.0,
) -> float:
    """:func:`resolve_sigma` for a named rule (or a number) without the whole ``d²`` matrix.

    ``d2_blocks()`` yields ``(d2_rows, upper)`` for consecutive row blocks of the squared
    distances (exact zeros on the diagonal of a square matrix), ``upper`` a boolean mask of the
    entries ``i < j`` of those rows for a square matrix, None for a rectangular one. The result
    is the same float, bit for bit, as :func:`resolve_sigma` on the whole matrix: the medians
    are found by exact selection (:func:`middle_values`) and combined as ``np.median`` does.

    Raises
    ------
    OptionError
        For a callable ``sigma`` (it needs the whole matrix).
    SemrsmError
        As :func:`kornblith_sigma`.
    """
    sigma = check_sigma_rule(sigma)
    scale = check_sigma_scale(sigma_scale)
    if callable(sigma):
        raise OptionError("a callable sigma needs the whole matrix of squared distances")
    if sigma is None or sigma == "median":
        # The non-zero distances i < j (square) or all (rectangular); sqrt is monotone, so the
        # middle distances are the square roots of the middle squared distances.
        middle = middle_values(lambda: (d2 if upper is None else d2[upper] for d2, upper in d2_blocks()), positive=True)
        if middle is None:
            value = 1.0
        else:
            # np.median: the mean of the two middle values (one value, for an odd count: then
            # both are that value, and their mean is it, exactly).
            value = float(np.median(np.sqrt(np.array(middle))))
    elif sigma == "kornblith":
        middle = middle_values(lambda: (d2 for d2, _ in d2_blocks()))
        assert middle is not None
        median = float(np.median(np.array(middle)))
        if not median > 0:
            raise SemrsmError(
                "sigma='kornblith' is 0: the median of all squared distances (diagonal included) is 0, "
                "as when most samples are duplicates; use sigma='median' or a number"
            )
        value = float(np.sqrt(median))
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
