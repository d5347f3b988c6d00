"""Merge and partition stages: many inputs into one output, one input into many."""

from __future__ import annotations

import asyncio

import pytest

from pipework._channel import Channel
from pipework._model._specs import partition_spec
from pipework._observe._report import StageStats
from pipework._packet import Packet
from pipework._stages._merge import run_merge, run_partition


async def drain(channel):
    out = []
    while (b := await channel.take()) is not None:
        out.extend(zip(b.index, b.items, strict=True))
    return out


@pytest.mark.timeout(10)
async def test_merge_ends_when_every_input_has_ended():
    a, b, out = Channel(4), Channel(4), Channel(2)
    stats = StageStats()
    task = asyncio.ensure_future(run_merge([a, b], out, stats))
    a.put_nowait(Packet(range(3), ["a0", "a1", "a2"]))
    a.close()
    reader = asyncio.ensure_future(drain(out))
    await asyncio.sleep(0.01)
    assert not task.done()  # b is still open
    b.put_nowait(Packet(range(2), ["b0", "b1"]))
    b.close()
    await asyncio.wait_for(task, 5)
    out.close()
    got = await reader
    assert sorted(item for _, item in got) == ["a0", "a1", "a2", "b0", "b1"]
    assert stats.items_in == stats.items_out == 5


@pytest.mark.timeout(10)
async def test_partition_keeps_each_item_its_index_and_order():
    spec = partition_spec(3, lambda x: x, buffer=8, name=None)
    inp = Channel(16)
    outs = [Channel(16) for _ in range(3)]
    inp.put_nowait(Packet(range(10), list(range(10))))
    inp.close()
    await run_partition(spec, "#1 'key' (partition)", inp, outs, StageStats())
    for part, out in enumerate(outs):
        out.close()
        assert await drain(out) == [(i, i) for i in range(part, 10, 3)]
