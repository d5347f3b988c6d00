"""FailFastGroup and JobGroup: the first failure cancels the rest and is raised as itself."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

from pipework._tasks import FailFastGroup, JobGroup


@pytest.fixture(params=[FailFastGroup, JobGroup])
def Group(request):  # noqa: N802 - a class
    return request.param


async def test_tasks_that_succeed_all_finish(Group):  # noqa: N803
    done = []

    async def work(i):
        await anyio.lowlevel.checkpoint()
        done.append(i)

    async with Group() as group:
        for i in range(5):
            group.spawn(work, i)
    assert sorted(done) == [0, 1, 2, 3, 4]


async def test_first_error_is_raised_as_itself_and_siblings_are_cancelled(Group):  # noqa: N803
    cancelled = []

    async def fail():
        await anyio.lowlevel.checkpoint()
        raise ValueError("first")

    async def sibling():
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    async def fail_while_cancelled():
        # A second failure races in behind the first while cleaning up.
        try:
            await anyio.sleep_forever()
        finally:
            raise RuntimeError("second")

    async def run_group():
        async with Group() as group:
            group.spawn(sibling)
            group.spawn(fail_while_cancelled)
            group.spawn(fail)

    with pytest.raises(ValueError, match="first") as caught:
        await run_group()
    assert type(caught.value) is ValueError  # not an ExceptionGroup
    assert cancelled == [True]


async def test_cancel_stops_every_task_without_error():
    stopped = []

    async def forever(i):
        try:
            await anyio.sleep_forever()
        finally:
            stopped.append(i)

    async with FailFastGroup() as group:
        group.spawn(forever, 1)
        group.spawn(forever, 2)
        await anyio.lowlevel.checkpoint()
        group.cancel()
    assert sorted(stopped) == [1, 2]


async def test_cancellation_from_outside_propagates_as_cancellation(Group):  # noqa: N803
    stopped = asyncio.Event()
    started = asyncio.Event()

    async def forever():
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    async def run_group():
        async with Group() as group:
            group.spawn(forever)

    task = asyncio.create_task(run_group())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stopped.is_set()


async def test_cancel_scope_outside_the_group_is_honoured(Group):  # noqa: N803
    with anyio.move_on_after(0) as scope:
        async with Group() as group:
            group.spawn(anyio.sleep_forever)
    assert scope.cancelled_caught


async def test_a_failing_job_cancels_the_body_of_a_job_group():
    """The body waits on something that never comes; the failure must still end the block."""
    never = asyncio.Event()

    async def fail():
        await anyio.lowlevel.checkpoint()
        raise KeyError("job")

    async def run_group():
        async with JobGroup() as group:
            group.spawn(fail)
            await never.wait()

    with pytest.raises(KeyError, match="job"):
        await run_group()


async def test_an_error_in_the_body_of_a_job_group_cancels_its_jobs():
    stopped = []
    started = asyncio.Event()

    async def forever():
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.append(True)

    async def run_group():
        async with JobGroup() as group:
            group.spawn(forever)
            await started.wait()
            raise LookupError("body")

    with pytest.raises(LookupError, match="body"):
        await run_group()
    assert stopped == [True]


async def test_a_job_group_waits_for_jobs_started_by_jobs():
    done = []

    async def parent(group):
        await anyio.lowlevel.checkpoint()
        group.spawn(child)

    async def child():
        await anyio.sleep(0.01)
        done.append(True)

    async with JobGroup() as group:
        group.spawn(parent, group)
    assert done == [True]
