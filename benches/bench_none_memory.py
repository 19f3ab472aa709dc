"""The spatio-semantic baseline in memory: ``semrsm.gram(x, matcher="none")`` vs the same core
call without the tile engine vs numpy's ``X @ X.T``, all with the same centring.

Usage::

    python benches/bench_none_memory.py                 # N = 400 (S·C = 196·64, float64) and
                                                        # N = 500, 1000 (S·C = 196·256, float32)
    python benches/bench_none_memory.py --n 2000 --reps 2

Rows (medians of ``--reps`` runs, all in the same process, interleaved):

- ``semrsm.gram``: the public call (tile engine: one streaming pass for finiteness, range and
  mean; raw row blocks, widened and centred chunk by chunk inside ``_core.gram_none``'s GEMM).
- ``float64 blocks + _core.gram (before)``: the path before ``_core.gram_none`` (row blocks of
  up to 256 MiB, at most half the input, widened to float64 and centred in numpy per tile; the
  Rust tile function), still used for permutations and bounds.
- ``core, one tile``: ``_core.gram`` on an input centred beforehand as one float64 array (the
  shape of the code before the tile engine: a full float64 copy of the input).
- ``numpy``: ``Xc = X.reshape(N, -1) - mean`` (float64) and ``Xc @ Xc.T`` (BLAS).

The gain of ``_core.gram_none`` is the second row over the first; the gap to numpy is the core's GEMM.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import semrsm
from semrsm import _core, _tiles


def centred_f64(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1)
    return flat - flat.mean(axis=0, dtype=np.float64)


def case(n: int, c: int, dtype: type, reps: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, 14, 14)).astype(dtype)  # (N, C, H, W): S = 196
    semrsm.gram(x[:8], matcher="none", progress=False)  # warm up
    engine = _tiles.Engine.create(x, None, "auto", _tiles.check_options("none", {}, True, "float64", False, False, None), in_memory=True)
    def previous_tiles() -> None:  # the path before _core.gram_none: float64 blocks, _core.gram
        saved = (_tiles.Engine.direct_none, _tiles._is_view_source, _tiles.raw_itemsize)
        _tiles.Engine.direct_none = property(lambda self: False)  # type: ignore[assignment]
        _tiles._is_view_source = lambda source: False
        _tiles.raw_itemsize = lambda dtype: 8  # blocks of float64 rows, as before
        try:
            semrsm.gram(x, matcher="none", progress=False)
        finally:
            _tiles.Engine.direct_none, _tiles._is_view_source, _tiles.raw_itemsize = saved

    runs = {
        "semrsm.gram (tile engine)": lambda: semrsm.gram(x, matcher="none", progress=False),
        "semrsm.gram, float64 blocks + _core.gram (before)": previous_tiles,
        "core, one tile (full float64 copy)": lambda: _core.gram(
            np.ascontiguousarray(centred_f64(x).reshape(n, c, 196).transpose(0, 2, 1)), matcher="none"
        ),
        "numpy X @ X.T (same centring)": lambda: (lambda xc: xc @ xc.T)(centred_f64(x)),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(reps):
        for label, f in runs.items():
            t = time.perf_counter()
            f()
            times[label].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    numpy_t = med["numpy X @ X.T (same centring)"]
    print(
        f"\n### N = {n}, S·C = 196·{c}, {np.dtype(dtype).name} ({x.nbytes / 1e6:.0f} MB), "
        f"default tiles of {engine.rows} rows ({len(engine.plan)} tiles), medians of {reps}\n"
    )
    print("| run | time | vs numpy |")
    print("|---|---:|---:|")
    for label, secs in med.items():
        print(f"| {label} | {secs:.2f} s | {secs / numpy_t:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="*", help="sample counts (S·C = 196·256 float32)")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if args.n:
        for n in args.n:
            case(n, 256, np.float32, args.reps)
        return
    case(400, 64, np.float64, args.reps)
    for n in (500, 1000):
        case(n, 256, np.float32, args.reps)


if __name__ == "__main__":
    main()
