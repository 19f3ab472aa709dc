"""A semrsm call in a child started by fork vs spawn (issue 12: forked children must not be slow).

The parent runs one ``gram`` first (its pools exist when it forks). Each child then times the same
exact ``gram`` on the bundled real maps (block15, S = 49); the table gives the median over runs of
each start method and the ratio fork/spawn.

    python benches/bench_fork.py [--runs 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

import semrsm


def _timed_call() -> float:
    z = semrsm.load_example()["block15"]
    semrsm.gram(z[:4])  # warm-up inside the child (imports, pools)
    start = time.perf_counter()
    semrsm.gram(z)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    semrsm.gram(semrsm.load_example()["block15"])  # the parent's pools exist before any fork
    medians = {}
    for method in ("spawn", "fork"):
        times = []
        for _ in range(args.runs):
            pool = multiprocessing.get_context(method).Pool(1)
            times.append(pool.apply(_timed_call))
            pool.close()
            pool.join()
        medians[method] = statistics.median(times)
    print("| start method | median gram time (20 inputs, S = 49, exact) |")
    print("|---|---|")
    for method, t in medians.items():
        print(f"| {method} | {t * 1e3:.1f} ms |")
    print(f"\nfork / spawn = {medians['fork'] / medians['spawn']:.2f}")


if __name__ == "__main__":
    main()
