"""How items, results and exceptions cross a process boundary: cloudpickle both ways.

Both directions use cloudpickle, not only the function. A class defined in
the user's script travels by value with the function; cloudpickle gives it
an identity that survives the round trip, so a worker's instances of it
unpickle in the parent as instances of the parent's own class. Plain pickle
would refuse them ("not the same object as __main__.Out"). For built-in
types cloudpickle costs within a few percent of pickle.

With a segment prefix, buffers of a megabyte or more (numpy arrays) travel
out of band through shared memory (`pipework._worker._buffers`) instead of the pipe.

This module runs in workers as well as in the parent, so it stays light.
"""

from __future__ import annotations

import io
import marshal
import pickle
import types
from collections import ChainMap
from collections.abc import Callable
from typing import Any, ClassVar

import cloudpickle  # type: ignore[import-untyped]

from . import _buffers as buffers
from ._buffers import Packed

__all__ = [
    "NotPicklableError",
    "Packed",
    "Pickler",
    "dumps",
    "first_unpicklable",
    "pack",
    "pack_values",
    "unpack",
]


def _code_by_value(code: types.CodeType) -> tuple[Callable[[bytes], Any], tuple[bytes]]:
    # cloudpickle renames the file of every code object it sends by value
    # "<dynamic-code>", so a worker's traceback through a lambda or a
    # closure would name no file and show no line. marshal keeps the whole
    # code object, file name and line table included. It needs the same
    # Python on both sides, as cloudpickle itself does.
    return marshal.loads, (marshal.dumps(code),)


class Pickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle is untyped
    """cloudpickle's pickler, but functions sent by value keep their file name and lines.

    So a traceback from a worker points at the user's own file and line.
    """

    dispatch_table: ClassVar[ChainMap[type, Callable[..., Any]]] = ChainMap(
        {types.CodeType: _code_by_value}, cloudpickle.Pickler.dispatch_table
    )


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` with `Pickler`, protocol 5, all in band."""
    stream = io.BytesIO()
    Pickler(stream, protocol=5).dump(obj)
    return stream.getvalue()


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
        Pickler(stream, protocol=5, buffer_callback=callback).dump(obj)
    except BaseException:
        buffers.unlink([name for name, offset, _ in segments if offset == 0])
        raise
    return stream.getvalue(), tuple(segments)


def unpack(packed: Packed, *, unlink: bool, track: bool = False) -> Any:
    """Unpickle what `pack` made.

    ``unlink`` removes its segments once mapped; ``track`` lets a worker send
    back a buffer it received without copying it (see `pipework._worker._buffers`).
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
