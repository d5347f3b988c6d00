"""Window, the engine of concurrent stages: bounded work in flight, outputs in order.

Driven as `run_async` and `run_pooled` drive it, from an input channel to an
output channel with a job per chunk, with no stage around it.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

from pipework._channel import Channel
from pipework._observe._report import StageStats
from pipework._packet import Packet
from pipework._stages._window import Window


def packet(items, start=0):
    return Packet(range(start, start + len(items)), list(items))


async def let_tasks_run(turns=20):
    for _ in range(turns):
        await asyncio.sleep(0)


async def drain(channel):
    out = []
    while (got := await channel.take()) is not None:
        out.extend(zip(got.index, got.items, strict=True))
    return out


def window(inp, out, job, *, running=1, window=2, ordered=True, chunk=1, **options):
    return Window(
        inp,
        out,
        job,
        running=running,
        window=window,
        ordered=ordered,
        chunk=lambda: chunk,
        stats=options.pop("stats", StageStats()),
        **options,
    )


class Gated:
    """A job that holds each chunk until its first item's gate opens, and records the chunks."""

    def __init__(self, *held):
        self.gates = {i: asyncio.Event() for i in held}
        self.chunks = []

    async def __call__(self, chunk):
        self.chunks.append(list(chunk.items))
        if (gate := self.gates.get(chunk.index[0])) is not None:
            await gate.wait()
        return Packet(chunk.index, [x * 10 for x in chunk.items])


@pytest.mark.parametrize("ordered", [True, False])
async def test_results_come_in_input_order_or_as_they_finish(ordered):
    inp, out = Channel(10), Channel(10)
    job = Gated(0, 1, 2, 3)
    inp.put_nowait(packet(range(4)))
    inp.close()
    task = asyncio.create_task(window(inp, out, job, running=4, window=4, ordered=ordered).run())
    await let_tasks_run()
    assert job.chunks == [[0], [1], [2], [3]]
    for i in (3, 1, 2, 0):  # finish back to front, but for the middle
        job.gates[i].set()
        await let_tasks_run()
    await task
    out.close()
    got = await drain(out)
    expected = [0, 1, 2, 3] if ordered else [3, 1, 2, 0]
    assert got == [(i, i * 10) for i in expected]


@pytest.mark.parametrize(("running", "bound"), [(1, 1), (3, 6), (4, 4)])
async def test_never_more_than_the_window_taken_and_not_emitted(running, bound):
    """Jobs of uneven length: finished results wait behind a slow one, up to the bound."""
    stats = StageStats()
    in_flight, concurrent = [], [0]
    most = [0]

    async def job(chunk):
        in_flight.append(stats.items_in - stats.items_out)
        concurrent[0] += 1
        most[0] = max(most[0], concurrent[0])
        first = chunk.index[0]
        for _ in range(50 if first % 10 == 0 else first % 3):
            await asyncio.sleep(0)
        concurrent[0] -= 1
        return chunk

    inp, out = Channel(200), Channel(200)
    inp.put_nowait(packet(range(200)))
    inp.close()
    await window(inp, out, job, running=running, window=bound, stats=stats).run()
    out.close()
    assert [i for i, _ in await drain(out)] == list(range(200))
    assert max(in_flight) == bound  # reached, and never passed
    assert most[0] == running
    assert stats.items_in == stats.items_out == 200


async def test_a_slow_job_stops_the_taking_at_the_window():
    inp, out, stats = Channel(20), Channel(20), StageStats()
    job = Gated(0)
    inp.put_nowait(packet(range(20)))
    task = asyncio.create_task(window(inp, out, job, running=8, window=5, stats=stats).run())
    await let_tasks_run()
    assert stats.items_in == 5
    assert len(inp) == 15  # the rest wait in the channel, where they are counted
    assert len(out) == 0  # 1 to 4 are done, behind 0
    job.gates[0].set()
    inp.close()
    await task
    assert stats.items_out == 20


async def test_the_limit_bounds_items_however_chunks_are_sized():
    inp, out, stats = Channel(30), Channel(30), StageStats()
    job = Gated(0)
    inp.put_nowait(packet(range(30)))
    run = window(inp, out, job, running=4, window=8, chunk=2, stats=stats, limit=5).run()
    task = asyncio.create_task(run)
    await let_tasks_run()
    assert job.chunks == [[0, 1], [2, 3], [4]]  # the last chunk gets only the room left
    assert stats.items_in == 5
    job.gates[0].set()
    inp.close()
    await task
    out.close()
    assert [i for i, _ in await drain(out)] == list(range(30))
    assert all(len(chunk) <= 2 for chunk in job.chunks)


