"""The pieces map-like stages share: settling failed items and shaping a chunk's results.

`run_with_policy` and `run_whole_with_policy` are driven with the attempt an
inline stage makes (`apply` over the packet's items) and a real `Policy`.
"""

from __future__ import annotations

import re

import pytest

from pipework import Retry
from pipework._observe._report import StageStats
from pipework._packet import Packet
from pipework._stages._common import finish, run_whole_with_policy, run_with_policy
from pipework._stages._policy import LEFT_STREAM, Policy
from pipework._worker._ops import apply

LABEL = "#1 'f' (inline map)"


def attempts_of(fn, op, seen):
    """The attempt of an inline stage, recording the items of each try."""

    async def attempt(packet):
        seen.append(list(packet.index))
        return apply(fn, op, packet.items)

    return attempt


def policy(stats, *, retry=None, errors="skip", observer=None):
    return Policy(LABEL, retry=retry, errors=errors, stats=stats, observer=observer)


def fails_on(*bad, times=None):
    """Double x, raising for the items in ``bad`` (only the first ``times`` tries of each)."""
    tries = dict.fromkeys(bad, 0)

    def fn(x):
        if x in tries and (times is None or tries[x] < times):
            tries[x] += 1
            raise ValueError(f"bad {x}")
        return 2 * x

    return fn


def pairs(packet):
    return list(zip(packet.index, packet.items, strict=True))


async def test_a_skipped_item_in_the_middle_leaves_the_rest_with_their_indexes():
    stats, seen = StageStats(), []
    chunk = Packet([3, 7, 9, 20, 21], [3, 7, 9, 20, 21])
    attempt = attempts_of(fails_on(9, 21), "map", seen)
    out = await run_with_policy("map", chunk, attempt, policy(stats), LABEL)
    assert pairs(out) == [(3, 6), (7, 14), (20, 40)]
    assert seen == [[3, 7, 9, 20, 21], [20, 21]]  # the items after a failure are tried again
    assert [f.index for f in stats.failures] == [9, 21]
    assert stats.failed == 2


async def test_a_retried_item_keeps_its_place():
    stats, seen = StageStats(), []
    attempt = attempts_of(fails_on(12, times=2), "map", seen)
    retry = Retry(attempts=3, base_delay=0)
    out = await run_with_policy(
        "map",
        Packet(range(10, 15), list(range(10, 15))),
        attempt,
        policy(stats, retry=retry),
        LABEL,
    )
    assert pairs(out) == [(i, 2 * i) for i in range(10, 15)]
    assert isinstance(out.index, range)  # the parts joined up again
    assert seen == [[10, 11, 12, 13, 14], [12, 13, 14], [12, 13, 14]]
    assert (stats.retried, stats.failed) == (2, 0)


async def test_an_item_that_fails_every_try_is_dropped_after_the_last():
    stats = StageStats()
    attempt = attempts_of(fails_on(0), "map", [])
    retry = Retry(attempts=2, base_delay=0)
    out = await run_with_policy(
        "map", Packet(range(3), [0, 1, 2]), attempt, policy(stats, retry=retry), LABEL
    )
    assert pairs(out) == [(1, 2), (2, 4)]
    [failure] = stats.failures
    assert (failure.index, failure.attempts, stats.retried) == (0, 2, 1)


async def test_with_errors_raise_the_error_names_the_stage_and_item():
    attempt = attempts_of(fails_on(11), "map", [])
    with pytest.raises(ValueError, match="bad 11") as caught:
        await run_with_policy(
            "map",
            Packet(range(10, 13), [10, 11, 12]),
            attempt,
            policy(StageStats(), errors="raise"),
            LABEL,
        )
    assert f"pipework: in stage {LABEL}, on item 11: 11" in caught.value.__notes__


async def test_every_item_failing_gives_an_empty_packet():
    stats = StageStats()
    attempt = attempts_of(fails_on(1, 2), "map", [])
    out = await run_with_policy("map", Packet(range(1, 3), [1, 2]), attempt, policy(stats), LABEL)
    assert len(out) == 0
    assert stats.failed == 2


