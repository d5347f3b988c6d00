"""The ProcessPool's loop thread: nothing outlives a pool, whether shut down, dropped or failed."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import threading

import pytest

import pipework
from helpers import run_script
from pipework._executors import _pool_thread

pytestmark = pytest.mark.timeout(90)


def pool_threads():
    return [t for t in threading.enumerate() if t.name == "pipework-process-pool"]


def fail_to_start():
    raise OSError("no model file")


def test_a_pool_that_fails_to_construct_leaves_no_thread_and_no_worker():
    before = len(pool_threads())
    with pytest.raises(TypeError, match="pickle"):
        # initargs travel as the worker's process arguments: a thread lock cannot.
        pipework.ProcessPool(1, initializer=print, initargs=(threading.Lock(),))
    assert len(pool_threads()) == before
    assert multiprocessing.active_children() == []


def test_a_dropped_pool_finishes_its_calls_and_lets_its_workers_go():
    pool = pipework.ProcessPool(1)
    call = pool.submit(abs, -5)
    thread = pool._thread._thread
    del pool
    gc.collect()
    assert call.result(timeout=30) == 5
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert multiprocessing.active_children() == []


def test_interpreter_exit_finishes_submitted_calls_of_pools_never_shut_down(tmp_path):
    # Before: exit hung for ever, as multiprocessing joined workers that
    # nobody asked to exit.
    done = run_script(
        tmp_path,
        """
        import sys
        import time
        import pipework

        def slow(x):
            time.sleep(0.2)
            # One write per line: both workers share this pipe, and print()
            # may write its parts separately, so the lines could interleave.
            sys.stdout.write(f"done {x}\\n")
            sys.stdout.flush()

        def leave_one_behind():
            pipework.ProcessPool(2).submit(slow, 1)

        if __name__ == "__main__":
            leave_one_behind()
            kept = pipework.ProcessPool(1)
            kept.submit(slow, 2)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split("\n")[:2]) == ["done 1", "done 2"]


def test_every_open_pool_is_known_until_it_is_shut_down():
    pool = pipework.ProcessPool(1)
    assert pool._thread in _pool_thread._open_threads
    pool.shutdown()
    assert pool._thread not in _pool_thread._open_threads


def test_a_failing_initializer_is_logged_and_breaks_submit_at_once(caplog):
    with caplog.at_level(logging.ERROR, logger="pipework"):
        pool = pipework.ProcessPool(1, initializer=fail_to_start)
        with pytest.raises(pipework.WorkerStartError, match="the initializer raised"):
            pool.submit(abs, 1).result(timeout=30)
        with pytest.raises(pipework.WorkerStartError) as caught:
            pool.submit(abs, 1)
        pool.shutdown()
    assert isinstance(caught.value.__cause__, OSError)
    assert any("initializer raised" in record.getMessage() for record in caplog.records)
