"""The paper's analyses of RSMs as functions: retrieval, output agreement, translation, layers.

Each function takes RSMs (from :func:`semrsm.build`, any matcher) and returns plain numbers and
numpy arrays in a dict, so the paper's experiments are a few lines::

    import semrsm
    from semrsm import analysis
    spatial = semrsm.build(z, kernel="cosine", matcher="none")     # spatio-semantic
    semantic = semrsm.build(z, kernel="cosine", matcher="exact")   # semantic
    analysis.retrieval(semantic, labels)["map"]                     # Sec. 4.2, Table 2
    analysis.rsm_correlation(semantic, analysis.jsd(probs))         # Sec. 4.3, Tables 1 and 4
    analysis.pair_gap(semantic, analysis.partner_pairs(10))["auroc"]  # Sec. 4.1, Fig. 2

- :func:`retrieval`: mAP, precision@k and the paper's F1@k of nearest-neighbour retrieval,
  square (leave-one-out) or rectangular (queries × database) RSMs, memory-mapped ones included.
- :func:`jsd` and :func:`rsm_correlation`: Jensen–Shannon divergences between class-probability
  vectors and their Pearson/Spearman correlation with an RSM's off-diagonal entries.
- :func:`pair_gap` and :func:`partner_pairs`: how far a known partner (a shifted crop) stands out
  from the other inputs, per pair and as an AUROC; :func:`translation` runs the whole experiment.
- :func:`layer_comparison`: CKA between semantic and spatio-semantic RSMs of a list of layers
  (the paper's Fig. 15), biased and debiased.

Ties are broken by index everywhere (a lower index ranks first), so results are deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._errors import NonFiniteError, OptionError, SemrsmError, ShapeError

__all__ = [
    "retrieval",
    "jsd",
    "rsm_correlation",
    "pair_gap",
    "partner_pairs",
    "translation",
    "layer_comparison",
]

#: Rows of an RSM converted to float64 at a time (bounds memory on memory-mapped inputs).
_ROW_BLOCK = 512
#: Bytes of the temporary (rows, M, C) block of :func:`jsd`.
_JSD_BLOCK_BYTES = 64 << 20


# --------------------------------------------------------------------------------------------
# validation helpers


def _matrix(K: Any, name: str, *, square: bool = False) -> np.ndarray:
    """``K`` as a real 2-D array without copying (memmaps stay memmaps); finiteness is checked
    block by block by the callers that read it."""
    from ._validation import _torch_to_numpy, is_torch_tensor

    try:
        arr = _torch_to_numpy(K, name) if is_torch_tensor(K) else np.asarray(K)
    except SemrsmError:
        raise
    except Exception as exc:  # anything np.asarray refuses
        raise SemrsmError(f"{name} could not be converted to a numpy array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise SemrsmError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ShapeError(f"{name} must be a 2-D matrix, got shape {arr.shape}")
    if arr.size == 0:
        raise ShapeError(f"{name} is empty: shape {arr.shape}")
    if square and arr.shape[0] != arr.shape[1]:
        raise ShapeError(f"{name} must be square (N, N), got shape {arr.shape}")
    return arr


def _finite_block(block: np.ndarray, name: str, row0: int) -> np.ndarray:
    out = np.asarray(block, dtype=np.float64)
    if not np.isfinite(out).all():
        r, c = (int(i) for i in np.argwhere(~np.isfinite(out))[0])
        raise NonFiniteError(f"{name} contains a non-finite value ({out[r, c]}) at index ({row0 + r}, {c})")
    return out


def _finite(K: np.ndarray, name: str) -> np.ndarray:
    return _finite_block(K, name, 0)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties given their average rank (as ``scipy.stats.rankdata``)."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # Start of each run of equal values in sorted order.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    average = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if denominator == 0.0:
        raise SemrsmError("a correlation is undefined when one side is constant")
    return float(np.dot(a, b) / denominator)


def _auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(positive > negative) + P(tie) / 2, from the Mann–Whitney U statistic."""
    n_pos, n_neg = len(positive), len(negative)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _ranks(np.concatenate([positive, negative]))
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


# --------------------------------------------------------------------------------------------
# retrieval


