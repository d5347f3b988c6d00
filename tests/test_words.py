"""A snapshot in words: the headline, a line per stage, rates, durations, the bottleneck."""

from __future__ import annotations

import dataclasses

import pytest

from pipework import Snapshot, StageSnapshot
from pipework._observe._words import cells, duration, headline, plain_lines, rate


def stage(name="source", kind="source", **figures):
    made = StageSnapshot(
        name=name,
        kind=kind,
        items_in=50,
        items_out=50,
        items_failed=0,
        items_retried=0,
        busy_seconds=0.0,
        blocked_seconds=0.0,
        capacity=1,
        utilisation=0.0,
        rate=10.0,
        recent_rate=10.0,
        input_fill=None,
        input_fill_mean=None,
        output_fill_mean=0.5,
        latency=None,
    )
    return dataclasses.replace(made, **figures)


def test_plain_lines_say_the_eta_when_the_source_has_a_length():
    lines = plain_lines(Snapshot((stage(length=100),), elapsed=5.0, done=False))
    assert lines[0] == "pipework: 5.0 s, about 5.0 s to go"
    assert lines[1] == "  #0 source (source): 50/100 read, 10.0/s, eta 5.0 s"


def test_a_stage_says_its_counts_failures_input_and_busy_share():
    parse = stage(
        "parse", "process map", items_in=50, items_out=47, items_failed=3,
        input_fill=0.25, utilisation=0.9, capacity=2,
    )  # fmt: skip
    assert cells(parse, done=False) == [
        "in 50", "out 47", "failed 3", "10.0/s", "input 25% full", "90% busy",
    ]  # fmt: skip


def test_the_last_block_says_done_and_names_the_bottleneck():
    busy = stage("parse", "thread map", utilisation=0.95, capacity=2, output_fill_mean=0.0)
    lines = plain_lines(Snapshot((stage(utilisation=0.0, output_fill_mean=0.9), busy), 4.0, True))
    assert lines[0] == "pipework: done in 4.0 s"
    assert lines[-1].startswith("  bottleneck: #1 'parse' (thread map): busy 95%")


def test_while_it_runs_the_rate_is_the_recent_one_and_at_the_end_the_whole_runs():
    moving = stage(rate=10.0, recent_rate=40.0)
    assert "40.0/s" in cells(moving, done=False)
    assert "10.0/s" in cells(moving, done=True)
    assert headline(Snapshot((stage(),), 3.0, False)) == "pipework: 3.0 s"  # no length: no eta


@pytest.mark.parametrize(
    ("per_second", "said"), [(0.25, "0.25"), (12.5, "12.5"), (1234.4, "1,234")]
)
def test_rates_have_as_many_digits_as_help(per_second, said):
    assert rate(per_second) == said


@pytest.mark.parametrize(
    ("seconds", "said"), [(4.24, "4.2 s"), (185.0, "3m05s"), (7620.0, "2h07m")]
)
def test_durations_read_in_seconds_minutes_or_hours(seconds, said):
    assert duration(seconds) == said
