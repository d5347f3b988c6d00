"""Merge and partition: many inputs into one output, and one input into many."""

from __future__ import annotations

from typing import Any

from .._channel import Channel, Sender
from .._errors import annotate
from .._model._specs import PartitionSpec
from .._observe._report import StageStats
from .._packet import Packet
from .._tasks import FailFastGroup


async def run_merge(inputs: list[Channel[Any]], out: Sender, stats: StageStats) -> None:
    """Pass on every packet of every input as it comes; the output ends when they all have."""

    async def forward(inp: Channel[Any]) -> None:
        while (packet := await inp.take()) is not None:
            stats.items_in += len(packet)
            stats.items_out += len(packet)
            await out.put(packet)

    async with FailFastGroup() as group:
        for inp in inputs:
            group.spawn(forward, inp)


async def run_partition(
    spec: PartitionSpec, label: str, inp: Channel[Any], outs: list[Sender], stats: StageStats
) -> None:
    """Send each item to part ``key(item) % n`` (by hash for a key that is not an int), in order.

    The key runs on the event loop, as an inline stage's function does. A
    key that raises fails the run, since the item would have nowhere to go.
    """
    key, parts = spec.key, spec.parts
    while (packet := await inp.take()) is not None:
        stats.items_in += len(packet)
        index: list[list[int]] = [[] for _ in range(parts)]
        items: list[list[Any]] = [[] for _ in range(parts)]
        for i, item in zip(packet.index, packet.items, strict=True):
            try:
                k = key(item)
                part = (k if isinstance(k, int) else hash(k)) % parts
            except Exception as exc:
                raise annotate(exc, label, i, item) from exc
            index[part].append(i)
            items[part].append(item)
        for part, out in enumerate(outs):
            if items[part]:
                stats.items_out += len(items[part])
                await out.put(Packet(index[part], items[part]))
