"""A full semantic RSM of 2000 real 7×7 maps (2 001 000 pairs): semrsm vs the paper's procedure.

Issue 13's real-scale check: ``effnet_lite0_crops2000.npz`` (2000 random views of 10 photos,
EfficientNet-Lite0 ``block15``, 320 × 7 × 7, stored float16) through
``semrsm.gram(x, matcher="exact", threads=T)`` with the default centring, timed whole. The paper's
procedure (numpy ``A = V_i V_jᵀ`` + ``scipy.optimize.linear_sum_assignment`` per pair, in a process
pool of T workers) would take hours, so it is timed on a random sample of pairs in this process
(one thread, BLAS pinned to one thread) and extrapolated to all pairs with perfect scaling over T
workers, which favours it. The sampled pairs' G from semrsm must equal the float64 oracle to
rel. 1e-12.

    python benches/bench_block15.py                  # N = 2000, 2 threads, 2000 sampled pairs
    python benches/bench_block15.py --n 500 --sample 500
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from _fixtures import data_dir

FIXTURE = "effnet_lite0_crops2000.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sample", type=int, default=2000, help="pairs timed for the reference")
    parser.add_argument("--layer", default="block15")
    args = parser.parse_args()

    from scipy.optimize import linear_sum_assignment
    from threadpoolctl import threadpool_limits

    import semrsm

    with np.load(data_dir(FIXTURE) / FIXTURE) as f:
        x = np.asarray(f[args.layer][: args.n], dtype=np.float32)  # exact widening of float16
    n, c, h, w = x.shape
    s = h * w
    pairs = n * (n + 1) // 2

    t0 = time.perf_counter()
    g = semrsm.gram(x, matcher="exact", threads=args.threads, progress=False)
    t_semrsm = time.perf_counter() - t0

    # The oracle on the same centring (mean over samples per position and channel, float64).
    v = x.astype(np.float64).reshape(n, c, s).transpose(0, 2, 1)
    v = np.ascontiguousarray(v - v.mean(axis=0))
    rng = np.random.default_rng(0)
    sample = [tuple(sorted(p)) for p in rng.integers(0, n, size=(args.sample, 2))]
    times = []
    worst = 0.0
    with threadpool_limits(1):
        for i, j in sample:
            t = time.perf_counter()
            a = v[i] @ v[j].T
            r, col = linear_sum_assignment(a, maximize=True)
            value = float(a[r, col].sum())
            times.append(time.perf_counter() - t)
            worst = max(worst, abs(g[i, j] - value) / max(abs(value), 1e-300))
    per_pair = statistics.mean(times)
    t_reference = per_pair * pairs / args.threads

    print(
        f"Full semantic RSM, EfficientNet-Lite0 {args.layer} ({c}×{h}×{w}, S = {s}), N = {n} "
        f"({pairs:,} pairs), exact matching, {args.threads} threads/workers.\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, semrsm "
        f"{semrsm.__version__}.\n"
    )
    print("| method | time | per pair (× threads) | ratio |")
    print("|---|---|---|---|")
    print(
        f"| numpy + scipy, process pool of {args.threads} (extrapolated from {len(sample)} pairs, "
        f"mean {per_pair * 1e6:.0f} µs each) | {t_reference / 60:.1f} min | {per_pair * 1e6:.0f} µs | 1 |"
    )
    print(
        f"| semrsm.gram(matcher=\"exact\", threads={args.threads}) | {t_semrsm:.1f} s "
        f"| {t_semrsm * args.threads / pairs * 1e6:.1f} µs | {t_reference / t_semrsm:.1f}× |"
    )
    print(f"\nsemrsm's G on the {len(sample)} sampled pairs vs the float64 oracle: max rel. diff {worst:.1e}.")


if __name__ == "__main__":
    main()
