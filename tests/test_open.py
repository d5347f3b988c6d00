"""open_runner: what each kind of ``on=`` opens, that it runs chunks, and that closing stops it.

Real backends throughout: a supervised pool of worker processes for
``"process"``, a thread pool for ``"thread"``, and the user's own executors
(a thread pool, a process pool, pipework's ``ProcessPool``, an executor of
no known kind), which the backend uses and never shuts down.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor

import anyio
import pytest

import pipework
from helpers import alive
from pipework import Pipeline, UnpicklableError, WorkerDiedError
from pipework._executors import default_workers, open_runner
from pipework._executors._local import ProcessRunner
from pipework._executors._pool import ExecutorRunner
from pipework._executors._processes import worker_context, worker_environment
from pipework._worker import _buffers as buffers
from pipework._worker import _serial as serial
from pipework._worker._payload import pickle_payload

np = pytest.importorskip("numpy")

pytestmark = pytest.mark.timeout(60)


async def opened(on, fn, *, setup=None, workers=None, stage="stage", payload=None):
    return await open_runner(on, fn=fn, setup=setup, workers=workers, stage=stage, payload=payload)


def unpicklable_fn():
    lock = threading.Lock()

    def under_lock(x):
        with lock:
            return x

    return under_lock


def threads_named(prefix):
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


class InlineExecutor(Executor):
    """An executor of no kind pipework knows: it runs each call as it is submitted."""

    def __init__(self):
        self.calls = 0

    def submit(self, fn, /, *args, **kwargs):
        self.calls += 1
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


# on="process" ---------------------------------------------------------------------


async def test_on_process_opens_a_supervised_pool_whose_workers_run_setup_and_chunks():
    def where(state, x):
        return state, os.getpid(), x * 2

    backend = await opened("process", where, setup=os.getpid, workers=2, stage="double")
    try:
        assert isinstance(backend, ProcessRunner)
        assert (backend.capacity, backend.remote, backend.supervised) == (2, True, True)
        pids = {worker.process.pid for worker in backend._pool._workers}
        assert len(pids) == 2
        assert os.getpid() not in pids
        results, _, failure = await backend.run_chunk("map", [1, 2, 3])
        assert failure is None
        assert [x for _, _, x in results] == [2, 4, 6]
        for state, pid, _ in results:
            assert pid in pids
            assert state == pid  # setup ran in that worker, once
    finally:
        await backend.aclose(aborted=False)
    assert not any(alive(pid) for pid in pids)


async def test_on_process_runs_the_payload_pickled_at_build_time_rather_than_fn():
    payload = pickle_payload(lambda x: ("from the payload", x), None, "stage")
    backend = await opened("process", lambda x: ("from fn", x), workers=1, payload=payload)
    try:
        results, _, _ = await backend.run_chunk("map", [7])
        assert results == [("from the payload", 7)]
    finally:
        await backend.aclose(aborted=False)


async def test_on_process_refuses_a_function_that_cannot_be_pickled_before_any_worker_starts():
    with pytest.raises(UnpicklableError, match="stage the-stage: its function or setup"):
        await opened("process", unpicklable_fn(), workers=1, stage="the-stage")
    assert multiprocessing.active_children() == []


async def test_an_aborted_process_backend_kills_the_worker_in_the_middle_of_its_chunk(tmp_path):
    def hang(x):
        (tmp_path / str(os.getpid())).touch()
        time.sleep(60)
        return x

    backend = await opened("process", hang, workers=1)
    chunk = asyncio.create_task(backend.run_chunk("map", [np.zeros(1 << 20)]))
    with anyio.fail_after(30):
        while not list(tmp_path.iterdir()):  # the item has begun
            await asyncio.sleep(0.01)
    [pid] = [int(path.name) for path in tmp_path.iterdir()]
    await backend.aclose(aborted=True)  # well before the 60 s the item would take
    assert not alive(pid)
    # Not matched on "killed by SIGKILL": now and then the pool reads the
    # status as "exited with code 255": a known, unfixed misreport of the status.
    with pytest.raises(WorkerDiedError, match="while it ran a call"):
        await chunk
    assert segments(backend._prefix) == []


# on="thread" ----------------------------------------------------------------------


async def test_on_thread_runs_items_as_they_are_in_threads_named_after_the_stage():
    def where(state, item):
        return state == threading.get_ident(), threading.current_thread().name, item

    backend = await opened("thread", where, setup=threading.get_ident, workers=3, stage="tstage")
    try:
        assert isinstance(backend, ExecutorRunner)
        assert (backend.capacity, backend.remote, backend.supervised) == (3, False, False)
        lock = threading.Lock()  # not picklable: nothing is pickled for a thread
        results, _, failure = await backend.run_chunk("map", [lock, "x"])
        assert failure is None
        assert [item for _, _, item in results] == [lock, "x"]
        assert results[0][2] is lock
        for same_thread, name, _ in results:
            assert same_thread  # setup ran in the thread that runs the items
            assert name.startswith("pipework-tstage")
        assert threads_named("pipework-tstage")
    finally:
        await backend.aclose(aborted=False)
    assert threads_named("pipework-tstage") == []


async def test_on_thread_takes_a_function_that_cannot_be_pickled():
    backend = await opened("thread", unpicklable_fn(), workers=1)
    try:
        assert (await backend.run_chunk("map", [1, 2]))[0] == [1, 2]
    finally:
        await backend.aclose(aborted=False)


async def test_on_thread_without_workers_has_as_many_threads_as_the_standard_thread_pool():
    backend = await opened("thread", abs)
    try:
        assert backend.capacity == min(32, default_workers() + 4)
        assert backend._executor._max_workers == backend.capacity
    finally:
        await backend.aclose(aborted=False)


async def test_an_aborted_thread_backend_returns_without_waiting_for_a_running_chunk():
    running, release = threading.Event(), threading.Event()

    def blocks(x):
        running.set()
        release.wait(30)
        return x

    backend = await opened("thread", blocks, workers=1, stage="aborting")
    chunk = asyncio.create_task(backend.run_chunk("map", [5]))
    try:
        assert await anyio.to_thread.run_sync(running.wait, 30)
        await backend.aclose(aborted=True)
        assert not chunk.done()  # closed while the item still ran
        assert not release.is_set()
    finally:
        release.set()
    # The thread finishes on its own; the chunk it ran still completes.
    assert (await asyncio.wait_for(chunk, 30))[0] == [5]


# on=<an executor of the user's> ----------------------------------------------------------


async def test_a_users_thread_pool_runs_items_as_they_are_and_is_left_open():
    with ThreadPoolExecutor(2, thread_name_prefix="users") as pool:
        backend = await opened(pool, lambda x: (threading.current_thread().name, x))
        assert isinstance(backend, ExecutorRunner)
        assert (backend.capacity, backend.remote, backend.supervised) == (2, False, False)
        lock = threading.Lock()
        [(name, item)], _, _ = await backend.run_chunk("map", [lock])
        assert item is lock
        assert name.startswith("users")
        await backend.aclose(aborted=False)
        assert pool.submit(abs, -3).result(timeout=10) == 3  # still open
        wider = await opened(pool, abs, workers=5)
        assert wider.capacity == 5  # workers= wins over the pool's own size
        await wider.aclose(aborted=True)
        assert pool.submit(abs, -4).result(timeout=10) == 4


async def test_a_users_process_pool_gets_the_function_pickled_and_is_left_open():
    context = worker_context(worker_environment(1))
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        backend = await opened(pool, lambda x: (os.getpid(), -x))
        assert isinstance(backend, ExecutorRunner)
        assert (backend.capacity, backend.remote, backend.supervised) == (1, True, False)
        [(pid, value)], _, failure = await backend.run_chunk("map", [3])
        assert failure is None
        assert value == -3
        assert pid != os.getpid()
        await backend.aclose(aborted=False)
        assert pool.submit(os.getpid).result(timeout=30) == pid  # open, same worker


async def test_a_pipework_process_pool_serves_as_on_and_is_left_open():
    with pipework.ProcessPool(2) as pool:
        backend = await opened(pool, lambda x: (os.getpid(), x + 1))
        assert (backend.capacity, backend.remote) == (2, True)
        results, _, failure = await backend.run_chunk("map", [1, 2])
        assert failure is None
        assert [x for _, x in results] == [2, 3]
        assert os.getpid() not in {pid for pid, _ in results}
        await backend.aclose(aborted=False)
        assert pool.submit(abs, -1).result(timeout=30) == 1


async def test_an_executor_of_no_known_kind_is_sent_the_function_pickled():
    executor = InlineExecutor()
    backend = await opened(executor, lambda base, x: base + x, setup=lambda: 100)
    assert isinstance(backend, ExecutorRunner)
    assert backend.remote  # it could be anything: items are pickled for it
    assert backend.capacity == default_workers()  # it says nothing of its size
    results, _, failure = await backend.run_chunk("map", [1, 2])
    assert failure is None
    assert results == [101, 102]
    assert executor.calls == 2  # the worker lacked the stage once: sent again with it
    assert (await opened(executor, abs, workers=3)).capacity == 3


@pytest.mark.parametrize("kind", ["process pool", "other"])
async def test_an_executor_that_is_not_a_thread_pool_refuses_a_function_that_cannot_be_pickled(
    kind,
):
    context = worker_context(worker_environment(1))
    executor = InlineExecutor() if kind == "other" else ProcessPoolExecutor(1, mp_context=context)
    try:
        with pytest.raises(UnpicklableError, match="stage mine: its function or setup"):
            await opened(executor, unpicklable_fn(), stage="mine")
    finally:
        executor.shutdown()
    assert multiprocessing.active_children() == []


# on=<an engine> ----------------------------------------------------------------------


class ThreadEngine:
    """A real engine of the smallest kind: its "cluster" is a thread pool in this process."""

    name = "threads"

    def __init__(self, capacity):
        self.capacity = capacity
        self.plans = []
        self.closed = []

    async def open(self, plan):
        self.plans.append(plan)
        return ThreadWorkers(self, plan)


class ThreadWorkers:
    def __init__(self, engine, plan):
        self.engine = engine
        self.plan = plan
        self.capacity = engine.capacity
        self.abilities = pipework.Abilities()

    async def run(self, chunk):
        return await anyio.to_thread.run_sync(
            pipework.work, self.plan.key, self.plan.payload, chunk
        )

    async def aclose(self, *, aborted):
        self.engine.closed.append(aborted)


async def test_an_engine_is_opened_with_the_stages_plan_and_its_workers_run_the_chunks():
    engine = ThreadEngine(capacity=4)
    backend = await opened(engine, lambda x: x * 3, workers=2, stage="on-engine")
    assert (backend.capacity, backend.remote, backend.supervised) == (2, True, False)
    [plan] = engine.plans
    assert plan.stage == "on-engine"
    assert plan.workers == 2
    assert plan.key.startswith(f"{os.getpid()}-")
    results, _, failure = await backend.run_chunk("map", [1, 2])
    assert failure is None
    assert results == [3, 6]
    await backend.aclose(aborted=True)
    assert engine.closed == [True]
    own = await opened(engine, abs)
    assert own.capacity == 4  # no workers=: the engine's own
    await own.aclose(aborted=False)
    assert engine.closed == [True, False]


@pytest.mark.parametrize(("on", "error"), [("gpu", ValueError), (42, TypeError)])
async def test_a_bad_on_is_refused_when_the_stage_is_built_before_anything_opens(on, error):
    threads = set(threading.enumerate())
    with pytest.raises(error, match="on= must be 'thread', 'process'"):
        Pipeline(range(3)).map(abs, on=on)
    assert multiprocessing.active_children() == []
    assert set(threading.enumerate()) <= threads


# Shared memory ---------------------------------------------------------------------


def segments(prefix="pipework-"):
    return sorted(p.name for p in buffers.SHM_DIR.iterdir() if p.name.startswith(prefix))


def a_dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


async def test_opening_a_backend_sweeps_a_dead_parents_segments_and_leaves_live_ones():
    orphan = buffers.SHM_DIR / f"pipework-{a_dead_pid()}-{'a' * 16}-{'b' * 16}"
    live = buffers.SHM_DIR / f"pipework-{os.getpid()}-{'c' * 16}-{'d' * 16}"
    orphan.write_bytes(b"left by a parent that was killed")
    live.write_bytes(b"a run of this process that goes on")
    try:
        backend = await opened("thread", abs, workers=1)
        await backend.aclose(aborted=False)
        assert not orphan.exists()
        assert live.exists()
    finally:
        orphan.unlink(missing_ok=True)
        live.unlink(missing_ok=True)


async def test_each_backend_has_its_own_segments_and_closing_one_removes_only_its_own():
    first = await opened("thread", abs, workers=1)
    second = await opened(InlineExecutor(), abs)
    assert first._prefix != second._prefix
    assert all(b._prefix.startswith(f"pipework-{os.getpid()}-") for b in (first, second))
    # What a chunk cut short leaves: its results, written, never read.
    for backend in (first, second):
        serial.pack(np.ones(1 << 18), backend._prefix)
    assert len(segments(first._prefix)) == len(segments(second._prefix)) == 1
    await first.aclose(aborted=True)
    assert segments(first._prefix) == []
    assert len(segments(second._prefix)) == 1
    await second.aclose(aborted=False)
    assert segments(second._prefix) == []
