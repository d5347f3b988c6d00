"""Async stages, run on their own channels: one call per item, a bounded number at once.

What is checked is what `run_async` adds to the window it drives: that no
more than ``concurrency`` calls run at once (counted, not assumed), that
outputs keep their order, that a call past its ``timeout`` fails its item
with `ItemTimeoutError` after its cleanup ran, that an async generator's
items are collected for a flat_map, and that `held_for_the_stage` enters a
function that is an async context manager around the whole stage.
"""

from __future__ import annotations

import asyncio
import threading

import anyio
import pytest

from helpers import drive, filled
from pipework import Retry
from pipework._errors import ItemCancelledError, ItemTimeoutError
from pipework._model._specs import label, map_spec
from pipework._observe._report import StageStats
from pipework._stages._async import held_for_the_stage, run_async
from pipework._worker._ops import BatchLengthError

pytestmark = pytest.mark.timeout(30)


def spec(fn, op="map", **options):
    settings = dict.fromkeys(("on", "workers", "concurrency", "setup", "buffer", "chunksize"))
    settings |= {"ordered": True, "name": None} | options
    return map_spec(op, fn, index=1, **settings)


async def run(stage, inp, out=None, stats=None, seen=None):
    """Run the stage with a reader on its output, and return what it put out."""
    return await drive(run_async, stage, inp, out=out, stats=stats, seen=seen, limit=20)


class Counter:
    """Counts the calls running at once, and the most there ever were."""

    def __init__(self):
        self.now = self.most = 0

    async def hold(self, turns=5):
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            for _ in range(turns):
                await asyncio.sleep(0)
        finally:
            self.now -= 1


# Concurrency and order -----------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 3, 16])
async def test_no_more_than_concurrency_calls_run_at_once_and_that_many_do(concurrency):
    counter = Counter()

    async def fn(x):
        await counter.hold()
        return x * 2

    stats = StageStats()
    got = await run(spec(fn, concurrency=concurrency), filled(range(40)), stats=stats)
    assert got == [(i, i * 2) for i in range(40)]
    assert counter.most == concurrency
    assert (stats.items_in, stats.items_out) == (40, 40)


async def test_outputs_keep_input_order_when_calls_finish_back_to_front():
    gates = {i: asyncio.Event() for i in range(4)}
    finished = {i: asyncio.Event() for i in range(4)}

    async def fn(x):
        await gates[x].wait()
        finished[x].set()
        return x

    task = asyncio.create_task(run(spec(fn, concurrency=4), filled(range(4))))
    with anyio.fail_after(10):
        for i in (3, 2, 1, 0):
            gates[i].set()
            await finished[i].wait()
    assert await task == [(0, 0), (1, 1), (2, 2), (3, 3)]


async def test_unordered_outputs_come_as_the_calls_finish():
    gates = {i: asyncio.Event() for i in range(4)}

    async def fn(x):
        await gates[x].wait()
        return x

    def seen(out):  # each output releases the call before it
        if len(out) < 4:
            gates[3 - len(out)].set()

    gates[3].set()
    got = await run(spec(fn, concurrency=4, ordered=False), filled(range(4)), seen=seen)
    assert [i for i, _ in got] == [3, 2, 1, 0]


async def test_an_async_batch_function_gets_batches_of_max_size_concurrency_at_a_time():
    counter, batches = Counter(), []

    async def fn(batch):
        batches.append(list(batch))
        await counter.hold()
        return [x + 100 for x in batch]

    stage = spec(fn, "map_batches", concurrency=2, max_size=3)
    got = await run(stage, filled(range(10)), stats=(stats := StageStats()))
    assert got == [(i, i + 100) for i in range(10)]
    assert batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert counter.most == 2
    assert stats.items_out == 10


async def test_a_sync_batch_function_without_workers_runs_here_one_batch_at_a_time():
    batches = []

    def fn(batch):
        batches.append(list(batch))
        return [x * 3 for x in batch]

    stage = spec(fn, "map_batches", max_size=4)
    assert stage.mode == "inline"
    got = await run(stage, filled(range(9)))
    assert got == [(i, i * 3) for i in range(9)]
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]


