"""Whole semantic RSMs: semrsm.build (exact) vs the paper's reference procedure; a Markdown table.

Reference: for every pair (i ≤ j), the affinity ``x_i x_jᵀ`` with numpy and
``scipy.optimize.linear_sum_assignment`` on it, distributed over a process pool — the procedure of
the paper's code (Appendix C). Both use 2 workers (``--threads``) on the same 16 centred samples of
the shared fixtures (``effnet_lite0_s64_to_s4096.npz``: block4, S = 1024; block2, S = 4096) in the
same run, and must agree on G to rel. 1e-9.

    python benches/bench_rsm.py                         # S = 1024 and 4096 (the reference takes minutes)
    python benches/bench_rsm.py --sizes 1024 --output docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _fixtures import FIXTURE, data_dir, emit

LAYERS = {256: "block10", 1024: "block4", 4096: "block2"}
_V: np.ndarray  # centred samples (N, S, C), set in the workers by fork


def _init(v: np.ndarray) -> None:
    global _V
    _V = v


def _pair(ij: tuple[int, int]) -> tuple[int, int, float]:
    from scipy.optimize import linear_sum_assignment

    i, j = ij
    a = _V[i] @ _V[j].T
    r, c = linear_sum_assignment(a, maximize=True)
    return i, j, float(a[r, c].sum())


def reference(v: np.ndarray, workers: int) -> np.ndarray:
    n = v.shape[0]
    g = np.zeros((n, n))
    pairs = [(i, j) for i in range(n) for j in range(i, n)]
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(v,)) as pool:
        for i, j, value in pool.map(_pair, pairs, chunksize=1):
            g[i, j] = g[j, i] = value
    return g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096], choices=sorted(LAYERS))
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    # One BLAS thread per worker process, as the pool provides the parallelism.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import semrsm

    fixtures = np.load(data_dir() / FIXTURE)
    rows = []
    for size in args.sizes:
        z = fixtures[LAYERS[size]][: args.samples].astype(np.float64)
        n, c, h, w = z.shape
        v = z.reshape(n, c, h * w).transpose(0, 2, 1)
        v = np.ascontiguousarray(v - v.mean(axis=0))
        start = time.perf_counter()
        g_ours = semrsm.gram(z, matcher="exact", threads=args.threads)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        g_ref = reference(v, args.threads)
        t_ref = time.perf_counter() - start
        scale = np.abs(g_ref).max()
        err = float(np.abs(g_ours - g_ref).max() / scale)
        if err > 1e-9:
            sys.exit(f"G differs from the reference by {err:.2e} (relative)")
        pairs = n * (n + 1) // 2
        rows.append((size, LAYERS[size], n, pairs, t_ref, t_ours, err))
        print(f"  S={size}: reference {t_ref:.1f} s, semrsm {t_ours:.2f} s", file=sys.stderr)

    lines = [
        f"Whole semantic RSM (exact matching, {args.threads} workers/threads each, same run): semrsm.gram vs the "
        "paper's procedure (numpy affinity + scipy per pair, process pool over pairs).",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, semrsm {semrsm.__version__}.",
        "",
        "| S | layer | samples | pairs | reference [s] | semrsm [s] | reference / semrsm | max rel. diff of G |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {s} | {k} | {n} | {p} | {a:.1f} | {b:.2f} | {a / b:.1f}× | {e:.1e} |" for s, k, n, p, a, b, e in rows
    ]
    table = "\n".join(lines)
    emit(table, args.output)


if __name__ == "__main__":
    main()
