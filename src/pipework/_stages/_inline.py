"""Inline stages: a plain function applied on the event loop, a packet at a time.

This is for cheap transforms, such as ``.map(str)``; they cost less inline
than any hand-off to a thread would. Work that blocks belongs on
``on="thread"``, and CPU-heavy work on ``on="process"``.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from .._channel import Channel, Sender
from .._model._specs import MapSpec
from .._observe._report import StageStats
from .._packet import Packet
from .._worker._ops import apply
from ._common import Step, bind, policy_of, run_with_policy


async def run_inline(
    spec: MapSpec, label: str, inp: Channel[Any], out: Sender, stats: StageStats
) -> None:
    """Apply the stage's function to each packet as it arrives."""
    call = await bind(spec, label)
    op = spec.op
    policy = policy_of(spec, label, stats)

    async def attempt(packet: Packet[Any]) -> Step:
        start = perf_counter()
        try:
            return apply(call, op, packet.items)
        finally:
            elapsed = perf_counter() - start
            stats.busy += elapsed
            stats.latency.add(elapsed / len(packet), len(packet))

    # At most what its output holds, read before each take: the outputs it
    # makes wait here for room, so a small buffer, or a channel bounded in
    # bytes, after a stage that makes large items keeps it small.
    limit = spec.max_in_flight
    while True:
        inp.wants = out.wants  # what a chunking stage after it takes, it takes too
        packet = await inp.take(min(out.fits(), limit or out.capacity))
        if packet is None:
            return
        stats.items_in += len(packet)
        result = await run_with_policy(op, packet, attempt, policy, label)
        if len(result):
            stats.items_out += len(result)
            await out.put(result)
