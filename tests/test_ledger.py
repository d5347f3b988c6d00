"""A service's bookkeeping, driven directly: `Intake`, `Gate`, `Ledger` and the service errors.

`tests/test_service.py` drives them through a running service; here each is
handed the calls a run would make, one at a time, so that every step of
the bookkeeping can be checked: which future resolves, with what, and when
a place in ``max_in_flight`` is given back or handed on.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import pickle

import pytest

from pipework import FilteredOutError, PipeworkError, ServiceBusyError, ServiceClosedError
from pipework._model._failure import Failure
from pipework._packet import Packet
from pipework._service._ledger import Gate, Intake, Ledger

pytestmark = pytest.mark.timeout(30)


async def turns(count=5):
    """Let the other tasks run for a few turns of the loop."""
    for _ in range(count):
        await asyncio.sleep(0)


def packet(*pairs):
    """A packet of ``(index, item)`` pairs."""
    return Packet([index for index, _ in pairs], [item for _, item in pairs])


def failure(index, error, stage="#1 'f' (async map)"):
    return Failure(stage=stage, index=index, item=repr(index), error=error, attempts=1)


# The errors -------------------------------------------------------------------------


def test_the_service_errors_are_pipework_errors_and_closed_is_a_runtime_error():
    assert issubclass(ServiceBusyError, PipeworkError)
    assert issubclass(ServiceClosedError, PipeworkError)
    assert issubclass(ServiceClosedError, RuntimeError)
    assert issubclass(FilteredOutError, PipeworkError)


def test_filtered_out_error_names_the_item_and_the_stage():
    error = FilteredOutError(4, "#2 'valid' (inline filter)")
    assert (error.index, error.stage) == (4, "#2 'valid' (inline filter)")
    assert str(error) == "item 4 was filtered out by stage #2 'valid' (inline filter)"


# Intake -----------------------------------------------------------------------------


async def test_the_intake_gives_items_in_admission_order_and_ends_once_closed_and_empty():
    intake = Intake()
    for item in ["a", "b", "c"]:
        intake.put(item)
    intake.close()
    assert [item async for item in intake] == ["a", "b", "c"]
    assert [item async for item in intake] == []  # still ended


async def test_a_reader_waiting_on_the_intake_wakes_for_each_put_and_for_close():
    intake = Intake()
    taken = []

    async def read():
        async for item in intake:
            taken.append(item)  # noqa: PERF401 - each item is checked as it comes

    reader = asyncio.create_task(read())
    await turns()
    assert taken == []
    assert not reader.done()
    intake.put(1)
    await turns()
    assert taken == [1]
    intake.put(2)
    intake.put(3)
    await turns()
    assert taken == [1, 2, 3]
    assert not reader.done()
    intake.close()
    await asyncio.wait_for(reader, 10)
    assert taken == [1, 2, 3]


async def test_an_intake_closed_before_anything_came_ends_at_once():
    intake = Intake()
    intake.close()
    with pytest.raises(StopAsyncIteration):
        await anext(intake)


async def test_items_put_before_close_are_still_given_after_it():
    intake = Intake()
    reader = asyncio.create_task(anext(intake))
    await turns()
    intake.put("last")
    intake.close()
    assert await asyncio.wait_for(reader, 10) == "last"
    with pytest.raises(StopAsyncIteration):
        await anext(intake)


async def test_a_reader_cancelled_while_waiting_leaves_the_intake_usable():
    intake = Intake()
    reader = asyncio.create_task(anext(intake))
    await turns()
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    intake.put("kept")  # no waiter left to wake: a put must not fail
    assert await anext(intake) == "kept"


# Gate -------------------------------------------------------------------------------


def test_try_enter_admits_up_to_the_limit_and_leave_frees_a_place():
    gate = Gate(2)
    assert gate.try_enter()
    assert gate.try_enter()
    assert not gate.try_enter()
    assert gate.held == 2
    gate.leave()
    assert gate.held == 1
    assert gate.try_enter()
    assert not gate.try_enter()


async def test_enter_takes_a_free_place_without_waiting():
    gate = Gate(1)
    await asyncio.wait_for(gate.enter(), 10)
    assert gate.held == 1


async def test_waiters_get_freed_places_first_come_first_served():
    gate = Gate(1)
    assert gate.try_enter()
    order = []

    async def wait(name):
        await gate.enter()
        order.append(name)

    waiters = []
    for name in "abc":
        waiters.append(asyncio.create_task(wait(name)))
        await turns()
    assert order == []
    for expected in (["a"], ["a", "b"], ["a", "b", "c"]):
        gate.leave()
        await turns()
        assert order == expected
        assert gate.held == 1  # handed over, never freed
    await asyncio.gather(*waiters)
    gate.leave()
    assert gate.held == 0


async def test_a_place_handed_to_a_waiter_cannot_be_taken_by_try_enter():
    gate = Gate(1)
    assert gate.try_enter()
    waiter = asyncio.create_task(gate.enter())
    await turns()
    gate.leave()  # the place goes to the waiter, which has not run yet
    assert not gate.try_enter()
    await asyncio.wait_for(waiter, 10)
    assert gate.held == 1


async def test_try_enter_does_not_jump_the_queue_while_callers_wait():
    gate = Gate(2)
    assert gate.try_enter()
    assert gate.try_enter()
    waiter = asyncio.create_task(gate.enter())
    await turns()
    gate.limit = 3  # room, but someone is already waiting for it
    assert not gate.try_enter()
    gate.leave()
    await asyncio.wait_for(waiter, 10)


async def test_a_waiter_that_gives_up_leaves_the_queue_and_takes_no_place():
    gate = Gate(1)
    assert gate.try_enter()
    quitter = asyncio.create_task(gate.enter())
    await turns()
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    gate.leave()  # nobody waits: the place is freed
    assert gate.held == 0
    assert gate.try_enter()


async def test_a_waiter_that_gives_up_just_as_its_place_comes_passes_it_on():
    gate = Gate(1)
    assert gate.try_enter()
    quitter = asyncio.create_task(gate.enter())
    await turns()
    patient = asyncio.create_task(gate.enter())
    await turns()
    gate.leave()  # the place is handed to the quitter...
    quitter.cancel()  # ...which gives up before it runs
    with pytest.raises(asyncio.CancelledError):
        await quitter
    await asyncio.wait_for(patient, 10)  # so it went on to the next in line
    assert gate.held == 1
    gate.leave()
    assert gate.held == 0


async def test_a_handed_over_place_given_up_with_nobody_behind_is_freed():
    gate = Gate(1)
    assert gate.try_enter()
    quitter = asyncio.create_task(gate.enter())
    await turns()
    gate.leave()
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    assert gate.held == 0
    assert gate.try_enter()


async def test_closing_the_gate_turns_away_every_waiter_and_every_later_caller():
    gate = Gate(1)
    assert gate.try_enter()
    waiters = [asyncio.create_task(gate.enter()) for _ in range(3)]
    await turns()
    closed = ServiceClosedError("the service is closing")
    gate.close(closed)
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(result is closed for result in results)
    assert gate.held == 1  # nobody got in
    gate.leave()
    with pytest.raises(ServiceClosedError) as caught:
        await gate.enter()  # even with room
    assert caught.value is closed
    assert gate.held == 0


# Ledger -----------------------------------------------------------------------------


async def test_an_item_that_arrives_resolves_its_future_and_frees_its_place():
    gate = Gate(4)
    ledger = Ledger(gate, collect=False)
    futures = {}
    for index in range(3):
        assert gate.try_enter()
        futures[index] = ledger.add(index)
    assert len(ledger) == 3
    ledger.arrived(packet((2, "c"), (0, "a")))  # in any order, several at once
    assert futures[0].result() == "a"
    assert futures[2].result() == "c"
    assert not futures[1].done()
    assert len(ledger) == 1
    assert gate.held == 1
    ledger.arrived(packet((1, "b")))
    assert futures[1].result() == "b"
    assert len(ledger) == 0
    assert gate.held == 0


async def test_an_item_dropped_by_a_filter_fails_with_filtered_out_error_naming_the_first_dropper():
    gate = Gate(2)
    ledger = Ledger(gate, collect=False)
    assert gate.try_enter()
    future = ledger.add(7)
    # Copied to two branches by a fan-out; the filter on one drops it, then
    # the zip where they meet drops the other copy too.
    ledger.reshaped(7, 2, "#1 'source' (source)")
    ledger.reshaped(7, 0, "#2 'valid' (inline filter)")
    assert not future.done()
    ledger.reshaped(7, 0, "#4 'zip' (zip)")
    with pytest.raises(FilteredOutError) as caught:
        future.result()
    assert (caught.value.index, caught.value.stage) == (7, "#2 'valid' (inline filter)")
    assert gate.held == 0
    assert len(ledger) == 0


async def test_a_flat_map_item_resolves_to_all_its_outputs_once_the_last_arrives():
    gate = Gate(2)
    ledger = Ledger(gate, collect=True)
    assert gate.try_enter()
    assert gate.try_enter()
    many, none = ledger.add(0), ledger.add(1)
    ledger.reshaped(0, 3, "#2 'split' (inline flat_map)")
    ledger.reshaped(1, 0, "#2 'split' (inline flat_map)")
    assert none.result() == []  # a list, not a FilteredOutError
    ledger.arrived(packet((0, "x"), (0, "y")))
    assert not many.done()
    assert gate.held == 1
    ledger.arrived(packet((0, "z")))
    assert many.result() == ["x", "y", "z"]
    assert gate.held == 0


async def test_collect_makes_a_list_of_a_single_output():
    ledger = Ledger(Gate(1), collect=True)
    future = ledger.add(0)
    ledger.arrived(packet((0, 42)))
    assert future.result() == [42]


async def test_a_failure_fails_the_item_at_once_and_its_place_frees_once_nothing_more_comes():
    gate = Gate(1)
    ledger = Ledger(gate, collect=True)
    assert gate.try_enter()
    future = ledger.add(5)
    ledger.reshaped(5, 3, "#2 'split' (inline flat_map)")
    error = ValueError("bad 5")
    ledger.failed(failure(5, error))
    with pytest.raises(ValueError, match="bad 5") as caught:
        future.result()  # at once, before the other outputs come
    assert caught.value is error
    assert gate.held == 1  # two outputs are still in the pipeline
    ledger.arrived(packet((5, "late")))
    ledger.failed(failure(5, KeyError("second")))
    assert future.exception() is error  # the first outcome stays
    assert gate.held == 0
    assert len(ledger) == 0


async def test_a_result_the_caller_gave_up_on_is_not_an_error():
    gate = Gate(1)
    ledger = Ledger(gate, collect=False)
    assert gate.try_enter()
    future = ledger.add(0)
    future.cancel()  # the caller stopped waiting
    ledger.arrived(packet((0, "unwanted")))
    assert future.cancelled()
    assert gate.held == 0  # its place is freed all the same
    assert len(ledger) == 0


async def test_a_failure_nobody_awaits_is_not_reported_as_never_retrieved(caplog):
    ledger = Ledger(Gate(1), collect=False)
    future = ledger.add(0)
    ledger.failed(failure(0, ValueError("nobody listens")))
    await turns()  # done callbacks run
    del future
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
    assert "never retrieved" not in caplog.text


async def test_end_without_an_error_cancels_every_future_left():
    gate = Gate(3)
    ledger = Ledger(gate, collect=False)
    done, left_a, left_b = ledger.add(0), ledger.add(1), ledger.add(2)
    ledger.arrived(packet((0, "kept")))
    ledger.end(None)
    assert done.result() == "kept"
    assert left_a.cancelled()
    assert left_b.cancelled()
    assert len(ledger) == 0


async def test_end_with_an_error_fails_every_future_left_with_it():
    ledger = Ledger(Gate(3), collect=False)
    failed, left = ledger.add(0), ledger.add(1)
    ledger.reshaped(0, 2, "#2 'split' (inline flat_map)")
    first = ValueError("first")
    ledger.failed(failure(0, first))  # done, yet still open: a copy is to come
    assert len(ledger) == 2
    closed = ServiceClosedError("the service failed")
    ledger.end(closed)
    assert failed.exception() is first
    assert left.exception() is closed
    assert len(ledger) == 0
    ledger.end(None)  # nothing left: a second end changes nothing
    assert left.exception() is closed


def test_a_filtered_out_error_travels_by_pickle_with_its_fields():
    # An app may hand it to another process (a worker, a queue) as any error.
    error = pickle.loads(pickle.dumps(FilteredOutError(3, "#2 'x' (inline filter)")))
    assert (error.index, error.stage) == (3, "#2 'x' (inline filter)")
    assert str(error) == "item 3 was filtered out by stage #2 'x' (inline filter)"
