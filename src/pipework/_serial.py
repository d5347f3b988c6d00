"""How items, results and exceptions cross a process boundary: cloudpickle both ways.

Both directions use cloudpickle, not only the function. A class defined in
the user's script travels by value with the function; cloudpickle gives it
an identity that survives the round trip, so a worker's instances of it
unpickle in the parent as instances of the parent's own class. Plain pickle
would refuse them ("not the same object as __main__.Out"). For built-in
types cloudpickle costs within a few percent of pickle.

This module runs in workers as well as in the parent, so it stays light.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

__all__ = ["NotPicklableError", "dumps", "dumps_values", "first_unpicklable", "loads"]


class NotPicklableError(Exception):
    """A value in a list could not be pickled; ``position`` says which one."""

    def __init__(self, position: int, cause: Exception) -> None:
        """Record the first value that failed, and why."""
        super().__init__(position, cause)
        self.position = position
        self.cause = cause


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` with cloudpickle, protocol 5."""
    blob: bytes = cloudpickle.dumps(obj, protocol=5)
    return blob


def loads(blob: bytes) -> Any:
    """Unpickle what `dumps` made; cloudpickle's output needs only pickle to load."""
    return pickle.loads(blob)


def dumps_values(values: list[Any]) -> bytes:
    """Pickle a list of values, naming the first that cannot be pickled.

    :raises NotPicklableError: with the position of the first bad value
    """
    try:
        return dumps(values)
    except Exception as exc:
        raise NotPicklableError(first_unpicklable(values), exc) from exc


def first_unpicklable(values: list[Any]) -> int:
    """Return the position of the first value that cannot be pickled (the cold path)."""
    for position, value in enumerate(values):
        try:
            dumps(value)
        except Exception:  # noqa: BLE001 - any failure to pickle is the answer
            return position
    return 0
