"""Cancellation: a cancelled run stops at once, kills its busy workers and leaves nothing behind.

Workers here sleep for 30 s, far past every guard, so a run that waited for
them would fail its ``anyio.fail_after`` instead of passing slowly. Each
worker touches a file named by its pid before it sleeps, which tells the test
both that the worker is busy and which process to watch.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import multiprocessing
import os
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import anyio
import pytest

from helpers import alive
from pipework import Pipeline

WORKERS = 2


@pytest.fixture(autouse=True)
def _asyncio_stays_quiet(caplog):
    """Fail on any warning (ResourceWarning above all) or asyncio complaint, after a collection.

    "Task was destroyed but it is pending" and "exception was never retrieved"
    are logged, not warned, when a forgotten task or future is collected.
    """
    caplog.set_level(logging.WARNING, logger="asyncio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    complaints = [r.getMessage() for r in [*caplog.get_records("call"), *caplog.records]]
    assert [m for m in complaints if "asyncio" in m or "Task" in m or "never" in m] == []
    assert [r for r in caplog.get_records("call") if r.name == "asyncio"] == []


def square(x):
    return x * x


def mark_then_sleep(directory, x):
    """Say which process is busy, then stay busy (item 0 alone comes back at once)."""
    Path(directory, str(os.getpid())).touch()
    if x != 0:
        time.sleep(30)
    return os.getpid()


def mark_then_wait(directory, stop, x):
    """Say which worker is busy, then stay busy until the test says stop."""
    Path(directory, f"{os.getpid()}-{threading.get_ident()}").touch()
    deadline = time.monotonic() + 30
    while not Path(stop).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return x


async def marks(directory, count):
    """Wait until ``count`` workers have said they are busy; return their names."""
    with anyio.fail_after(10):
        while len(names := os.listdir(directory)) < count:  # noqa: PTH208 - names, not paths
            await asyncio.sleep(0.01)
    return names


async def busy_pids(directory):
    return {int(name) for name in await marks(directory, WORKERS)}


async def cancel_and_wait(task):
    task.cancel()
    with anyio.fail_after(10):
        await asyncio.wait([task])
    assert task.cancelled()


async def no_other_tasks():
    """Let callbacks run, then check that the run left no task behind."""
    for _ in range(5):
        await asyncio.sleep(0)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []


def sleeping_pipeline(directory):
    return Pipeline(range(20)).map(
        partial(mark_then_sleep, str(directory)), on="process", workers=WORKERS, chunksize=1
    )


async def test_cancelling_run_kills_busy_workers(tmp_path):
    task = asyncio.create_task(sleeping_pipeline(tmp_path).run())
    pids = await busy_pids(tmp_path)
    assert len(pids) == WORKERS
    assert all(alive(pid) for pid in pids)
    await cancel_and_wait(task)
    # run() returns only once its workers are gone: no waiting here.
    assert [pid for pid in pids if alive(pid)] == []
    await no_other_tasks()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02, 0.05])
async def test_cancelling_while_workers_start_leaves_none(delay):
    """A run cancelled before its process stage has its pool stops the workers started so far.

    conftest's guard fails the test if any worker outlives it.
    """
    started = asyncio.Event()

    async def note(x):
        started.set()
        return x

    pipeline = Pipeline(itertools.count()).map(note).map(abs, on="process", workers=WORKERS)
    task = asyncio.create_task(pipeline.run())
    await asyncio.wait_for(started.wait(), 30)
    await asyncio.sleep(delay)
    await cancel_and_wait(task)
    await no_other_tasks()


async def test_leaving_async_with_stream_kills_workers_before_the_block_ends(tmp_path):
    with anyio.fail_after(10):
        async with sleeping_pipeline(tmp_path).stream() as outputs:
            async for first_pid in outputs:  # noqa: B007 - read after the loop
                pids = await busy_pids(tmp_path)
                break
    assert first_pid in pids
    assert [pid for pid in pids if alive(pid)] == []
    await no_other_tasks()


async def test_breaking_a_bare_async_for_stops_workers_soon(tmp_path):
    async for first_pid in sleeping_pipeline(tmp_path):  # noqa: B007 - read after the loop
        pids = await busy_pids(tmp_path)
        break
    assert first_pid in pids
    # The abandoned stream cancels its run; the loop finishes the cleanup.
    with anyio.fail_after(5):
        while [pid for pid in pids if alive(pid)]:
            await asyncio.sleep(0.02)
        while [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("kind", ["process", "thread"])
async def test_a_user_executor_stays_usable_after_cancellation(tmp_path, kind):
    busy, stop = tmp_path / "busy", tmp_path / "stop"
    busy.mkdir()
    if kind == "process":
        executor = ProcessPoolExecutor(
            WORKERS, mp_context=multiprocessing.get_context("forkserver")
        )
    else:
        executor = ThreadPoolExecutor(WORKERS)
    with executor:
        try:
            fn = partial(mark_then_wait, str(busy), str(stop))
            pipeline = Pipeline(range(20)).map(fn, on=executor, chunksize=1)
            task = asyncio.create_task(pipeline.run())
            names = await marks(busy, WORKERS)
            await cancel_and_wait(task)
            pids = {int(name.partition("-")[0]) for name in names}
            # The user's workers are the user's: not killed, only no longer fed.
            assert all(alive(pid) for pid in pids)
        finally:
            stop.touch()
        with anyio.fail_after(10):
            assert await asyncio.wrap_future(executor.submit(square, 3)) == 9
            squares = [x async for x in Pipeline(range(5)).map(square, on=executor)]
        assert squares == [0, 1, 4, 9, 16]


async def test_cancelling_a_thread_stage_returns_without_waiting_for_its_threads():
    release = threading.Event()
    started = []

    def block(x):
        started.append(x)
        release.wait(30)
        return x

    pipeline = Pipeline(range(100)).map(block, on="thread", workers=WORKERS, chunksize=1)
    task = asyncio.create_task(pipeline.run())
    try:
        with anyio.fail_after(10):
            while len(started) < WORKERS:
                await asyncio.sleep(0.01)
        await cancel_and_wait(task)
    finally:
        release.set()
    await asyncio.sleep(0.2)
    # Queued chunks were dropped: only what was running, and perhaps what a
    # thread had already picked up, ever started.
    assert len(started) <= 2 * WORKERS
    await no_other_tasks()


async def test_cancelling_during_a_batch_max_wait():
    first_taken = asyncio.Event()
    closed = []
    batches = []

    async def one_then_silence():
        try:
            yield 1
            first_taken.set()
            await asyncio.Event().wait()  # the second item never comes
        finally:
            closed.append(True)

    pipeline = Pipeline(one_then_silence()).batch(10, max_wait=30).sink(batches.append)
    task = asyncio.create_task(pipeline.run())
    with anyio.fail_after(10):
        await first_taken.wait()
    for _ in range(5):  # let the batch stage take the item and start its wait
        await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert batches == []
    assert closed == [True]
    await no_other_tasks()


async def test_a_short_max_wait_keeps_flushing_until_cancelled():
    async def trickle():
        for i in itertools.count():
            await asyncio.sleep(0.005)
            yield i

    batches = []
    pipeline = Pipeline(trickle()).batch(1000, max_wait=0.02).sink(batches.append)
    task = asyncio.create_task(pipeline.run())
    with anyio.fail_after(10):
        while len(batches) < 3:
            await asyncio.sleep(0.01)
    await cancel_and_wait(task)
    flat = [x for b in batches for x in b]
    assert flat == list(range(len(flat)))
    assert all(0 < len(b) < 1000 for b in batches)


@pytest.mark.parametrize("where", ["suspended-at-yield", "awaiting-inside"])
async def test_cancelling_runs_an_async_generator_sources_finally(where):
    parked = asyncio.Event()
    cleaned = []

    async def numbers():
        try:
            for i in itertools.count():
                if where == "awaiting-inside" and i == 3:
                    parked.set()
                    await asyncio.Event().wait()
                if where == "suspended-at-yield" and i == 2:
                    parked.set()  # the full channel keeps it at this yield
                yield i
        finally:
            # Cleanup that awaits (closing a connection, say) must run to its
            # end, as it does when plain asyncio cancels the generator's reader.
            await asyncio.sleep(0)
            cleaned.append(True)

    async def stuck(_):
        await asyncio.Event().wait()

    buffer = 2 if where == "suspended-at-yield" else 8
    task = asyncio.create_task(Pipeline(numbers(), buffer=buffer).sink(stuck).run())
    with anyio.fail_after(10):
        await parked.wait()
    for _ in range(5):
        await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert cleaned == [True]
    await no_other_tasks()


@pytest.mark.parametrize("stage", ["async map", "async sink"])
async def test_a_user_coroutines_cleanup_runs_to_its_end_when_cancelled(stage):
    # asyncio code expects one CancelledError and then room to clean up:
    # an await inside its finally must not be cancelled again.
    started = asyncio.Event()
    log = []

    async def work(x):
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            log.append("start")
            await asyncio.sleep(0.01)
            log.append("end")
        return x

    pipeline = Pipeline([1])
    pipeline = pipeline.map(work) if stage == "async map" else pipeline.sink(work)
    task = asyncio.create_task(pipeline.run())
    with anyio.fail_after(10):
        await started.wait()
    await cancel_and_wait(task)
    assert log == ["start", "end"]
    await no_other_tasks()