async def test_a_flat_map_failure_keeps_the_outputs_of_the_items_around_it():
    def repeat(x):
        if x == 2:
            raise ValueError("bad 2")
        return [x] * x

    attempt = attempts_of(repeat, "flat_map", [])
    chunk = Packet(range(5), list(range(5)))
    out = await run_with_policy("flat_map", chunk, attempt, policy(StageStats()), LABEL)
    assert pairs(out) == [(1, 1), (3, 3), (3, 3), (3, 3), (4, 4), (4, 4), (4, 4), (4, 4)]


async def test_the_observer_hears_of_what_a_filter_or_flat_map_reshapes():
    class Observer:
        def __init__(self):
            self.reshaped_ = []

        def failed(self, failure):
            pass

        def reshaped(self, index, count, stage):
            self.reshaped_.append((index, count, stage))

    observer = Observer()
    stats = StageStats()
    pol = policy(stats, observer=observer)
    chunk = Packet(range(4), [0, 1, 2, 3])
    await run_with_policy(
        "flat_map", chunk, attempts_of(lambda x: [x] * x, "flat_map", []), pol, LABEL
    )
    await run_with_policy("filter", chunk, attempts_of(lambda x: x % 2, "filter", []), pol, LABEL)
    assert observer.reshaped_ == [
        (0, 0, LABEL),
        (2, 2, LABEL),
        (3, 3, LABEL),
        (0, 0, LABEL),
        (2, 0, LABEL),
    ]


async def test_a_batch_function_is_retried_whole():
    stats, seen = StageStats(), []
    calls = []

    def batch_fn(items):
        calls.append(list(items))
        if len(calls) < 3:
            raise ValueError("flaky")
        return [x + 1 for x in items]

    attempt = attempts_of(batch_fn, "map_batches", seen)
    pol = policy(stats, retry=Retry(attempts=3, base_delay=0))
    out = await run_whole_with_policy(Packet([4, 8], [4, 8]), attempt, pol, LABEL)
    assert pairs(out) == [(4, 5), (8, 9)]
    assert calls == [[4, 8]] * 3
    assert stats.retried == 2


async def test_a_batch_that_fails_for_good_fails_every_item():
    stats = StageStats()

    def batch_fn(items):
        raise ValueError("never")

    attempt = attempts_of(batch_fn, "map_batches", [])
    out = await run_whole_with_policy(Packet([4, 8, 9], [4, 8, 9]), attempt, policy(stats), LABEL)
    assert len(out) == 0
    assert stats.failed == 3
    assert [(f.index, f.item) for f in stats.failures] == [(4, "4"), (8, "8"), (9, "9")]


def test_finish_shapes_each_op():
    chunk = Packet([5, 6, 7], ["a", "b", "c"])
    assert pairs(finish("map", chunk, ["A", "B", "C"], LABEL)) == [(5, "A"), (6, "B"), (7, "C")]
    assert finish("filter", chunk, [True, True, True], LABEL) is chunk
    assert pairs(finish("filter", chunk, [False, True, False], LABEL)) == [(6, "b")]
    flat = finish("flat_map", chunk, [["x", "y"], [], ["z"]], LABEL)
    assert pairs(flat) == [(5, "x"), (5, "y"), (7, "z")]


def test_finish_tells_the_zip_of_the_items_a_filter_drops():
    left = []
    token = LEFT_STREAM.set(left.append)
    try:
        finish("filter", Packet([5, 6, 7], ["a", "b", "c"]), [False, True, False], LABEL)
    finally:
        LEFT_STREAM.reset(token)
    assert left == [5, 7]


def test_finish_refuses_awaitables_from_a_sync_map_naming_the_stage():
    async def later(x):
        return x

    coroutines = [later(1), later(2)]
    message = "^" + re.escape(f"stage {LABEL}: the function returned an awaitable")
    with pytest.raises(TypeError, match=message):
        finish("map", Packet([0, 1], [1, 2]), coroutines, LABEL)
    assert all(c.cr_frame is None for c in coroutines)  # closed, so none is "never awaited"
