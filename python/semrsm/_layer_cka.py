"""CKA between two layers over more inputs than two RSMs fit in memory.

:func:`layer_cka` is the exact CKA of the two full RSMs ``cka(build(x), build(y))``, accumulated
tile by tile on the tile engine (:mod:`semrsm._tiles`) without ever holding either ``N × N``
matrix: HSIC needs only running sums of ``K ∘ L`` (and ``K ∘ K``, ``L ∘ L``), the row sums and
the diagonals of ``K`` and ``L`` (memory ``O(tile² + N)``). Each tile's contribution is one
vector of partial sums (:func:`_tile_partials`), computed locally or on a Dask worker, optionally
kept on disk for ``resume=`` (the engine's :class:`semrsm._tiles.FileSink` with its fingerprint
sidecar), and added in the fixed tile order, so every way of running gives the same bits.

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
from pathlib import Path
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


def _open(a: Any, name: str) -> "_tiles.Source":
    """The input as a source of row blocks (:func:`semrsm._tiles.open_input`): ``.npy`` paths and
    memory maps are read with ``pread``, numpy/zarr/h5py/dask arrays and torch tensors batch by
    batch; bfloat16 and other half-precision inputs are widened one batch at a time."""
    if isinstance(a, (str, os.PathLike)) and not os.fspath(a).endswith(".npy"):
        raise OptionError(
            f"{name}: only .npy paths are read batch by batch (memory-mapped), got {os.fspath(a)!r}; "
            "for an .npz archive pass np.load(path)[key]"
        )
    return _tiles.open_input(a, name)


def _length(a: "_tiles.Source", name: str) -> int:
    shape = tuple(a.shape)
    if len(shape) < 2:
        raise ShapeError(f"{name} must have a sample axis and features, got shape {shape}")
    return int(shape[0])


def _prefix_pair(prefix_tokens: Any) -> tuple[int, int]:
    """``prefix_tokens=``: one count for both layers, or a pair ``(k_x, k_y)``."""
    try:
        if isinstance(prefix_tokens, (tuple, list)):
            if len(prefix_tokens) != 2:
                raise OptionError("not a pair")
            return _tiles.check_prefix_tokens(prefix_tokens[0]), _tiles.check_prefix_tokens(prefix_tokens[1])
        k = _tiles.check_prefix_tokens(prefix_tokens)
    except OptionError:
        raise OptionError(
            "prefix_tokens must be an int >= 0 (the CLS/register tokens of both layers) or a pair "
            f"(k_x, k_y) of them, got {prefix_tokens!r}"
        ) from None
    return k, k


def _check_prefixes(x: Any, y: Any, layout: str, prefixes: tuple[int, int]) -> None:
    """Each layer keeps at least one token to match (named by its own name, ``x`` or ``y``)."""
    for name, a, k in (("x", x, prefixes[0]), ("y", y, prefixes[1])):
        if k:
            s = _tiles.prepare_input(a, layout, name).s
            if k >= s:
                raise OptionError(
                    f"prefix_tokens={k} must be below the number of positions S = {s} of {name}: at least "
                    "one token must be matched"
                )


#: Axes of one sample (in the user's layout) that index positions, by layout.
_POSITION_AXES = {"nchw": (1, 2), "nhwc": (0, 1), "nsc": (0,), "ncs": (1,), "nd": ()}


def _whole_mean(a: "_tiles.Source", n: int, batch_size: int, center: Any, layout: str) -> np.ndarray:
    """Mean over all samples (per position and channel; with ``center="channel"`` also over
    positions), read in batches, summed in float64, in the user's layout."""
    total: Optional[np.ndarray] = None
    for start in range(0, n, batch_size):
        part = a.read(start, min(n, start + batch_size)).sum(axis=0, dtype=np.float64)
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
        xb, yb = xs.read(start, stop), ys.read(start, stop)
        if means is not None:
            xb, yb = xb - means[0], yb - means[1]
        yield xb, yb


