"""Stream: reading a running graph's outputs with ``async for``, and stopping it early.

Each test builds the graph with `Pipeline` and hands it to `Stream` itself.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import multiprocessing

import anyio
import pytest

from pipework import Pipeline
from pipework._stream import Stream


def counted(pulled):
    """An endless source that counts the items taken from it."""
    for i in itertools.count():
        pulled.append(i)
        yield i


def fails_on_3(x):
    if x == 3:
        raise ValueError("three")
    return x


async def let_tasks_run(turns=20):
    for _ in range(turns):
        await asyncio.sleep(0)


async def read_into(out, stream):
    async for x in stream:
        out.append(x)  # kept as they come: what came before the error


def other_tasks():
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_outputs_come_in_order_and_the_report_once_they_end():
    stream = Stream(Pipeline(range(30), buffer=4).map(lambda x: x + 1, buffer=4)._graph)
    out = []
    async for x in stream:
        out.append(x)
        assert stream.report is None
    assert out == list(range(1, 31))
    assert stream.report["<lambda>"].items_out == 30


async def test_nothing_runs_until_it_is_entered_or_read():
    pulled = []
    stream = Stream(Pipeline(counted(pulled))._graph)
    await let_tasks_run()
    assert pulled == []
    await stream.aclose()  # never started: nothing to stop
    assert other_tasks() == []


async def test_whole_runs_come_out_as_they_arrived_after_what_was_read():
    stream = Stream(Pipeline(range(6))._graph)
    async with stream:
        assert await stream.__anext__() == 0
        assert await stream._next_packet() == [1, 2, 3, 4, 5]  # the rest of the first run
        assert await stream._next_packet() is None
    assert stream.report is not None


async def test_breaking_out_of_async_with_stops_the_run_and_its_workers():
    pulled = []
    pipeline = Pipeline(counted(pulled), buffer=2).map(abs, on="process", workers=1, buffer=2)
    with anyio.fail_after(60):
        async with Stream(pipeline._graph) as outputs:
            async for x in outputs:
                if x == 3:
                    break
    assert multiprocessing.active_children() == []  # gone before the block ended
    assert other_tasks() == []
    assert outputs._task.cancelled()
    assert outputs.report is None
    read = len(pulled)
    await let_tasks_run()
    assert len(pulled) == read  # the source is read no more


async def test_an_abandoned_stream_cancels_its_run():
    pulled = []
    stream = Stream(Pipeline(counted(pulled), buffer=2)._graph)
    async for _ in stream:
        break
    task = stream._task
    del stream
    gc.collect()
    with anyio.fail_after(10):
        await asyncio.wait([task])
    assert task.cancelled()


async def test_a_failure_is_raised_from_the_async_for_after_the_outputs_before_it():
    pipeline = Pipeline(range(10), buffer=1).map(fails_on_3, buffer=1)
    out = []
    with pytest.raises(ValueError, match="three") as caught:
        await read_into(out, Stream(pipeline._graph))
    assert out == [0, 1, 2]
    assert "pipework: in stage #1 'fails_on_3' (inline map), on item 3: 3" in caught.value.__notes__


async def test_a_failure_no_one_reads_is_not_raised_on_leaving():
    failing = asyncio.Event()

    def fail(x):
        failing.set()
        raise ValueError("unread")

    with anyio.fail_after(10):
        async with Stream(Pipeline(range(3)).map(fail)._graph) as outputs:
            await failing.wait()
            await asyncio.wait([outputs._task])
    assert isinstance(outputs._task.exception(), ValueError)
    assert outputs.report is None
