"""ProcessPool against ProcessPoolExecutor: the same checks, run on both, side by side.

CPython's own tests of its process pool are not ours to ship; these cover the
same behaviours in our words. Each test runs once per executor. Where
ProcessPool differs on purpose, the test states both behaviours, and
docs/robustness.md lists the difference with its reason.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from pipework import ProcessPool, UnpicklableError, WorkerDiedError

pytestmark = pytest.mark.timeout(120)

CONTEXT = multiprocessing.get_context("forkserver")


def standard(max_workers=None, **options):
    if "max_tasks_per_child" in options or sys.platform == "linux":
        options.setdefault("mp_context", CONTEXT)
    return cf.ProcessPoolExecutor(max_workers, **options)


@pytest.fixture(params=["ProcessPoolExecutor", "ProcessPool"])
def make(request):
    """Make a pool of the executor under test, shut down at the end of the test."""
    made = []

    def pool(max_workers=None, **options):
        kind = standard if request.param == "ProcessPoolExecutor" else ProcessPool
        made.append(kind(max_workers, **options))
        return made[-1]

    pool.ours = request.param == "ProcessPool"
    yield pool
    for each in made:
        each.shutdown(wait=True, cancel_futures=True)


# Functions the workers run: module-level, so the standard pool finds them by name.


def square(x):
    return x * x


def add(x, y):
    return x + y


def fail(message):
    raise ValueError(message)


def nap(seconds):
    time.sleep(seconds)
    return seconds


def wait_for(path, limit=60.0):
    """Block until ``path`` exists: a call the test releases when it chooses."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path) and time.monotonic() < deadline:  # noqa: PTH110
        time.sleep(0.005)
    return os.getpid()


def started_then_wait(started, release):
    open(started, "w").close()  # noqa: PTH123
    return wait_for(release)


def exit_with(code):
    sys.exit(code)


def my_pid(_=None):
    return os.getpid()


class ExitWhenPickled:
    def __reduce__(self):
        sys.exit(4)


class PicklingFailsError(Exception):
    def __reduce__(self):
        raise TypeError("this exception cannot be pickled")


class UnpicklingFailsError(Exception):
    def __init__(self, a, b):  # pickles with one arg, so unpickling it fails
        del b
        super().__init__(a)


def raise_unpicklable_error():
    raise PicklingFailsError("boom")


def raise_error_that_cannot_unpickle():
    raise UnpicklingFailsError("x", "y")


def rebuild_fails():
    raise LookupError("cannot rebuild this value")


class FailsInParent:
    def __reduce__(self):
        return rebuild_fails, ()


def return_fails_in_parent():
    return FailsInParent()


def crash_with(data):
    del data
    os.kill(os.getpid(), signal.SIGSEGV)


STATE = None


def remember(value, queue=None, lock=None):
    global STATE  # noqa: PLW0603 - the initializer idiom under test
    STATE = (value, queue, lock)


def read_state(x):
    value, queue, lock = STATE
    if queue is not None:
        with lock:
            queue.put(x * 10)
    return f"{value}:{x}"


def broken_initializer():
    raise OSError("no model file")


# Calls, map, wait and as_completed ----------------------------------------------------------


def test_submit_returns_values_and_exceptions(make):
    pool = make(2)
    assert pool.submit(square, 7).result(timeout=30) == 49
    assert pool.submit(add, 2, y=3).result(timeout=30) == 5
    with pytest.raises(ValueError, match="nope"):
        pool.submit(fail, "nope").result(timeout=30)
    assert pool.submit(square, 3).exception(timeout=30) is None


@pytest.mark.parametrize("chunksize", [1, 3])
def test_map_keeps_order_over_several_iterables(make, chunksize):
    pool = make(2)
    assert list(pool.map(square, range(10), chunksize=chunksize)) == [x * x for x in range(10)]
    assert list(pool.map(add, range(5), range(10, 20), chunksize=chunksize)) == [
        x + y for x, y in zip(range(5), range(10, 15), strict=False)
    ]


def test_map_raises_the_first_failure_in_order(make):
    pool = make(2)
    results = pool.map(fail, ["a", "b"])
    with pytest.raises(ValueError, match="a"):
        next(results)


def test_map_timeout_raises_timeout_error(make, tmp_path):
    pool = make(1)
    results = pool.map(wait_for, [str(tmp_path / "go")], timeout=0.2)
    with pytest.raises(TimeoutError):
        list(results)
    (tmp_path / "go").touch()  # the standard pool's shutdown waits for a running call


@pytest.mark.parametrize("chunksize", [0, -1])
def test_map_refuses_a_chunksize_below_one(make, chunksize):
    pool = make(1)
    with pytest.raises(ValueError, match="chunksize"):
        pool.map(square, range(3), chunksize=chunksize)


