"""Fixed per-call cost of ``linear_sum_assignment`` and ``match_affinity`` on tiny problems,
semrsm vs scipy in the same run (issue 8, point 3: small work should not pay for a thread).

Prints a Markdown table of medians (µs per call) over ``--repeats`` batches of ``--calls`` calls.
Usage: ``python benches/bench_call_overhead.py [--repeats 15] [--calls 2000]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy.optimize import linear_sum_assignment as scipy_lsa

import semrsm


def per_call_us(fn, calls: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for n in (4, 16, 64):
        c = rng.random((n, n))
        base = per_call_us(lambda: scipy_lsa(c), args.calls, args.repeats)
        ours = per_call_us(lambda: semrsm.linear_sum_assignment(c), args.calls, args.repeats)
        rows.append((f"linear_sum_assignment {n}×{n}", ours, base))
        ours = per_call_us(lambda: semrsm.match_affinity(c), args.calls, args.repeats)
        rows.append((f"match_affinity exact S={n}", ours, base))
    print("| call | semrsm µs | scipy lsa µs | ratio |")
    print("|---|---:|---:|---:|")
    for name, ours, base in rows:
        print(f"| {name} | {ours:.2f} | {base:.2f} | {ours / base:.2f} |")


if __name__ == "__main__":
    main()