# Timeouts ------------------------------------------------------------------------------------


def hangs_on_2(cleaned):
    never = asyncio.Event()

    async def fn(x):
        try:
            if x == 2:
                await never.wait()
            return x
        finally:
            cleaned.append(x)

    return fn


async def test_a_call_past_its_timeout_fails_its_item_after_its_cleanup_ran():
    cleaned, stats = [], StageStats()
    stage = spec(hangs_on_2(cleaned), timeout=0.05, errors="skip")
    got = await run(stage, filled(range(5)), stats=stats)
    assert got == [(i, i) for i in (0, 1, 3, 4)]
    assert sorted(cleaned) == [0, 1, 2, 3, 4]  # the cancelled call's finally ran too
    [failure] = stats.failures
    assert failure.index == 2
    assert isinstance(failure.error, ItemTimeoutError)
    assert isinstance(failure.error, TimeoutError)
    assert failure.error.timeout == 0.05


async def test_a_timeout_is_raised_naming_the_stage_and_item():
    stage = spec(hangs_on_2([]), timeout=0.05)
    with pytest.raises(ItemTimeoutError, match=r"longer than its timeout of 0\.05 s") as caught:
        await run(stage, filled(range(5)))
    assert f"pipework: in stage {label(1, stage)}, on item 2: 2" in caught.value.__notes__


async def test_a_timed_out_item_can_be_retried_and_then_succeed():
    tries, stats = [], StageStats()
    never = asyncio.Event()

    async def fn(x):
        tries.append(x)
        if x == 1 and tries.count(1) == 1:
            await never.wait()
        return x

    stage = spec(fn, timeout=0.05, retry=Retry(attempts=2, base_delay=0))
    assert await run(stage, filled(range(3)), stats=stats) == [(0, 0), (1, 1), (2, 2)]
    assert sorted(tries) == [0, 1, 1, 2]
    assert (stats.retried, stats.failed) == (1, 0)


# flat_map and filter -------------------------------------------------------------------------


async def test_an_async_generator_flat_map_puts_out_every_item_it_yields():
    async def expand(x):
        for i in range(x):
            await asyncio.sleep(0)
            yield f"{x}.{i}"

    stats = StageStats()
    got = await run(spec(expand, "flat_map", concurrency=4), filled(range(4)), stats=stats)
    assert got == [(1, "1.0"), (2, "2.0"), (2, "2.1"), (3, "3.0"), (3, "3.1"), (3, "3.2")]
    assert (stats.items_in, stats.items_out) == (4, 6)


async def test_an_async_generator_that_fails_midway_puts_out_none_of_its_items():
    async def expand(x):
        yield x
        if x == 2:
            raise ValueError("after the first")
        yield -x

    stats = StageStats()
    got = await run(spec(expand, "flat_map", errors="skip"), filled(range(4)), stats=stats)
    assert got == [(0, 0), (0, 0), (1, 1), (1, -1), (3, 3), (3, -3)]
    assert [f.index for f in stats.failures] == [2]


async def test_an_async_generator_past_its_timeout_is_closed():
    closed = []
    never = asyncio.Event()

    async def expand(x):
        try:
            yield x
            if x == 1:
                await never.wait()
        finally:
            closed.append(x)

    stats = StageStats()
    stage = spec(expand, "flat_map", timeout=0.05, errors="skip")
    assert await run(stage, filled(range(3)), stats=stats) == [(0, 0), (2, 2)]
    assert sorted(closed) == [0, 1, 2]
    assert isinstance(stats.failures[0].error, ItemTimeoutError)


async def test_an_async_filter_keeps_the_items_it_says_yes_to_by_their_index():
    async def even(x):
        await asyncio.sleep(0)
        return x % 2 == 0

    assert await run(spec(even, "filter", concurrency=3), filled(range(7))) == [
        (0, 0),
        (2, 2),
        (4, 4),
        (6, 6),
    ]


# Failures ------------------------------------------------------------------------------------


