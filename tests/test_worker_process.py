"""One worker process of a supervised pool: starting it, its frames, reaping it, telling its end.

Real worker processes throughout: `start_worker` starts one from the fork
server, and the test reads its frames on its own event loop; `reap`,
`join_all` and `death` are given processes that really exited, were killed,
or will not exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import alive
from pipework._executors import _worker_process
from pipework._executors._processes import worker_context, worker_environment
from pipework._executors._wire import Call, Ready, Reply, StartFailed
from pipework._executors._worker_process import (
    EXIT_GRACE,
    PendingCall,
    PoolOptions,
    Worker,
    death,
    join_all,
    position,
    reap,
    start_worker,
)
from pipework._worker._tracker import Tracker

pytestmark = pytest.mark.timeout(60)

VARIABLE = "PIPEWORK_TEST_WORKER_PROCESS"


def context():
    return worker_context(worker_environment(1))


# What workers run: module-level, so that plain pickle sends them by reference.


def set_variable(name, value):
    os.environ[name] = value


def variable(name):
    return os.environ.get(name)


def refuse_to_start():
    raise RuntimeError("no start for you")


def mark(at, *, tracker):
    tracker.begin(at)
    return at


def fail(text):
    raise ValueError(text)


class Frames:
    """What a worker sent, decoded, in order, and whether its socket was lost."""

    def __init__(self):
        self.messages = asyncio.Queue()
        self.lost = asyncio.Event()
        self.losses = 0

    def on_frame(self, worker, frame):
        assert isinstance(worker, Worker)
        self.messages.put_nowait(pickle.loads(frame))

    def on_lost(self, worker):
        assert isinstance(worker, Worker)
        self.losses += 1
        self.lost.set()

    async def next(self):
        return await asyncio.wait_for(self.messages.get(), 30)


@contextlib.asynccontextmanager
async def started(options=None):
    """Start a real worker; kill it and wait for its socket to close, however the test ends."""
    frames = Frames()
    worker = await start_worker(
        options or PoolOptions(workers=1, context=context()), frames.on_frame, frames.on_lost
    )
    try:
        yield worker, frames
    finally:
        if worker.process.exitcode is None:
            worker.process.kill()
        await asyncio.to_thread(worker.process.join)
        await asyncio.wait_for(frames.lost.wait(), 30)


async def call(worker, frames, fn, *args, tracked=False):
    assert worker.protocol.send(pickle.dumps(Call(fn, args, tracked), protocol=5))
    return await frames.next()


def process(target, *args):
    """A plain process of the workers' context, started."""
    child = context().Process(target=target, args=args)
    child.start()
    return child


# PoolOptions, PendingCall, Worker ---------------------------------------------


def test_pool_options_have_no_initializer_and_no_limits_by_default_and_are_frozen():
    options = PoolOptions(workers=2, context=context())
    assert options.initializer is None
    assert options.initargs == ()
    assert options.max_tasks is None
    assert options.max_memory is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.workers = 3  # type: ignore[misc]
    assert dataclasses.replace(options, max_tasks=5).max_tasks == 5
    assert options.max_tasks is None


async def test_a_pending_call_keeps_its_frame_and_future_and_starts_unsent():
    future = asyncio.get_running_loop().create_future()
    pending = PendingCall(b"frame", future, tracked=True, timeout=1.5)
    assert (pending.frame, pending.future, pending.tracked, pending.timeout) == (
        b"frame",
        future,
        True,
        1.5,
    )
    assert pending.sent_at == 0.0
    assert pending.clock_from == 0.0
    assert pending.timer is None
    assert pending.timed_out is False
    with pytest.raises(AttributeError):
        pending.extra = 1  # slots: a misspelt attribute fails rather than hides


def test_a_new_worker_is_not_ready_and_has_run_no_call():
    tracker = Tracker(context())
    worker = Worker("the process", tracker)
    assert worker.process == "the process"
    assert worker.tracker is tracker
    assert worker.call is None
    assert worker.calls_done == 0
    assert worker.ready is False
    assert worker.retiring is False


# death -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exitcode", "said"),
    [
        (None, "died"),
        (0, "exited with code 0"),
        (3, "exited with code 3"),
        (-signal.SIGKILL, "was killed by SIGKILL"),
        (-signal.SIGTERM, "was killed by SIGTERM"),
        (-signal.SIGSEGV, "was killed by SIGSEGV"),
        (-200, "was killed by signal 200"),  # no such signal anywhere
    ],
)
def test_death_says_how_a_process_ended(exitcode, said):
    assert death(exitcode) == said


# start_worker ------------------------------------------------------------------


async def test_a_started_worker_says_it_is_ready_with_its_own_pid():
    async with started() as (worker, frames):
        ready = await frames.next()
        assert ready == Ready(worker.process.pid)
        assert worker.process.pid != os.getpid()
        assert worker.process.name == "pipework-worker"
        assert alive(worker.process.pid)
        assert worker.ready is False  # the pool, not start_worker, marks it ready
        assert frames.losses == 0


