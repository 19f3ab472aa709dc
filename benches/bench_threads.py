"""Thread scaling of one whole exact semantic RSM on real maps (issue 8's many-core goals).

The 16-core goals of issue 8 (S = 4096: 16 threads >= 12x one thread, 250 samples in <= 6 min)
cannot be measured on this project's 2-core machine. This script measures what 2 cores can show,
and docs/benchmarks.md ("Many cores: a model from bytes moved") carries the rest as a model:

- the wall time of ``semrsm.gram(x, matcher="exact")`` on the first ``--n`` samples of a real
  layer, on 1 and on 2 threads, the two interleaved (1, 2, 1, 2, ...) so that both see the same
  machine;
- the process CPU time per pair on each: if the threads only shared the cores, CPU time per pair
  would not change with the thread count; when they compete for the memory bus it rises.

Usage::

    SEMRSM_DATA=../shared/data python benches/bench_threads.py            # S = 1024 and 4096
    python benches/bench_threads.py --layers block2 --n 6 --repeats 3

Run it on a quiet machine: on 2 shared cores, any other job shows up as lost speed-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

import semrsm
from _fixtures import data_dir

DEFAULT_N = {"block4": 12, "block4_dw": 12, "block2": 5, "block2_dw": 5, "block10": 16}


def timed(x: np.ndarray, threads: int, precision: str) -> tuple[float, float, np.ndarray]:
    """(wall seconds, process CPU seconds, G) of one exact RSM of ``x`` on ``threads`` threads."""
    w0, c0 = time.perf_counter(), time.process_time()
    g = semrsm.gram(x, matcher="exact", threads=threads, precision=precision)
    return time.perf_counter() - w0, time.process_time() - c0, g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", nargs="+", default=["block4", "block2"])
    parser.add_argument("--n", type=int, default=None, help="samples (default: per layer)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs=2, default=[1, 2], metavar=("FEW", "MANY"))
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    data = np.load(data_dir() / "effnet_lite0_s64_to_s4096.npz")
    few, many = args.threads
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"semrsm {semrsm.__version__}; matcher='exact', precision={args.precision!r}; "
        f"{args.repeats} interleaved calls per thread count; medians.\n"
    )
    print(
        f"| layer | S | C | N | pairs | wall, {few} thr | wall, {many} thr | speed-up "
        f"| CPU per pair, {few} thr | CPU per pair, {many} thr | CPU ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for layer in args.layers:
        x = np.ascontiguousarray(data[layer][: args.n or DEFAULT_N.get(layer, 8)])
        n, c, h, w = x.shape
        pairs = n * (n - 1) // 2
        timed(x[:2], many, args.precision)  # load the library, start the pool
        runs: dict[int, list[tuple[float, float]]] = {few: [], many: []}
        reference = None
        for _ in range(args.repeats):
            for t in (few, many):
                wall, cpu, g = timed(x, t, args.precision)
                runs[t].append((wall, cpu))
                if reference is None:
                    reference = g
                elif not np.array_equal(g, reference):
                    raise SystemExit(f"{layer}: G differs between thread counts")
        wall = {t: statistics.median(r[0] for r in runs[t]) for t in runs}
        cpu = {t: statistics.median(r[1] for r in runs[t]) / pairs for t in runs}
        print(
            f"| {layer} | {h * w} | {c} | {n} | {pairs} | {wall[few]:.2f} s | {wall[many]:.2f} s "
            f"| {wall[few] / wall[many]:.2f}× | {cpu[few] * 1e3:.0f} ms | {cpu[many] * 1e3:.0f} ms "
            f"| {cpu[many] / cpu[few]:.2f} |"
        )


if __name__ == "__main__":
    main()
