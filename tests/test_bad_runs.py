"""Bad inputs that only show at run time: each case's error, in one table.

The companion of ``test_specs.py``'s table, which holds what is refused when
a pipeline is built. Each row here runs a pipeline that meets something bad
while it runs and names the error it must end with: the type, and a pattern
that its message or notes must match. None may hang, truncate the stream
quietly or raise anything else. The rows for a stage's function run on every
kind of stage where the case can arise.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
import time

import anyio
import pytest

import pipework
from pipework import Pipeline

pytestmark = pytest.mark.timeout(60)


def cancel_on_2(x):
    if x == 2:
        raise asyncio.CancelledError
    return x


async def await_cancelled_on_2(x):
    if x == 2:
        task = asyncio.ensure_future(asyncio.sleep(1))
        task.cancel()
        await task
    return x


def exit_on_2(x):
    if x == 2:
        sys.exit(4)
    return x


def die_on_2(x):
    if x == 2:
        os._exit(9)
    return x


def lock_on_2(x):
    return threading.Lock() if x == 2 else x


class NeedsTwoError(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a} and {b}")


def raise_needs_two(x):
    raise NeedsTwoError(x, x)


def not_iterable(x):
    return 42


def one_too_few(items):
    return items[1:]


async def coroutine_of(x):
    return x


def returns_coroutine(x):
    return coroutine_of(x)


def cancelled_setup():
    raise asyncio.CancelledError


def broken_setup():
    raise OSError("no model file")


def keyed(state, x):
    return x


def slow_setup():
    time.sleep(0.6)
    return "ready"


def nap(x):
    time.sleep(0.2)
    return x


def numbers_then_cancel():
    yield from range(3)
    raise asyncio.CancelledError


def numbers_then_error():
    yield from range(3)
    raise ValueError("the feed broke")


def p(n=5):
    return Pipeline(range(n))


# (id, pipeline to run, exception type, pattern that its message or a note must match)
BAD_RUNS = [
    *(
        (f"CancelledError in a {kind} function", build, pipework.ItemCancelledError,
         r"on item 2: 2")
        for kind, build in [
            ("inline", lambda: p().map(cancel_on_2)),
            ("async", lambda: p().map(await_cancelled_on_2)),
            ("thread", lambda: p().map(cancel_on_2, on="thread", workers=2)),
            ("process", lambda: p().map(cancel_on_2, on="process", workers=2)),
            ("filter", lambda: p().filter(cancel_on_2, on="thread")),
            ("sink", lambda: p().sink(cancel_on_2)),
        ]
    ),
    ("CancelledError from a source", lambda: Pipeline(numbers_then_cancel()),
     pipework.ItemCancelledError, r"raised after yielding 3 items"),
    ("CancelledError in setup", lambda: p().map(keyed, setup=cancelled_setup, on="thread"),
     pipework.ItemCancelledError, r"in the setup of stage"),
    ("sys.exit in a thread function", lambda: p().map(exit_on_2, on="thread"),
     pipework.ItemExitError, r"sys\.exit\(4\)"),
    ("sys.exit in a process function", lambda: p().map(exit_on_2, on="process", workers=1),
     pipework.ItemExitError, r"on item 2: 2"),
    ("a worker that dies on an item", lambda: p().map(die_on_2, on="process", workers=2),
     pipework.WorkerDiedError, r"killed 3 worker processes"),
    ("an unpicklable result", lambda: p().map(lock_on_2, on="process", workers=1),
     pipework.UnpicklableError, r"result cannot be pickled"),
    ("an unpicklable item", lambda: Pipeline([1, threading.Lock()]).map(abs, on="process"),
     pipework.UnpicklableError, r"item 1 cannot be pickled"),
    ("an exception that cannot travel back", lambda: p().map(raise_needs_two, on="process"),
     pipework.RemoteError, r"NeedsTwoError: (\d) and \1"),
    ("flat_map of a non-iterable", lambda: p().flat_map(not_iterable), TypeError,
     r"not iterable"),
    ("a batch function's wrong count", lambda: p().map_batches(one_too_few, max_size=2),
     ValueError, r"returned 1 results for 2 items"),
    *(
        (f"a sync function returning a coroutine, {on}",
         lambda on=on: p().map(returns_coroutine, on=on, workers=2), TypeError,
         r"returned an awaitable")
        for on in ("thread", "process")
    ),
    ("a setup that raises", lambda: p().map(keyed, setup=broken_setup, on="process"),
     OSError, r"in the setup of stage .*, in a worker"),
    ("a source that raises", lambda: Pipeline(numbers_then_error()), ValueError,
     r"raised after yielding 3 items"),
    ("a timeout shorter than a worker's start",
     lambda: p(3).map(nap, on="process", workers=1, timeout=0.05),
     pipework.ItemTimeoutError, r"on item 0: 0"),
]  # fmt: skip


def said(exc):
    return "\n".join([str(exc), *getattr(exc, "__notes__", ())])


@pytest.mark.parametrize(
    ("build", "error", "pattern"), [row[1:] for row in BAD_RUNS], ids=[row[0] for row in BAD_RUNS]
)
async def test_a_bad_run_ends_with_its_own_error(build, error, pattern):
    with anyio.fail_after(30), pytest.raises(error) as caught:
        await build().run()
    assert re.search(pattern, said(caught.value)), said(caught.value)


async def test_a_setup_longer_than_the_timeout_is_not_a_bad_run():
    # The other side of the timeout rows: setup is not the item's time.
    outputs = [x async for x in p(4).map(keyed, setup=slow_setup, on="process", timeout=0.3)]
    assert outputs == list(range(4))
