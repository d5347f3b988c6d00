"""Backpressure: an infinite source runs only as far ahead of a slow reader as the buffers allow.

Each test counts the items the source has yielded ("pulled") and the items the
reader or sink has taken ("consumed"). Everything in between sits in a place
with a bound that follows from the configuration:

- a channel holds at most its ``buffer=`` items (the source's included);
- an async stage holds at most ``2 * concurrency`` items in its window;
- a thread or process stage holds at most ``4 * workers`` chunks of
  ``chunksize`` items;
- a stage given ``max_in_flight=`` holds at most that many, chunks included;
- an inline stage holds at most the one batch it took last, no bigger than
  its own output's ``buffer=`` (nor than the channel it came from);
- a sink and a stream's reader each hold at most the one batch they took
  last, no bigger than the channel it came from.

So ``pulled <= consumed + bound`` must hold at every moment.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import pipework
from pipework import Pipeline

SOURCE_BUFFER = 4
MIDDLE_BUFFER = 4
LAST_BUFFER = 3
CONSUME = 500


def square(x):
    return x * x


async def async_square(x):
    await asyncio.sleep(0)
    return x * x


@dataclass
class Meter:
    """The source's and the consumer's counts, and the largest gap seen between them."""

    pulled: int = 0
    consumed: int = 0
    gaps: list[int] = field(default_factory=list)

    def numbers(self):
        """An infinite source that counts what it yields."""
        while True:
            self.pulled += 1
            yield self.pulled

    def check(self, bound):
        gap = self.pulled - self.consumed
        self.gaps.append(gap)
        assert gap <= bound, f"source ran {gap} items ahead of the consumer; bound {bound}"


# name -> (stage options, items the stage may hold in flight)
MIDDLE = {
    "async": ({"fn": async_square, "concurrency": 3}, 2 * 3),
    "thread": ({"fn": square, "on": "thread", "workers": 2, "chunksize": 2}, 4 * 2 * 2),
    "process": ({"fn": square, "on": "process", "workers": 2, "chunksize": 2}, 4 * 2 * 2),
    # Adaptive chunks, which for cheap items grow to thousands: max_in_flight
    # is then the whole of what the stage may hold, chunks included.
    "thread, max_in_flight": ({"fn": square, "on": "thread", "max_in_flight": 10}, 10),
    "process, max_in_flight": ({"fn": square, "on": "process", "max_in_flight": 10}, 10),
    "async, max_in_flight": ({"fn": async_square, "concurrency": 8, "max_in_flight": 5}, 5),
}


def middle_stage(pipeline, kind, buffer):
    options, in_flight = MIDDLE[kind]
    options = dict(options)
    fn = options.pop("fn")
    return pipeline.map(fn, buffer=buffer, **options), in_flight


async def pause(meter):
    # Mostly short waits, and now and then a long one, during which every
    # buffer upstream has time to fill up: the moment the bound is tested.
    await asyncio.sleep(0.03 if meter.consumed % 100 == 0 else 0.0005)


@pytest.mark.parametrize("kind", list(MIDDLE))
async def test_a_slow_reader_holds_back_an_infinite_source(kind):
    meter = Meter()
    pipeline = Pipeline(meter.numbers(), buffer=SOURCE_BUFFER)
    pipeline, in_flight = middle_stage(pipeline, kind, MIDDLE_BUFFER)
    pipeline = pipeline.map(abs, buffer=LAST_BUFFER)  # an inline stage
    bound = (
        SOURCE_BUFFER
        + in_flight
        + MIDDLE_BUFFER  # the middle stage's channel
        + MIDDLE_BUFFER  # the batch the inline stage took from it
        + LAST_BUFFER  # the inline stage's channel
        + LAST_BUFFER  # the batch the reader took from it
    )
    async with pipeline.stream() as outputs:
        async for out in outputs:
            meter.consumed += 1
            assert out == meter.consumed**2
            meter.check(bound)
            if meter.consumed == CONSUME:
                break
            await pause(meter)
    # The checks mean something only if the source did run ahead when it could.
    assert max(meter.gaps) >= SOURCE_BUFFER + LAST_BUFFER


@pytest.mark.parametrize("kind", ["thread", "process", "async"])
async def test_a_fan_out_and_zip_hold_back_an_infinite_source(kind):
    """Each branch has its own channels; the bound is the sum of every place on every path."""
    meter = Meter()
    source = Pipeline(meter.numbers(), buffer=SOURCE_BUFFER)
    worked, in_flight = middle_stage(source, kind, MIDDLE_BUFFER)
    inline = source.map(abs, buffer=MIDDLE_BUFFER)
    zipped = pipework.zip(worked, inline, buffer=LAST_BUFFER)
    bound = (
        2 * SOURCE_BUFFER  # the source's channel to each branch
        + in_flight
        + MIDDLE_BUFFER  # the worked branch's channel
        + MIDDLE_BUFFER  # the batch the inline stage took
        + MIDDLE_BUFFER  # the inline branch's channel
        + 2 * MIDDLE_BUFFER  # the zip's lanes: at most its input channels' worth each
        + LAST_BUFFER  # the zip's channel
        + LAST_BUFFER  # the batch the reader took from it
    )
    async with zipped.stream() as outputs:
        async for squared, plain in outputs:
            meter.consumed += 1
            assert (squared, plain) == (meter.consumed**2, meter.consumed)
            meter.check(bound)
            if meter.consumed == CONSUME:
                break
            await pause(meter)
    assert max(meter.gaps) >= SOURCE_BUFFER + LAST_BUFFER


class EnoughError(Exception):
    """Raised by a sink to end a run over an infinite source."""


@pytest.mark.parametrize("kind", list(MIDDLE))
async def test_a_slow_sink_slows_the_source(kind):
    meter = Meter()
    pipeline = Pipeline(meter.numbers(), buffer=SOURCE_BUFFER)
    pipeline, in_flight = middle_stage(pipeline, kind, MIDDLE_BUFFER)
    bound = SOURCE_BUFFER + in_flight + MIDDLE_BUFFER + MIDDLE_BUFFER  # last: the sink's batch
    pulled_while_asleep = []

    async def slow_sink(out):
        meter.consumed += 1
        assert out == meter.consumed**2
        meter.check(bound)
        if meter.consumed == 50:
            # A long sleep: the source must stop once the buffers are full,
            # and stay stopped, however long the sink takes.
            before = meter.pulled
            await asyncio.sleep(0.2)
            pulled_while_asleep.append(meter.pulled - before)
            meter.check(bound)
        if meter.consumed == CONSUME // 2:
            raise EnoughError
        await pause(meter)

    with pytest.raises(EnoughError):
        await pipeline.sink(slow_sink).run()
    assert meter.consumed == CONSUME // 2
    # While the sink slept, the source moved at most by the room the sink
    # had made before it fell asleep, never by the length of the sleep.
    assert pulled_while_asleep[0] <= bound
    assert meter.pulled <= meter.consumed + bound


async def test_buffers_of_one_still_bound_the_source():
    meter = Meter()
    pipeline = (
        Pipeline(meter.numbers(), buffer=1)
        .map(async_square, concurrency=1, buffer=1)
        .map(abs, buffer=1)
    )
    bound = 1 + 2 * 1 + 1 + 1 + 1 + 1
    async with pipeline.stream() as outputs:
        async for _ in outputs:
            meter.consumed += 1
            meter.check(bound)
            if meter.consumed == 200:
                break
            await pause(meter)
    assert max(meter.gaps) >= 2


ROOT = Path(__file__).resolve().parent.parent


def peak_memory(monkeypatch, items, kind):
    """Peak RSS in bytes of a fresh run's whole process tree, measured as benchmark (i) does."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.probe import run_probe

    # glibc's default moves its mmap threshold up once large blocks are
    # freed, and then keeps freed megabytes in its heap: RSS that grows with
    # the allocator's history, not with what pipework holds. A fixed
    # threshold measures what is held.
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    variant = "pipework_thread" if kind == "thread" else "pipework"
    found = run_probe(
        "benchmarks.workloads.large_items:peak_tree",
        {"variant": variant, "n": items},
        timeout=120,
    )
    assert isinstance(found, dict), found  # NotAvailable says why
    return found["peak"] * 1e6


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["inline", "thread"])
def test_memory_stays_flat_with_large_cheap_items(monkeypatch, kind):
    # Before: chunks were sized by time alone, so 1 MB items whose length
    # is taken made chunks of hundreds of items; parent and workers peaked at
    # 430 MB for 100 items and 2 GB for 400. Chunks are now held to a few
    # megabytes (CHUNK_BYTES), so the peak does not grow with the stream.
    # A stage fills its windows within the first ~200 items (a thread stage
    # holds up to 24 chunks of 4 such items); after that nothing may grow.
    few, many, more = (peak_memory(monkeypatch, n, kind) for n in (100, 400, 800))
    assert many - few < 50 * 2**20, (few, many)  # the "a few tens of MB"
    assert more - many < 20 * 2**20, (many, more)
