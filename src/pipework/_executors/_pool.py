"""A backend over any `concurrent.futures.Executor`, driven by ``loop.run_in_executor``.

It serves the three ways a pooled stage can run: a process pool that the run
starts, a thread pool that the run starts, and an executor the user passes in,
which the run uses but never shuts down.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import uuid
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from typing import Any, Literal

import anyio

from .._ops import Op
from .._worker import Outcome, Payload, preload, run_chunk
from ._payload import pickle_payload


def default_workers() -> int:
    """Return the number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _mp_context() -> multiprocessing.context.BaseContext:
    # forkserver: workers start from a small clean process rather than a fork
    # of a parent that runs an event loop and threads, which fork does not
    # copy safely. Elsewhere spawn is the only safe choice.
    method = "forkserver" if sys.platform == "linux" else "spawn"
    return multiprocessing.get_context(method)


class ExecutorBackend:
    """Runs a stage's chunks on a `concurrent.futures.Executor`."""

    def __init__(
        self,
        executor: Executor,
        *,
        owned: bool,
        remote: bool,
        capacity: int,
        key: str,
        payload: Payload,
    ) -> None:
        """Wrap ``executor``; ``owned`` means this backend shuts it down."""
        self._executor = executor
        self._owned = owned
        self._remote = remote
        self._capacity = capacity
        self._key = key
        self._payload = payload

    @property
    def capacity(self) -> int:
        """How many chunks can run at once."""
        return self._capacity

    @property
    def remote(self) -> bool:
        """Whether chunks cross a process boundary."""
        return self._remote

    async def run_chunk(self, op: Op, items: list[Any]) -> Outcome:
        """Run one chunk, sending the stage's payload only to a worker that lacks it."""
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(self._executor, run_chunk, self._key, None, op, items)
        if outcome is None:
            outcome = await loop.run_in_executor(
                self._executor, run_chunk, self._key, self._payload, op, items
            )
            if (
                outcome is None
            ):  # pragma: no cover - run_chunk always installs a payload it is given
                raise RuntimeError("a worker did not install the stage it was sent")
        return outcome

    async def aclose(self, *, aborted: bool) -> None:
        """Shut down a pool this backend started; leave a user's executor open."""
        if not self._owned:
            return
        executor = self._executor
        with anyio.CancelScope(shield=True):
            if isinstance(executor, ProcessPoolExecutor):
                if aborted:
                    # Work already running in a process cannot be cancelled,
                    # and an aborted run must not leave it running: kill it.
                    for process in list(getattr(executor, "_processes", {}).values()):
                        process.kill()
                await anyio.to_thread.run_sync(
                    partial(executor.shutdown, wait=True, cancel_futures=aborted)
                )
            elif aborted:
                # A thread cannot be killed; let what runs finish on its own
                # rather than hold up the cancellation of the run.
                executor.shutdown(wait=False, cancel_futures=True)
            else:
                await anyio.to_thread.run_sync(partial(executor.shutdown, wait=True))


def open_backend(
    on: Literal["thread", "process"] | Executor,
    *,
    fn: Any,
    setup: Any,
    workers: int | None,
    stage: str,
    payload: bytes | None,
) -> ExecutorBackend:
    """Start the workers of one pooled stage for one run.

    ``payload`` is the stage's function already pickled at build time, for
    process stages; a user's executor that is not a thread pool gets it
    pickled here, before any item is taken from the input.
    """
    key = uuid.uuid4().hex
    if on == "process":
        count = workers or default_workers()
        pickled = payload if payload is not None else pickle_payload(fn, setup, stage)
        pool: Executor = ProcessPoolExecutor(
            count, mp_context=_mp_context(), initializer=preload, initargs=(key, pickled)
        )
        return ExecutorBackend(
            pool, owned=True, remote=True, capacity=count, key=key, payload=pickled
        )
    if on == "thread":
        count = workers or min(32, default_workers() + 4)
        direct = (fn, setup)
        pool = ThreadPoolExecutor(
            count,
            thread_name_prefix=f"pipework-{stage}",
            initializer=preload,
            initargs=(key, direct),
        )
        return ExecutorBackend(
            pool, owned=True, remote=False, capacity=count, key=key, payload=direct
        )
    count = workers or getattr(on, "_max_workers", None) or default_workers()
    if isinstance(on, ThreadPoolExecutor):
        return ExecutorBackend(
            on, owned=False, remote=False, capacity=count, key=key, payload=(fn, setup)
        )
    pickled = payload if payload is not None else pickle_payload(fn, setup, stage)
    return ExecutorBackend(on, owned=False, remote=True, capacity=count, key=key, payload=pickled)
