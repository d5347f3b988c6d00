"""A CancelledError or a SystemExit raised by user code is its item's failure.

Only cancelling the run may cancel a run. A stage function that awaits a task
someone else cancelled, or a thread that raises ``asyncio.CancelledError``,
used to end its stage as if the run had been cancelled: ``run()`` returned
normally with the items after it gone, and a service's callers waited for
ever. Each case here fails the item with `ItemCancelledError`, which the
stage's policy settles like any other failure.

Likewise ``sys.exit()`` in a thread or process stage's function used to end
the whole program (from a thread) or kill three workers in turn (in a
process); it fails its item with `ItemExitError`.
"""

from __future__ import annotations

import asyncio
import sys

import anyio
import pytest

from pipework import ItemCancelledError, ItemExitError, Pipeline

pytestmark = pytest.mark.timeout(60)

BAD = 3


def cancelled_task():
    task = asyncio.ensure_future(asyncio.sleep(10))
    task.cancel()
    return task


def raise_on_bad(x):
    if x == BAD:
        raise asyncio.CancelledError
    return x


async def await_cancelled_on_bad(x):
    if x == BAD:
        await cancelled_task()
    await asyncio.sleep(0)
    return x


def keep(state, x):
    return x


def batch_raise_on_bad(items):
    return [raise_on_bad(x) for x in items]


STAGES = {
    "inline": lambda p, **kw: p.map(raise_on_bad, **kw),
    "async awaiting a cancelled task": lambda p, **kw: p.map(await_cancelled_on_bad, **kw),
    "thread": lambda p, **kw: p.map(raise_on_bad, on="thread", workers=2, **kw),
    "process": lambda p, **kw: p.map(raise_on_bad, on="process", workers=2, **kw),
    "filter on a thread": lambda p, **kw: p.filter(
        lambda x: raise_on_bad(x) + 1, on="thread", **kw
    ),
    "flat_map inline": lambda p, **kw: p.flat_map(lambda x: [raise_on_bad(x)], **kw),
}


@pytest.mark.parametrize("stage", STAGES.values(), ids=STAGES.keys())
async def test_it_stops_a_raising_run_with_the_item_named(stage):
    outputs = []
    with anyio.fail_after(30), pytest.raises(ItemCancelledError) as caught:
        await stage(Pipeline(range(10))).sink(outputs.append).run()
    cause = caught.value.__cause__  # from a worker process: its traceback, which names it
    assert isinstance(cause, asyncio.CancelledError) or "CancelledError" in cause.text
    assert any(f"on item {BAD}: {BAD}" in note for note in caught.value.__notes__)
    assert BAD not in outputs


@pytest.mark.parametrize("stage", STAGES.values(), ids=STAGES.keys())
async def test_a_skipping_stage_reports_it_and_keeps_every_other_item(stage):
    outputs = []
    with anyio.fail_after(30):
        report = await stage(Pipeline(range(10)), errors="skip").sink(outputs.append).run()
    assert sorted(outputs) == [x for x in range(10) if x != BAD]
    [failure] = report.failures
    assert failure.index == BAD
    assert isinstance(failure.error, ItemCancelledError)


async def test_a_batch_function_fails_its_whole_batch():
    report = await (
        Pipeline(range(10)).map_batches(batch_raise_on_bad, max_size=2, errors="skip").run()
    )
    assert [f.index for f in report.failures] == [2, 3]
    assert all(isinstance(f.error, ItemCancelledError) for f in report.failures)
    assert report.stages[-1].items_out == 8


async def test_it_can_be_retried():
    tries = []

    async def flaky(x):
        tries.append(x)
        if x == BAD and tries.count(BAD) == 1:
            await cancelled_task()
        return x

    outputs = [x async for x in Pipeline(range(6)).map(flaky, retry=2)]
    assert outputs == list(range(6))
    assert tries.count(BAD) == 2


