"""The tile engine: inputs read in row blocks, one streaming pass, tiles of ``G`` computed in Rust.

Everything :func:`semrsm.gram` and :func:`semrsm.build` compute goes through here:

- :func:`open_input` wraps what the user passed (ndarray, ``np.memmap``, a path to a ``.npy``,
  a zarr/dask/h5py array) in a :class:`Source` that reads *row blocks* in the user's layout
  without materialising the whole input (a ``.npy`` file is read with ``pread``, so its pages do
  not stay in this process's memory).
- :func:`scan` is the one streaming pass over an input: it finds the first NaN/inf (reported in
  the user's own index), computes the centring mean (as ``Σ x_i / N``, row by row in a fixed
  order, so it cannot overflow and does not depend on any block size) and a content hash.
- :class:`Engine` plans the tiles (fixed order: rows of tiles top to bottom, in each the
  columns left to right; the square case only the upper triangle), reads, widens and centres
  the row blocks (:meth:`Engine.block`, the single place inputs are widened in Python) and
  calls the Rust tile function ``_core.gram``; ``matcher="none"`` tiles read raw blocks
  (:meth:`Engine.raw_block`) that ``_core.gram_none`` widens and centres inside its GEMM, with
  the same bits (:attr:`Engine.direct_none`). :meth:`Engine.tiles` yields
  ``(tile, G, perm, bound)`` for each tile; sinks (memory, a ``.npy`` file with resume) and the
  Dask driver consume them.

Each tile is bit-identical whatever the tile size, thread count, resume history or worker that
computed it (each entry depends only on its two samples), so all these ways of running agree.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import numbers
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from . import _core
from ._errors import NonFiniteError, OptionError, SemrsmError, ShapeError, TooLargeError
from ._validation import (
    as_real_array,
    check_flag,
    check_matcher_options,
    check_threads,
    cpu_tensor,
    is_torch_tensor,
    resolve_layout,
)

#: Working-precision bytes of one row block of an input (the rows of a tile); the default tile
#: has as many rows as fit (at least one).
BLOCK_BYTES = 64 << 20
#: Bytes of one tile's results (G, and the bound or permutations when asked for); the default
#: tile has at most as many rows as keep it within this, so that ``out=`` needs memory for the
#: tiles in flight only, also when ``S·C`` is small and many rows would fit in a block.
TILE_BYTES = 256 << 20
#: Row-block budget of in-memory ``matcher="none"`` runs (output in memory, no bound, no
#: permutations, no cluster) whose input is read (a file, zarr): their tiles are GEMMs over all
#: ``S·C`` products, faster per entry the larger the tile, so fewer, larger tiles pay. Blocks are
#: raw (:meth:`Engine.raw_block`, the input's dtype) and capped at half the input's own bytes
#: (the two blocks in flight never exceed the input) and at an eighth of the available memory;
#: never below :data:`BLOCK_BYTES`. An in-memory float32/float64 array is one tile (its blocks
#: are views).
NONE_BLOCK_BYTES = 256 << 20
#: Raw bytes read at a time by the streaming pass.
SCAN_BYTES = 32 << 20
#: Largest output held in memory, in entries (as the core's limit; a file via ``out=`` is not
#: limited).
MAX_OUTPUT_ENTRIES = 1 << 31
#: Largest number of permutation entries returned (``N·M·S``).
MAX_PERMUTATION_ENTRIES = 1 << 30
#: Names accepted by ``precision=`` (``"auto"``, the default, first).
PRECISIONS = ("auto", "float64", "float32", "mixed")
#: ``precision="auto"`` takes ``"mixed"`` when the matched positions (``S`` minus the prefix
#: tokens) number at least :data:`AUTO_MIXED_MIN_S` and the channels at least
#: :data:`AUTO_MIXED_MIN_C`, or at least :data:`AUTO_MIXED_WIDE_MIN_S` positions with at least
#: :data:`AUTO_MIXED_WIDE_C` channels (7×7 maps of wide late layers, e.g. ResNet-50's layer4),
#: or at least :data:`AUTO_MIXED_LARGE_S` positions at any number of channels (early layers,
#: where the pair is bound by memory traffic and float32 affinities halve it),
#: with a matcher that can be exact, else ``"float64"``: where float32 affinities with the
#: float64 certificate were measured faster than float64 on one thread
#: (``benches/bench_mixed.py --grid``, ``benches/bench_gemm.py --parts d``, docs/benchmarks.md
#: "Mixed precision"). Below, the certificate (its ``O(S²)`` screen and the float64 dot
#: products of the assigned entries, batched per block of pairs) costs about what the float32
#: GEMM saves, or more.
AUTO_MIXED_MIN_S = 128
AUTO_MIXED_MIN_C = 256
AUTO_MIXED_WIDE_MIN_S = 49
AUTO_MIXED_WIDE_C = 1024
AUTO_MIXED_LARGE_S = 1536
#: ``precision="auto"`` takes ``"mixed"`` for the approximate matchers (:data:`APPROX_MIXED_MATCHERS`
#: when not exact) from this many matched positions on at any number of channels, and from
#: :data:`AUTO_MIXED_WIDE_MIN_S` with at least :data:`AUTO_MIXED_MIN_C` channels.
AUTO_MIXED_APPROX_MIN_S = 128
#: Matchers for which ``"mixed"`` can apply (when they are exact).
MIXED_MATCHERS = ("exact", "topk_greedy", "batch_optimal")
#: Approximate matchers that, under ``"mixed"``, choose their permutation on float32 affinities
#: (G re-scored in float64, the bound widened by the float32 GEMM's rounding bound);
#: ``topk_greedy``/``batch_optimal`` when ``k``/``b`` do not cover S. ``"auto"`` picks that from
#: :data:`AUTO_MIXED_APPROX_MIN_S` matched positions on, where it was measured faster at every C
#: (float64 / mixed 0.92-1.6x, median 1.3x, at S = 144-576, C = 64-2048; 1.2-2x at
#: S = 3136-4096, where the float32 GEMM writes half the bytes), and at S = 49 from C = 256
#: (1.12-1.30x; 0.97-1.02x at C = 64): ``benches/bench_mixed.py --grid --matcher greedy``,
#: docs/benchmarks.md, "Approximate matchers on float32 affinities from 128 positions".
APPROX_MIXED_MATCHERS = ("greedy", "auction", "topk_greedy", "batch_optimal")
#: Defaults of topk_greedy's ``k`` and batch_optimal's ``b`` (the Rust core's DEFAULT_TOPK,
#: DEFAULT_BATCH): whether they are exact for S.
_EXACT_OPTION = {"topk_greedy": ("k", 128), "batch_optimal": ("b", 512)}

ProgressFn = Callable[[int], Any]


# --------------------------------------------------------------------------- sources


class Source:
    """Row blocks of one input in the user's layout. Subclasses are picklable (Dask workers
    receive the source, not the data, and read their rows themselves)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    description: str

    def read(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` as a numpy array in the user's layout and dtype."""
        raise NotImplementedError


class NpyFile(Source):
    """A C-ordered ``.npy`` file (or a whole-file ``np.memmap``), read with ``os.pread``."""

    def __init__(self, path: str, offset: int, shape: tuple[int, ...], dtype: np.dtype):
        self.path = os.path.abspath(path)
        self.offset = int(offset)
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.description = f"{self.path} ({'x'.join(map(str, self.shape))} {self.dtype})"
        self._fd: Optional[int] = None
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fd"], state["_pid"] = None, -1
        return state

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDONLY)
            self._pid = os.getpid()
        return self._fd

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass

    def read(self, r0: int, r1: int) -> np.ndarray:
        row = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        out = np.empty((r1 - r0,) + self.shape[1:], dtype=self.dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
        fd, pos, done = self._file(), self.offset + r0 * row, 0
        while done < len(view):
            got = os.preadv(fd, [view[done:]], pos + done) if hasattr(os, "preadv") else _pread_into(fd, view[done:], pos + done)
            if got <= 0:
                raise SemrsmError(f"{self.path} is truncated: rows {r0}..{r1} could not be read")
            done += got
        return out


def _pread_into(fd: int, view: memoryview, pos: int) -> int:
    data = os.pread(fd, len(view), pos)
    view[: len(data)] = data
    return len(data)


class ArraySource(Source):
    """Any array with numpy-style slicing: ndarray, zarr, h5py, dask (blocks are computed)."""

    def __init__(self, array: Any, description: str):
        self.array = array
        self.shape = tuple(int(d) for d in array.shape)
        self.dtype = np.dtype(array.dtype)
        self.description = description

    def read(self, r0: int, r1: int) -> np.ndarray:
        block = self.array[r0:r1]
        if hasattr(block, "compute"):  # dask
            block = block.compute()
        block = np.asarray(block)
        if block.dtype.kind not in "fiu":  # ml_dtypes (bfloat16, float8): widened block by block
            block = block.astype(np.float32)
        return block


class TorchSource(Source):
    """A CPU torch ``bfloat16`` tensor (numpy has no such dtype): each row block is widened to
    float32 (exactly) when it is read, so no full-size float32 copy of the tensor is ever made."""

    def __init__(self, tensor: Any, description: str):
        self.tensor = tensor
        self.shape = tuple(int(d) for d in tensor.shape)
        self.dtype = np.dtype(np.float32)  # what read() returns: the exact float32 values
        self.description = description

    def read(self, r0: int, r1: int) -> np.ndarray:
        return np.asarray(self.tensor[r0:r1].float().numpy())


def _npy_file(path: Path, name: str) -> Source:
    """A ``.npy`` path as a source: its header is parsed (by numpy), its data not read."""
    try:
        mapped = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise SemrsmError(f"{name}: no such file: {path}") from None
    except IsADirectoryError:
        raise SemrsmError(f"{name}: {path} is a directory, not a .npy file") from None
    except (OSError, ValueError, EOFError) as exc:
        detail = "truncated or " if "length" in str(exc) or "size" in str(exc) else ""
        raise SemrsmError(f"{name}: {path} is not a readable .npy file ({detail}{exc})") from None
    if not isinstance(mapped, np.memmap):  # object arrays cannot be mapped
        raise SemrsmError(f"{name} must hold real numbers (float or int), got dtype {mapped.dtype} in {path}")
    if mapped.dtype.kind not in "fiu":
        raise SemrsmError(f"{name} must hold real numbers (float or int), got dtype {mapped.dtype} in {path}")
    if not mapped.flags.c_contiguous:  # Fortran order: read through the map
        return ArraySource(mapped, str(path))
    return NpyFile(str(path), mapped.offset, mapped.shape, mapped.dtype)


def open_input(a: Any, name: str) -> Source:
    """Wrap a user input as a :class:`Source` (nothing is read yet, except a ``.npy`` header)."""
    if isinstance(a, (str, os.PathLike)):
        path = Path(a)
        if path.suffix != ".npy":
            raise SemrsmError(f"{name}: a path must name a .npy file, got {str(path)!r}")
        return _npy_file(path, name)
    filename = getattr(a, "filename", None)
    if isinstance(a, np.memmap) and a.flags.c_contiguous and isinstance(filename, (str, os.PathLike)):
        # A whole-file memory map (np.load(mmap_mode="r")): read it with pread instead, so that
        # its pages do not accumulate in this process's resident memory.
        try:
            whole = os.path.getsize(filename) == a.offset + a.nbytes
        except OSError:
            whole = False
        if whole and a.dtype.kind in "fiu":
            return NpyFile(os.fspath(filename), a.offset, a.shape, a.dtype)
    if not isinstance(a, np.ndarray) and hasattr(a, "shape") and hasattr(a, "__getitem__"):
        dtype = getattr(a, "dtype", None)
        if isinstance(dtype, np.dtype) and len(getattr(a, "shape", ())) >= 1:
            if dtype.kind not in "fiu":
                raise SemrsmError(f"{name} must hold real numbers (float or int), got dtype {dtype}")
            return ArraySource(a, f"{type(a).__module__}.{type(a).__name__}")
    if isinstance(a, np.ndarray) and is_ml_float(a.dtype):
        return ArraySource(a, f"array of {a.dtype}")
    if is_torch_tensor(a) and str(getattr(a, "dtype", "")) == "torch.bfloat16":
        return TorchSource(cpu_tensor(a, name), "torch.bfloat16 tensor")
    arr = as_real_array(a, name)
    return ArraySource(arr, "array")


#: Input dtypes that :meth:`Engine.block` widens and centres in one ``np.subtract`` (exact
#: widening to float64, then one rounding, as a float64 copy centred in place).
_WIDEN_CENTRE = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
#: Input dtypes (C-ordered blocks) that ``_core.centre_rows`` widens and centres (the same bits).
_RUST_CENTRE = (np.dtype(np.float32), np.dtype(np.float64))


def is_ml_float(dtype: np.dtype) -> bool:
    """A float dtype numpy lacks but ``ml_dtypes`` registers (bfloat16, float8_*): kind ``V``,
    castable to float32 exactly."""
    return dtype.kind == "V" and dtype.names is None and dtype.itemsize <= 2 and np.can_cast(dtype, np.float32)


# --------------------------------------------------------------------------- layouts


@dataclass
class Input:
    """One input: its source, concrete layout and ``(N, S, C)`` sizes."""

    source: Source
    name: str
    layout: str
    n: int
    s: int
    c: int

    def to_nsc(self, block: np.ndarray) -> np.ndarray:
        """A view of a block (user layout) as ``(n, S, C)``."""
        if self.layout == "nchw":
            n, c, h, w = block.shape
            return block.reshape(n, c, h * w).transpose(0, 2, 1)
        if self.layout == "nhwc":
            n, h, w, c = block.shape
            return block.reshape(n, h * w, c)
        if self.layout == "ncs":
            return block.transpose(0, 2, 1)
        if self.layout == "nd":
            return block.reshape(block.shape[0], 1, block.shape[1])
        return block

    def user_index(self, i: int, s: int, c: int) -> tuple[int, ...]:
        """The user's index of entry ``(i, s, c)`` of the ``(N, S, C)`` view."""
        shape = self.source.shape
        if self.layout == "nchw":
            return (i, c, s // shape[3], s % shape[3])
        if self.layout == "nhwc":
            return (i, s // shape[2], s % shape[2], c)
        if self.layout == "ncs":
            return (i, c, s)
        if self.layout == "nd":
            return (i, c)
        return (i, s, c)


def peek_shape(a: Any) -> Optional[tuple[int, ...]]:
    """The shape of an input without reading it (None if it has none)."""
    if isinstance(a, (str, os.PathLike)):
        try:
            return tuple(np.load(a, mmap_mode="r").shape)
        except Exception:  # reported properly when the input is opened
            return None
    shape = getattr(a, "shape", None)
    return None if shape is None else tuple(shape)


def prepare_input(a: Any, layout: str, name: str) -> Input:
    """Open ``a`` and check its layout and size (no data read)."""
    source = open_input(a, name)
    concrete = resolve_layout(len(source.shape), layout, name)
    if int(np.prod(source.shape, dtype=np.int64)) == 0:
        raise ShapeError(
            f"{name} is empty: shape {source.shape} (layout {concrete}); every dimension must be at least 1"
        )
    shape = source.shape
    if concrete == "nchw":
        n, c, s = shape[0], shape[1], shape[2] * shape[3]
    elif concrete == "nhwc":
        n, s, c = shape[0], shape[1] * shape[2], shape[3]
    elif concrete == "ncs":
        n, c, s = shape
    elif concrete == "nd":
        n, c, s = shape[0], shape[1], 1
    else:
        n, s, c = shape
    return Input(source, name, concrete, int(n), int(s), int(c))


# --------------------------------------------------------------------------- the streaming pass


def _first_nonfinite(block: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(~np.isfinite(block))[0])


@dataclass
class Scan:
    """What the streaming pass found: the mean of the samples (``(S, C)`` float64, if asked
    for), a content hash and the largest magnitude (inf if beyond float64)."""

    mean: Optional[np.ndarray]
    digest: str
    max_abs: float


def scan(inp: Input, want_mean: bool, want_hash: bool = True, threads: Optional[int] = None) -> Scan:
    """One pass over ``inp`` in row blocks: first NaN/inf (in the user's index), the mean
    ``Σ x_i / N`` (row by row, in order: it cannot overflow for finite input, and the result
    does not depend on a block size) and, with ``want_hash``, a BLAKE2 hash of the bytes (the
    fingerprint of a resumable run; empty otherwise). float32/float64 blocks go through
    ``_core.scan_rows`` (``threads`` threads, the same bits); other dtypes through numpy."""
    src = inp.source
    row_bytes = max(1, int(np.prod(src.shape[1:], dtype=np.int64)) * src.dtype.itemsize)
    step = max(1, SCAN_BYTES // row_bytes)
    digest = hashlib.blake2b(digest_size=16)
    max_abs = 0.0
    acc = np.zeros(src.shape[1:], dtype=np.float64) if want_mean else None
    row = np.empty(src.shape[1:], dtype=np.float64) if want_mean else None
    for r0 in range(0, inp.n, step):
        r1 = min(inp.n, r0 + step)
        raw = np.ascontiguousarray(src.read(r0, r1))
        if raw.dtype in (np.float32, np.float64):
            # one parallel pass: the range, finiteness and the mean's row-by-row sums
            top, finite = _core.scan_rows(raw.reshape(r1 - r0, -1), None if acc is None else acc.reshape(-1), inp.n, threads)
            if not finite:
                top = np.inf  # located below
        else:
            hi, lo = raw.max(), raw.min()  # NaN propagates: one check for NaN, inf and the range
            top = max(abs(float(hi)), abs(float(lo)))
        if not np.isfinite(top) and np.isfinite(raw).all():  # float128 beyond float64
            raise NonFiniteError(f"values of {inp.name} are beyond the float64 range; rescale the data")
        if not np.isfinite(top):
            index = _first_nonfinite(raw)
            value = raw[index]
            index = (index[0] + r0,) + index[1:]
            raise NonFiniteError(
                f"{inp.name} contains a non-finite value ({value}) at index {index}; "
                "semrsm needs finite numbers"
            )
        max_abs = max(max_abs, top)
        if want_hash:
            digest.update(raw.reshape(-1).view(np.uint8).data)
        if acc is not None and row is not None and raw.dtype not in (np.float32, np.float64):
            for k in range(r1 - r0):
                np.divide(raw[k], inp.n, out=row, dtype=np.float64, casting="unsafe")
                acc += row
    mean = None
    if acc is not None:
        mean = np.ascontiguousarray(inp.to_nsc(acc[None])[0])
        if not np.isfinite(mean).all():  # float128 input beyond float64
            raise NonFiniteError(f"values of {inp.name} are beyond the float64 range; rescale the data")
    return Scan(mean, digest.hexdigest() if want_hash else "", max_abs)


# --------------------------------------------------------------------------- the engine


@dataclass(frozen=True)
class Tile:
    """Tile ``index`` of the plan: rows ``r0:r1`` and columns ``c0:c1`` of ``G``. A diagonal
    tile (square case, ``r0:r1 == c0:c1``) is computed from ``x[r0:r1]`` alone."""

    index: int
    r0: int
    r1: int
    c0: int
    c1: int
    diagonal: bool

    @property
    def pairs(self) -> int:
        """Pairs the tile computes (its upper triangle with the diagonal when diagonal)."""
        rows, cols = self.r1 - self.r0, self.c1 - self.c0
        return rows * (rows + 1) // 2 if self.diagonal else rows * cols


def plan_tiles(n: int, m: int, square: bool, rows: int) -> list[Tile]:
    """The fixed tile order: tile rows top to bottom, columns left to right (from the diagonal
    in the square case)."""
    tiles: list[Tile] = []
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        for c0 in range(r0 if square else 0, m, rows):
            c1 = min(m, c0 + rows)
            tiles.append(Tile(len(tiles), r0, r1, c0, c1, square and c0 == r0))
    return tiles


def available_memory() -> Optional[int]:
    """Bytes this process may still allocate: the smaller of the memory the OS reports as
    available and what ``RLIMIT_AS``/``RLIMIT_DATA`` leave; None when unknown."""
    limits = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        import resource

        used = 0
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmSize:"):
                        used = int(line.split()[1]) * 1024
        except OSError:
            pass
        for which in (resource.RLIMIT_AS, getattr(resource, "RLIMIT_DATA", resource.RLIMIT_AS)):
            soft, _ = resource.getrlimit(which)
            if soft != resource.RLIM_INFINITY:
                limits.append(max(0, soft - used))
    except ImportError:  # pragma: no cover - not on POSIX
        pass
    return min(limits) if limits else None


def _gib(b: float) -> str:
    return f"{b / 2**30:.2f} GiB"


def default_threads() -> int:
    """Threads of the default pool (the core uses the machine's available parallelism)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


@dataclass
class Options:
    """Checked options of a run (what the result depends on, plus ``threads``)."""

    matcher: str
    matcher_options: dict[str, int]
    center: Any  # True (per position and channel), "channel" (per channel) or False
    precision: str
    return_permutations: bool
    return_bound: bool
    threads: Optional[int]
    prefix_tokens: int = 0

    def key(self) -> dict[str, Any]:
        """Everything the values depend on (not ``threads``: results are identical for any)."""
        extra = {"prefix_tokens": self.prefix_tokens} if self.prefix_tokens else {}
        return {
            **extra,
            "matcher": self.matcher,
            "matcher_options": dict(sorted(self.matcher_options.items())),
            "center": self.center,
            "precision": self.precision,
            "return_permutations": self.return_permutations,
            "return_bound": self.return_bound,
        }


def check_options(
    matcher: Any,
    matcher_options: dict[str, Any],
    center: Any,
    precision: Any,
    return_permutations: Any,
    return_bound: Any,
    threads: Any,
    prefix_tokens: Any = 0,
) -> Options:
    """Validate the options shared by :func:`semrsm.gram` and :func:`semrsm.build`."""
    names = tuple(_core.MATCHERS)
    if not isinstance(matcher, str):
        raise OptionError(f"matcher must be a string, one of {', '.join(names)}; got {matcher!r}")
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise OptionError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return Options(
        matcher=matcher,
        matcher_options=check_matcher_options(matcher_options),
        center=check_center(center),
        precision=precision,
        return_permutations=check_flag(return_permutations, "return_permutations"),
        return_bound=check_flag(return_bound, "return_bound"),
        threads=check_threads(threads),
        prefix_tokens=check_prefix_tokens(prefix_tokens),
    )


def resolve_precision(
    precision: str, matcher: str, s: int, c: int, matcher_options: Optional[dict[str, int]] = None
) -> str:
    """The precision a run uses: ``precision`` itself, or for ``"auto"`` ``"mixed"`` where it
    pays and ``"float64"`` otherwise. For a matcher that is exact for ``s`` matched positions
    (``exact``; ``topk_greedy``/``batch_optimal`` whose ``k``/``b`` in ``matcher_options``,
    default 128/512, are at least ``s``): ``s`` >= :data:`AUTO_MIXED_MIN_S` with ``c`` channels
    >= :data:`AUTO_MIXED_MIN_C`, or ``s`` >= :data:`AUTO_MIXED_WIDE_MIN_S` with ``c`` >=
    :data:`AUTO_MIXED_WIDE_C`, or ``s`` >= :data:`AUTO_MIXED_LARGE_S` at any ``c`` (G: the
    float64 optimum either way). For the approximate ones (:data:`APPROX_MIXED_MATCHERS` when
    not exact): ``s`` >= :data:`AUTO_MIXED_APPROX_MIN_S` at any ``c``, or ``s`` >=
    :data:`AUTO_MIXED_WIDE_MIN_S` with ``c`` >= :data:`AUTO_MIXED_MIN_C` (the permutation chosen
    on float32 affinities, G its float64 value).

    >>> resolve_precision("auto", "exact", 49, 320), resolve_precision("auto", "exact", 197, 768)
    ('float64', 'mixed')
    >>> resolve_precision("auto", "exact", 49, 2048), resolve_precision("auto", "exact", 4096, 24)
    ('mixed', 'mixed')
    >>> resolve_precision("auto", "auction", 49, 64), resolve_precision("auto", "greedy", 256, 24)
    ('float64', 'mixed')
    >>> resolve_precision("auto", "greedy", 49, 320)  # 7×7 maps from 256 channels
    'mixed'
    >>> resolve_precision("auto", "batch_optimal", 100, 64, {"b": 64})  # approximate at S = 100
    'float64'
    """
    if precision != "auto":
        return precision
    exact = matcher == "exact"
    if matcher in _EXACT_OPTION:
        name, default = _EXACT_OPTION[matcher]
        exact = int((matcher_options or {}).get(name, default)) >= s
    if exact:
        pays = (
            (s >= AUTO_MIXED_MIN_S and c >= AUTO_MIXED_MIN_C)
            or (s >= AUTO_MIXED_WIDE_MIN_S and c >= AUTO_MIXED_WIDE_C)
            or s >= AUTO_MIXED_LARGE_S
        )
    else:
        pays = matcher in APPROX_MIXED_MATCHERS and (
            s >= AUTO_MIXED_APPROX_MIN_S or (s >= AUTO_MIXED_WIDE_MIN_S and c >= AUTO_MIXED_MIN_C)
        )
    return "mixed" if pays else "float64"


def check_prefix_tokens(k: Any) -> int:
    """``prefix_tokens=``: an int ``>= 0`` (``< S`` is checked once the input's S is known)."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or int(k) < 0:
        raise OptionError(f"prefix_tokens must be an int >= 0 (the number of CLS/register tokens), got {k!r}")
    return int(k)


#: Values of ``center=``: the paper's per-position mean, the per-channel mean, none.
CENTERS = (True, "channel", False)


def check_center(center: Any) -> Any:
    """``center=``: ``True`` (the mean over samples of each position and channel, the paper's),
    ``"channel"`` (the mean over samples *and positions* of each channel) or ``False``."""
    if isinstance(center, str) and center == "channel":
        return "channel"
    if isinstance(center, (bool, np.bool_)):
        return bool(center)
    raise OptionError(f"center must be True, False or 'channel', got {center!r}")


def channel_mean(mean: np.ndarray) -> np.ndarray:
    """The per-channel mean ``(S, C)`` (each row the same) from the per-position mean ``(S, C)``:
    ``Σ_{i,s} x_isc / (N S)`` is the mean over positions of ``Σ_i x_isc / N``."""
    return np.ascontiguousarray(np.broadcast_to(mean.mean(axis=0), mean.shape))


def check_tile(tile: Any) -> Optional[int]:
    """``tile=``: None (automatic) or a number of rows >= 1."""
    if tile is None:
        return None
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or tile < 1:
        raise OptionError(f"tile must be a number of rows >= 1, or None (automatic); got {tile!r}")
    return int(tile)


@dataclass
class Engine:
    """A planned run: inputs opened and scanned, options checked, tiles planned.

    Build it with :meth:`Engine.create`; iterate :meth:`tiles`. Picklable (without the norms
    gathered so far): the Dask driver sends it to the workers, which read their own rows.
    """

    x: Input
    y: Optional[Input]
    options: Options
    mean: Optional[np.ndarray]
    digests: tuple[str, ...]
    rows: int
    plan: list[Tile]
    sq_x: np.ndarray = field(repr=False)
    sq_y: Optional[np.ndarray] = field(repr=False)
    #: Largest magnitude of the centred values can reach (bounds ``|x| + |mean|``), per input.
    bounds: tuple[float, ...] = (np.inf, np.inf)
    #: Whether :meth:`block` records the squared norms of the rows it reads.
    record_norms: bool = False

    @classmethod
    def create(
        cls,
        x: Any,
        y: Any,
        layout: str,
        options: Options,
        tile: Optional[int] = None,
        fingerprint: bool = False,
        in_memory: bool = False,
    ) -> "Engine":
        """Open and check the inputs (shapes first, then the one streaming pass; with
        ``fingerprint``, the pass also hashes the inputs' bytes for :meth:`fingerprint`).
        ``in_memory``: the result is held in memory on this machine (the default tile size may
        then be larger, see :func:`_default_rows`)."""
        xi = prepare_input(x, layout, "x")
        yi = None if y is None else prepare_input(y, layout, "y")
        if yi is not None:
            if xi.c != yi.c:
                raise ShapeError(f"x and y must have the same number of channels C, got {xi.c} and {yi.c}")
            if xi.s != yi.s:
                raise ShapeError(
                    f"x and y must have the same number of spatial positions S, got {xi.s} and {yi.s}"
                )
        reference = xi if yi is None else yi
        if options.prefix_tokens >= xi.s:
            raise OptionError(
                f"prefix_tokens={options.prefix_tokens} must be below the number of positions S = {xi.s} "
                f"of {xi.name} (layout {xi.layout}): at least one token must be matched"
            )
        # "auto" becomes what it runs, so that the memory estimate, the tile function, Dask
        # workers and out=/resume fingerprints all see the concrete precision.
        options = replace(
            options,
            precision=resolve_precision(
                options.precision, options.matcher, xi.s - options.prefix_tokens, xi.c, options.matcher_options
            ),
        )
        if options.center and reference.n < 2:
            raise ShapeError(
                f"center={options.center!r} needs at least 2 samples in {reference.name} (got 1): centering one "
                "sample leaves only zeros; pass center=False"
            )
        rows = check_tile(tile) or _default_rows(xi, yi, options, in_memory)
        n, m = xi.n, (xi.n if yi is None else yi.n)
        plan = plan_tiles(n, m, yi is None, rows)
        scans = [scan(xi, options.center and yi is None, fingerprint, options.threads)]
        if yi is not None:
            scans.append(scan(yi, options.center, fingerprint, options.threads))
        mean = scans[-1].mean
        if mean is not None and options.center == "channel":
            mean = channel_mean(mean)
        sq_y = None if yi is None else np.full(yi.n, np.nan)
        shift = 0.0 if mean is None else float(np.abs(mean).max())
        bounds = tuple(sc.max_abs + shift for sc in scans)
        return cls(
            xi, yi, options, mean, tuple(s.digest for s in scans), rows, plan, np.full(xi.n, np.nan), sq_y, bounds
        )

    # -- sizes
    @property
    def square(self) -> bool:
        return self.y is None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.x.n, self.x.n if self.y is None else self.y.n)

    @property
    def total_pairs(self) -> int:
        return sum(t.pairs for t in self.plan)

    def fingerprint(self, what: str) -> dict[str, Any]:
        """What a stored result depends on: inputs (shape, dtype, layout, content hash), options,
        tile plan, semrsm version. Needs an engine created with ``fingerprint=True``."""
        if not all(self.digests):
            raise RuntimeError("internal: the engine was created without fingerprint=True")
        inputs = [self.x] + ([] if self.y is None else [self.y])
        return {
            "semrsm": _core.__version__,
            "what": what,
            "inputs": [
                {"shape": list(i.source.shape), "dtype": str(i.source.dtype), "layout": i.layout, "blake2b": d}
                for i, d in zip(inputs, self.digests)
            ],
            "options": self.options.key(),
            "tile_rows": self.rows,
            "shape": list(self.shape),
        }

    # -- memory
    def memory_estimate(self, output_in_memory: bool) -> dict[str, int]:
        """Bytes the run needs at its peak, by part."""
        o = self.options
        n, m = self.shape
        s, c = self.x.s, self.x.c
        work = 4 if o.precision == "float32" else 8
        t = self.rows
        tr, tc = min(t, n), min(t, m)
        needs_affinity = o.matcher != "none" or o.return_bound
        threads = o.threads or default_threads()
        raw = max(self.x.source.dtype.itemsize, 8)
        # "mixed": float64 blocks plus their float32 copies made by the core.
        mixed = 2 * t * s * c * 4 if o.precision == "mixed" else 0
        blocks = 2 * t * s * c * work + t * s * c * (raw + 8) + mixed
        if o.matcher == "none" and not o.return_bound and not o.return_permutations:
            # raw blocks of x and y (none for views of in-memory arrays) and the (S, C)-ordered
            # copies gram_none makes of blocks stored otherwise (Engine.raw_block)
            raw_block = t * s * c * raw_itemsize(self.x.source.dtype)
            inputs = [self.x] + ([] if self.y is None else [self.y])
            views = all(_is_view_source(i.source) for i in inputs)
            ordered = all(i.layout in ("nsc", "nhwc", "nd") for i in inputs)
            blocks = (0 if views else 2 * raw_block) + (0 if ordered else 2 * raw_block)
        parts = {
            "input blocks": blocks,
            # G (and bound) of the tile, its mirror image; the permutations and, off the
            # diagonal of a square matrix, their inverse
            "tile": tr * tc * 8 * (2 + o.return_bound) + (tr * tc * s * 8 * (1 + self.square) if o.return_permutations else 0),
            # per thread for the affinities; the baseline's buffers are shared by its threads
            "scratch": threads
            * _core.scratch_bytes(s, c, work, True, shift=o.matcher == "shift" and not o.return_bound)
            if needs_affinity
            else _core.scratch_bytes(s, c, work, False, rows=max(tr, tc)),
        }
        if output_in_memory:
            parts["output"] = n * m * 8 * (1 + o.return_bound)
            if o.return_permutations:
                parts["permutations"] = n * m * s * 8
        return parts

    def check_memory(self, output_in_memory: bool) -> None:
        """:class:`TooLargeError` before anything big is allocated, when the run cannot fit."""
        n, m = self.shape
        o = self.options
        if output_in_memory and n * m > MAX_OUTPUT_ENTRIES:
            raise TooLargeError(
                f"the {n} x {m} output would exceed {MAX_OUTPUT_ENTRIES} entries in memory; "
                "write it to a file with out='G.npy'"
            )
        if output_in_memory and o.return_permutations and n * m * self.x.s > MAX_PERMUTATION_ENTRIES:
            raise TooLargeError(
                f"permutations for {n} x {m} pairs of {self.x.s} positions would exceed "
                f"{MAX_PERMUTATION_ENTRIES} entries; compute them for fewer samples at a time"
            )
        parts = self.memory_estimate(output_in_memory)
        budget = available_memory()
        total = sum(parts.values())
        if budget is None or total <= budget:
            return
        detail = ", ".join(f"{k} {_gib(v)}" for k, v in parts.items() if v)
        hints = []
        if output_in_memory:
            hints.append("write the result to a file with out='G.npy'")
        if parts["scratch"] > budget / 4 and (o.matcher != "none" or o.return_bound):  # per thread
            threads = o.threads or default_threads()
            fit = max(0, int(budget // 2 // max(1, parts["scratch"] // threads)))
            hints.append(f"use fewer threads (threads={threads} need {_gib(parts['scratch'])} of scratch; about {fit} fit)")
        hints.append("use smaller tiles (tile=)")
        if o.precision in ("float64", "mixed"):
            hints.append("use precision='float32'")
        raise TooLargeError(
            f"this call needs about {_gib(total)} ({detail}) but only about {_gib(budget)} of memory "
            f"are available; {'; '.join(hints)}"
        )

    # -- reading
    def block(self, which: str, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of ``x`` or ``y`` as a C-contiguous ``(n, S, C)`` block in the working
        precision, centred; with ``record_norms`` also records their squared norms (float64,
        before rounding to the working precision). The one place inputs are read, widened and
        centred for computing. Overflow is checked only where the scan's bound on
        ``|x| + |mean|`` says it is possible."""
        inp = self.x if which == "x" else self.y
        assert inp is not None
        bound = self.bounds[0 if which == "x" else -1]
        raw = inp.to_nsc(inp.source.read(r0, r1))
        if self.mean is not None and raw.dtype in _RUST_CENTRE and raw.flags.c_contiguous and raw.size:
            # Widened and centred by the core in one vectorised pass into a new array (never
            # the user's): f64(x) − mean, the bits of the numpy branches below.
            block = _core.centre_rows(raw.reshape(len(raw), -1), self.mean.reshape(-1)).reshape(raw.shape)
        elif self.mean is not None and raw.dtype in _WIDEN_CENTRE:
            # Widened and centred in one pass into a new array (never the user's): f64(x) − mean,
            # the bits of the float64 copy centred in place below, one pass over the block fewer.
            block = np.empty(raw.shape, dtype=np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                np.subtract(raw, self.mean, out=block)
        else:
            # A copy, always: the block is centred in place and must never alias the user's array.
            block = np.array(raw, dtype=np.float64, order="C", copy=True)
            if self.mean is not None:
                with np.errstate(over="ignore", invalid="ignore"):
                    np.subtract(block, self.mean, out=block)
        # |x - mean| <= |x| + |mean|: only check when that bound is beyond float64.
        if self.mean is not None and not bound < np.finfo(np.float64).max and not np.isfinite(block).all():
            i, s, c = _first_nonfinite(block)
            value = float(np.asarray(inp.to_nsc(inp.source.read(r0 + i, r0 + i + 1)))[0, s, c])
            index = inp.user_index(r0 + i, s, c)
            raise NonFiniteError(
                f"values of {inp.name} are too large to centre: {inp.name}{list(index)} = {value:.6g} "
                f"minus the mean {self.mean[s, c]:.6g} overflows float64; rescale the data"
            )
        if self.record_norms:
            sq = np.einsum("nsc,nsc->n", block, block)
            (self.sq_x if which == "x" else self.sq_y)[r0:r1] = sq  # type: ignore[index]
        if self.options.precision == "float32":
            with np.errstate(over="ignore"):
                work = block.astype(np.float32)
            if not bound < float(np.finfo(np.float32).max) / 2 and not np.isfinite(work).all():
                raise NonFiniteError(
                    f"{inp.name} has values beyond the float32 range (after centering); use precision='float64'"
                )
            return work
        return block

    @property
    def direct_none(self) -> bool:
        """Whether the tiles are ``matcher="none"`` products computed straight from the raw rows
        (:meth:`raw_block`, ``_core.gram_none``: widened and centred chunk by chunk inside the
        GEMM's loop, no float64 copy of a block). The bits are those of the path through
        :meth:`block` and ``_core.gram``; that path stays for permutations, bounds and inputs
        whose scan bound says centring, the working precision or an inner product could
        overflow (it names the entry)."""
        o = self.options
        if o.matcher != "none" or o.return_bound or o.return_permutations:
            return False
        single = o.precision == "float32"
        top = float(np.finfo(np.float32).max) / 2 if single else float(np.finfo(np.float64).max)
        limit = 1e37 if single else 1e300  # the core's MAX_PRODUCT
        bx, by = self.bounds[0], self.bounds[-1]
        with np.errstate(over="ignore"):
            product = float(self.x.s * self.x.c) * bx * by
        return bool(bx < top and by < top and product < limit)

    def raw_block(self, which: str, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of ``x`` or ``y`` as an ``(n, S, C)`` view of the rows as read
        (float32 or float64; float16 is widened to float32, integers and wider floats to float64,
        the values :meth:`block` widens). Never written to."""
        inp = self.x if which == "x" else self.y
        assert inp is not None
        raw = np.asarray(inp.source.read(r0, r1))
        if raw.dtype not in (np.float32, np.float64):
            raw = raw.astype(np.float32 if raw.dtype == np.float16 else np.float64)
        return inp.to_nsc(raw)

    def _record_norms(self, tile: Tile) -> None:
        """Squared norms of the rows and columns of ``tile`` not recorded yet (through
        :meth:`block`, as the other path records them)."""
        other = ("x", self.sq_x) if self.y is None else ("y", self.sq_y)
        for (which, sq), a0, a1 in ((("x", self.sq_x), tile.r0, tile.r1), (other, tile.c0, tile.c1)):
            if sq is not None and np.isnan(sq[a0:a1]).any():
                self.block(which, a0, a1)

    def compute_none(self, tile: Tile, xb: np.ndarray, yb: Optional[np.ndarray], progress: Optional[ProgressFn] = None) -> np.ndarray:
        """``_core.gram_none`` on blocks from :meth:`raw_block` (the tile's ``G``)."""
        y = None if tile.diagonal else yb
        if y is not None and y.dtype != xb.dtype:  # float32 with float64: widen (exactly)
            xb, y = xb.astype(np.float64), y.astype(np.float64)
        return _core.gram_none(
            xb, y, mean=self.mean, precision="float32" if self.options.precision == "float32" else "float64",
            threads=self.options.threads, progress=progress, options=self.options.matcher_options,
        )

    def compute(self, tile: Tile, xb: np.ndarray, yb: Optional[np.ndarray], progress: Optional[ProgressFn] = None):
        """The Rust tile function on blocks from :meth:`block`."""
        o = self.options
        return _core.gram(
            xb,
            None if tile.diagonal else yb,
            matcher=o.matcher,
            options=o.matcher_options,
            threads=o.threads,
            return_permutations=o.return_permutations,
            return_bound=o.return_bound,
            progress=progress,
            prefix_tokens=o.prefix_tokens,
            mixed_precision=o.precision == "mixed",
        )

    def tiles(
        self, todo: Optional[Sequence[bool]] = None, progress: Optional[ProgressFn] = None
    ) -> Iterator[tuple[Tile, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]]:
        """Compute the tiles of the plan in order (those with ``todo[index]`` true, default all),
        yielding ``(tile, G_tile, perm_tile, bound_tile)``. ``G_tile`` covers rows
        ``r0:r1`` and columns ``c0:c1``; for an off-diagonal tile of the square case the
        consumer mirrors it (:func:`write_tile`). Row blocks are read once per tile row."""
        current: Optional[tuple[int, np.ndarray]] = None
        other = "x" if self.y is None else "y"
        direct = self.direct_none
        read = self.raw_block if direct else self.block
        for tile in self.plan:
            if todo is not None and not todo[tile.index]:
                continue
            if current is None or current[0] != tile.r0:
                current = (tile.r0, read("x", tile.r0, tile.r1))
            xb = current[1]
            yb = None if tile.diagonal else read(other, tile.c0, tile.c1)
            if direct:
                if self.record_norms:
                    self._record_norms(tile)
                yield tile, self.compute_none(tile, xb, yb, progress), None, None
                continue
            G, perm, bound = self.compute(tile, xb, yb, progress)
            yield tile, G, perm, bound

    def sq_norms(self) -> tuple[np.ndarray, np.ndarray]:
        """Squared norms of the centred samples of ``x`` and ``y`` (reading rows no tile read;
        set ``record_norms`` before running the tiles to gather them on the way)."""
        self.record_norms = True
        for which, sq in (("x", self.sq_x), ("y", self.sq_y)):
            if sq is None:
                continue
            for r0 in range(0, len(sq), self.rows):
                r1 = min(len(sq), r0 + self.rows)
                if np.isnan(sq[r0:r1]).any():
                    self.block(which, r0, r1)
        return self.sq_x, (self.sq_x if self.sq_y is None else self.sq_y)


def plan_gram(
    x: Any,
    y: Any = None,
    *,
    matcher: str = "exact",
    layout: str = "auto",
    center: bool = True,
    threads: Optional[int] = None,
    precision: str = "auto",
    return_permutations: bool = False,
    return_bound: bool = False,
    tile: Optional[int] = None,
    **matcher_options: int,
) -> Engine:
    """The tile engine of ``semrsm.gram(x, y, ...)`` with the same options, for code that
    consumes ``G`` tile by tile (e.g. accumulating statistics without holding ``G``).

    ``plan_gram(...).tiles()`` yields ``(tile, G_tile, perm_tile, bound_tile)`` in the fixed
    order of :func:`plan_tiles`; for an off-diagonal tile of the square case, ``G[c0:c1, r0:r1]``
    is ``G_tile.T`` (see :func:`write_tile`). ``engine.sq_norms()`` gives the squared norms of
    the centred samples. Inputs are checked (and scanned once) here.

    Examples
    --------
    >>> import numpy as np
    >>> from semrsm._tiles import plan_gram
    >>> x = np.random.default_rng(0).normal(size=(5, 3, 2, 2))
    >>> engine = plan_gram(x, tile=2)
    >>> sum(t.pairs for t, *_ in engine.tiles()) == engine.total_pairs == 15
    True
    """
    options = check_options(matcher, matcher_options, center, precision, return_permutations, return_bound, threads)
    engine = Engine.create(x, y, layout, options, tile)
    engine.check_memory(output_in_memory=False)
    return engine


def _default_rows(x: Input, y: Optional[Input], o: Options, in_memory: bool = False) -> int:
    """Rows per tile: as many as keep one block within :data:`BLOCK_BYTES` (the whole input in
    one tile when it fits) and the tile's results within :data:`TILE_BYTES`, fewer when
    permutations would make the tile large. With ``in_memory`` (the output in memory, no
    cluster), ``matcher="none"`` uses blocks of up to :data:`NONE_BLOCK_BYTES`."""
    work = 4 if o.precision == "float32" else 8
    n = max(x.n, 0 if y is None else y.n)
    block, row = BLOCK_BYTES, x.s * x.c * work
    if in_memory and o.matcher == "none" and not o.return_bound and not o.return_permutations:
        # Raw row blocks (Engine.raw_block): in the input's dtype, no float64 copy.
        row = x.s * x.c * raw_itemsize(x.source.dtype)
        own = x.n * row
        budget = available_memory()
        # An in-memory array's blocks are views of it: the whole input in one tile; other
        # sources (files, zarr) are read: blocks of at most half the input's bytes.
        block = own if _is_view_source(x.source) else min(NONE_BLOCK_BYTES, own // 2)
        block = max(BLOCK_BYTES, min(block, block if budget is None else budget // 8))
    rows = max(1, block // max(1, row))
    per_entry = 8 * (3 + o.return_bound) + work  # as Engine.memory_estimate's "tile"
    rows = min(rows, max(1, int((TILE_BYTES // per_entry) ** 0.5)))
    if o.return_permutations:
        rows = min(rows, max(1, int((BLOCK_BYTES // (8 * x.s)) ** 0.5)))
    return int(min(n, rows))


def raw_itemsize(dtype: np.dtype) -> int:
    """Bytes per entry of a raw block (:meth:`Engine.raw_block`: float32 up to 4-byte inputs,
    else float64)."""
    return 4 if dtype.itemsize <= 4 and dtype.kind == "f" else 8


def _is_view_source(source: Source) -> bool:
    """Whether reading rows of ``source`` makes no copy (an in-memory numpy array of float32 or
    float64)."""
    return (
        isinstance(source, ArraySource)
        and isinstance(source.array, np.ndarray)
        and not isinstance(source.array, np.memmap)
        and source.dtype in (np.float32, np.float64)
    )


# --------------------------------------------------------------------------- sinks


def write_tile(
    square: bool,
    tile: Tile,
    G: np.ndarray,
    perm: Optional[np.ndarray],
    bound: Optional[np.ndarray],
    out_g: np.ndarray,
    out_perm: Optional[np.ndarray],
    out_bound: Optional[np.ndarray],
) -> None:
    """Write one tile (and, off the diagonal of a square matrix, its mirror image)."""
    rows, cols = slice(tile.r0, tile.r1), slice(tile.c0, tile.c1)
    out_g[rows, cols] = G
    if out_bound is not None and bound is not None:
        out_bound[rows, cols] = bound
    if out_perm is not None and perm is not None:
        out_perm[rows, cols] = perm
    if square and not tile.diagonal:
        out_g[cols, rows] = G.T
        if out_bound is not None and bound is not None:
            out_bound[cols, rows] = bound.T
        if out_perm is not None and perm is not None:
            s = perm.shape[2]
            inverse = np.empty_like(perm.transpose(1, 0, 2))
            ks = np.broadcast_to(np.arange(s, dtype=np.int64), inverse.shape)
            np.put_along_axis(inverse, perm.transpose(1, 0, 2), ks, axis=2)
            out_perm[cols, rows] = inverse


def _alloc(shape: tuple[int, ...], dtype: type, what: str) -> np.ndarray:
    try:
        return np.empty(shape, dtype=dtype)
    except MemoryError:
        raise TooLargeError(
            f"could not allocate {what} of shape {shape} ({_gib(np.prod(shape, dtype=np.float64) * np.dtype(dtype).itemsize)}); "
            "write the result to a file with out='G.npy'"
        ) from None


class MemorySink:
    """Results in memory."""

    def __init__(self, engine: Engine):
        o = engine.options
        shape = engine.shape
        self.square = engine.square
        self.G = _alloc(shape, np.float64, "the output")
        self.perm = _alloc(shape + (engine.x.s,), np.int64, "the permutations") if o.return_permutations else None
        self.bound = _alloc(shape, np.float64, "the bounds") if o.return_bound else None
        self.todo: Optional[list[bool]] = None
        self.done_pairs = 0

    def write(self, tile: Tile, G: np.ndarray, perm: Optional[np.ndarray], bound: Optional[np.ndarray]) -> None:
        write_tile(self.square, tile, G, perm, bound, self.G, self.perm, self.bound)

    def finish(self) -> tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
        return self.G, self.perm, self.bound


def companion(out: Path, kind: str) -> Path:
    """The file beside ``out`` that holds the permutations (``kind="perm"``) or the bounds
    (``"bound"``): ``rsm.npy`` -> ``rsm.perm.npy``, ``rsm.bound.npy`` (a name not ending in
    ``.npy`` gets the suffix appended: ``G.bin`` -> ``G.bin.perm.npy``)."""
    name = out.name[: -len(".npy")] if out.name.endswith(".npy") else out.name
    return out.with_name(f"{name}.{kind}.npy")


def perm_file_dtype(s: int) -> np.dtype:
    """Permutations on disk: int32 (half the size of the int64 in memory; positions are below
    ``S``, and ``S < 2³¹`` always holds as the affinity of one pair is limited to 4 GiB)."""
    return np.dtype(np.int32 if s <= 2**31 else np.int64)


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def check_disk(directory: Path, arrays: list[tuple[tuple[int, ...], np.dtype]]) -> None:
    """:class:`TooLargeError` when the result files cannot fit on the disk holding ``directory``
    (checked before they are created; unknown free space passes)."""
    need = sum(int(np.prod(shape, dtype=np.float64)) * dtype.itemsize for shape, dtype in arrays)
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):  # pragma: no cover - not on POSIX
        return
    free = st.f_bavail * st.f_frsize
    if need > free:
        raise TooLargeError(
            f"the result files need {_gib(need)} but only {_gib(free)} are free in {str(directory)!r}; "
            "write them elsewhere, or compute fewer pairs at a time"
        )


class FileSink:
    """``G`` written tile by tile to a ``.npy`` memory map, with a sidecar of finished tiles.

    The run writes ``<out>.partial`` (a valid ``.npy``) and ``<out>.partial.tiles`` (one JSON
    line: the fingerprint; then one byte per tile, set once the tile's data, in every file, are
    flushed to disk). With ``return_permutations``/``return_bound`` the companion files
    (:func:`companion`: ``rsm.perm.npy`` as int32, ``rsm.bound.npy``) are written the same way,
    as ``<companion>.partial``. At the end the partial files are renamed (atomic each; the
    companions first, ``out`` last) and the sidecar removed.
    With ``resume=True`` an existing partial run with the same fingerprint is continued;
    another fingerprint is an error. What is done is read from the sidecar, which is only ever
    set after the data it describes are on disk.
    """

    def __init__(
        self,
        out: Any,
        engine: Engine,
        fingerprint: dict[str, Any],
        resume: bool,
        shape: Optional[tuple[int, ...]] = None,
        name: str = "out",
        restart: str = "pass resume=False to start again",
    ):
        """``shape``: of the stored array (default ``G``'s); ``name`` and ``restart`` word the
        errors (the option that named the file, how to start afresh). :func:`semrsm.layer_cka`
        stores each tile's partial sums (one row per tile) this way."""
        self.final = Path(out)
        if self.final.is_dir():
            raise OptionError(f"{name}={str(self.final)!r} is a directory; give a file name such as 'G.npy'")
        parent = self.final.parent
        if not parent.is_dir():
            raise OptionError(f"cannot write {name}={str(self.final)!r}: directory {str(parent)!r} does not exist")
        if not os.access(parent, os.W_OK):
            raise OptionError(f"cannot write {name}={str(self.final)!r}: directory {str(parent)!r} is not writable")
        self.partial = self.final.with_name(self.final.name + ".partial")
        self.state = self.final.with_name(self.final.name + ".partial.tiles")
        self.square = engine.square
        self.plan_len = len(engine.plan)
        header = (json.dumps(fingerprint, sort_keys=True) + "\n").encode()
        self.header_len = len(header)
        # The permutations and bounds of G (not of other stored arrays) go to companion files.
        o = engine.options
        self.extras: dict[str, tuple[Path, tuple[int, ...], np.dtype]] = {}
        if shape is None and o.return_permutations:
            self.extras["perm"] = (companion(self.final, "perm"), engine.shape + (engine.x.s,), perm_file_dtype(engine.x.s))
        if shape is None and o.return_bound:
            self.extras["bound"] = (companion(self.final, "bound"), engine.shape, np.dtype(np.float64))
        self.perm: Optional[np.ndarray] = None
        self.bound: Optional[np.ndarray] = None
        shape = engine.shape if shape is None else tuple(shape)
        done = None
        extras_there = all(_partial(p).exists() for p, _, _ in self.extras.values())
        if resume and self.partial.exists() and self.state.exists() and extras_there:
            with open(self.state, "rb") as f:
                stored_header = f.readline()
                bitmap = f.read()
            try:
                stored = json.loads(stored_header)
            except ValueError:
                stored = None
            if stored != fingerprint:
                raise OptionError(
                    f"cannot resume {str(self.final)!r}: the unfinished run in {str(self.partial)!r} was "
                    f"made {_difference(stored, fingerprint)}; {restart}"
                )
            done = [b == 1 for b in bitmap[: self.plan_len]] + [False] * max(0, self.plan_len - len(bitmap))
            self.G = np.load(self.partial, mmap_mode="r+")
            if self.G.shape != shape or self.G.dtype != np.float64:
                raise OptionError(f"cannot resume: {str(self.partial)!r} has shape {self.G.shape}, expected {shape}")
            for kind, (path, eshape, dtype) in self.extras.items():
                arr = np.load(_partial(path), mmap_mode="r+")
                if arr.shape != eshape or arr.dtype != dtype:
                    raise OptionError(
                        f"cannot resume: {str(_partial(path))!r} has shape {arr.shape} and dtype {arr.dtype}, "
                        f"expected {eshape} and {dtype}"
                    )
                setattr(self, kind, arr)
        if done is None:
            check_disk(self.final.parent, [(shape, np.dtype(np.float64))] + [(e[1], e[2]) for e in self.extras.values()])
            self.G = np.lib.format.open_memmap(self.partial, mode="w+", dtype=np.float64, shape=shape)
            for kind, (path, eshape, dtype) in self.extras.items():
                setattr(self, kind, np.lib.format.open_memmap(_partial(path), mode="w+", dtype=dtype, shape=eshape))
            with open(self.state, "wb") as f:
                f.write(header + bytes(self.plan_len))
                f.flush()
                os.fsync(f.fileno())
            done = [False] * self.plan_len
        self.todo = [not d for d in done]
        self.done_pairs = sum(t.pairs for t, d in zip(engine.plan, done) if d)
        self._state_fd = os.open(self.state, os.O_WRONLY)

    def _arrays(self) -> list[Any]:
        return [a for a in (getattr(self, "G", None), self.perm, self.bound) if a is not None]

    def write(self, tile: Tile, G: np.ndarray, perm: Optional[np.ndarray], bound: Optional[np.ndarray]) -> None:
        write_tile(self.square, tile, G, perm, bound, self.G, self.perm, self.bound)
        for a in self._arrays():
            a.flush()  # msync: the data are on disk before the tile is marked done
        self.mark(tile)
        for a in self._arrays():
            _release_pages(a)

    def mark(self, tile: Tile) -> None:
        """Record ``tile`` as finished in the sidecar (call once its data are flushed)."""
        os.pwrite(self._state_fd, b"\x01", self.header_len + tile.index)
        os.fsync(self._state_fd)

    def finish(self, rename: bool = True) -> tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
        """Make the result durable; with ``rename`` move it (and its companion files) onto
        ``out`` and return ``(G, perm, bound)`` opened memory-mapped (read-only), else return the
        finished partial files (see :meth:`discard`). The companions are renamed first and ``G``
        last, then the sidecar is removed."""
        for a in self._arrays():
            a.flush()
        self.close()
        if not rename:
            return self.G, self.perm, self.bound
        del self.G
        self.perm = self.bound = None
        for path in [p for p, _, _ in self.extras.values()] + [self.final]:
            with open(_partial(path), "rb+") as f:
                os.fsync(f.fileno())
            os.replace(_partial(path), path)
        os.unlink(self.state)
        _fsync_dir(self.final.parent)
        opened = {k: np.load(p, mmap_mode="r") for k, (p, _, _) in self.extras.items()}
        return np.load(self.final, mmap_mode="r"), opened.get("perm"), opened.get("bound")

    def discard(self) -> None:
        """Delete the partial results and the sidecar (after they were used, see ``finish``)."""
        if hasattr(self, "G"):
            del self.G
        self.perm = self.bound = None
        for p in [self.partial, self.state] + [_partial(p) for p, _, _ in self.extras.values()]:
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def close(self) -> None:
        """Release the sidecar (an unfinished result stays for resume=True)."""
        if self._state_fd >= 0:
            os.close(self._state_fd)
            self._state_fd = -1


def _release_pages(a: np.ndarray) -> None:
    """Drop the (flushed, clean) pages of a memory-mapped result from this process's memory, so
    that the resident size of a run with ``out=`` stays that of the tiles in flight instead of
    growing with the file. Later reads fault the data back in from the file."""
    mapping = getattr(a, "_mmap", None)  # numpy.memmap's mmap.mmap
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if mapping is not None and advice is not None and hasattr(mapping, "madvise"):
        mapping.madvise(advice)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - not on POSIX
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _difference(stored: Any, current: dict[str, Any]) -> str:
    if not isinstance(stored, dict):
        return "by an unreadable or foreign sidecar"
    diffs = [k for k in current if stored.get(k) != current.get(k)]
    return "with other " + ", ".join(diffs) if diffs else "differently"


# --------------------------------------------------------------------------- progress


def make_bar(progress: Any, total: int, initial: int) -> Any:
    """A tqdm bar for ``progress=`` (None: on a terminal, once the run has taken 2 s; True:
    always, ``tqdm.auto`` so notebooks get a widget; False: none)."""
    if progress is False:
        return None
    if progress is None:
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, unit="pair", unit_scale=True, desc="semrsm", disable=None, delay=2.0, file=sys.stderr)
    if progress is True:
        from tqdm.auto import tqdm as auto_tqdm

        return auto_tqdm(total=total, initial=initial, unit="pair", unit_scale=True, desc="semrsm")
    raise OptionError(f"progress must be None (automatic), True or False; got {progress!r}")


def run(
    engine: Engine, out: Any, resume: Any, progress: Any, client: Any = None, what: str = "gram", rename: bool = True
) -> tuple[Any, Any, Any]:
    """Run all tiles of ``engine`` into memory or ``out``; returns ``(G, perm, bound)``.

    With ``out``, the permutations and bounds go to the companion files of :func:`companion`
    (``rsm.perm.npy``, ``rsm.bound.npy``), written, resumed and renamed with ``G``.
    With ``rename=False`` (``out`` only) the finished partial files are not moved onto ``out``:
    ``(G, sink, bound)`` is returned, the partial memory maps, for :func:`semrsm.build` to
    transform before calling ``sink.discard()``."""
    resume = check_flag(resume, "resume")
    if progress not in (None, True, False):
        raise OptionError(f"progress must be None (automatic), True or False; got {progress!r}")
    o = engine.options
    if resume and out is None:
        raise OptionError("resume=True continues a run written to a file: pass out='G.npy'")
    engine.check_memory(output_in_memory=out is None)
    sink: Any = MemorySink(engine) if out is None else FileSink(out, engine, engine.fingerprint(what), bool(resume))
    bar = make_bar(progress, engine.total_pairs, sink.done_pairs)
    try:
        if client is not None:
            from ._dask import run_on_cluster

            run_on_cluster(client, engine, sink, bar)
        else:
            update = None if bar is None else bar.update
            for tile, G, perm, bound in engine.tiles(sink.todo, update):
                sink.write(tile, G, perm, bound)
        if not rename:
            G, _, bound = sink.finish(rename=False)
            return G, sink, bound
        return sink.finish()
    finally:
        if bar is not None:
            bar.close()
        if isinstance(sink, FileSink):
            sink.close()
