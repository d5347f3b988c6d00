"""Batch stages: group items into lists by size, and by how long the oldest has waited."""

from __future__ import annotations

from typing import Any

import anyio

from .._batch import Batch
from .._channel import Channel
from .._report import StageStats
from .._specs import BatchSpec


async def run_batch(
    spec: BatchSpec, inp: Channel[Any], out: Channel[Any], stats: StageStats
) -> None:
    """Emit a list when it has ``size`` items, or when its first item has waited ``max_wait``.

    The clock starts when a batch's first item arrives, never before, so an
    idle stream emits no empty or stale batches.
    """
    size, max_wait = spec.size, spec.max_wait
    while (first := await inp.take(size)) is not None:
        stats.items_in += len(first)
        items = list(first.items)
        deadline = None if max_wait is None else anyio.current_time() + max_wait
        ended = await _fill(inp, items, size, deadline, stats)
        stats.items_out += 1
        await out.put(Batch((first.index[0],), [items]))
        if ended:
            return


async def _fill(
    inp: Channel[Any], items: list[Any], size: int, deadline: float | None, stats: StageStats
) -> bool:
    """Add to ``items`` until it has ``size`` or the deadline passes; return if input ended."""
    while len(items) < size:
        timeout = None if deadline is None else max(0.0, deadline - anyio.current_time())
        # Past the deadline this still takes what is already waiting: take()
        # returns without suspending when it can, and only a suspension is
        # cancelled.
        with anyio.move_on_after(timeout) as scope:
            got = await inp.take(size - len(items))
        if scope.cancelled_caught:
            return False
        if got is None:
            return True
        stats.items_in += len(got)
        items.extend(got.items)
    return False
