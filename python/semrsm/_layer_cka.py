"""CKA between two layers over more inputs than two RSMs fit in memory.

:func:`layer_cka` is the exact CKA of the two full RSMs ``cka(build(x), build(y))``, accumulated
tile by tile on the tile engine (:mod:`semrsm._tiles`) without ever holding either ``N × N``
matrix: HSIC needs only running sums of ``K ∘ L`` (and ``K ∘ K``, ``L ∘ L``), the row sums and
the diagonals of ``K`` and ``L`` (memory ``O(tile² + N)``).

:func:`minibatch_cka` is the minibatch CKA of Nguyen, Raghu & Kornblith (2021, "Do wide and deep
networks learn the same things?", ICLR): the unbiased HSIC (Song et al., 2012; the estimator of
``cka(..., debiased=True)``) of the RSMs of consecutive batches, summed over batches,

    CKA_mb = Σ_b HSIC_u(K_b, L_b) / sqrt(Σ_b HSIC_u(K_b, K_b) · Σ_b HSIC_u(L_b, L_b)),

with ``K_b = build(x_b)`` and ``L_b = build(y_b)`` semantic (or, with ``matcher="none"``,
spatio-semantic) RSMs. Only pairs within a batch are compared: ``N·b/2`` matchings instead of
``N²/2``, memory ``O(b²)``. It estimates a different quantity from the CKA of the full RSMs (an
average over batches of ``b`` inputs), and converges to the full debiased CKA's value only as
``b`` grows.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Iterator
from typing import Any, Optional

import numpy as np

from . import _tiles, kernels
from ._api import _with_grid_width, build
from ._errors import OptionError, ShapeError, SemrsmError
from ._validation import check_flag, check_keywords, resolve_layout
from .cka import hsic

__all__ = ["minibatch_cka", "layer_cka"]

#: Largest number of rows of a tile in :func:`layer_cka` (two tiles of K and L of this many
#: rows squared are held at a time: 2 · 2048² · 8 B = 64 MiB).
MAX_TILE_ROWS = 2048

#: The unbiased HSIC estimator needs at least this many inputs per batch.
MIN_BATCH = 4


def _open(a: Any, name: str) -> Any:
    """A ``.npy`` path becomes a read-only memory map; anything sliceable with a ``shape`` is kept
    as it is (numpy arrays and memory maps, torch tensors, zarr/h5py arrays: read batch by batch);
    other array-likes go through ``np.asarray``."""
    if isinstance(a, (str, os.PathLike)):
        path = os.fspath(a)
        if not path.endswith(".npy"):
            raise OptionError(
                f"{name}: only .npy paths are read batch by batch (memory-mapped), got {path!r}; "
                "for an .npz archive pass np.load(path)[key]"
            )
        return np.load(path, mmap_mode="r")
    if hasattr(a, "shape") and hasattr(a, "__getitem__"):
        return a
    return np.asarray(a)


def _length(a: Any, name: str) -> int:
    shape = tuple(a.shape)
    if len(shape) < 2:
        raise ShapeError(f"{name} must have a sample axis and features, got shape {shape}")
    return int(shape[0])


#: Axes of one sample (in the user's layout) that index positions, by layout.
_POSITION_AXES = {"nchw": (1, 2), "nhwc": (0, 1), "nsc": (0,), "ncs": (1,), "nd": ()}


def _whole_mean(a: Any, n: int, batch_size: int, center: Any, layout: str) -> np.ndarray:
    """Mean over all samples (per position and channel; with ``center="channel"`` also over
    positions), read in batches, summed in float64, in the user's layout."""
    total: Optional[np.ndarray] = None
    for start in range(0, n, batch_size):
        part = np.asarray(a[start : start + batch_size]).sum(axis=0, dtype=np.float64)
        total = part if total is None else total + part
    assert total is not None
    mean = total / n
    if center == "channel":
        axes = _POSITION_AXES[resolve_layout(mean.ndim + 1, layout, "x")]
        mean = np.broadcast_to(mean.mean(axis=axes, keepdims=True), mean.shape)
    return mean


