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

``--grid`` times float64, mixed and auto (the default) on centred post-ReLU Gaussian maps over
a grid of S and C (N chosen so that each call does about the same work), interleaved: the
measurements behind ``precision="auto"``'s rule (docs/benchmarks.md, "Mixed precision").
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


def run(x: np.ndarray, precision: str) -> tuple[float, np.ndarray]:
    t = time.process_time()
    G = semrsm.gram(x, center=False, layout="nsc", precision=precision, threads=1, progress=False)
    return time.process_time() - t, G


GRID_S = (49, 144, 256, 576, 1024)
GRID_C = (64, 256, 512, 768, 2048)


def grid(repeats: int, sizes: tuple[int, ...] = GRID_S) -> None:
    """float64 vs mixed (and auto when this build has it) on a synthetic S × C grid (rows
    ``sizes``)."""
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
                    before = _core.mixed_counters()[0]
                    dt, _ = run(x, prec)
                    times[prec].append(dt / pairs)
                    if prec == "auto":
                        picks = "mixed" if _core.mixed_counters()[0] > before else "float64"
            med = {k: float(np.median(v)) for k, v in times.items()}
            cells = " | ".join(f"{med[p] * 1e6:.0f} µs" for p in precs)
            print(f"| {s} | {c} | {pairs} | {cells} | {med['float64'] / med['mixed']:.2f} | {picks or '-'} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[49, 256, 1024, 4096], choices=sorted(CASES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--output", help="append the table to this Markdown file")
    p.add_argument("--grid", action="store_true", help="the synthetic S × C grid instead")
    p.add_argument("--grid-sizes", type=int, nargs="+", default=list(GRID_S), help="rows S of --grid")
    args = p.parse_args()
    if args.grid:
        grid(args.repeats, tuple(args.grid_sizes))
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
