"""Tiles on a Dask cluster: ``semrsm.gram(..., client=client)`` (``pip install 'semrsm[dask]'``).

The client plans the tiles (:class:`semrsm._tiles.Engine`) and sends *groups of tiles* to the
workers. Each task carries the engine (options, centring mean, the input *sources*: a ``.npy``
path, a zarr/dask array, never the data of a file) and reads its own row blocks, then runs the
same Rust tile function as a local run with all the worker's cores. An in-memory numpy input is
scattered to the cluster once (worker to worker afterwards, never through the scheduler). Results
stream back as tasks finish and are written by the caller's sink (memory or ``out=`` with its
sidecar), so progress and resume work as locally, and the result is bit-identical to a local run.

:func:`semrsm.layer_cka` uses the same pieces (:func:`ship`, :func:`stream`, :func:`localize`) with
a task that computes a group of tiles of both layers and returns only their partial sums.

Workers should run one task at a time (``--nthreads 1``; each task uses every core through
semrsm's own thread pool).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Optional

import numpy as np

from ._errors import OptionError
from ._tiles import ArraySource, Engine, Tile

#: Tiles per task (consecutive tiles of one tile row share the row block they read).
TILES_PER_TASK = 4


def localize(engine: Engine, arrays: list[np.ndarray]) -> Engine:
    """On a worker: a copy of a shipped engine with fresh norms and the scattered in-memory
    inputs attached (taken from the front of ``arrays``, x before y)."""
    local = copy.copy(engine)  # tasks on one worker share the deserialised engine
    local.sq_x = np.full(engine.x.n, np.nan)
    local.sq_y = None if engine.y is None else np.full(engine.y.n, np.nan)
    for name in ("x", "y"):
        inp = getattr(local, name)
        if inp is not None and isinstance(inp.source, _Scattered):
            inp = copy.copy(inp)
            inp.source = ArraySource(arrays.pop(0), "array")
            setattr(local, name, inp)
    return local


def todo_of(engine: Engine, tiles: list[Tile]) -> list[bool]:
    """The ``todo`` flags of :meth:`Engine.tiles` for these tiles."""
    todo = [False] * len(engine.plan)
    for t in tiles:
        todo[t.index] = True
    return todo


def _compute_group(engine: Engine, tiles: list[Tile], *arrays: np.ndarray) -> list[tuple[Any, ...]]:
    """Run on a worker: the tiles of one group, from row blocks the worker reads itself."""
    local = localize(engine, list(arrays))
    return list(local.tiles(todo_of(engine, tiles)))


class _Scattered(ArraySource):
    """Placeholder for an in-memory array sent to the cluster separately (by scatter)."""

    def __init__(self, like: ArraySource):
        self.array = None
        self.shape = like.shape
        self.dtype = like.dtype
        self.description = like.description

    def read(self, r0: int, r1: int) -> np.ndarray:  # pragma: no cover - replaced on the worker
        raise RuntimeError("internal: scattered input not attached")


def _groups(engine: Engine, todo: Optional[list[bool]]) -> list[list[Tile]]:
    groups: list[list[Tile]] = []
    for tile in engine.plan:
        if todo is not None and not todo[tile.index]:
            continue
        if groups and groups[-1][0].r0 == tile.r0 and len(groups[-1]) < TILES_PER_TASK:
            groups[-1].append(tile)
        else:
            groups.append([tile])
    return groups


def check_client(client: Any) -> None:
    """``client=`` must be a ``dask.distributed.Client`` (and the extra installed)."""
    try:
        import distributed  # noqa: F401
    except ImportError:  # pragma: no cover - the extra is not installed
        raise OptionError("client= needs dask.distributed: pip install 'semrsm[dask]'") from None
    if not hasattr(client, "submit") or not hasattr(client, "scatter"):
        raise OptionError(f"client must be a dask.distributed.Client, got {type(client).__name__}")


def ship(client: Any, engine: Engine) -> tuple[Any, list[Any]]:
    """Send ``engine`` to every worker once (without norms; in-memory numpy inputs scattered
    separately, file-backed ones as their source): ``(engine_future, scattered_futures)``."""
    shipped = copy.copy(engine)
    shipped.sq_x = np.full(engine.x.n, np.nan)
    shipped.sq_y = None if engine.y is None else np.full(engine.y.n, np.nan)
    scattered = []
    for name in ("x", "y"):
        inp = getattr(engine, name)
        if inp is None:
            continue
        if isinstance(inp.source, ArraySource) and isinstance(inp.source.array, np.ndarray) and not isinstance(
            inp.source.array, np.memmap
        ):
            clone = copy.copy(inp)
            clone.source = _Scattered(inp.source)
            setattr(shipped, name, clone)
            scattered.append(client.scatter(inp.source.array, broadcast=False, hash=False))
    [engine_future] = client.scatter([shipped], broadcast=True, hash=False)
    return engine_future, scattered


def stream(client: Any, groups: list[list[Tile]], task: Callable[[list[Tile]], tuple[Any, ...]], consume: Callable[[Any], None]) -> None:
    """Submit ``task(group)`` (a function and its arguments) for each group, at most two tasks per
    worker in flight, and call ``consume`` with each result as it arrives (completion order)."""
    from distributed import as_completed

    workers = max(1, len(client.scheduler_info().get("workers", {})))
    window = 2 * workers
    pending = as_completed()
    it = iter(groups)
    for group in it:
        fn, *args = task(group)
        pending.add(client.submit(fn, *args, pure=False))
        if pending.count() >= window:
            break
    for future in pending:
        consume(future.result())
        future.release()
        nxt = next(it, None)
        if nxt is not None:
            fn, *args = task(nxt)
            pending.add(client.submit(fn, *args, pure=False))


def run_on_cluster(client: Any, engine: Engine, sink: Any, bar: Any) -> None:
    """Compute the tiles ``sink.todo`` asks for on ``client``'s workers, writing each result to
    ``sink`` as it arrives (at most a few tasks per worker in flight)."""
    check_client(client)
    engine_future, scattered = ship(client, engine)

    def consume(results: list[tuple[Any, ...]]) -> None:
        for tile, G, P, B in results:
            sink.write(tile, G, P, B)
            if bar is not None:
                bar.update(tile.pairs)

    stream(client, _groups(engine, sink.todo), lambda group: (_compute_group, engine_future, group, *scattered), consume)
