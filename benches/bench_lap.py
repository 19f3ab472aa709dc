"""Time semrsm's exact LAP solver against scipy on real affinities; print a Markdown table.

Affinities A = x_i x_jᵀ (S × S) come from the shared EfficientNet-Lite0 fixtures
(``effnet_lite0_s64_to_s4096.npz``: signed ``blockK`` and non-negative ``blockK_dw`` maps,
centred over the 16 crops as ``semrsm.build`` does). Both solvers get the same float64 matrices,
maximise, run single-threaded in this process, and must reach the same objective (rel. 1e-12).

    python benches/bench_lap.py                  # S = 256 and 1024
    python benches/bench_lap.py --sizes 256 1024 4096 --pairs 3 --output docs/benchmarks.md

The data folder is ``$SEMRSM_DATA`` or ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment as scipy_lsa

import semrsm

LAYERS = {256: "block10", 1024: "block4", 4096: "block2"}


def data_dir() -> Path:
    env = os.environ.get("SEMRSM_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (path / "effnet_lite0_s64_to_s4096.npz").exists():
        sys.exit(f"fixtures not found in {path}: set SEMRSM_DATA to the folder holding effnet_lite0_s64_to_s4096.npz")
    return path


def affinities(z: np.ndarray, pairs: int, seed: int) -> list[np.ndarray]:
    n, c, h, w = z.shape
    v = z.reshape(n, c, h * w).transpose(0, 2, 1).astype(np.float64)
    v -= v.mean(axis=0)
    rng = np.random.default_rng(seed)
    chosen = set()
    while len(chosen) < pairs:
        i, j = sorted(rng.choice(n, size=2, replace=False).tolist())
        chosen.add((i, j))
    return [np.ascontiguousarray(v[i] @ v[j].T) for i, j in sorted(chosen)]


def timed(fn, a: np.ndarray, repeats: int) -> tuple[float, float]:
    times, value = [], 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        r, c = fn(a, maximize=True)
        times.append(time.perf_counter() - start)
        value = float(a[r, c].sum())
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], choices=sorted(LAYERS))
    parser.add_argument("--pairs", type=int, default=4, help="pairs per layer (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per pair at S <= 1024 (median)")
    parser.add_argument("--output", type=Path, default=None, help="also append the table to this Markdown file")
    args = parser.parse_args()

    fixtures = np.load(data_dir() / "effnet_lite0_s64_to_s4096.npz")
    rows = []
    for size in args.sizes:
        for key in (LAYERS[size], LAYERS[size] + "_dw"):
            mats = affinities(fixtures[key], args.pairs, seed=size)
            repeats = args.repeats if size <= 1024 else 1
            t_scipy, t_ours = [], []
            for a in mats:
                ts, vs = timed(scipy_lsa, a, repeats)
                tm, vm = timed(semrsm.linear_sum_assignment, a, repeats)
                if abs(vs - vm) > 1e-12 * abs(vs):
                    sys.exit(f"objective mismatch on {key}: scipy {vs!r} vs semrsm {vm!r}")
                t_scipy.append(ts)
                t_ours.append(tm)
            ms, mo = statistics.median(t_scipy) * 1e3, statistics.median(t_ours) * 1e3
            ratios = [s / o for s, o in zip(t_scipy, t_ours)]
            rows.append((size, key, len(mats), ms, mo, statistics.median(ratios)))
            print(f"  measured {key} S={size}: scipy {ms:.1f} ms, semrsm {mo:.1f} ms", file=sys.stderr)

    lines = [
        f"Exact LAP on real affinities (maximise, float64, single thread; median over pairs of the "
        f"median of {args.repeats} runs at S ≤ 1024, 1 run above). Objectives identical (rel. 1e-12).",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {__import__('scipy').__version__}, semrsm {semrsm.__version__}.",
        "",
        "| S | layer | pairs | scipy [ms] | semrsm [ms] | scipy / semrsm |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {s} | {k} | {p} | {a:.1f} | {b:.1f} | {r:.2f}× |" for s, k, p, a, b, r in rows]
    table = "\n".join(lines)
    print(table)
    if args.output:
        with args.output.open("a") as fh:
            fh.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
