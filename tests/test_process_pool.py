"""pipework.ProcessPool: a drop-in for ProcessPoolExecutor that survives its workers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import time
from pathlib import Path

import pytest

from helpers import alive
from pipework import ProcessPool, UnpicklableError, WorkerDiedError, WorkerStartError
from pipework._executors import _supervisor

pytestmark = pytest.mark.timeout(60)


class Point:
    def __init__(self, x):
        self.x = x


def nap(seconds):
    time.sleep(seconds)
    return os.getpid()


def test_it_maps_and_submits_like_the_executor_it_replaces():
    with ProcessPool(2) as pool:
        assert list(pool.map(lambda x: x * x, range(10))) == [x * x for x in range(10)]
        assert list(pool.map(pow, range(7), range(7), chunksize=3)) == [x**x for x in range(7)]
        point = pool.submit(Point, 4).result()
        assert isinstance(point, Point)
        assert point.x == 4
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result()


def pid_then_nap(path):
    path.write_text(str(os.getpid()))
    time.sleep(30)


def test_a_killed_worker_fails_only_its_own_call(tmp_path):
    marker = tmp_path / "pid"
    with ProcessPool(2) as pool:
        victim = pool.submit(pid_then_nap, marker)
        others = [pool.submit(nap, 0.1) for _ in range(6)]
        while not marker.exists() or not marker.read_text():
            time.sleep(0.02)
        os.kill(int(marker.read_text()), signal.SIGKILL)
        with pytest.raises(WorkerDiedError) as caught:
            victim.result(timeout=10)
        assert isinstance(caught.value, concurrent.futures.process.BrokenProcessPool)
        assert caught.value.exitcode == -signal.SIGKILL
        assert "SIGKILL" in str(caught.value)
        assert all(f.result(timeout=10) > 0 for f in others)
        assert pool.submit(sum, [1, 2, 3]).result() == 6  # not broken


def test_cancelling_a_running_call_kills_its_worker():
    with ProcessPool(1) as pool:
        pid = pool.submit(os.getpid).result()
        running = pool.submit(nap, 30)
        time.sleep(0.3)
        assert running.cancel()
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid)
        assert pool.submit(abs, -1).result() == 1


def test_workers_are_recycled_after_their_tasks_without_losing_a_call():
    with ProcessPool(2, max_tasks_per_worker=2) as pool:
        pids = [pool.submit(os.getpid).result() for _ in range(10)]
        assert len(set(pids)) >= 5
        assert list(pool.map(abs, range(-50, 0))) == list(range(50, 0, -1))


def test_workers_past_their_memory_limit_are_recycled():
    with ProcessPool(1, max_memory_per_worker=1) as pool:
        pids = [pool.submit(os.getpid).result() for _ in range(4)]
        assert len(set(pids)) == 4


def test_shutdown_can_cancel_the_calls_that_wait():
    pool = ProcessPool(1)
    running = pool.submit(nap, 0.5)
    waiting = [pool.submit(nap, 0.5) for _ in range(5)]
    pool.shutdown(wait=True, cancel_futures=True)
    assert running.result() > 0
    assert all(f.cancelled() for f in waiting)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(abs, 1)


def test_an_unpicklable_call_fails_at_submit():
    import threading

    with ProcessPool(1) as pool, pytest.raises(UnpicklableError):
        pool.submit(abs, threading.Lock())


def test_an_initializer_that_fails_breaks_the_pool_with_its_error():
    def broken():
        raise OSError("no model file")

    with ProcessPool(1, initializer=broken) as pool:
        with pytest.raises(WorkerStartError) as caught:
            pool.submit(abs, 1).result(timeout=30)
        assert isinstance(caught.value.__cause__, OSError)


def crash_as_it_starts(directory):
    """Crash at once three times; then wait for ``go`` to crash, holding the call meanwhile.

    A crash, not an exception: an initializer that raises breaks the pool at
    once, while crashes as workers start break it on the third in a row.
    """
    folder = Path(directory)
    started = len(list(folder.iterdir()))
    (folder / str(os.getpid())).touch()
    while started >= 3 and not (folder / "go").exists():
        time.sleep(0.01)
    os._exit(3)


def test_a_call_sent_to_a_starting_worker_fails_when_the_pool_breaks_meanwhile(
    tmp_path, monkeypatch
):
    # The pool breaks on its third death, counted once the worker is reaped.
    # Reaping late, as a busy machine may, lets the fourth worker take the
    # call first; when it dies too, the call must fail, not wait for ever.
    reap = _supervisor.reap

    async def late_reap(process):
        await asyncio.sleep(0.3)
        return await reap(process)

    monkeypatch.setattr(_supervisor, "reap", late_reap)
    with ProcessPool(1, initializer=crash_as_it_starts, initargs=(str(tmp_path),)) as pool:
        call = pool.submit(abs, 1)
        while len(list(tmp_path.iterdir())) < 4:
            time.sleep(0.01)
        time.sleep(1.0)  # the first three deaths are reaped: the pool is broken
        (tmp_path / "go").touch()
        with pytest.raises(WorkerStartError, match="3 in a row"):
            call.result(timeout=20)


MODEL = None


def load_model(name):
    global MODEL  # noqa: PLW0603 - the ProcessPoolExecutor idiom under test
    MODEL = name


def use_model(x):
    return f"{MODEL} on {x}"


def test_an_initializer_can_load_state_into_a_global_as_with_processpoolexecutor():
    with ProcessPool(1, initializer=load_model, initargs=("m1",)) as pool:
        assert list(pool.map(use_model, range(2))) == ["m1 on 0", "m1 on 1"]