def _whole(a: Any, name: str) -> np.ndarray:
    """One streamed batch as a numpy array (a torch bfloat16 batch widened to float32)."""
    source = _tiles.open_input(a, name)
    return source.read(0, source.shape[0]) if source.shape else np.asarray(a)


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
        xb, yb = _whole(xb, "x_batch"), _whole(yb, "y_batch")
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
    prefix_tokens: Any = 0,
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
    prefix_tokens : int or (int, int)
        Prefix tokens (a ViT's CLS/register tokens, timm's ``num_prefix_tokens``) compared
        position by position and not matched, as in :func:`semrsm.gram`: one count for both
        layers, or a pair ``(k_x, k_y)`` when the layers differ (e.g. a ViT layer against a CNN
        layer: ``(1, 0)``). Default 0.
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
    kx, ky = _prefix_pair(prefix_tokens)
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
        _check_prefixes(x, y, layout, (kx, ky))
        batches = _array_batches(x, y, batch_size, center, layout)
        center_batches = False  # done above, with the whole input's mean
    sums = np.zeros(3)  # Σ HSIC(K, L), Σ HSIC(K, K), Σ HSIC(L, L)
    used = 0
    for xb, yb in batches:
        K = build(xb, kernel=kernel, matcher=matcher, layout=layout, center=center_batches, prefix_tokens=kx, **options)
        L = build(yb, kernel=kernel, matcher=matcher, layout=layout, center=center_batches, prefix_tokens=ky, **options)
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
    "tile", "progress", "prefix_tokens", "client", "resume",
)


def _width(rows: int) -> int:
    """Length of one tile's partial sums (:func:`_tile_partials`) for tiles of ``rows`` rows."""
    return 3 + 4 * rows


def _tile_partials(rows: int, tile: "_tiles.Tile", K: np.ndarray, L: np.ndarray) -> np.ndarray:
    """What one tile of ``K`` and ``L`` contributes to HSIC, as one float64 vector:
    ``[Σ K∘L, Σ K∘K, Σ L∘L]`` over the tile, the row sums of ``K`` and of ``L``, then the column
    sums of ``K`` and ``L`` (off the diagonal, for the mirror image) or their diagonals (a
    diagonal tile), each in a slot of ``rows`` entries. Computed the same way wherever the tile
    is computed (here, on a Dask worker), so the sums are bit-identical."""
    out = np.zeros(_width(rows))
    h, w = K.shape
    out[:3] = (np.sum(K * L), np.sum(K * K), np.sum(L * L))
    out[3 : 3 + h] = K.sum(axis=1)
    out[3 + rows : 3 + rows + h] = L.sum(axis=1)
    third, fourth = 3 + 2 * rows, 3 + 3 * rows
    if tile.diagonal:
        out[third : third + h] = np.diagonal(K)
        out[fourth : fourth + h] = np.diagonal(L)
    else:
        out[third : third + w] = K.sum(axis=0)
        out[fourth : fourth + w] = L.sum(axis=0)
    return out


