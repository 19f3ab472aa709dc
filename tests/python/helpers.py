"""Helpers shared by the scale tests (``test_scale.py``, ``test_out_extras.py``,
``test_out_sigma.py``, ``test_layer_cka_scale.py``): a crash injected after ``k`` tiles, a run
killed with SIGKILL once some tiles are on disk, and the peak-RSS growth of a fresh process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Sequence

import pytest


class Crash(Exception):
    """Raised by :func:`crash_after` in place of the ``k + 1``-th tile."""


def crash_after(monkeypatch: Any, owner: Any, name: str, k: int) -> list[int]:
    """Wrap ``owner.name(_, tile, ...)`` so that it raises :class:`Crash` after ``k`` calls.

    Returns the list that collects the ``index`` of every tile computed (the tile is the second
    positional argument: ``Engine.compute(self, tile, ...)``, ``_tile_partials(rows, tile, ...)``).
    """
    computed: list[int] = []
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(computed) >= k:
            raise Crash()
        computed.append(args[1].index)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return computed


def tiles_done(sidecar: Path) -> int:
    """How many tiles a resume sidecar (``*.partial.tiles``) marks as finished."""
    return sidecar.read_bytes().split(b"\n", 1)[-1].count(1)


def kill_after_tiles(script: str, args: Sequence[str], sidecar: Path, tiles: int = 3) -> None:
    """Run ``script`` in a fresh interpreter and SIGKILL it once ``sidecar`` marks ``tiles``
    tiles finished; skips the test when the run finishes before it could be killed."""
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if sidecar.exists() and tiles_done(sidecar) >= tiles:
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be killed")
    assert tiles_done(sidecar) >= tiles


def peak_rss_growth(warm_up: str, call: str) -> str:
    """Run ``warm_up`` then ``call`` in a fresh process (``x``: 4000 standard normal samples of
    shape (1, 1, 1)); returns its stdout: the growth of the peak RSS (VmHWM, bytes) during
    ``call``, then whatever ``call`` printed after it (``call`` may bind ``extra``)."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc (Linux)")
    script = textwrap.dedent(
        """
        import numpy as np, semrsm
        def hwm():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) * 1024
        x = np.random.default_rng(0).normal(size=(4000, 1, 1, 1))
        extra = ""
        {warm_up}
        before = hwm()
        {call}
        print(hwm() - before, extra)
        """
    ).format(warm_up=warm_up, call=call)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


ISAS = ("portable", "avx2", "avx512")


def per_isa(script: str, tmp_path: Path) -> dict[str, list[Any]]:
    """Run ``script`` (Python source that saves its results with ``np.savez(sys.argv[1], *out)``)
    in a fresh interpreter once per instruction set (``SEMRSM_ISA``, which can only lower what
    the CPU has), and return each run's arrays in the order saved."""
    import numpy as np

    results = {}
    for isa in ISAS:
        path = tmp_path / f"{isa}.npz"
        env = dict(os.environ, SEMRSM_ISA=isa)
        subprocess.run([sys.executable, "-c", script, str(path)], env=env, check=True)
        with np.load(path) as f:
            results[isa] = [f[f"arr_{k}"] for k in range(len(f.files))]
    return results


#: Python source defining ``token_affinity(rng, n, c)`` for the scripts given to :func:`per_isa`:
#: ``X @ Yᵀ`` of two sets of ``n`` ViT-like tokens of ``c`` channels (noise around 12 shared
#: concepts, each token scaled by 0.5-1.7), drawn from ``rng`` in a fixed order.
TOKEN_AFFINITY = """
def token_affinity(rng, n, c):
    concepts = rng.normal(size=(12, c))
    tokens = lambda: (rng.normal(size=(n, c)) + concepts[rng.integers(0, 12, n)]) * rng.uniform(0.5, 1.7, (n, 1))
    return tokens() @ tokens().T
"""
