"""Report: per-stage counters of a run, looked up by name and shown as a table."""

from __future__ import annotations

import math

import pytest

import pipework
from pipework import Pipeline, Report, StageReport
from pipework._channel import AUTO_ITEMS


def stage(
    name, kind="inline map", *, n_in=10, n_out=10, failed=0, capacity=128, peak=3, busy=0.125
):
    return StageReport(
        name=name,
        kind=kind,
        items_in=n_in,
        items_out=n_out,
        items_failed=failed,
        busy_seconds=0.25,
        queue_capacity=capacity,
        queue_peak=peak,
        utilisation=busy,
        capacity=None if busy is None else 1,
    )


@pytest.fixture
def report():
    return Report(
        (
            stage("source", "source", n_in=40, n_out=40),
            stage("parse", "process map", n_in=40, n_out=38, failed=2, capacity=16, peak=16),
            stage("parse", "inline filter", n_in=38, n_out=12, busy=None),
            stage("save", "sink", n_in=12, n_out=12, capacity=0, peak=0),
        ),
        wall_seconds=2.0,
    )


def test_lookup_by_name_returns_the_first_stage_of_that_name(report):
    assert report["parse"] is report.stages[1]
    assert report["save"].kind == "sink"


def test_lookup_of_unknown_name_raises_key_error(report):
    with pytest.raises(KeyError, match="nope"):
        report["nope"]


def test_items_per_second_is_source_output_over_wall_time(report):
    assert report.items_per_second == 20.0


@pytest.mark.parametrize(
    "empty",
    [Report((), wall_seconds=1.0), Report((stage("source"),), wall_seconds=0.0)],
    ids=["no stages", "no time"],
)
def test_items_per_second_without_stages_or_time_is_zero(empty):
    assert empty.items_per_second == 0.0


def test_str_renders_a_table_with_every_stage(report):
    text = str(report)
    lines = text.splitlines()
    assert [line.split() for line in lines[:5]] == [
        # busy is utilisation: the share of its workers or slots in use.
        ["stage", "kind", "in", "out", "failed", "retried", "busy", "queue", "peak"],
        ["#0", "source", "source", "40", "40", "0", "0", "12%", "3/128"],
        ["#1", "parse", "process", "map", "40", "38", "2", "0", "12%", "16/16"],
        ["#2", "parse", "inline", "filter", "38", "12", "0", "0", "-", "3/128"],
        ["#3", "save", "sink", "12", "12", "0", "0", "12%", "-"],
    ]
    assert lines[5] == "wall 2.000 s, 20 items/s"
    assert len(lines) == 6
    # Fixed width: each column starts at the same offset on every row.
    kind_column = lines[0].index("kind")
    assert all(line[kind_column - 2 : kind_column] == "  " for line in lines[1:5])


def test_report_is_frozen(report):
    with pytest.raises(AttributeError):
        report.wall_seconds = 1.0
    with pytest.raises(AttributeError):
        report.stages[0].items_in = 1


def double(x):
    return 2 * x


async def test_real_run_counts_are_consistent():
    n, size = 50, 4
    saved = []
    report = await (
        Pipeline(range(n), buffer=8)
        .map(double, on="thread", workers=2)
        .filter(lambda x: x % 3 == 0)
        .batch(size)
        .sink(saved.append)
        .run()
    )
    kept = sum(1 for i in range(n) if (2 * i) % 3 == 0)
    names = [s.name for s in report.stages]
    assert names == ["source", "double", "<lambda>", "batch", "append"]
    source, mapped, filtered, batched, sink = report.stages
    assert (source.items_in, source.items_out) == (n, n)
    assert (mapped.items_in, mapped.items_out) == (n, n)
    assert (filtered.items_in, filtered.items_out) == (n, kept)
    assert filtered.items_out < filtered.items_in
    assert batched.items_in == kept
    assert batched.items_out == math.ceil(kept / size)
    assert (sink.items_in, sink.items_out) == (batched.items_out, batched.items_out)
    # What one stage puts out is what the next takes in.
    for upstream, downstream in zip(report.stages, report.stages[1:], strict=False):
        assert upstream.items_out == downstream.items_in
    assert all(s.items_failed == 0 for s in report.stages)
    # An exact buffer is its own bound; the others are what fit when they were fullest.
    assert report.stages[0].queue_capacity == 8
    assert sink.queue_capacity == 0
    assert all(0 < s.queue_peak <= s.queue_capacity <= AUTO_ITEMS for s in report.stages[:-1])
    assert report.wall_seconds > 0
    assert [x for group in saved for x in group] == [2 * i for i in range(n) if (2 * i) % 3 == 0]
    table = [line for line in str(report).splitlines() if not line.startswith("bottleneck:")]
    assert len(table) == len(report.stages) + 2  # the header and the wall time


async def test_the_table_shows_what_a_zip_left_out():
    base = Pipeline(range(10))
    report = await pipework.zip(base, base.filter(lambda x: x % 2)).run()
    header, *rows = str(report).splitlines()
    assert header.split()[-1] == "unmatched"
    assert rows[-2].split()[-1] == "5"  # the zip's row, before the wall time


async def test_a_channel_of_large_items_reports_the_few_it_held_room_for():
    report = await Pipeline(range(6)).map(lambda _: bytes(400_000)).map(len).run()
    made = report.stages[1]
    assert made.queue_peak <= made.queue_capacity <= 2  # 1 MiB holds two of them
    assert "/4096" not in str(report)
    assert report.stages[-1].queue_capacity == 0  # its output is read by no one
