"""precision="mixed" vs "float64" (and "float32" for reference): exact semantic RSMs on real maps.

For each size, one whole ``semrsm.gram`` (matcher="exact", one thread) per precision on the same
centred samples, interleaved, repeated; medians per pair. Also the certificate's counters: pairs
certified from the float32 solve (at the first or the wider second screen), pairs repaired in
float64, and candidate entries per row computed in float64. G of "mixed" is checked against
"float64" (relative difference, which must be at rounding level).

Times are CPU seconds of the process (``time.process_time``; one worker thread, so on an idle
machine they equal wall time) because the machines this runs on are shared: wall time there
mostly measures the neighbours.

    python benches/bench_mixed.py                       # S = 49, 256, 1024, 4096 (257: ViT-S/14 tokens)
    python benches/bench_mixed.py --sizes 49 256 --repeats 5 --output docs/benchmarks.md
    python benches/bench_mixed.py --grid                # synthetic S × C grid: where mixed pays
    python benches/bench_mixed.py --grid --grid-sizes 49  # its S = 49 row only
    python benches/bench_mixed.py --grid --matcher greedy --grid-sizes 49 144 256 576
    python benches/bench_mixed.py --approx --sizes 49 257 256 1024  # approximate matchers, real maps

``--grid`` times float64, mixed and auto (the default) on centred post-ReLU Gaussian maps over
a grid of S and C (N chosen so that each call does about the same work), interleaved: the
measurements behind ``precision="auto"``'s rule (docs/benchmarks.md, "Mixed precision"); with
``--matcher`` for another matcher (an approximate one: its permutation chosen on float32 affinities
under "mixed").

``--approx`` times the approximate matchers (greedy, the auction, batch_optimal b = 64) in float64
and mixed on the real maps of ``--sizes``, interleaved: time per pair, their ratio, and how far
mixed's G is from float64's (0 where the same permutation was chosen).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from _fixtures import FIXTURE, data_dir

import semrsm
from semrsm import _core

# size -> (file, key, samples)
CASES = {
    49: ("effnet_lite0_crops2000.npz", "block15", 24),
    257: ("vit_s14_shifted_pairs.npz", "layer11", 8),
    256: (FIXTURE, "block10", 10),
    1024: (FIXTURE, "block4", 5),
    4096: (FIXTURE, "block2", 3),
}


def load(size: int) -> np.ndarray:
    name, key, n = CASES[size]
    with np.load(data_dir(name) / name) as f:
        a = np.asarray(f[key][:n], dtype=np.float64)
    if a.ndim == 4:
        a = a.reshape(a.shape[0], a.shape[1], -1).transpose(0, 2, 1)
    return np.ascontiguousarray(a - a.mean(axis=0))


def run(x: np.ndarray, precision: str, matcher: str = "exact") -> tuple[float, np.ndarray]:
    t = time.process_time()
    G = semrsm.gram(x, matcher=matcher, center=False, layout="nsc", precision=precision, threads=1, progress=False)
    return time.process_time() - t, G


def mixed_pairs() -> int:
    """Pairs matched on float32 affinities so far: exact (certified or repaired) + approximate."""
    counts = _core.mixed_counters()
    return int(counts[0]) + int(counts[5])


GRID_S = (49, 144, 256, 576, 1024)
GRID_C = (64, 256, 512, 768, 2048)


def grid(repeats: int, sizes: tuple[int, ...] = GRID_S, matcher: str = "exact") -> None:
    """float64 vs mixed (and auto when this build has it) on a synthetic S × C grid (rows
    ``sizes``), for ``matcher``. "auto picks" reads the mixed counters, which count every pair
    the float32 path matched (exact and approximate alike)."""
    from semrsm import _tiles

    precs = ["float64", "mixed"] + (["auto"] if "auto" in _tiles.PRECISIONS else [])
    rng = np.random.default_rng(5)
    print("| S | C | pairs | " + " | ".join(precs) + " | float64 / mixed | auto picks |")
    print("|---|---|---|" + "---|" * len(precs) + "---|---|")
    for s in sizes:
        for c in GRID_C:
            n = int(np.clip(round((4e9 / (s * s * c + 40 * s**2.5)) ** 0.5 + 1), 3, 40))
            x = np.maximum(rng.normal(size=(n, s, c)), 0)
            x = np.ascontiguousarray(x - x.mean(axis=0))
            pairs = n * (n - 1) // 2
            times: dict[str, list[float]] = {p: [] for p in precs}
            picks = ""
            for _ in range(repeats):
                for prec in precs:
                    before = mixed_pairs()
                    dt, _ = run(x, prec, matcher)
                    times[prec].append(dt / pairs)
                    if prec == "auto":
                        picks = "mixed" if mixed_pairs() > before else "float64"
            med = {k: float(np.median(v)) for k, v in times.items()}
            cells = " | ".join(f"{med[p] * 1e6:.0f} µs" for p in precs)
            print(f"| {s} | {c} | {pairs} | {cells} | {med['float64'] / med['mixed']:.2f} | {picks or '-'} |", flush=True)


APPROX = (("greedy", {}), ("auction", {}), ("batch_optimal", {"b": 64}))


def approx(sizes: list[int], repeats: int) -> None:
    """float64 vs mixed for the approximate matchers on the real maps of ``sizes``."""
    print("| maps | S | C | pairs | matcher | float64 | mixed | float64 / mixed | max rel. diff G |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        x = load(size)
        n, s, c = x.shape
        pairs = n * (n - 1) // 2
        name, key, _ = CASES[size]
        for matcher, options in APPROX:
            times: dict[str, list[float]] = {"float64": [], "mixed": []}
            G = {}
            for _ in range(repeats):
                for prec in times:
                    t = time.process_time()
                    G[prec] = semrsm.gram(
                        x, matcher=matcher, center=False, layout="nsc", precision=prec, threads=1, progress=False, **options
                    )
                    times[prec].append((time.process_time() - t) / pairs)
            med = {k: float(np.median(v)) for k, v in times.items()}
            diff = np.abs(G["mixed"] - G["float64"]).max() / np.abs(G["float64"]).max()
            label = matcher + "".join(f" {k}={v}" for k, v in options.items())
            print(
                f"| {name.split('.')[0]} {key} | {s} | {c} | {pairs} | {label} | {med['float64'] * 1e6:.0f} µs "
                f"| {med['mixed'] * 1e6:.0f} µs | {med['float64'] / med['mixed']:.2f} | {diff:.1e} |",
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[49, 256, 1024, 4096], choices=sorted(CASES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--output", help="append the table to this Markdown file")
    p.add_argument("--grid", action="store_true", help="the synthetic S × C grid instead")
    p.add_argument("--grid-sizes", type=int, nargs="+", default=list(GRID_S), help="rows S of --grid")
    p.add_argument("--matcher", default="exact", help="the matcher --grid times (greedy, auction, ...)")
    p.add_argument("--approx", action="store_true", help="the approximate matchers on real maps instead")
    args = p.parse_args()
    if args.approx:
        approx(args.sizes, args.repeats)
        return
    if args.grid:
        grid(args.repeats, tuple(args.grid_sizes), args.matcher)
        return
    lines = [
        f"Mixed precision, exact matcher, one thread ({platform.processor() or platform.machine()}), "
        f"CPU time per pair, median of {args.repeats}:",
        "",
        "| maps | S | C | pairs | float64 | mixed | float32 | float64 / mixed | certified | repaired "
        "| f64 entries per row | max rel. diff G |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes:
        x = load(size)
        n, s, c = x.shape
        pairs = n * (n - 1) // 2
        times: dict[str, list[float]] = {"float64": [], "mixed": [], "float32": []}
        counts = None
        G = {}
        for _ in range(args.repeats):
            for prec in times:
                before = _core.mixed_counters()
                dt, G[prec] = run(x, prec)
                after = _core.mixed_counters()
                if prec == "mixed":
                    counts = [a - b for a, b in zip(after, before)]
                times[prec].append(dt / pairs)
        med = {k: float(np.median(v)) for k, v in times.items()}
        assert counts is not None
        diff = np.abs(G["mixed"] - G["float64"]).max() / np.abs(G["float64"]).max()
        fmt = (lambda t: f"{t * 1e3:.1f} ms") if med["float64"] > 2e-3 else (lambda t: f"{t * 1e6:.0f} µs")
        name, key, _ = CASES[size]
        lines.append(
            f"| {name.split('.')[0]} {key} | {s} | {c} | {pairs} | {fmt(med['float64'])} | {fmt(med['mixed'])} "
            f"| {fmt(med['float32'])} | {med['float64'] / med['mixed']:.2f} | {counts[1]}/{counts[0]} "
            f"(widened {counts[2]}) | {counts[3]} | {counts[4] / max(1, counts[0] - counts[3]) / s:.2f} | {diff:.1e} |"
        )
        print(lines[-1], flush=True)
        if size == 4096:
            total = 250 * 249 // 2
            lines.append("")
            lines.append(
                f"Extrapolated exact RSM of 250 samples at S = 4096 ({total} pairs) on 2 cores: "
                f"float64 {med['float64'] * total / 2 / 60:.0f} min, mixed {med['mixed'] * total / 2 / 60:.0f} min "
                "(per-pair CPU time × pairs / 2)."
            )
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if args.output:
        with open(args.output, "a", encoding="utf-8") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