def test_wait_first_completed_and_all_completed(make, tmp_path):
    pool = make(2)
    release = str(tmp_path / "go")
    blocked = pool.submit(wait_for, release)
    quick = pool.submit(square, 2)
    done, not_done = cf.wait([blocked, quick], timeout=30, return_when=cf.FIRST_COMPLETED)
    assert done == {quick}
    assert not_done == {blocked}
    open(release, "w").close()  # noqa: PTH123
    done, not_done = cf.wait([blocked, quick], timeout=30, return_when=cf.ALL_COMPLETED)
    assert done == {blocked, quick}
    assert not not_done


def test_wait_first_exception_returns_at_the_failure(make, tmp_path):
    pool = make(2)
    blocked = pool.submit(wait_for, str(tmp_path / "go"))
    failing = pool.submit(fail, "early")
    done, not_done = cf.wait([blocked, failing], timeout=30, return_when=cf.FIRST_EXCEPTION)
    assert done == {failing}
    assert not_done == {blocked}
    (tmp_path / "go").touch()


def test_as_completed_yields_each_future_once(make, tmp_path):
    pool = make(2)
    futures = [pool.submit(square, x) for x in range(6)]
    assert sorted(f.result() for f in cf.as_completed(futures, timeout=30)) == [
        x * x for x in range(6)
    ]
    blocked = pool.submit(wait_for, str(tmp_path / "go"))
    with pytest.raises(TimeoutError):
        list(cf.as_completed([blocked], timeout=0.2))
    (tmp_path / "go").touch()


# Shutdown ------------------------------------------------------------------------------------


def test_shutdown_waits_for_every_call(make):
    pool = make(2)
    futures = [pool.submit(nap, 0.05) for _ in range(4)]
    pool.shutdown(wait=True)
    assert all(f.done() and f.result() == 0.05 for f in futures)


def test_shutdown_without_wait_returns_and_the_calls_still_finish(make, tmp_path):
    pool = make(1)
    release = str(tmp_path / "go")
    future = pool.submit(wait_for, release)
    workers = [] if make.ours else list(pool._processes.values())
    pool.shutdown(wait=False)
    assert not future.done()  # it returned before the call could end
    open(release, "w").close()  # noqa: PTH123
    assert isinstance(future.result(timeout=30), int)
    pool.shutdown(wait=True)  # ProcessPool waits now; the standard pool forgot its workers
    for worker in workers:
        worker.join(timeout=30)


def test_shutdown_can_cancel_the_calls_that_wait_for_a_worker(make, tmp_path):
    pool = make(1)
    started, release = str(tmp_path / "started"), str(tmp_path / "go")
    running = pool.submit(started_then_wait, started, release)
    wait_for(started)
    waiting = [pool.submit(square, x) for x in range(4)]
    workers = [] if make.ours else list(pool._processes.values())
    pool.shutdown(wait=False, cancel_futures=True)
    open(release, "w").close()  # noqa: PTH123
    assert isinstance(running.result(timeout=30), int)
    cancelled = [f.cancelled() for f in waiting]
    if make.ours:
        assert all(cancelled)  # every call still waiting for a worker
    else:
        # The standard pool has already handed a call or two to its queue
        # to the workers, which no longer counts as waiting.
        assert cancelled[-1]
        assert all(f.cancelled() or f.result(timeout=30) is not None for f in waiting)
    pool.shutdown(wait=True)
    for worker in workers:
        worker.join(timeout=30)


def test_submit_after_shutdown_raises_runtime_error(make):
    pool = make(1)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(square, 1)
    pool.shutdown()  # twice is fine


def test_the_with_block_waits_for_the_calls(make):
    pool = make(2)
    with pool:
        futures = [pool.submit(square, x) for x in range(5)]
    assert [f.result(timeout=0) for f in futures] == [x * x for x in range(5)]


# Initializer and recycling -------------------------------------------------------------------


def test_an_initializer_prepares_each_worker(make):
    pool = make(2, initializer=remember, initargs=("model",))
    assert list(pool.map(read_state, range(3))) == ["model:0", "model:1", "model:2"]


def test_initargs_may_hold_a_queue_and_a_lock_shared_with_the_workers(make):
    queue, lock = CONTEXT.Queue(), CONTEXT.Lock()
    pool = make(2, initializer=remember, initargs=("m", queue, lock))
    assert list(pool.map(read_state, range(4))) == [f"m:{x}" for x in range(4)]
    assert sorted(queue.get(timeout=30) for _ in range(4)) == [0, 10, 20, 30]


def test_an_initializer_that_raises_breaks_the_pool(make):
    pool = make(1, initializer=broken_initializer)
    with pytest.raises(BrokenProcessPool):
        pool.submit(square, 1).result(timeout=30)
    with pytest.raises(BrokenProcessPool):
        pool.submit(square, 1).result(timeout=30)  # raised by submit itself, or by the call
    if make.ours:
        with pytest.raises(BrokenProcessPool):
            pool.submit(square, 1)  # at once, as the standard pool does once it knows


