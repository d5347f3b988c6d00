"""Batch stages: group items into lists by size, and by how long the oldest has waited."""

from __future__ import annotations

from typing import Any

import anyio

from .._channel import Channel, Sender, take_until
from .._model._specs import BatchSpec
from .._observe._report import StageStats
from .._packet import Packet


async def run_batch(spec: BatchSpec, inp: Channel[Any], out: Sender, stats: StageStats) -> None:
    """Emit a list when it has ``size`` items, or when its first item has waited ``max_wait``.

    The clock starts when a batch's first item arrives, never before, so an
    idle stream emits no empty or stale batches.
    """
    size, max_wait = spec.size, spec.max_wait
    while (first := await inp.take(size)) is not None:
        deadline = None if max_wait is None else anyio.current_time() + max_wait
        parts, ended = await take_until(inp, size - len(first), deadline)
        items = [item for part in (first, *parts) for item in part.items]
        stats.items_in += len(items)
        stats.items_out += 1
        await out.put(Packet((first.index[0],), [items]))
        if ended:
            return
