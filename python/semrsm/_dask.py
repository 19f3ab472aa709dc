"""Tiles on a Dask cluster: ``semrsm.gram(..., client=client)`` (``pip install 'semrsm[dask]'``).

The client plans the tiles (:class:`semrsm._tiles.Engine`) and sends *groups of tiles* to the
workers. Each task carries the engine (options, centring mean, the input *sources*: a ``.npy``
path, a zarr/dask array, never the data of a file) and reads its own row blocks, then runs the
same Rust tile function as a local run with all the worker's cores. An in-memory numpy input is
scattered to the cluster once (worker to worker afterwards, never through the scheduler). Results
stream back as tasks finish and are written by the caller's sink (memory or ``out=`` with its
sidecar), so progress and resume work as locally, and the result is bit-identical to a local run.

Workers should run one task at a time (``--nthreads 1``; each task uses every core through
semrsm's own thread pool).
"""

from __future__ import annotations

import copy
from typing import Any, Optional

import numpy as np

from ._errors import OptionError
from ._tiles import ArraySource, Engine, Tile

#: Tiles per task (consecutive tiles of one tile row share the row block they read).
TILES_PER_TASK = 4


def _compute_group(engine: Engine, tiles: list[Tile], *arrays: np.ndarray) -> list[tuple[Any, ...]]:
    """Run on a worker: the tiles of one group, from row blocks the worker reads itself."""
    local = copy.copy(engine)  # tasks on one worker share the deserialised engine
    local.sq_x = np.full(engine.x.n, np.nan)
    local.sq_y = None if engine.y is None else np.full(engine.y.n, np.nan)
    attach = list(arrays)
    for name in ("x", "y"):
        inp = getattr(local, name)
        if inp is not None and isinstance(inp.source, _Scattered):
            inp = copy.copy(inp)
            inp.source = ArraySource(attach.pop(0), "array")
            setattr(local, name, inp)
    todo = [False] * len(engine.plan)
    for t in tiles:
        todo[t.index] = True
    return list(local.tiles(todo))


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


def run_on_cluster(client: Any, engine: Engine, sink: Any, bar: Any) -> None:
    """Compute the tiles ``sink.todo`` asks for on ``client``'s workers, writing each result to
    ``sink`` as it arrives (at most a few tasks per worker in flight)."""
    try:
        from distributed import as_completed
    except ImportError:  # pragma: no cover - the extra is not installed
        raise OptionError("client= needs dask.distributed: pip install 'semrsm[dask]'") from None
    if not hasattr(client, "submit") or not hasattr(client, "scatter"):
        raise OptionError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
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
    groups = _groups(engine, sink.todo)
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    window = 2 * workers
    pending = as_completed()
    it = iter(groups)
    for group in it:
        pending.add(client.submit(_compute_group, engine_future, group, *scattered, pure=False))
        if pending.count() >= window:
            break
    for future in pending:
        for tile, G, P, B in future.result():
            sink.write(tile, G, P, B)
            if bar is not None:
                bar.update(tile.pairs)
        future.release()
        nxt = next(it, None)
        if nxt is not None:
            pending.add(client.submit(_compute_group, engine_future, nxt, *scattered, pure=False))
