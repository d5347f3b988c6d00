"""Service mode: one future per submitted item, bounded in flight, failures kept to their item.

The stages here are real: async functions on the event loop, and functions
in pipework's worker processes. Tests that need the service to be full hold
items in an async stage behind an `asyncio.Event`, so "full" is a state the
test sets up, not a race it hopes to win.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import pytest

from helpers import alive
from pipework import (
    FilteredOutError,
    ItemTimeoutError,
    Pipeline,
    ServiceBusyError,
    ServiceClosedError,
)
from pipework._run import execute

pytestmark = pytest.mark.timeout(60)


def square(x):
    return x * x


def slow_square(x):
    """Later items are quicker, so chunks finish out of order."""
    time.sleep(0.001 * (x % 7))
    return x * x


def fail_on_3(x):
    if x % 10 == 3:
        raise ValueError(f"bad {x}")
    return x * x


def sleep_on_5(x):
    if x == 5:
        time.sleep(30)
    return x * x


RNG = random.Random(3)  # noqa: S311 - delays that reorder work, not secrets


async def jitter(x):
    await asyncio.sleep(RNG.uniform(0, 0.01))
    return x + 1


async def eventually(condition, within=10.0):
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.005)


class Held:
    """An async stage that holds every item until the test lets it go, and counts them."""

    def __init__(self):
        self.release = asyncio.Event()
        self.entered = 0
        self.inside = 0
        self.most_inside = 0

    async def __call__(self, x):
        self.entered += 1
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            await self.release.wait()
        finally:
            self.inside -= 1
        return x * 10


# Matching results to callers -------------------------------------------------


async def test_concurrent_submits_from_many_tasks_each_get_their_own_result():
    pipeline = (
        Pipeline.service(int)
        .map(jitter, concurrency=8, ordered=False)
        .map(slow_square, on="process", workers=2, chunksize=4, ordered=False)
    )
    async with pipeline.open(max_in_flight=32) as service:

        async def caller(xs):
            return [(x, await service.submit(x)) for x in xs]

        numbers = list(range(300))
        RNG.shuffle(numbers)
        answers = await asyncio.gather(*(caller(numbers[i::20]) for i in range(20)))
    pairs = [pair for answer in answers for pair in answer]
    assert len(pairs) == 300
    assert all(result == (x + 1) ** 2 for x, result in pairs)
    assert service.report is not None
    assert service.report["slow_square"].items_out == 300


async def test_results_match_when_items_come_back_in_another_order():
    # Each item waits long for small x and briefly for large, so outputs
    # arrive in roughly the reverse order of submission.
    async def reverse(x):
        await asyncio.sleep(0.002 * (50 - x))
        return -x

    async with Pipeline.service(int).map(reverse, concurrency=50, ordered=False).open() as service:
        futures = [service.submit_nowait(x) for x in range(50)]
        arrival = [await future for future in asyncio.as_completed(futures)]
        results = [future.result() for future in futures]
    assert results == [-x for x in range(50)]
    assert arrival != sorted(arrival, reverse=True)  # they did come back reordered


async def test_submit_nowait_returns_a_future_of_the_result():
    async with Pipeline.service(int).map(square, on="process", workers=2).open() as service:
        future = service.submit_nowait(7)
        assert isinstance(future, asyncio.Future)
        assert await future == 49


# Full: busy answers and backpressure ------------------------------------------


async def test_submit_nowait_answers_busy_when_the_service_is_full():
    held = Held()
    async with Pipeline.service(int).map(held).open(max_in_flight=3) as service:
        futures = [service.submit_nowait(x) for x in range(3)]
        await eventually(lambda: held.entered == 3)
        assert service.in_flight == 3
        with pytest.raises(ServiceBusyError, match="3 items are in flight"):
            service.submit_nowait(99)
        held.release.set()
        assert await asyncio.gather(*futures) == [0, 10, 20]
        await eventually(lambda: service.in_flight == 0)
        assert await service.submit_nowait(4) == 40


async def test_submit_waits_for_room_and_nothing_grows_past_max_in_flight():
    held = Held()
    async with Pipeline.service(int).map(held, concurrency=16).open(max_in_flight=3) as service:
        callers = [asyncio.create_task(service.submit(x)) for x in range(12)]
        await eventually(lambda: held.entered == 3)
        await asyncio.sleep(0.05)  # room for any wrongly admitted item to show up
        assert held.entered == 3
        assert service.in_flight == 3
        assert not any(caller.done() for caller in callers)
        # Callers who wait for room are served first; a busy answer goes to newcomers.
        with pytest.raises(ServiceBusyError):
            service.submit_nowait(99)
        held.release.set()
        results = await asyncio.gather(*callers)
    assert results == [x * 10 for x in range(12)]
    assert held.most_inside <= 3


async def test_a_caller_that_gives_up_keeps_its_place_until_its_item_finishes():
    held = Held()
    async with Pipeline.service(int).map(held).open(max_in_flight=1) as service:
        caller = asyncio.create_task(service.submit(1))
        await eventually(lambda: held.entered == 1)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert service.in_flight == 1  # the item is still in the stage
        with pytest.raises(ServiceBusyError):
            service.submit_nowait(2)
        held.release.set()
        await eventually(lambda: service.in_flight == 0)
        assert await service.submit(3) == 30


# Failures stay with their item ---------------------------------------------------


def stage_in(mode, fn):
    if mode == "async":

        async def call(x):
            await asyncio.sleep(0)
            return fn(x)

        call.__name__ = fn.__name__
        return call, {}
    if mode in ("thread", "process"):
        return fn, {"on": mode, "workers": 2, "ordered": False}
    return fn, {}


@pytest.mark.parametrize("mode", ["inline", "async", "thread", "process"])
async def test_a_failed_item_fails_only_its_own_result(mode):
    fn, options = stage_in(mode, fail_on_3)
    async with Pipeline.service(int).map(fn, **options).open() as service:
        outcomes = await asyncio.gather(
            *(service.submit(x) for x in range(30)), return_exceptions=True
        )
        # The service goes on after the failures.
        assert await service.submit(4) == 16
    for x, outcome in enumerate(outcomes):
        if x % 10 == 3:
            assert isinstance(outcome, ValueError)
            assert str(outcome) == f"bad {x}"
            assert any(f"on item {x}: {x}" in note for note in outcome.__notes__)
        else:
            assert outcome == x * x
    report = service.report
    assert report is not None
    assert report["fail_on_3"].items_failed == 3
    assert sorted(f.index for f in report.failures) == [3, 13, 23]


async def test_skipped_items_fail_their_result_and_reach_the_dead_letter_handler():
    dead = []
    async with (
        Pipeline.service(int)
        .map(fail_on_3, on="process", workers=2, errors=dead.append)
        .map(str, errors="skip")
        .open() as service
    ):
        outcomes = await asyncio.gather(
            *(service.submit(x) for x in range(15)), return_exceptions=True
        )
    assert [type(o).__name__ for o in outcomes if not isinstance(o, str)] == ["ValueError"] * 2
    assert [o for o in outcomes if isinstance(o, str)] == [
        str(x * x) for x in range(15) if x % 10 != 3
    ]
    assert sorted(f.index for f in dead) == [3, 13]


async def test_an_item_that_overruns_its_timeout_fails_alone_and_its_worker_is_replaced():
    async with (
        Pipeline.service(int)
        .map(sleep_on_5, on="process", workers=2, timeout=0.5, ordered=False)
        .open() as service
    ):
        outcomes = await asyncio.gather(
            *(service.submit(x) for x in range(10)), return_exceptions=True
        )
        assert await service.submit(6) == 36
    assert isinstance(outcomes[5], ItemTimeoutError)
    assert [o for x, o in enumerate(outcomes) if x != 5] == [x * x for x in range(10) if x != 5]


async def test_retried_items_succeed_without_their_caller_knowing():
    tries: dict[int, int] = {}

    async def flaky(x):
        tries[x] = tries.get(x, 0) + 1
        if tries[x] < 3:
            raise ConnectionError("again")
        return x

    async with Pipeline.service(int).map(flaky, retry=3).open() as service:
        assert await asyncio.gather(*(service.submit(x) for x in range(5))) == list(range(5))
    assert service.report is not None
    assert service.report["flaky"].items_retried == 10


# Filter and flat_map ----------------------------------------------------------


async def test_an_item_a_filter_drops_fails_with_filtered_out_error():
    async with (
        Pipeline.service(int).filter(lambda x: x % 2, name="odd").map(square).open() as service
    ):
        assert await service.submit(3) == 9
        with pytest.raises(FilteredOutError) as caught:
            await service.submit(4)
    assert caught.value.index == 1
    assert caught.value.stage == "#1 'odd' (inline filter)"
    assert service.in_flight == 0


async def test_with_a_flat_map_each_result_is_the_list_of_its_outputs():
    async def shuffle_delay(x):
        await asyncio.sleep(RNG.uniform(0, 0.005))
        return x

    pipeline = (
        Pipeline.service(int)
        .flat_map(range, name="expand")
        .filter(lambda x: x % 3 != 2)
        .map(shuffle_delay, concurrency=16, ordered=False)
        .map(square, on="process", workers=2, ordered=False)
    )
    async with pipeline.open(max_in_flight=8, results="list") as service:
        results = await asyncio.gather(*(service.submit(n) for n in range(12)))
    for n, result in enumerate(results):
        assert sorted(result) == [x * x for x in range(n) if x % 3 != 2]
    assert results[0] == []
    assert service.in_flight == 0


async def test_a_flat_map_item_fails_if_any_of_its_outputs_fails():
    async with (
        Pipeline.service(int)
        .flat_map(lambda n: [n, n + 3])
        .map(fail_on_3)
        .open(results="list") as service
    ):
        with pytest.raises(ValueError, match="bad 3"):
            await service.submit(0)  # 0 and 3: the 3 fails
        assert await service.submit(1) == [1, 16]
        await eventually(lambda: service.in_flight == 0)


# Closing, cancelling, failing ---------------------------------------------------


async def test_closing_drains_every_item_in_flight_then_reports():
    async def slow(x):
        await asyncio.sleep(0.01)
        return x

    async with (
        Pipeline.service(int)
        .map(slow, concurrency=4)
        .map(square, on="process", workers=2)
        .open(max_in_flight=100) as service
    ):
        futures = [service.submit_nowait(x) for x in range(60)]
        assert service.report is None
    assert all(future.done() for future in futures)
    assert [future.result() for future in futures] == [x * x for x in range(60)]
    assert service.closed
    assert service.in_flight == 0
    report = service.report
    assert report is not None
    assert [stage.items_out for stage in report.stages] == [60, 60, 60]


async def test_a_caller_waiting_for_room_is_turned_away_when_the_block_ends():
    held = Held()
    async with Pipeline.service(int).map(held).open(max_in_flight=1) as service:
        first = asyncio.create_task(service.submit(1))
        waiting = asyncio.create_task(service.submit(2))
        await eventually(lambda: held.entered == 1)
        asyncio.get_running_loop().call_later(0.05, held.release.set)
    assert await first == 10
    with pytest.raises(ServiceClosedError, match="closing"):
        await waiting


async def test_cancelling_the_block_stops_at_once_and_cancels_pending_results(tmp_path):
    def mark_and_sleep(x):
        Path(tmp_path, str(os.getpid())).touch()
        time.sleep(30)
        return x

    futures = []

    async def host():
        async with Pipeline.service(int).map(mark_and_sleep, on="process", workers=2).open() as s:
            futures.extend(s.submit_nowait(x) for x in range(4))
            await asyncio.sleep(60)

    task = asyncio.create_task(host())
    await eventually(lambda: len(list(tmp_path.iterdir())) >= 1)
    pids = [int(path.name) for path in tmp_path.iterdir()]
    task.cancel()
    async with asyncio.timeout(15):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert all(future.cancelled() for future in futures)
    assert [pid for pid in pids if alive(pid)] == []


async def test_an_exception_in_the_block_stops_at_once_and_is_raised():
    held = Held()
    service = Pipeline.service(int).map(held).open()
    futures = []

    async def app():
        async with service:
            futures.append(service.submit_nowait(1))
            await eventually(lambda: held.entered == 1)
            raise KeyError("app")

    with pytest.raises(KeyError, match="app"):
        await app()
    assert futures[0].cancelled()
    assert service.report is None
    with pytest.raises(ServiceClosedError, match="closed"):
        service.submit_nowait(2)


async def test_a_failure_of_the_service_fails_pending_results_and_is_raised_from_the_block():
    held = Held()

    def refuse(failure):
        raise RuntimeError("the dead-letter queue is down")

    service = Pipeline.service(int).map(fail_on_3, errors=refuse).map(held).open()
    futures = []

    async def app():
        async with service:
            futures.append(service.submit_nowait(1))
            await eventually(lambda: held.entered == 1)
            with pytest.raises(ServiceClosedError) as caught:
                await service.submit(3)
            assert isinstance(caught.value.__cause__, RuntimeError)
            assert service.closed
            with pytest.raises(ServiceClosedError, match="because it failed") as later:
                await service.submit(5)
            assert isinstance(later.value.__cause__, RuntimeError)

    with pytest.raises(RuntimeError, match="dead-letter queue is down"):
        await app()
    with pytest.raises(ServiceClosedError):
        futures[0].result()


async def test_a_setup_that_raises_fails_the_service():
    def broken_setup():
        raise OSError("no model file")

    async def predict(model, x):
        return x

    service = Pipeline.service(int).map(predict, setup=broken_setup).open()

    async def app():
        async with service:
            with pytest.raises(ServiceClosedError) as caught:
                await service.submit(1)
            assert isinstance(caught.value.__cause__, OSError)

    with pytest.raises(OSError, match="no model file") as raised:
        await app()
    assert any("in the setup of stage #1" in note for note in raised.value.__notes__)


async def test_submit_before_open_and_after_close_raise_a_clear_error():
    service = Pipeline.service(int).map(square).open()
    with pytest.raises(ServiceClosedError, match="not open"):
        await service.submit(1)
    async with service:
        assert await service.submit(2) == 4
    with pytest.raises(ServiceClosedError, match="closed"):
        await service.submit(3)
    with pytest.raises(ServiceClosedError, match="closed"):
        service.submit_nowait(3)
    with pytest.raises(RuntimeError, match="opened once"):
        async with service:
            pass


# What a service refuses -------------------------------------------------------


def test_open_refuses_what_a_service_cannot_serve():
    with pytest.raises(TypeError, match="groups the items of several callers"):
        Pipeline.service(int).batch(4).map(sum).open()
    with pytest.raises(AttributeError, match="takes no more stages"):
        Pipeline.service(int).sink(print).open()  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match=r"started with Pipeline\.service\(\)"):
        Pipeline(range(3)).map(square).open()
    with pytest.raises(ValueError, match="at least 1"):
        Pipeline.service(int).open(max_in_flight=0)
    with pytest.raises(TypeError, match="whole number"):
        Pipeline.service(int).open(max_in_flight=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='results= must be "one" or "list"'):
        Pipeline.service(int).open(results="many")  # type: ignore[call-overload]


def test_a_flat_map_service_must_say_its_results_are_lists():
    """Its type would otherwise promise one output per item where there may be any number."""
    pipeline = Pipeline.service(str).map(str.strip).flat_map(str.split, name="words")
    with pytest.raises(
        ValueError,
        match=r"stage #2 'words' \(inline flat_map\) is a flat_map.*"
        r'results="list"',
    ):
        pipeline.open()
    pipeline.open(results="list")  # accepted


async def test_results_as_lists_without_a_flat_map():
    """Every item has a list: one output, or none when a filter dropped it."""
    pipeline = Pipeline.service(int).filter(lambda x: x % 2, name="odd").map(square)
    async with pipeline.open(results="list") as service:
        assert await service.submit(3) == [9]
        assert await service.submit(4) == []
    assert service.in_flight == 0


async def test_a_service_pipeline_cannot_be_run_as_a_batch_job():
    with pytest.raises(TypeError, match="fed by submit"):
        await Pipeline.service(int).map(square).run()


# The run-level observer that a service is built on ------------------------------


class Recorder:
    def __init__(self):
        self.failures = []
        self.shapes = []

    def failed(self, failure):
        self.failures.append((failure.index, type(failure.error).__name__))

    def reshaped(self, index, count, stage):
        self.shapes.append((index, count, stage))


def graph_of(*stages):
    pipeline = Pipeline(range(6), buffer=8)
    for op, fn in stages:
        pipeline = getattr(pipeline, op)(fn, buffer=8)
    return pipeline._graph


async def test_an_observer_takes_failures_that_would_stop_the_run_and_hears_of_reshaping():
    graph = graph_of(("map", fail_on_3), ("filter", lambda x: x != 16), ("flat_map", range))
    with pytest.raises(ValueError, match="bad 3"):
        await execute(graph)
    recorder = Recorder()
    report = await execute(graph, observer=recorder)
    assert recorder.failures == [(3, "ValueError")]
    label_filter, label_flat = graph.nodes[2].label, graph.nodes[3].label
    assert sorted(recorder.shapes) == [
        (0, 0, label_flat),  # range(0) is empty
        (2, 4, label_flat),
        (4, 0, label_filter),
        (5, 25, label_flat),
    ]
    assert report.stages[-1].items_out == 1 + 4 + 25
    assert [f.index for f in report.failures] == [3]


async def test_a_run_inside_a_service_stage_does_not_inherit_its_observer():
    async def inner(x):
        return await Pipeline([x]).map(fail_on_3).run()

    async with Pipeline.service(int).map(inner).open() as service:
        with pytest.raises(ValueError, match="bad 3"):
            await service.submit(3)  # the inner run raised, so the item failed
        report = await service.submit(4)
    assert report.stages[1].items_out == 1


def predict_many(items):
    if 13 in items:
        raise ValueError("thirteen")
    return [x * 10 for x in items]


async def test_map_batches_serves_each_caller_its_own_result_and_failure():
    pipeline = Pipeline.service(int).map_batches(
        predict_many, max_size=8, max_wait=0.005, on="process", workers=2
    )
    async with pipeline.open(max_in_flight=64) as service:
        results = await asyncio.gather(
            *(service.submit(x) for x in range(40)), return_exceptions=True
        )
    failed = [x for x, r in zip(range(40), results, strict=True) if isinstance(r, ValueError)]
    assert 13 in failed
    assert len(failed) <= 8  # the batch that held 13, and no other
    for x, result in zip(range(40), results, strict=True):
        if x not in failed:
            assert result == x * 10
