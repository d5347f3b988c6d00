"""Where a worker is within its chunk, shared with the parent without a message.

A worker that runs a tracked chunk writes, before each item, the item's
position and the time it started. The parent reads it when the worker dies,
to learn which item killed it, and while the worker runs, to learn whether
the current item has overrun its timeout. Writing costs well under a
microsecond per item, and only tracked chunks pay it: those with a timeout,
and those sent again after a crash.

The three numbers are written under a sequence count, odd while a write is
under way, so the parent never pairs one item's position with another's
start time.
"""

from __future__ import annotations

import multiprocessing.context
import time
from typing import Any

# Slots in the shared array.
_SEQ, _POSITION, _STARTED = 0, 1, 2
_READ_TRIES = 1000


class Tracker:
    """A worker's progress through its chunk: a position and a start time, in shared memory."""

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        """Allocate the shared slots; the tracker then goes to the worker as a start argument."""
        self._array = context.RawArray("d", 3)
        self._view: memoryview[float] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Send only the shared array; each process makes its own view of it."""
        return {"_array": self._array}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Take the shared array in the worker."""
        self._array = state["_array"]
        self._view = None

    @property
    def _slots(self) -> memoryview[float]:
        # A memoryview writes a double several times faster than ctypes indexing.
        if self._view is None:
            self._view = memoryview(self._array).cast("B").cast("d")
        return self._view

    def begin(self, position: int) -> None:
        """Record that the item at ``position`` starts now (``-1``: the chunk is being read)."""
        slots: Any = self._slots  # typeshed allows only ints into a memoryview
        slots[_SEQ] += 1
        slots[_POSITION] = position
        slots[_STARTED] = time.monotonic()
        slots[_SEQ] += 1

    def read(self) -> tuple[int, float]:
        """Return the position of the item running and when it started, on the monotonic clock."""
        slots = self._slots
        for _ in range(_READ_TRIES):
            seq = slots[_SEQ]
            position, started = slots[_POSITION], slots[_STARTED]
            if seq % 2 == 0 and slots[_SEQ] == seq:
                break
        # A worker killed in the middle of a write leaves the count odd for
        # good; its last position is still the right one to blame.
        return int(position), started
