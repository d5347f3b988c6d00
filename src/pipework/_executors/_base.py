"""The protocol every executor backend meets."""

from __future__ import annotations

from typing import Any, Protocol

from .._ops import Op
from .._worker import Outcome


class Backend(Protocol):
    """Runs chunks of one stage on a set of workers.

    A backend is started by the function that opens it, and is stopped by
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

    async def run_chunk(self, op: Op, items: list[Any]) -> Outcome:
        """Run ``op`` over ``items`` on one worker, and return the outcome.

        :raises NotPicklableError: if an item cannot be sent to a remote worker
        """
        ...

    async def aclose(self, *, aborted: bool) -> None:
        """Stop the workers this backend started; an aborted run kills them."""
        ...
