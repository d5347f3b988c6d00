"""An async stage function that is an async context manager is held open for its stage.

This is the hook `pipework.http.fetch` relies on to own one session per
run; here it is tested on its own, with a plain class.
"""

from __future__ import annotations

import asyncio

import pytest

import pipework
from pipework import Pipeline


class Resource:
    """An async callable that records when it is opened, called and closed."""

    def __init__(self, fail_on=None):
        self.events = []
        self.fail_on = fail_on
        self.exit_args = None

    async def __aenter__(self):
        self.events.append("enter")
        return "ignored"

    async def __aexit__(self, exc_type, exc, tb):
        self.exit_args = (exc_type, exc)
        await asyncio.sleep(0.01)  # cleanup that awaits must finish, even when cancelled
        self.events.append("exit")

    async def __call__(self, item):
        if item == self.fail_on:
            raise ValueError(item)
        if item == "hang":
            await asyncio.sleep(60)
        self.events.append(item)
        return item


async def test_the_stage_enters_its_function_before_the_first_call_and_exits_after_the_last():
    resource = Resource()

    got = await pipework.map(resource, [1, 2, 3], concurrency=2)

    assert got == [1, 2, 3]
    assert resource.events[0] == "enter"
    assert resource.events[-1] == "exit"
    assert sorted(resource.events[1:-1]) == [1, 2, 3]
    assert resource.exit_args == (None, None)


async def test_it_is_entered_and_exited_for_an_empty_stream_too():
    resource = Resource()

    await Pipeline([]).map(resource).run()

    assert resource.events == ["enter", "exit"]


async def test_it_is_exited_when_the_stage_fails_and_sees_the_error():
    resource = Resource(fail_on=2)

    with pytest.raises(ValueError, match="2"):
        await Pipeline([1, 2, 3]).map(resource, concurrency=1).run()

    assert resource.events[0] == "enter"
    assert resource.events[-1] == "exit"
    assert resource.exit_args[0] is ValueError


@pytest.mark.timeout(20)
async def test_it_is_exited_when_the_run_is_cancelled_and_its_cleanup_can_await():
    resource = Resource()

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await Pipeline(["hang"]).map(resource).run()

    assert resource.events == ["enter", "exit"]
    assert resource.exit_args[0] is not None  # cancellation, in anyio's or asyncio's form


async def test_each_stage_that_uses_it_enters_it_and_filters_do_too():
    resource = Resource()

    async def keep(item):
        return item > 1

    await Pipeline([1, 2]).map(resource).filter(keep).filter(resource).run()

    assert resource.events.count("enter") == 2
    assert resource.events.count("exit") == 2


async def test_a_plain_async_function_is_left_alone():
    calls = []

    async def double(x):
        calls.append(x)
        return 2 * x

    assert await pipework.map(double, [1, 2]) == [2, 4]
    assert calls == [1, 2]
