"""A runner over any `concurrent.futures.Executor`: each chunk one ``submit``, awaited here.

It serves two of the ways a pooled stage can run: a thread pool that the run
starts, and an executor the user passes in, which the run uses but never
shuts down. Process stages run on pipework's own supervised pool instead
(`pipework._executors._local`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, Future
from functools import partial
from typing import Any

import anyio

from .._errors import ItemTimeoutError
from .._worker import _buffers as buffers
from .._worker._ops import Op
from .._worker._trampoline import Outcome, Payload, run_chunk
from ._transfer import Courier


class ExecutorRunner:
    """Runs a stage's chunks on a `concurrent.futures.Executor`."""

    supervised = False
    chunk_time: float | None = None
    reruns_lost_work = False

    def __init__(
        self,
        executor: Executor,
        *,
        owned: bool,
        remote: bool,
        capacity: int,
        key: str,
        payload: Payload,
        share_memory: bool = False,
    ) -> None:
        """Wrap ``executor``; ``owned`` means this runner shuts it down.

        ``share_memory`` says its workers are processes of this host, so
        large buffers may go through shared memory; any other remote
        executor (a cluster's, say) gets everything in band.
        """
        self._executor = executor
        self._owned = owned
        self._remote = remote
        self._shares = remote and share_memory
        self._capacity = capacity
        self._key = key
        self._payload = payload
        self._prefix = buffers.prefix_for(key)
        self._courier = Courier(self._prefix if self._shares else None)

    @property
    def capacity(self) -> int:
        """How many chunks can run at once."""
        return self._capacity

    @property
    def remote(self) -> bool:
        """Whether chunks cross a process boundary."""
        return self._remote

    async def run_chunk(
        self, op: Op, items: list[Any], *, tracked: bool = False, item_timeout: float | None = None
    ) -> Outcome:
        """Run one chunk, sending the stage's payload only to a worker that lacks it.

        An executor's work cannot be stopped from outside, so an ``item_timeout``
        fails the chunk but leaves its call to finish on its own; stages with
        a timeout send one item per chunk here. In a thread the timeout counts
        from when the items begin, after the thread's ``setup``; a remote
        executor's worker cannot say when that is, so there the first chunk
        each worker runs counts its setup too.

        :raises NotPicklableError: if an item cannot be pickled for a remote worker
        :raises ItemTimeoutError: if the chunk ran past ``item_timeout`` seconds
        """
        del tracked  # an executor's workers cannot report their progress
        try:
            if not self._remote:
                outcome: Outcome = await self._run_here(op, items, item_timeout)
                return outcome
            with anyio.fail_after(item_timeout):
                return await self._courier.round_trip(items, partial(self._run, op))
        except TimeoutError as exc:
            raise ItemTimeoutError(
                f"an item ran longer than its timeout of {item_timeout} s",
                timeout=item_timeout or 0.0,
                position=0 if len(items) == 1 else None,
            ) from exc

    async def _run_here(self, op: Op, items: list[Any], item_timeout: float | None) -> Any:
        """Run a chunk on a thread, its timeout counted from the end of the thread's setup."""
        if item_timeout is None:
            return await self._run(op, items)
        loop = asyncio.get_running_loop()
        began = loop.create_future()
        run = asyncio.ensure_future(
            self._run(op, items, began=partial(loop.call_soon_threadsafe, _resolve, began))
        )
        try:
            await asyncio.wait([began, run], return_when=asyncio.FIRST_COMPLETED)
            with anyio.fail_after(item_timeout):
                return await run
        finally:
            run.cancel()  # done already, or given up on: the thread finishes on its own
            began.cancel()

    async def _run(self, op: Op, items: Any, *, began: Callable[[], object] | None = None) -> Any:
        outcome = await self._call(None, op, items, began)
        if outcome is None:
            outcome = await self._call(self._payload, op, items, began)
        if outcome is None:  # pragma: no cover - run_chunk installs any payload it is given
            raise RuntimeError("a worker did not install the stage it was sent")
        return outcome

    async def _call(
        self, payload: Payload | None, op: Op, items: Any, began: Callable[[], object] | None
    ) -> Any:
        call = partial(
            run_chunk, self._key, payload, op, items, began=began, share_memory=self._shares
        )
        future = self._executor.submit(call)
        try:
            return await asyncio.wrap_future(future)
        except BaseException:
            if self._shares:
                # Given up on (a timeout, a cancelled run), the call may still
                # finish, and its results' segments then have no reader.
                future.add_done_callback(_drop_segments)
            raise

    async def aclose(self, *, aborted: bool) -> None:
        """Shut down a thread pool this runner started; leave a user's executor open.

        Then remove any shared-memory segment of this run that is left: the
        results of chunks that were cut short, which no one will read.
        """
        with anyio.CancelScope(shield=True):
            if self._owned:
                if aborted:
                    # A thread cannot be killed; let what runs finish on its
                    # own rather than hold up the cancellation of the run.
                    self._executor.shutdown(wait=False, cancel_futures=True)
                else:
                    await anyio.to_thread.run_sync(partial(self._executor.shutdown, wait=True))
            buffers.sweep(self._prefix)


def _drop_segments(future: Future[Any]) -> None:
    if future.cancelled() or future.exception() is not None:
        return
    packed = future.result()
    if packed is not None:
        buffers.unlink(buffers.segments_of(packed))


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
