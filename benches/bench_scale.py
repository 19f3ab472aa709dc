"""Real-scale measurements of the tile engine (issue 7), printed as Markdown tables.

    python benches/bench_scale.py rss        # peak RSS: 1.6 GB float32 .npy through gram(path, "none", out=)
    python benches/bench_scale.py exact      # exact gram with out= on a memmap: RSS vs estimate; kill -9 + resume
    python benches/bench_scale.py dask       # LocalCluster throughput, 1 vs 2 worker processes
    python benches/bench_scale.py all

Each measured run is a fresh Python process that reports its own peak RSS (``VmHWM`` of
``/proc/self/status``), so the numbers include the interpreter, numpy and semrsm. Inputs are generated under ``$TMPDIR`` (default /tmp) and deleted afterwards. Sizes can be
lowered with ``--scale`` (a fraction of the default number of samples) for a quick check.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

CHILD = textwrap.dedent(
    """
    import sys, time, json
    import numpy as np, semrsm
    args = json.loads(sys.argv[1])
    start = time.perf_counter()
    src = args["x"]
    if args.get("memmap"):
        src = np.load(src, mmap_mode="r")
    G = semrsm.gram(src, matcher=args["matcher"], out=args.get("out"), resume=args.get("resume", False),
                    progress=False, tile=args.get("tile"), threads=args.get("threads"))
    elapsed = time.perf_counter() - start
    # VmHWM: the peak of this process image. (ru_maxrss would also count the parent's memory
    # at fork time: Linux carries the pre-exec high-water mark over execve.)
    peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print(json.dumps({"seconds": elapsed, "peak_rss": peak, "shape": list(G.shape)}))
    """
)


def child(args: dict, **popen) -> dict:
    import json

    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, **popen)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def mib(b: float) -> str:
    return f"{b / 2**20:.0f} MiB"


def write_npy(path: Path, shape: tuple, seed: int) -> None:
    """A float32 .npy of normal data, written in row blocks (never whole in memory)."""
    rng = np.random.default_rng(seed)
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    step = max(1, (64 << 20) // (int(np.prod(shape[1:])) * 4))
    for r0 in range(0, shape[0], step):
        r1 = min(shape[0], r0 + step)
        mm[r0:r1] = rng.standard_normal((r1 - r0,) + shape[1:], dtype=np.float32)
    mm.flush()
    del mm


def bench_rss(tmp: Path, scale: float) -> None:
    n = max(16, int(1600 * scale))
    shape = (n, 1280, 14, 14)
    x = tmp / "big.npy"
    write_npy(x, shape, 0)
    size = x.stat().st_size
    try:
        r = child({"x": str(x), "matcher": "none", "out": str(tmp / "G.npy")})
        m = r if os.environ.get("SEMRSM_BENCH_ONE") else child(
            {"x": str(x), "matcher": "none", "out": str(tmp / "G2.npy"), "memmap": True}
        )
    finally:
        for p in tmp.glob("*.npy"):
            p.unlink()
    print(f"\n### Peak RSS, `gram(matcher=\"none\", out=...)` on a {size / 1e9:.2f} GB float32 .npy {shape}\n")
    print("| input given as | time | peak RSS | RSS / input |")
    print("|---|---:|---:|---:|")
    for label, res in (("path (`'x.npy'`)", r), ("`np.load(..., mmap_mode='r')`", m)):
        print(f"| {label} | {res['seconds']:.1f} s | {mib(res['peak_rss'])} | {res['peak_rss'] / size:.2f} |")


def bench_exact(tmp: Path, scale: float) -> None:
    import semrsm
    from semrsm import _core

    n = max(24, int(200 * scale))
    shape = (n, 64, 14, 14)
    x = tmp / "x.npy"
    write_npy(x, shape, 1)
    threads = os.cpu_count() or 1
    tile = 16
    try:
        fresh = child({"x": str(x), "matcher": "exact", "out": str(tmp / "fresh.npy"), "memmap": True, "tile": tile})
        # kill -9 at a random point, then resume
        out = tmp / "G.npy"
        import json

        rng = random.Random(7)
        delay = rng.uniform(0.2, 0.6) * fresh["seconds"]
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps({"x": str(x), "matcher": "exact", "out": str(out), "tile": tile})],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        state = Path(str(out) + ".partial.tiles")
        t0 = time.perf_counter()
        while proc.poll() is None:  # at least one tile done, then a random moment
            if state.exists() and state.read_bytes().split(b"\n", 1)[-1].count(1) >= 1:
                break
            time.sleep(0.05)
        time.sleep(delay)
        delay = time.perf_counter() - t0
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done = state.read_bytes().split(b"\n", 1)[1]
        resumed = child({"x": str(x), "matcher": "exact", "out": str(out), "resume": True, "tile": tile})
        identical = np.array_equal(np.load(out).view(np.uint64), np.load(tmp / "fresh.npy").view(np.uint64))
    finally:
        for p in tmp.glob("*"):
            p.unlink()
    s, c = 196, 64
    scratch = _core.scratch_bytes(s, c, 8, True)
    block = tile * s * c * 8
    print(f"\n### Exact `gram(np.load(x, mmap_mode='r'), out=...)`, float32 {shape}, tile={tile}, {threads} threads\n")
    print("| run | time | peak RSS | notes |")
    print("|---|---:|---:|---|")
    print(
        f"| fresh | {fresh['seconds']:.1f} s | {mib(fresh['peak_rss'])} | input {mib(np.prod(shape) * 4)}; "
        f"estimate of the working set: 2 row blocks {mib(2 * block)} + tile {mib(tile * tile * 16)} + "
        f"{threads} × scratch {mib(scratch)} |"
    )
    print(
        f"| killed (SIGKILL) after {delay:.1f} s, then `resume=True` | {resumed['seconds']:.1f} s | "
        f"{mib(resumed['peak_rss'])} | {done.count(1)}/{len(done)} tiles were done; bit-identical to fresh: "
        f"{identical} |"
    )
    del semrsm


def bench_dask(tmp: Path, scale: float) -> None:
    import semrsm
    from distributed import Client, LocalCluster

    n = max(24, int(120 * scale))
    shape = (n, 64, 14, 14)
    x = tmp / "x.npy"
    write_npy(x, shape, 2)
    rows = []
    try:
        local_times = []
        for _ in range(3):
            t = time.perf_counter()
            G = semrsm.gram(str(x), tile=8, progress=False)
            local_times.append(time.perf_counter() - t)
        rows.append(("local (no cluster)", statistics.median(local_times), True))
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
                with Client(cluster) as client:
                    times = []
                    for _ in range(3):
                        t = time.perf_counter()
                        Gd = semrsm.gram(str(x), tile=8, client=client, progress=False, threads=1)
                        times.append(time.perf_counter() - t)
                    same = np.array_equal(np.asarray(Gd).view(np.uint64), G.view(np.uint64))
                    rows.append((f"LocalCluster, {workers} worker process(es), 1 thread each", statistics.median(times), same))
    finally:
        x.unlink()
    pairs = n * (n + 1) // 2
    print(f"\n### Dask `client=`, exact, float32 {shape} from a .npy path, tile=8 ({pairs} pairs), medians of 3\n")
    print("| run | time | pairs/s | vs 1 worker | bit-identical to local |")
    print("|---|---:|---:|---:|---|")
    one = rows[1][1]
    for label, secs, same in rows:
        print(f"| {label} | {secs:.2f} s | {pairs / secs:.0f} | {one / secs:.2f}× | {same} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["rss", "exact", "dask", "all"])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default sample counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="semrsm-bench-") as d:
        tmp = Path(d)
        if args.what in ("rss", "all"):
            bench_rss(tmp, args.scale)
        if args.what in ("exact", "all"):
            bench_exact(tmp, args.scale)
        if args.what in ("dask", "all"):
            bench_dask(tmp, args.scale)


if __name__ == "__main__":
    main()