class _Moments:
    """Running sums over all ``N²`` entries of two square symmetric matrices ``K``, ``L`` that
    give their HSIC: ``Σ K∘L``, ``Σ K∘K``, ``Σ L∘L``, row sums and diagonals. Tiles are added in
    the fixed order of the plan (:class:`_InOrder`), so the result does not depend on where or
    when each tile was computed."""

    def __init__(self, n: int, rows: int):
        self.n = n
        self.rows = rows
        self.products = np.zeros(3)  # Σ K∘L, Σ K∘K, Σ L∘L
        self.rows_k = np.zeros(n)
        self.rows_l = np.zeros(n)
        self.diag_k = np.zeros(n)
        self.diag_l = np.zeros(n)

    def add(self, tile: "_tiles.Tile", part: np.ndarray) -> None:
        """A tile of rows ``r0:r1``, columns ``c0:c1`` (upper triangle of the square plan) from its
        :func:`_tile_partials`; off the diagonal it also stands for its mirror image
        ``K[c0:c1, r0:r1] = K_tileᵀ``."""
        rows, h, w = self.rows, tile.r1 - tile.r0, tile.c1 - tile.c0
        twice = 1.0 if tile.diagonal else 2.0
        self.products += twice * part[:3]
        self.rows_k[tile.r0 : tile.r1] += part[3 : 3 + h]
        self.rows_l[tile.r0 : tile.r1] += part[3 + rows : 3 + rows + h]
        third, fourth = 3 + 2 * rows, 3 + 3 * rows
        if tile.diagonal:
            self.diag_k[tile.r0 : tile.r1] = part[third : third + h]
            self.diag_l[tile.r0 : tile.r1] = part[fourth : fourth + h]
        else:
            self.rows_k[tile.c0 : tile.c1] += part[third : third + w]
            self.rows_l[tile.c0 : tile.c1] += part[fourth : fourth + w]

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


class _InOrder:
    """Adds tiles' partial sums to :class:`_Moments` in plan order, whatever order they arrive
    in (Dask tasks finish in any order); early arrivals wait in a small buffer."""

    def __init__(self, moments: _Moments, plan: list["_tiles.Tile"], todo: Optional[list[bool]]):
        self.moments = moments
        self.order = [t for t in plan if todo is None or todo[t.index]]
        self.next = 0
        self.waiting: dict[int, np.ndarray] = {}

    def __call__(self, tile: "_tiles.Tile", part: np.ndarray) -> None:
        self.waiting[tile.index] = part
        while self.next < len(self.order) and self.order[self.next].index in self.waiting:
            t = self.order[self.next]
            self.moments.add(t, self.waiting.pop(t.index))
            self.next += 1

    @property
    def complete(self) -> bool:
        return self.next == len(self.order)


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


def _partials(
    ex: "_tiles.Engine",
    ey: "_tiles.Engine",
    kernel: str,
    sigma: Optional[float],
    todo: Optional[list[bool]],
    progress: Optional["_tiles.ProgressFn"] = None,
) -> Iterator[tuple["_tiles.Tile", np.ndarray]]:
    """The tiles of both layers (``todo``, default all) in plan order, as partial sums."""
    for (tile_x, Gx, _, _), (tile_y, Gy, _, _) in zip(ex.tiles(todo, progress), ey.tiles(todo, progress)):
        assert tile_x == tile_y
        K = _kernel_tile(kernel, tile_x, Gx, ex.sq_x, sigma)
        L = _kernel_tile(kernel, tile_y, Gy, ey.sq_x, sigma)
        yield tile_x, _tile_partials(ex.rows, tile_x, K, L)


def _partials_task(
    ex: "_tiles.Engine",
    ey: "_tiles.Engine",
    kernel: str,
    sigma: Optional[float],
    tiles: list["_tiles.Tile"],
    n_x: int,
    *arrays: np.ndarray,
) -> list[tuple["_tiles.Tile", np.ndarray]]:
    """Run on a Dask worker: the partial sums of a group of tiles of both layers (the worker
    reads its own row blocks; ``arrays[:n_x]`` are x's scattered in-memory inputs)."""
    from . import _dask

    lx, ly = _dask.localize(ex, list(arrays[:n_x])), _dask.localize(ey, list(arrays[n_x:]))
    return list(_partials(lx, ly, kernel, sigma, _dask.todo_of(ex, tiles)))


