"""Batch stages: group items into lists by size, and by how long the oldest has waited."""

from __future__ import annotations

from typing import Any

import anyio

from .._batch import Batch
from .._channel import Channel
from .._report import StageStats
from .._specs import BatchSpec


async def run_batch(spec: BatchSpec, inp: Channel[Any], out: Channel[Any], stats: StageStats) -> None:
    """Emit a list when it has ``size`` items, or when its first item has waited ``max_wait``.

    The clock starts when a batch's first item arrives, never before, so an
    idle stream does not emit empty or stale batches.
    """
    size, max_wait = spec.size, spec.max_wait
    items: list[Any] = []
    first_index = 0
    deadline = 0.0

    async def flush() -> None:
        nonlocal items
        stats.items_out += 1
        batch, items = items, []
        await out.put(Batch((first_index,), [batch]))

    while True:
        if items and max_wait is not None:
            # At the deadline this still takes what is already waiting, and
            # only then gives up: take() returns at once when it can.
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                got = await inp.take(size - len(items))
                if got is None:
                    break
                _extend(items, got, stats)
            if len(items) == size or (items and anyio.current_time() >= deadline):
                await flush()
            continue
        got = await inp.take(size - len(items))
        if got is None:
            break
        if not items:
            first_index = got.index[0]
            if max_wait is not None:
                deadline = anyio.current_time() + max_wait
        _extend(items, got, stats)
        if len(items) == size:
            await flush()
    if items:
        await flush()


def _extend(items: list[Any], got: Batch[Any], stats: StageStats) -> None:
    stats.items_in += len(got)
    items.extend(got.items)
