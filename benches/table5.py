"""Reproduce the paper's Table 5 on real affinities: approximate matchers vs exact LAP solvers.

For s = 256 (``block10``, ``block10_dw``), 1024 (``block4``, ``block4_dw``) and 4096 (``block2``,
``block2_dw``) of the shared EfficientNet-Lite0 fixtures (``effnet_lite0_s64_to_s4096.npz``, 16
crops, centred over the crops as ``semrsm.build`` does), random pairs of crops give affinities
``A = x_i x_jᵀ``. On the same matrices, in the same run, single threaded:

- semrsm's matchers through ``semrsm.match_affinity`` (greedy, topk_greedy, batch_optimal with
  b ∈ {128, 256, 512, 1024}, auction, exact); their certified lower bound on k/k_opt comes from
  ``return_bound=True`` (computed apart, not timed);
- peers: scipy ``linear_sum_assignment``, lapx ``lapjvr`` (package ``lapx``, module ``lap``),
  OR-Tools ``SimpleLinearSumAssignment`` on int64 costs scaled to ±1e10 (arcs added from numpy
  arrays, inside the timing), and the no-match baseline ``A.diagonal().sum()`` (the paper's np.diag()).

k/k_opt is the matched inner product relative to the best exact value; the time is the median
over pairs (of the median of ``--repeats`` runs per pair at s ≤ 1024, one run at s = 4096). The
affinity (GEMM) time is reported separately. semrsm's times include its input check (one pass
over A), as scipy's include theirs.

    python benches/table5.py --sizes 256 1024 --pairs 3          # quick subset (~1 min)
    python benches/table5.py --output docs/benchmarks.md --plot docs/table5.png   # the full table

The exact peers take 5–30 s per pair at s = 4096. Needs ``pip install '.[bench]'`` (scipy, lapx,
ortools, matplotlib) and the fixtures in ``$SEMRSM_DATA`` or ``../shared/data``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # single-threaded BLAS for the affinities, before numpy loads

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Optional  # noqa: E402

import numpy as np  # noqa: E402
from _fixtures import FIXTURE, data_dir, write_section  # noqa: E402

import semrsm  # noqa: E402

LAYERS = {256: ("block10", "block10_dw"), 1024: ("block4", "block4_dw"), 4096: ("block2", "block2_dw")}
START, END = "<!-- table5:start -->", "<!-- table5:end -->"

#: The paper's Table 5 (ResNet101 on Tiny-ImageNet, 1000 pairs): (k/k_opt [%], T) per s.
PAPER = {
    "OR-Tools": {256: ("100", "4.26 ms"), 1024: ("100", "69.6 ms"), 4096: ("100", "1.52 s")},
    "scipy": {256: ("100", "5.10 ms"), 1024: ("100", "148 ms"), 4096: ("100", "8.75 s")},
    "lapjv": {256: ("100", "5.73 ms"), 1024: ("100", "97.5 ms"), 4096: ("100", "6.12 s")},
    "no match": {256: ("68.9", "1.40 µs"), 1024: ("67.0", "2.49 µs"), 4096: ("57.9", "4.36 µs")},
    "batch_optimal b=128": {256: ("97.6", "2.41 ms"), 1024: ("94.5", "9.08 ms"), 4096: ("92.8", "43.4 ms")},
    "batch_optimal b=256": {256: ("100", "4.56 ms"), 1024: ("96.8", "16.9 ms"), 4096: ("95.0", "95.9 ms")},
    "batch_optimal b=512": {256: ("100", "4.57 ms"), 1024: ("98.6", "37.1 ms"), 4096: ("96.8", "171 ms")},
    "batch_optimal b=1024": {256: ("100", "4.57 ms"), 1024: ("100", "79.5 ms"), 4096: ("98.2", "391 ms")},
}


def centred_samples(z: np.ndarray) -> np.ndarray:
    """(N, C, H, W) maps -> (N, S, C) float64, minus the mean over the N crops (as semrsm.build)."""
    n, c, h, w = z.shape
    v = z.reshape(n, c, h * w).transpose(0, 2, 1).astype(np.float64)
    return v - v.mean(axis=0)


def choose_pairs(n: int, count: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < min(count, n * (n - 1) // 2):
        i, j = sorted(rng.choice(n, size=2, replace=False).tolist())
        chosen.add((i, j))
    return sorted(chosen)


# --- the methods -----------------------------------------------------------------------------
# Each takes the problem and returns the column matched to every row (None for the baseline).

Problem = dict


def semrsm_method(matcher: str, **options: int) -> Callable[[Problem], np.ndarray]:
    def run(p: Problem) -> np.ndarray:
        return semrsm.match_affinity(p["A"], p["nx"], p["ny"], matcher=matcher, **options)[0]

    return run


def scipy_method(p: Problem) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    _, cols = linear_sum_assignment(p["A"], maximize=True)
    return cols


def lapx_method(p: Problem) -> np.ndarray:
    from lap import lapjvr  # the lapx package installs the module "lap"

    _, _, cols = lapjvr(p["negA"])
    return cols


def ortools_method(p: Problem) -> np.ndarray:
    from ortools.graph.python import linear_sum_assignment

    solver = linear_sum_assignment.SimpleLinearSumAssignment()
    solver.add_arcs_with_cost(p["left"], p["right"], p["int_costs"])
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise RuntimeError(f"OR-Tools returned {status} instead of an optimal assignment")
    return np.array([solver.right_mate(i) for i in range(p["A"].shape[0])])


def trace_method(p: Problem) -> None:
    p["A"].diagonal().sum()  # the paper's np.diag(); a cold-cache single call, as in the table
    return None


def methods() -> list[tuple[str, str, Callable[[Problem], Optional[np.ndarray]], Optional[tuple[str, dict]]]]:
    """(label, complexity, function, semrsm matcher for the certificate or None)."""
    rows: list = [
        ("no match", "O(s)", trace_method, None),
        ("greedy", "O(s²)", semrsm_method("greedy"), ("greedy", {})),
    ]
    for k in (128, 512):
        rows.append((f"topk_greedy k={k}", "O(k³ + s²)", semrsm_method("topk_greedy", k=k), ("topk_greedy", {"k": k})))
    for b in (128, 256, 512, 1024):
        rows.append((f"batch_optimal b={b}", "(s/b)·O(b³)", semrsm_method("batch_optimal", b=b), ("batch_optimal", {"b": b})))
    for gap in (30_000, 1_000):
        label = "auction (default, 3 %)" if gap == 30_000 else f"auction gap_ppm={gap}"
        rows.append((label, "O(s²)·bids", semrsm_method("auction", gap_ppm=gap), ("auction", {"gap_ppm": gap})))
    rows += [
        ("semrsm exact", "O(s³)", semrsm_method("exact"), ("exact", {})),
        ("scipy", "O(s³)", scipy_method, None),
        ("lapjv", "O(s³)", lapx_method, None),
        ("OR-Tools", "O(s³)", ortools_method, None),
    ]
    return rows


def paper_key(label: str) -> Optional[str]:
    return label if label in PAPER else None


def time_call(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}", f"semrsm {semrsm.__version__}"]
    for module, name in (("scipy", "scipy"), ("lap", "lapx"), ("ortools", "ortools")):
        try:
            versions.append(f"{name} {__import__(module).__version__}")
        except Exception:  # noqa: BLE001 - a missing peer is reported, not fatal
            versions.append(f"{name} (missing)")
    return f"{cpu}, {os.cpu_count()} cores ({platform.system()} {platform.machine()}); " + ", ".join(versions)


def run_size(fixtures, size: int, pairs: int, repeats: int, skip: set[str]) -> tuple[list[dict], dict]:
    """Measure every method on the pairs of both layers of one size."""
    table = methods()
    results = {label: {"quality": {}, "certified": [], "times": []} for label, *_ in table}
    affinity_times = {}
    for layer in LAYERS[size]:
        v = centred_samples(fixtures[layer])
        gemm = []
        for i, j in choose_pairs(v.shape[0], pairs, seed=size):
            x, y = v[i], v[j]
            t, A = time_call(lambda: x @ y.T, repeats)
            gemm.append(t)
            A = np.ascontiguousarray(A)
            # ±1e10: far from OR-Tools' overflow guard ((s+1)·max|cost| must fit its int64 scaling)
            # and still 1e-10 of the largest entry per unit, far below what k/k_opt can show.
            scale = 1e10 / max(float(np.abs(A).max()), 1e-300)
            problem = {
                "A": A,
                "negA": -A,
                "nx": np.linalg.norm(x, axis=1),
                "ny": np.linalg.norm(y, axis=1),
                "left": np.repeat(np.arange(size, dtype=np.int32), size),
                "right": np.tile(np.arange(size, dtype=np.int32), size),
                "int_costs": np.rint(-A * scale).astype(np.int64).ravel(),
            }
            values = {}
            for label, _, fn, _cert in table:
                if label in skip:
                    continue
                t, cols = time_call(lambda: fn(problem), repeats)
                results[label]["times"].append(t)
                if cols is None:
                    values[label] = float(np.trace(A))
                else:
                    cols = np.asarray(cols)
                    if not np.array_equal(np.sort(cols), np.arange(size)):
                        raise RuntimeError(f"{label} returned no permutation on {layer} ({i}, {j})")
                    values[label] = float(A[np.arange(size), cols].sum())
            exact = [values[m] for m in ("semrsm exact", "scipy", "lapjv", "OR-Tools") if m in values]
            best = max(exact)
            for m in ("semrsm exact", "scipy", "lapjv"):
                if m in values and abs(values[m] - best) > 1e-9 * abs(best):
                    raise RuntimeError(f"exact solvers disagree on {layer} ({i}, {j}): {values}")
            for label, _, _, cert in table:
                if label not in values:
                    continue
                results[label]["quality"].setdefault(layer, []).append(values[label] / best)
                if cert is not None:
                    _, value, bound = semrsm.match_affinity(A, problem["nx"], problem["ny"], matcher=cert[0], return_bound=True, **cert[1])
                    results[label]["certified"].append(value / bound)
            print(f"  s={size} {layer} pair ({i}, {j}) done", file=sys.stderr, flush=True)
        affinity_times[layer] = (statistics.median(gemm), v.shape[2])
    rows = []
    for label, complexity, _, _ in table:
        r = results[label]
        if not r["times"]:
            continue
        rows.append(
            {
                "label": label,
                "complexity": complexity,
                "quality": {layer: 100 * float(np.mean(q)) for layer, q in r["quality"].items()},
                "certified": 100 * float(np.mean(r["certified"])) if r["certified"] else None,
                "time": statistics.median(r["times"]),
                "pairs": len(r["times"]),
            }
        )
    return rows, affinity_times


def markdown(size: int, rows: list[dict], affinity: dict) -> str:
    a, b = LAYERS[size]
    lines = [
        f"**s = {size}** ({a}, {b}; {rows[0]['pairs']} pairs). Affinity `A = x yᵀ` (numpy GEMM, 1 thread, "
        "not included below): "
        + ", ".join(f"{layer} (C = {c}) {fmt_time(t)}" for layer, (t, c) in affinity.items())
        + ".",
        "",
        f"| method | complexity | k/k_opt {a} [%] | k/k_opt {b} [%] | certified ≥ [%] | T per pair | paper k/k_opt [%] | paper T |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        paper = PAPER.get(paper_key(r["label"]) or "", {}).get(size, ("", ""))
        cert = f"{r['certified']:.2f}" if r["certified"] is not None else ""
        q = r["quality"]
        lines.append(
            f"| {r['label']} | {r['complexity']} | {q.get(a, float('nan')):.2f} | {q.get(b, float('nan')):.2f} | "
            f"{cert} | {fmt_time(r['time'])} | {paper[0]} | {paper[1]} |"
        )
    return "\n".join(lines)


def plot(all_rows: dict[int, list[dict]], path: Path) -> None:
    from semrsm.plots import quality_time_frontier

    quality_time_frontier(all_rows).savefig(path, dpi=120)
    print(f"wrote {path}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=sorted(LAYERS), choices=sorted(LAYERS))
    parser.add_argument("--pairs", type=int, default=8, help="pairs per layer at s <= 1024 (default 8)")
    parser.add_argument("--pairs-large", type=int, default=3, help="pairs per layer at s = 4096 (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per pair at s <= 1024 (median; default 3)")
    parser.add_argument("--skip", nargs="*", default=[], help="methods to leave out, e.g. --skip lapjv OR-Tools")
    parser.add_argument("--output", type=Path, default=None, help="write the Table 5 section into this Markdown file")
    parser.add_argument("--plot", type=Path, default=None, help="write the quality-vs-time plot (PNG) here")
    args = parser.parse_args()

    fixtures = np.load(data_dir() / FIXTURE)
    all_rows, sections = {}, []
    for size in args.sizes:
        pairs = args.pairs if size <= 1024 else args.pairs_large
        repeats = args.repeats if size <= 1024 else 1
        rows, affinity = run_size(fixtures, size, pairs, repeats, set(args.skip))
        all_rows[size] = rows
        sections.append(markdown(size, rows, affinity))
        print(sections[-1] + "\n", flush=True)

    header = [
        "## Table 5 on real data: approximate matchers vs exact solvers",
        "",
        "`python benches/table5.py "
        + " ".join(
            [f"--sizes {' '.join(map(str, args.sizes))}", f"--pairs {args.pairs}", f"--pairs-large {args.pairs_large}"]
        )
        + " --output docs/benchmarks.md --plot docs/table5.png`. "
        "EfficientNet-Lite0 crops (`effnet_lite0_s64_to_s4096.npz`, centred over the 16 crops); the paper used "
        "ResNet101 on Tiny-ImageNet, so its columns are for orientation, not a like-for-like comparison. "
        "k/k_opt: mean matched inner product relative to the exact optimum (negative for `no match`: the centred "
        "maps are misaligned enough that the position-by-position inner product is below zero). "
        "certified ≥: mean of value / bound from `return_bound=True`, a lower bound on k/k_opt that needs no exact "
        "solve. T: median time per pair, single thread, same matrices and run for every method.",
        f"Machine: {machine()}.",
        "",
    ]
    text = "\n".join(header) + "\n\n".join(sections)
    if args.plot:
        text += f"\n\n![quality vs time]({args.plot.name})"
    if args.output:
        write_section(args.output, text, START, END, "Table 5")
    if args.plot:
        plot(all_rows, args.plot)


if __name__ == "__main__":
    main()
