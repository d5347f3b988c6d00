"""How items, results and exceptions cross a process boundary: cloudpickle both ways.

Both directions use cloudpickle, not only the function. A class defined in
the user's script travels by value with the function; cloudpickle gives it
an identity that survives the round trip, so a worker's instances of it
unpickle in the parent as instances of the parent's own class. Plain pickle
would refuse them ("not the same object as __main__.Out"). For built-in
types cloudpickle costs within a few percent of pickle.

With a segment prefix, buffers of a megabyte or more (numpy arrays) travel
out of band through shared memory (`pipework._buffers`) instead of the pipe.

This module runs in workers as well as in the parent, so it stays light.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

from . import _buffers as buffers
from ._buffers import Packed

__all__ = ["NotPicklableError", "Packed", "first_unpicklable", "pack", "pack_values", "unpack"]


class NotPicklableError(Exception):
    """A value in a list could not be pickled; ``position`` says which one."""

    def __init__(self, position: int, cause: Exception) -> None:
        """Record the first value that failed, and why."""
        super().__init__(position, cause)
        self.position = position
        self.cause = cause


def pack(obj: Any, prefix: str | None = None) -> Packed:
    """Pickle ``obj`` with cloudpickle, protocol 5; large buffers go in segments under ``prefix``.

    With no ``prefix``, everything goes in band.
    """
    segments: list[buffers.Segment] = []
    stream = io.BytesIO()
    callback = buffers.out_of_band(prefix, segments)
    try:
        cloudpickle.Pickler(stream, protocol=5, buffer_callback=callback).dump(obj)
    except BaseException:
        buffers.unlink([name for name, offset, _ in segments if offset == 0])
        raise
    return stream.getvalue(), tuple(segments)


def unpack(packed: Packed, *, unlink: bool, track: bool = False) -> Any:
    """Unpickle what `pack` made.

    ``unlink`` removes its segments once mapped; ``track`` lets a worker send
    back a buffer it received without copying it (see `pipework._buffers`).
    """
    data, segments = packed
    return pickle.loads(data, buffers=buffers.map_segments(segments, unlink=unlink, track=track))


def pack_values(values: list[Any], prefix: str | None = None) -> Packed:
    """Pack a list of values, naming the first that cannot be pickled.

    :raises NotPicklableError: with the position of the first bad value
    """
    try:
        return pack(values, prefix)
    except Exception as exc:
        raise NotPicklableError(first_unpicklable(values), exc) from exc


def first_unpicklable(values: list[Any]) -> int:
    """Return the position of the first value that cannot be pickled (the cold path)."""
    for position, value in enumerate(values):
        try:
            cloudpickle.dumps(value, protocol=5)
        except Exception:  # noqa: BLE001 - any failure to pickle is the answer
            return position
    return 0
