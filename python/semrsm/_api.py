"""``semrsm.build``, ``semrsm.gram`` and ``semrsm.match_affinity``: from representations to RSMs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Optional, Union, overload

import numpy as np

from . import _core, _tiles, kernels
from ._errors import NonFiniteError, OptionError, SemrsmError, ShapeError, TooLargeError
from ._validation import as_real_array, check_finite, check_flag, check_keywords, check_matcher_options

__all__ = ["build", "gram", "match_affinity", "certified_gap", "MATCHERS", "PRECISIONS"]

#: Names accepted by ``matcher=``: "exact", "none", the paper's approximations "greedy",
#: "topk_greedy" (option ``k``), "batch_optimal" (option ``b``), and semrsm's "auction"
#: (option ``gap_ppm``) and the translation-invariant baseline "shift" (option ``w``). See the
#: README's "Matchers" section.
MATCHERS: tuple[str, ...] = tuple(_core.MATCHERS)

#: Matchers that order positions by their norm and so need ``norms_x``/``norms_y`` in
#: :func:`match_affinity`.
_NORM_MATCHERS = ("greedy", "topk_greedy", "batch_optimal")
#: Names accepted by ``precision=``.
PRECISIONS = _tiles.PRECISIONS

# Keyword arguments of the public functions (for the unknown-keyword error message).
_RUN_KEYWORDS = ("out", "resume", "progress", "client", "tile")
_GRAM_KEYWORDS = (
    "matcher", "layout", "center", "threads", "return_permutations", "precision", "return_bound", "prefix_tokens",
    *_RUN_KEYWORDS,
)
_BUILD_KEYWORDS = (
    "kernel", "matcher", "layout", "center", "sigma", "sigma_scale", "threads", "precision", "return_bound",
    "return_sigma", "prefix_tokens", *_RUN_KEYWORDS,
)
_MATCH_KEYWORDS = ("matcher", "return_bound", "prefix_tokens")


def _with_grid_width(x: Any, layout: str, matcher: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``matcher="shift"`` needs the grid width ``w``: take it from (N, C, H, W) / (N, H, W, C)
    input unless given (3-D input keeps the core's default, a square grid)."""
    shape = _tiles.peek_shape(x)
    if matcher != "shift" or "w" in options or shape is None or len(shape) != 4:
        return options
    if layout == "nhwc":
        return {**options, "w": int(shape[2])}
    if layout in ("auto", "nchw"):
        return {**options, "w": int(shape[3])}
    return options


def _check_matcher(matcher: Any) -> str:
    if not isinstance(matcher, str):
        raise OptionError(f"matcher must be a string, one of {', '.join(MATCHERS)}; got {matcher!r}")
    return matcher


_Array = np.ndarray


