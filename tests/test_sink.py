"""The sink stage, run on its own input channel: each item consumed in order, failures named."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from pipework._channel import Channel
from pipework._errors import ItemCancelledError
from pipework._model._specs import sink_spec
from pipework._observe._report import StageStats
from pipework._packet import Packet
from pipework._stages._sink import run_sink

LABEL = "#2 'save' (sink)"


def filled(*packets):
    inp = Channel(100)
    for packet in packets:
        inp.put_nowait(packet)
    inp.close()
    return inp


def letters(text, start=0):
    return Packet(range(start, start + len(text)), list(text))


async def test_a_sync_sink_sees_every_item_in_order_across_packets():
    seen, stats = [], StageStats()
    inp = filled(letters("ab"), letters("cde", 2), Packet([9], ["z"]))
    await run_sink(sink_spec(seen.append, name="save"), LABEL, inp, stats)
    assert seen == list("abcdez")
    assert (stats.items_in, stats.items_out, stats.failed) == (6, 6, 0)
    assert stats.latency.summary() is not None


async def test_an_async_sink_is_awaited_before_the_next_item():
    gates = {i: asyncio.Event() for i in range(3)}
    started, done = [], []

    async def save(x):
        started.append(x)
        await gates[x].wait()
        done.append(x)

    inp = Channel(10)
    inp.put_nowait(Packet(range(3), [0, 1, 2]))
    inp.close()
    task = asyncio.create_task(run_sink(sink_spec(save, name="save"), LABEL, inp, StageStats()))
    for i in range(3):
        for _ in range(5):
            await asyncio.sleep(0)
        assert started == list(range(i + 1))  # not the next one while this one waits
        gates[i].set()
    with anyio.fail_after(10):
        await task
    assert done == [0, 1, 2]


@pytest.mark.parametrize("is_async", [False, True])
async def test_a_sink_that_raises_names_its_stage_and_item(is_async):
    seen, stats = [], StageStats()

    def check(x):
        if x == "d":
            raise ValueError("no d")
        seen.append(x)

    async def check_async(x):
        check(x)

    fn = check_async if is_async else check
    inp = filled(letters("abc"), letters("def", 3))
    with pytest.raises(ValueError, match="no d") as caught:
        await run_sink(sink_spec(fn, name="save"), LABEL, inp, stats)
    assert f"pipework: in stage {LABEL}, on item 3: 'd'" in caught.value.__notes__
    assert seen == ["a", "b", "c"]
    assert (stats.items_in, stats.items_out, stats.failed) == (6, 3, 1)


async def test_a_sync_sink_that_returns_a_coroutine_is_refused_and_the_coroutine_closed():
    made = []

    async def later(x):
        return x

    def save(x):
        made.append(later(x))
        return made[-1]

    with pytest.raises(TypeError, match=r"sink #2 'save' \(sink\) returned a coroutine") as caught:
        await run_sink(sink_spec(save, name="save"), LABEL, filled(letters("ab")), StageStats())
    assert len(made) == 1  # it stopped at the first
    assert made[0].cr_frame is None  # closed: no "never awaited" warning
    assert f"pipework: in stage {LABEL}, on item 0: 'a'" in caught.value.__notes__


async def test_a_cancelled_error_from_the_sink_itself_fails_its_item():
    async def save(x):
        if x == "b":
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    stats, message = StageStats(), r"the sink raised asyncio\.CancelledError"
    with pytest.raises(ItemCancelledError, match=message) as caught:
        await run_sink(sink_spec(save, name="save"), LABEL, filled(letters("abc")), stats)
    assert f"pipework: in stage {LABEL}, on item 1: 'b'" in caught.value.__notes__
    assert stats.failed == 1


async def test_cancelling_the_run_cancels_the_sink_as_itself():
    entered = asyncio.Event()

    async def save(x):
        entered.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(
        run_sink(sink_spec(save, name="save"), LABEL, filled(letters("a")), StageStats())
    )
    with anyio.fail_after(10):
        await entered.wait()
        task.cancel()
        await asyncio.wait([task])
    assert task.cancelled()  # the run's cancellation, not an item's failure