def _labels(labels: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise ShapeError(
            f"{name} must have one entry per item: shape ({n},) of labels or ({n}, classes) of "
            f"class counts, got shape {arr.shape}"
        )
    if arr.ndim == 2:
        if arr.dtype.kind not in "biuf":
            raise SemrsmError(f"{name} as class counts must be numeric, got dtype {arr.dtype}")
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise SemrsmError(f"{name} as class counts must be finite and non-negative")
        arr = arr.astype(np.float64)
    return arr


def _f1(query: np.ndarray, found: np.ndarray) -> np.ndarray:
    """The paper's F1 (App. D.1, eqs. 9-12) between one query's class counts and those of the
    retrieved items (rows of ``found``); 1 where both hold nothing."""
    tp = np.minimum(query, found).sum(axis=-1)
    fn = np.maximum(0.0, query - found).sum(axis=-1)
    fp = np.maximum(0.0, found - query).sum(axis=-1)
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.ones_like(tp), where=denominator > 0)


def retrieval(
    K: Any,
    labels: Any,
    labels_db: Any = None,
    k: int = 1,
    *,
    exclude_self: Optional[bool] = None,
) -> dict[str, Any]:
    """Nearest-neighbour retrieval by an RSM: mAP, precision@k and the paper's F1@k.

    Each row of ``K`` is a query; the columns (the database) are ranked by decreasing similarity,
    ties by increasing index. An item is *relevant* to a query when it has the same label (1-D
    labels) or shares at least one class (2-D class counts). This is the paper's retrieval
    experiment (Sec. 4.2, Fig. 3, Table 2).

    Parameters
    ----------
    K : array_like, shape (N, N) or (N, M)
        Similarities, larger = more similar: a square RSM ``build(x)`` (each item is a query and
        the others are the database) or a rectangular ``build(x, y)`` (queries × database).
        Memory-mapped arrays (``np.load(..., mmap_mode="r")``, ``gram(..., out=...)``) are read
        512 rows at a time.
    labels : array_like, shape (N,) or (N, classes)
        Label of each query (any comparable values), or per-query class counts (non-negative
        numbers: how many objects of each class the image holds, as in the paper's App. D.1).
    labels_db : array_like, shape (M,) or (M, classes), optional
        Labels of the database (columns). Default: ``labels`` (then ``K`` must be square).
    k : int, default 1
        Depth of ``precision_at_k``, ``f1_at_k`` and ``top``.
    exclude_self : bool, optional
        Leave column ``i`` out of query ``i``'s ranking. Default: True when ``labels_db`` is None
        (square leave-one-out retrieval), False otherwise.

    Returns
    -------
    dict
        ``"map"`` : float, mean over queries of the average precision (the mean of the precision
        at the rank of each relevant item); queries without any relevant item are left out.
        ``"precision_at_1"``, ``"precision_at_k"`` : float, mean fraction of relevant items among
        the first 1 and ``k`` retrieved.
        ``"f1_at_1"``, ``"f1_at_k"`` : float, the paper's F1 (App. D.1, eqs. 9–12) between the
        query and each retrieved item, averaged over the first 1 / ``k`` items and over queries:
        with class counts ``Q`` (query) and ``D`` (item), ``TP = Σ_c min(Q_c, D_c)``,
        ``FN = Σ_c max(0, Q_c - D_c)``, ``FP = Σ_c max(0, D_c - Q_c)`` and
        ``F1 = 2 TP / (2 TP + FP + FN)`` (1 when both hold nothing). With 1-D labels each item
        holds one object of its class, so F1 is 1 for a same-label item and 0 otherwise, and
        ``f1_at_1 == precision_at_1``.
        ``"ap"`` : ndarray (N,), each query's average precision (NaN without relevant items).
        ``"top"`` : ndarray of int64 (N, k), the first ``k`` retrieved columns of each query.
        ``"k"`` : int; ``"n_queries"`` : int, queries counted in ``"map"``.

    Raises
    ------
    ShapeError
        ``K`` not 2-D, labels of the wrong length, or a square-only option on a rectangular K.
    NonFiniteError
        NaN or infinity in ``K``.
    OptionError
        ``k`` not an integer in ``1..candidates``.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm import analysis
    >>> K = np.array([[1.0, 0.9, 0.1, 0.2],
    ...               [0.9, 1.0, 0.3, 0.1],
    ...               [0.1, 0.3, 1.0, 0.2],
    ...               [0.2, 0.1, 0.2, 1.0]])
    >>> r = analysis.retrieval(K, labels=[0, 0, 1, 1])
    >>> r["precision_at_1"], r["f1_at_1"]
    (0.5, 0.5)
    >>> r["ap"].tolist(), r["map"]
    ([1.0, 1.0, 0.5, 0.5], 0.75)
    >>> r["top"].ravel().tolist()
    [1, 0, 1, 0]
    """
    K = _matrix(K, "K")
    n, m = K.shape
    labels_q = _labels(labels, n, "labels")
    if labels_db is None:
        if n != m:
            raise ShapeError(f"a rectangular K {K.shape} needs labels_db for its {m} columns")
        labels_d = labels_q
    else:
        labels_d = _labels(labels_db, m, "labels_db")
        if labels_d.ndim != labels_q.ndim or (labels_q.ndim == 2 and labels_q.shape[1] != labels_d.shape[1]):
            raise ShapeError(
                f"labels {labels_q.shape} and labels_db {labels_d.shape} must both be labels or "
                "both be class counts over the same classes"
            )
    if exclude_self is None:
        exclude_self = labels_db is None
    if exclude_self and n != m:
        raise ShapeError(f"exclude_self needs a square K, got shape {K.shape}")
    candidates = m - 1 if exclude_self else m
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= candidates:
        raise OptionError(f"k must be an integer from 1 to {candidates} (the candidates per query), got {k!r}")
    k = int(k)
    counts = labels_q.ndim == 2

    ap = np.full(n, np.nan)
    top = np.empty((n, k), dtype=np.int64)
    p_at_1 = np.empty(n)
    p_at_k = np.empty(n)
    f1_at_1 = np.empty(n)
    f1_at_k = np.empty(n)
    positions = np.arange(1, candidates + 1, dtype=np.float64)
    for row0 in range(0, n, _ROW_BLOCK):
        block = _finite_block(K[row0 : row0 + _ROW_BLOCK], "K", row0)
        for r in range(block.shape[0]):
            i = row0 + r
            order = np.argsort(-block[r], kind="stable")  # descending, ties by index
            if exclude_self:
                order = order[order != i]
            if counts:
                f1 = _f1(labels_q[i], labels_d[order])
                relevant = np.minimum(labels_q[i], labels_d[order]).sum(axis=1) > 0
            else:
                relevant = labels_d[order] == labels_q[i]
                f1 = relevant.astype(np.float64)
            top[i] = order[:k]
            p_at_1[i] = float(relevant[0])
            p_at_k[i] = relevant[:k].mean()
            f1_at_1[i] = f1[0]
            f1_at_k[i] = f1[:k].mean()
            hits = np.cumsum(relevant)
            if hits[-1] > 0:
                ap[i] = float((hits[relevant] / positions[relevant]).sum() / hits[-1])
    with_relevant = ~np.isnan(ap)
    return {
        "map": float(ap[with_relevant].mean()) if with_relevant.any() else float("nan"),
        "precision_at_1": float(p_at_1.mean()),
        "f1_at_1": float(f1_at_1.mean()),
        "precision_at_k": float(p_at_k.mean()),
        "f1_at_k": float(f1_at_k.mean()),
        "ap": ap,
        "top": top,
        "k": k,
        "n_queries": int(with_relevant.sum()),
    }