async def test_a_sink_that_raises_it_stops_the_run():
    def sink(x):
        raise_on_bad(x)

    async def async_sink(x):
        await await_cancelled_on_bad(x)

    for fn in (sink, async_sink):
        with pytest.raises(ItemCancelledError) as caught:
            await Pipeline(range(10)).sink(fn).run()
        assert any(f"on item {BAD}" in note for note in caught.value.__notes__)


async def test_a_source_that_raises_it_stops_the_run_after_its_items():
    def numbers():
        yield from range(BAD)
        raise asyncio.CancelledError

    async def async_numbers():
        for x in range(BAD):
            yield x
        await cancelled_task()

    for source in (numbers(), async_numbers()):
        outputs = []
        with pytest.raises(ItemCancelledError) as caught:
            await Pipeline(source, buffer=1).sink(outputs.append).run()
        assert outputs == list(range(BAD))
        assert any(f"raised after yielding {BAD} items" in n for n in caught.value.__notes__)


@pytest.mark.parametrize("on", [None, "thread", "process"])
async def test_a_setup_that_raises_it_fails_the_stage(on):
    def setup():
        raise asyncio.CancelledError

    where = {} if on is None else {"on": on, "workers": 1}
    with pytest.raises(ItemCancelledError) as caught:
        await Pipeline(range(3)).map(keep, setup=setup, **where).run()
    assert any("in the setup of stage" in note for note in caught.value.__notes__)


async def test_a_dead_letter_handler_that_raises_it_stops_the_run():
    async def handler(failure):
        await cancelled_task()

    with pytest.raises(ItemCancelledError) as caught:
        await Pipeline(range(5)).map(lambda x: 1 / (x - BAD), errors=handler).run()
    assert any("dead-letter handler" in note for note in caught.value.__notes__)


async def test_a_service_fails_that_item_alone_and_answers_every_other():
    pipeline = Pipeline.service(int).map(await_cancelled_on_bad)
    async with pipeline.open() as service:
        with anyio.fail_after(10):
            results = await asyncio.gather(
                *(service.submit(x) for x in range(10)), return_exceptions=True
            )
    assert [r for r in results if not isinstance(r, BaseException)] == [
        x for x in range(10) if x != BAD
    ]
    assert isinstance(results[BAD], ItemCancelledError)


async def test_cancelling_the_run_still_cancels_it():
    # The other side of the rule: a real cancellation is not an item's failure.
    started = asyncio.Event()

    async def slow(x):
        started.set()
        await asyncio.sleep(30)
        return x

    task = asyncio.ensure_future(Pipeline(range(10)).map(slow).run())
    await started.wait()
    task.cancel()
    with anyio.fail_after(10), pytest.raises(asyncio.CancelledError):
        await task


async def test_a_timeout_still_cancels_the_item_as_a_timeout():
    async def hang(x):
        await asyncio.sleep(30)

    report = await Pipeline(range(2)).map(hang, timeout=0.05, errors="skip").run()
    assert [type(f.error).__name__ for f in report.failures] == ["ItemTimeoutError"] * 2


def exit_on_bad(x):
    if x == BAD:
        sys.exit(7)
    return x


@pytest.mark.parametrize("on", ["thread", "process"])
async def test_sys_exit_in_a_workers_function_fails_its_item_alone(on):
    outputs = []
    report = await (
        Pipeline(range(10))
        .map(exit_on_bad, on=on, workers=2, errors="skip")
        .sink(outputs.append)
        .run()
    )
    assert outputs == [x for x in range(10) if x != BAD]
    [failure] = report.failures
    assert failure.index == BAD
    assert isinstance(failure.error, ItemExitError)
    assert failure.error.code == 7
    assert "sys.exit(7)" in str(failure.error)


async def test_sys_exit_in_a_thread_stops_a_raising_run_but_not_the_program():
    with pytest.raises(ItemExitError) as caught:
        await Pipeline(range(10)).map(exit_on_bad, on="thread").run()
    assert any(f"on item {BAD}" in note for note in caught.value.__notes__)
