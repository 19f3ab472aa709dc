"""Exact LAP solvers on real affinities: semrsm vs scipy, lapx and OR-Tools; a Markdown table.

Affinities A = x_i x_jᵀ (S × S) come from the shared EfficientNet-Lite0 fixtures
(``effnet_lite0_s64_to_s4096.npz``: signed ``blockK`` and non-negative ``blockK_dw`` maps, centred
over the 16 crops as ``semrsm.build`` does). Every solver gets the same float64 matrices in the same
run, maximises (lapx and OR-Tools minimise ``-A``), and runs single-threaded in this process.
semrsm and lapx must reach scipy's objective to rel. 1e-12; OR-Tools works on integer costs
(``-A`` scaled to ±min(1e12, 2⁶⁰/(n+1)²) and rounded), so its objective is reported as a relative deviation.

    python benches/bench_lap.py                                   # S = 256 and 1024
    python benches/bench_lap.py --sizes 256 1024 4096 --pairs 3 --output docs/benchmarks.md

Peers are optional (``pip install '.[bench]'``); a missing one is left out of the table. The data
folder is ``$SEMRSM_DATA`` or ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from _fixtures import FIXTURE, data_dir
from scipy.optimize import linear_sum_assignment as scipy_lsa

import semrsm

LAYERS = {256: "block10", 1024: "block4", 4096: "block2"}
Solver = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def solvers() -> dict[str, Solver]:
    out: dict[str, Solver] = {
        "scipy": lambda a: scipy_lsa(a, maximize=True),
        "semrsm": lambda a: semrsm.linear_sum_assignment(a, maximize=True),
    }
    try:
        import lap  # the lapx package

        def lapx_solve(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            _, rows, cols = lap.lapjvr(-a)
            return np.asarray(rows), np.asarray(cols)

        out["lapx"] = lapx_solve
    except ImportError:
        print("lapx not installed: left out", file=sys.stderr)
    try:
        from ortools.graph.python import linear_sum_assignment as ortools_lsa

        def ortools_solve(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            n = a.shape[0]
            # Largest integer costs OR-Tools accepts without reporting a possible overflow: it
            # scales costs by about (n + 1) internally and sums n of them.
            limit = min(1e12, 2.0**60 / (n + 1) ** 2)
            scale = limit / max(float(np.abs(a).max()), 1e-300)
            costs = np.rint(-a * scale).astype(np.int64).ravel()
            solver = ortools_lsa.SimpleLinearSumAssignment()
            starts = np.repeat(np.arange(n, dtype=np.int64), n)
            ends = np.tile(np.arange(n, dtype=np.int64), n)
            solver.add_arcs_with_cost(starts, ends, costs)
            if solver.solve() != solver.OPTIMAL:
                raise RuntimeError("OR-Tools did not report an optimal solution")
            rows = np.arange(n)
            return rows, np.array([solver.right_mate(i) for i in range(n)])

        out["OR-Tools"] = ortools_solve
    except ImportError:
        print("ortools not installed: left out", file=sys.stderr)
    return out


def affinities(z: np.ndarray, pairs: int, seed: int) -> list[np.ndarray]:
    n, c, h, w = z.shape
    v = z.reshape(n, c, h * w).transpose(0, 2, 1).astype(np.float64)
    v -= v.mean(axis=0)
    rng = np.random.default_rng(seed)
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < pairs:
        i, j = sorted(rng.choice(n, size=2, replace=False).tolist())
        chosen.add((i, j))
    return [np.ascontiguousarray(v[i] @ v[j].T) for i, j in sorted(chosen)]


def timed(solve: Solver, a: np.ndarray, repeats: int) -> tuple[float, float]:
    times, value = [], 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        rows, cols = solve(a)
        times.append(time.perf_counter() - start)
        value = float(a[rows, cols].sum())
    return statistics.median(times), value


def fmt_ms(seconds: Optional[float]) -> str:
    if seconds is None:
        return "–"
    ms = seconds * 1e3
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.2f}" if ms < 10 else f"{ms:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], choices=sorted(LAYERS))
    parser.add_argument("--pairs", type=int, default=4, help="pairs per layer (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per pair at S <= 1024 (median; 1 above)")
    parser.add_argument("--output", type=Path, default=None, help="also append the table to this Markdown file")
    args = parser.parse_args()

    fixtures = np.load(data_dir() / FIXTURE)
    available = solvers()
    peers = [name for name in ("scipy", "lapx", "OR-Tools") if name in available]
    rows = []
    for size in args.sizes:
        for key in (LAYERS[size], LAYERS[size] + "_dw"):
            mats = affinities(fixtures[key], args.pairs, seed=size)
            repeats = args.repeats if size <= 1024 else 1
            times: dict[str, list[float]] = {name: [] for name in available}
            worst_ortools = 0.0
            for a in mats:
                values = {}
                for name, solve in available.items():
                    t, values[name] = timed(solve, a, repeats)
                    times[name].append(t)
                reference = values["scipy"]
                for name in ("semrsm", "lapx"):
                    if name in values and abs(values[name] - reference) > 1e-12 * abs(reference):
                        sys.exit(f"objective mismatch on {key}: scipy {reference!r} vs {name} {values[name]!r}")
                if "OR-Tools" in values:
                    worst_ortools = max(worst_ortools, abs(values["OR-Tools"] - reference) / abs(reference))
            med = {name: statistics.median(ts) for name, ts in times.items()}
            ratio = {
                name: statistics.median(p / s for p, s in zip(times[name], times["semrsm"])) for name in peers
            }
            fastest_peer = min(peers, key=lambda name: med[name])
            rows.append((size, key, len(mats), med, ratio, fastest_peer, worst_ortools))
            print(f"  {key} S={size}: " + ", ".join(f"{k} {fmt_ms(v)} ms" for k, v in med.items()), file=sys.stderr)

    head = "| S | layer | pairs | " + " | ".join(f"{p} [ms]" for p in peers) + " | semrsm [ms] | "
    head += " | ".join(f"{p} / semrsm" for p in peers) + " |"
    lines = [
        "Exact LAP on real affinities, maximise, float64, one thread, same pairs and same run for every "
        f"solver. Times: median over pairs of the median of {args.repeats} runs (1 run at S = 4096); "
        "ratios: median over pairs of the per-pair ratio.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {__import__('scipy').__version__}, semrsm {semrsm.__version__}.",
        "",
        head,
        "|" + "---|" * (4 + 2 * len(peers)),
    ]
    for size, key, n, med, ratio, fastest, worst in rows:
        cells = [str(size), key, str(n)] + [fmt_ms(med[p]) for p in peers] + [fmt_ms(med["semrsm"])]
        cells += [f"{ratio[p]:.1f}×" for p in peers]
        lines.append("| " + " | ".join(cells) + " |")
    if "OR-Tools" in peers:
        worst = max(r[6] for r in rows)
        lines.append("")
        lines.append(f"semrsm and lapx objectives equal scipy's to rel. 1e-12 on every pair; OR-Tools (integer costs) "
                     f"deviates by at most {worst:.1e} relative.")
    table = "\n".join(lines)
    print(table)
    if args.output:
        with args.output.open("a") as fh:
            fh.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
