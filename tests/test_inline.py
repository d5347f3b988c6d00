"""Inline stages, run on their own channels: a plain function on the loop, a take at a time.

What is checked is how much the stage takes at once (no more than its output
holds, or its ``max_in_flight``), that it tells its input what its reader
wants, and that it shapes and settles each take as one packet.
"""

from __future__ import annotations

import asyncio

import pytest

from pipework._channel import AUTO_BYTES, FIRST_GUESS, Channel, Tee
from pipework._model._specs import label, map_spec
from pipework._observe._report import StageStats
from pipework._packet import Packet
from pipework._stages._inline import run_inline


def spec(fn, op="map", **options):
    settings = dict.fromkeys(("on", "workers", "concurrency", "setup", "buffer", "chunksize"))
    settings |= {"ordered": True, "name": None} | options
    return map_spec(op, fn, index=1, **settings)


def filled(n, capacity=None):
    inp = Channel(capacity or max(n, 1))
    inp.put_nowait(Packet(range(n), list(range(n))))
    inp.close()
    return inp


async def drain(channel):
    out = []
    while (got := await channel.take()) is not None:
        out.extend(zip(got.index, got.items, strict=True))
    return out


async def run(stage, inp, out, stats=None):
    """Run the stage with a reader on its output, and return what it put out."""
    reader = asyncio.create_task(drain(out))
    await run_inline(stage, label(1, stage), inp, out, stats or StageStats())
    out.close()
    return await reader


async def test_a_take_is_applied_whole_then_put_as_one_packet():
    inp, out = filled(6), Channel(10)
    inp_left = []
    stage = spec(lambda x: inp_left.append(len(inp)) or x * 10)
    await run_inline(stage, label(1, stage), inp, out, StageStats())
    assert inp_left == [0] * 6  # taken at once, before the first call
    got = out.take_nowait()
    assert (got.index, got.items) == (range(6), [0, 10, 20, 30, 40, 50])


@pytest.mark.parametrize(
    ("room", "limit", "seen"),
    [
        (3, None, [7, 7, 7, 4, 4, 4, 1, 1, 1, 0]),  # what the output holds
        (100, 4, [6, 6, 6, 6, 2, 2, 2, 2, 0, 0]),  # max_in_flight
    ],
    ids=["output", "max_in_flight"],
)
async def test_it_takes_no_more_than_its_output_holds_or_its_limit(room, limit, seen):
    inp = filled(10)
    inp_left = []
    stage = spec(lambda x: inp_left.append(len(inp)) or x, max_in_flight=limit)
    assert [i for i, _ in await run(stage, inp, Channel(room))] == list(range(10))
    assert inp_left == seen


async def test_before_it_knows_the_item_sizes_it_takes_a_first_guess():
    inp = filled(FIRST_GUESS * 3)
    inp_left = []
    stage = spec(lambda x: inp_left.append(len(inp)) or x)
    await run(stage, inp, Channel(4096, AUTO_BYTES))
    assert inp_left[0] == FIRST_GUESS * 2  # then the measured size sizes the rest


@pytest.mark.parametrize("wants", [[37], [5, 9]], ids=["channel", "tee"])
async def test_it_asks_its_input_for_what_its_reader_takes(wants):
    channels = [Channel(100) for _ in wants]
    for channel, n in zip(channels, wants, strict=True):
        channel.wants = n
    out = channels[0] if len(channels) == 1 else Tee(channels)
    inp = Channel(10)
    stage = spec(str)
    task = asyncio.create_task(run_inline(stage, label(1, stage), inp, out, StageStats()))
    await asyncio.sleep(0)
    assert inp.wants == max(wants)
    inp.close()
    await task


@pytest.mark.parametrize(
    ("op", "fn", "expected"),
    [
        ("filter", lambda x: x % 3 == 0, [(0, 0), (3, 3)]),
        ("flat_map", lambda x: [x] * (x % 3), [(1, 1), (2, 2), (2, 2), (4, 4)]),
    ],
)
async def test_filter_and_flat_map_keep_each_output_under_its_source_index(op, fn, expected):
    stats = StageStats()
    assert await run(spec(fn, op), filled(5), Channel(10), stats) == expected
    assert (stats.items_in, stats.items_out) == (5, len(expected))
    assert stats.latency.summary() is not None


async def test_setup_runs_once_and_its_state_comes_first():
    calls = []

    def setup():
        calls.append("setup")
        return 100

    stage = spec(lambda state, x: state + x, setup=setup)
    assert await run(stage, filled(3), Channel(1)) == [(0, 100), (1, 101), (2, 102)]
    assert calls == ["setup"]


async def test_a_failed_item_is_skipped_or_raised_naming_the_stage():
    def fn(x):
        if x == 2:
            raise ValueError("two")
        return x

    stats = StageStats()
    got = await run(spec(fn, errors="skip"), filled(4), Channel(10), stats)
    assert got == [(0, 0), (1, 1), (3, 3)]
    assert [f.index for f in stats.failures] == [2]
    with pytest.raises(ValueError, match="two") as caught:
        await run(spec(fn), filled(4), Channel(10))
    assert "pipework: in stage #1 'fn' (inline map), on item 2: 2" in caught.value.__notes__
