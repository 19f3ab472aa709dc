"""layer_cka (exact CKA of the full RSMs, tile by tile) and minibatch_cka on the shared real data.

Two Markdown tables (medians of ``--repeats`` runs, measured in this run):

1. ``layer_cka`` at large N (default 20 000) with ``matcher="none"``: time and the peak resident
   memory of a fresh process (``ru_maxrss``) against the 2 · 8 · N² bytes two RSMs would take.
   Data: the pooled ``head`` (1280) and class ``probs`` (1000) of ``effnet_lite0_crops2000.npz``,
   stacked ``N / 2000`` times with 1 % Gaussian noise (so no two inputs coincide).
2. CKA between ``block12`` and ``block15`` (S = 49, float16 as stored) at N = 2000:
   ``layer_cka`` (the exact debiased CKA of the full RSMs, every pair matched) against
   ``minibatch_cka`` for batch sizes 100, 250, 500: time, speed-up, value and its distance to the
   exact CKA; first with ``matcher="none"`` (spatio-semantic, for reference), then ``"exact"``
   (semantic). One run each, all in this run (``--repeats`` for medians).

    python benches/bench_layer_cka.py                       # both tables
    nice python benches/bench_layer_cka.py --large 0 --progress   # table 2 only (about 4M LAPs)

The data folder is ``$SEMRSM_DATA`` or ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np
from _fixtures import data_dir

import semrsm

FIXTURE = "effnet_lite0_crops2000.npz"

_CHILD = r"""
import json, resource, sys, time
import numpy as np, semrsm
n, path = int(sys.argv[1]), sys.argv[2]
with np.load(path) as z:
    head, probs = z["head"].astype(np.float32), z["probs"].astype(np.float32)
rng = np.random.default_rng(0)
reps = -(-n // head.shape[0])
x = np.concatenate([head + 0.01 * head.std() * rng.standard_normal(head.shape, dtype=np.float32) for _ in range(reps)])[:n]
y = np.concatenate([probs + 0.01 * probs.std() * rng.standard_normal(probs.shape, dtype=np.float32) for _ in range(reps)])[:n]
x, y = x[:, None, :], y[:, None, :]          # (N, S=1, C)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
value = semrsm.layer_cka(x, y, matcher="none", layout="nsc", progress=False)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"value": value, "seconds": seconds, "peak_kib": peak, "before_kib": before}))
"""


def large(n: int, repeats: int) -> str:
    path = str(data_dir(FIXTURE) / FIXTURE)
    runs = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", _CHILD, str(n), path], capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    seconds = statistics.median(r["seconds"] for r in runs)
    peak = statistics.median(r["peak_kib"] for r in runs) / 2**20
    before = statistics.median(r["before_kib"] for r in runs) / 2**20
    two_rsms = 2 * 8 * n * n / 2**30
    return "\n".join([
        f"### layer_cka at N = {n}, matcher=\"none\" (head vs probs, S = 1)",
        "",
        "| N | CKA | time (median) | peak RSS | of which data + imports | two RSMs would need |",
        "|---|---|---|---|---|---|",
        f"| {n} | {runs[0]['value']:.6f} | {seconds:.1f} s | {peak:.2f} GiB | {before:.2f} GiB | {two_rsms:.1f} GiB |",
        "",
    ])


def semantic(n: int, batches: list[int], repeats: int, progress: bool, state: str | None, late: list[int]) -> str:
    """Table 2: one run of each method on the same float16 maps (widened block by block)."""
    with np.load(data_dir(FIXTURE) / FIXTURE) as z:
        x, y = np.ascontiguousarray(z["block12"][:n]), np.ascontiguousarray(z["block15"][:n])

    def timed(fn):
        times, value = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            value = fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times), value

    def within(b: int) -> int:
        full, rest = divmod(n, b)
        return full * b * (b + 1) // 2 + (rest * (rest + 1) // 2 if rest >= 4 else 0)

    rows = []
    pairs = n * (n + 1) // 2
    for matcher in ("none", "exact"):
        mb = []

        def minibatch(b: int) -> None:
            t, v = timed(lambda: semrsm.minibatch_cka(x, y, b, matcher=matcher))
            mb.append((b, t, v))
            print(f"# {time.strftime('%H:%M:%S')} {matcher} minibatch b={b}: {t:.1f} s, {v:.6f}", file=sys.stderr, flush=True)

        for b in batches:
            if b not in late:
                minibatch(b)
        resume = None if state is None or matcher != "exact" else state
        t_exact, v_exact = timed(
            lambda: semrsm.layer_cka(x, y, matcher=matcher, debiased=True, progress=progress, resume=resume)
        )
        print(f"# {time.strftime('%H:%M:%S')} {matcher} layer_cka: {t_exact:.1f} s, {v_exact:.6f}", file=sys.stderr, flush=True)
        for b in batches:
            if b in late:
                minibatch(b)
        rows.append(
            f"| {matcher} | layer_cka (exact CKA, debiased) | {pairs:,} | {t_exact:.1f} s | 1 | {v_exact:.4f} | 0 |"
        )
        for b, t, v in sorted(mb):
            rows.append(
                f"| {matcher} | minibatch_cka, b = {b} | {within(b):,} | {t:.1f} s | {t_exact / t:.1f}× "
                f"| {v:.4f} | {v - v_exact:+.4f} |"
            )
    return "\n".join([
        f"### Semantic CKA, block12 vs block15 (S = 49, float16), N = {n}, linear kernel",
        "",
        "| matcher | method | pairs matched per layer | time | speed-up vs layer_cka | CKA | minus exact CKA |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", type=int, default=20000, help="N of table 1 (0: skip)")
    parser.add_argument("--n", type=int, default=2000, help="N of table 2 (0: skip)")
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 250, 500])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--progress", action="store_true", help="progress bars of layer_cka on stderr")
    parser.add_argument("--state", default=None, help="resume= path for the exact layer_cka (a killed run continues)")
    parser.add_argument("--late", type=int, nargs="*", default=[], help="batch sizes measured after layer_cka, not before")
    args = parser.parse_args()
    print(f"semrsm {semrsm.__version__}; {args.repeats} run(s) each\n")
    if args.large:
        print(large(args.large, args.repeats))
    if args.n:
        print(semantic(args.n, args.batches, args.repeats, args.progress, args.state, args.late))


if __name__ == "__main__":
    main()