@overload
def gram(
    x: Any,
    y: Any = ...,
    *,
    matcher: str = ...,
    layout: str = ...,
    center: Union[bool, str] = ...,
    threads: Optional[int] = ...,
    return_permutations: Literal[False] = ...,
    precision: str = ...,
    return_bound: Literal[False] = ...,
    out: Any = ...,
    resume: bool = ...,
    progress: Optional[bool] = ...,
    client: Any = ...,
    tile: Optional[int] = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> _Array: ...
@overload
def gram(
    x: Any,
    y: Any = ...,
    *,
    matcher: str = ...,
    layout: str = ...,
    center: Union[bool, str] = ...,
    threads: Optional[int] = ...,
    return_permutations: Literal[True],
    precision: str = ...,
    return_bound: Literal[False] = ...,
    out: Any = ...,
    resume: bool = ...,
    progress: Optional[bool] = ...,
    client: Any = ...,
    tile: Optional[int] = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> tuple[_Array, _Array]: ...
@overload
def gram(
    x: Any,
    y: Any = ...,
    *,
    matcher: str = ...,
    layout: str = ...,
    center: Union[bool, str] = ...,
    threads: Optional[int] = ...,
    return_permutations: Literal[False] = ...,
    precision: str = ...,
    return_bound: Literal[True],
    out: Any = ...,
    resume: bool = ...,
    progress: Optional[bool] = ...,
    client: Any = ...,
    tile: Optional[int] = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> tuple[_Array, _Array]: ...
@overload
def gram(
    x: Any,
    y: Any = ...,
    *,
    matcher: str = ...,
    layout: str = ...,
    center: Union[bool, str] = ...,
    threads: Optional[int] = ...,
    return_permutations: Literal[True],
    precision: str = ...,
    return_bound: Literal[True],
    out: Any = ...,
    resume: bool = ...,
    progress: Optional[bool] = ...,
    client: Any = ...,
    tile: Optional[int] = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> tuple[_Array, _Array, _Array]: ...
@overload
def gram(
    x: Any,
    y: Any = ...,
    *,
    matcher: str = ...,
    layout: str = ...,
    center: Union[bool, str] = ...,
    threads: Optional[int] = ...,
    return_permutations: bool = ...,
    precision: str = ...,
    return_bound: bool = ...,
    out: Any = ...,
    resume: bool = ...,
    progress: Optional[bool] = ...,
    client: Any = ...,
    tile: Optional[int] = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> Union[_Array, tuple[_Array, _Array], tuple[_Array, _Array, _Array]]: ...


def gram(
    x: Any,
    y: Any = None,
    *,
    matcher: str = "exact",
    layout: str = "auto",
    center: Union[bool, str] = True,
    threads: Optional[int] = None,
    return_permutations: bool = False,
    precision: str = "auto",
    return_bound: bool = False,
    out: Any = None,
    resume: bool = False,
    progress: Optional[bool] = None,
    client: Any = None,
    tile: Optional[int] = None,
    prefix_tokens: int = 0,
    **matcher_options: int,
) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Matched inner products ``G[i, j] = max_P <x_i, P y_j>`` of all pairs of samples.

    This is the quantity every semantic kernel is computed from (see :mod:`semrsm.kernels`). With
    an approximate matcher, ``G[i, j] = <x_i, P y_j>`` for the permutation it found, never more
    than the exact value.

    Parameters
    ----------
    x : array_like, path, zarr or dask array; shape (N, C, H, W), (N, S, C) or as ``layout`` says
        Representations of N inputs: anything ``np.asarray`` accepts (numpy arrays, CPU torch
        tensors), a ``np.memmap``, a path to a ``.npy`` file, or a zarr/dask/h5py array. Real
        dtypes only. Inputs are read in row blocks (never copied whole, except that
        ``matcher="none"`` reorders an in-memory (N, C, H, W) array once, in its own dtype;
        float32 stays float32 until a block is widened for its tile), so they may be larger
        than memory.
    y : array_like, optional, shape (M, ...)
        Second set with the same S and C. Without it, ``x`` is compared with itself.
    matcher : {"exact", "none", "greedy", "topk_greedy", "batch_optimal", "auction", "shift"}
        ``"exact"``: the permutation maximising the inner product (semantic RSM).
        ``"none"``: position ``s`` with position ``s`` (spatio-semantic RSM).
        ``"greedy"``, ``"topk_greedy"`` (option ``k``, default 128), ``"batch_optimal"`` (option
        ``b``, default 512): the paper's approximations, which order positions by norm.
        ``"auction"`` (option ``gap_ppm``, default 30000 = 3 %): semrsm's ε-scaling auction, which
        stops once its own dual certifies it is within ``gap_ppm`` parts per million of the exact
        value (typically ~1 % below it at the default); the best speed/quality trade-off on real
        maps. ``"shift"`` (option ``w``, the grid width, taken from 4-D input): the best circular
        2-D shift of the ``H × W`` grid, a translation-invariant baseline between ``"none"`` and
        ``"exact"`` (Williams et al., 2021). See the README's "Matchers" section.
    layout : {"auto", "nchw", "nhwc", "nsc", "ncs", "nd"}
        Axis order. **"auto" treats 4-D input as (N, C, H, W), 3-D input as (N, S, C)** (e.g.
        ViT tokens (N, T, D)) and 2-D input as pooled features (N, D), one position (``"nd"``,
        S = 1). Pass ``layout="ncs"`` for (N, C, S) data: a wrong guess is not an
        error, it silently matches channels instead of positions.
    center : bool or "channel"
        ``True``: subtract the mean over samples of each position and channel before matching,
        as the paper does. ``"channel"``: subtract the mean over samples *and positions* of each
        channel, which keeps the semantic RSM invariant to any rearrangement of any sample's
        positions (``True`` keeps it only for one rearrangement applied to all samples; see the
        README's "Which invariance holds"). With ``y``, both sets are centred with ``y``'s mean.
    threads : int, optional
        Threads for the pairwise fill; default all cores. Results are identical for any value.
    return_permutations : bool
        Also return ``perm`` of shape (N, M, S): ``perm[i, j, s]`` is the position of ``y_j``
        matched to position ``s`` of ``x_i`` (memory: ``8·N·M·S`` bytes).
    precision : {"auto", "float64", "float32", "mixed"}
        Arithmetic of the affinities. ``"auto"`` (default): ``"mixed"`` where it was measured
        faster than ``"float64"`` on one thread — the exact matcher (or ``topk_greedy``/
        ``batch_optimal``) with at least 128 matched positions (``S`` minus ``prefix_tokens``)
        and at least 256 channels, e.g. ViT tokens (S = 197–257, C = 384–768), or at least 49
        with at least 1024 channels (7×7 maps of wide late layers), or at least 1536 at any
        number of channels (early layers, e.g. S = 3136–4096, bound by memory traffic) — and
        ``"float64"``
        elsewhere (e.g. 7×7 maps with C < 1024, where the float64 certificate costs about what
        float32 saves, or more). Either way G is the float64 optimum, with ``"float64"``'s bits
        whenever the same permutation is found (always, unless several are optimal); the rule
        is :func:`semrsm._tiles.resolve_precision`. ``"float64"``: computed and matched in
        float64 (forces the float64 path). ``"float32"``: the input is rounded to float32 and
        everything is computed from it: half the memory traffic, about 1e-7 relative error in
        G, possibly a different, near-optimal permutation. ``"mixed"``: the float64 result (the
        exact float64 optimum, equal to ``"float64"``'s G up to rounding, ~1e-15 relative) from
        float32 affinities where that can be proved: with ``matcher="exact"`` (and
        ``topk_greedy``/``batch_optimal`` when they are exact) each pair's affinity is computed
        and solved in float32, then a dual certificate proves the permutation optimal for the
        float64 affinities, computing in float64 only the few entries that a rounding bound
        cannot rule out; where it does not hold (float32 ties that float64 breaks, values so
        small that float32 underflows) the pair is solved again in float64 from the float32
        duals. G is always summed from float64 dot products. The approximate matchers
        (``greedy``, ``auction``, and ``topk_greedy``/``batch_optimal`` when ``k``/``b`` do not
        cover S) choose their permutation on the float32 affinities: G is that permutation's
        exact float64 value (summed from float64 dot products), and ``bound`` stays an upper
        bound on the float64 optimum (the float32 dual plus the float32 GEMM's rounding bound
        of each row); an auction whose gap that bound cannot certify is solved exactly in
        float64, as in ``"float64"``. ``"auto"`` picks this from 128 matched positions on
        at any number of channels, and from 49 with at least 256 channels (median 0.77x their
        float64 time per pair at S = 144-576, 0.5-0.85x at S = 3136-4096, 0.77-0.9x at S = 49
        from C = 256), else float64.
        Inputs whose norms could overflow float32, ``none`` and ``shift`` run in float64.
        Memory: as ``"float64"`` plus a float32 copy of the input blocks. See
        docs/benchmarks.md ("Mixed precision") for the measurements behind ``"auto"``.
    return_bound : bool
        Also return ``bound``, a certified upper bound on the *exact* matched inner product of
        every pair (from a feasible dual of the assignment problem): ``G <= G_exact <= bound``.
        Equal to ``G`` for ``matcher="exact"``; within ``gap_ppm`` of it for ``"auction"`` (when
        the auction cannot certify that, the pair is solved exactly; only where rounding at the
        scale of the largest affinity exceeds ``gap_ppm`` of ``|G|`` can the certified gap, which
        :func:`certified_gap` reports, stay above it); for the
        other matchers it costs about one auction run per pair. See :func:`certified_gap`.
    out : str or path, optional
        Write ``G`` to this ``.npy`` file tile by tile (memory-mapped) and return it opened
        read-only with ``mmap_mode="r"``. The run writes ``out + ".partial"`` and a small sidecar
        of finished tiles, and renames onto ``out`` only when complete: a crash never leaves a
        truncated ``out`` nor destroys an existing one. With ``return_permutations`` and
        ``return_bound`` they are written beside it the same way (tile by tile, resumable,
        renamed when complete) and returned memory-mapped too: for ``out="rsm.npy"``,
        ``rsm.perm.npy`` (**int32**: half the size of the int64 returned in memory; the same
        values) and ``rsm.bound.npy`` (a name not ending in ``.npy`` gets the suffix appended:
        ``G.bin.perm.npy``). Before anything is written, the free disk space is checked
        against the files' size (:class:`TooLargeError`).
    resume : bool
        With ``out``: continue an unfinished run (killed, power loss) from its finished tiles.
        The inputs (shape, dtype, a hash of their bytes), options and tile size must be those of
        the unfinished run (else :class:`OptionError`); the result is bit-identical to an
        uninterrupted run. Without an unfinished run it simply computes.
    progress : bool, optional
        ``None`` (default): a tqdm bar on stderr if it is a terminal and the run takes more
        than 2 s. ``True``: always (``tqdm.auto``, a widget in notebooks). ``False``: never.
        Counts pairs: ``N(N+1)/2`` (square) or ``N·M``.
    client : dask.distributed.Client, optional
        Compute the tiles on this Dask cluster (``pip install 'semrsm[dask]'``). Workers read
        their rows themselves (from the ``.npy`` path, zarr or dask array; an in-memory array is
        scattered once) and run the same Rust tile function with all their cores; the result
        is bit-identical to a local run and streams into memory or ``out``.
    tile : int, optional
        Rows (and columns) per tile; default: as many as keep one row block near 64 MiB (the
        whole input in one tile when it fits). The result does not depend on it.
    prefix_tokens : int
        Prefix tokens ``k`` (timm's ``num_prefix_tokens``: a ViT's CLS and register tokens, which
        summarise the image rather than a location): the first ``k`` positions are compared
        position by position and are not matched, the other ``S - k`` are, so ``G[i, j] =
        sum_{t<k} <x_i[t], y_j[t]> + max_P <x_i[k:], P y_j[k:]>``. Works with every matcher
        (``"shift"``: the grid is the ``S - k`` remaining tokens, so ``w`` must divide ``S - k``),
        ``return_bound`` (prefix part + bound of the matched part) and ``return_permutations``
        (``perm[i, j, t] = t`` for ``t < k``). ``0 <= k < S``; default 0 (match every position).
    **matcher_options : int
        Options of the chosen matcher: ``k`` (topk_greedy, >= 0), ``b`` (batch_optimal, >= 1),
        ``gap_ppm`` (auction, 0..1e6), ``w`` (shift: grid width; 0 = square). Other matchers take
        none; unknown names, values out of range or options of another matcher raise
        :class:`OptionError`.

    Returns
    -------
    G : ndarray of float64, shape (N, N) or (N, M)
        Symmetric when ``y`` is None.
    perm : ndarray of int64, shape (N, M, S)
        Only with ``return_permutations=True``.
    bound : ndarray of float64, shape (N, N) or (N, M)
        Only with ``return_bound=True`` (after ``perm`` when both are requested).

    Raises
    ------
    ShapeError, NonFiniteError, OptionError, TooLargeError
        All subclasses of :class:`semrsm.SemrsmError` (a ``ValueError``).
    """
    check_keywords(matcher_options, "gram", _GRAM_KEYWORDS)
    matcher_options = _with_grid_width(x, layout, matcher, matcher_options)
    options = _tiles.check_options(
        matcher, matcher_options, center, precision, return_permutations, return_bound, threads, prefix_tokens
    )
    engine = _tiles.Engine.create(
        x, y, layout, options, tile, fingerprint=out is not None, in_memory=out is None and client is None
    )
    G, perm, bound = _tiles.run(engine, out, resume, progress, client)
    if return_permutations and return_bound:
        assert perm is not None and bound is not None
        return G, perm, bound
    if return_permutations:
        assert perm is not None
        return G, perm
    if return_bound:
        assert bound is not None
        return G, bound
    return G


@overload
def build(
    x: Any,
    y: Any = ...,
    *,
    kernel: str = ...,
    matcher: str = ...,
    layout: str = ...,
    center: Union[bool, str] = ...,
    sigma: kernels.Sigma = ...,
    sigma_scale: float = ...,
    threads: Optional[int] = ...,
    precision: str = ...,
    return_bound: Literal[False] = ...,
    return_sigma: Literal[False] = ...,
    out: Any = ...,
    resume: bool = ...,
    progress: Optional[bool] = ...,
    client: Any = ...,
    tile: Optional[int] = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> _Array: ...
@overload
def build(
    x: Any,
    y: Any = ...,
    *,
    kernel: str = ...,
    matcher: str = ...,
    layout: str = ...,
    center: Union[bool, str] = ...,
    sigma: kernels.Sigma = ...,
    sigma_scale: float = ...,
    threads: Optional[int] = ...,
    precision: str = ...,
    return_bound: Literal[True],
    return_sigma: Literal[False] = ...,
    out: Any = ...,
    resume: bool = ...,
    progress: Optional[bool] = ...,
    client: Any = ...,
    tile: Optional[int] = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> tuple[_Array, _Array]: ...
@overload
def build(
    x: Any,
    y: Any = ...,
    *,
    kernel: str = ...,
    matcher: str = ...,
    layout: str = ...,
    center: Union[bool, str] = ...,
    sigma: kernels.Sigma = ...,
    sigma_scale: float = ...,
    threads: Optional[int] = ...,
    precision: str = ...,
    return_bound: Literal[False] = ...,
    return_sigma: Literal[True],
    out: Any = ...,
    resume: bool = ...,
    progress: Optional[bool] = ...,
    client: Any = ...,
    tile: Optional[int] = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> tuple[_Array, float]: ...
@overload
def build(
    x: Any,
    y: Any = ...,
    *,
    kernel: str = ...,
    matcher: str = ...,
    layout: str = ...,
    center: Union[bool, str] = ...,
    sigma: kernels.Sigma = ...,
    sigma_scale: float = ...,
    threads: Optional[int] = ...,
    precision: str = ...,
    return_bound: Literal[True],
    return_sigma: Literal[True],
    out: Any = ...,
    resume: bool = ...,
    progress: Optional[bool] = ...,
    client: Any = ...,
    tile: Optional[int] = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> tuple[_Array, _Array, float]: ...
@overload
def build(
    x: Any,
    y: Any = ...,
    *,
    kernel: str = ...,
    matcher: str = ...,
    layout: str = ...,
    center: Union[bool, str] = ...,
    sigma: kernels.Sigma = ...,
    sigma_scale: float = ...,
    threads: Optional[int] = ...,
    precision: str = ...,
    return_bound: bool = ...,
    return_sigma: bool = ...,
    out: Any = ...,
    resume: bool = ...,
    progress: Optional[bool] = ...,
    client: Any = ...,
    tile: Optional[int] = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> Union[_Array, tuple[_Array, _Array], tuple[_Array, float], tuple[_Array, _Array, float]]: ...


def build(
    x: Any,
    y: Any = None,
    *,
    kernel: str = "linear",
    matcher: str = "exact",
    layout: str = "auto",
    center: Union[bool, str] = True,
    sigma: kernels.Sigma = None,
    sigma_scale: float = 1.0,
    threads: Optional[int] = None,
    precision: str = "auto",
    return_bound: bool = False,
    return_sigma: bool = False,
    out: Any = None,
    resume: bool = False,
    progress: Optional[bool] = None,
    client: Any = None,
    tile: Optional[int] = None,
    prefix_tokens: int = 0,
    **matcher_options: int,
) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, float], tuple[np.ndarray, np.ndarray, float]]:
    """Semantic (or, with ``matcher="none"``, spatio-semantic) RSM of representations.

    Parameters
    ----------
    x, y, matcher, layout, center, threads, precision, progress, client, tile, prefix_tokens, **matcher_options
        As for :func:`gram`, e.g. ``build(z, matcher="batch_optimal", b=512)``.
    out, resume
        As for :func:`gram`: ``K`` is written to ``out`` (``G`` first goes to
        ``out + ".gram.npy.partial"``, resumable, then the kernel is applied in row blocks);
        with ``return_bound``, ``K_bound`` goes to the companion file (``rsm.npy`` ->
        ``rsm.bound.npy``).
        With ``kernel="rbf"`` the named rules ``sigma="median"``/``"kornblith"`` are computed
        from that file in bounded memory (an exact selection in a few passes over row blocks;
        the same σ, bit for bit, as without ``out``); a callable ``sigma`` gets the whole ``d²``
        matrix in memory, so it raises :class:`TooLargeError` before computing when that
        cannot fit.
    kernel : {"linear", "cosine", "rbf"}
        ``linear``: ``G``; ``cosine``: ``G / (||x_i|| ||y_j||)``; ``rbf``:
        ``exp(-d² / (2σ²))`` with ``d² = ||x_i||² + ||y_j||² - 2G`` (norms after centering).
    sigma : float, {"median", "kornblith"} or callable, optional
        RBF bandwidth σ, or the rule that gives it from the squared distances ``d²`` of the whole
        matrix (only with ``kernel="rbf"``). ``None``/``"median"`` (default): the median of the
        non-zero off-diagonal distances (all entries when ``y`` is given), see
        :func:`semrsm.kernels.median_sigma`. ``"kornblith"``: ``sqrt(median(d²))`` over all
        entries, diagonal included, the rule of Kornblith et al.'s ``gram_rbf``. A callable gets the
        read-only ``d²`` matrix and returns σ. The README's "RBF bandwidth" table says which
        published code uses which rule.
    sigma_scale : float
        Multiplies σ (Kornblith et al.'s ``threshold``): ``sigma="kornblith", sigma_scale=t``
        gives ``gram_rbf(x, t)``.
    return_bound : bool
        Also return ``K_bound``: the kernel applied to the certified upper bound of :func:`gram`
        (same norms, same σ). All three kernels increase with ``G``, so ``K_bound`` bounds the
        kernel of the exact matching from above: ``K <= K_exact <= K_bound`` (for ``rbf`` at the
        σ used for ``K``).

    return_sigma : bool
        Also return the σ used (``kernel="rbf"`` only), last in the returned tuple.

    Returns
    -------
    K : ndarray of float64, shape (N, N) or (N, M)
    K_bound : ndarray of float64, shape (N, N) or (N, M)
        Only with ``return_bound=True``.
    sigma : float
        Only with ``return_sigma=True``.

    Examples
    --------
    >>> import numpy as np, semrsm
    >>> z = np.random.default_rng(0).normal(size=(6, 8, 4, 4))   # N, C, H, W
    >>> K = semrsm.build(z, kernel="cosine")                       # semantic RSM
    >>> K0 = semrsm.build(z, kernel="cosine", matcher="none")       # spatio-semantic RSM
    >>> K.shape, bool(np.all(K >= K0 - 1e-12))
    ((6, 6), True)
    """
    check_keywords(matcher_options, "build", _BUILD_KEYWORDS)
    if kernel not in kernels.KERNELS:
        raise OptionError(f"unknown kernel {kernel!r}; choose one of {', '.join(kernels.KERNELS)}")
    sigma = kernels.check_sigma_rule(sigma)
    sigma_scale = kernels.check_sigma_scale(sigma_scale)
    want_sigma = check_flag(return_sigma, "return_sigma")
    if kernel != "rbf":
        for name, given in (("sigma", sigma is not None), ("sigma_scale", sigma_scale != 1.0), ("return_sigma", want_sigma)):
            if given:
                raise OptionError(f"{name} only applies to kernel='rbf', not kernel={kernel!r}")
    matcher_options = _with_grid_width(x, layout, matcher, matcher_options)
    options = _tiles.check_options(
        matcher, matcher_options, center, precision, False, return_bound, threads, prefix_tokens
    )
    engine = _tiles.Engine.create(
        x, y, layout, options, tile, fingerprint=out is not None, in_memory=out is None and client is None
    )
    square = engine.square
    engine.record_norms = kernel != "linear"  # the kernels need the norms of the centred samples
    if out is not None and kernel != "linear":
        return _build_to_file(engine, kernel, sigma, sigma_scale, want_sigma, out, resume, progress, client)
    G, _, bound = _tiles.run(engine, out, resume, progress, client, what="build")
    if kernel == "linear":
        return G if bound is None else (G, bound)
    sq_x, sq_y = engine.sq_norms()
    if kernel == "cosine":
        K = kernels.cosine(G, sq_x, sq_y, square=square)
        return K if bound is None else (K, kernels.cosine(bound, sq_x, sq_y, square=square))
    d2 = kernels.squared_distances(G, sq_x, sq_y, square=square)
    used = kernels.resolve_sigma(sigma, d2, square=square, sigma_scale=sigma_scale)
    K = kernels.gaussian(d2, used)
    if bound is None:
        return (K, used) if want_sigma else K
    # The bound uses the σ of K, not one of its own.
    K_bound = kernels.gaussian(kernels.squared_distances(bound, sq_x, sq_y, square=square), used)
    return (K, K_bound, used) if want_sigma else (K, K_bound)


#: Bytes of ``G`` rows read at a time when ``build(..., out=)`` applies a kernel (the selection
#: passes of the median rules and the writing of ``K``): a few such blocks are in memory at once.
KERNEL_BLOCK_BYTES = 4 << 20


def _check_callable_sigma_fits(engine: "_tiles.Engine", kernel: str, sigma: kernels.Sigma) -> None:
    """``sigma=<callable>`` with ``out=`` gets the whole ``d²`` matrix in memory: refuse before
    computing anything when it cannot fit."""
    if kernel != "rbf" or not callable(sigma):
        return
    n, m = engine.shape
    need = 8 * n * m
    budget = _tiles.available_memory()
    if n * m > _tiles.MAX_OUTPUT_ENTRIES or (budget is not None and need > budget // 2):
        raise TooLargeError(
            f"sigma=<callable> needs the whole {n} x {m} matrix of squared distances in memory "
            f"({need / 2**30:.2f} GiB; about {0 if budget is None else budget / 2**30:.2f} GiB available); "
            "with out=, pass a number or a named rule, sigma='median' or 'kornblith', which are "
            "computed from the file in bounded memory"
        )


def _build_to_file(
    engine: "_tiles.Engine",
    kernel: str,
    sigma: kernels.Sigma,
    sigma_scale: float,
    want_sigma: bool,
    out: Any,
    resume: Any,
    progress: Any,
    client: Any,
) -> Any:
    """``build(..., out=)`` with a non-linear kernel: ``G`` into a resumable partial file, then
    ``K`` in row blocks into ``out`` (atomic rename), elementwise as the in-memory path. The
    named σ rules are found from the file by exact selection in a few passes over row blocks
    (:func:`semrsm.kernels.streaming_sigma`), bit-identical to the in-memory rule; a callable σ
    gets the whole ``d²`` matrix (checked to fit before anything is computed)."""
    _check_callable_sigma_fits(engine, kernel, sigma)
    final = Path(out)
    gram_out = final.with_name(final.name + ".gram.npy")
    G, sink, bound = _tiles.run(engine, gram_out, resume, progress, client, what="build", rename=False)
    sq_x, sq_y = engine.sq_norms()
    square = engine.square
    n, m = engine.shape
    rows = max(1, KERNEL_BLOCK_BYTES // (8 * m))

    def d2_rows(r0: int, r1: int, source: np.ndarray = G) -> np.ndarray:
        """Rows of d² from the file, as the in-memory ``squared_distances`` gives them."""
        d2 = kernels.squared_distances(source[r0:r1], sq_x[r0:r1], sq_y)
        _tiles._release_pages(source)  # the rows read do not stay resident
        if square:  # the exact zero distance on the diagonal, as square=True sets it
            idx = np.arange(r0, r1)
            d2[idx - r0, idx] = 0.0
        return d2

    def d2_blocks():
        """All row blocks of d², each with the mask of its entries i < j (square matrix)."""
        for r0 in range(0, n, rows):
            r1 = min(n, r0 + rows)
            upper = np.arange(m)[None, :] > np.arange(r0, r1)[:, None] if square else None
            yield d2_rows(r0, r1), upper

    used = None
    if kernel == "rbf":
        if callable(sigma):
            d2 = kernels.squared_distances(np.asarray(G), sq_x, sq_y, square=square)
            _tiles._release_pages(G)
            used = kernels.resolve_sigma(sigma, d2, square=square, sigma_scale=sigma_scale)
            del d2
        else:
            used = kernels.streaming_sigma(sigma, d2_blocks, sigma_scale=sigma_scale)
    # K (and, from the bound, K_bound with the same σ) row block by row block.
    targets = [(G, final)] + ([] if bound is None else [(bound, _tiles.companion(final, "bound"))])
    for source, path in targets:
        partial = path.with_name(path.name + ".partial")
        K = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float64, shape=(n, m))
        for r0 in range(0, n, rows):
            r1 = min(n, r0 + rows)
            if kernel == "cosine":
                block = kernels.cosine(source[r0:r1], sq_x[r0:r1], sq_y)
                _tiles._release_pages(source)
            else:
                assert used is not None
                block = kernels.gaussian(d2_rows(r0, r1, source), used)
            if square:  # the exact diagonal, as square=True sets it
                idx = np.arange(r0, r1)
                block[idx - r0, idx] = 1.0
            K[r0:r1] = block
            K.flush()
            _tiles._release_pages(K)  # written rows do not stay resident either
        del K
        with open(partial, "rb+") as f:
            os.fsync(f.fileno())
    del G, bound
    for _, path in targets[::-1]:  # K_bound first, K last (as gram's companion files)
        os.replace(path.with_name(path.name + ".partial"), path)
    sink.discard()
    result = np.load(final, mmap_mode="r")
    if len(targets) == 2:
        K_bound = np.load(targets[1][1], mmap_mode="r")
        return (result, K_bound, used) if want_sigma else (result, K_bound)
    result = np.load(final, mmap_mode="r")
    return (result, used) if want_sigma else result


@overload
def match_affinity(
    affinity: Any,
    norms_x: Any = ...,
    norms_y: Any = ...,
    *,
    matcher: str = ...,
    return_bound: Literal[False] = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> tuple[_Array, float]: ...
@overload
def match_affinity(
    affinity: Any,
    norms_x: Any = ...,
    norms_y: Any = ...,
    *,
    matcher: str = ...,
    return_bound: Literal[True],
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> tuple[_Array, float, float]: ...
@overload
def match_affinity(
    affinity: Any,
    norms_x: Any = ...,
    norms_y: Any = ...,
    *,
    matcher: str = ...,
    return_bound: bool = ...,
    prefix_tokens: int = ...,
    **matcher_options: int,
) -> Union[tuple[_Array, float], tuple[_Array, float, float]]: ...


def match_affinity(
    affinity: Any,
    norms_x: Any = None,
    norms_y: Any = None,
    *,
    matcher: str = "exact",
    return_bound: bool = False,
    prefix_tokens: int = 0,
    **matcher_options: int,
) -> Union[tuple[np.ndarray, float], tuple[np.ndarray, float, float]]:
    """Match one pair of samples given their affinity matrix.

    The per-pair step of :func:`gram`, for users who have the affinity ``A = x yᵀ`` already (and
    for timing matchers apart from the affinity, as ``benches/table5.py`` does). Runs single
    threaded, with the GIL released.

    Parameters
    ----------
    affinity : array_like, shape (S, S)
        ``A[s, t] = <x_s, y_t>`` for the positions ``s`` of one sample and ``t`` of the other
        (any real square matrix; float64 is used). Finite, magnitudes at most 1e300.
    norms_x, norms_y : array_like, shape (S,), optional
        L2 norms of the positions of ``x`` and ``y`` (``np.linalg.norm(x, axis=1)``). Required by
        the norm-based matchers ``"greedy"``, ``"topk_greedy"`` and ``"batch_optimal"``;
        ``"auction"`` uses ``norms_x`` to order its first bids (index order when omitted).
    matcher : str
        One of :data:`MATCHERS` (see :func:`gram`).
    return_bound : bool
        Also return the certified upper bound on the exact value (see :func:`gram`).
    prefix_tokens : int
        Prefix tokens ``k`` (a ViT's CLS/register tokens, as in :func:`gram`): positions
        ``t < k`` are paired with themselves (``perm[t] = t``) and only the block ``A[k:, k:]``
        is matched, so ``value = sum_{t<k} A[t, t] + max_P <A[k:, k:], P>`` (the norms of
        positions ``t >= k`` are used). ``0 <= k < S``; default 0.
    **matcher_options : int
        As for :func:`gram`.

    Returns
    -------
    perm : ndarray of int64, shape (S,)
        ``perm[s]`` is the position of ``y`` matched to position ``s`` of ``x``.
    value : float
        ``A[arange(S), perm].sum()``, summed in order of ``s`` (with ``prefix_tokens=k``: the
        prefix's diagonal, then the matched block's sum in order, added).
    bound : float
        Only with ``return_bound=True``: ``value <= exact optimum <= bound``.

    Raises
    ------
    ShapeError
        For a non-square or empty affinity, or norms of the wrong shape.
    NonFiniteError
        For NaN or infinite entries (affinity or norms), or magnitudes above 1e300.
    OptionError
        For an unknown matcher or option, a norm-based matcher without norms, or
        ``prefix_tokens`` not in ``0..S-1``.
    SemrsmError
        For non-real dtypes or negative norms.

    Examples
    --------
    >>> import numpy as np, semrsm
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(64, 8)), rng.normal(size=(64, 8))
    >>> nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    >>> perm, value, bound = semrsm.match_affinity(x @ y.T, nx, ny, matcher="batch_optimal", b=16, return_bound=True)
    >>> _, exact = semrsm.match_affinity(x @ y.T)
    >>> bool(value <= exact <= bound + 1e-9)
    True
    >>> perm, value = semrsm.match_affinity(x @ y.T, prefix_tokens=1)   # position 0: a CLS token
    >>> int(perm[0]), bool(value <= exact)
    (0, True)
    """
    check_keywords(matcher_options, "match_affinity", _MATCH_KEYWORDS)
    k = _tiles.check_prefix_tokens(prefix_tokens)
    _check_matcher(matcher)
    a = as_real_array(affinity, "affinity")
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ShapeError(f"affinity must be a square 2-D array (S, S), got shape {a.shape}")
    if a.size == 0:
        raise ShapeError("affinity is empty: shape (0, 0); at least one position is needed")
    s = a.shape[0]  # finiteness of the affinity is checked by the core, in the same pass it reads it
    if (norms_x is None or norms_y is None) and matcher in _NORM_MATCHERS:
        raise OptionError(
            f"matcher {matcher!r} orders positions by their norm: pass norms_x and norms_y "
            "(np.linalg.norm(x, axis=1) for x of shape (S, C))"
        )
    if k >= s:
        raise OptionError(
            f"prefix_tokens={k} must be below the number of positions S = {s} of the affinity: at least "
            "one position must be matched"
        )
    norms = []
    for name, n in (("norms_x", norms_x), ("norms_y", norms_y)):
        if n is None:
            norms.append(np.zeros(s - k))
            continue
        arr = as_real_array(n, name)
        if arr.shape != (s,):
            raise ShapeError(f"{name} must have shape ({s},) (one norm per position), got {arr.shape}")
        check_finite(arr, name)
        if (arr < 0).any():
            raise SemrsmError(f"{name} must hold L2 norms (>= 0), got {float(arr[arr < 0][0])!r}")
        norms.append(np.ascontiguousarray(arr[k:], dtype=np.float64))
    fixed = 0.0
    if k:
        # The core checks the block it matches; the whole matrix is checked here, as without a prefix.
        check_finite(a, "affinity")
        top = float(np.abs(a).max())
        if top > 1e300:
            raise NonFiniteError(f"affinity has values beyond the supported range: largest magnitude {top:e} exceeds 1e+300")
        for t in range(k):  # the prefix tokens' part, in order
            fixed += float(a[t, t])
    perm, value, bound = _core.match_affinity(
        np.ascontiguousarray(a[k:, k:], dtype=np.float64),
        norms[0],
        norms[1],
        matcher=matcher,
        options=check_matcher_options(matcher_options),
        return_bound=check_flag(return_bound, "return_bound"),
    )
    if k:
        perm = np.concatenate([np.arange(k, dtype=np.int64), perm + k])
        value = fixed + value
        bound = None if bound is None else fixed + bound
    if return_bound:
        assert bound is not None
        return perm, value, bound
    return perm, value


def certified_gap(value: Any, bound: Any) -> np.ndarray:
    """Certified relative gap ``(bound - value) / |bound|`` of matched values to the exact ones.

    With ``value`` from an approximate matcher and ``bound`` from ``return_bound=True``, the exact
    value lies in ``[value, bound]``. Where ``value > 0`` the exact matching reaches at most
    ``1 / (1 - gap)`` times ``value``, i.e. ``value / exact >= 1 - gap``: a certified fraction of
    the optimum, obtained without solving exactly. (Everywhere, ``exact - value <= bound - value``.)

    Parameters
    ----------
    value, bound : array_like or float, same shape
        E.g. ``G, bound = semrsm.gram(x, matcher="auction", return_bound=True)``.

    Returns
    -------
    gap : ndarray of float64 (0-d for scalar input)
        0 where ``bound == value`` (the matching is certified optimal); ``inf`` where
        ``bound == 0 < bound - value``. Never negative (rounding is clipped).

    Raises
    ------
    ShapeError
        If ``value`` and ``bound`` differ in shape (they are not broadcast).
    NonFiniteError
        For NaN or infinite entries.

    Examples
    --------
    >>> import numpy as np, semrsm
    >>> x = np.random.default_rng(0).random(size=(4, 16, 3))
    >>> G, bound = semrsm.gram(x, center=False, matcher="auction", gap_ppm=10_000, return_bound=True)
    >>> bool(semrsm.certified_gap(G, bound).max() <= 0.01)
    True
    """
    v = as_real_array(value, "value").astype(np.float64, copy=False)
    b = as_real_array(bound, "bound").astype(np.float64, copy=False)
    if v.shape != b.shape:
        raise ShapeError(f"value and bound must have the same shape, got {v.shape} and {b.shape}")
    check_finite(v, "value")
    check_finite(b, "bound")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        diff = np.maximum(b - v, 0.0)
        gap = np.where(diff == 0.0, 0.0, diff / np.abs(b))
    return np.asarray(gap, dtype=np.float64)
