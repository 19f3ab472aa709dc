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


# ----------------------------------------------------------------------------
# every public function, after fork
# ----------------------------------------------------------------------------


def _affinity() -> np.ndarray:
    v = _data().reshape(6, 4, 9).transpose(0, 2, 1)  # (N, S, C) = (6, 9, 4)
    return v[0] @ v[1].T


def _rsms() -> tuple[np.ndarray, np.ndarray]:
    x = _data()
    return semrsm.build(x, kernel="rbf"), semrsm.build(x, kernel="linear", matcher="none")


def _sparse_cost() -> np.ndarray:
    rng = np.random.default_rng(8)
    return np.where(rng.random((60, 60)) < 0.3, rng.random((60, 60)), np.inf)


#: One call (or a few) per public function that does numerical work; each returns arrays/floats.
CALLS = {
    "gram": lambda: [semrsm.gram(_data(), matcher=m) for m in semrsm.MATCHERS],
    "gram_threads": lambda: semrsm.gram(_data(), threads=2, return_bound=True),
    "build": lambda: [semrsm.build(_data(), kernel=k) for k in ("linear", "cosine", "rbf")],
    "cka": lambda: [semrsm.cka(*_rsms()), semrsm.cka(*_rsms(), debiased=True), semrsm.hsic(*_rsms())],
    "center_gram": lambda: semrsm.center_gram(_rsms()[0], unbiased=True),
    "linear_sum_assignment": lambda: [
        semrsm.linear_sum_assignment(np.random.default_rng(5).random((120, 120)), maximize=True),
        semrsm.linear_sum_assignment(_sparse_cost()),
    ],
    "match_affinity": lambda: [
        semrsm.match_affinity(_affinity(), matcher=m, return_bound=True) for m in ("exact", "auction")
    ],
    "certified_gap": lambda: semrsm.certified_gap(*semrsm.gram(_data(), matcher="auction", return_bound=True)),
}


def _call(name: str):
    return CALLS[name]()


def _assert_same(a, b) -> None:
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b)
        for u, v in zip(a, b):
            _assert_same(u, v)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_public_function_in_forked_children(name: str) -> None:
    """After the parent has used semrsm (pools and all), forked children get the same bits."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    for other in CALLS:  # the parent uses everything first, as a real pipeline would
        _call(other)
    expected = _call(name)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = [pool.apply_async(_call, (name,)) for _ in range(2)]
        for r in results:
            _assert_same(expected, r.get(timeout=TIMEOUT))


# ----------------------------------------------------------------------------
# torch DataLoader workers (skipped without torch)
# ----------------------------------------------------------------------------


class _RSMDataset:
    """A map-style dataset whose items call semrsm inside the DataLoader's worker processes (a
    plain class: DataLoader only needs ``__len__``/``__getitem__``, and it pickles for spawn)."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> tuple[int, np.ndarray, np.ndarray]:
        x = _data() * (index + 1)
        return index, semrsm.build(x, kernel="cosine"), semrsm.gram(x, matcher="auction")


def _no_collate(item):
    return item


@pytest.mark.parametrize("context", [None, "fork", "spawn"])
def test_torch_dataloader_workers_call_semrsm(context) -> None:
    torch = pytest.importorskip("torch")
    if context is not None and context not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{context} is not available on {sys.platform}")
    dataset = _RSMDataset()
    expected = [dataset[i] for i in range(len(dataset))]  # the parent's pools exist first
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,  # items as they are ...
        collate_fn=_no_collate,  # ... not converted to tensors
        num_workers=2,
        multiprocessing_context=context,  # None: torch's default (fork on Linux)
        timeout=TIMEOUT,  # a hung worker raises instead of blocking the test run
    )
    got = sorted(loader, key=lambda item: item[0])
    assert [item[0] for item in got] == list(range(len(dataset)))
    for (_, K, G), (_, K0, G0) in zip(got, expected):
        np.testing.assert_array_equal(K, K0)
        np.testing.assert_array_equal(G, G0)
