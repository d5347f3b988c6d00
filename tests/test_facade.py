"""ProcessPool's own surface: its counts, how calls are pickled, map's chunks, a second shutdown.

tests/test_process_pool.py and tests/test_process_pool_conformance.py check
the pool as an executor (calls, deaths, recycling, the standard pool's
behaviours), and tests/test_policy.py the counts below 1; this file checks
what those leave out: counts that are not whole numbers, refused before any
worker starts; how many workers a pool starts; what cannot be pickled and
how the error says so; that a chunk of ``map`` is one call; and shutdown
called more than once.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Executor
from pathlib import Path

import pytest

from pipework import ProcessPool, UnpicklableError
from pipework._executors._facade import _count
from pipework._executors._processes import default_workers

pytestmark = pytest.mark.timeout(60)


def pool_threads():
    return [t for t in threading.enumerate() if t.name == "pipework-process-pool"]


def workers():
    return [p for p in multiprocessing.active_children() if p.name == "pipework-worker"]


# Functions the workers run: module-level, so that worker processes import them.


def my_pid(_=None):
    return os.getpid()


def fail_on_5(x):
    if x == 5:
        raise ValueError("five")
    return x


def same(x=None):
    return x


def apply_to(fn, x):
    return fn(x)


def wait_for_go(path):
    deadline = time.monotonic() + 30
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    return path


# Counts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"max_workers": 2.0},
        {"max_workers": "2"},
        {"max_tasks_per_worker": 1.5},
        {"max_tasks_per_child": True},
        {"max_memory_per_worker": 1e9},
    ],
    ids=lambda options: next(iter(options)),
)
def test_a_count_that_is_not_a_whole_number_is_refused_before_anything_starts(options):
    threads = len(pool_threads())
    [(name, value)] = options.items()
    with pytest.raises(TypeError, match=f"ProcessPool: {name}= must be a whole number") as caught:
        ProcessPool(**options)
    assert str(caught.value).endswith(f"not {value!r}")
    assert len(pool_threads()) == threads
    assert multiprocessing.active_children() == []


def test_a_count_is_none_or_a_whole_number_of_at_least_one():
    assert _count("max_workers", None) is None
    assert _count("max_workers", 1) == 1
    with pytest.raises(ValueError, match="ProcessPool: chunksize must be greater than 0, not 0"):
        _count("chunksize", 0)


@pytest.mark.parametrize("chunksize", [2.5, True, "3"])
def test_a_map_chunksize_that_is_not_a_whole_number_is_refused(chunksize):
    with ProcessPool(1) as pool, pytest.raises(TypeError, match="chunksize= must be a whole"):
        pool.map(same, range(3), chunksize=chunksize)


@pytest.mark.parametrize(("given", "started"), [(3, 3), (None, default_workers())])
def test_it_starts_its_workers_at_once_the_cores_this_process_may_use_by_default(given, started):
    pool = ProcessPool(given)
    try:
        assert isinstance(pool, Executor)
        assert pool._max_workers == started  # what a pipeline given on=pool runs on
        assert len(workers()) == started
    finally:
        pool.shutdown()
    assert workers() == []


# Pickling ------------------------------------------------------------------------------------


def test_an_initializer_that_cannot_be_pickled_is_refused_naming_it():
    lock = threading.Lock()

    def initializer():  # a closure over a lock: cloudpickle cannot send it either
        lock.acquire()

    threads = len(pool_threads())
    with pytest.raises(UnpicklableError, match="the initializer cannot be pickled") as caught:
        ProcessPool(1, initializer=initializer)
    assert isinstance(caught.value, TypeError)  # as pickle's own error would be
    assert caught.value.__cause__ is not None
    assert len(pool_threads()) == threads
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((threading.Lock(),), {}), ((), {"x": threading.Lock()})],
    ids=["argument", "keyword"],
)
def test_a_call_that_cannot_be_pickled_is_refused_at_submit_naming_its_cause(args, kwargs):
    with ProcessPool(1) as pool:
        with pytest.raises(UnpicklableError, match="the call cannot be pickled") as caught:
            pool.submit(same, *args, **kwargs)
        assert "lock" in str(caught.value.__cause__)
        assert pool.submit(same, 3).result(timeout=30) == 3


def test_a_lambda_among_the_arguments_sends_the_whole_call_by_value():
    with ProcessPool(1) as pool:
        assert pool.submit(apply_to, lambda x: x + 1, 41).result(timeout=30) == 42


# map with chunks -----------------------------------------------------------------------------


def test_each_chunk_of_map_is_one_call():
    # A worker serves one call, then is replaced: each chunk meets a new one.
    with ProcessPool(1, max_tasks_per_worker=1) as pool:
        pids = list(pool.map(my_pid, range(10), chunksize=4))
        assert list(pool.map(my_pid, [], chunksize=4)) == []
    assert [pids[0]] * 4 == pids[:4]
    assert [pids[4]] * 4 == pids[4:8]
    assert [pids[8]] * 2 == pids[8:]
    assert len({pids[0], pids[4], pids[8]}) == 3


def test_map_with_chunks_yields_the_chunks_before_a_failure_then_raises_it():
    with ProcessPool(2) as pool:
        results = pool.map(fail_on_5, range(12), chunksize=4)
        assert [next(results) for _ in range(4)] == [0, 1, 2, 3]
        with pytest.raises(ValueError, match="five"):
            next(results)  # the chunk that failed gives none of its results


def test_map_with_chunks_raises_timeout_error_past_its_timeout(tmp_path):
    go = tmp_path / "go"
    with ProcessPool(1) as pool:
        results = pool.map(wait_for_go, [str(go)] * 4, chunksize=2, timeout=0.2)
        try:
            with pytest.raises(TimeoutError):
                list(results)
        finally:
            go.touch()


# Shutdown ------------------------------------------------------------------------------------


def test_a_second_shutdown_is_harmless_and_can_wait_for_the_first():
    pool = ProcessPool(1)
    call = pool.submit(same, 5)
    pool.shutdown(wait=False)
    pool.shutdown(wait=True)
    assert call.result(timeout=0) == 5
    assert not pool._thread._thread.is_alive()
    assert workers() == []
    with pool:  # leaving the block shuts down once more
        pass
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(same, 1)
