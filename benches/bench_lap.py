"""Exact LAP solvers on real affinities: semrsm vs scipy, lapx, OR-Tools and fastlap; a Markdown table.

Affinities A = x_i x_jᵀ (S × S) of real representations from the shared fixtures, centred over the
fixture's samples as ``semrsm.build`` does:

=====  ==========================================================================================
S      maps
=====  ==========================================================================================
49     EfficientNet-Lite0 ``block15`` at 7×7 (``effnet_lite0_crops2000.npz``, float16 -> float64)
64     ``block15`` and ``head`` at 8×8 (``effnet_lite0_s64_to_s4096.npz``)
100    ``block10`` cut to its central 10×10 positions (the same file)
196    ``block10`` at 14×14 (``effnet_lite0_shifted_pairs.npz``)
256    ``block10`` and ``block10_dw`` at 16×16; ViT-S/14 ``layer11`` patch tokens (prefix token left out)
257    ViT-S/14 ``layer5`` and ``layer11``, prefix (CLS) token included (``vit_s14_shifted_pairs.npz``)
1024   ``block4`` and ``block4_dw`` at 32×32
4096   ``block2`` and ``block2_dw`` at 64×64
=====  ==========================================================================================

Every solver gets the same float64 matrices in the same run, maximises (lapx and OR-Tools minimise
``-A``), and runs single-threaded in this process, through its Python entry point (semrsm's is the
scipy drop-in ``semrsm.linear_sum_assignment``). The calls are interleaved: each round times one
call of every solver on every pair, one solver after the other as a pairwise fill would, so that no
solver sees the same matrix twice in a row (which would let the CPU's branch predictors learn it). semrsm, lapx and fastlap must reach scipy's
objective to rel. 1e-12; OR-Tools works on integer costs (``-A`` scaled to ±min(1e12, 2⁶⁰/(n+1)²)
and rounded), so its objective is reported as a relative deviation. lapx is timed with both of its
fastest solvers, ``lapjvr`` and ``lapjvh``, and the faster of the two counts.

    python benches/bench_lap.py                                       # S = 49 ... 257
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
from _fixtures import FIXTURE, data_dir, emit
from scipy.optimize import linear_sum_assignment as scipy_lsa

import semrsm

CROPS = "effnet_lite0_crops2000.npz"
SHIFTED = "effnet_lite0_shifted_pairs.npz"
VIT = "vit_s14_shifted_pairs.npz"
# size -> [(label, fixture file, key, how to cut the maps)]
LAYERS: dict[int, list[tuple[str, str, str, str]]] = {
    49: [("block15 7×7", CROPS, "block15", "")],
    64: [("block15 8×8", FIXTURE, "block15", ""), ("head 8×8", FIXTURE, "head", "")],
    100: [("block10 10×10 crop", FIXTURE, "block10", "crop10")],
    196: [("block10 14×14", SHIFTED, "block10", "")],
    256: [
        ("block10", FIXTURE, "block10", ""),
        ("block10_dw", FIXTURE, "block10_dw", ""),
        ("ViT layer11 patches", VIT, "layer11", "patches"),
    ],
    257: [("ViT layer5 + CLS", VIT, "layer5", ""), ("ViT layer11 + CLS", VIT, "layer11", "")],
    1024: [("block4", FIXTURE, "block4", ""), ("block4_dw", FIXTURE, "block4_dw", "")],
    4096: [("block2", FIXTURE, "block2", ""), ("block2_dw", FIXTURE, "block2_dw", "")],
}
Solver = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def solvers() -> dict[str, Solver]:
    out: dict[str, Solver] = {
        "scipy": lambda a: scipy_lsa(a, maximize=True),
        "semrsm": lambda a: semrsm.linear_sum_assignment(a, maximize=True),
    }
    try:
        import lap  # the lapx package

        def lapjvr(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            _, rows, cols = lap.lapjvr(-a)
            return np.asarray(rows), np.asarray(cols)

        out["lapx"] = lapjvr
        if hasattr(lap, "lapjvh"):

            def lapjvh(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                _, rows, cols = lap.lapjvh(-a)
                return np.asarray(rows), np.asarray(cols)

            out["lapx (lapjvh)"] = lapjvh
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
    try:
        import fastlap

        out["fastlap"] = lambda a: fastlap.linear_sum_assignment(a, maximize=True)
    except ImportError:
        print("fastlap not installed: left out", file=sys.stderr)
    return out


def positions(z: np.ndarray, cut: str) -> np.ndarray:
    """(N, S, C) position vectors in the stored dtype (a view where possible)."""
    if z.ndim == 4:
        if cut == "crop10":
            z = z[:, :, 3:13, 3:13]
        n, c, h, w = z.shape
        return z.reshape(n, c, h * w).transpose(0, 2, 1)
    return z[:, 1:] if cut == "patches" else z


def affinities(v: np.ndarray, pairs: int, seed: int) -> list[np.ndarray]:
    """Float64 affinities of random pairs, the positions centred over all samples."""
    mean = np.zeros(v.shape[1:])
    for start in range(0, v.shape[0], 256):  # float64 sums over chunks of samples
        mean += v[start : start + 256].astype(np.float64).sum(axis=0)
    mean /= v.shape[0]
    rng = np.random.default_rng(seed)
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < min(pairs, v.shape[0] * (v.shape[0] - 1) // 2):
        i, j = sorted(rng.choice(v.shape[0], size=2, replace=False).tolist())
        chosen.add((i, j))
    centred = lambda k: v[k].astype(np.float64) - mean  # noqa: E731
    return [np.ascontiguousarray(centred(i) @ centred(j).T) for i, j in sorted(chosen)]


def time_interleaved(
    available: dict[str, Solver], mats: list[np.ndarray], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per solver and pair: the median time over `rounds` and the objective."""
    times: dict[str, list[list[float]]] = {name: [[] for _ in mats] for name in available}
    values: dict[str, list[float]] = {name: [0.0] * len(mats) for name in available}
    names = list(available)
    for r in range(rounds):
        # Rotate the order of the solvers between rounds (none always runs right after another).
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for p, a in enumerate(mats):
                start = time.perf_counter()
                rows, cols = available[name](a)
                times[name][p].append(time.perf_counter() - start)
                values[name][p] = float(a[rows, cols].sum())
    return {name: [statistics.median(t) for t in ts] for name, ts in times.items()}, values


