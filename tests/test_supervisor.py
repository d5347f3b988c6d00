"""SupervisedPool: which deaths are a call's fault, driven on the test's own event loop."""

from __future__ import annotations

import os
import signal
import time

import pytest

from helpers import alive
from pipework import WorkerDiedError
from pipework._executors._processes import worker_context, worker_environment
from pipework._executors._supervisor import SupervisedPool
from pipework._executors._worker_process import PoolOptions

pytestmark = pytest.mark.timeout(60)


def crash():
    os.kill(os.getpid(), signal.SIGKILL)


async def opened(workers=1):
    options = PoolOptions(workers=workers, context=worker_context(worker_environment(workers)))
    pool = SupervisedPool(options)
    await pool.start()
    return pool


async def test_a_call_sent_to_a_worker_that_had_died_unnoticed_is_sent_again():
    # Before: the call failed with "killed by SIGKILL while it ran a call",
    # though the worker died before it could read it (seen under load, after
    # a kill the pool had not heard of yet when the next call came).
    pool = await opened()
    try:
        pid = await pool.call(os.getpid)
        os.kill(pid, signal.SIGKILL)
        while alive(pid):  # blocking: the loop cannot hear of the death meanwhile
            time.sleep(0.001)  # noqa: ASYNC251 - holding the loop is the point
        # The pool still counts the dead worker as idle, and sends it this call.
        again = await pool.call(os.getpid)
        assert again != pid
    finally:
        await pool.aclose(kill=True)


async def test_a_call_that_kills_its_worker_still_fails_as_its_own():
    pool = await opened()
    try:
        with pytest.raises(WorkerDiedError, match="killed by SIGKILL while it ran a call"):
            await pool.call(crash)
        assert await pool.call(abs, -2) == 2  # a new worker took its place
    finally:
        await pool.aclose(kill=True)
