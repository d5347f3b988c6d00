"""ProcessRunner, the runner of process stages, driven as a stage drives it: chunk by chunk.

What is checked is the runner's side of the `Runner` protocol on real
worker processes: how many chunks run at once, what a chunk's outcome holds
for each op and for a failure, that a setup that failed as a worker started
is reported as the chunk's, that a death or an overrun is pinned on its item
when tracked and leaves the backend serving, and what closing does to the
chunks still running and to the stage's shared-memory segments.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import anyio
import pytest

from helpers import alive
from pipework._errors import ItemTimeoutError, WorkerDiedError
from pipework._executors._local import ProcessRunner
from pipework._executors._processes import stage_pool_options
from pipework._worker import _buffers as buffers
from pipework._worker._payload import pickle_payload
from pipework._worker._serial import NotPicklableError

pytestmark = pytest.mark.timeout(60)


async def start(fn, *, setup=None, workers=1):
    key = buffers.new_key()
    payload = pickle_payload(fn, setup, "#1 'test' (process map)")
    options = stage_pool_options(workers, key=key, payload=payload, fn=fn)
    return await ProcessRunner.start(options, key=key, payload=payload), key


@contextlib.asynccontextmanager
async def started(fn, **options):
    backend, _ = await start(fn, **options)
    aborted = True
    try:
        with anyio.fail_after(40):
            yield backend
        aborted = False
    finally:
        await backend.aclose(aborted=aborted)


async def appear(directory, count):
    """Wait until the folder ``directory`` holds ``count`` files, left by worker processes."""
    with anyio.fail_after(30):
        while len(list(directory.iterdir())) < count:
            await asyncio.sleep(0.01)


def wait_for(path, limit=30.0):
    deadline = time.monotonic() + limit
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.005)


# Functions the workers run: module-level, so that worker processes import them.


def upto(x):
    return range(x)


def fail_on_7(x):
    if x == 7:
        raise ValueError("seven")
    return x * 2


def mark(directory):
    """A setup that leaves a file for each time it runs."""
    os.close(tempfile.mkstemp(dir=directory)[0])
    return directory


def mark_then_fail(directory):
    mark(directory)
    raise OSError("no model file")


def with_state(state, x):
    return (state, x)


def exit_on_1(x):
    if x == 1:
        os._exit(3)
    return x


def hang_on_1(directory, x):
    if x == 1:
        Path(directory, str(os.getpid())).touch()
        time.sleep(60)
    return x


def pid_then_wait_for_go(directory, x):
    Path(directory, f"{x}.{os.getpid()}").touch()
    wait_for(Path(directory, "go"))
    return x


# Running chunks ------------------------------------------------------------------------------


async def test_a_chunk_comes_back_shaped_for_its_op_with_its_time():
    async with started(upto) as backend:
        assert (backend.capacity, backend.supervised, backend.remote) == (1, True, True)
        results, seconds, failure = await backend.run_chunk("map", [0, 2])
        assert (results, failure) == ([range(0), range(2)], None)
        assert seconds >= 0
        assert (await backend.run_chunk("filter", [0, 2, 0]))[0] == [False, True, False]
        assert (await backend.run_chunk("flat_map", [1, 3]))[0] == [[0], [0, 1, 2]]


async def test_a_failing_item_comes_back_with_its_position_and_the_results_before_it():
    async with started(fail_on_7) as backend:
        results, _, failure = await backend.run_chunk("map", [5, 6, 7, 8])
        assert results == [10, 12]
        position, error, remote_traceback = failure
        assert position == 2
        assert isinstance(error, ValueError)
        assert str(error) == "seven"
        assert "fail_on_7" in remote_traceback
        results, _, failure = await backend.run_chunk("map", [8], tracked=True)
        assert (results, failure) == ([16], None)  # the worker goes on


async def test_it_runs_as_many_chunks_at_once_as_it_has_workers(tmp_path):
    fn = partial(pid_then_wait_for_go, str(tmp_path))
    async with started(fn, workers=2) as backend, anyio.create_task_group() as group:
        assert backend.capacity == 2
        results = {}

        async def one(x):
            results[x] = (await backend.run_chunk("map", [x]))[0]

        for x in range(3):
            group.start_soon(one, x)
        await appear(tmp_path, 2)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(list(tmp_path.iterdir())) == 2  # the third waits for a worker
        assert len({path.suffix for path in tmp_path.iterdir()}) == 2  # on two processes
        (tmp_path / "go").touch()
    assert results == {0: [0], 1: [1], 2: [2]}


async def test_setup_runs_once_per_worker_as_it_starts_not_per_chunk(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    async with started(with_state, setup=partial(mark, str(marks))) as backend:
        for x in range(3):
            assert (await backend.run_chunk("map", [x]))[0] == [(str(marks), x)]
    assert len(list(marks.iterdir())) == 1


async def test_a_setup_that_failed_as_the_worker_started_is_run_again_and_reported_at_minus_one(
    tmp_path,
):
    async with started(with_state, setup=partial(mark_then_fail, str(tmp_path))) as backend:
        results, _, failure = await backend.run_chunk("map", [1, 2])
        assert results == []
        position, error, remote_traceback = failure
        assert position == -1
        assert isinstance(error, OSError)
        assert "mark_then_fail" in remote_traceback
    # Once as the worker started, once more for the chunk to report it.
    assert len(list(tmp_path.iterdir())) == 2


async def test_an_item_that_cannot_be_pickled_is_refused_before_it_is_sent():
    async with started(fail_on_7) as backend:
        with pytest.raises(NotPicklableError) as caught:
            await backend.run_chunk("map", [1, threading.Lock(), 2])
        assert caught.value.position == 1
        assert (await backend.run_chunk("map", [1]))[0] == [2]


# Deaths and overruns -------------------------------------------------------------------------


@pytest.mark.parametrize(("tracked", "position"), [(True, 1), (False, None)])
async def test_a_worker_that_dies_is_pinned_on_its_item_only_when_tracked(tracked, position):
    async with started(exit_on_1) as backend:
        with pytest.raises(WorkerDiedError) as caught:
            await backend.run_chunk("map", [0, 1, 2], tracked=tracked)
        assert caught.value.position == position
        assert caught.value.exitcode == 3
        # A new worker took its place.
        assert (await backend.run_chunk("map", [0, 2]))[0] == [0, 2]
        assert backend.capacity == 1


async def test_an_item_past_its_timeout_is_pinned_and_its_worker_killed(tmp_path):
    fn = partial(hang_on_1, str(tmp_path))
    async with started(fn) as backend:
        with pytest.raises(ItemTimeoutError) as caught:
            await backend.run_chunk("map", [0, 1, 2], item_timeout=0.2)
        assert caught.value.position == 1
        assert caught.value.timeout == 0.2
        [hung] = [int(path.name) for path in tmp_path.iterdir()]
        assert not alive(hung)
        assert (await backend.run_chunk("map", [2, 0], item_timeout=30))[0] == [2, 0]


# Closing -------------------------------------------------------------------------------------


async def test_closing_after_a_clean_run_lets_the_running_chunk_finish(tmp_path):
    backend, _ = await start(partial(pid_then_wait_for_go, str(tmp_path)))
    running = asyncio.create_task(backend.run_chunk("map", [7]))
    await appear(tmp_path, 1)
    closing = asyncio.create_task(backend.aclose(aborted=False))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not closing.done()  # it waits for the chunk
    (tmp_path / "go").touch()
    with anyio.fail_after(30):
        assert (await running)[0] == [7]
        await closing
    assert not multiprocessing.active_children()
    with pytest.raises(RuntimeError, match="shut down"):
        await backend.run_chunk("map", [1])


async def test_closing_an_aborted_run_kills_the_busy_workers_at_once(tmp_path):
    backend, _ = await start(partial(pid_then_wait_for_go, str(tmp_path)), workers=2)
    running = [asyncio.create_task(backend.run_chunk("map", [x])) for x in range(2)]
    await appear(tmp_path, 2)
    pids = [int(path.suffix[1:]) for path in tmp_path.iterdir()]
    with anyio.fail_after(30):
        await backend.aclose(aborted=True)
    assert not [pid for pid in pids if alive(pid)]
    for task in running:
        with pytest.raises(WorkerDiedError):
            await task


@pytest.mark.skipif(not buffers.SHM_DIR.is_dir(), reason="no /dev/shm here")
async def test_closing_removes_the_segments_left_under_its_stage_and_no_others():
    backend, key = await start(upto)
    ours = buffers.SHM_DIR / f"{buffers.prefix_for(key)}{secrets.token_hex(8)}"
    theirs = buffers.SHM_DIR / f"{buffers.prefix_for(buffers.new_key())}{secrets.token_hex(8)}"
    ours.write_bytes(b"a result no one read")
    theirs.write_bytes(b"another stage's")
    try:
        await backend.aclose(aborted=True)
        assert not ours.exists()
        assert theirs.exists()
    finally:
        ours.unlink(missing_ok=True)
        theirs.unlink(missing_ok=True)
