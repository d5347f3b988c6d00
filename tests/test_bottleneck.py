"""The bottleneck, named: on figures made up to the point, and on real runs built to have one.

Each real pipeline is slow in one place by construction (a process stage,
an async stage, the source, the sink, the reader of a stream), and the
report, or a snapshot, must name that place. The work is sleeps, so a busy
machine stretches every stage alike and the verdict holds.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from pipework import Bottleneck, Pipeline, StageReport
from pipework._observe._bottleneck import find_bottleneck

pytestmark = pytest.mark.timeout(60)


def figures(name, kind, *, busy, capacity=1, inp=None, out=None):
    return StageReport(
        name=name,
        kind=kind,
        items_in=10,
        items_out=10,
        items_failed=0,
        busy_seconds=0.0,
        queue_capacity=0,
        queue_peak=0,
        utilisation=busy,
        capacity=capacity,
        input_fill_mean=inp,
        output_fill_mean=out,
    )


# On figures ----------------------------------------------------------------------


def test_the_busy_stage_with_room_after_it_is_named_not_the_blocked_or_starved_ones():
    found = find_bottleneck(
        [
            figures("read", "source", busy=0.02, out=0.95),  # blocked on a full output
            figures("parse", "process map", busy=0.97, capacity=4, inp=0.9, out=0.05),
            figures("save", "sink", busy=0.1, inp=0.05),  # starved
        ]
    )
    assert found is not None
    assert found.stage == "#1 'parse' (process map)"
    assert "busy 97% across its 4 workers" in found.evidence
    assert "input 90% full" in found.evidence
    assert "workers=" in found.advice
    assert found.score == pytest.approx(0.97 * 0.95, abs=1e-3)
    assert str(found).startswith("bottleneck: #1 'parse' (process map): busy 97%")


def test_of_two_busy_stages_the_one_whose_output_has_room_is_named():
    found = find_bottleneck(
        [
            figures("source", "source", busy=0.0, out=1.0),
            figures("a", "thread map", busy=0.9, capacity=2, inp=1.0, out=0.9),  # held back
            figures("b", "thread map", busy=0.95, capacity=2, inp=0.9, out=0.0),
        ]
    )
    assert found is not None
    assert found.stage == "#2 'b' (thread map)"


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("async map", "concurrency="),
        ("inline map", 'on="thread"'),
        ("process map_batches", "max_size="),
        ("dask map", "more workers on the cluster"),
        ("executor map", "a larger executor"),
        ("sink", ".batch(n) before the sink"),
    ],
)
def test_the_advice_fits_where_the_stage_runs(kind, says):
    found = find_bottleneck(
        [figures("source", "source", busy=0.0, out=1.0), figures("s", kind, busy=1.0, inp=1.0)]
    )
    assert found is not None
    assert says in found.advice


@pytest.mark.parametrize(
    ("kind", "capacity", "says"),
    [
        ("async map", 8, "busy 90% of its concurrency of 8"),
        ("thread map", 4, "busy 90% across its 4 workers"),
        ("inline map", 1, "busy 90% of the run, on the event loop"),
        ("sink", 1, "busy 90% of the run"),
    ],
)
def test_the_evidence_says_busy_in_the_stages_own_terms(kind, capacity, says):
    found = find_bottleneck([figures("s", kind, busy=0.9, capacity=capacity)])
    assert found is not None
    assert found.evidence.startswith(says)


def test_a_source_that_waits_on_its_iterator_is_named_as_the_limit():
    found = find_bottleneck(
        [figures("feed", "source", busy=0.9, out=0.0), figures("f", "thread map", busy=0.1)]
    )
    assert found is not None
    assert found.stage == "#0 'feed' (source)"
    assert "waiting on its iterator" in found.evidence
    assert "more speed must come from the source" in found.advice


def test_nothing_is_named_when_no_stage_is_busy_near_its_capacity():
    stages = [
        figures("source", "source", busy=0.1, out=0.1),
        figures("f", "process map", busy=0.5, capacity=2, inp=0.1, out=0.1),
        figures("zip", "zip", busy=None, capacity=None),
    ]
    assert find_bottleneck(stages) is None
    assert find_bottleneck([]) is None


def test_a_full_last_output_with_no_busy_stage_names_the_reader_of_the_stream():
    found = find_bottleneck(
        [
            figures("source", "source", busy=0.0, out=1.0),
            figures("f", "inline map", busy=0.1, out=0.9),
        ]
    )
    assert found is not None
    assert found.stage == "the reader of the stream"


# On real runs ----------------------------------------------------------------------


def sleepy(x):
    time.sleep(0.1)
    return x


async def waits(x):
    await asyncio.sleep(0.02)
    return x


async def slowly(n):
    for i in range(n):
        await asyncio.sleep(0.01)
        yield i


async def slow_write(x):
    await asyncio.sleep(0.01)


async def test_a_slow_process_stage_is_named():
    # 3 s of work on 2 workers, against their start-up of a fraction of that.
    report = await Pipeline(range(60)).map(sleepy, on="process", workers=2).map(str).run()
    assert report.bottleneck is not None
    assert report.bottleneck.stage == "#1 'sleepy' (process map)"
    assert str(report).splitlines()[-1] == str(report.bottleneck)


async def test_a_slow_async_stage_is_named():
    report = await Pipeline(range(60)).map(waits, concurrency=2).map(str).run()
    assert report.bottleneck is not None
    assert report.bottleneck.stage == "#1 'waits' (async map)"
    assert "concurrency of 2" in report.bottleneck.evidence


async def test_a_slow_source_is_named():
    report = await Pipeline(slowly(50)).map(str, on="thread").run()
    assert report.bottleneck is not None
    assert report.bottleneck.stage == "#0 'source' (source)"


async def test_a_slow_sink_is_named():
    report = await Pipeline(range(50)).map(str).sink(slow_write).run()
    assert report.bottleneck is not None
    assert report.bottleneck.stage == "#2 'slow_write' (sink)"


async def test_a_slow_reader_of_a_stream_is_named_in_its_snapshot():
    async with Pipeline(range(50)).map(str).stream() as outputs:
        async for _ in outputs:
            await asyncio.sleep(0.01)
    found = outputs.snapshot().bottleneck
    assert isinstance(found, Bottleneck)
    assert found.stage == "the reader of the stream"


async def test_the_live_display_names_the_bottleneck_at_the_end():
    seen = []
    report = await Pipeline(range(40)).map(waits, concurrency=2).run(progress=seen.append)
    assert seen[-1].done
    assert seen[-1].bottleneck is not None
    assert seen[-1].bottleneck.stage == "#1 'waits' (async map)"
    assert seen[-1].bottleneck == report.bottleneck  # the display and the report agree
