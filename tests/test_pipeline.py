"""End-to-end behaviour of running pipelines, one stage kind at a time, with real workers."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import anyio
import pytest

import pipework
from helpers import in_mode, where
from pipework import Pipeline

MODES = ["inline", "async", "thread", "process"]

# Counts setup calls per process (and, through the thread-local, per thread):
# a worker that ran setup twice would report 2.
_setup_calls = itertools.count(1)
_thread_setup = threading.local()


def square(x):
    return x * x


def is_multiple_of_3(x):
    return x % 3 == 0


def repeat_by_remainder(x):
    """Zero, one or two copies: a flat_map whose outputs vary in number, including none."""
    return [x] * (x % 3)


def worker_pid(_):
    return os.getpid()


def slow_worker_pid(_):
    time.sleep(0.05)  # long enough that a second worker is needed for the next item
    return os.getpid()


def counting_setup():
    return os.getpid(), next(_setup_calls)


def thread_counting_setup():
    _thread_setup.calls = getattr(_thread_setup, "calls", 0) + 1
    return threading.get_ident(), _thread_setup.calls


def meet(directory, worker, x):
    """Hold the first two items until two workers have one each, so both workers run items."""
    Path(directory, str(worker)).touch()
    deadline = time.monotonic() + 10
    while x < 2 and len(list(Path(directory).iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)


def pid_and_state(directory, state, x):
    meet(directory, os.getpid(), x)
    return os.getpid(), state


def thread_and_state(directory, state, x):
    meet(directory, threading.get_ident(), x)
    return threading.get_ident(), state


def thread_name(_):
    return threading.current_thread().name


async def collect(pipeline):
    return [x async for x in pipeline]


# map, filter, flat_map in every kind of stage ---------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_map(mode):
    pipeline = Pipeline(range(50), buffer=4).map(in_mode(mode, square), **where(mode))
    assert await collect(pipeline) == [x * x for x in range(50)]
    report = await pipeline.run()
    assert report["square"].kind == f"{mode} map"
    assert (report["square"].items_in, report["square"].items_out) == (50, 50)


@pytest.mark.parametrize("mode", MODES)
async def test_filter(mode):
    pipeline = Pipeline(range(50), buffer=4).filter(in_mode(mode, is_multiple_of_3), **where(mode))
    assert await collect(pipeline) == list(range(0, 50, 3))
    report = await pipeline.run()
    assert report["is_multiple_of_3"].kind == f"{mode} filter"
    assert report["is_multiple_of_3"].items_out == 17


@pytest.mark.parametrize("mode", MODES)
async def test_flat_map(mode):
    pipeline = Pipeline(range(30), buffer=4).flat_map(
        in_mode(mode, repeat_by_remainder), **where(mode)
    )
    expected = [y for x in range(30) for y in repeat_by_remainder(x)]
    assert await collect(pipeline) == expected
    report = await pipeline.run()
    assert report["repeat_by_remainder"].kind == f"{mode} flat_map"
    assert report["repeat_by_remainder"].items_out == len(expected)


async def test_process_flat_map_of_a_generator_function():
    def spread(x):
        yield from range(x)

    out = await collect(Pipeline(range(6)).flat_map(spread, on="process", workers=2))
    assert out == [y for x in range(6) for y in range(x)]


async def test_flat_map_of_an_async_generator_function_runs_on_the_loop():
    async def pages(x):
        for page in range(x):
            await asyncio.sleep(0.001 * (5 - x))  # items finish out of order
            yield (x, page)

    pipeline = Pipeline(range(5)).flat_map(pages, concurrency=5)
    assert await collect(pipeline) == [(x, page) for x in range(5) for page in range(x)]
    report = await pipeline.run()
    assert report["pages"].kind == "async flat_map"


async def test_chain_of_every_kind():
    async def plus_one(x):
        await asyncio.sleep(0)
        return x + 1

    pipeline = (
        Pipeline(range(40), buffer=3)
        .map(plus_one, concurrency=4, buffer=2)
        .map(square, on="thread", workers=2, buffer=5)
        .filter(is_multiple_of_3, on="process", workers=2, chunksize=3)
        .flat_map(repeat_by_remainder, buffer=1)
    )
    squares = [(x + 1) ** 2 for x in range(40)]
    expected = [y for x in squares if x % 3 == 0 for y in repeat_by_remainder(x)]
    assert await collect(pipeline) == expected


# batch ---------------------------------------------------------------------------------------


async def test_batch_emits_full_batches_and_a_short_last_one():
    assert await collect(Pipeline(range(10), buffer=3).batch(4)) == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
    ]


async def test_batch_of_an_exact_multiple_has_no_empty_tail():
    assert await collect(Pipeline(range(8)).batch(4)) == [[0, 1, 2, 3], [4, 5, 6, 7]]


async def test_batch_of_an_empty_source_is_empty():
    assert await collect(Pipeline([]).batch(4)) == []


async def test_batch_max_wait_flushes_a_partial_batch_while_the_source_is_idle():
    first_seen = asyncio.Event()

    async def source():
        for i in range(3):
            yield i
        # Idle until the reader has the first batch: only max_wait can flush it.
        await first_seen.wait()
        for i in range(3, 5):
            await asyncio.sleep(0.001)
            yield i

    batches = []
    with anyio.fail_after(10):
        async for batch in Pipeline(source()).batch(10, max_wait=0.05):
            batches.append(batch)
            first_seen.set()
    assert batches[0] == [0, 1, 2]
    assert [x for b in batches for x in b] == list(range(5))
    assert all(0 < len(b) <= 10 for b in batches)


async def test_batch_max_wait_zero_still_keeps_every_item_in_order():
    batches = await collect(Pipeline(range(25), buffer=4).batch(6, max_wait=0))
    assert [x for b in batches for x in b] == list(range(25))
    assert all(0 < len(b) <= 6 for b in batches)


# sinks and sources -------------------------------------------------------------------------


async def test_sync_sink_sees_every_item_in_order():
    seen = []
    report = await Pipeline(range(20), buffer=3).map(square).sink(seen.append).run()
    assert seen == [x * x for x in range(20)]
    assert report["append"].items_in == 20
    assert report["append"].kind == "sink"


async def test_async_sink_is_awaited_for_every_item():
    seen = []

    async def save(x):
        await asyncio.sleep(0)
        seen.append(x)

    report = await Pipeline(range(20), buffer=3).sink(save).run()
    assert seen == list(range(20))
    assert report["save"].items_out == 20


class AsyncRange:
    """An async iterable that is not an async generator."""

    def __init__(self, n):
        self.n = n

    def __aiter__(self):
        return AsyncRangeIterator(self.n)


class AsyncRangeIterator:
    def __init__(self, n):
        self.i = 0
        self.n = n

    async def __anext__(self):
        if self.i >= self.n:
            raise StopAsyncIteration
        self.i += 1
        return self.i - 1


async def async_range(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


def sync_range(n):
    yield from range(n)


@pytest.mark.parametrize(
    "make_source",
    [lambda n: list(range(n)), sync_range, AsyncRange, async_range],
    ids=["list", "generator", "async-iterable", "async-generator"],
)
async def test_every_kind_of_source(make_source):
    out = await collect(Pipeline(make_source(25), buffer=4).map(square))
    assert out == [x * x for x in range(25)]


async def test_source_report_counts_items():
    report = await Pipeline(async_range(7), name="numbers").run()
    assert report["numbers"].items_out == 7


async def test_async_for_over_the_pipeline_itself():
    expected = iter([0, 1, 4, 9, 16])
    async for x in Pipeline(range(5)).map(square, on="thread", workers=2):
        assert x == next(expected)
    assert next(expected, "end") == "end"


async def test_stream_in_async_with_reads_everything_and_keeps_the_report():
    pipeline = Pipeline(range(12), buffer=2).map(square, on="process", workers=2)
    async with pipeline.stream() as outputs:
        out = [x async for x in outputs]
        assert outputs.report is not None
    assert out == [x * x for x in range(12)]
    assert outputs.report["square"].items_out == 12


# pipework.map --------------------------------------------------------------------------------


async def test_map_function_runs_a_sync_function_on_processes_by_default():
    pids = await pipework.map(worker_pid, range(10), workers=2)
    assert len(pids) == 10
    assert os.getpid() not in pids
    assert await pipework.map(square, range(30), workers=2) == [x * x for x in range(30)]


async def test_map_function_on_threads():
    names = await pipework.map(thread_name, range(10), on="thread", workers=2)
    assert threading.current_thread().name not in names
    assert await pipework.map(square, range(30), on="thread") == [x * x for x in range(30)]


async def test_map_function_with_an_async_function():
    async def double(x):
        await asyncio.sleep(0.001 * (x % 3))
        return 2 * x

    assert await pipework.map(double, range(40), concurrency=5) == [2 * x for x in range(40)]


async def test_map_function_with_setup_passes_the_state_first():
    def add(offset, x):
        return offset + x

    assert await pipework.map(add, range(10), setup=lambda: 100, workers=2) == list(range(100, 110))
    assert await pipework.map(add, range(5), setup=lambda: 7, on="thread") == list(range(7, 12))


# functions that must travel to processes ---------------------------------------------------


async def test_lambdas_and_closures_run_in_process_stages():
    factor = 3

    def times_factor(x):
        return x * factor

    pipeline = (
        Pipeline(range(20))
        .map(lambda x: x + 1, on="process", workers=2)
        .map(times_factor, on="process", workers=2)
        .filter(lambda x: x % 2 == 0, on="process", workers=2)
    )
    assert await collect(pipeline) == [(x + 1) * 3 for x in range(20) if (x + 1) * 3 % 2 == 0]


@pytest.mark.parametrize(
    ("on", "setup", "fn"),
    [
        ("process", counting_setup, pid_and_state),
        ("thread", thread_counting_setup, thread_and_state),
    ],
)
async def test_setup_runs_once_per_worker(tmp_path, on, setup, fn):
    stage = partial(fn, str(tmp_path))
    pipeline = Pipeline(range(12)).map(stage, setup=setup, on=on, workers=2, chunksize=1)
    out = await collect(pipeline)
    states = {}
    for worker, state in out:
        states.setdefault(worker, set()).add(state)
    assert len(states) == 2, "both workers should have run items"
    for worker, seen in states.items():
        assert len(seen) == 1, f"worker {worker} saw several setups: {seen}"
        (owner, calls) = next(iter(seen))
        assert owner == worker, "setup ran somewhere else than the function"
        assert calls == 1, f"setup ran {calls} times in worker {worker}"


async def test_setup_of_an_async_stage_runs_once_per_run():
    calls = []

    def setup():
        calls.append(1)
        return 10

    async def add(offset, x):
        await asyncio.sleep(0)
        return offset + x

    pipeline = Pipeline(range(20)).map(add, setup=setup, concurrency=4)
    assert await collect(pipeline) == list(range(10, 30))
    assert len(calls) == 1


# executors the user owns ---------------------------------------------------------------------


async def test_a_user_process_pool_is_used_and_left_open():
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        pipeline = Pipeline(range(8)).map(slow_worker_pid, on=executor, chunksize=1)
        pids = set(await collect(pipeline))
        assert os.getpid() not in pids
        assert pids <= set(executor._processes)
        # Still open: the run did not shut it down.
        assert executor.submit(square, 7).result(timeout=10) == 49
        assert await collect(Pipeline(range(4)).map(square, on=executor)) == [0, 1, 4, 9]


async def test_a_user_thread_pool_is_used_and_left_open():
    with ThreadPoolExecutor(2, thread_name_prefix="users-pool") as executor:
        names = await collect(Pipeline(range(8)).map(thread_name, on=executor))
        assert all(name.startswith("users-pool") for name in names)
        assert executor.submit(square, 5).result(timeout=10) == 25


# running again -------------------------------------------------------------------------------


async def test_a_pipeline_can_run_twice():
    seen = []
    pipeline = Pipeline(range(10), buffer=3).map(square, on="process", workers=2)
    first = await collect(pipeline)
    second = await collect(pipeline)
    assert first == second == [x * x for x in range(10)]
    sunk = pipeline.sink(seen.append)
    await sunk.run()
    await sunk.run()
    assert seen == first + first
