"""What a map, filter or flat_map stage does to each item.

This module runs inside worker processes, so it imports nothing heavy. Every
kind of stage, inline, async, thread or process, shapes its results here, so
the three operations mean exactly the same thing wherever they run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal

Op = Literal["map", "filter", "flat_map"]


def shape(op: Op, value: Any) -> Any:
    """Turn a function's return value into what the stage's parent expects.

    A filter sends back only a flag, not the item, so that a process stage
    does not pay to pickle the item twice. A flat_map materialises its
    iterable, because a generator cannot cross a process boundary.
    """
    if op == "map":
        return value
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()  # it will never run; closing it silences "never awaited"
        raise TypeError(
            f"the {op} function returned an awaitable; to await it, pass an async def function"
        )
    if op == "filter":
        return bool(value)
    return list(value)


def apply(
    call: Callable[[Any], Any], op: Op, items: list[Any]
) -> tuple[list[Any], tuple[int, Exception] | None]:
    """Apply ``call`` to each item in order, stopping at the first exception.

    :returns: the shaped results so far, and ``(position, exception)`` if an
        item failed
    """
    results: list[Any] = []
    append = results.append
    position = 0
    try:
        if op == "map":
            for position, item in enumerate(items):  # noqa: B007 - position is read on failure
                append(call(item))
        else:
            for position, item in enumerate(items):  # noqa: B007
                append(shape(op, call(item)))
    except Exception as exc:  # noqa: BLE001 - the caller re-raises it with the item named
        return results, (position, exc)
    return results, None
