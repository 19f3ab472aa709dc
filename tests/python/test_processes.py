"""semrsm works in child processes: after ``fork`` (the default of ``multiprocessing`` on Linux,
PyTorch ``DataLoader`` workers, joblib) and with ``spawn``/``forkserver``, with the same bits."""

from __future__ import annotations

import multiprocessing
import sys

import numpy as np
import pytest

import semrsm

#: Generous: the work takes milliseconds; a child that hangs (the bug) never answers.
TIMEOUT = 120.0


def _data() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(6, 4, 3, 3))


def _work(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _data()
    return (
        semrsm.gram(x),
        semrsm.build(x, kernel="rbf", matcher="greedy", threads=2),
        semrsm.linear_sum_assignment(np.random.default_rng(seed).random((40, 40)))[1],
    )


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_children_get_the_parents_bits(method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available on {sys.platform}")
    expected = _work(0)  # the parent's pools exist before the children start
    context = multiprocessing.get_context(method)
    with context.Pool(2) as pool:
        results = [pool.apply_async(_work, (0,)) for _ in range(3)]
        for r in results:
            got = r.get(timeout=TIMEOUT)
            for a, b in zip(expected, got):
                np.testing.assert_array_equal(a, b)


def test_fork_then_fork_again() -> None:
    """A grandchild forked from a child that had built its own pools works too."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    expected = _work(1)[0]
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_nested, args=(queue,))  # not daemonic: may have children
    child.start()
    try:
        got = queue.get(timeout=TIMEOUT)
    finally:
        child.join(timeout=TIMEOUT)
        if child.is_alive():
            child.kill()
    np.testing.assert_array_equal(expected, got)


def _nested(queue: "multiprocessing.Queue[np.ndarray]") -> None:
    semrsm.gram(_data())  # the child builds pools of its own ...
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:  # ... and forks again
        queue.put(pool.apply_async(_work, (1,)).get(timeout=TIMEOUT)[0])
