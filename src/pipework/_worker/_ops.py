"""What a map, filter or flat_map stage does to each item.

This module runs inside worker processes, so it imports nothing heavy. Every
kind of stage, inline, async, thread or process, shapes its results here, so
the three operations mean exactly the same thing wherever they run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal

from .._errors import cancelled_by_code, exited_by_code, is_cancellation

Op = Literal["map", "filter", "flat_map", "map_batches"]
"""``batch`` is a map over whole batches: the function takes a list of items and
returns one result per item, and the results go on as single items."""


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
    call: Callable[[Any], Any], op: Op, items: list[Any], *, in_worker: bool = False
) -> tuple[list[Any], tuple[int, Exception] | None]:
    """Apply ``call`` to each item in order, stopping at the first exception.

    ``in_worker`` says it runs on a worker thread or process, where a
    ``SystemExit`` would end the worker, or reach the event loop and end the
    program; there it is the item's failure, `ItemExitError`.

    :returns: the shaped results so far, and ``(position, exception)`` if an
        item failed; for ``batch``, the whole list fails at position 0
    """
    if op == "map_batches":
        return _apply_to_batch(call, items, in_worker=in_worker)
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
    except BaseException as exc:  # noqa: BLE001 - _failure_of raises what no item may own
        return results, (position, _failure_of(exc, "the function", in_worker=in_worker))
    return results, None


def _failure_of(exc: BaseException, where: str, *, in_worker: bool) -> Exception:
    # A sync function cannot be cancelled by the run: its CancelledError is
    # the item's failure, or it would pass for the run's own.
    if is_cancellation(exc):
        return cancelled_by_code(exc, where)
    if in_worker and isinstance(exc, SystemExit):
        return exited_by_code(exc, where)
    raise exc


def refuse_awaitables(op: Op, results: list[Any]) -> TypeError | None:
    """Return the error for a map whose sync function returned awaitables, closing them.

    A coroutine that will never run is closed where it was made, so no
    "never awaited" warning escapes, even from chunks that were still in
    flight when the first such error stopped the run. One look per chunk:
    a function that returns an awaitable for one item does for all.
    """
    if op not in ("map", "map_batches") or not results or not inspect.isawaitable(results[0]):
        return None
    for value in results:
        if inspect.iscoroutine(value):
            value.close()
    return TypeError(
        "the function returned an awaitable; to await it, pass an async def function "
        "(a lambda cannot be async: define one with async def)"
    )


class BatchLengthError(ValueError):
    """A batch function returned a different number of results than it was given items."""


def _apply_to_batch(
    call: Callable[[Any], Any], items: list[Any], *, in_worker: bool
) -> tuple[list[Any], tuple[int, Exception] | None]:
    try:
        return batch_results(call(items), len(items))
    except Exception as exc:  # noqa: BLE001 - the caller settles it for the whole batch
        return [], (0, exc)
    except BaseException as exc:  # noqa: BLE001 - _failure_of raises what no item may own
        return [], (0, _failure_of(exc, "the batch function", in_worker=in_worker))


def batch_results(value: Any, count: int) -> tuple[list[Any], tuple[int, Exception] | None]:
    """Check what a batch function returned for ``count`` items: one result each.

    :raises Exception: whatever iterating ``value`` raises
    """
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()
        raise TypeError("the batch function returned an awaitable; pass an async def function")
    results = list(value)
    if len(results) != count:
        return [], (
            0,
            BatchLengthError(
                f"the batch function returned {len(results)} results for {count} items; "
                "it must return exactly one result per item, in order"
            ),
        )
    return results, None
