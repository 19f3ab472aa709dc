"""``semrsm.build`` and ``semrsm.gram``: from representations to RSMs."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _core, kernels
from ._errors import NonFiniteError, OptionError
from ._validation import (
    as_samples,
    center as _center,
    check_compatible,
    check_matcher_options,
    check_threads,
)

__all__ = ["build", "gram", "MATCHERS", "PRECISIONS"]

#: Names accepted by ``matcher=``.
MATCHERS: tuple[str, ...] = tuple(_core.MATCHERS)
#: Names accepted by ``precision=``.
PRECISIONS = ("float64", "float32")


def _prepare(x: Any, y: Any, layout: str, center: bool) -> tuple[np.ndarray, Optional[np.ndarray]]:
    xs = as_samples(x, layout, "x")
    ys = None if y is None else as_samples(y, layout, "y")
    check_compatible(xs, ys)
    if not isinstance(center, (bool, np.bool_)):
        raise OptionError(f"center must be True or False, got {center!r}")
    if center:
        xs, ys = _center(xs, ys)
    return xs, ys


def _matched(
    xs: np.ndarray,
    ys: Optional[np.ndarray],
    matcher: str,
    threads: Any,
    return_permutations: bool,
    precision: str,
    matcher_options: dict[str, Any],
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    if not isinstance(matcher, str):
        raise OptionError(f"matcher must be a string, one of {', '.join(MATCHERS)}; got {matcher!r}")
    if precision not in PRECISIONS:
        raise OptionError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        limit = float(np.finfo(np.float32).max)
        for name, a in (("x", xs), ("y", ys)):
            if a is not None and float(np.abs(a).max()) > limit:
                raise NonFiniteError(
                    f"{name} has values beyond the float32 range (after centering); use precision='float64'"
                )
    return _core.gram(
        xs,
        ys,
        matcher=matcher,
        options=check_matcher_options(matcher_options),
        threads=check_threads(threads),
        return_permutations=bool(return_permutations),
        precision=precision,
    )


def gram(
    x: Any,
    y: Any = None,
    *,
    matcher: str = "exact",
    layout: str = "auto",
    center: bool = True,
    threads: Optional[int] = None,
    return_permutations: bool = False,
    precision: str = "float64",
    **matcher_options: int,
) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Matched inner products ``G[i, j] = max_P <x_i, P y_j>`` of all pairs of samples.

    This is the quantity every semantic kernel is computed from (see :mod:`semrsm.kernels`).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W), (N, S, C) or as ``layout`` says
        Representations of N inputs. Anything ``np.asarray`` accepts (numpy arrays, memory-mapped
        ``.npy`` files, CPU torch tensors); real dtypes only, converted to float64.
    y : array_like, optional, shape (M, ...)
        Second set with the same S and C. Without it, ``x`` is compared with itself.
    matcher : {"exact", "none"}
        ``"exact"``: the permutation maximising the inner product (semantic RSM).
        ``"none"``: position ``s`` with position ``s`` (spatio-semantic RSM).
    layout : {"auto", "nchw", "nhwc", "nsc", "ncs"}
        Axis order. **"auto" treats 4-D input as (N, C, H, W) and 3-D input as (N, S, C)**, e.g.
        ViT tokens (N, T, D). Pass ``layout="ncs"`` for (N, C, S) data: a wrong guess is not an
        error, it silently matches channels instead of positions.
    center : bool
        Subtract the mean representation over samples (per position and channel) before
        matching, as the paper does. With ``y``, both sets are centred with ``y``'s mean.
    threads : int, optional
        Threads for the pairwise fill; default all cores. Results are identical for any value.
    return_permutations : bool
        Also return ``perm`` of shape (N, M, S): ``perm[i, j, s]`` is the position of ``y_j``
        matched to position ``s`` of ``x_i`` (memory: ``8·N·M·S`` bytes).
    precision : {"float64", "float32"}
        Arithmetic of the affinities. ``"float32"`` halves memory traffic at the cost of about
        1e-7 relative error in G (and possibly a different, near-optimal permutation).
    **matcher_options : int
        Options of the chosen matcher; "exact" and "none" take none, unknown names raise.

    Returns
    -------
    G : ndarray of float64, shape (N, N) or (N, M)
        Symmetric when ``y`` is None.
    perm : ndarray of int64, shape (N, M, S)
        Only with ``return_permutations=True``.

    Raises
    ------
    ShapeError, NonFiniteError, OptionError, TooLargeError
        All subclasses of :class:`semrsm.SemrsmError` (a ``ValueError``).
    """
    xs, ys = _prepare(x, y, layout, center)
    G, perm = _matched(xs, ys, matcher, threads, return_permutations, precision, matcher_options)
    if return_permutations:
        assert perm is not None
        return G, perm
    return G


def build(
    x: Any,
    y: Any = None,
    *,
    kernel: str = "linear",
    matcher: str = "exact",
    layout: str = "auto",
    center: bool = True,
    sigma: Optional[float] = None,
    threads: Optional[int] = None,
    precision: str = "float64",
    **matcher_options: int,
) -> np.ndarray:
    """Semantic (or, with ``matcher="none"``, spatio-semantic) RSM of representations.

    Parameters
    ----------
    x, y, matcher, layout, center, threads, precision, **matcher_options
        As for :func:`gram`.
    kernel : {"linear", "cosine", "rbf"}
        ``linear``: ``G``; ``cosine``: ``G / (||x_i|| ||y_j||)``; ``rbf``:
        ``exp(-d² / (2σ²))`` with ``d² = ||x_i||² + ||y_j||² - 2G`` (norms after centering).
    sigma : float, optional
        RBF bandwidth. Default: the median of the non-zero off-diagonal distances of the whole
        matrix (all entries when ``y`` is given); see :func:`semrsm.kernels.median_sigma`.
        Only valid with ``kernel="rbf"``.

    Returns
    -------
    K : ndarray of float64, shape (N, N) or (N, M)

    Examples
    --------
    >>> import numpy as np, semrsm
    >>> z = np.random.default_rng(0).normal(size=(6, 8, 4, 4))   # N, C, H, W
    >>> K = semrsm.build(z, kernel="cosine")                       # semantic RSM
    >>> K0 = semrsm.build(z, kernel="cosine", matcher="none")       # spatio-semantic RSM
    >>> K.shape, bool(np.all(K >= K0 - 1e-12))
    ((6, 6), True)
    """
    if kernel not in kernels.KERNELS:
        raise OptionError(f"unknown kernel {kernel!r}; choose one of {', '.join(kernels.KERNELS)}")
    if sigma is not None and kernel != "rbf":
        raise OptionError(f"sigma only applies to kernel='rbf', not kernel={kernel!r}")
    if sigma is not None:
        sigma = kernels.check_sigma(sigma)
    xs, ys = _prepare(x, y, layout, center)
    G, _ = _matched(xs, ys, matcher, threads, False, precision, matcher_options)
    if kernel == "linear":
        return G
    square = ys is None
    sq_x = np.einsum("nsc,nsc->n", xs, xs)
    sq_y = sq_x if ys is None else np.einsum("nsc,nsc->n", ys, ys)
    if kernel == "cosine":
        return kernels.cosine(G, sq_x, sq_y, square=square)
    return kernels.rbf(G, sq_x, sq_y, sigma, square=square)