def test_max_tasks_per_child_gives_each_call_a_fresh_worker(make):
    pool = make(1, max_tasks_per_child=1)
    pids = [pool.submit(my_pid).result(timeout=30) for _ in range(3)]
    assert len(set(pids)) == 3


@pytest.mark.parametrize("count", [0, -1])
def test_max_workers_below_one_is_refused_in_the_same_words(make, count):
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        make(count)


# Exits, crashes and pickling failures --------------------------------------------------------


def test_sys_exit_in_a_call_comes_back_as_system_exit(make):
    pool = make(1)
    with pytest.raises(SystemExit) as caught:
        pool.submit(exit_with, 3).result(timeout=30)
    assert caught.value.code == 3
    assert pool.submit(square, 2).result(timeout=30) == 4


def test_sys_exit_while_a_result_is_pickled_comes_back_as_system_exit(make):
    pool = make(1)
    with pytest.raises(SystemExit):
        pool.submit(ExitWhenPickled).result(timeout=30)


def test_an_exception_that_cannot_be_pickled_fails_its_call(make):
    pool = make(1)
    assert pool.submit(raise_unpicklable_error).exception(timeout=30) is not None
    if make.ours:
        assert pool.submit(square, 3).result(timeout=30) == 9


def test_an_exception_that_cannot_be_unpickled_fails_its_call(make):
    pool = make(1)
    error = pool.submit(raise_error_that_cannot_unpickle).exception(timeout=30)
    assert error is not None
    if make.ours:
        assert pool.submit(square, 3).result(timeout=30) == 9


def test_a_result_that_fails_to_unpickle_in_the_parent(make):
    pool = make(1)
    error = pool.submit(return_fails_in_parent).exception(timeout=30)
    if make.ours:
        # The error itself, and the pool goes on.
        assert isinstance(error, LookupError)
        assert pool.submit(square, 3).result(timeout=30) == 9
    else:
        assert isinstance(error, BrokenProcessPool)


def test_a_call_that_cannot_be_pickled(make):
    import threading

    pool = make(1)
    if make.ours:
        with pytest.raises(UnpicklableError):  # at once, naming the cause
            pool.submit(square, threading.Lock())
    else:
        assert pool.submit(square, threading.Lock()).exception(timeout=30) is not None


def test_a_worker_killed_during_a_call(make, tmp_path):
    pool = make(1)
    started = str(tmp_path / "started")
    future = pool.submit(started_then_wait, started, str(tmp_path / "never"))
    wait_for(started)
    victim = _worker_pids(pool)
    assert victim
    for pid in victim:
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(BrokenProcessPool) as caught:
        future.result(timeout=30)
    if make.ours:
        # Only the call it ran fails; a new worker takes its place.
        assert isinstance(caught.value, WorkerDiedError)
        assert pool.submit(square, 5).result(timeout=30) == 25
    else:
        with pytest.raises(BrokenProcessPool):
            pool.submit(square, 5).result(timeout=30)


def _worker_pids(pool):
    if isinstance(pool, ProcessPool):
        return [w.process.pid for w in pool._thread._pool._workers]
    return list(pool._processes)


def test_a_crash_with_big_data_in_flight_ends_cleanly(make):
    # A worker that crashes while a large argument is being written to it.
    # Before: shutdown() at the end of the with block sometimes raised
    # TypeError, from an exit frame written to a closed connection.
    data = "a" * (4 * 1024 * 1024 + 1)
    for _ in range(3):
        with make(2) as pool, pytest.raises(BrokenProcessPool):
            list(pool.map(crash_with, [data] * 6))


def test_a_cancelled_running_call(make, tmp_path):
    pool = make(1)
    started = str(tmp_path / "started")
    future = pool.submit(started_then_wait, started, str(tmp_path / "never"))
    wait_for(started)
    if make.ours:
        # Cancelling process work means killing it: the worker goes, another comes.
        assert future.cancel()
        assert pool.submit(square, 4).result(timeout=30) == 16
    else:
        assert not future.cancel()  # a running call runs on
        (tmp_path / "never").touch()
        future.result(timeout=30)


DROPPED = """
import sys
import time
import concurrent.futures as cf
import multiprocessing
import pipework

def slow(x):
    time.sleep(0.2)
    # One write per line: two processes share this pipe, and print() may
    # write its parts separately, so the lines could interleave.
    sys.stdout.write(f"done {x}\\n")
    sys.stdout.flush()

def make():
    if sys.argv[1] == "ProcessPool":
        return pipework.ProcessPool(1)
    return cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))

def leave_behind():
    make().submit(slow, 1)

if __name__ == "__main__":
    leave_behind()
    kept = make()
    kept.submit(slow, 2)
"""


@pytest.mark.parametrize("kind", ["ProcessPoolExecutor", "ProcessPool"])
def test_pools_never_shut_down_finish_their_calls_at_exit(tmp_path, kind):
    script = tmp_path / "script.py"
    script.write_text(DROPPED)
    done = subprocess.run(
        [sys.executable, str(script), kind], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["1", "2", "done", "done"]
