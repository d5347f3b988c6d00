"""Live snapshots: counts that add up at every moment, busy as a share of capacity, channel fill.

Stages here are real (async calls, worker processes). A test that needs a
stage to be full holds its calls behind an `asyncio.Event`, and waits for
the state it wants by looking at snapshots between loop turns, never by
sleeping for a guessed time.
"""

from __future__ import annotations

import asyncio

import pytest

import pipework
from pipework import Pipeline, ServiceClosedError, Snapshot

pytestmark = pytest.mark.timeout(60)


def double(x: int) -> int:
    return 2 * x


def _consistent(snap: Snapshot) -> None:
    """A chain's counts: no stage gives out more than it took, nor takes more than it was given."""
    for before, stage in zip(snap.stages, snap.stages[1:], strict=False):
        assert stage.items_in <= before.items_out
        assert stage.items_out + stage.items_failed <= stage.items_in
    for stage in snap.stages:
        for fill in (stage.input_fill, stage.input_fill_mean, stage.output_fill_mean):
            assert fill is None or 0.0 <= fill <= 1.0
        assert stage.utilisation is None or 0.0 <= stage.utilisation <= 1.0


async def until(condition, stream) -> Snapshot:
    """Let the run go on, a loop turn at a time, until a snapshot meets ``condition``."""
    while not condition(snap := stream.snapshot()):
        await asyncio.sleep(0)
    return snap


async def test_a_stream_adds_up_at_every_read_and_ends_as_its_report():
    pipeline = Pipeline(range(500), buffer=16).map(double, on="process", workers=2).map(str)
    async with pipeline.stream() as outputs:
        before = outputs.snapshot()
        async for _ in outputs:
            _consistent(outputs.snapshot())
    assert not before.done
    assert [s.items_in for s in before.stages] == [0, 0, 0]
    last = outputs.snapshot()
    report = outputs.report
    assert report is not None
    assert last.done
    assert last.elapsed == report.wall_seconds
    for stage, reported in zip(last.stages, report.stages, strict=True):
        assert (stage.items_in, stage.items_out) == (reported.items_in, reported.items_out)
        assert stage.utilisation == reported.utilisation
    assert [s.items_out for s in last.stages] == [500, 500, 500]
    assert last["double"].capacity == 2  # its workers
    assert last["double"].latency is not None
    assert last.eta_seconds == 0.0


async def test_a_source_with_a_length_gives_it_and_a_generator_does_not():
    async with Pipeline(range(40)).map(double).stream() as outputs:
        assert outputs.snapshot().stages[0].length == 40
        async for _ in outputs:
            pass
    assert outputs.snapshot().stages[0].remaining == 0

    async with Pipeline(x for x in range(3)).stream() as outputs:
        async for _ in outputs:
            snap = outputs.snapshot()
            assert snap.stages[0].length is None
            assert snap.eta_seconds is None


async def test_a_held_async_stage_shows_a_full_input_and_a_blocked_source():
    release = asyncio.Event()

    async def held(x: int) -> int:
        await release.wait()
        return x

    pipeline = Pipeline(range(200), buffer=8).map(held, concurrency=4, buffer=8)
    async with pipeline.stream() as outputs:
        snap = await until(lambda s: s["held"].input_fill == 1.0, outputs)
        assert snap["held"].items_out == 0
        assert snap["held"].capacity == 4
        assert snap.stages[0].items_out <= 200
        release.set()
        async for _ in outputs:
            pass
    report = outputs.report
    assert report is not None
    source, stage = report.stages
    assert source.blocked_seconds > 0  # it waited for room while the stage was held
    assert source.input_fill_mean is None
    assert stage.input_fill_mean is not None
    assert stage.input_fill_mean > 0
    # An async stage's busy time is a share of its concurrency, not summed seconds.
    assert stage.capacity == 4
    assert stage.utilisation == pytest.approx(
        min(1.0, stage.busy_seconds / (report.wall_seconds * 4))
    )


async def test_a_graph_counts_every_branch():
    base = Pipeline(range(100)).map(double)
    async with pipework.zip(base.map(str), base.filter(lambda x: x % 4 == 0)).stream() as outputs:
        async for _ in outputs:
            snap = outputs.snapshot()
            assert snap["<lambda>"].items_out <= snap["<lambda>"].items_in
    snap = outputs.snapshot()
    assert snap.stages[-1].kind == "zip"
    assert snap.stages[-1].items_out == 50
    assert snap.stages[-1].capacity is None  # no work of its own
    assert snap.stages[-1].utilisation is None


async def test_failures_and_retries_show_as_they_happen():
    tries: dict[int, int] = {}

    def flaky(x: int) -> int:
        tries[x] = tries.get(x, 0) + 1
        if x % 10 == 0 and tries[x] == 1:
            raise ValueError(x)
        if x == 7:
            raise KeyError(x)
        return x

    pipeline = Pipeline(range(30)).map(
        flaky, retry=pipework.Retry(attempts=2, base_delay=0, on=ValueError), errors="skip"
    )
    async with pipeline.stream() as outputs:
        async for _ in outputs:
            _consistent(outputs.snapshot())
    stage = outputs.snapshot()["flaky"]
    assert (stage.items_in, stage.items_out, stage.items_failed) == (30, 29, 1)
    assert stage.items_retried == 3


async def test_a_service_is_seen_while_it_serves():
    service = Pipeline.service(int).map(double, on="process", workers=1).open()
    with pytest.raises(ServiceClosedError):
        service.snapshot()
    async with service:
        results = await asyncio.gather(*(service.submit(i) for i in range(20)))
        snap = service.snapshot()
        assert not snap.done
        assert snap["double"].items_out == 20
        assert snap["double"].capacity == 1
        assert snap.stages[0].length is None
    assert results == [2 * i for i in range(20)]
    assert service.snapshot().done


async def test_recent_rate_is_measured_between_snapshots():
    async with Pipeline(range(1000)).map(double).stream() as outputs:
        async for _ in outputs:
            snap = outputs.snapshot()
            assert snap.stages[-1].recent_rate >= 0.0
    snap = outputs.snapshot()
    assert snap.stages[-1].rate == pytest.approx(1000 / snap.elapsed)


def test_a_channel_integrates_its_fill_over_time():
    from pipework._channel import Channel
    from pipework._packet import Packet

    channel: Channel[int] = Channel(4)
    assert channel.fill() == 0.0
    channel.put_nowait(Packet(range(2), [0, 1]))
    assert channel.fill() == 0.5
    # Half full from the put on: the integral grows at half the clock's pace.
    since = channel._since
    assert channel.fill_seconds(since + 2.0) == pytest.approx(channel._filled + 1.0)
    channel.take_nowait()
    assert channel.fill() == 0.0