async def test_each_call_frame_gets_its_reply_frame_in_order():
    async with started() as (worker, frames):
        ready = await frames.next()
        assert await call(worker, frames, os.getpid) == Reply(ready.pid, None, None, 0)
        failed = await call(worker, frames, fail, "bad item")
        assert failed.value is None
        assert isinstance(failed.error, ValueError)
        assert str(failed.error) == "bad item"
        assert "in fail" in failed.traceback  # the worker's own traceback
        assert (await call(worker, frames, abs, -7)).value == 7  # it goes on after a failure
        # Two frames sent at once are answered one after the other.
        for value in (-1, -2):
            assert worker.protocol.send(pickle.dumps(Call(abs, (value,), False)))
        assert [(await frames.next()).value for _ in range(2)] == [1, 2]


async def test_a_worker_told_to_stop_exits_with_code_zero_and_its_socket_is_lost_once():
    async with started() as (worker, frames):
        await frames.next()
        assert worker.protocol.send(b"")
        await asyncio.wait_for(frames.lost.wait(), 30)
        code = await reap(worker.process)
        assert code == 0
        assert death(code) == "exited with code 0"
        assert not alive(worker.process.pid)
    assert frames.losses == 1


async def test_a_killed_worker_is_lost_and_reaped_as_killed_by_sigkill():
    async with started() as (worker, frames):
        await frames.next()
        os.kill(worker.process.pid, signal.SIGKILL)
        await asyncio.wait_for(frames.lost.wait(), 30)
        code = await reap(worker.process)
        assert code == -signal.SIGKILL
        assert death(code) == "was killed by SIGKILL"


async def test_the_initializer_runs_with_its_initargs_in_the_worker_before_it_is_ready():
    options = PoolOptions(
        workers=1, context=context(), initializer=set_variable, initargs=(VARIABLE, "42")
    )
    async with started(options) as (worker, frames):
        assert isinstance(await frames.next(), Ready)
        assert (await call(worker, frames, variable, VARIABLE)).value == "42"
    assert VARIABLE not in os.environ  # it ran there, not here


async def test_a_failing_initializer_is_told_as_start_failed_and_the_worker_exits_with_code_1():
    options = PoolOptions(workers=1, context=context(), initializer=refuse_to_start)
    async with started(options) as (worker, frames):
        failed = await frames.next()
        assert isinstance(failed, StartFailed)
        assert isinstance(failed.error, RuntimeError)
        assert str(failed.error) == "no start for you"
        assert "refuse_to_start" in failed.traceback
        await asyncio.wait_for(frames.lost.wait(), 30)
        assert await reap(worker.process) == 1


async def test_the_worker_measures_its_memory_only_when_the_pool_has_a_memory_limit():
    async with started() as (worker, frames):
        await frames.next()
        assert (await call(worker, frames, abs, 1)).rss == 0
    options = PoolOptions(workers=1, context=context(), max_memory=1 << 40)
    async with started(options) as (worker, frames):
        await frames.next()
        rss = (await call(worker, frames, abs, 1)).rss
        assert 1 << 20 < rss < 1 << 40  # a Python process takes megabytes, not terabytes


async def test_a_worker_that_cannot_start_leaves_no_process_and_no_open_socket():
    # The initargs go to the process as it starts, so a lock fails there.
    options = PoolOptions(
        workers=1, context=context(), initializer=set_variable, initargs=(threading.Lock(),)
    )
    frames = Frames()

    def fds():
        gc.collect()  # what earlier tests left for the collector is not this test's
        return len(list(Path("/proc/self/fd").iterdir()))

    with pytest.raises(TypeError, match="pickle"):
        await start_worker(options, frames.on_frame, frames.on_lost)
    after_one = fds()
    for _ in range(3):
        with pytest.raises(TypeError, match="pickle"):
            await start_worker(options, frames.on_frame, frames.on_lost)
    # No socket pair left open per failed start. Fewer is possible: another
    # test's pipes may close meanwhile; more would be a leak.
    assert fds() <= after_one
    assert multiprocessing.active_children() == []
    assert frames.messages.empty()


async def test_a_start_cancelled_before_its_process_exists_leaves_no_process():
    frames = Frames()
    options = PoolOptions(workers=1, context=context())
    task = asyncio.create_task(start_worker(options, frames.on_frame, frames.on_lost))
    await asyncio.sleep(0)  # the start is under way, its thread not yet running
    task.cancel()
    await asyncio.wait([task], timeout=30)
    assert task.done()
    if task.cancelled():
        assert multiprocessing.active_children() == []  # nothing started unreachable
        return
    # Or it got far enough to finish: then the caller has the worker.
    worker = task.result()
    assert multiprocessing.active_children() == [worker.process]
    worker.process.kill()
    await asyncio.wait_for(frames.lost.wait(), 30)
    await reap(worker.process)


