"""matcher="shift" on real maps against what a user would write with numpy, in the same run.

For each layer, a whole ``semrsm.gram(maps, matcher="shift", threads=1)`` and two numpy peers on
the same centred maps, interleaved and repeated; medians of CPU time per pair:

- **numpy FFT**: the scores of all circular shifts of each pair as one cross-correlation,
  ``irfft2(Σ_c conj(rfft2(x_c))·rfft2(y_c))`` (spectra computed once per map, one thread), then
  the best shift;
- **numpy roll** (only where it takes under a minute): ``np.roll`` of one map per shift and an
  ``einsum`` per shift, the direct definition (the test oracle).

G is checked against the numpy FFT's best score (relative difference, rounding level) and
semrsm's shift against the one the FFT picks (they may differ only on shifts tied to rounding).
From 256 grid positions semrsm finds the shift by FFT too and re-scores the candidates in
float64 (docs/benchmarks.md "The shift matcher by FFT"); below it goes through the affinities.

    python benches/bench_shift.py
    python benches/bench_shift.py --layers block2 block2_dw --repeats 5 --output docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _fixtures import FIXTURE, data_dir, emit  # noqa: E402

import semrsm  # noqa: E402

SHIFTED = "effnet_lite0_shifted_pairs.npz"
# name -> (file, key, maps)
LAYERS = {
    "block15": (SHIFTED, "block15", 20),  # 7 x 7, C = 320
    "block10": (FIXTURE, "block10", 16),  # 16 x 16, C = 112
    "block4": (FIXTURE, "block4", 16),  # 32 x 32, C = 40
    "block2_56": (SHIFTED, "block2", 20),  # 56 x 56, C = 24
    "block2": (FIXTURE, "block2", 16),  # 64 x 64, C = 24
    "block2_dw": (FIXTURE, "block2_dw", 16),  # 64 x 64, C = 144
}


def load(layer: str) -> np.ndarray:
    name, key, n = LAYERS[layer]
    with np.load(data_dir(name) / name) as f:
        z = np.asarray(f[key][:n], dtype=np.float64)
    return z - z.mean(axis=0)  # (N, C, H, W), centred as semrsm.build does


def cpu(fn):
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def numpy_fft(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best score and shift index (dy * W + dx) of every pair i < j, by real FFTs."""
    n, _, h, w = z.shape
    spectra = np.fft.rfft2(z, axes=(2, 3))
    best = np.zeros((n, n))
    shift = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        for j in range(i + 1, n):
            scores = np.fft.irfft2(np.sum(np.conj(spectra[i]) * spectra[j], axis=0), s=(h, w))
            k = int(np.argmax(scores))
            best[i, j], shift[i, j] = scores.flat[k], k
    return best, shift


def numpy_roll(z: np.ndarray) -> np.ndarray:
    n, _, h, w = z.shape
    best = np.full((n, n), -np.inf)
    for dy in range(h):
        for dx in range(w):
            rolled = np.roll(z, shift=(dy, dx), axis=(2, 3))
            best = np.maximum(best, np.einsum("nchw,mchw->nm", z, rolled))
    return best


def run(layers: list[str], repeats: int) -> str:
    rows = [
        f"`python benches/bench_shift.py --repeats {repeats}` ({platform.processor() or platform.machine()}, "
        f"semrsm {semrsm.__version__}, numpy {np.__version__}; CPU time per pair, median of {repeats}; "
        "numpy on one thread)",
        "",
        "| layer | N, C, H × W | semrsm | numpy FFT | numpy roll | numpy FFT / semrsm | max rel. diff of G | shifts that differ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for layer in layers:
        z = load(layer)
        n, c, h, w = z.shape
        pairs = n * (n - 1) // 2
        upper = np.triu_indices(n, 1)
        t_ours, t_fft, t_roll = [], [], []
        roll_too = h * w * n * n * c * h * w < 2e9  # the direct definition: S² C per pair, N² of them
        for _ in range(repeats):
            dt, (g, perm) = cpu(lambda: semrsm.gram(z, matcher="shift", center=False, threads=1, return_permutations=True))
            t_ours.append(dt / pairs)
            dt, (best, shift) = cpu(lambda: numpy_fft(z))
            t_fft.append(dt / pairs)
            if roll_too:
                dt, oracle = cpu(lambda: numpy_roll(z))
                t_roll.append(dt / pairs)
        ours, fft = statistics.median(t_ours), statistics.median(t_fft)
        rel = np.max(np.abs(g[upper] - best[upper]) / np.abs(best[upper]).max())
        picked = perm[upper[0], upper[1], 0]  # position 0 goes to the shift's (dy, dx)
        differ = int(np.sum(picked != shift[upper]))
        roll = f"{statistics.median(t_roll) * 1e3:.2f} ms" if t_roll else "–"
        rows.append(
            f"| {layer} | {n}, {c}, {h} × {w} | {ours * 1e3:.2f} ms | {fft * 1e3:.2f} ms | {roll} | "
            f"{fft / ours:.2f} | {rel:.1e} | {differ} of {pairs} |"
        )
        print(rows[-1], flush=True)
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None, help="append the table to this Markdown file")
    args = parser.parse_args()
    emit(run(args.layers, args.repeats), args.output)


if __name__ == "__main__":
    main()
