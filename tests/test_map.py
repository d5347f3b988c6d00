"""``await pipework.map(fn, items)``: where ``fn`` runs, results in input order, and its errors.

`tests/test_pipeline.py` and `tests/test_errors.py` show the common cases
(processes by default, threads, async functions, setup, the original
exception); here are the rest of its contract: order when later items
finish first, inputs of every shape and size, a user's executor, retries
and timeouts passed through, and the settings it refuses.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import pipework
from pipework._map import MAP_BUFFER

pytestmark = pytest.mark.timeout(60)


def square(x):
    return x * x


def thread_name(_):
    return threading.current_thread().name


def locked_closure():
    """A sync function that cannot be pickled, so cannot go to a worker process."""
    lock = threading.Lock()

    def guarded(x):
        with lock:
            return x + 1

    return guarded


class LockedAsync:
    """An async callable object that cannot be pickled: it must run on the loop."""

    def __init__(self):
        self.lock = threading.Lock()
        self.threads = set()

    async def __call__(self, x):
        self.threads.add(threading.get_ident())
        await asyncio.sleep(0)
        return -x


async def numbers(count):
    for x in range(count):
        await asyncio.sleep(0)
        yield x


# Order and inputs ---------------------------------------------------------------------


async def test_results_are_in_input_order_when_later_items_finish_first():
    last_done = asyncio.Event()
    finished = []

    async def work(x):
        if x == 0:
            await last_done.wait()  # the first item finishes last
        finished.append(x)
        if x == 9:
            last_done.set()
        return x * 10

    assert await pipework.map(work, range(10), concurrency=10) == [x * 10 for x in range(10)]
    assert finished[-1] == 0  # it really did finish last


async def test_more_items_than_a_channel_holds_all_come_back_in_order():
    count = 3 * MAP_BUFFER + 17
    assert await pipework.map(square, range(count), on="thread", workers=2) == [
        x * x for x in range(count)
    ]


async def test_an_async_iterable_of_items_is_read_to_the_end():
    async def double(x):
        return 2 * x

    assert await pipework.map(double, numbers(50)) == [2 * x for x in range(50)]
    assert await pipework.map(square, numbers(20), on="thread") == [x * x for x in range(20)]


async def test_a_one_shot_iterator_of_items_is_read_once():
    async def double(x):
        return 2 * x

    assert await pipework.map(double, iter([3, 1, 2])) == [6, 2, 4]


@pytest.mark.parametrize("on", ["thread", "async"])
async def test_no_items_give_an_empty_list(on):
    async def double(x):
        return 2 * x

    fn, options = (double, {}) if on == "async" else (square, {"on": on})
    assert await pipework.map(fn, [], **options) == []


async def test_items_that_are_not_iterable_are_refused():
    with pytest.raises(TypeError, match="needs an iterable or an async iterable, not int"):
        await pipework.map(square, 42, on="thread")


# Where fn runs ------------------------------------------------------------------------


async def test_an_async_callable_object_runs_on_the_loop_and_is_never_pickled():
    fn = LockedAsync()
    assert await pipework.map(fn, range(5), concurrency=2) == [0, -1, -2, -3, -4]
    assert fn.threads == {threading.get_ident()}


async def test_a_plain_function_goes_to_processes_unless_told_otherwise():
    guarded = locked_closure()
    with pytest.raises(pipework.UnpicklableError, match=r"'guarded' \(process map\)"):
        await pipework.map(guarded, range(3))
    assert await pipework.map(guarded, range(3), on="thread") == [1, 2, 3]


async def test_a_users_executor_is_used_and_left_open():
    with ThreadPoolExecutor(2, thread_name_prefix="mine") as executor:
        names = await pipework.map(thread_name, range(12), on=executor)
        assert len(names) == 12
        assert all(name.startswith("mine") for name in names)
        assert await pipework.map(square, range(5), on=executor) == [0, 1, 4, 9, 16]
        assert executor.submit(square, 6).result(timeout=10) == 36  # still open


async def test_an_async_function_refuses_threads():
    async def double(x):
        return 2 * x

    with pytest.raises(TypeError, match="an async def function runs on the event loop"):
        await pipework.map(double, range(3), on="thread")


async def test_a_generator_function_is_refused_pointing_at_flat_map():
    def digits(x):
        yield from str(x)

    with pytest.raises(TypeError, match=r"map\(\) got a generator function.*flat_map\(\)"):
        await pipework.map(digits, [12], on="thread")


# Options passed through ---------------------------------------------------------------


@pytest.mark.parametrize("errors", ["skip", "raise", print])
async def test_errors_is_refused_since_the_results_would_not_line_up(errors):
    calls = []

    def note(x):
        calls.append(x)
        return x

    with pytest.raises(TypeError) as caught:
        await pipework.map(note, range(3), on="thread", errors=errors)
    assert str(caught.value) == (
        "pipework.map() has no errors=: skipping items would misalign the results "
        "with the input; use Pipeline(items).map(fn, errors='skip') instead"
    )
    assert calls == []


async def test_retry_tries_a_failed_item_again():
    tries = {}
    lock = threading.Lock()

    def flaky(x):
        with lock:
            tries[x] = tries.get(x, 0) + 1
            first = tries[x] == 1
        if first and x % 3 == 0:
            raise ConnectionError(f"flaky {x}")
        return x + 100

    assert await pipework.map(flaky, range(9), on="thread", retry=2) == list(range(100, 109))
    assert tries == {x: 2 if x % 3 == 0 else 1 for x in range(9)}

    tries.clear()
    with pytest.raises(ConnectionError, match="flaky 0"):
        await pipework.map(flaky, range(9), on="thread")


async def test_a_timeout_fails_an_item_that_takes_too_long():
    async def hang_on_2(x):
        if x == 2:
            await asyncio.Event().wait()
        return x

    with pytest.raises(pipework.ItemTimeoutError) as caught:
        await pipework.map(hang_on_2, range(4), timeout=0.1)
    assert isinstance(caught.value, TimeoutError)
    assert any("on item 2" in note for note in caught.value.__notes__)


async def test_setup_passes_its_state_to_an_async_function():
    async def add(offset, x):
        return offset + x

    assert await pipework.map(add, range(4), setup=lambda: 10, concurrency=2) == [10, 11, 12, 13]
