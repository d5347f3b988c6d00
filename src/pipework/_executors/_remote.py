"""A stage's chunks on an engine's `Workers`: packed in band, sent as bytes, timed out whole."""

from __future__ import annotations

from typing import Any

import anyio

from .._errors import ItemTimeoutError
from .._worker import _serial as serial
from .._worker._ops import Op
from .._worker._remote import chunk_of, outcome_of
from .._worker._trampoline import Outcome
from ._backend import StagePlan, Workers

# A chunk whose bytes pass this is packed and read off the event loop: copying
# megabytes takes milliseconds, which the loop should spend on other stages.
_LARGE = 1 << 20


class RemoteRunner:
    """Runs one stage's chunks on the `Workers` a `Backend` opened for it.

    The engine cannot say which item a worker was running, so a chunk lost
    to a death is split by the stage until one item is left; and it cannot
    share this host's memory, so every buffer travels inside the chunk.
    """

    supervised = False
    remote = True

    def __init__(self, workers: Workers, plan: StagePlan) -> None:
        """Drive ``workers``, opened for ``plan``."""
        self._workers = workers
        abilities = workers.abilities
        self.chunk_time: float | None = abilities.chunk_time
        self.reruns_lost_work = abilities.reruns_lost_work
        self._kills_overrunning = abilities.kills_overrunning
        capacity = max(1, workers.capacity)
        self._capacity = min(capacity, plan.workers) if plan.workers else capacity
        # A stage keeps two chunks in flight per slot, so that a worker is fed
        # while a result travels; an engine with threads to spare would run
        # both, so ``workers=`` holds the second here to stay a ceiling.
        self._slots = anyio.Semaphore(plan.workers) if plan.workers else None
        self._large = False

    @property
    def capacity(self) -> int:
        """How many chunks run at once: the cluster's, or ``workers=`` if fewer."""
        return self._capacity

    async def run_chunk(
        self, op: Op, items: list[Any], *, tracked: bool = False, item_timeout: float | None = None
    ) -> Outcome:
        """Run one chunk on the engine; see `pipework._executors.Runner`.

        :raises NotPicklableError: if an item cannot be pickled
        :raises WorkerDiedError: if the engine lost the chunk to dying workers
        :raises ItemTimeoutError: if the chunk ran past ``item_timeout``; the
            task is cancelled, which stops it only where the engine can
        """
        del tracked  # an engine's workers cannot report their progress
        if self._large:
            data, _ = await anyio.to_thread.run_sync(serial.pack_values, items)
        else:
            data, _ = serial.pack_values(items)
        self._large = len(data) > _LARGE
        try:
            with anyio.fail_after(item_timeout):
                reply = await self._run(chunk_of(op, data))
        except TimeoutError as exc:
            overran = ItemTimeoutError(
                f"an item ran longer than its timeout of {item_timeout} s",
                timeout=item_timeout or 0.0,
                position=0 if len(items) == 1 else None,
            )
            if not self._kills_overrunning:
                overran.add_note(
                    "pipework: this engine cannot stop a running task: "
                    "it runs on to its end on the cluster, holding a worker thread"
                )
            raise overran from exc
        if len(reply) > _LARGE:
            return await anyio.to_thread.run_sync(outcome_of, reply)
        return outcome_of(reply)

    async def _run(self, chunk: bytes) -> bytes:
        if self._slots is None:
            return await self._workers.run(chunk)
        async with self._slots:
            return await self._workers.run(chunk)

    async def aclose(self, *, aborted: bool) -> None:
        """Release the stage's workers; an aborted run cancels what still runs."""
        with anyio.CancelScope(shield=True):
            await self._workers.aclose(aborted=aborted)
