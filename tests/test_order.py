"""Output order: input order by default, whatever finishes first with ordered=False."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from functools import partial
from pathlib import Path

import anyio
import pytest

from pipework import Pipeline

N = 40
GATE = 5  # in a different chunk from item 0, and in flight with it
HOLD = 0.2  # how much longer item 0 takes once item GATE is done


def delay(x):
    """A delay of up to 10 ms that varies from item to item, the same in every process."""
    return (x * 7919 % 11) / 1000


def hold(gate_dir, x):
    """Take a short, varying time; item 0 takes until item GATE is done, and then some.

    Waiting for another item, rather than sleeping a fixed time, keeps item 0
    last even when a worker is slow to start.
    """
    gate = Path(gate_dir, "gate")
    if x == 0:
        deadline = time.monotonic() + 10
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(HOLD)
        return
    time.sleep(delay(x))
    if x == GATE:
        gate.touch()


_async_gates: dict[str, asyncio.Event] = {}


async def async_hold(gate_dir, x):
    """`hold` for async stages, with an event in place of the file."""
    gate = _async_gates.setdefault(gate_dir, asyncio.Event())
    if x == 0:
        with anyio.fail_after(10):
            await gate.wait()
        await asyncio.sleep(HOLD)
        return
    await asyncio.sleep(delay(x))
    if x == GATE:
        gate.set()


def hold_then_tag(gate_dir, x):
    hold(gate_dir, x)
    return ("done", x)


async def async_hold_then_tag(gate_dir, x):
    await async_hold(gate_dir, x)
    return ("done", x)


def hold_then_pair(gate_dir, x):
    hold(gate_dir, x)
    return [x, -x - 1]


async def async_hold_then_pair(gate_dir, x):
    await async_hold(gate_dir, x)
    return [x, -x - 1]


STAGES = {
    "async": (async_hold_then_tag, {"concurrency": 8}),
    "thread": (hold_then_tag, {"on": "thread", "workers": 3}),
    "process": (hold_then_tag, {"on": "process", "workers": 2}),
    "process-chunks": (hold_then_tag, {"on": "process", "workers": 2, "chunksize": 3}),
}


async def outputs(gate_dir, kind, **options):
    fn, config = STAGES[kind]
    stage = partial(fn, str(gate_dir))
    return [x async for x in Pipeline(range(N), buffer=4).map(stage, buffer=4, **config, **options)]


@pytest.mark.parametrize("kind", list(STAGES))
async def test_output_keeps_input_order_by_default(tmp_path, kind):
    assert await outputs(tmp_path, kind) == [("done", x) for x in range(N)]


@pytest.mark.parametrize("kind", list(STAGES))
async def test_unordered_output_has_every_item_once_and_lets_the_slow_one_fall_behind(
    tmp_path, kind
):
    out = await outputs(tmp_path, kind, ordered=False)
    assert Counter(out) == Counter(("done", x) for x in range(N))
    assert out[0] != ("done", 0), "the slow first item should not come out first"


@pytest.mark.parametrize(
    ("fn", "options"),
    [
        (async_hold_then_pair, {"concurrency": 8}),
        (hold_then_pair, {"on": "thread", "workers": 3}),
        (hold_then_pair, {"on": "process", "workers": 2}),
    ],
    ids=["async", "thread", "process"],
)
async def test_flat_map_order(tmp_path, fn, options):
    pipeline = Pipeline(range(N), buffer=4)
    expected = [y for x in range(N) for y in (x, -x - 1)]
    first, second = tmp_path / "ordered", tmp_path / "unordered"
    first.mkdir()
    second.mkdir()
    ordered = [x async for x in pipeline.flat_map(partial(fn, str(first)), **options)]
    assert ordered == expected
    unordered = [
        x async for x in pipeline.flat_map(partial(fn, str(second)), ordered=False, **options)
    ]
    assert Counter(unordered) == Counter(expected)
    assert unordered[:2] != [0, -1]
    # The outputs of one item stay together, in the order the function gave them.
    position = {y: i for i, y in enumerate(unordered)}
    assert all(position[-x - 1] == position[x] + 1 for x in range(N))


async def test_order_holds_across_a_chain_of_mixed_stages(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    pipeline = (
        Pipeline(range(N), buffer=2)
        .map(partial(async_hold_then_tag, str(first)), concurrency=8, buffer=3)
        .map(lambda pair: pair[1], buffer=1)
        .map(partial(hold_then_tag, str(second)), on="thread", workers=3, buffer=2)
    )
    assert [x async for x in pipeline] == [("done", x) for x in range(N)]
