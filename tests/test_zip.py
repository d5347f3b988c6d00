"""The zip stage: a merge join by source index that never waits for a partner that will not come."""

from __future__ import annotations

import asyncio

import pytest

from pipework._channel import Channel
from pipework._observe._report import StageStats
from pipework._packet import Packet
from pipework._stages._zip import Zipper


def batch(index, items=None):
    return Packet(list(index), list(index) if items is None else items)


async def drain(channel):
    out = []
    while (b := await channel.take()) is not None:
        out.extend(zip(b.index, b.items, strict=True))
    return out


async def start(zipper, inputs, out, stats):
    task = asyncio.ensure_future(zipper.run("#9 'zip' (zip)", inputs, out, stats))
    await asyncio.sleep(0)
    return task


@pytest.mark.timeout(10)
async def test_items_missing_from_a_branch_are_left_out_once_it_has_passed_them():
    a, b, out = Channel(8), Channel(8), Channel(8)
    stats = StageStats()
    task = await start(Zipper([a.fits, b.fits]), [a, b], out, stats)
    a.put_nowait(batch([0, 1, 2, 3]))
    b.put_nowait(batch([1, 3]))
    a.close()
    b.close()
    await asyncio.wait_for(task, 5)
    out.close()
    assert await drain(out) == [(1, (1, 1)), (3, (3, 3))]
    assert stats.unmatched == 2
    assert stats.items_in == 6


@pytest.mark.timeout(10)
async def test_a_hole_lets_the_zip_go_on_before_the_branch_brings_anything():
    a, b, out = Channel(8), Channel(8), Channel(8)
    stats = StageStats()
    zipper = Zipper([a.fits, b.fits])
    task = await start(zipper, [a, b], out, stats)
    a.put_nowait(batch([0, 1]))
    await asyncio.sleep(0.01)
    assert len(out) == 0  # branch b may still bring 0
    zipper.lanes[1].left(0)  # a filter on branch b dropped it
    b.put_nowait(batch([1]))
    await asyncio.sleep(0.01)
    assert (await out.take()).items == [(1, 1)]
    assert stats.unmatched == 1
    a.close()
    b.close()
    await asyncio.wait_for(task, 5)


@pytest.mark.timeout(10)
async def test_a_hole_that_comes_late_or_early_changes_nothing():
    a, b, out = Channel(8), Channel(8), Channel(8)
    stats = StageStats()
    zipper = Zipper([a.fits, b.fits])
    zipper.lanes[1].left(5)  # heard of before anything came
    task = await start(zipper, [a, b], out, stats)
    b.put_nowait(batch([2]))
    zipper.lanes[1].left(1)  # after a later index: the order already said so
    a.put_nowait(batch([1, 2, 5, 6]))
    b.put_nowait(batch([6]))
    a.close()
    b.close()
    await asyncio.wait_for(task, 5)
    out.close()
    assert [i for i, _ in await drain(out)] == [2, 6]
    assert stats.unmatched == 2


@pytest.mark.timeout(10)
async def test_a_lane_holds_no_more_than_its_limit():
    """A fast branch waits for the slow one rather than fill the zip's memory."""
    a, b, out = Channel(100), Channel(100), Channel(100)
    zipper = Zipper([lambda: 3, lambda: 3])
    task = await start(zipper, [a, b], out, StageStats())
    a.put_nowait(batch(range(50)))
    await asyncio.sleep(0.01)
    assert len(zipper.lanes[0].items) == 3
    assert len(a) == 47
    b.put_nowait(batch(range(50)))
    a.close()
    b.close()
    await asyncio.wait_for(task, 5)
    out.close()
    assert [i for i, _ in await drain(out)] == list(range(50))