def _array_batches(
    x: Any, y: Any, batch_size: Any, center: Any, layout: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < MIN_BATCH:
        raise OptionError(
            f"batch_size must be an integer >= {MIN_BATCH} (the unbiased HSIC needs 4 inputs), got {batch_size!r}"
        )
    b = int(batch_size)
    xs, ys = _open(x, "x"), _open(y, "y")
    n, m = _length(xs, "x"), _length(ys, "y")
    if n != m:
        raise ShapeError(f"x and y must hold the same inputs: {n} samples in x, {m} in y")
    if n < MIN_BATCH:
        raise ShapeError(f"minibatch CKA needs at least {MIN_BATCH} samples, got {n}")
    means = (_whole_mean(xs, n, b, center, layout), _whole_mean(ys, n, b, center, layout)) if center else None
    # Consecutive slices; a last batch of fewer than 4 rows is left out (no unbiased HSIC).
    for start in range(0, n, b):
        stop = min(start + b, n)
        if stop - start < MIN_BATCH:
            return
        xb, yb = np.asarray(xs[start:stop]), np.asarray(ys[start:stop])
        if means is not None:
            xb, yb = xb - means[0], yb - means[1]
        yield xb, yb


def _streamed_batches(pairs: Iterable[Any]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    small: Optional[int] = None
    for index, pair in enumerate(pairs):
        if small is not None:
            raise ShapeError(
                f"batch {small} has fewer than {MIN_BATCH} inputs but is not the last one; "
                f"only a last, smaller batch may be that small (it is left out)"
            )
        try:
            xb, yb = pair
        except (TypeError, ValueError):
            raise ShapeError(f"batch {index} must be a pair (x_batch, y_batch), got {type(pair).__name__}") from None
        xb, yb = np.asarray(xb), np.asarray(yb)
        if xb.ndim < 2 or yb.ndim < 2 or xb.shape[0] != yb.shape[0]:
            raise ShapeError(
                f"batch {index}: x_batch and y_batch must hold the same inputs, got shapes {xb.shape} and {yb.shape}"
            )
        if xb.shape[0] < MIN_BATCH:
            small = index
            continue
        yield xb, yb


def minibatch_cka(
    x: Any,
    y: Any = None,
    batch_size: Optional[int] = None,
    *,
    kernel: str = "linear",
    matcher: str = "exact",
    layout: str = "auto",
    center: Any = True,
    **options: Any,
) -> float:
    """Minibatch CKA (Nguyen et al., 2021) between the RSMs of two layers.

    ``Σ_b HSIC_u(K_b, L_b) / sqrt(Σ_b HSIC_u(K_b, K_b) · Σ_b HSIC_u(L_b, L_b))`` over batches
    ``b``, with ``K_b = build(x_b, ...)``, ``L_b = build(y_b, ...)`` and ``HSIC_u`` the unbiased
    estimator of Song et al. (2012) (:func:`semrsm.hsic` with ``estimator="song"``, the one of
    ``cka(debiased=True)``). Each batch is matched within itself only: ``N·b/2`` matchings instead
    of the ``N²/2`` of the full RSMs, and memory for two ``b × b`` RSMs.

    With one batch holding every input, this is ``cka(build(x), build(y), debiased=True)``. With
    smaller batches it is a different estimate (of the CKA of batches of ``b`` inputs), as in
    Nguyen et al.; compare like with like.

    Parameters
    ----------
    x, y : array_like or path, shape (N, ...)
        The two layers' representations of the same ``N`` inputs, in any layout
        :func:`semrsm.build` accepts. ``.npy`` paths are memory-mapped; numpy/torch/zarr/h5py
        arrays are read one batch at a time.
        **Or** ``x`` alone: an iterable of ``(x_batch, y_batch)`` pairs (``y`` and ``batch_size``
        left out), e.g. features streamed from a model.
    batch_size : int
        Inputs per batch (``>= 4``) for array input. Batches are consecutive slices; a last batch
        of fewer than 4 inputs is left out (the unbiased HSIC needs 4). The same rule holds for
        streamed batches: only the last may be smaller than 4, and it is then left out.
    kernel, matcher, layout
        As for :func:`semrsm.build`.
    center : bool or "channel"
        Subtract the mean representation (per position and channel; ``"channel"``: per channel,
        over samples and positions), as :func:`semrsm.build`. For arrays and paths the mean is
        the whole input's (one extra streaming pass), as a full RSM would have it; for streamed
        batches each batch's own mean.
    **options
        Passed to :func:`semrsm.build`: ``sigma``, ``sigma_scale``, ``threads``, ``precision``
        and matcher options such as ``b=``.

    Returns
    -------
    float
        The minibatch CKA.

    Raises
    ------
    OptionError
        For a bad ``batch_size`` or option, or ``batch_size`` with streamed batches.
    ShapeError
        If ``x`` and ``y`` differ in ``N``, there are fewer than 4 inputs, or a streamed batch is
        malformed.
    SemrsmError
        If ``Σ HSIC_u(K_b, K_b)`` or ``Σ HSIC_u(L_b, L_b)`` is not positive (CKA undefined), and as
        :func:`semrsm.build`.

    Examples
    --------
    >>> import numpy as np, semrsm
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(40, 8, 3, 3))
    >>> y = np.tanh(x) + 0.1 * rng.normal(size=x.shape)
    >>> mb = semrsm.minibatch_cka(x, y, batch_size=10, matcher="none")
    >>> full = semrsm.cka(semrsm.build(x, matcher="none"), semrsm.build(y, matcher="none"), debiased=True)
    >>> bool(0 < mb <= 1), round(semrsm.minibatch_cka(x, y, batch_size=40, matcher="none") - full, 12)
    (True, 0.0)
    """
    center = _tiles.check_center(center)
    if y is None:
        if batch_size is not None:
            raise OptionError(
                "batch_size applies to arrays x and y; with an iterable of (x_batch, y_batch) pairs "
                "the batches are given"
            )
        if isinstance(x, (str, os.PathLike)) or hasattr(x, "shape"):
            raise OptionError("y is missing: pass both layers' arrays, or one iterable of (x_batch, y_batch) pairs")
        batches: Iterator[tuple[np.ndarray, np.ndarray]] = _streamed_batches(x)
        center_batches = center
    else:
        batches = _array_batches(x, y, batch_size, center, layout)
        center_batches = False  # done above, with the whole input's mean
    sums = np.zeros(3)  # Σ HSIC(K, L), Σ HSIC(K, K), Σ HSIC(L, L)
    used = 0
    for xb, yb in batches:
        K = build(xb, kernel=kernel, matcher=matcher, layout=layout, center=center_batches, **options)
        L = build(yb, kernel=kernel, matcher=matcher, layout=layout, center=center_batches, **options)
        sums += (hsic(K, L, "song"), hsic(K, K, "song"), hsic(L, L, "song"))
        used += 1
    if used == 0:
        raise ShapeError(f"no batch of at least {MIN_BATCH} inputs was given")
    hkl, hkk, hll = (float(v) for v in sums)
    for name, value in (("K", hkk), ("L", hll)):
        if not value > 0:
            raise SemrsmError(
                f"minibatch CKA is undefined: the summed unbiased HSIC({name}_b, {name}_b) over "
                f"{used} batches is {value!r}, not positive (the RSMs have no variance after centring)"
            )
    return hkl / float(np.sqrt(hkk * hll))


_LAYER_KEYWORDS = (
    "kernel", "matcher", "layout", "center", "debiased", "sigma", "sigma_scale", "threads", "precision",
    "tile", "progress",
)


class _Moments:
    """Running sums over all ``N²`` entries of two square symmetric matrices ``K``, ``L`` that
    give their HSIC: ``Σ K∘L``, ``Σ K∘K``, ``Σ L∘L``, row sums and diagonals."""

    def __init__(self, n: int):
        self.n = n
        self.products = np.zeros(3)  # Σ K∘L, Σ K∘K, Σ L∘L
        self.rows_k = np.zeros(n)
        self.rows_l = np.zeros(n)
        self.diag_k = np.zeros(n)
        self.diag_l = np.zeros(n)

    def add(self, tile: "_tiles.Tile", K: np.ndarray, L: np.ndarray) -> None:
        """A tile of rows ``r0:r1``, columns ``c0:c1`` (upper triangle of the square plan); off the
        diagonal it also stands for its mirror image ``K[c0:c1, r0:r1] = K_tileᵀ``."""
        twice = 1.0 if tile.diagonal else 2.0
        self.products += twice * np.array([np.sum(K * L), np.sum(K * K), np.sum(L * L)])
        self.rows_k[tile.r0 : tile.r1] += K.sum(axis=1)
        self.rows_l[tile.r0 : tile.r1] += L.sum(axis=1)
        if tile.diagonal:
            self.diag_k[tile.r0 : tile.r1] = np.diagonal(K)
            self.diag_l[tile.r0 : tile.r1] = np.diagonal(L)
        else:
            self.rows_k[tile.c0 : tile.c1] += K.sum(axis=0)
            self.rows_l[tile.c0 : tile.c1] += L.sum(axis=0)

    def hsic(self, debiased: bool) -> tuple[float, float, float]:
        """``HSIC(K, L), HSIC(K, K), HSIC(L, L)``: Gretton's biased estimator
        ``tr(K H L H) / (n − 1)²`` or, debiased, Song et al.'s unbiased one (as :func:`semrsm.hsic`)."""
        n = self.n
        pairs = ((0, self.rows_k, self.rows_l, self.diag_k, self.diag_l),
                 (1, self.rows_k, self.rows_k, self.diag_k, self.diag_k),
                 (2, self.rows_l, self.rows_l, self.diag_l, self.diag_l))
        out = []
        for index, ra, rb, da, db in pairs:
            product = float(self.products[index])
            if not debiased:
                # tr(A H B H) = Σ A∘B − (2/n) Σ_i ra_i rb_i + (Σ ra)(Σ rb) / n²   (A, B symmetric)
                value = product - 2.0 / n * float(ra @ rb) + float(ra.sum()) * float(rb.sum()) / n**2
                out.append(value / (n - 1) ** 2)
            else:
                # Song et al. (2012) on the zero-diagonal matrices Ã, B̃
                product -= float(da @ db)
                ra, rb = ra - da, rb - db
                value = product + float(ra.sum()) * float(rb.sum()) / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * float(ra @ rb)
                out.append(value / (n * (n - 3)))
        return out[0], out[1], out[2]


def _kernel_tile(
    kernel: str, tile: "_tiles.Tile", G: np.ndarray, sq: np.ndarray, sigma: Optional[float]
) -> np.ndarray:
    """The tile of ``build(..., kernel=kernel)``, computed as :func:`semrsm.build` computes it."""
    if kernel == "linear":
        return G
    rows, cols = sq[tile.r0 : tile.r1], sq[tile.c0 : tile.c1]
    if kernel == "cosine":
        return kernels.cosine(G, rows, cols, square=tile.diagonal)
    assert sigma is not None
    return kernels.gaussian(kernels.squared_distances(G, rows, cols, square=tile.diagonal), sigma)


def layer_cka(
    x: Any,
    y: Any,
    *,
    kernel: str = "linear",
    matcher: str = "exact",
    layout: str = "auto",
    center: bool = True,
    debiased: bool = False,
    sigma: Optional[float] = None,
    sigma_scale: float = 1.0,
    threads: Optional[int] = None,
    precision: str = "float64",
    tile: Optional[int] = None,
    progress: Optional[bool] = None,
    **matcher_options: int,
) -> float:
    """Exact CKA between the full RSMs of two layers, without storing either ``N × N`` matrix.

    Equal (to rounding, 1e-10 tested) to ``cka(build(x, ...), build(y, ...), debiased=debiased)``,
    but accumulated tile by tile on the tile engine: for each tile of pairs, the tiles of ``K``
    and ``L`` are computed, and only the running sums HSIC needs are kept — ``Σ K∘L``,
    ``Σ K∘K``, ``Σ L∘L``, the row sums and the diagonals of ``K`` and ``L``. Memory is
    ``O(tile² + N)`` (tiles of at most :data:`MAX_TILE_ROWS` rows), not the ``2 · 8N²`` bytes of
    two RSMs (6.4 GB at ``N = 20 000``). Each pair is matched once per layer, as for ``build``.

    Parameters
    ----------
    x, y : array_like or path, shape (N, ...)
        Two layers' representations of the same ``N`` inputs (their ``S`` and ``C`` may differ),
        anything :func:`semrsm.build` takes: arrays, ``.npy`` paths, memory maps, zarr/dask arrays.
    kernel, matcher, layout, center, threads, precision, **matcher_options
        As for :func:`semrsm.build`, applied to each layer.
    debiased : bool
        Song et al.'s unbiased HSIC (as ``cka(..., debiased=True)``), else Gretton's biased one.
    sigma : float
        RBF bandwidth, required with ``kernel="rbf"``: the median rules of :func:`semrsm.build`
        need all ``N²`` distances at once, which is what this function avoids. (``sigma_scale``
        multiplies it.)
    tile : int, optional
        Rows per tile (default: as for :func:`semrsm.gram`, at most :data:`MAX_TILE_ROWS`).
    progress : bool, optional
        A progress bar over the pairs of both layers (None: on a terminal after 2 s).

    Returns
    -------
    float

    Raises
    ------
    ShapeError
        If ``x`` and ``y`` differ in ``N``, or ``N`` is below 2 (4 when debiased).
    OptionError
        For bad options, or ``kernel="rbf"`` without a numeric ``sigma``.
    SemrsmError
        If ``HSIC(K, K)`` or ``HSIC(L, L)`` is not positive (CKA undefined), and as
        :func:`semrsm.build`.

    Examples
    --------
    >>> import numpy as np, semrsm
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(12, 6, 3, 3)), rng.normal(size=(12, 4, 2, 2))
    >>> full = semrsm.cka(semrsm.build(x), semrsm.build(y), debiased=True)
    >>> abs(semrsm.layer_cka(x, y, debiased=True, tile=5) - full) < 1e-12
    True
    """
    check_keywords(matcher_options, "layer_cka", _LAYER_KEYWORDS)
    debiased = check_flag(debiased, "debiased")
    if kernel not in kernels.KERNELS:
        raise OptionError(f"unknown kernel {kernel!r}; choose one of {', '.join(kernels.KERNELS)}")
    scale = kernels.check_sigma_scale(sigma_scale)
    used: Optional[float] = None
    if kernel == "rbf":
        if sigma is None or isinstance(sigma, (str, bool)) or callable(sigma):
            raise OptionError(
                "layer_cka with kernel='rbf' needs a numeric sigma: the median rules need all N² "
                "distances at once (e.g. take sigma from build(x[:2000], kernel='rbf', return_sigma=True))"
            )
        used = kernels.check_sigma(float(sigma) * scale)
    elif sigma is not None or scale != 1.0:
        raise OptionError(f"sigma only applies to kernel='rbf', not kernel={kernel!r}")
    rows = _tiles.check_tile(tile)
    engines = []
    for name, a in (("x", x), ("y", y)):
        opts = _with_grid_width(a, layout, matcher, dict(matcher_options))
        options = _tiles.check_options(matcher, opts, center, precision, False, False, threads)
        engines.append((a, options))
    if rows is None:
        defaults = [
            _tiles._default_rows(_tiles.prepare_input(a, layout, name), None, options)
            for (a, options), name in zip(engines, ("x", "y"))
        ]
        rows = min(min(defaults), MAX_TILE_ROWS)
    ex = _tiles.Engine.create(engines[0][0], None, layout, engines[0][1], rows)
    ey = _tiles.Engine.create(engines[1][0], None, layout, engines[1][1], rows)
    ex.record_norms = ey.record_norms = True  # the kernels read sq_x as the tiles go
    n = ex.x.n
    if ey.x.n != n:
        raise ShapeError(f"x and y must hold the same inputs: {n} samples in x, {ey.x.n} in y")
    need = 4 if debiased else 2
    if n < need:
        raise ShapeError(f"{'debiased' if debiased else 'biased'} CKA needs n >= {need} items, got n = {n}")
    for engine in (ex, ey):
        engine.check_memory(output_in_memory=False)
    moments = _Moments(n)
    bar = _tiles.make_bar(progress, ex.total_pairs + ey.total_pairs, 0)
    update = None if bar is None else bar.update
    try:
        for (tile_x, Gx, _, _), (tile_y, Gy, _, _) in zip(ex.tiles(progress=update), ey.tiles(progress=update)):
            assert tile_x == tile_y
            K = _kernel_tile(kernel, tile_x, Gx, ex.sq_x, used)
            L = _kernel_tile(kernel, tile_y, Gy, ey.sq_x, used)
            moments.add(tile_x, K, L)
    finally:
        if bar is not None:
            bar.close()
    hkl, hkk, hll = moments.hsic(debiased)
    for name, value in (("K", hkk), ("L", hll)):
        if not value > 0:
            raise SemrsmError(
                f"CKA is undefined: HSIC({name}, {name}) = {value!r} is not positive: the RSM of "
                f"{'x' if name == 'K' else 'y'} has no variance after centring"
            )
    return hkl / float(np.sqrt(hkk * hll))
