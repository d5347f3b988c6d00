"""Latency percentiles: a bounded histogram, and what the report says of each stage."""

from __future__ import annotations

import asyncio
import random

import pytest

from pipework import Pipeline
from pipework._observe._latency import Histogram


def test_percentiles_are_within_a_bucket_of_the_truth():
    rng = random.Random(3)  # noqa: S311 - test data
    values = [rng.lognormvariate(-6, 1.5) for _ in range(20_000)]
    histogram = Histogram()
    for value in values:
        histogram.add(value)
    summary = histogram.summary()
    assert summary is not None
    ordered = sorted(values)
    for got, fraction in ((summary.p50, 0.5), (summary.p90, 0.9), (summary.p99, 0.99)):
        truth = ordered[int(fraction * len(values)) - 1]
        assert truth <= got <= truth * 1.13
    assert summary.max == max(values)
    assert summary.p50 <= summary.p90 <= summary.p99 <= summary.max


def test_weights_count_every_item_of_a_chunk():
    histogram = Histogram()
    histogram.add(0.001, 99)
    histogram.add(1.0, 1)
    summary = histogram.summary()
    assert summary is not None
    assert summary.p90 < 0.0013
    assert summary.p99 < 0.0013
    assert summary.max == 1.0
    assert Histogram().summary() is None


@pytest.mark.timeout(60)
async def test_the_report_gives_each_working_stage_its_latency():
    async def nap(x):
        await asyncio.sleep(0.05 if x == 0 else 0.001)
        return x

    report = await Pipeline(range(200)).map(nap, concurrency=8).map(abs).sink(abs).run()
    source, naps, inline, sink = report.stages
    assert source.latency is None
    assert naps.latency is not None
    assert 0.001 <= naps.latency.p50 <= naps.latency.p99 <= naps.latency.max
    # uvloop's timers round to the millisecond: a 50 ms sleep takes at least 40.
    assert naps.latency.max >= 0.04
    assert inline.latency is not None
    assert sink.latency is not None
