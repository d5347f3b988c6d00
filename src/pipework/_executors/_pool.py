"""A backend over any `concurrent.futures.Executor`, driven by ``loop.run_in_executor``.

It serves the three ways a pooled stage can run: a process pool that the run
starts, a thread pool that the run starts, and an executor the user passes in,
which the run uses but never shuts down.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from typing import Any, Literal

import anyio

from .. import _buffers as buffers
from .. import _serial as serial
from .._ops import Op
from .._tasks import retrieve_outcome
from .._worker import Outcome, Payload, preload, run_chunk
from ._payload import pickle_payload
from ._processes import default_workers, start_process_pool


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
        self._prefix = buffers.prefix_for(key)
        # Whether this stage's last chunk held large buffers: a hint that the
        # next one will too, and is worth packing in a thread.
        self._large = False
        self._owns_processes = owned and isinstance(executor, ProcessPoolExecutor)

    @property
    def capacity(self) -> int:
        """How many chunks can run at once."""
        return self._capacity

    @property
    def remote(self) -> bool:
        """Whether chunks cross a process boundary."""
        return self._remote

    async def run_chunk(self, op: Op, items: list[Any]) -> Outcome:
        """Run one chunk, sending the stage's payload only to a worker that lacks it.

        :raises NotPicklableError: if an item cannot be pickled for a remote worker
        """
        if not self._remote:
            outcome: Outcome = await self._run(op, items)
            return outcome
        if self._large:
            # Writing a large buffer to shared memory takes tens of ms; off the
            # event loop it stalls nothing, and two chunks copy at once.
            sent = await anyio.to_thread.run_sync(serial.pack_values, items, self._prefix)
        else:
            sent = serial.pack_values(items, self._prefix)
        self._large = bool(sent[1])
        segments = buffers.segments_of(sent)
        try:
            packed = await self._run(op, sent)
            # Unpacked before any segment goes: a result may refer to an item's.
            segments += buffers.segments_of(packed)
            return serial.unpack(packed, unlink=False)  # type: ignore[no-any-return]
        finally:
            if segments:
                # Mapped arrays live on unlinked. Freeing a large segment's
                # pages takes milliseconds, so that too is kept off the loop.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(buffers.unlink, segments)

    async def _run(self, op: Op, items: Any) -> Any:
        outcome = await self._call(None, op, items)
        if outcome is None:
            outcome = await self._call(self._payload, op, items)
        if outcome is None:  # pragma: no cover - run_chunk installs any payload it is given
            raise RuntimeError("a worker did not install the stage it was sent")
        return outcome

    async def _call(self, payload: Payload | None, op: Op, items: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, run_chunk, self._key, payload, op, items)
        if not self._owns_processes:
            return await future
        # Never cancel a future of a process pool we will kill on abort: on
        # Python 3.11 the pool's manager thread then fails every pending future
        # with BrokenProcessPool and trips over the cancelled ones. Left alone,
        # they fail cleanly when the pool is killed; nobody awaits them then,
        # so their outcome is fetched here to keep asyncio quiet.
        future.add_done_callback(retrieve_outcome)
        return await asyncio.shield(future)

    async def aclose(self, *, aborted: bool) -> None:
        """Shut down a pool this backend started; leave a user's executor open.

        Then remove any shared-memory segment of this run that is left: the
        results of chunks that were cut short, which no one will read.
        """
        with anyio.CancelScope(shield=True):
            if self._owned:
                await self._shutdown(aborted=aborted)
            buffers.sweep(self._prefix)

    async def _shutdown(self, *, aborted: bool) -> None:
        executor = self._executor
        if isinstance(executor, ProcessPoolExecutor):
            if aborted:
                # Work already running in a process cannot be cancelled, and
                # an aborted run must not leave it running: kill it.
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
    key = buffers.new_key()
    buffers.sweep_orphans()  # segments of an earlier parent that was killed
    if on == "process":
        count = workers or default_workers()
        pickled = payload if payload is not None else pickle_payload(fn, setup, stage)
        pool: Executor = start_process_pool(count, key=key, payload=pickled, fn=fn)
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
