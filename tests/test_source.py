"""The source stage: how each kind of source is read, and one-shot sources used twice."""

from __future__ import annotations

import asyncio
import threading
import time

import anyio
import pytest

from pipework import Pipeline
from pipework._stages import _source

pytestmark = pytest.mark.timeout(60)


def sleepy(count, seconds=0.05):
    for i in range(count):
        time.sleep(seconds)  # a blocking read: a cursor, a socket, a slow file
        yield i


async def worst_lag(done: asyncio.Event) -> float:
    """The longest the loop was late to wake a 10 ms sleeper until ``done``."""
    worst, last = 0.0, time.perf_counter()
    while not done.is_set():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        worst, last = max(worst, now - last - 0.01), now
    return worst


async def test_a_blocking_generator_never_stalls_the_event_loop():
    # Before: it was read on the loop, a channel's room at a time: 1.5 s stalls.
    done = asyncio.Event()
    probe = asyncio.ensure_future(worst_lag(done))
    out = []
    await Pipeline(sleepy(20)).map(abs).sink(out.append).run()
    done.set()
    assert out == list(range(20))
    assert await probe < 0.1


async def test_a_timeout_around_a_run_over_a_blocking_source_fires_on_time():
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await Pipeline(sleepy(1000)).run()
    assert time.perf_counter() - started < 2.0  # before: 2 s and more, the loop blocked


async def test_a_sync_iterator_is_read_and_closed_by_one_thread_off_the_loop():
    readers, closers = set(), set()

    def rows():
        try:
            for i in range(1000):
                readers.add(threading.get_ident())
                yield i
        finally:
            closers.add(threading.get_ident())

    out = [x async for x in Pipeline(rows())]
    assert out == list(range(1000))
    assert len(readers) == 1
    assert closers == readers
    assert threading.get_ident() not in readers


async def test_collections_in_memory_are_read_on_the_loop():
    seen = set()

    class Rows(list):
        def __iter__(self):
            seen.add(threading.get_ident())
            return super().__iter__()

    assert [x async for x in Pipeline(Rows(range(5)))] == list(range(5))
    assert seen == {threading.get_ident()}


async def test_a_sync_source_that_raises_keeps_the_items_before_and_says_where():
    def rows():
        yield from range(7)
        raise OSError("disk gone")

    out = []
    with pytest.raises(OSError, match="disk gone") as caught:
        await Pipeline(rows()).sink(out.append).run()
    assert out == list(range(7))
    assert any("raised after yielding 7 items" in note for note in caught.value.__notes__)


async def test_stopping_a_run_over_a_blocking_source_closes_it():
    closed = threading.Event()

    def rows():
        try:
            yield from sleepy(10_000, seconds=0.01)
        finally:
            closed.set()

    stop = asyncio.Event()
    out = []

    def take(x):
        out.append(x)
        if len(out) == 5:
            stop.set()

    with anyio.fail_after(20):
        await Pipeline(rows()).sink(take).run(stop=stop)
    assert closed.is_set()
    assert out[:5] == list(range(5))


async def test_cancelling_a_run_whose_source_blocks_for_ever_still_returns(monkeypatch):
    monkeypatch.setattr(_source, "_SOURCE_CLOSE_TIMEOUT", 0.5)  # its wait for the close
    release = threading.Event()

    def stuck():
        yield 0
        release.wait()  # blocks its thread until the test ends
        yield 1

    task = asyncio.ensure_future(Pipeline(stuck()).run())
    await asyncio.sleep(0.05)
    task.cancel()
    with anyio.fail_after(10):
        with pytest.raises(asyncio.CancelledError):
            await task
    release.set()


# One-shot sources ------------------------------------------------------------------------------


async def test_running_a_pipeline_over_a_generator_again_is_refused_by_name():
    # Before: the second run silently processed 0 items.
    pipeline = Pipeline((x for x in range(3)), name="rows")
    assert (await pipeline.run()).stages[0].items_out == 3
    with pytest.raises(RuntimeError, match=r"the source .*'rows'.* one-shot iterator"):
        await pipeline.run()


async def test_a_new_pipeline_over_a_used_generator_is_refused_too():
    rows = (x for x in range(3))
    await Pipeline(rows).run()
    with pytest.raises(RuntimeError, match="one-shot"):
        await Pipeline(rows).map(abs).run()


async def test_two_runs_at_once_of_one_shot_sources_fail_clearly_not_split_items():
    for source in ((x for x in range(10**6)), map(abs, range(10**6)), aiter_of(range(10**6))):
        pipeline = Pipeline(source)
        first = asyncio.ensure_future(pipeline.run())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="one-shot"):
            await pipeline.run()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_a_used_iterator_that_cannot_be_referred_to_weakly_is_still_refused():
    pipeline = Pipeline(map(abs, range(3)))  # map objects take no weak references
    await pipeline.run()
    with pytest.raises(RuntimeError, match="one-shot"):
        await pipeline.stream().__anext__()


async def test_re_iterable_sources_run_as_often_as_wanted():
    class Table:
        def __iter__(self):
            return iter(range(4))

    for source in ([1, 2, 3], range(3), Table()):
        pipeline = Pipeline(source).map(abs)
        first, second = await pipeline.run(), await pipeline.run()
        assert first.stages[0].items_out == second.stages[0].items_out > 0
        together = await asyncio.gather(pipeline.run(), pipeline.run())
        assert {r.stages[0].items_out for r in together} == {first.stages[0].items_out}


async def aiter_of(items):
    for item in items:
        yield item
