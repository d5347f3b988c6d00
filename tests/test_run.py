"""`pipework._run.execute`: how a graph is wired, run and reported, called on built graphs.

The graphs come from `Pipeline`, `pipework.zip` and `pipework.merge`; what
is checked is what `execute` itself answers for: a report row for every
stage, in graph order; the caller's tail channel fed and always closed; a
fan-out copying each item to every reader (and telling an observer so);
the run observer set for the stages and reset afterwards; the first
failure in any branch stopping every branch; and the refusal to start in a
worker process that is importing the main module.
"""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest

import pipework
from pipework import Pipeline
from pipework._channel import Channel
from pipework._model._graph import Graph
from pipework._run import execute
from pipework._stages._policy import RUN_OBSERVER

pytestmark = pytest.mark.timeout(30)


def square(x):
    return x * x


def negate(x):
    return -x


def fail_on_3(x):
    if x == 3:
        raise ValueError("bad 3")
    return x


async def read_all(channel):
    items = []
    while (packet := await channel.take()) is not None:
        items.extend(packet.items)
    return items


class Recorder:
    """An `ItemObserver` that keeps what it hears."""

    def __init__(self):
        self.failures = []
        self.shapes = []

    def failed(self, failure):
        self.failures.append(failure.index)

    def reshaped(self, index, count, stage):
        self.shapes.append((index, count, stage))


# The report ---------------------------------------------------------------------------


async def test_the_report_has_one_row_per_stage_of_a_diamond_in_graph_order():
    base = Pipeline(range(20), buffer=4).map(square, name="shared")
    left = base.map(negate, name="left")
    right = base.filter(lambda x: x % 2 == 0, name="right")
    graph = pipework.merge(left, right, name="join")._graph

    report = await execute(graph)

    assert [s.name for s in report.stages] == [node.spec.name for node in graph.nodes]
    assert [s.kind for s in report.stages] == [node.spec.kind for node in graph.nodes]
    assert sorted(s.name for s in report.stages) == ["join", "left", "right", "shared", "source"]
    by_name = {s.name: s for s in report.stages}
    assert by_name["shared"].items_in == by_name["shared"].items_out == 20  # once, not per branch
    assert by_name["left"].items_in == by_name["right"].items_in == 20
    assert by_name["right"].items_out == 10
    assert by_name["join"].items_in == by_name["join"].items_out == 30
    assert report.wall_seconds > 0


async def test_a_stage_read_by_several_branches_reports_its_own_buffer_and_a_sink_none():
    base = Pipeline(range(50), buffer=3)
    report = await pipework.run_all(
        base.map(square, buffer=5).sink(lambda _: None, name="a"),
        base.sink(lambda _: None, name="b"),
    )
    source, mapped, sink_a, sink_b = report.stages
    assert source.queue_capacity == 3  # the fan-out's channels, one per reader
    assert 0 < source.queue_peak <= 3
    assert mapped.queue_capacity == 5
    assert (sink_a.queue_capacity, sink_a.queue_peak) == (0, 0)
    assert (sink_b.queue_capacity, sink_b.queue_peak) == (0, 0)
    assert sink_a.items_in == sink_b.items_in == 50


async def test_failures_are_reported_in_source_order_whatever_order_they_happened_in():
    late_may_fail = asyncio.Event()

    async def fail_evens(x):
        if x == 0:
            await late_may_fail.wait()
        if x % 2 == 0:
            if x == 4:
                late_may_fail.set()  # so 0 fails last, after 2 and 4
            raise ValueError(f"bad {x}")
        return x

    pipeline = Pipeline(range(6)).map(fail_evens, concurrency=6, ordered=False, errors="skip")
    report = await execute(pipeline._graph)
    stage = report.stages[1]
    assert stage.items_failed == 3
    assert [f.index for f in stage.failures] == [0, 2, 4]
    assert [f.index for f in report.failures] == [0, 2, 4]
    assert stage.items_out == 3


# The tail channel ---------------------------------------------------------------------


