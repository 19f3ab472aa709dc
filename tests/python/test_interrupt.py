"""The core releases the GIL while it works and stops promptly on Ctrl-C."""

from __future__ import annotations

import _thread
import threading
import time

import numpy as np
import pytest

import semrsm

pytestmark = pytest.mark.usefixtures("python_sigint")


def _long_problem() -> np.ndarray:
    # 5050 exact matchings of 400 positions: tens of seconds single-threaded.
    return np.random.default_rng(0).normal(size=(100, 400, 8))


def test_ctrl_c_interrupts_a_long_exact_gram() -> None:
    x = _long_problem()
    timer = threading.Timer(0.5, _thread.interrupt_main)
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            semrsm.gram(x, matcher="exact", layout="nsc", threads=1)
    finally:
        timer.cancel()
    # Uninterrupted, the call takes far longer; after the interrupt the core stops within a pair.
    assert time.perf_counter() - start < 10.0


def test_other_python_threads_run_while_the_core_works() -> None:
    x = _long_problem()[:40, :200]
    done = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            semrsm.gram(x, matcher="exact", layout="nsc", threads=1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=work)
    worker.start()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert not errors
    # With the GIL held for the whole computation this loop could not advance while it runs.
    assert ticks > 20


def test_ctrl_c_interrupts_inside_one_long_pair() -> None:
    # One pair (N = 2) of 3000 positions: a single exact matching (about a second unloaded).
    # The core polls the cancel flag inside the matcher, so Ctrl-C stops that pair; that it
    # stops *inside* the pair (not after it) is asserted in tests/rsm.rs
    # (cancel_interrupts_inside_one_long_pair), which does not depend on timing.
    x = np.random.default_rng(5).normal(size=(2, 3000, 4))
    for return_bound in (False, True):
        timer = threading.Timer(0.2, _thread.interrupt_main)
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                semrsm.gram(
                    x, matcher="exact", layout="nsc", threads=1, return_bound=return_bound
                )
                # A machine so loaded that the pair finished before the timer fired: the
                # interrupt arrives here and is raised all the same.
                time.sleep(60)
        finally:
            timer.cancel()
