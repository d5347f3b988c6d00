"""Channel: an item-bounded queue that carries batches between stages."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from pipework._channel import (
    AUTO_BYTES,
    AUTO_FLOOR,
    AUTO_ITEMS,
    FIRST_GUESS,
    Channel,
    ChannelClosedError,
    Drain,
    Tee,
    WouldBlockError,
    take_until,
)
from pipework._packet import Packet


def batch(items, start=0):
    return Packet(range(start, start + len(items)), list(items))


def pairs(b):
    return list(zip(b.index, b.items, strict=True))


async def let_tasks_run():
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_below_one_is_refused(capacity):
    with pytest.raises(ValueError, match="at least one item"):
        Channel(capacity)


def test_capacity_is_counted_in_items_not_batches():
    ch = Channel(5)
    ch.put_nowait(batch("abc"))
    assert len(ch) == 3
    assert ch.room() == 2
    with pytest.raises(ValueError, match="does not fit"):
        ch.put_nowait(batch("xyz", 3))
    ch.put_nowait(batch("de", 3))
    assert len(ch) == 5
    assert ch.room() == 0


def test_empty_batch_is_not_queued():
    ch = Channel(2)
    ch.put_nowait(batch([]))
    assert len(ch) == 0
    with pytest.raises(WouldBlockError):
        ch.take_nowait()


async def test_put_larger_than_room_goes_in_parts_and_waits():
    ch = Channel(4)
    putter = asyncio.create_task(ch.put(batch(range(10))))
    await let_tasks_run()
    assert not putter.done()
    assert len(ch) == 4  # the part that fits went in at once

    received = []
    while (got := await ch.take()) is not None:
        assert len(ch) <= ch.capacity
        received += pairs(got)
        if putter.done() and not len(ch):
            ch.close()
    await putter
    assert received == [(i, i) for i in range(10)]
    assert ch.peak == 4


async def test_take_max_items_merges_and_splits_batches_keeping_indices():
    ch = Channel(10)
    ch.put_nowait(Packet([10, 20], ["a", "b"]))
    ch.put_nowait(Packet([30, 40, 50], ["c", "d", "e"]))
    ch.put_nowait(Packet([60], ["f"]))

    first = await ch.take(3)  # all of one batch and part of the next
    assert pairs(first) == [(10, "a"), (20, "b"), (30, "c")]
    assert len(ch) == 3
    second = await ch.take(1)  # from the middle of a batch
    assert pairs(second) == [(40, "d")]
    rest = await ch.take(100)  # more than there is: what is there, no wait
    assert pairs(rest) == [(50, "e"), (60, "f")]
    assert len(ch) == 0


async def test_take_without_max_returns_whole_batches():
    ch = Channel(10)
    one, two = batch("ab"), batch("cde", 2)
    ch.put_nowait(one)
    ch.put_nowait(two)
    assert await ch.take() is one
    assert await ch.take() is two


async def test_take_without_max_after_a_partial_take_returns_the_rest_of_the_packet():
    ch = Channel(10)
    ch.put_nowait(batch("abcd"))
    ch.put_nowait(batch("ef", 4))
    assert pairs(await ch.take(1)) == [(0, "a")]
    assert pairs(await ch.take()) == [(1, "b"), (2, "c"), (3, "d")]
    assert pairs(await ch.take()) == [(4, "e"), (5, "f")]


def test_take_nowait_when_open_and_empty_would_block():
    ch = Channel(3)
    with pytest.raises(WouldBlockError):
        ch.take_nowait()
    with pytest.raises(WouldBlockError):
        ch.take_nowait(2)


def test_take_nowait_after_close_drains_then_returns_none():
    ch = Channel(3)
    ch.put_nowait(batch("ab"))
    ch.close()
    assert ch.closed
    assert pairs(ch.take_nowait(1)) == [(0, "a")]
    assert pairs(ch.take_nowait()) == [(1, "b")]
    assert ch.take_nowait() is None
    assert ch.take_nowait(5) is None


def test_put_into_closed_channel_is_refused():
    ch = Channel(3)
    ch.close()
    with pytest.raises(ChannelClosedError):
        ch.put_nowait(batch("a"))


async def test_close_wakes_a_waiting_taker():
    ch = Channel(3)
    taker = asyncio.create_task(ch.take())
    await let_tasks_run()
    assert not taker.done()
    assert len(ch._getters) == 1
    ch.close()
    assert await taker is None
    assert not ch._getters


async def test_put_wakes_a_waiting_taker():
    ch = Channel(3)
    taker = asyncio.create_task(ch.take())
    await let_tasks_run()
    ch.put_nowait(batch("a"))
    assert pairs(await taker) == [(0, "a")]


async def test_timed_out_taker_leaves_no_waiter_and_loses_no_data():
    ch = Channel(3)
    for _ in range(50):  # a batch stage's max_wait times out over and over
        with anyio.move_on_after(0) as scope:
            await ch.take()
        assert scope.cancelled_caught
    assert not ch._getters

    ch.put_nowait(batch("xy"))
    assert pairs(ch.take_nowait()) == [(0, "x"), (1, "y")]


async def test_taker_cancelled_after_being_woken_leaves_the_items():
    ch = Channel(3)
    taker = asyncio.create_task(ch.take())
    await let_tasks_run()
    ch.put_nowait(batch("a"))  # wakes the taker, which has not run yet
    taker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await taker
    assert not ch._getters
    assert pairs(ch.take_nowait()) == [(0, "a")]


async def test_timed_out_putter_leaves_no_waiter_and_loses_no_data():
    ch = Channel(2)
    ch.put_nowait(batch("ab"))
    for _ in range(50):
        with anyio.move_on_after(0) as scope:
            await ch.put(batch("c", 2))
        assert scope.cancelled_caught
    assert not ch._putters
    assert len(ch) == 2
    assert pairs(ch.take_nowait()) == [(0, "a"), (1, "b")]


async def test_wait_room_waits_for_a_take():
    ch = Channel(2)
    ch.put_nowait(batch("ab"))
    waiter = asyncio.create_task(ch.wait_room())
    await let_tasks_run()
    assert not waiter.done()
    ch.take_nowait(1)
    assert await waiter == 1
    assert not ch._putters


def test_peak_is_the_most_items_held_at_once():
    ch = Channel(10)
    assert ch.peak == 0
    ch.put_nowait(batch("abc"))
    ch.take_nowait(2)
    ch.put_nowait(batch("def", 3))
    assert len(ch) == 4
    ch.take_nowait()
    ch.take_nowait()
    assert len(ch) == 0
    assert ch.peak == 4
    assert ch.peak_bound == 10  # an item bound is the bound at every moment


def test_the_bound_at_the_peak_of_a_channel_bounded_in_bytes_is_what_fit_then():
    ch = Channel(AUTO_ITEMS, AUTO_BYTES)
    ch.put_nowait(batch([bytes(MB // 4)] * 3))  # the first guess lets 16 in
    assert (ch.peak, ch.peak_bound) == (3, 4)  # a MiB holds 4 of them, not 4,096
    ch.take_nowait()
    ch.put_nowait(batch([1, 2]))  # smaller items fit more, but the peak stays
    assert (ch.peak, ch.peak_bound) == (3, 4)


async def test_take_until_gathers_parts_as_they_come_up_to_the_number_wanted():
    ch = Channel(10)

    async def feed():
        for k in range(4):
            await anyio.sleep(0.005)
            ch.put_nowait(batch("ab", start=2 * k))

    async with anyio.create_task_group() as group:
        group.start_soon(feed)
        parts, ended = await take_until(ch, 5, deadline=None)
    assert not ended
    assert [pairs(p) for p in parts] == [
        [(0, "a"), (1, "b")],
        [(2, "a"), (3, "b")],
        [(4, "a")],
    ]
    assert pairs(ch.take_nowait(10)) == [(5, "b"), (6, "a"), (7, "b")]  # the rest stays


async def test_take_until_stops_at_the_deadline_but_takes_what_is_already_there():
    ch = Channel(10)
    ch.put_nowait(batch("xy"))
    parts, ended = await take_until(ch, 5, deadline=anyio.current_time() - 1)  # long past
    assert [pairs(p) for p in parts] == [[(0, "x"), (1, "y")]]
    assert not ended
    parts, ended = await take_until(ch, 5, deadline=anyio.current_time() + 0.01)
    assert (parts, ended) == ([], False)  # nothing came: it returned at the deadline
    assert not ch._getters  # and left no waiter behind


async def test_take_until_says_when_the_channel_ended():
    ch = Channel(10)
    ch.put_nowait(batch("q"))
    ch.close()
    parts, ended = await take_until(ch, 5, deadline=None)
    assert [pairs(p) for p in parts] == [[(0, "q")]]
    assert ended


# Tee: the sending end of a fan-out ------------------------------------------------


def items_of(channel):
    out = []
    while True:
        try:
            batch = channel.take_nowait()
        except WouldBlockError:
            return out
        if batch is None:
            return out
        out.extend(zip(batch.index, batch.items, strict=True))


async def test_a_tee_sends_each_batch_to_every_channel_and_reports_copies():
    left, right = Channel(4), Channel(4)
    copied = []
    tee = Tee([left, right], copied.append)
    await tee.put(Packet(range(3), ["a", "b", "c"]))
    expected = [(0, "a"), (1, "b"), (2, "c")]
    assert items_of(left) == expected
    assert items_of(right) == expected
    await tee.put(Packet(range(3, 5), ["d", "e"]))
    assert items_of(left) == [(3, "d"), (4, "e")]
    assert copied == [0, 1, 2, 3, 4]


async def test_a_tee_waits_for_room_in_every_channel_so_no_branch_gets_ahead():
    fast, slow = Channel(8), Channel(2)
    tee = Tee([fast, slow])
    assert tee.capacity == 2
    putting = asyncio.ensure_future(tee.put(Packet(range(5), list("abcde"))))
    await asyncio.sleep(0)
    # Only what fits in the slow channel went in, and it went to both.
    assert len(fast) == len(slow) == 2
    assert slow.take_nowait().items == ["a", "b"]
    await asyncio.sleep(0)
    assert len(fast) == 4
    assert len(slow) == 2
    slow.take_nowait()
    await asyncio.wait_for(putting, 5)
    assert len(fast) == 5
    assert tee.peak == 5
    tee.close()
    assert fast.closed
    assert slow.closed


MB = 1_000_000


def test_a_channel_bounded_in_bytes_fits_many_small_items_and_few_large_ones():
    small = Channel(AUTO_ITEMS, AUTO_BYTES)
    assert small.room() == FIRST_GUESS  # nothing measured yet
    small.put_nowait(batch(range(FIRST_GUESS)))
    assert small.fits() == AUTO_FLOOR  # ints, and a reader that said nothing
    small.wants = 1000  # a chunking stage's next chunk: room for two
    assert small.fits() == 2000
    small.wants = 10_000
    assert small.fits() == AUTO_ITEMS  # the item cap binds, not the bytes
    large = Channel(AUTO_ITEMS, AUTO_BYTES)
    large.put_nowait(batch([bytes(MB)]))
    assert large.fits() == 1
    assert large.room() == 0


def test_a_channel_bounded_in_bytes_holds_at_least_one_item_however_large():
    ch = Channel(AUTO_ITEMS, AUTO_BYTES)
    ch.put_nowait(batch([bytes(10 * MB)]))
    assert ch.fits() == 1
    ch.take_nowait()
    assert ch.room() == 1


@pytest.mark.timeout(10)
async def test_put_measures_first_so_large_items_after_small_ones_go_in_few_at_a_time():
    ch = Channel(AUTO_ITEMS, AUTO_BYTES)
    ch.wants = AUTO_ITEMS
    await ch.put(batch(range(1000)))  # small: the channel fits thousands
    assert ch.room() > 1000
    assert (await ch.take()) is not None
    big = batch([bytes(MB // 4)] * 10)
    putter = asyncio.ensure_future(ch.put(big))
    await let_tasks_run()
    assert len(ch) == 4  # 1 MiB of quarter megabytes, not the thousands of ints before
    assert not putter.done()
    taken = []
    while len(taken) < 10:
        taken.extend((await ch.take()).items)
    await putter
    assert ch.peak == 1000  # the ints; the large items never went past their bound


def test_a_channel_with_an_item_bound_ignores_sizes():
    ch = Channel(8)
    ch.put_nowait(batch([bytes(MB)] * 8))
    assert len(ch) == 8
    assert ch.fits() == 8


def test_a_drain_drops_what_is_put_and_still_measures_it():
    drain = Drain(AUTO_ITEMS, AUTO_BYTES)
    drain.put_nowait(batch([bytes(MB)] * 50))  # any size: nothing is held
    assert len(drain) == 0
    assert drain.fits() == 1  # a stage sizing its takes by it makes one large item at a time
    drain.close()
    with pytest.raises(ChannelClosedError):
        drain.put_nowait(batch([1]))


def test_a_tee_fits_what_its_tightest_channel_fits():
    tight, loose = Channel(AUTO_ITEMS, AUTO_BYTES), Channel(64)
    tee = Tee([tight, loose])
    tee.put_nowait(batch([bytes(MB // 2)]))
    assert tee.fits() == 2
    assert tee.room() == 1
