"""The graph: fan-out by reuse, zip, merge, partition, and several pipelines in one run."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

import pipework
from helpers import LOOPS
from pipework import FilteredOutError, Pipeline


def square(x):
    return x * x


def negate(x):
    return -x


def is_odd(x):
    return x % 2 == 1


def fail_on_7(x):
    if x == 7:
        raise ValueError("bad 7")
    return x


def worker_pid(_):
    return os.getpid()


class Counter:
    """A stage function that counts its calls, thread-safely."""

    def __init__(self):
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, x):
        with self._lock:
            self.calls += 1
        return x


# Fan-out and zip ------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_zip_pairs_a_process_branch_and_a_thread_branch_per_item_in_order(loop):
    async def main():
        counted = Counter()
        fetched = Pipeline(range(300), buffer=8).map(counted, name="fetch")
        a = fetched.map(square, on="process", workers=2)
        b = fetched.map(negate, on="thread", workers=2)
        out = [pair async for pair in pipework.zip(a, b)]
        return out, counted.calls

    out, calls = pipework.run_main(main, loop=loop)
    assert out == [(x * x, -x) for x in range(300)]
    assert calls == 300  # the shared stage ran once per item, not once per branch


async def test_a_one_shot_source_feeds_every_branch():
    """A generator can be read once: a fan-out reads it once, for all its branches."""
    base = Pipeline(x for x in range(50))
    out = [pair async for pair in pipework.zip(base.map(square), base.map(negate))]
    assert out == [(x * x, -x) for x in range(50)]


async def test_an_item_a_branch_drops_is_left_out_and_counted():
    base = Pipeline(range(20), buffer=4)
    odd = base.filter(is_odd, on="thread", name="odd")
    skipped = base.map(fail_on_7, errors="skip", name="guarded")
    zipped = pipework.zip(base, odd, skipped)
    out = [t async for t in zipped]
    assert out == [(x, x, x) for x in range(20) if x % 2 and x != 7]
    report = await zipped.run()
    assert report["zip"].items_unmatched == 11  # ten evens, and 7
    assert report["zip"].items_out == 9
    assert [f.index for f in report.failures] == [7]


@pytest.mark.timeout(30)
async def test_a_branch_that_drops_everything_never_stalls_the_others():
    """With buffers of 1 the zip must hear of each drop, or it would wait for ever."""
    base = Pipeline(range(2_000), buffer=1)
    kept = base.map(square, buffer=1)
    none = base.filter(lambda _: False, on="thread", workers=1, chunksize=1, buffer=1)
    report = await pipework.zip(kept, none, buffer=1).run()
    assert report["zip"].items_out == 0
    assert report["zip"].items_unmatched == 2_000


@pytest.mark.timeout(30)
async def test_drops_on_a_process_branch_reach_the_zip():
    base = Pipeline(range(3_000), buffer=2)
    a = base.filter(is_odd, on="process", workers=2, buffer=2, name="odd")
    b = base.map(square, on="thread", workers=2, buffer=2)
    out = [pair async for pair in pipework.zip(a, b, buffer=2)]
    assert out == [(x, x * x) for x in range(1, 3_000, 2)]


async def test_a_zip_inside_a_branch_of_another_zip():
    base = Pipeline(range(30), buffer=2)
    inner = pipework.zip(base.filter(is_odd), base.map(square), name="inner")
    outer = pipework.zip(inner, base.map(negate), name="outer")
    out = [t async for t in outer]
    assert out == [((x, x * x), -x) for x in range(30) if x % 2]
    report = await outer.run()
    assert report["inner"].items_unmatched == 15
    assert report["outer"].items_unmatched == 15


async def test_zip_of_a_branch_with_itself():
    base = Pipeline(range(5)).map(square)
    assert [t async for t in pipework.zip(base, base)] == [(x * x, x * x) for x in range(5)]


async def test_zip_after_a_filter_shared_by_every_branch():
    base = Pipeline(range(10)).filter(is_odd)
    out = [t async for t in pipework.zip(base.map(square), base.map(negate))]
    assert out == [(x * x, -x) for x in range(1, 10, 2)]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda b: pipework.zip(b, Pipeline(range(3))), "do not all start from the same one"),
        (lambda b: pipework.zip(b, b.flat_map(lambda x: [x])), "may make several items of one"),
        (lambda b: pipework.zip(b, b.map(square, ordered=False, on="thread")), "ordered=False"),
        (lambda b: pipework.zip(b, b.batch(2)), "groups items into lists"),
        (lambda b: pipework.zip(*b.partition(2, key=is_odd)), "one part only"),
        (lambda b: pipework.zip(b, pipework.merge(b, b)), "several branches in any order"),
        (lambda b: pipework.zip(*[b.flat_map(range)] * 2), "one each"),
        (pipework.zip, "at least two pipelines"),
        (lambda b: pipework.zip(b, b.sink(print)), "ends with sink"),  # type: ignore[call-overload]
        (lambda b: pipework.zip(b, [1, 2]), "not a Pipeline"),  # type: ignore[call-overload]
    ],
)
def test_zip_refuses_branches_that_cannot_line_up(build, message):
    with pytest.raises(TypeError, match=message):
        build(Pipeline(range(3)))


def test_a_refused_branch_is_named_by_its_stage():
    base = Pipeline(range(3))
    with pytest.raises(TypeError, match=r"branch 1's stage #1 'split' \(inline flat_map\)"):
        pipework.zip(base, base.flat_map(lambda x: [x], name="split"))


# Merge -------------------------------------------------------------------------


async def test_merge_of_two_sources_takes_every_item_keeping_each_order():
    letters = Pipeline(["a", "b", "c", "d"], buffer=1)
    numbers = Pipeline(range(100), buffer=1).map(square, on="thread")
    out = [x async for x in pipework.merge(letters, numbers)]
    assert sorted(x for x in out if isinstance(x, str)) == ["a", "b", "c", "d"]
    assert [x for x in out if isinstance(x, str)] == ["a", "b", "c", "d"]
    assert [x for x in out if isinstance(x, int)] == [x * x for x in range(100)]


async def test_merge_of_branches_of_one_source_brings_each_item_once_per_branch():
    base = Pipeline(range(10))
    out = [x async for x in pipework.merge(base.map(square), base.map(negate))]
    assert sorted(out) == sorted([x * x for x in range(10)] + [-x for x in range(10)])


async def test_a_stage_after_a_merge_sees_both_inputs():
    report = await pipework.merge(Pipeline(range(5)), Pipeline(range(7))).map(square).run()
    assert report["square"].items_in == 12
    assert [s.name for s in report.stages] == ["source", "source", "merge", "square"]
    assert report.items_per_second > 0


# Partition ----------------------------------------------------------------------


async def test_partition_sends_equal_keys_to_one_part_in_order():
    words = ["apple", "bee", "cat", "ant", "bird", "cow", "axe"]
    parts = Pipeline(words, buffer=2).partition(3, key=lambda w: w[0])
    seen = [[] for _ in parts]
    sinks = [part.sink(got.append) for part, got in zip(parts, seen, strict=True)]
    report = await pipework.run_all(*sinks)
    for got in seen:
        for letter in "abc":
            assert [w for w in got if w[0] == letter] in ([], [w for w in words if w[0] == letter])
    assert sorted(w for got in seen for w in got) == sorted(words)
    assert report["<lambda>"].items_out == len(words)


async def test_an_int_key_picks_its_part_and_a_bool_key_splits_valid_from_invalid():
    invalid, valid = Pipeline(range(10)).partition(2, key=is_odd)
    bad, good = [], []
    await pipework.run_all(valid.sink(good.append), invalid.sink(bad.append))
    assert good == [1, 3, 5, 7, 9]
    assert bad == [0, 2, 4, 6, 8]


async def test_partitions_merged_back_hold_every_item():
    shards = Pipeline(range(100)).partition(4, key=lambda x: x % 4)
    merged = pipework.merge(*(shard.map(square, on="thread") for shard in shards))
    assert sorted([x async for x in merged]) == [x * x for x in range(100)]


async def test_a_part_that_nothing_reads_is_drained():
    first, _ = Pipeline(range(10), buffer=1).partition(2, key=is_odd)
    assert [x async for x in first] == [0, 2, 4, 6, 8]


async def test_a_key_that_raises_fails_the_run_naming_the_item():
    def key(x):
        return 1 // (x - 3)

    parts = Pipeline(range(10)).partition(2, key=key, name="route")
    with pytest.raises(ZeroDivisionError) as caught:
        await pipework.merge(*parts).run()
    assert any("#1 'route' (partition)" in note and "3" in note for note in caught.value.__notes__)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": 1, "key": is_odd}, ValueError, "at least 2"),
        ({"n": 2.0, "key": is_odd}, TypeError, "whole number"),
        ({"n": 2, "key": "x"}, TypeError, "must be a callable"),
        ({"n": 2, "key": negate, "buffer": 0}, ValueError, "at least 1"),
    ],
)
def test_partition_refuses_bad_settings(kwargs, error, message):
    with pytest.raises(error, match=message):
        Pipeline(range(3)).partition(**kwargs)


def test_partition_refuses_an_async_key():
    async def key(x):
        return x

    with pytest.raises(TypeError, match="plain function"):
        Pipeline(range(3)).partition(2, key=key)


# Several pipelines in one run ------------------------------------------------------


async def test_run_all_runs_several_sinks_from_one_read_of_the_source():
    counted = Counter()
    rows = Pipeline(iter(range(40))).map(counted, name="read")
    database, file = [], []
    report = await pipework.run_all(
        rows.map(square).sink(database.append, name="db"),
        rows.sink(file.append, name="file"),
    )
    assert database == [x * x for x in range(40)]
    assert file == list(range(40))
    assert counted.calls == 40
    assert [s.name for s in report.stages] == ["source", "read", "square", "db", "file"]
    assert len({id(s) for s in report.stages}) == 5


async def test_run_all_refuses_what_is_not_a_pipeline():
    with pytest.raises(TypeError, match="at least one"):
        await pipework.run_all()
    with pytest.raises(TypeError, match="not a pipeline"):
        await pipework.run_all([1, 2])  # type: ignore[arg-type]


async def test_separate_runs_of_separate_branches_stay_independent():
    base = Pipeline(range(5))
    assert [x async for x in base.map(square)] == [0, 1, 4, 9, 16]
    assert [x async for x in base.map(negate)] == [0, -1, -2, -3, -4]


# Failures, cancellation, streams, stop ---------------------------------------------


@pytest.mark.timeout(60)
async def test_a_failure_in_one_branch_stops_every_branch_and_names_its_stage():
    base = Pipeline(range(10_000), buffer=4)
    slow = base.map(square, on="process", workers=2)
    failing = base.map(fail_on_7, on="thread", name="guard")
    with pytest.raises(ValueError, match="bad 7") as caught:
        await pipework.zip(slow, failing).run()
    assert any("'guard'" in note for note in caught.value.__notes__)


@pytest.mark.timeout(60)
async def test_cancelling_a_graph_run_leaves_no_worker():
    started = asyncio.Event()

    def mark(x):
        return x

    async def note(x):
        started.set()
        return x

    base = Pipeline(range(10**9), buffer=4).map(note)
    pids = base.map(worker_pid, on="process", workers=2)
    task = asyncio.ensure_future(pipework.zip(pids, base.map(mark, on="thread")).run())
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # conftest's guard fails the test if a worker process outlives it


async def test_breaking_out_of_a_stream_over_a_graph_stops_it():
    base = Pipeline(range(10**9), buffer=4)
    async with pipework.zip(base.map(square), base.map(negate, on="thread")).stream() as pairs:
        async for pair in pairs:
            if pair[0] > 100:
                break
    assert pair == (121, -11)


@pytest.mark.timeout(60)
async def test_stop_ends_every_source_of_a_graph_and_drains():
    stop = asyncio.Event()
    seen = []

    def save(x):
        seen.append(x)
        if len(seen) == 50:
            stop.set()

    def endless():
        n = 0
        while True:
            yield n
            n += 1

    merged = pipework.merge(Pipeline(endless()), Pipeline(endless()).map(negate))
    report = await merged.sink(save).run(stop=stop)
    assert report["save"].items_in == len(seen) >= 50


# A service over a graph ----------------------------------------------------------


async def test_a_service_over_a_fan_out_and_zip():
    base = Pipeline.service(int)
    served = pipework.zip(base.map(square, on="thread"), base.filter(is_odd, name="odd"))
    async with served.open() as service:
        assert await service.submit(3) == (9, 3)
        with pytest.raises(FilteredOutError, match="'odd'"):
            await service.submit(4)
        results = await asyncio.gather(*(service.submit(x) for x in range(1, 40, 2)))
        assert results == [(x * x, x) for x in range(1, 40, 2)]
    assert service.in_flight == 0


async def test_a_service_that_merges_branches_returns_lists():
    base = Pipeline.service(int)
    merged = pipework.merge(base.map(square), base.map(negate))
    with pytest.raises(ValueError, match='results="list"'):
        merged.open()
    async with merged.open(results="list") as service:
        assert sorted(await service.submit(3)) == [-3, 9]


async def test_a_service_over_partitions_merged_back():
    small, big = Pipeline.service(int).partition(2, key=lambda x: x > 10)
    merged = pipework.merge(small.map(negate), big.map(square))
    async with merged.open() as service:
        assert await service.submit(2) == -2
        assert await service.submit(12) == 144


def test_a_service_has_one_source_fed_by_submit():
    merged = pipework.merge(Pipeline.service(int), Pipeline(range(3)))
    with pytest.raises(TypeError, match=r"started with Pipeline\.service"):
        merged.open()


def doubled(batch):
    return [2 * x for x in batch]


@pytest.mark.timeout(60)
async def test_every_kind_of_stage_runs_in_a_branch():
    async def twice(x):
        yield x
        yield x

    async def save_async(x):
        got["async sink"].append(x)

    got = {"batch": [], "map_batches": [], "flat_map": [], "async sink": []}
    base = Pipeline(range(20), buffer=4)
    report = await pipework.run_all(
        base.batch(5).sink(got["batch"].append),
        base.map_batches(doubled, max_size=4, on="process", workers=2).sink(
            got["map_batches"].append
        ),
        base.flat_map(twice).sink(got["flat_map"].append),
        base.map(square, on="thread").sink(save_async),
    )
    assert got["batch"] == [list(range(i, i + 5)) for i in range(0, 20, 5)]
    assert got["map_batches"] == [2 * x for x in range(20)]
    assert got["flat_map"] == [x for x in range(20) for _ in range(2)]
    assert got["async sink"] == [x * x for x in range(20)]
    assert report["source"].items_out == 20
