"""Thread and process stages, run on their own channels: chunks of items on a backend.

What is checked is what `run_pooled` decides around the backend: outputs in
input order, how large a chunk may be and how many run at once, how a failed
item is settled under the stage's policy and named, how a worker's death is
pinned on the item that caused it, and that no worker outlives the stage.
The workers are real threads and real processes; deaths are real exits.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path

import anyio
import pytest

from helpers import alive, drive, filled
from pipework import Retry
from pipework._channel import Channel
from pipework._errors import (
    MAIN_GUARD_NOTE,
    RemoteTraceback,
    UnpicklableError,
    WorkerDiedError,
    WorkerStartError,
)
from pipework._model._specs import label, map_spec
from pipework._observe._report import StageStats
from pipework._stages._pooled import MAX_DEATHS, run_pooled

pytestmark = pytest.mark.timeout(60)


def spec(fn, op="map", *, on="thread", workers=2, **options):
    settings = dict.fromkeys(("concurrency", "setup", "buffer", "chunksize"))
    settings |= {"ordered": True, "name": None, "on": on, "workers": workers} | options
    return map_spec(op, fn, index=1, **settings)


async def run(stage, inp, out=None, stats=None, seen=None):
    """Run the stage with a reader on its output, and return what it put out."""
    return await drive(run_pooled, stage, inp, out=out, stats=stats, seen=seen, limit=50)


def wait_for(path, limit=30.0):
    deadline = time.monotonic() + limit
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.005)


# Functions the workers run: module-level, so that worker processes import them.


def double(x):
    return 2 * x


def zero_waits_for_three(directory, x):
    """Hold item 0 until item 3 has run: 1 to 3 finish first, on the other worker."""
    if x == 0:
        wait_for(Path(directory, "3"))
    if x == 3:
        Path(directory, "3").touch()
    return 2 * x


def zero_waits_for_the_reader(directory, x):
    if x == 0:
        wait_for(Path(directory, "go"))
    return 2 * x


def fail_on_7(x):
    if x == 7:
        raise ValueError("seven")
    return x


def broken_setup():
    raise OSError("no model file")


def exit_on_5(directory, x):
    """Die on item 5, leaving a file behind for every worker it kills."""
    if x == 5:
        os.close(tempfile.mkstemp(dir=directory)[0])
        os._exit(3)
    return 2 * x


def exit_at_once():
    os._exit(1)


class ExitWhenPickled:
    """A result that kills its worker as it is sent back: after the last item has run."""

    def __reduce__(self):
        os._exit(4)


def dies_sending_5_back(x):
    return ExitWhenPickled() if x == 5 else 2 * x


def pid_then_wait(directory, x):
    Path(directory, f"{x}.{os.getpid()}").touch()
    wait_for(Path(directory, "never"), limit=60)
    return x


# Order ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("on", ["thread", "process"])
async def test_outputs_come_in_input_order_when_a_later_chunk_finishes_first(on, tmp_path):
    stage = spec(partial(zero_waits_for_three, str(tmp_path)), on=on, chunksize=1)
    got = await run(stage, filled(range(12)), Channel(3))  # an output that takes parts
    assert got == [(i, 2 * i) for i in range(12)]


async def test_unordered_outputs_do_not_wait_for_a_slow_chunk(tmp_path):
    def seen(out):
        if len(out) == 9:  # every item but 0 is out: now let it finish
            (tmp_path / "go").touch()

    stage = spec(partial(zero_waits_for_the_reader, str(tmp_path)), chunksize=1, ordered=False)
    got = await run(stage, filled(range(10)), seen=seen)
    assert sorted(got) == [(i, 2 * i) for i in range(10)]
    assert got[-1] == (0, 0)


# Chunks --------------------------------------------------------------------------------------


class ChunkRecorder(ThreadPoolExecutor):
    """A thread pool that records the items each call of the stage ran, chunk by chunk."""

    def __init__(self, workers):
        super().__init__(workers)
        self.chunks = []
        self._current = threading.local()

    def submit(self, fn, /, *args, **kwargs):
        def call():
            self._current.chunk = chunk = []
            try:
                return fn(*args, **kwargs)
            finally:
                if chunk:  # a call that only asked for the stage's payload runs no item
                    self.chunks.append(chunk)

        return super().submit(call)

    def record(self, x):
        self._current.chunk.append(x)
        return x


@pytest.mark.parametrize(
    ("options", "sizes"),
    [
        ({"chunksize": 3}, [3, 3, 3, 1]),
        # A timeout on an executor can only time a whole chunk: one item each.
        ({"chunksize": 3, "timeout": 30}, [1] * 10),
    ],
    ids=["chunksize", "timeout"],
)
async def test_a_fixed_chunk_size_is_what_each_call_runs(options, sizes):
    with ChunkRecorder(2) as pool:
        got = await run(spec(pool.record, on=pool, **options), filled(range(10)))
    assert got == [(i, i) for i in range(10)]
    chunks = sorted(pool.chunks)
    assert [len(chunk) for chunk in chunks] == sizes
    assert [x for chunk in chunks for x in chunk] == list(range(10))


async def test_adaptive_chunks_never_hold_more_than_max_in_flight():
    stats = StageStats()
    held = []

    def record(x):
        held.append(stats.items_in - stats.items_out)
        return pool.record(x)

    with ChunkRecorder(2) as pool:
        got = await run(spec(record, on=pool, max_in_flight=5), filled(range(300)), stats=stats)
    assert got == [(i, i) for i in range(300)]
    assert max(len(chunk) for chunk in pool.chunks) <= 5
    assert max(held) <= 5
    assert sorted(x for chunk in pool.chunks for x in chunk) == list(range(300))


@pytest.mark.parametrize(
    ("op", "options", "taken"),
    [
        # Two chunks per worker: one runs, one waits in the executor's queue.
        ("map", {"chunksize": 2}, 2 * 2 * 2),
        # A batch function gets one batch per worker.
        ("map_batches", {"max_size": 2}, 2 * 2),
    ],
    ids=["map", "map_batches"],
)
async def test_it_runs_two_chunks_per_worker_but_one_batch(op, options, taken):
    release, started = threading.Event(), []
    loop = asyncio.get_running_loop()
    both_started = asyncio.Event()

    def blocked(x):
        started.append(x)
        if len(started) == 2:
            loop.call_soon_threadsafe(both_started.set)
        release.wait(30)
        return x

    stats, inp = StageStats(), filled(range(20))
    stage = spec(blocked, op, **options)
    task = asyncio.create_task(run(stage, inp, stats=stats))
    try:
        with anyio.fail_after(30):
            await both_started.wait()
        for _ in range(20):
            await asyncio.sleep(0)
        assert stats.items_in == taken
        # One more chunk, taken while every slot was busy, waits for a free one.
        assert len(inp) == 20 - taken - 2
    finally:
        release.set()
    got = await task
    assert [i for i, _ in got] == list(range(20))


# Failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("on", ["thread", "process"])
async def test_a_failing_item_is_raised_as_itself_naming_the_stage_and_item(on):
    stage = spec(fail_on_7, on=on, chunksize=4)
    with pytest.raises(ValueError, match="seven") as caught:
        await run(stage, filled(range(12)))
    assert f"pipework: in stage {label(1, stage)}, on item 7: 7" in caught.value.__notes__
    if on == "process":  # the worker's own frames come back as the cause
        assert isinstance(caught.value.__cause__, RemoteTraceback)
        assert "fail_on_7" in caught.value.__cause__.text
    else:
        assert caught.value.__cause__ is None


async def test_a_skipped_item_costs_its_chunk_nothing_and_nothing_runs_twice():
    calls = []

    def fn(x):
        calls.append(x)
        if x in {2, 7}:
            raise ValueError(x)
        return 10 * x

    stats = StageStats()
    got = await run(spec(fn, chunksize=5, errors="skip"), filled(range(10)), stats=stats)
    assert got == [(i, 10 * i) for i in range(10) if i not in {2, 7}]
    assert sorted(calls) == list(range(10))  # the items after a failure go on from there
    assert [(f.index, f.item, f.attempts) for f in stats.failures] == [(2, "2", 1), (7, "7", 1)]
    assert stats.failed == 2
    assert all(isinstance(f.error, ValueError) for f in stats.failures)


async def test_a_retried_item_is_tried_again_and_its_neighbours_are_not():
    calls = []

    def flaky(x):
        calls.append(x)
        if x == 3 and calls.count(3) == 1:
            raise ConnectionError("once")
        return x

    stats = StageStats()
    stage = spec(flaky, chunksize=6, retry=Retry(attempts=2, base_delay=0))
    got = await run(stage, filled(range(6)), stats=stats)
    assert got == [(i, i) for i in range(6)]
    assert sorted(calls) == [0, 1, 2, 3, 3, 4, 5]
    assert (stats.retried, stats.failed) == (1, 0)


async def test_a_dead_letter_handler_hears_of_each_failure_with_the_stage_label():
    letters = []
    stage = spec(fail_on_7, on="process", chunksize=4, errors=letters.append)
    got = await run(stage, filled(range(10)))
    assert [i for i, _ in got] == [i for i in range(10) if i != 7]
    [failure] = letters
    assert (failure.stage, failure.index, failure.item) == (label(1, stage), 7, "7")
    assert isinstance(failure.error.__cause__, RemoteTraceback)


@pytest.mark.parametrize("on", ["thread", "process"])
async def test_a_setup_that_raises_in_a_worker_is_raised_naming_the_stage(on):
    stage = spec(double, on=on, setup=broken_setup)
    with pytest.raises(OSError, match="no model file") as caught:
        await run(stage, filled(range(4)))
    assert f"pipework: in the setup of stage {label(1, stage)}, in a worker" in (
        caught.value.__notes__
    )


async def test_an_item_that_cannot_be_pickled_fails_alone_naming_its_index():
    items = [0, 1, 2, threading.Lock(), 4, 5]
    stats = StageStats()
    stage = spec(double, on="process", chunksize=6, errors="skip")
    got = await run(stage, filled(items), stats=stats)
    assert got == [(i, 2 * i) for i in (0, 1, 2, 4, 5)]
    [failure] = stats.failures
    assert failure.index == 3
    assert isinstance(failure.error, UnpicklableError)
    assert f"stage {label(1, stage)}: item 3 cannot be pickled" in str(failure.error)
    assert failure.error.__cause__ is not None  # pickle's own error


# Worker deaths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunksize", "deaths"),
    [
        (1, MAX_DEATHS),
        # A death in an untracked chunk of several items is pinned on none of them.
        (4, MAX_DEATHS + 1),
    ],
)
async def test_a_poison_item_kills_its_bound_of_workers_then_fails_alone(
    chunksize, deaths, tmp_path
):
    stats = StageStats()
    fn = partial(exit_on_5, str(tmp_path))
    stage = spec(fn, on="process", chunksize=chunksize, errors="skip")
    got = await run(stage, filled(range(12)), stats=stats)
    assert got == [(i, 2 * i) for i in range(12) if i != 5]
    assert len(list(tmp_path.iterdir())) == deaths
    [failure] = stats.failures
    assert failure.index == 5
    assert isinstance(failure.error, WorkerDiedError)
    assert failure.error.exitcode == 3
    assert f"killed {MAX_DEATHS} worker processes in a row" in str(failure.error)
    assert stats.failed == 1


async def test_a_death_after_the_last_item_of_a_chunk_is_pinned_by_halving():
    stats = StageStats()
    stage = spec(dies_sending_5_back, on="process", chunksize=8, errors="skip")
    got = await run(stage, filled(range(10)), stats=stats)
    assert got == [(i, 2 * i) for i in range(10) if i != 5]
    [failure] = stats.failures
    assert failure.index == 5
    assert isinstance(failure.error, WorkerDiedError)
    assert failure.error.exitcode == 4


async def test_a_worker_that_dies_as_it_starts_fails_the_stage_as_a_start_error():
    stage = spec(double, on="process", workers=1, setup=exit_at_once)
    with pytest.raises(WorkerStartError) as caught:
        await run(stage, filled(range(3)))
    notes = caught.value.__notes__
    assert notes.count(f"pipework: a worker of stage {label(1, stage)} died.") == 1
    assert notes.count(MAIN_GUARD_NOTE) == 1  # the pool said it; the stage does not again


async def test_a_death_in_a_users_process_pool_breaks_the_stage_with_one_note(tmp_path):
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        stage = spec(partial(exit_on_5, str(tmp_path)), on=pool, workers=None, chunksize=1)
        with pytest.raises(BrokenProcessPool) as caught:
            await run(stage, filled(range(8)))
    assert not isinstance(caught.value, WorkerDiedError)  # the executor's own error
    note = f"pipework: a worker of stage {label(1, stage)} died." + MAIN_GUARD_NOTE.removeprefix(
        "pipework:"
    )
    assert caught.value.__notes__.count(note) == 1


# Cancellation --------------------------------------------------------------------------------


async def test_cancelling_the_stage_kills_its_busy_workers(tmp_path):
    stage = spec(partial(pid_then_wait, str(tmp_path)), on="process", chunksize=1)
    task = asyncio.create_task(run(stage, filled(range(6))))
    with anyio.fail_after(30):
        while len(list(tmp_path.iterdir())) < 2:
            await asyncio.sleep(0.01)
    pids = [int(path.suffix[1:]) for path in tmp_path.iterdir()]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not [pid for pid in pids if alive(pid)]  # gone when the stage returns
    assert not multiprocessing.active_children()