async def test_max_wait_fills_a_chunk_even_with_a_worker_free():
    inp, out = Channel(10), Channel(10)
    job = Gated()
    task = asyncio.create_task(window(inp, out, job, running=2, chunk=5, max_wait=60).run())
    inp.put_nowait(packet(range(2)))
    await let_tasks_run()
    assert job.chunks == []  # without max_wait, [0, 1] would have gone at once
    inp.put_nowait(packet(range(2, 7), start=2))
    await let_tasks_run()
    assert job.chunks == [[0, 1, 2, 3, 4]]
    inp.close()
    await task
    assert job.chunks == [[0, 1, 2, 3, 4], [5, 6]]


async def test_max_wait_sends_a_short_chunk_once_it_has_passed():
    inp, out = Channel(10), Channel(10)
    called = asyncio.Event()

    async def job(chunk):
        called.set()
        return chunk

    task = asyncio.create_task(window(inp, out, job, chunk=5, max_wait=0.01).run())
    inp.put_nowait(packet(range(2)))
    with anyio.fail_after(10):
        await called.wait()
        assert (await out.take()).items == [0, 1]
    assert not task.done()  # the input is still open
    inp.close()
    await task


async def test_a_short_chunk_is_topped_up_while_the_producer_keeps_putting():
    inp, out = Channel(2), Channel(10)
    job = Gated()

    async def produce():
        for i in range(6):
            await inp.put(packet([i], start=i))
        inp.close()

    producer = asyncio.create_task(produce())
    await window(inp, out, job, running=4, window=8, chunk=6).run()
    await producer
    assert job.chunks == [[0, 1, 2, 3, 4, 5]]  # though the channel held 2 at a time


async def test_a_lone_item_goes_at_once_when_no_more_come():
    inp, out = Channel(10), Channel(10)
    job = Gated()
    task = asyncio.create_task(window(inp, out, job, chunk=6).run())
    inp.put_nowait(packet([7]))
    await let_tasks_run()
    assert job.chunks == [[7]]
    inp.close()
    await task


async def test_while_every_slot_is_busy_the_next_chunk_grows():
    inp, out = Channel(10), Channel(10)
    job = Gated(0)
    task = asyncio.create_task(window(inp, out, job, running=1, window=4, chunk=4).run())
    for i in range(3):
        inp.put_nowait(packet([i], start=i))
        await let_tasks_run()
    assert job.chunks == [[0]]  # 1 and 2 wait in the next chunk, not as a chunk each
    job.gates[0].set()
    await let_tasks_run()
    assert job.chunks == [[0], [1, 2]]  # a free slot sends it as it is
    inp.close()
    await task
    out.close()
    assert [i for i, _ in await drain(out)] == [0, 1, 2]


@pytest.mark.parametrize(("share_tail", "chunks"), [(True, [3, 3, 3, 1]), (False, [8, 2])])
async def test_the_last_items_are_shared_out_over_the_slots_once_the_input_is_closed(
    share_tail, chunks
):
    inp, out = Channel(20), Channel(20)
    job = Gated()
    inp.put_nowait(packet(range(10)))
    inp.close()  # all that is left: 10 items, 4 slots
    run = window(inp, out, job, running=4, window=8, chunk=8, share_tail=share_tail).run()
    await run
    out.close()
    assert [len(chunk) for chunk in job.chunks] == chunks
    assert [i for i, _ in await drain(out)] == list(range(10))


async def test_a_failed_job_ends_the_run_with_its_error():
    inp, out = Channel(10), Channel(10)
    others_cancelled = asyncio.Event()

    async def job(chunk):
        if chunk.index[0] == 1:
            raise ValueError("bad chunk")
        try:
            await asyncio.Event().wait()
        finally:
            others_cancelled.set()

    inp.put_nowait(packet(range(3)))
    with anyio.fail_after(10), pytest.raises(ValueError, match="bad chunk"):
        await window(inp, out, job, running=3, window=3).run()
    assert others_cancelled.is_set()
