"""The batch() stage, run on its own channels: groups by size and by the oldest item's wait.

Each group goes out as one item, a list, under the source index of its first item.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

from pipework._channel import Channel
from pipework._model._specs import BatchSpec
from pipework._observe._report import StageStats
from pipework._packet import Packet
from pipework._stages._batch import run_batch


def spec(size, max_wait=None):
    return BatchSpec(size=size, max_wait=max_wait, name="batch", buffer=None)


async def let_tasks_run(turns=20):
    for _ in range(turns):
        await asyncio.sleep(0)


async def drain(channel):
    out = []
    while (got := await channel.take()) is not None:
        out.extend(zip(got.index, got.items, strict=True))
    return out


async def batches_of(size, packets, **options):
    inp, out, stats = Channel(100), Channel(100), StageStats()
    for packet in packets:
        inp.put_nowait(packet)
    inp.close()
    await run_batch(spec(size, **options), inp, out, stats)
    out.close()
    return await drain(out), stats


async def test_groups_by_size_whatever_the_packets_and_a_short_last_one():
    packets = [Packet(range(100, 103), [0, 1, 2]), Packet(range(103, 104), [3])]
    packets.append(Packet(range(104, 110), [4, 5, 6, 7, 8, 9]))
    got, stats = await batches_of(4, packets)
    assert got == [(100, [0, 1, 2, 3]), (104, [4, 5, 6, 7]), (108, [8, 9])]
    assert (stats.items_in, stats.items_out) == (10, 3)


async def test_each_group_is_indexed_by_its_first_item_after_gaps():
    """After a filter the indexes have holes; a group is still found by its first item."""
    got, _ = await batches_of(2, [Packet([2, 5, 9, 11, 40], ["a", "b", "c", "d", "e"])])
    assert got == [(2, ["a", "b"]), (9, ["c", "d"]), (40, ["e"])]


@pytest.mark.parametrize("max_wait", [None, 0.0])
async def test_an_exact_multiple_has_no_empty_tail_and_nothing_gives_nothing(max_wait):
    got, _ = await batches_of(3, [Packet(range(6), list(range(6)))], max_wait=max_wait)
    assert got == [(0, [0, 1, 2]), (3, [3, 4, 5])]
    empty, stats = await batches_of(3, [], max_wait=max_wait)
    assert empty == []
    assert stats.items_out == 0


async def test_a_batch_larger_than_its_input_channel_fills_over_several_takes():
    inp, out = Channel(2), Channel(10)

    async def produce():
        for i in range(7):
            await inp.put(Packet([i], [i]))
        inp.close()

    producer = asyncio.create_task(produce())
    await run_batch(spec(5), inp, out, StageStats())
    await producer
    out.close()
    assert await drain(out) == [(0, [0, 1, 2, 3, 4]), (5, [5, 6])]


async def test_without_max_wait_a_batch_waits_to_be_full():
    inp, out = Channel(10), Channel(10)
    task = asyncio.create_task(run_batch(spec(3), inp, out, StageStats()))
    for i in range(2):
        inp.put_nowait(Packet([i], [i]))
        await let_tasks_run()
    assert len(out) == 0
    inp.put_nowait(Packet([2], [2]))
    await let_tasks_run()
    assert (await out.take()).items == [[0, 1, 2]]
    inp.close()
    await task


async def test_max_wait_sends_a_partial_batch_while_the_input_is_idle():
    inp, out = Channel(10), Channel(10)
    task = asyncio.create_task(run_batch(spec(10, max_wait=0.01), inp, out, StageStats()))
    inp.put_nowait(Packet(range(2), ["a", "b"]))
    with anyio.fail_after(10):
        first = await out.take()
    assert (list(first.index), first.items) == ([0], [["a", "b"]])
    assert not task.done()  # the input is open: more batches may come
    inp.put_nowait(Packet(range(2, 3), ["c"]))
    inp.close()
    await task
    out.close()
    assert await drain(out) == [(2, ["c"])]


async def test_the_clock_starts_at_a_batch_first_item_so_idle_input_sends_nothing():
    inp, out = Channel(10), Channel(10)
    task = asyncio.create_task(run_batch(spec(4, max_wait=0), inp, out, StageStats()))
    await let_tasks_run()
    assert len(out) == 0  # no empty batches, however long the wait has been passed
    assert not task.done()
    inp.put_nowait(Packet([7], ["x"]))
    with anyio.fail_after(10):
        assert (await out.take()).items == [["x"]]
    await let_tasks_run()
    assert len(out) == 0
    inp.close()
    await task