def _resume_path(resume: Any) -> Optional[Path]:
    if resume is None or resume is False:
        return None
    if isinstance(resume, (str, os.PathLike)):
        return Path(resume)
    raise OptionError(
        "layer_cka keeps the finished tiles' partial sums in a file: pass resume='cka_state' (a path), "
        f"or None; got {resume!r}"
    )


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
    precision: str = "auto",
    tile: Optional[int] = None,
    progress: Optional[bool] = None,
    prefix_tokens: Any = 0,
    client: Any = None,
    resume: Any = None,
    **matcher_options: int,
) -> float:
    """Exact CKA between the full RSMs of two layers, without storing either ``N × N`` matrix.

    Equal (to rounding, 1e-10 tested) to ``cka(build(x, ...), build(y, ...), debiased=debiased)``,
    but accumulated tile by tile on the tile engine: for each tile of pairs, the tiles of ``K``
    and ``L`` are computed, and only the partial sums HSIC needs are kept — ``Σ K∘L``,
    ``Σ K∘K``, ``Σ L∘L``, the row sums and the diagonals of ``K`` and ``L`` — and added in the
    fixed order of the tiles. Memory is ``O(tile² + N)`` (tiles of at most
    :data:`MAX_TILE_ROWS` rows), not the ``2 · 8N²`` bytes of two RSMs (6.4 GB at
    ``N = 20 000``). Each pair is matched once per layer, as for ``build``.

    Parameters
    ----------
    x, y : array_like or path, shape (N, ...)
        Two layers' representations of the same ``N`` inputs (their ``S`` and ``C`` may differ),
        anything :func:`semrsm.build` takes: arrays, ``.npy`` paths, memory maps, zarr/dask
        arrays, torch tensors (bfloat16 and float16 are widened block by block).
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
    prefix_tokens : int or (int, int)
        Prefix tokens (ViT CLS/register tokens) compared position by position and not matched,
        as in :func:`semrsm.gram`: one count for both layers, or a pair ``(k_x, k_y)`` when they
        differ (e.g. ``(1, 0)`` for a ViT layer against a CNN layer). Default 0.
    client : dask.distributed.Client, optional
        Compute the tiles on this Dask cluster, as :func:`semrsm.gram` does: each task computes
        a group of tiles of *both* layers from row blocks the worker reads itself (``.npy``
        paths, zarr/dask arrays; an in-memory array is scattered once) and returns only their
        partial sums (``O(tile)`` numbers per tile). The client adds them in tile order, so the
        value is bit-identical to a local run.
    resume : str or path, optional
        Keep each finished tile's partial sums in ``resume + ".partial"`` (with the sidecar
        ``resume + ".partial.tiles"``: a fingerprint of the inputs, options and tile size, and
        one byte per finished tile, set after the tile's sums are on disk), and continue from
        there if those files exist: a killed run, rerun with the same line, recomputes only
        unfinished tiles and gives the bit-identical value. Other inputs or options (the kernel,
        σ, the matcher, ...; not ``debiased``, which needs the same sums) raise
        :class:`OptionError`. The files are removed once the value is computed. Default None: no
        state is kept.

    Returns
    -------
    float

    Raises
    ------
    ShapeError
        If ``x`` and ``y`` differ in ``N``, or ``N`` is below 2 (4 when debiased).
    OptionError
        For bad options, ``kernel="rbf"`` without a numeric ``sigma``, or a ``resume`` state
        made from other inputs or options.
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

    A long run that can be killed and continued (rerun the same line), or spread over a cluster:

    >>> import tempfile, os
    >>> state = os.path.join(tempfile.mkdtemp(), "cka_state")
    >>> semrsm.layer_cka(x, y, debiased=True, tile=5, resume=state) == semrsm.layer_cka(x, y, debiased=True, tile=5)
    True
    >>> # semrsm.layer_cka("x.npy", "y.npy", client=dask.distributed.Client(...), resume=state)
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
    if progress not in (None, True, False):
        raise OptionError(f"progress must be None (automatic), True or False; got {progress!r}")
    state = _resume_path(resume)
    if client is not None:
        from ._dask import check_client

        check_client(client)
    prefixes = _prefix_pair(prefix_tokens)
    _check_prefixes(x, y, layout, prefixes)
    rows = _tiles.check_tile(tile)
    engines = []
    for name, a, k in (("x", x, prefixes[0]), ("y", y, prefixes[1])):
        opts = _with_grid_width(a, layout, matcher, dict(matcher_options))
        options = _tiles.check_options(matcher, opts, center, precision, False, False, threads, k)
        engines.append((a, options))
    if rows is None:
        defaults = [
            _tiles._default_rows(_tiles.prepare_input(a, layout, name), None, options)
            for (a, options), name in zip(engines, ("x", "y"))
        ]
        rows = min(min(defaults), MAX_TILE_ROWS)
    fingerprint = state is not None
    ex = _tiles.Engine.create(engines[0][0], None, layout, engines[0][1], rows, fingerprint=fingerprint)
    ey = _tiles.Engine.create(engines[1][0], None, layout, engines[1][1], rows, fingerprint=fingerprint)
    ex.record_norms = ey.record_norms = True  # the kernels read sq_x as the tiles go
    n = ex.x.n
    if ey.x.n != n:
        raise ShapeError(f"x and y must hold the same inputs: {n} samples in x, {ey.x.n} in y")
    need = 4 if debiased else 2
    if n < need:
        raise ShapeError(f"{'debiased' if debiased else 'biased'} CKA needs n >= {need} items, got n = {n}")
    for engine in (ex, ey):
        engine.check_memory(output_in_memory=False)
    moments = _Moments(n, ex.rows)
    store = None
    if state is not None:
        fx, fy = ex.fingerprint("layer_cka"), ey.fingerprint("layer_cka")
        store = _tiles.FileSink(
            state,
            ex,
            {
                **fx,
                "inputs": fx["inputs"] + fy["inputs"],
                "options": {"x": fx["options"], "y": fy["options"], "kernel": kernel, "sigma": used},
            },
            True,
            shape=(len(ex.plan), _width(ex.rows)),
            name="resume",
            restart=f"delete {str(state)!r}.partial* or choose another resume= path to start again",
        )
    todo = None if store is None else store.todo
    in_order = _InOrder(moments, ex.plan, todo)

    def keep(tile: "_tiles.Tile", part: np.ndarray) -> None:
        if store is None:
            in_order(tile, part)
        else:  # on disk first; added in plan order once all tiles are there
            store.G[tile.index] = part
            store.G.flush()
            store.mark(tile)

    done = 0 if store is None else 2 * store.done_pairs
    bar = _tiles.make_bar(progress, ex.total_pairs + ey.total_pairs, done)
    update = None if bar is None else bar.update
    try:
        if client is None:
            for tile_done, part in _partials(ex, ey, kernel, used, todo, update):
                keep(tile_done, part)
        else:
            from . import _dask

            future_x, scattered_x = _dask.ship(client, ex)
            future_y, scattered_y = _dask.ship(client, ey)

            def consume(results: list[tuple["_tiles.Tile", np.ndarray]]) -> None:
                for tile_done, part in results:
                    keep(tile_done, part)
                    if bar is not None:
                        bar.update(2 * tile_done.pairs)

            _dask.stream(
                client,
                _dask._groups(ex, todo),
                lambda group: (
                    _partials_task, future_x, future_y, kernel, used, group, len(scattered_x), *scattered_x, *scattered_y,
                ),
                consume,
            )
        if store is not None:
            for t in ex.plan:
                moments.add(t, np.array(store.G[t.index]))
        else:
            assert in_order.complete
    finally:
        if bar is not None:
            bar.close()
        if store is not None:
            store.close()
    if store is not None:
        store.discard()
    hkl, hkk, hll = moments.hsic(debiased)
    for name, value in (("K", hkk), ("L", hll)):
        if not value > 0:
            raise SemrsmError(
                f"CKA is undefined: HSIC({name}, {name}) = {value!r} is not positive: the RSM of "
                f"{'x' if name == 'K' else 'y'} has no variance after centring"
            )
    return hkl / float(np.sqrt(hkk * hll))
