"""map_batches: dynamic batching by size and wait, one result per item, on every kind of stage."""

from __future__ import annotations

import asyncio
import time

import pytest

from pipework import Pipeline, Retry

pytestmark = pytest.mark.timeout(60)


def doubled(items):
    return [x * 2 for x in items]


async def doubled_later(items):
    await asyncio.sleep(0.001)
    return [x * 2 for x in items]


def one_short(items):
    return items[:-1]


def scaled(factor, items):
    return [factor * x for x in items]


def make_factor():
    return 3


WHERE = {
    "inline": {},
    "thread": {"on": "thread", "workers": 2},
    "process": {"on": "process", "workers": 2},
}


@pytest.mark.parametrize("where", WHERE)
async def test_results_flow_on_as_single_items_in_order(where):
    out = [x async for x in Pipeline(range(100)).map_batches(doubled, max_size=8, **WHERE[where])]
    assert out == [x * 2 for x in range(100)]


async def test_an_async_batch_function_runs_concurrently_and_keeps_order():
    pipeline = Pipeline(range(100)).map_batches(doubled_later, max_size=8, concurrency=4)
    assert [x async for x in pipeline] == [x * 2 for x in range(100)]


@pytest.mark.parametrize("where", ["thread", "process"])
async def test_setup_state_comes_first(where):
    pipeline = Pipeline(range(20)).map_batches(
        scaled, setup=make_factor, max_size=6, **WHERE[where]
    )
    assert [x async for x in pipeline] == [3 * x for x in range(20)]


@pytest.mark.parametrize("where", WHERE)
async def test_a_length_mismatch_names_the_stage_and_the_batch(where):
    with pytest.raises(ValueError, match="returned 3 results for 4 items") as caught:
        await Pipeline(range(10)).map_batches(one_short, max_size=4, **WHERE[where]).run()
    assert any(
        "stage #1 'one_short'" in note and "map_batches" in note and "batch of 4 items" in note
        for note in caught.value.__notes__
    )


async def test_a_failed_batch_fails_each_of_its_items():
    report = await (
        Pipeline(range(10))
        .map_batches(one_short, max_size=4, on="process", workers=2, errors="skip")
        .run()
    )
    assert sorted(f.index for f in report.failures) == list(range(10))
    assert report.stages[1].items_failed == 10
    assert report.stages[1].items_out == 0


async def test_a_retry_tries_the_whole_batch_again(tmp_path):
    def flaky(items):
        mark = tmp_path / str(items[0])
        if not mark.exists():
            mark.touch()
            raise ConnectionError("once per batch")
        return [x + 1 for x in items]

    pipeline = Pipeline(range(12)).map_batches(
        flaky, max_size=4, on="thread", retry=Retry(2, base_delay=0)
    )
    assert [x async for x in pipeline] == [x + 1 for x in range(12)]
    assert len(list(tmp_path.iterdir())) == 3


async def trickle(n, gap):
    for i in range(n):
        yield i
        await asyncio.sleep(gap)


async def test_a_batch_goes_once_its_oldest_item_has_waited_max_wait():
    sizes = []

    def record(items):
        sizes.append(len(items))
        return items

    # Items arrive every 20 ms; a batch of 100 would take 2 s to fill. With a
    # 1 ms wait each batch goes nearly alone, and the first output comes back
    # while the source is still producing.
    firsts = []
    async for x in Pipeline(trickle(20, 0.02)).map_batches(record, max_size=100, max_wait=0.001):
        firsts.append(x)
        if len(firsts) == 1:
            assert max(sizes) < 20
    assert firsts == list(range(20))
    assert max(sizes) < 20


async def test_batches_fill_up_while_the_workers_are_busy():
    sizes = []

    def slow(items):
        sizes.append(len(items))
        time.sleep(0.02)
        return items

    out = [
        x async for x in Pipeline(range(400)).map_batches(slow, max_size=32, on="thread", workers=1)
    ]
    assert out == list(range(400))
    # One worker, always busy: each next batch fills to max_size while it
    # waits, so all but the first and the last are full.
    assert sizes[1:-1]
    assert all(size == 32 for size in sizes[1:-1])


async def test_a_batch_with_max_wait_zero_takes_what_has_arrived():
    sizes = []

    def record(items):
        sizes.append(len(items))
        return items

    await Pipeline(range(300)).map_batches(record, max_size=64, max_wait=0).run()
    assert sum(sizes) == 300
    assert max(sizes) <= 64


def exit_on_7(items):
    if 7 in items:
        import os

        os._exit(3)
    return items


async def test_a_batch_that_kills_its_worker_is_resent_whole_then_fails_whole():
    from pipework import WorkerDiedError

    report = await (
        Pipeline(range(20))
        .map_batches(exit_on_7, max_size=4, on="process", workers=2, errors="skip")
        .run()
    )
    failed = sorted(f.index for f in report.failures)
    assert 7 in failed
    assert len(failed) == 4  # the batch that held 7, and nothing else
    assert all(isinstance(f.error, WorkerDiedError) for f in report.failures)
    assert report.stages[1].items_out == 16
