"""The protocol every runner of a stage's chunks meets: what the stages see of where they run."""

from __future__ import annotations

from typing import Any, Protocol

from .._worker._ops import Op
from .._worker._trampoline import Outcome


class Runner(Protocol):
    """Runs chunks of one stage on a set of workers.

    A runner is started by the function that opens it, and is stopped by
    `aclose`. Per-worker setup travels inside it: the first chunk a worker
    runs loads the stage's function and calls its ``setup``.
    """

    @property
    def capacity(self) -> int:
        """How many chunks can run at once: the number of workers."""
        ...

    @property
    def remote(self) -> bool:
        """Whether items and results cross a process boundary (and so are pickled)."""
        ...

    @property
    def supervised(self) -> bool:
        """Whether a worker that dies or overruns is replaced, and can tell at which item.

        A supervised runner survives its workers and honours ``tracked`` and a
        timeout per item; any other can only time out a whole chunk.
        """
        ...

    @property
    def chunk_time(self) -> float | None:
        """The seconds of work a chunk should hold, or ``None`` for pipework's default."""
        ...

    @property
    def reruns_lost_work(self) -> bool:
        """Whether a lost chunk was already run again by the engine, so its loss is final."""
        ...

    async def run_chunk(
        self, op: Op, items: list[Any], *, tracked: bool = False, item_timeout: float | None = None
    ) -> Outcome:
        """Run ``op`` over ``items`` on one worker, and return the outcome.

        ``tracked`` asks the worker to record each item as it starts, so that a
        death can be pinned on one item; ``item_timeout`` limits each item.

        :raises NotPicklableError: if an item cannot be sent to a remote worker
        :raises WorkerDiedError: if the worker died during the chunk
        :raises ItemTimeoutError: if an item ran past ``item_timeout``
        """
        ...

    async def aclose(self, *, aborted: bool) -> None:
        """Stop the workers this runner started; an aborted run kills them."""
        ...