async def test_the_last_stage_writes_to_the_callers_tail_which_is_closed_at_the_end():
    tail = Channel(4)
    graph = Pipeline(range(30), buffer=4).map(square)._graph
    reader = asyncio.create_task(read_all(tail))
    report = await execute(graph, tail)
    assert tail.closed
    assert await asyncio.wait_for(reader, 10) == [x * x for x in range(30)]
    assert report.stages[-1].items_out == 30


async def test_the_tail_is_closed_when_the_run_fails_so_its_reader_wakes():
    tail = Channel(2)
    graph = Pipeline(range(10), buffer=1).map(fail_on_3, buffer=1)._graph
    reader = asyncio.create_task(read_all(tail))
    with pytest.raises(ValueError, match="bad 3"):
        await execute(graph, tail)
    assert tail.closed
    got = await asyncio.wait_for(reader, 10)
    assert got == list(range(len(got)))  # what came before the failure, in order
    assert 3 not in got


async def test_the_tail_is_closed_when_the_run_is_cancelled():
    tail = Channel(1)
    started = asyncio.Event()

    async def forever(x):
        started.set()
        await asyncio.Event().wait()
        return x

    run = asyncio.create_task(execute(Pipeline(range(5)).map(forever)._graph, tail))
    await asyncio.wait_for(started.wait(), 10)
    assert not tail.closed
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert tail.closed
    assert await asyncio.wait_for(tail.take(), 10) is None


async def test_with_several_tails_the_first_goes_to_the_caller_and_the_others_are_drained():
    base = Pipeline(range(40), buffer=2)
    first, second = base.map(square, buffer=2), base.map(negate, buffer=2)
    graph = Graph.of([first._outlet, second._outlet])
    assert len(graph.tails) == 2
    tail = Channel(2)
    reader = asyncio.create_task(read_all(tail))
    report = await execute(graph, tail)  # buffers of 2: the run ends only if both are read
    assert await asyncio.wait_for(reader, 10) == [x * x for x in range(40)]
    assert [s.items_out for s in report.stages] == [40, 40, 40]


async def test_without_a_tail_every_output_is_drained_and_counted():
    base = Pipeline(range(25), buffer=1)
    graph = Graph.of([base.map(square, buffer=1)._outlet, base.map(negate, buffer=1)._outlet])
    report = await execute(graph)
    assert [s.items_out for s in report.stages] == [25, 25, 25]


# Fan-out ------------------------------------------------------------------------------


async def test_a_fan_out_sends_every_item_to_every_branch_in_order():
    got_a, got_b, got_c = [], [], []
    base = Pipeline(range(100), buffer=2)
    await pipework.run_all(
        base.sink(got_a.append), base.map(square).sink(got_b.append), base.sink(got_c.append)
    )
    assert got_a == got_c == list(range(100))
    assert got_b == [x * x for x in range(100)]


async def test_an_observer_hears_of_each_item_copied_by_a_fan_out_from_the_stage_that_copies():
    base = Pipeline(range(4)).map(square, name="fork")
    graph = pipework.zip(base.map(negate), base.map(square), base)._graph
    fork = next(node for node in graph.nodes if node.spec.name == "fork")
    recorder = Recorder()
    report = await execute(graph, observer=recorder)
    copies = sorted(shape for shape in recorder.shapes if shape[2] == fork.label)
    assert copies == [(i, 3, fork.label) for i in range(4)]  # once per item, for three readers
    # The zip folds each item's three copies back into one, and says so.
    assert {stage for _, _, stage in recorder.shapes} == {fork.label, graph.nodes[-1].label}
    assert recorder.failures == []
    assert report.stages[-1].items_out == 4


async def test_without_an_observer_a_fan_out_counts_no_copies():
    # No observer: nothing to tell, and the run is the same.
    base = Pipeline(range(4)).map(square)
    got = [pair async for pair in pipework.zip(base, base.map(negate))]
    assert got == [(x * x, -x * x) for x in range(4)]


# The run observer ---------------------------------------------------------------------