async def test_a_cancelled_error_from_the_function_fails_only_its_item():
    async def fn(x):
        if x == 1:
            raise asyncio.CancelledError
        return x

    stats = StageStats()
    got = await run(spec(fn, errors="skip"), filled(range(3)), stats=stats)
    assert got == [(0, 0), (2, 2)]
    [failure] = stats.failures
    assert failure.index == 1
    assert isinstance(failure.error, ItemCancelledError)


async def test_a_failed_batch_fails_every_item_in_it():
    async def fn(batch):
        if 4 in batch:
            raise ValueError("bad batch")
        return batch

    stats = StageStats()
    stage = spec(fn, "map_batches", max_size=3, errors="skip")
    got = await run(stage, filled(range(8)), stats=stats)
    assert [i for i, _ in got] == [0, 1, 2, 6, 7]
    assert [f.index for f in stats.failures] == [3, 4, 5]
    assert stats.failed == 3


async def test_a_batch_function_that_returns_too_few_results_fails_its_batch():
    stage = spec(lambda batch: batch[:-1], "map_batches", max_size=2)
    with pytest.raises(BatchLengthError, match="returned 1 results for 2 items") as caught:
        await run(stage, filled(range(4)))
    assert any("on a batch of 2 items from item 0" in note for note in caught.value.__notes__)


async def test_setup_runs_once_in_a_thread_and_its_state_comes_first():
    threads = []

    def setup():
        threads.append(threading.current_thread())
        return 1000

    async def fn(state, x):
        return state + x

    got = await run(spec(fn, setup=setup), filled(range(3)))
    assert got == [(0, 1000), (1, 1001), (2, 1002)]
    assert len(threads) == 1
    assert threads[0] is not threading.main_thread()  # the loop was never stalled by it


# The stage function as an async context manager ----------------------------------------------


class Session:
    """A stage function that holds a resource for the stage, as `pipework.http.fetch` does."""

    def __init__(self, fail_on=None):
        self.log = []
        self.fail_on = fail_on
        self.exited_with = "not exited"

    async def __aenter__(self):
        await asyncio.sleep(0)
        self.log.append("enter")

    async def __aexit__(self, kind, exc, tb):
        await asyncio.sleep(0)  # cleanup that awaits, even when cancelled
        self.log.append("exit")
        self.exited_with = kind

    async def __call__(self, x):
        assert self.log[0] == "enter"
        if x == self.fail_on:
            raise ValueError(x)
        self.log.append(x)
        return x


async def test_a_function_that_is_an_async_context_manager_is_entered_around_the_stage():
    session = Session()
    assert await run(spec(session, concurrency=2), filled(range(3))) == [(0, 0), (1, 1), (2, 2)]
    assert session.log[0] == "enter"
    assert sorted(session.log[1:-1]) == [0, 1, 2]
    assert session.log[-1] == "exit"
    assert session.exited_with is None


async def test_it_is_exited_with_the_error_that_ended_the_stage():
    session = Session(fail_on=1)
    with pytest.raises(ValueError, match="1"):
        await run(spec(session), filled(range(3)))
    assert session.log[-1] == "exit"
    assert session.exited_with is ValueError


class Waiting(Session):
    """A session whose calls wait until the stage is cancelled."""

    def __init__(self):
        super().__init__()
        self.started = asyncio.Event()
        self._never = asyncio.Event()

    async def __call__(self, x):
        self.started.set()
        await self._never.wait()
        return x


async def test_it_is_exited_when_the_stage_is_cancelled():
    session = Waiting()
    task = asyncio.create_task(run(spec(session), filled(range(3))))
    with anyio.fail_after(10):
        await session.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert session.log == ["enter", "exit"]
    assert session.exited_with is asyncio.CancelledError


async def test_an_object_that_is_only_half_a_context_manager_is_not_entered():
    class HalfOpen:
        entered = False

        async def __aenter__(self):
            self.entered = True

    half = HalfOpen()
    async with held_for_the_stage(half):
        pass
    assert not half.entered
