"""CKA between two layers over more inputs than two RSMs fit in memory.

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

from ._api import build
from ._errors import OptionError, ShapeError, SemrsmError
from ._validation import check_flag
from .cka import hsic

__all__ = ["minibatch_cka"]

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


def _whole_mean(a: Any, n: int, batch_size: int) -> np.ndarray:
    """Mean over all samples (per position and channel), read in batches, summed in float64."""
    total: Optional[np.ndarray] = None
    for start in range(0, n, batch_size):
        part = np.asarray(a[start : start + batch_size]).sum(axis=0, dtype=np.float64)
        total = part if total is None else total + part
    assert total is not None
    return total / n


def _array_batches(
    x: Any, y: Any, batch_size: Any, center: bool
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
    means = (_whole_mean(xs, n, b), _whole_mean(ys, n, b)) if center else None
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
    center: bool = True,
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
    center : bool
        Subtract the mean representation (per position and channel). For arrays and paths the
        mean is the whole input's (one extra streaming pass), as a full RSM would have it; for
        streamed batches each batch's own mean.
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
    center = check_flag(center, "center")
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
        batches = _array_batches(x, y, batch_size, center)
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
