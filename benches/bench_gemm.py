"""semrsm's deterministic GEMM (issues 8, 13) against numpy/OpenBLAS, measured in the same run.

Prints Markdown tables of medians and ratios:

(a) affinity per pair, ``x_i @ y_j.T`` (S × C times C × S), ``semrsm._core.gemm_abt`` (and
    ``gemm_abt_f32``) vs numpy, float64 and float32;
(b) the GEMM share of a tile: semrsm computes the affinities of a block of b × b pairs with one
    GEMM (b from the same 4 MiB budget as ``rsm::pair_block``); per pair against one large OpenBLAS
    GEMM over the whole tile ``X_I @ Y_J.T``, float64 and float32.

(c) ``semrsm.gram(x, matcher="none")`` vs numpy's float64 copy + centring + ``X @ X.T``
    (numpy time / semrsm time: above 1 = semrsm faster, as in (d));
(d) whole ``semrsm.gram(..., threads=1)`` per pair vs numpy + scipy per pair
    (``A = V_i @ V_j.T; linear_sum_assignment(A, maximize=True)``) on real maps.

(a) and (b) interleave numpy and semrsm round by round, in CPU time, and report the median of the
per-round ratios semrsm / numpy (below 1 = semrsm faster).

numpy's BLAS threads are pinned with threadpoolctl: one thread in (a), (b), (d); ``--threads`` in
(c), where semrsm gets the same. Run it once on main before a change (``--label before``) and once
after, with ``SEMRSM_DATA`` pointing to the shared data::

    SEMRSM_DATA=/work/shared/data python benches/bench_gemm.py --parts a b c d
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
from _fixtures import data_dir
from threadpoolctl import threadpool_limits

PAIR_BLOCK_BYTES = 4 << 20  # as src/rsm/mod.rs


def median_time(f: Callable[[], object], repeat: int, min_time: float = 0.05) -> float:
    """Median over ``repeat`` runs of the mean time of as many calls as fill ``min_time`` (after
    a warm-up call; none and one call per run when ``min_time`` is 0, for long calls)."""
    inner = 1
    if min_time > 0:
        f()
        start = time.perf_counter()
        f()
        inner = max(1, int(min_time / max(time.perf_counter() - start, 1e-7)))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            f()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def fmt(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def pair_block(s: int, elem: int) -> int:
    return max(1, int((PAIR_BLOCK_BYTES // (s * s * elem)) ** 0.5))


def paired(f_ref: Callable[[], object], f_ours: Callable[[], object], repeat: int, min_time: float = 0.02) -> tuple[float, float, float]:
    """Interleaved timing of a reference and semrsm (rounds of ref, ours / ours, ref alternately,
    each the mean of as many calls as fill ``min_time``), in CPU time of the process (both run
    on one thread at a time: on a shared machine it measures the work, not the neighbours, as
    in (d)): the medians of both and the median of the per-round ratios ours / ref."""
    f_ref()
    f_ours()
    start = time.process_time()
    f_ref()
    f_ours()
    inner = max(1, int(min_time / max(time.process_time() - start, 1e-6)))
    t_ref, t_ours = [], []
    for r in range(repeat):
        for which in (0, 1) if r % 2 == 0 else (1, 0):
            f = f_ref if which == 0 else f_ours
            start = time.process_time()
            for _ in range(inner):
                f()
            (t_ref if which == 0 else t_ours).append((time.process_time() - start) / inner)
    ratio = statistics.median(o / r for o, r in zip(t_ours, t_ref))
    return statistics.median(t_ref), statistics.median(t_ours), ratio


def part_a(repeat: int) -> None:
    from semrsm import _core

    rng = np.random.default_rng(0)
    print("\n(a) affinity per pair, x_i @ y_j.T, one thread, CPU time, interleaved (ratio: median of rounds)\n")
    print("| dtype | S | C | numpy | semrsm | semrsm / numpy |")
    print("|---|---|---|---|---|---|")
    for dtype, fn in ((np.float64, _core.gemm_abt), (np.float32, _core.gemm_abt_f32)):
        for s in (49, 256, 1024):
            for c in (24, 112, 320, 1280):
                x = rng.normal(size=(s, c)).astype(dtype)
                y = rng.normal(size=(s, c)).astype(dtype)
                with threadpool_limits(1):
                    t_np, t_us, ratio = paired(lambda: x @ y.T, lambda: fn(x, y), 4 * repeat + 1)
                print(f"| {np.dtype(dtype).name} | {s} | {c} | {fmt(t_np)} | {fmt(t_us)} | {ratio:.2f} |")


def part_b(repeat: int) -> None:
    from semrsm import _core

    rng = np.random.default_rng(1)
    print("\n(b) GEMM share of a tile, per pair, one thread, CPU time, interleaved (ratio: median of rounds)\n")
    print("| dtype | S | C | tile (samples) | semrsm block b | one OpenBLAS GEMM / pair | semrsm / pair | semrsm / OpenBLAS |")
    print("|---|---|---|---|---|---|---|---|")
    for dtype, fn in ((np.float64, _core.gemm_abt), (np.float32, _core.gemm_abt_f32)):
        for s, c, n in ((49, 320, 56), (49, 2048, 28), (257, 384, 12)):
            x = rng.normal(size=(n * s, c)).astype(dtype)
            y = rng.normal(size=(n * s, c)).astype(dtype)
            b = pair_block(s, np.dtype(dtype).itemsize)

            def blocks() -> None:
                for i0 in range(0, n, b):
                    xi = x[i0 * s : min(n, i0 + b) * s]
                    for j0 in range(0, n, b):
                        fn(xi, y[j0 * s : min(n, j0 + b) * s])

            with threadpool_limits(1):
                t_big, t_ours, ratio = paired(lambda: x @ y.T, blocks, 2 * repeat + 1, min_time=0)
            pairs = n * n
            print(
                f"| {np.dtype(dtype).name} | {s} | {c} | {n} × {n} | {b} | {fmt(t_big / pairs)} | {fmt(t_ours / pairs)} "
                f"| {ratio:.2f} |"
            )


def part_c(repeat: int, threads: int, sizes: list[int]) -> None:
    """``gram(x, matcher="none")`` against what a user writes with numpy, ``threads`` each,
    interleaved (rounds of numpy, semrsm / semrsm, numpy alternately): wall time and the CPU
    time of the process (all threads; on a shared machine the work, not the neighbours), medians
    and the median of the per-round ratios, with a pause before each call (idle BLAS threads
    spin after a call). ``repeat`` rounds for N <= 1000, a third of them (at least one) above."""
    import semrsm

    rng = np.random.default_rng(2)
    print(f"\n(c) matcher='none' vs numpy (float64 copy, centring, X @ X.T), {threads} threads, interleaved\n")
    print("| N | rounds | numpy wall | semrsm wall | numpy / semrsm (wall) | numpy CPU | semrsm CPU | numpy / semrsm (CPU) | max rel. diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        x = rng.normal(size=(n, 256, 14, 14)).astype(np.float32)

        def numpy_none() -> np.ndarray:
            v = x.reshape(n, -1).astype(np.float64)
            v -= v.mean(axis=0)
            return v @ v.T

        def ours() -> np.ndarray:
            return semrsm.gram(x, matcher="none", threads=threads, progress=False)

        rounds = repeat if n <= 1000 else max(1, repeat // 3)
        wall: dict[int, list[float]] = {0: [], 1: []}
        cpu: dict[int, list[float]] = {0: [], 1: []}
        results = {}
        with threadpool_limits(threads):
            for r in range(rounds):
                for which in (0, 1) if r % 2 == 0 else (1, 0):
                    f = numpy_none if which == 0 else ours
                    # OpenBLAS's idle threads spin for a while after a call (and rayon's
                    # briefly): on 2 cores they would take CPU from the next call and count in
                    # its process CPU time. Let them go to sleep first.
                    time.sleep(0.5)
                    w0, c0 = time.perf_counter(), time.process_time()
                    results[which] = f()
                    wall[which].append(time.perf_counter() - w0)
                    cpu[which].append(time.process_time() - c0)
        g_np, g = results[0], results[1]
        diff = float(np.abs(g - g_np).max() / np.abs(g_np).max())
        rw = statistics.median(a / b for a, b in zip(wall[0], wall[1]))
        rc = statistics.median(a / b for a, b in zip(cpu[0], cpu[1]))
        med = statistics.median
        print(
            f"| {n} | {rounds} | {fmt(med(wall[0]))} | {fmt(med(wall[1]))} | {rw:.2f} | "
            f"{fmt(med(cpu[0]))} | {fmt(med(cpu[1]))} | {rc:.2f} | {diff:.1e} |",
            flush=True,
        )


def _numpy_scipy(v: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    n = v.shape[0]
    g = np.zeros((n, n))
    for i in range(n):
        g[i, i] = float(np.sum(v[i] * v[i]))
        for j in range(i + 1, n):
            a = v[i] @ v[j].T
            r, cc = linear_sum_assignment(a, maximize=True)
            g[i, j] = g[j, i] = a[r, cc].sum()
    return g


def _precisions() -> list[str]:
    """The ``precision=`` values this build accepts, ``"auto"`` (the default) first if present."""
    from semrsm import _tiles

    return ["auto", "float64", "mixed"] if "auto" in _tiles.PRECISIONS else ["float64", "mixed"]


def part_d(repeat: int) -> None:
    """Whole ``gram`` per pair vs numpy + scipy, each precision and the reference interleaved
    (A, B, C, A, B, C, ...) in the same run; CPU time of the process (one thread each: on a
    shared machine it measures the work, not the neighbours); medians."""
    import semrsm

    rng = np.random.default_rng(3)
    cases = []
    crops = np.load(data_dir("effnet_lite0_crops2000.npz") / "effnet_lite0_crops2000.npz")
    z = crops["block15"][:64].astype(np.float32)  # (N, 320, 7, 7)
    cases.append(("EffNet block15 (real), S = 49, C = 320, N = 64", z.reshape(64, 320, 49).transpose(0, 2, 1)))
    for c, n in ((1280, 40), (2048, 40)):
        relu = np.maximum(rng.normal(size=(n, 49, c)), 0).astype(np.float32)
        cases.append((f"post-ReLU S = 49, C = {c} (synthetic), N = {n}", relu))
    vit = np.load(data_dir("vit_s14_shifted_pairs.npz") / "vit_s14_shifted_pairs.npz")["layer11"][:12]
    cases.append(("ViT-S/14 layer11 (real), S = 257, C = 384, N = 12", vit.astype(np.float32)))
    fix = np.load(data_dir() / "effnet_lite0_s64_to_s4096.npz")["block4"][:5].astype(np.float32)  # (5, 40, 32, 32)
    cases.append(("EffNet block4 (real), S = 1024, C = 40, N = 5", fix.reshape(5, 40, -1).transpose(0, 2, 1)))
    precs = _precisions()
    print("\n(d) whole gram per pair, exact, one thread (semrsm threads=1; numpy/OpenBLAS 1 thread), CPU time, ")
    print(f"interleaved, median of {repeat}; ratios = numpy+scipy / semrsm\n")
    print(
        "| maps | pairs | numpy + scipy / pair | "
        + " | ".join(f"{p} / pair" for p in precs)
        + " | "
        + " | ".join(f"ratio {p}" for p in precs)
        + " | max rel. diff |"
    )
    print("|---|---|---|" + "---|" * (2 * len(precs)) + "---|")
    for name, v in cases:
        n = v.shape[0]
        pairs = n * (n - 1) // 2
        vc = v.astype(np.float64)
        vc = vc - vc.mean(axis=0)
        times: dict[str, list[float]] = {"ref": [], **{p: [] for p in precs}}
        results: dict[str, np.ndarray] = {}
        for _ in range(repeat):
            with threadpool_limits(1):
                t = time.process_time()
                results["ref"] = _numpy_scipy(vc)
                times["ref"].append(time.process_time() - t)
            for p in precs:
                t = time.process_time()
                results[p] = semrsm.gram(v, layout="nsc", threads=1, progress=False, precision=p)
                times[p].append(time.process_time() - t)
        med = {k: statistics.median(x) / pairs for k, x in times.items()}
        g_ref = results["ref"]
        diff = max(float(np.abs(results[p] - g_ref).max() / np.abs(g_ref).max()) for p in precs)
        print(
            f"| {name} | {pairs} | {fmt(med['ref'])} | "
            + " | ".join(fmt(med[p]) for p in precs)
            + " | "
            + " | ".join(f"{med['ref'] / med[p]:.2f}" for p in precs)
            + f" | {diff:.1e} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["a", "b", "c", "d"], choices=["a", "b", "c", "d"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="threads of part (c), both sides")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000], help="N of part (c)")
    parser.add_argument("--label", default="", help="printed in the title (e.g. before/after)")
    args = parser.parse_args()
    import semrsm

    print(f"## GEMM engine {args.label} (semrsm from {semrsm.__file__})")
    for part in args.parts:
        if part == "a":
            part_a(args.repeat)
        elif part == "b":
            part_b(args.repeat)
        elif part == "c":
            part_c(args.repeat, args.threads, args.sizes)
        else:
            part_d(args.repeat)


if __name__ == "__main__":
    main()