async def test_a_start_cancelled_once_its_process_exists_stops_that_process():
    # Before: asyncio's own cancel went through anyio's shield just as the
    # thread had started the process, and the process was left to no one.
    frames = Frames()
    options = PoolOptions(workers=1, context=context())
    task = asyncio.create_task(start_worker(options, frames.on_frame, frames.on_lost))
    for _ in range(5):
        await asyncio.sleep(0)  # the start is under way: process.start() runs in a thread
    deadline = time.monotonic() + 30
    while not multiprocessing.active_children() and time.monotonic() < deadline:
        # Hold the loop until the process exists, as a busy loop would.
        time.sleep(0.001)  # noqa: ASYNC251 - blocking on purpose
    task.cancel()
    await asyncio.wait([task], timeout=30)
    assert task.cancelled()
    assert multiprocessing.active_children() == []  # stopped, not left behind


# position ----------------------------------------------------------------------


async def test_position_reads_where_a_tracked_call_got_to_in_a_real_worker():
    async with started() as (worker, frames):
        await frames.next()
        tracked = PendingCall(
            b"", asyncio.get_running_loop().create_future(), tracked=True, timeout=None
        )
        untracked = PendingCall(b"", tracked.future, tracked=False, timeout=None)
        tracked.sent_at = untracked.sent_at = time.monotonic()
        assert (await call(worker, frames, mark, 4, tracked=True)).value == 4
        assert position(worker.tracker, tracked) == 4
        assert position(worker.tracker, untracked) is None
        tracked.sent_at = time.monotonic()  # a later call the worker has not begun
        assert position(worker.tracker, tracked) is None


def test_position_is_none_while_the_chunk_is_being_read_and_for_an_earlier_mark():
    tracker = Tracker(context())
    call = PendingCall(b"", None, tracked=True, timeout=None)  # type: ignore[arg-type]
    tracker.begin(0)
    assert position(tracker, call) == 0  # marked after a call sent at 0.0
    tracker.begin(-1)
    assert position(tracker, call) is None  # read, but no item begun
    tracker.begin(7)
    call.sent_at = time.monotonic() + 60
    assert position(tracker, call) is None  # the mark is an earlier call's


# reap --------------------------------------------------------------------------


async def test_reap_returns_the_code_a_process_exits_with():
    child = process(sys.exit, 3)
    assert await reap(child) == 3
    assert not alive(child.pid)


async def test_threads_that_poll_a_dead_worker_at_once_all_read_its_real_exit_status():
    # Under forkserver two polls at once used to leave 255 for one of them:
    # a replacement's start() polls every child while the loop reaps.
    for _ in range(20):
        async with started() as (worker, frames):
            go = threading.Event()
            seen = []

            def spin(child=worker.process, go=go, seen=seen):
                go.wait()
                while child.exitcode is None:
                    pass
                seen.append(child.exitcode)

            threads = [threading.Thread(target=spin) for _ in range(2)]
            for thread in threads:
                thread.start()
            worker.process.kill()
            go.set()
            await asyncio.wait_for(frames.lost.wait(), 30)
            assert await reap(worker.process) == -signal.SIGKILL
            for thread in threads:
                await asyncio.to_thread(thread.join, 30)
            assert seen == [-signal.SIGKILL, -signal.SIGKILL]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
async def test_reap_of_a_process_killed_by_a_signal_returns_the_signal_death_names(signum):
    child = process(time.sleep, 60)
    os.kill(child.pid, signum)
    code = await reap(child)
    assert code == -signum
    assert death(code) == f"was killed by {signum.name}"


async def test_reap_kills_a_process_that_is_still_running_past_the_grace_time(monkeypatch):
    monkeypatch.setattr(_worker_process, "EXIT_GRACE", 0.2)
    child = process(time.sleep, 60)
    assert await reap(child) == -signal.SIGKILL
    assert not alive(child.pid)


# join_all ----------------------------------------------------------------------


def test_join_all_waits_for_processes_that_are_exiting_and_kills_none_of_them():
    assert EXIT_GRACE >= 1  # time enough for a 0.2 s sleep, even on a loaded machine
    children = [process(time.sleep, 0.2), process(sys.exit, 5)]
    join_all(children)
    assert [child.exitcode for child in children] == [0, 5]


def test_join_all_kills_the_processes_still_running_past_the_grace_time(monkeypatch):
    monkeypatch.setattr(_worker_process, "EXIT_GRACE", 0.3)
    done, stuck, also_stuck = process(sys.exit, 4), process(time.sleep, 60), process(time.sleep, 60)
    done.join(30)
    join_all([done, stuck, also_stuck])
    assert [child.exitcode for child in (done, stuck, also_stuck)] == [
        4,
        -signal.SIGKILL,
        -signal.SIGKILL,
    ]
    assert not alive(stuck.pid)
    assert not alive(also_stuck.pid)
