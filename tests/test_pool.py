"""ExecutorRunner: a stage's chunks on any concurrent.futures.Executor, chunk by chunk.

Each test runs on a thread pool, on the standard process pool and on
pipework's own `ProcessPool`, as a user would pass them with ``on=``. What
is checked is the runner's side of the `Runner` protocol: what a chunk's
outcome holds, that the stage's payload goes once to each worker that
lacks it, that items reach threads as they are and processes pickled, what a
timeout can and cannot stop, and that closing shuts down only a pool the
backend owns.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import secrets
import tempfile
import threading
import time
import traceback
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import anyio
import pytest

from helpers import alive, my_segments
from pipework import ProcessPool
from pipework._errors import ItemTimeoutError
from pipework._executors._pool import ExecutorRunner
from pipework._worker import _buffers as buffers
from pipework._worker._payload import pickle_payload
from pipework._worker._serial import NotPicklableError

pytestmark = pytest.mark.timeout(60)

CONTEXT = multiprocessing.get_context("forkserver")


@pytest.fixture(params=["threads", "processes", "ProcessPool"])
def make(request):
    """Make an executor of the kind under test, shut down at the end of the test."""
    made = []

    def executor(workers=2):
        if request.param == "threads":
            made.append(ThreadPoolExecutor(workers))
        elif request.param == "processes":
            made.append(ProcessPoolExecutor(workers, mp_context=CONTEXT))
        else:
            made.append(ProcessPool(workers))
        return made[-1]

    executor.remote = request.param != "threads"
    yield executor
    for each in made:
        each.shutdown(wait=True, cancel_futures=True)


def backend(executor, fn, setup=None, *, owned=False, capacity=2):
    """Wrap ``executor`` as `open_runner` does for an executor passed with ``on=``."""
    remote = not isinstance(executor, ThreadPoolExecutor)
    payload = pickle_payload(fn, setup, "#1 'test' (executor map)") if remote else (fn, setup)
    return ExecutorRunner(
        executor,
        owned=owned,
        remote=remote,
        capacity=capacity,
        key=buffers.new_key(),
        payload=payload,
        share_memory=remote,  # these pools are all of this host
    )


def wait_for(path, limit=30.0):
    deadline = time.monotonic() + limit
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.005)


async def appear(path):
    with anyio.fail_after(30):
        while not path.exists():
            await asyncio.sleep(0.01)


# Functions the workers run: module-level, so that worker processes import them.


def upto(x):
    return range(x)


def same(x):
    return x


def fail_on_7(x):
    if x == 7:
        raise ValueError("seven")
    return x * 2


def mark(directory):
    """A setup that leaves a file for each time it runs, in whichever worker."""
    os.close(tempfile.mkstemp(dir=directory)[0])
    return "state"


def broken_setup():
    raise OSError("no model file")


def with_state(state, x):
    return (state, x)


def hold_all_but_0(directory, x):
    if x != 0:
        Path(directory, str(os.getpid())).write_text(str(x))
        wait_for(Path(directory, "go"))
    return x


def pid_then_wait_for_go(directory, x):
    Path(directory, str(os.getpid())).write_text(str(x))
    wait_for(Path(directory, "go"))
    return x


# Running chunks ------------------------------------------------------------------------------


async def test_a_chunk_comes_back_shaped_for_its_op_with_its_time(make):
    chunks = backend(make(), upto, capacity=5)
    assert (chunks.capacity, chunks.remote, chunks.supervised) == (5, make.remote, False)
    results, seconds, failure = await chunks.run_chunk("map", [0, 2])
    assert (results, failure) == ([range(0), range(2)], None)
    assert seconds >= 0
    assert (await chunks.run_chunk("filter", [0, 2, 0]))[0] == [False, True, False]
    assert (await chunks.run_chunk("flat_map", [1, 3], tracked=True))[0] == [[0], [0, 1, 2]]
    await chunks.aclose(aborted=False)


async def test_the_payload_goes_once_to_each_worker_and_its_setup_runs_once_there(make, tmp_path):
    chunks = backend(make(1), with_state, partial(mark, str(tmp_path)))
    for x in range(4):
        assert (await chunks.run_chunk("map", [x]))[0] == [("state", x)]
    assert len(list(tmp_path.iterdir())) == 1
    await chunks.aclose(aborted=False)


async def test_two_stages_on_one_executor_keep_their_own_functions(make):
    executor = make(1)
    first, second = backend(executor, upto), backend(executor, fail_on_7)
    for _ in range(2):
        assert (await first.run_chunk("map", [1]))[0] == [range(1)]
        assert (await second.run_chunk("map", [1]))[0] == [2]


async def test_a_failing_item_comes_back_with_its_position_and_the_results_before_it(make):
    chunks = backend(make(), fail_on_7)
    results, _, (position, error, remote_traceback) = await chunks.run_chunk("map", [5, 6, 7, 8])
    assert (results, position) == ([10, 12], 2)
    assert isinstance(error, ValueError)
    if make.remote:  # the worker's frames, which do not survive pickling otherwise
        assert "fail_on_7" in remote_traceback
    else:  # the very exception, its traceback on it
        assert remote_traceback is None
        assert "fail_on_7" in [frame.name for frame in traceback.extract_tb(error.__traceback__)]


async def test_a_setup_that_raises_fails_each_chunk_at_minus_one(make):
    chunks = backend(make(1), with_state, broken_setup)
    for _ in range(2):  # a failed setup is not kept: it is not a loaded stage
        results, _, (position, error, _) = await chunks.run_chunk("map", [1, 2])
        assert (results, position) == ([], -1)
        assert isinstance(error, OSError)


async def test_items_reach_threads_as_they_are_and_processes_only_if_they_pickle(make):
    chunks = backend(make(), same)
    lock = threading.Lock()
    if make.remote:
        with pytest.raises(NotPicklableError) as caught:
            await chunks.run_chunk("map", [1, lock])
        assert caught.value.position == 1
    else:
        [got] = (await chunks.run_chunk("map", [lock]))[0]
        assert got is lock  # not copied


# Timeouts ------------------------------------------------------------------------------------


async def test_a_chunk_past_its_timeout_fails_but_only_a_process_pool_can_stop_its_call(
    make, tmp_path
):
    executor = make(1)
    chunks = backend(executor, partial(hold_all_but_0, str(tmp_path)))
    assert (await chunks.run_chunk("map", [0], item_timeout=30))[0] == [0]  # loaded, and fast
    # Ample for a loaded worker to begin the item, whose clock may start at sending.
    with pytest.raises(ItemTimeoutError) as caught:
        await chunks.run_chunk("map", [1], item_timeout=0.3)
    assert caught.value.position == 0
    assert caught.value.timeout == 0.3
    with anyio.fail_after(30):
        while not (markers := list(tmp_path.iterdir())):
            await asyncio.sleep(0.01)
    pid = int(markers[0].name)
    if isinstance(executor, ProcessPool):  # cancelling its running call kills the worker
        with anyio.fail_after(30):
            while alive(pid):
                await asyncio.sleep(0.01)
    else:
        assert alive(pid)  # the call goes on, in a thread or in the standard pool's worker
    (tmp_path / "go").touch()
    assert (await chunks.run_chunk("map", [3], item_timeout=30))[0] == [3]


async def test_a_timeout_times_a_whole_chunk_so_it_pins_no_item_of_several():
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        chunks = backend(pool, lambda x: release.wait(30) and x)
        try:
            with pytest.raises(ItemTimeoutError) as caught:
                await chunks.run_chunk("map", [1, 2], item_timeout=0.1)
        finally:
            release.set()
    assert caught.value.position is None


# Closing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("aborted", [False, True])
async def test_closing_leaves_an_executor_the_backend_does_not_own_open(make, aborted):
    executor = make(1)
    chunks = backend(executor, upto)
    await chunks.run_chunk("map", [1])
    await chunks.aclose(aborted=aborted)
    assert executor.submit(abs, -4).result(timeout=30) == 4


async def test_closing_an_owned_pool_after_a_clean_run_waits_for_its_calls(tmp_path):
    pool = ThreadPoolExecutor(1)
    chunks = backend(pool, partial(pid_then_wait_for_go, str(tmp_path)), owned=True)
    running = asyncio.create_task(chunks.run_chunk("map", [5]))
    await appear(tmp_path / str(os.getpid()))
    closing = asyncio.create_task(chunks.aclose(aborted=False))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not closing.done()
    (tmp_path / "go").touch()
    with anyio.fail_after(30):
        assert (await running)[0] == [5]
        await closing
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(abs, 1)


async def test_closing_an_owned_pool_of_an_aborted_run_drops_the_calls_that_wait(tmp_path):
    pool = ThreadPoolExecutor(1)
    release, ran = threading.Event(), []

    def blocked(x):
        ran.append(x)
        release.wait(30)
        return x

    chunks = backend(pool, blocked, owned=True)
    running = asyncio.create_task(chunks.run_chunk("map", [0]))
    waiting = asyncio.create_task(chunks.run_chunk("map", [1]))
    try:
        with anyio.fail_after(30):
            while not ran:
                await asyncio.sleep(0.005)
            await chunks.aclose(aborted=True)  # returns with the thread still busy
        assert not release.is_set()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        release.set()
    assert (await running)[0] == [0]
    pool.shutdown(wait=True)
    assert ran == [0]  # the call that waited never ran


@pytest.mark.skipif(not buffers.SHM_DIR.is_dir(), reason="no /dev/shm here")
async def test_closing_removes_the_segments_left_under_its_stage_and_no_others():
    chunks = backend(ThreadPoolExecutor(1), upto, owned=True)
    ours = buffers.SHM_DIR / f"{chunks._prefix}{secrets.token_hex(8)}"
    theirs = buffers.SHM_DIR / f"{buffers.prefix_for(buffers.new_key())}{secrets.token_hex(8)}"
    ours.write_bytes(b"a result no one read")
    theirs.write_bytes(b"another stage's")
    try:
        await chunks.aclose(aborted=True)
        assert not ours.exists()
        assert theirs.exists()
    finally:
        ours.unlink(missing_ok=True)
        theirs.unlink(missing_ok=True)


def big_after(seconds):
    time.sleep(seconds)
    import numpy as np

    return np.ones(1 << 18)  # 2 MB: its buffer goes back through /dev/shm


@pytest.mark.timeout(60)
async def test_a_call_given_up_on_a_users_pool_leaves_no_segment_when_it_ends(tmp_path):
    pytest.importorskip("numpy")
    with ProcessPoolExecutor(1, mp_context=CONTEXT) as pool:
        chunks = backend(pool, big_after)
        await chunks.run_chunk("map", [0.0])  # the worker has the stage
        with pytest.raises(ItemTimeoutError):
            await chunks.run_chunk("map", [1.0], item_timeout=0.2)
        await chunks.aclose(aborted=False)  # the stage ends, as run() returns
    # Leaving the pool waited for the call, whose result came back late.
    assert my_segments() == []


class Elsewhere(Executor):
    """An executor not known to run on this host, as a cluster's would be.

    It hands its calls to a local process pool, so the test can run; what
    matters is that pipework cannot know where they go.
    """

    def __init__(self, workers):
        self._pool = ProcessPoolExecutor(workers, mp_context=CONTEXT)

    def submit(self, fn, /, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


@pytest.mark.timeout(60)
async def test_an_executor_not_known_to_be_local_gets_large_buffers_in_band():
    np = pytest.importorskip("numpy")
    from pipework import Pipeline

    seen = []

    def check(a):
        seen.append(my_segments())
        return a

    with Elsewhere(1) as pool:
        arrays = [
            a
            async for a in Pipeline(range(3)).map(lambda i: np.full(1 << 18, i), on=pool).map(check)
        ]
    assert [int(a[-1]) for a in arrays] == [0, 1, 2]
    assert seen == [[], [], []]
