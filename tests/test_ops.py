"""Ops: what map, filter, flat_map and map_batches make of a function's return values.

`apply` runs a chunk in order and stops at the first failure, `shape` turns a
return value into what the stage passes on, `refuse_awaitables` and
`batch_results` catch functions that return the wrong thing.
"""

from __future__ import annotations

import asyncio
import inspect
import sys

import pytest

from pipework import ItemCancelledError, ItemExitError
from pipework._worker._ops import (
    BatchLengthError,
    apply,
    batch_results,
    refuse_awaitables,
    shape,
)


async def later(x):
    return x


class Awaitable:
    """An awaitable that is not a coroutine: there is nothing to close."""

    def __await__(self):
        yield


def test_shape_passes_a_map_value_on_as_it_is():
    value = object()
    assert shape("map", value) is value


@pytest.mark.parametrize(("value", "flag"), [(1, True), ("x", True), (0, False), ([], False)])
def test_shape_turns_a_filter_value_into_a_flag(value, flag):
    assert shape("filter", value) is flag


def test_shape_materialises_a_flat_map_iterable():
    assert shape("flat_map", (x * 2 for x in range(3))) == [0, 2, 4]
    assert shape("flat_map", range(0)) == []


@pytest.mark.parametrize("op", ["filter", "flat_map"])
def test_shape_refuses_a_coroutine_and_closes_it(op):
    coroutine = later(1)
    with pytest.raises(TypeError, match=f"the {op} function returned an awaitable"):
        shape(op, coroutine)
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED


def test_shape_refuses_an_awaitable_that_is_not_a_coroutine():
    with pytest.raises(TypeError, match="async def"):
        shape("filter", Awaitable())


@pytest.mark.parametrize(
    ("op", "fn", "expected"),
    [
        ("map", lambda x: x * 10, [0, 10, 20, 30]),
        ("filter", lambda x: x % 2, [False, True, False, True]),
        ("flat_map", lambda x: [x] * x, [[], [1], [2, 2], [3, 3, 3]]),
    ],
)
def test_apply_shapes_every_result_in_order(op, fn, expected):
    assert apply(fn, op, [0, 1, 2, 3]) == (expected, None)


def test_apply_to_no_items_calls_nothing():
    assert apply(pytest.fail, "map", []) == ([], None)


@pytest.mark.parametrize("op", ["map", "filter", "flat_map"])
def test_apply_stops_at_the_first_failure_and_keeps_the_results_before_it(op):
    calls = []
    error = ValueError("bad item")

    def fn(x):
        calls.append(x)
        if x == 2:
            raise error
        return [x]

    results, failed = apply(fn, op, [0, 1, 2, 3, 4])
    assert failed == (2, error)
    assert failed[1] is error  # the function's own exception, not wrapped
    assert results == [shape(op, [0]), shape(op, [1])]
    assert calls == [0, 1, 2]  # nothing after the failure ran


def test_a_flat_map_that_returns_no_iterable_fails_its_item():
    results, failed = apply(lambda x: x or 5, "flat_map", [[1], 0])
    assert results == [[1]]
    assert failed is not None
    assert failed[0] == 1
    assert isinstance(failed[1], TypeError)


@pytest.mark.parametrize("in_worker", [False, True])
def test_a_cancelled_error_from_the_function_is_the_items_failure(in_worker):
    cancelled = asyncio.CancelledError()

    def fn(x):
        if x:
            raise cancelled
        return x

    results, failed = apply(fn, "map", [0, 1], in_worker=in_worker)
    assert results == [0]
    position, error = failed
    assert position == 1
    assert isinstance(error, ItemCancelledError)
    assert error.__cause__ is cancelled


def test_sys_exit_in_a_worker_is_the_items_failure():
    results, (position, error) = apply(lambda _: sys.exit(3), "map", [7], in_worker=True)
    assert (results, position) == ([], 0)
    assert isinstance(error, ItemExitError)
    assert error.code == 3
    assert isinstance(error.__cause__, SystemExit)


def test_sys_exit_outside_a_worker_and_keyboard_interrupt_anywhere_go_through():
    with pytest.raises(SystemExit):
        apply(lambda _: sys.exit(3), "map", [7], in_worker=False)

    def interrupt(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply(interrupt, "filter", [7], in_worker=True)
    with pytest.raises(KeyboardInterrupt):
        apply(interrupt, "map_batches", [7], in_worker=True)


def test_map_batches_calls_once_with_the_whole_list():
    calls = []

    def fn(items):
        calls.append(list(items))
        return (x + 1 for x in items)  # any iterable, materialised

    assert apply(fn, "map_batches", [1, 2, 3]) == ([2, 3, 4], None)
    assert calls == [[1, 2, 3]]


@pytest.mark.parametrize("returned", [[1], [1, 2, 3]])
def test_map_batches_needs_one_result_per_item(returned):
    results, (position, error) = apply(lambda _: returned, "map_batches", ["a", "b"])
    assert (results, position) == ([], 0)
    assert isinstance(error, BatchLengthError)
    assert isinstance(error, ValueError)
    assert f"returned {len(returned)} results for 2 items" in str(error)


def test_a_failing_batch_function_fails_the_whole_batch_at_position_zero():
    error = RuntimeError("the batch broke")

    def fn(items):
        raise error

    assert apply(fn, "map_batches", [1, 2, 3]) == ([], (0, error))


def test_a_batch_function_that_returns_a_coroutine_is_refused_and_the_coroutine_closed():
    made = []

    def fn(items):
        made.append(later(items))
        return made[-1]

    results, (position, error) = apply(fn, "map_batches", [1, 2])
    assert (results, position) == ([], 0)
    assert isinstance(error, TypeError)
    assert inspect.getcoroutinestate(made[0]) == inspect.CORO_CLOSED


def test_sys_exit_and_cancellation_from_a_batch_function_name_it():
    def cancel(items):
        raise asyncio.CancelledError

    _, (_, error) = apply(cancel, "map_batches", [1])
    assert isinstance(error, ItemCancelledError)
    assert str(error).startswith("the batch function raised")
    _, (_, error) = apply(lambda _: sys.exit(2), "map_batches", [1], in_worker=True)
    assert isinstance(error, ItemExitError)
    assert error.code == 2


def test_batch_results_passes_on_an_exception_from_iterating():
    def broken():
        yield 1
        raise OSError("mid-stream")

    with pytest.raises(OSError, match="mid-stream"):
        batch_results(broken(), 2)
    assert batch_results(iter("ab"), 2) == (["a", "b"], None)


@pytest.mark.parametrize("op", ["map", "map_batches"])
def test_refuse_awaitables_closes_every_coroutine_of_a_sync_map(op):
    results, failed = apply(later, "map", [1, 2, 3])
    assert failed is None
    error = refuse_awaitables(op, results)
    assert isinstance(error, TypeError)
    assert "async def" in str(error)
    assert all(inspect.getcoroutinestate(c) == inspect.CORO_CLOSED for c in results)


def test_refuse_awaitables_passes_plain_results_and_other_ops():
    assert refuse_awaitables("map", [1, 2]) is None
    assert refuse_awaitables("map", []) is None
    assert refuse_awaitables("filter", [True]) is None
    assert refuse_awaitables("map", [Awaitable()]) is not None