def fmt_ms(seconds: Optional[float]) -> str:
    if seconds is None:
        return "–"
    ms = seconds * 1e3
    if ms < 1:
        return f"{ms:.3f}"
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.2f}" if ms < 10 else f"{ms:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[49, 64, 100, 196, 256, 257], choices=sorted(LAYERS))
    parser.add_argument("--pairs", type=int, default=8, help="pairs per layer (default 8)")
    parser.add_argument(
        "--rounds", type=int, default=0, help="timed calls per pair and solver (median); default 15 at S <= 100, 3 up to "
        "1024, 1 above"
    )
    parser.add_argument("--output", type=Path, default=None, help="also append the table to this Markdown file")
    args = parser.parse_args()

    available = solvers()
    peers = [name for name in ("scipy", "lapx", "OR-Tools", "fastlap") if name in available]
    rows = []
    for size in args.sizes:
        for label, fixture, key, cut in LAYERS[size]:
            with np.load(data_dir(fixture) / fixture) as data:
                v = positions(data[key], cut)
            assert v.shape[1] == size, (label, v.shape)
            mats = affinities(v, args.pairs, seed=size)
            del v
            rounds = args.rounds or (15 if size <= 100 else 3 if size <= 1024 else 1)
            times, values = time_interleaved(available, mats, rounds)
            if "lapx (lapjvh)" in times:  # the faster of lapx's two solvers, per pair
                times["lapx"] = [min(a, b) for a, b in zip(times["lapx"], times.pop("lapx (lapjvh)"))]
                values.pop("lapx (lapjvh)")
            worst_ortools = 0.0
            for p, reference in enumerate(values["scipy"]):
                for name in ("semrsm", "lapx", "fastlap"):
                    if name in values and abs(values[name][p] - reference) > 1e-12 * abs(reference):
                        sys.exit(f"objective mismatch on {label}: scipy {reference!r} vs {name} {values[name][p]!r}")
                if "OR-Tools" in values:
                    worst_ortools = max(worst_ortools, abs(values["OR-Tools"][p] - reference) / abs(reference))
            med = {name: statistics.median(ts) for name, ts in times.items()}
            ratio = {name: statistics.median(p / s for p, s in zip(times[name], times["semrsm"])) for name in peers}
            rows.append((size, label, len(mats), rounds, med, ratio, worst_ortools))
            print(f"  {label} S={size}: " + ", ".join(f"{k} {fmt_ms(v)} ms" for k, v in med.items()), file=sys.stderr)

    head = "| S | maps | pairs | " + " | ".join(f"{p} [ms]" for p in peers) + " | semrsm [ms] | "
    head += " | ".join(f"{p} / semrsm" for p in peers) + " |"
    rounds_used = sorted({r[3] for r in rows})
    lines = [
        "Exact LAP on real affinities, maximise, float64, one thread, each solver through its Python entry "
        "point, same pairs and same run for every solver, calls interleaved. Times: median over pairs of the "
        f"median of {'/'.join(map(str, rounds_used))} calls; ratios: median over pairs of the per-pair ratio. "
        "lapx: the faster of lapjvr and lapjvh per pair.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {__import__('scipy').__version__}, semrsm {semrsm.__version__}.",
        "",
        head,
        "|" + "---|" * (4 + 2 * len(peers)),
    ]
    for size, label, n, _, med, ratio, _ in rows:
        cells = [str(size), label, str(n)] + [fmt_ms(med[p]) for p in peers] + [fmt_ms(med["semrsm"])]
        cells += [f"{ratio[p]:.1f}×" for p in peers]
        lines.append("| " + " | ".join(cells) + " |")
    others = ", ".join(name for name in ("lapx", "fastlap") if name in peers)
    note = f"semrsm{', ' + others if others else ''} objectives equal scipy's to rel. 1e-12 on every pair"
    if "OR-Tools" in peers:
        worst = max(r[6] for r in rows)
        note += f"; OR-Tools (integer costs) deviates by at most {worst:.1e} relative"
    lines += ["", note + "."]
    table = "\n".join(lines)
    emit(table, args.output)


if __name__ == "__main__":
    main()
