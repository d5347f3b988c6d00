"""Sending a chunk to another process and back: pickled, large buffers through shared memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .._worker import _buffers as buffers
from .._worker import _serial as serial
from .._worker._trampoline import Outcome


class Courier:
    """Packs a stage's chunks for remote workers and unpacks their outcomes.

    Buffers of a megabyte or more go in shared-memory segments named under
    the stage's prefix; every segment of a chunk, there and back, is removed
    once its outcome is unpacked, however the call ends.
    """

    def __init__(self, prefix: str | None) -> None:
        """Name this stage's segments under ``prefix``; with ``None``, all goes in band."""
        self._prefix = prefix
        # Whether the last chunk held large buffers: a hint that the next one
        # will too, and is worth packing in a thread.
        self._large = False

    async def round_trip(
        self, items: list[Any], send: Callable[[serial.Packed], Awaitable[Any]]
    ) -> Outcome:
        """Pack ``items``, ``send`` them, and unpack the outcome that comes back.

        :raises NotPicklableError: if an item cannot be pickled
        """
        if self._large:
            # Writing a large buffer to shared memory takes tens of ms; off the
            # event loop it stalls nothing, and two chunks copy at once.
            sent = await anyio.to_thread.run_sync(serial.pack_values, items, self._prefix)
        else:
            sent = serial.pack_values(items, self._prefix)
        self._large = bool(sent[1])
        segments = buffers.segments_of(sent)
        try:
            packed = await send(sent)
            # Unpacked before any segment goes: a result may refer to an item's.
            segments += buffers.segments_of(packed)
            return serial.unpack(packed, unlink=False)  # type: ignore[no-any-return]
        finally:
            if segments:
                # Mapped arrays live on unlinked. Freeing a large segment's
                # pages takes milliseconds, so that too is kept off the loop.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(buffers.unlink, segments)