async def test_the_observer_is_the_stages_run_observer_and_is_reset_after_the_run():
    seen = []

    def look(x):
        seen.append(RUN_OBSERVER.get())
        return x

    recorder = Recorder()
    graph = Pipeline(range(3)).map(look)._graph
    await execute(graph, observer=recorder)
    assert seen == [recorder] * 3
    assert RUN_OBSERVER.get() is None

    seen.clear()
    await execute(graph)
    assert seen == [None] * 3


async def test_the_observer_is_reset_after_a_failed_run():
    recorder = Recorder()

    def boom(_):
        raise KeyError("late")

    graph = Pipeline(range(3)).sink(boom)._graph  # a sink's failure is not an item's
    with pytest.raises(KeyError):
        await execute(graph, observer=recorder)
    assert RUN_OBSERVER.get() is None


async def test_an_observer_takes_item_failures_so_the_run_goes_on():
    recorder = Recorder()
    report = await execute(Pipeline(range(6)).map(fail_on_3)._graph, observer=recorder)
    assert recorder.failures == [3]
    assert report.stages[-1].items_out == 5


# The first failure stops every branch -------------------------------------------------


async def test_a_failure_in_one_branch_cancels_an_unrelated_branch_and_is_raised_as_itself():
    started = asyncio.Event()
    cleaned_up = asyncio.Event()

    async def wait_for_ever(x):
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.set()
        return x

    async def fail_once_started(x):
        await started.wait()
        return fail_on_3(x)

    waiting = Pipeline(range(10), name="idle").map(wait_for_ever, name="waiting")
    failing = Pipeline(range(10), name="busy").map(fail_once_started, name="failing")
    graph = Graph.of([waiting._outlet, failing._outlet])
    failing_label = next(node.label for node in graph.nodes if node.spec.name == "failing")

    with pytest.raises(ValueError, match="bad 3") as caught:
        await execute(graph)

    assert type(caught.value) is ValueError  # not a group
    assert cleaned_up.is_set()  # the other branch was cancelled and cleaned up
    notes = caught.value.__notes__
    assert any(failing_label in note for note in notes), notes
    assert not any("'waiting'" in note for note in notes), notes


async def test_a_run_that_failed_can_be_run_again_from_a_reiterable_source():
    graph = Pipeline(range(10)).map(fail_on_3)._graph
    for _ in range(2):
        with pytest.raises(ValueError, match="bad 3"):
            await execute(graph)
    assert (await execute(Pipeline(range(10)).map(square)._graph)).stages[-1].items_out == 10


# In a worker that imports the main module ---------------------------------------------


@pytest.fixture
def bootstrapping(monkeypatch):
    """Make this process look like a worker that is importing the main module."""
    monkeypatch.setattr(multiprocessing.current_process(), "_inheriting", True, raising=False)


async def test_a_run_started_while_a_worker_imports_the_main_module_is_refused(bootstrapping):
    calls = []
    rows = iter(range(3))
    tail = Channel(1)

    def note(x):
        calls.append(x)
        return x

    graph = Pipeline(rows).map(note)._graph
    with pytest.raises(RuntimeError) as caught:
        await execute(graph, tail)
    message = str(caught.value)
    assert "a pipeline was started while a worker process was importing the main module" in message
    assert "if __name__ == '__main__':" in message
    assert calls == []
    assert tail.closed  # its reader wakes all the same
    assert RUN_OBSERVER.get() is None


async def test_a_refused_run_leaves_a_one_shot_source_unclaimed(monkeypatch):
    rows = iter(range(3))
    graph = Pipeline(rows).map(square)._graph
    process = multiprocessing.current_process()
    monkeypatch.setattr(process, "_inheriting", True, raising=False)
    with pytest.raises(RuntimeError, match="worker process was importing"):
        await execute(graph)
    monkeypatch.setattr(process, "_inheriting", False)
    tail = Channel(4)
    reader = asyncio.create_task(read_all(tail))
    await execute(graph, tail)  # the iterator was not taken by the refused run
    assert await asyncio.wait_for(reader, 10) == [0, 1, 4]


async def test_a_process_not_importing_the_main_module_runs_normally():
    assert not getattr(multiprocessing.current_process(), "_inheriting", False)
    report = await execute(Pipeline(range(3)).map(square)._graph)
    assert report.stages[-1].items_out == 3