# --------------------------------------------------------------------------------------------
# output agreement


def _probabilities(p: Any, name: str) -> np.ndarray:
    arr = _finite(_matrix(p, name), name)
    if (arr < 0).any():
        raise SemrsmError(f"{name} must be non-negative (probabilities), found {arr.min()}")
    sums = arr.sum(axis=1)
    if (sums <= 0).any():
        raise SemrsmError(f"row {int(np.argmin(sums))} of {name} sums to 0; probabilities are needed")
    return arr / sums[:, None]


def jsd(p: Any, q: Any = None) -> np.ndarray:
    """Jensen–Shannon divergences (natural log) between probability vectors.

    ``JSD(a, b) = ½ KL(a ‖ m) + ½ KL(b ‖ m)`` with ``m = (a + b) / 2`` and ``0 · log 0 = 0``;
    it lies in ``[0, log 2]``. The paper correlates it with representational similarity
    (Sec. 4.3, App. E): see :func:`rsm_correlation`.

    Parameters
    ----------
    p : array_like, shape (N, C)
        One probability vector per row (e.g. a classifier's softmax output). Rows are divided by
        their sum first (so float32 rounding does not matter); entries must be non-negative.
    q : array_like, shape (M, C), optional
        A second set. Default: ``p``.

    Returns
    -------
    ndarray of float64, shape (N, N) or (N, M)
        ``D[i, j] = JSD(p_i, q_j)``; symmetric with a zero diagonal when ``q`` is None.

    Raises
    ------
    ShapeError
        Not 2-D, or ``p`` and ``q`` with different numbers of classes.
    NonFiniteError
        NaN or infinity in the input.
    SemrsmError
        Negative entries or a row summing to 0.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm import analysis
    >>> D = analysis.jsd(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    >>> bool(np.isclose(D[0, 1], np.log(2)))
    True
    >>> D.shape, float(D[2, 2])
    ((3, 3), 0.0)
    """
    a = _probabilities(p, "p")
    b = a if q is None else _probabilities(q, "q")
    if a.shape[1] != b.shape[1]:
        raise ShapeError(f"p and q must have the same number of classes, got {a.shape[1]} and {b.shape[1]}")
    n, m, c = a.shape[0], b.shape[0], a.shape[1]
    out = np.empty((n, m))
    rows = max(1, _JSD_BLOCK_BYTES // (8 * m * c))
    for r0 in range(0, n, rows):
        x = a[r0 : r0 + rows, None, :]
        y = b[None, :, :]
        mid = (x + y) / 2.0
        # a · log(a / m) with 0 · log 0 = 0; a > 0 implies m > 0.
        tx = x * np.log(np.divide(x, mid, out=np.ones(np.broadcast_shapes(x.shape, mid.shape)), where=x > 0))
        ty = y * np.log(np.divide(y, mid, out=np.ones(np.broadcast_shapes(y.shape, mid.shape)), where=y > 0))
        out[r0 : r0 + rows] = 0.5 * (tx.sum(axis=2) + ty.sum(axis=2))
    np.maximum(out, 0.0, out=out)  # rounding can leave -1e-17
    if q is None:
        out = (out + out.T) / 2.0
        np.fill_diagonal(out, 0.0)
    return out


_CORRELATIONS = ("pearson", "spearman")


def rsm_correlation(K: Any, D: Any, method: str = "pearson") -> float:
    """Correlation between the off-diagonal entries of two matrices, e.g. an RSM and a JSD matrix.

    The paper's Tables 1 (Pearson) and 4 (Spearman): a representational similarity that tracks
    what the classifier deems similar correlates *negatively* with the divergence of its outputs.

    Parameters
    ----------
    K, D : array_like, shape (N, N) or (N, M)
        Two matrices of the same shape. Square: the entries above the diagonal (``i < j``) are
        compared (each unordered pair once, self-similarities left out); rectangular: all entries.
    method : {"pearson", "spearman"}
        Spearman is Pearson on ranks, ties given their average rank.

    Returns
    -------
    float
        The correlation coefficient in ``[-1, 1]``.

    Raises
    ------
    ShapeError
        Different shapes, or fewer than 2 entries to correlate.
    NonFiniteError
        NaN or infinity.
    OptionError
        Unknown ``method``.
    SemrsmError
        One side constant (the correlation is undefined).

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm import analysis
    >>> K = np.array([[1.0, 0.8, 0.2], [0.8, 1.0, 0.4], [0.2, 0.4, 1.0]])
    >>> D = 1.0 - K
    >>> analysis.rsm_correlation(K, D), analysis.rsm_correlation(K, D ** 3, "spearman")
    (-1.0, -1.0)
    """
    if method not in _CORRELATIONS:
        raise OptionError(f"unknown method {method!r}; choose one of {', '.join(_CORRELATIONS)}")
    a = _finite(_matrix(K, "K"), "K")
    b = _finite(_matrix(D, "D"), "D")
    if a.shape != b.shape:
        raise ShapeError(f"K and D must have the same shape, got {a.shape} and {b.shape}")
    if a.shape[0] == a.shape[1]:
        iu = np.triu_indices(a.shape[0], k=1)
        a, b = a[iu], b[iu]
    else:
        a, b = a.ravel(), b.ravel()
    if len(a) < 2:
        raise ShapeError("at least 2 off-diagonal entries (N >= 3 for a square matrix) are needed")
    if method == "spearman":
        a, b = _ranks(a), _ranks(b)
    return max(-1.0, min(1.0, _pearson(a, b)))


# --------------------------------------------------------------------------------------------
# translation experiment


def partner_pairs(n: int) -> np.ndarray:
    """The pairs ``(i, i + n)`` of a batch of ``n`` inputs followed by their ``n`` partners.

    That is the layout of the paper's translation experiment (Sec. 4.1, Fig. 2) and of
    :func:`semrsm.load_example`: rows ``0..n-1`` are crops, rows ``n..2n-1`` the same crops
    shifted.

    Parameters
    ----------
    n : int
        Number of pairs, at least 1.

    Returns
    -------
    ndarray of int64, shape (n, 2)

    Examples
    --------
    >>> from semrsm import analysis
    >>> analysis.partner_pairs(3).tolist()
    [[0, 3], [1, 4], [2, 5]]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise OptionError(f"n must be a positive integer, got {n!r}")
    i = np.arange(int(n), dtype=np.int64)
    return np.column_stack([i, i + n])


def pair_gap(K: Any, pairs: Any) -> dict[str, Any]:
    """How far each input's known partner stands out from the other inputs in an RSM.

    For a pair ``(i, j)`` the *others* are row ``i`` of ``K`` without columns ``i`` and ``j``.
    This quantifies the paper's translation experiment (Sec. 4.1, Fig. 2): a shifted crop should
    be far more similar to its original than unrelated images are.

    Parameters
    ----------
    K : array_like, shape (N, N)
        A square RSM (similarities), N >= 3.
    pairs : array_like of int, shape (P, 2)
        Index pairs ``(i, j)``, ``i != j``, no unordered pair listed twice; e.g.
        :func:`partner_pairs`.

    Returns
    -------
    dict
        Per pair (arrays of length P): ``"partner"`` ``K[i, j]``; ``"others_mean"`` and
        ``"others_std"`` (population std) of the others; ``"z"`` the standardised gap
        ``(partner - others_mean) / others_std`` (NaN where the std is 0); ``"nearest"`` (bool)
        whether the partner is more similar than every other (strictly).
        Overall: ``"auroc"``, the probability that a partner similarity exceeds the similarity of
        an unrelated pair (ties count ½), where the unrelated pairs are all entries above the
        diagonal (``a < b``) that are not a listed pair — the two distributions of Fig. 2 right,
        returned as ``"partner_values"`` (= ``"partner"``) and ``"other_values"``;
        ``"mean_z"`` and ``"nearest_fraction"``.

    Raises
    ------
    ShapeError
        ``K`` not square or N < 3; ``pairs`` not (P, 2), out of range, ``i == j`` or repeated.
    NonFiniteError
        NaN or infinity in ``K``.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm import analysis
    >>> K = np.array([[1.0, 0.1, 0.9, 0.2],
    ...               [0.1, 1.0, 0.3, 0.8],
    ...               [0.9, 0.3, 1.0, 0.0],
    ...               [0.2, 0.8, 0.0, 1.0]])
    >>> g = analysis.pair_gap(K, analysis.partner_pairs(2))
    >>> g["partner"].tolist(), g["nearest"].tolist(), g["auroc"]
    ([0.9, 0.8], [True, True], 1.0)
    """
    K = _finite(_matrix(K, "K", square=True), "K")
    n = K.shape[0]
    if n < 3:
        raise ShapeError(f"pair_gap needs N >= 3 (a partner and at least one other), got N = {n}")
    pairs_arr = np.asarray(pairs)
    if pairs_arr.ndim != 2 or pairs_arr.shape[1] != 2 or pairs_arr.shape[0] == 0 or pairs_arr.dtype.kind not in "iu":
        raise ShapeError(f"pairs must be a non-empty (P, 2) integer array, got shape {pairs_arr.shape} dtype {pairs_arr.dtype}")
    pairs_arr = pairs_arr.astype(np.int64)
    if (pairs_arr < 0).any() or (pairs_arr >= n).any():
        raise ShapeError(f"pair indices must lie in 0..{n - 1}")
    if (pairs_arr[:, 0] == pairs_arr[:, 1]).any():
        raise ShapeError("a pair (i, i) has no partner; pairs need i != j")
    lo, hi = pairs_arr.min(axis=1), pairs_arr.max(axis=1)
    is_pair = np.zeros((n, n), dtype=bool)
    is_pair[lo, hi] = True
    if is_pair.sum() != len(pairs_arr):
        raise ShapeError("pairs lists the same (unordered) pair twice")

    i, j = pairs_arr[:, 0], pairs_arr[:, 1]
    partner = K[i, j]
    keep = np.ones((len(i), n), dtype=bool)
    rows = np.arange(len(i))
    keep[rows, i] = False
    keep[rows, j] = False
    others = K[i][keep].reshape(len(i), n - 2)
    mean = others.mean(axis=1)
    std = others.std(axis=1)
    z = np.divide(partner - mean, std, out=np.full(len(i), np.nan), where=std > 0)
    nearest = partner > others.max(axis=1)

    upper = np.triu(np.ones((n, n), dtype=bool), k=1) & ~is_pair
    other_values = K[upper]
    return {
        "partner": partner,
        "others_mean": mean,
        "others_std": std,
        "z": z,
        "nearest": nearest,
        "auroc": _auroc(partner, other_values),
        "mean_z": float(np.nanmean(z)) if np.isfinite(z).any() else float("nan"),
        "nearest_fraction": float(nearest.mean()),
        "partner_values": partner.copy(),
        "other_values": other_values,
    }


#: The two RSMs the paper compares, as (label, matcher).
DEFAULT_MATCHERS = (("spatio-semantic", "none"), ("semantic", "exact"))


def translation(
    z: Any,
    *,
    kernel: str = "cosine",
    matchers: Sequence[tuple[str, str]] = DEFAULT_MATCHERS,
    threads: Optional[int] = None,
    **build_options: Any,
) -> dict[str, dict[str, Any]]:
    """The paper's translation experiment (Sec. 4.1, Fig. 2) on one layer.

    ``z`` holds ``n`` inputs followed by the same ``n`` inputs translated (rows ``i`` and
    ``i + n`` are partners, as in :func:`semrsm.load_example`). For each matcher the RSM is built
    and :func:`pair_gap` measures how far each partner stands out. ``python -m semrsm demo``
    prints this.

    Parameters
    ----------
    z : array_like, shape (2n, C, H, W) or (2n, S, C)
        Representations; see :func:`semrsm.build` for layouts.
    kernel : {"cosine", "linear", "rbf"}
        Kernel of the RSMs (default cosine: bounded, like the paper's RBF, without a bandwidth).
    matchers : sequence of (label, matcher)
        RSMs to compare, default spatio-semantic (``"none"``) and semantic (``"exact"``); e.g.
        add ``("shift", "shift")`` for the translation-invariant baseline.
    threads : int, optional
        Threads of :func:`semrsm.build`.
    **build_options
        Passed on to :func:`semrsm.build` (``layout``, ``center``, ``sigma``, matcher options).

    Returns
    -------
    dict
        ``label -> {"matcher", "K" (2n, 2n), "seconds", **pair_gap(K, partner_pairs(n))}``, in
        the order of ``matchers``.

    Raises
    ------
    ShapeError
        An odd number of inputs, or fewer than 4; and whatever :func:`semrsm.build` raises.

    Examples
    --------
    >>> import semrsm
    >>> from semrsm import analysis
    >>> z = semrsm.load_example()["block15"]          # 10 photos, then the same shifted
    >>> res = analysis.translation(z)
    >>> list(res)
    ['spatio-semantic', 'semantic']
    >>> bool(res["semantic"]["mean_z"] > res["spatio-semantic"]["mean_z"])
    True
    """
    from ._api import build

    n2 = len(z)
    if n2 % 2 or n2 < 4:
        raise ShapeError(f"translation needs an even number (>= 4) of inputs: n inputs then their n partners; got {n2}")
    pairs = partner_pairs(n2 // 2)
    out: dict[str, dict[str, Any]] = {}
    for label, matcher in matchers:
        start = time.perf_counter()
        K = build(z, kernel=kernel, matcher=matcher, threads=threads, **build_options)
        seconds = time.perf_counter() - start
        out[label] = {"matcher": matcher, "K": K, "seconds": seconds, **pair_gap(K, pairs)}
    return out


# --------------------------------------------------------------------------------------------
# layer-by-layer comparison


def _spatial_size(shape: tuple[int, ...], layout: str) -> int:
    """S of representations of this shape and layout (as :func:`semrsm.build` reads them)."""
    from ._validation import resolve_layout

    concrete = resolve_layout(len(shape), layout, "layer")
    if concrete == "nchw":
        return int(shape[2] * shape[3])
    if concrete == "nhwc":
        return int(shape[1] * shape[2])
    if concrete == "nd":
        return 1
    return int(shape[1] if concrete == "nsc" else shape[2])


def layer_comparison(
    layers: Union[Mapping[str, Any], Sequence[tuple[str, Any]]],
    *,
    kernel: str = "linear",
    matcher: str = "exact",
    baseline: str = "none",
    threads: Optional[int] = None,
    **build_options: Any,
) -> dict[str, Any]:
    """CKA between semantic and spatio-semantic RSMs of every pair of layers (paper Fig. 15).

    For each layer both RSMs are built from the *same* representations; ``cka[a, b]`` compares
    the semantic RSM of layer ``a`` with the spatio-semantic RSM of layer ``b``. The diagonal
    compares two definitions of similarity on identical representations: the paper (App. G.1)
    finds it well below 1 in early layers with a large spatial extent, closer to 1 in late ones.

    Parameters
    ----------
    layers : mapping or sequence of (name, array_like)
        Layer name -> representations of the same N inputs, each as :func:`semrsm.build`
        accepts (N >= 4 for the debiased CKA).
    kernel : {"linear", "cosine", "rbf"}
        Kernel of all RSMs (the paper uses linear and RBF).
    matcher, baseline : str
        Matchers of the two RSM kinds (default ``"exact"`` vs ``"none"``).
    threads : int, optional
        Threads of :func:`semrsm.build`.
    **build_options
        Passed on to :func:`semrsm.build` (``layout``, ``center``, matcher options).

    Returns
    -------
    dict
        ``"names"`` (list of str); ``"spatial_size"`` (list of S per layer); ``"cka"`` and
        ``"cka_debiased"`` (L, L) arrays (:func:`semrsm.cka`, biased and debiased);
        ``"diagonal"``, ``"diagonal_debiased"`` (L,); ``"semantic"`` and ``"spatio_semantic"``
        (lists of the (N, N) RSMs).

    Raises
    ------
    ShapeError
        No layers, or layers with different N; and whatever :func:`semrsm.build` raises.

    Examples
    --------
    >>> import semrsm
    >>> from semrsm import analysis
    >>> data = semrsm.load_example()
    >>> res = analysis.layer_comparison({"block10": data["block10"], "block15": data["block15"]})
    >>> res["cka"].shape, res["spatial_size"]
    ((2, 2), [196, 49])
    >>> bool(0.0 < res["diagonal"][0] <= 1.0)
    True
    """
    from ._api import build
    from .cka import cka

    items = list(layers.items()) if isinstance(layers, Mapping) else list(layers)
    if not items:
        raise ShapeError("layer_comparison needs at least one layer")
    names = [str(name) for name, _ in items]
    sizes = {len(a) for _, a in items}
    if len(sizes) != 1:
        raise ShapeError(f"all layers must hold the same N inputs, got N = {sorted(sizes)}")
    layout = build_options.get("layout", "auto")
    semantic, spatial, spatial_size = [], [], []
    for _, a in items:
        spatial_size.append(_spatial_size(np.shape(a), layout))
        semantic.append(build(a, kernel=kernel, matcher=matcher, threads=threads, **build_options))
        spatial.append(build(a, kernel=kernel, matcher=baseline, threads=threads, **build_options))
    n_layers = len(items)
    biased = np.empty((n_layers, n_layers))
    debiased = np.empty((n_layers, n_layers))
    for a in range(n_layers):
        for b in range(n_layers):
            biased[a, b] = cka(semantic[a], spatial[b])
            debiased[a, b] = cka(semantic[a], spatial[b], debiased=True)
    return {
        "names": names,
        "spatial_size": spatial_size,
        "cka": biased,
        "cka_debiased": debiased,
        "diagonal": np.diag(biased).copy(),
        "diagonal_debiased": np.diag(debiased).copy(),
        "semantic": semantic,
        "spatio_semantic": spatial,
    }
