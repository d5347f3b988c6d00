"""Failure policies per stage kind: retry with backoff, skip, dead letters, timeouts per item."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from pipework import Failure, ItemTimeoutError, Pipeline, ProcessPool, Retry

pytestmark = pytest.mark.timeout(60)

MODES = ["inline", "async", "thread", "process"]


def on(mode):
    return {"on": mode, "workers": 2} if mode in ("thread", "process") else {}


def fail_first_tries(directory, tries):
    """A function that fails the first ``tries`` times it sees each item, across processes."""

    def flaky(x):
        marks = list(directory.glob(f"{x}-*"))
        if len(marks) < tries:
            (directory / f"{x}-{len(marks)}").touch()
            raise ConnectionError(f"flaky {x}")
        return x * 10

    return flaky


def fail_on_3(x):
    if x == 3:
        raise ValueError("three")
    return x


def as_async(fn):
    async def call(x):
        await asyncio.sleep(0)
        return fn(x)

    call.__name__ = fn.__name__
    return call


def stage(mode, fn):
    return as_async(fn) if mode == "async" else fn


@pytest.mark.parametrize("mode", MODES)
async def test_retry_tries_again_until_an_item_succeeds(mode, tmp_path):
    fn = stage(mode, fail_first_tries(tmp_path, 2))
    retry = Retry(attempts=3, base_delay=0.001)
    report_out = []
    report = (
        await Pipeline(range(10)).map(fn, retry=retry, **on(mode)).sink(report_out.append).run()
    )
    assert report_out == [x * 10 for x in range(10)]
    assert report.stages[1].items_retried == 20
    assert report.stages[1].items_failed == 0


@pytest.mark.parametrize("mode", MODES)
async def test_retry_gives_up_after_its_attempts_and_raises(mode, tmp_path):
    fn = stage(mode, fail_first_tries(tmp_path, 5))
    with pytest.raises(ConnectionError) as caught:
        await Pipeline(range(3)).map(fn, retry=Retry(2, base_delay=0), **on(mode)).run()
    assert any("pipework: in stage #1" in note for note in caught.value.__notes__)


@pytest.mark.parametrize("mode", MODES)
async def test_retry_ignores_exceptions_it_was_not_asked_to_retry(mode, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()

    def counted(x):
        (calls / f"{x}-{time.monotonic_ns()}").touch()
        return fail_on_3(x)

    retry = Retry(attempts=5, base_delay=0, on=(ConnectionError,))
    with pytest.raises(ValueError, match="three"):
        await Pipeline(range(5)).map(stage(mode, counted), retry=retry, **on(mode)).run()
    assert len(list(calls.glob("3-*"))) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_skip_drops_the_item_and_reports_it(mode):
    out = []
    report = (
        await Pipeline(range(8))
        .map(stage(mode, fail_on_3), errors="skip", **on(mode))
        .sink(out.append)
        .run()
    )
    assert out == [0, 1, 2, 4, 5, 6, 7]
    [failure] = report.failures
    assert isinstance(failure, Failure)
    assert (failure.index, failure.item, failure.attempts) == (3, "3", 1)
    assert isinstance(failure.error, ValueError)
    assert failure.stage.startswith("#1 'fail_on_3'")
    assert report.stages[1].items_failed == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_filter_and_a_flat_map_skip_the_same_way(mode):
    def keep(x):
        return fail_on_3(x) % 2 == 0

    def twice(x):
        return [fail_on_3(x)] * 2

    evens = [
        x async for x in Pipeline(range(6)).filter(stage(mode, keep), errors="skip", **on(mode))
    ]
    assert evens == [0, 2, 4]
    pairs = [
        x
        async for x in Pipeline(range(5)).flat_map(
            twice, errors="skip", **on(mode) or {"on": "thread"}
        )
    ]
    assert pairs == [0, 0, 1, 1, 2, 2, 4, 4]


async def test_a_dead_letter_handler_gets_every_failure_sync_or_async():
    letters: list[Failure] = []

    async def store(failure):
        await asyncio.sleep(0)
        letters.append(failure)

    def bad_evens(x):
        if x % 2 == 0:
            raise KeyError(x)
        return x

    out = [x async for x in Pipeline(range(10)).map(bad_evens, on="process", errors=store)]
    assert out == [1, 3, 5, 7, 9]
    # Chunks run at once on several workers, so letters come as failures happen.
    assert sorted(f.index for f in letters) == [0, 2, 4, 6, 8]
    assert all(isinstance(f.error, KeyError) for f in letters)
    plain: list[Failure] = []
    await Pipeline(range(4)).map(bad_evens, errors=plain.append).run()
    assert [f.index for f in plain] == [0, 2]


async def test_a_dead_letter_handler_that_raises_stops_the_run_and_says_where():
    def refuse(_failure):
        raise RuntimeError("dead letters are full")

    with pytest.raises(RuntimeError, match="full") as caught:
        await Pipeline(range(5)).map(fail_on_3, errors=refuse).run()
    assert any("dead-letter handler" in note for note in caught.value.__notes__)


async def test_an_async_item_that_overruns_is_cancelled_and_cleans_up():
    cleaned = []

    async def slow_on_2(x):
        try:
            await asyncio.sleep(30 if x == 2 else 0)
        finally:
            cleaned.append(x)
        return x

    report_out = [x async for x in Pipeline(range(5)).map(slow_on_2, timeout=0.2, errors="skip")]
    assert report_out == [0, 1, 3, 4]
    assert sorted(cleaned) == [0, 1, 2, 3, 4]


async def test_a_thread_item_that_overruns_fails_alone():
    def slow_on_2(x):
        time.sleep(1.5 if x == 2 else 0)
        return x

    pipeline = Pipeline(range(6)).map(slow_on_2, on="thread", workers=2, timeout=0.3, errors="skip")
    report = await pipeline.run()
    [failure] = report.failures
    assert failure.index == 2
    assert isinstance(failure.error, ItemTimeoutError)
    assert report.stages[1].items_out == 5


async def test_a_timed_out_item_can_be_retried(tmp_path):
    def slow_first_time(x):
        mark = tmp_path / str(x)
        if x == 1 and not mark.exists():
            mark.touch()
            time.sleep(30)
        return x

    retry = Retry(attempts=2, base_delay=0, on=(ItemTimeoutError,))
    out = [
        x
        async for x in Pipeline(range(4)).map(
            slow_first_time, on="process", workers=2, timeout=1, retry=retry
        )
    ]
    assert out == [0, 1, 2, 3]


async def test_a_supervised_pool_given_as_on_recycles_workers_and_keeps_every_item():
    with ProcessPool(2, max_tasks_per_worker=3) as pool:
        out = [x async for x in Pipeline(range(200)).map(abs, on=pool, chunksize=5)]
        assert out == list(range(200))


def test_backoff_is_full_jitter_within_its_exponential_bound():
    retry = Retry(attempts=10, base_delay=0.5, max_delay=3.0)
    for attempt in range(1, 10):
        bound = min(3.0, 0.5 * 2 ** (attempt - 1))
        delays = [retry.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound / 2  # spread out, not pinned to zero


BAD = [
    (lambda: Retry(attempts=0), ValueError, "attempts= must be at least 1"),
    (lambda: Retry(attempts=1.5), TypeError, "attempts= must be a whole number"),
    (lambda: Retry(attempts=True), TypeError, "attempts= must be a whole number"),
    (lambda: Retry(base_delay=-1), ValueError, "base_delay= must be zero or more"),
    (lambda: Retry(base_delay=math.nan), ValueError, "base_delay= must be zero or more"),
    (lambda: Retry(max_delay=math.inf), ValueError, "max_delay= must be zero or more"),
    (lambda: Retry(base_delay="1"), TypeError, "base_delay= must be a number"),
    (lambda: Retry(on=ValueError("x")), TypeError, "on= must be an exception type"),
    (lambda: Retry(on=()), TypeError, "on= must be an exception type"),
    (lambda: Retry(on=KeyboardInterrupt), TypeError, "on= must be an exception type"),
    (lambda: Pipeline([1]).map(abs, retry=0), ValueError, "retry= must be at least 1"),
    (lambda: Pipeline([1]).map(abs, retry="3"), TypeError, "retry= must be a number"),
    (lambda: Pipeline([1]).map(abs, retry=2.5), TypeError, "retry= must be a number"),
    (lambda: Pipeline([1]).map(abs, errors="ignore"), ValueError, "errors= must be 'raise'"),
    (lambda: Pipeline([1]).map(abs, errors=3), ValueError, "errors= must be 'raise'"),
    (lambda: Pipeline([1]).map(abs, on="thread", timeout=0), ValueError, "timeout= must be more"),
    (lambda: Pipeline([1]).map(abs, on="thread", timeout=-1), ValueError, "timeout= must be more"),
    (lambda: Pipeline([1]).map(abs, on="thread", timeout="1"), TypeError, "timeout= must be a"),
    (
        lambda: Pipeline([1]).map(abs, on="thread", timeout=math.nan),
        ValueError,
        "timeout= must be more",
    ),
    (lambda: Pipeline([1]).map(abs, timeout=1), TypeError, "cannot interrupt a plain function"),
    (lambda: Pipeline([1]).map(abs, chunk_time=0.01), TypeError, "are for thread and process"),
    (
        lambda: Pipeline([1]).map(abs, on="process", chunksize=4, chunk_time=0.01),
        TypeError,
        "cannot go with a fixed chunksize",
    ),
    (lambda: Pipeline([1]).map(abs, on="process", chunk_time=0), ValueError, "chunk_time= must"),
    # ProcessPoolExecutor's words, so that code matching them still does.
    (lambda: ProcessPool(0), ValueError, "max_workers must be greater than 0"),
    (lambda: ProcessPool(-1), ValueError, "max_workers must be greater than 0, not -1"),
    (lambda: ProcessPool(True), TypeError, "max_workers= must be a whole number"),
    (lambda: ProcessPool(1, max_tasks_per_worker=0), ValueError, "max_tasks_per_worker must"),
    (lambda: ProcessPool(1, max_tasks_per_child=0), ValueError, "max_tasks_per_child must"),
    (
        lambda: ProcessPool(1, max_tasks_per_child=2, max_tasks_per_worker=2),
        TypeError,
        "not both",
    ),
    (lambda: ProcessPool(1, max_memory_per_worker=-5), ValueError, "max_memory_per_worker must"),
]


@pytest.mark.parametrize(("build", "error", "message"), BAD)
def test_bad_policies_fail_when_written(build, error, message):
    with pytest.raises(error, match=message):
        build()


SHARED = ValueError("one instance for every item")


def raise_shared(x):
    raise SHARED


@pytest.mark.parametrize("mode", ["inline", "async", "thread"])
async def test_one_exception_raised_for_many_items_names_each_item_once(mode):
    # Before: item 0's error carried "on item 0" through "on item 4".
    report = (
        await Pipeline(range(5)).map(stage(mode, raise_shared), errors="skip", **on(mode)).run()
    )
    assert [f.index for f in report.failures] == [0, 1, 2, 3, 4]
    for failure in report.failures:
        assert isinstance(failure.error, ValueError)
        assert str(failure.error) == "one instance for every item"
        notes = [note for note in failure.error.__notes__ if "on item" in note]
        assert notes == [
            f"pipework: in stage {failure.stage}, on item {failure.index}: {failure.index}"
        ]


async def test_failures_are_reported_in_source_order_whatever_order_they_failed_in():
    async def fail_slowly(x):
        await asyncio.sleep(0.01 * (10 - x))  # the last item fails first
        raise ValueError(x)

    report = await Pipeline(range(10)).map(fail_slowly, concurrency=10, errors="skip").run()
    assert [f.index for f in report.failures] == list(range(10))
    assert [f.index for f in report.stages[1].failures] == list(range(10))
