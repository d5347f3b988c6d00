"""Failures: the original exception, a note naming stage and source item, and no worker left."""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import re
import threading
import time
import warnings
from concurrent.futures import BrokenExecutor

import anyio
import pytest

import pipework
from helpers import alive, in_mode, where
from pipework import Pipeline

MODES = ["inline", "async", "thread", "process"]


# functions that run in workers -------------------------------------------------------------


def fail_on_7(x):
    if x == 7:
        raise ValueError(f"bad item {x}")
    return x


def fail_from_3(x):
    if x >= 3:
        raise ValueError(f"bad item {x}")
    return x


def fail_on_140(x):
    if x == 140:
        raise KeyError(x)
    return x


def pid_unless_negative(x):
    if x < 0:
        raise ValueError(f"negative item {x}")
    return os.getpid()


def pid_or_unpicklable(x):
    if x == 2:
        return threading.Lock()  # no pickler can send a lock back
    return os.getpid()


class NeedsTwoArgumentsError(Exception):
    """Pickles, but cannot unpickle: its args do not match its __init__."""

    def __init__(self, left, right):
        super().__init__(f"{left} and {right}")


class HoldsALockError(Exception):
    """Cannot even be pickled."""

    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


def raise_needs_two(x):
    if x == 3:
        raise NeedsTwoArgumentsError("left", "right")
    return x


def raise_holds_a_lock(x):
    if x == 3:
        raise HoldsALockError("locked up")
    return x


def broken_setup():
    raise RuntimeError("no model here")


def with_state(state, x):
    return state, x


async def async_with_state(state, x):
    await asyncio.sleep(0)
    return state, x


def die_on_3(x):
    if x == 3:
        time.sleep(0.1)
        os._exit(1)
    return x


def die_on_3_while_others_work(x):
    if x == 3:
        os._exit(1)
    time.sleep(0.2)  # other chunks are still in flight when the worker dies
    return x


# helpers -------------------------------------------------------------------------------------


async def read_into(outputs, pipeline):
    """Append each output as it arrives, so the test sees what came before a failure."""
    async for out in pipeline:
        outputs.append(out)


def pipework_notes(exc):
    return [note for note in getattr(exc, "__notes__", []) if note.startswith("pipework")]


def everything_said(exc):
    """The message and the notes: where an error names its stage and item is a detail."""
    return "\n".join([str(exc), *getattr(exc, "__notes__", [])])


def gated_source(good, gate, bad):
    """Yield ``good`` items, wait for ``gate``, then yield ``bad``.

    The test opens the gate once it has the outputs of the good items, so the
    worker pids are known before the failure, whatever the timing.
    """

    async def source():
        for i in range(good):
            yield i
        await gate.wait()
        yield bad

    return source()


async def pids_then_failure(stage_options, bad, good=4):
    """Run a process stage over good items then ``bad``; return the pids seen and the error."""
    gate = asyncio.Event()
    pipeline = Pipeline(gated_source(good, gate, bad)).map(**stage_options)
    pids = []
    with anyio.fail_after(20):
        try:
            async for pid in pipeline:
                pids.append(pid)
                if len(pids) == good:
                    gate.set()
        except Exception as exc:
            assert len(pids) == good
            return set(pids), exc
    pytest.fail("the run did not fail")


# the first failure, as itself ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_run_raises_the_original_exception_with_a_note(mode):
    pipeline = Pipeline(range(20), buffer=4).map(in_mode(mode, fail_on_7), **where(mode))
    with pytest.raises(ValueError, match="bad item 7") as info:
        await pipeline.run()
    assert type(info.value) is ValueError
    assert pipework_notes(info.value) == [
        f"pipework: in stage #1 'fail_on_7' ({mode} map), on item 7: 7"
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_async_for_raises_the_original_exception_after_the_good_outputs(mode):
    outputs = []
    pipeline = Pipeline(range(20)).map(in_mode(mode, fail_on_7), **where(mode))
    with pytest.raises(ValueError, match="bad item 7") as info:
        await read_into(outputs, pipeline)
    assert outputs == list(range(len(outputs)))
    assert len(outputs) <= 7
    assert type(info.value) is ValueError
    assert "on item 7: 7" in pipework_notes(info.value)[0]


@pytest.mark.parametrize("mode", MODES)
async def test_many_failures_raise_one_exception_not_a_group(mode):
    with pytest.raises(ValueError, match="bad item") as info:
        await Pipeline(range(40)).map(in_mode(mode, fail_from_3), **where(mode)).run()
    assert type(info.value) is ValueError
    assert len(pipework_notes(info.value)) == 1


@pytest.mark.parametrize("on", [None, "thread"])
async def test_pipework_map_raises_the_original_exception(on):
    options = {} if on is None else {"on": on}
    with pytest.raises(ValueError, match="bad item 7") as info:
        await pipework.map(fail_on_7, range(20), workers=2, **options)
    kind = on or "process"
    assert pipework_notes(info.value) == [
        f"pipework: in stage #1 'fail_on_7' ({kind} map), on item 7: 7"
    ]


async def test_pipework_map_of_an_async_function_raises_the_original_exception():
    with pytest.raises(ValueError, match="bad item 7") as info:
        await pipework.map(in_mode("async", fail_on_7), range(20), concurrency=3)
    assert "(async map), on item 7: 7" in pipework_notes(info.value)[0]


@pytest.mark.parametrize("mode", MODES)
async def test_the_note_gives_the_source_index_after_a_filter(mode):
    # Values are ten times their index; after the filter, 140 sits at
    # position 7 of the stream, but it is item 14 of the source.
    pipeline = (
        Pipeline([10 * i for i in range(30)], buffer=3)
        .filter(lambda x: x % 20 == 0, buffer=2)
        .map(in_mode(mode, fail_on_140), **where(mode))
    )
    with pytest.raises(KeyError) as info:
        await pipeline.run()
    assert pipework_notes(info.value) == [
        f"pipework: in stage #2 'fail_on_140' ({mode} map), on item 14: 140"
    ]


async def test_the_note_gives_the_source_index_after_a_flat_map():
    pipeline = (
        Pipeline(range(30))
        .flat_map(lambda x: [x * 10] * (x % 3), on="process", workers=2)
        .map(fail_on_140, on="thread")
    )
    with pytest.raises(KeyError) as info:
        await pipeline.run()
    assert "on item 14: 140" in pipework_notes(info.value)[0]


async def test_a_failing_sink_names_itself_and_the_item():
    def save(x):
        if x == "5":
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full") as info:
        await Pipeline(range(10), buffer=2).map(str).sink(save).run()
    assert pipework_notes(info.value) == ["pipework: in stage #2 'save' (sink), on item 5: '5'"]


# failures in worker processes ----------------------------------------------------------------


async def test_a_process_failure_carries_the_worker_traceback():
    with pytest.raises(ValueError, match="bad item 7") as info:
        await Pipeline(range(20)).map(fail_on_7, on="process", workers=2).run()
    cause = info.value.__cause__
    assert isinstance(cause, pipework.RemoteTraceback)
    assert "fail_on_7" in cause.text
    assert "ValueError: bad item 7" in cause.text
    assert "fail_on_7" in str(cause)


async def test_a_function_sent_by_value_shows_its_own_file_and_line_in_the_worker_traceback():
    # cloudpickle names the file of a lambda or closure "<dynamic-code>", which
    # left the worker's traceback without a file, a line or the source.
    def fails_here(x):
        raise ValueError(f"bad {x}")  # the line the traceback must show

    with pytest.raises(ValueError, match="bad 0") as info:
        await Pipeline(range(2)).map(fails_here, on="process", workers=1).run()
    text = info.value.__cause__.text
    assert "<dynamic-code>" not in text
    assert f'File "{__file__}"' in text
    assert 'raise ValueError(f"bad {x}")  # the line the traceback must show' in text


@pytest.mark.parametrize("mode", ["inline", "async", "thread"])
async def test_an_in_process_failure_keeps_its_own_traceback(mode):
    with pytest.raises(ValueError, match="bad item 7") as info:
        await Pipeline(range(20)).map(in_mode(mode, fail_on_7), **where(mode)).run()
    assert not isinstance(info.value.__cause__, pipework.RemoteTraceback)
    frames = []
    tb = info.value.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert "fail_on_7" in frames


@pytest.mark.parametrize(
    ("fn", "type_name", "message"),
    [
        (raise_needs_two, "NeedsTwoArgumentsError", "left and right"),
        (raise_holds_a_lock, "HoldsALockError", "locked up"),
    ],
)
async def test_an_exception_that_cannot_travel_comes_back_as_remote_error(fn, type_name, message):
    with pytest.raises(pipework.RemoteError) as info:
        await Pipeline(range(10)).map(fn, on="process", workers=2).run()
    error = info.value
    assert error.type_name == type_name
    assert error.message == message
    assert str(error) == f"{type_name}: {message}"
    assert isinstance(error.__cause__, pipework.RemoteTraceback)
    assert fn.__name__ in error.__cause__.text
    assert "on item 3: 3" in pipework_notes(error)[0]


@pytest.mark.parametrize(
    ("fn", "options"),
    [
        (with_state, {"on": "process", "workers": 2}),
        (with_state, {"on": "thread", "workers": 2}),
        (async_with_state, {"concurrency": 2}),
        (with_state, {}),
    ],
    ids=["process", "thread", "async", "inline"],
)
async def test_a_failing_setup_raises_with_a_note_about_setup(fn, options):
    pipeline = Pipeline(range(5)).map(fn, setup=broken_setup, **options)
    with anyio.fail_after(20), pytest.raises(RuntimeError, match="no model here") as info:
        await pipeline.run()
    notes = pipework_notes(info.value)
    assert notes
    assert all("setup" in note for note in notes)
    assert f"'{fn.__name__}'" in notes[0]
    if options.get("on") == "process":
        assert "broken_setup" in info.value.__cause__.text


def stall_the_loop_once(x):
    # While the loop stands still, the worker dies and the pool fails every
    # pending chunk; the loop then sees all those failures at once, as it may
    # whenever it is busy.
    if x == 0:
        time.sleep(0.5)
    return x


@pytest.mark.parametrize("scene", ["others-busy", "loop-stalled"])
async def test_a_dying_worker_raises_a_broken_pool_with_one_note(scene):
    pipeline = Pipeline(range(10))
    if scene == "others-busy":
        pipeline = pipeline.map(die_on_3_while_others_work, on="process", workers=2, chunksize=1)
    else:
        pipeline = pipeline.map(die_on_3, on="process", workers=2, chunksize=1)
        pipeline = pipeline.map(stall_the_loop_once)
    with anyio.fail_after(20), pytest.raises(BrokenExecutor) as info:
        await pipeline.run()
    notes = pipework_notes(info.value)
    # One failure, one note: the same exception object reaches every pending
    # chunk, and a note per chunk would blame items that did nothing wrong.
    assert len(notes) == 1, notes
    assert "(process map)" in notes[0]
    assert "'die_on_3" in notes[0]
    # The pool cannot tell which chunk a dead worker held. The note may list
    # the chunks in flight, but it must not name one innocent item as the culprit.
    assert set(re.findall(r"\bitem (\d+)\b", notes[0])) <= {"3"}, notes[0]


# pickling ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [threading.Lock(), (i for i in range(3))], ids=["lock", "generator"]
)
async def test_an_unpicklable_item_is_named_promptly(bad):
    pids, error = await pids_then_failure(
        {"fn": pid_unless_negative, "on": "process", "workers": 2, "chunksize": 1}, bad
    )
    assert isinstance(error, pipework.UnpicklableError)
    assert isinstance(error, TypeError)
    said = everything_said(error)
    assert "#1 'pid_unless_negative' (process map)" in said
    assert re.search(r"\bitem 4\b", said), said
    assert pids
    assert not [pid for pid in pids if alive(pid)]


async def test_an_unpicklable_item_in_a_chunk_of_many_is_named():
    items = [0, 1, 2, threading.Lock(), 4, 5]
    pipeline = Pipeline(items).map(pid_unless_negative, on="process", workers=1, chunksize=6)
    with anyio.fail_after(20), pytest.raises(pipework.UnpicklableError) as info:
        await pipeline.run()
    assert re.search(r"\bitem 3\b", everything_said(info.value))


async def test_an_unpicklable_item_error_has_the_pickling_error_as_cause():
    # UnpicklableError documents: "__cause__ is pickle's own error".
    pipeline = Pipeline([threading.Lock()]).map(pid_unless_negative, on="process", workers=1)
    with anyio.fail_after(20), pytest.raises(pipework.UnpicklableError) as info:
        await pipeline.run()
    assert isinstance(info.value.__cause__, TypeError | pickle.PicklingError)
    assert "_thread.lock" in str(info.value.__cause__)


async def test_an_unpicklable_result_is_an_unpicklable_error():
    pids, error = await pids_then_failure(
        {"fn": pid_or_unpicklable, "on": "process", "workers": 2, "chunksize": 1}, 2, good=2
    )
    assert isinstance(error, pipework.UnpicklableError)
    said = everything_said(error)
    assert "#1 'pid_or_unpicklable' (process map)" in said
    assert "result" in said
    assert re.search(r"\bitem 2\b", said), said
    assert pids
    assert not [pid for pid in pids if alive(pid)]


# the source and the event loop ---------------------------------------------------------------


def sync_broken_source():
    yield from range(5)
    raise OSError("disk gone")


async def async_broken_source():
    for i in range(5):
        await asyncio.sleep(0)
        yield i
    raise OSError("disk gone")


@pytest.mark.parametrize(
    ("make_source", "buffer"),
    [(sync_broken_source, 1), (sync_broken_source, 128), (async_broken_source, 128)],
    ids=["sync-buffer-1", "sync-buffer-128", "async"],
)
async def test_a_failing_source_raises_the_original_exception_with_a_note(make_source, buffer):
    pipeline = Pipeline(make_source(), buffer=buffer, name="disk").map(str)
    with pytest.raises(OSError, match="disk gone") as info:
        await pipeline.run()
    assert type(info.value) is OSError
    assert pipework_notes(info.value) == [
        "pipework: the source #0 'disk' (source) raised after yielding 5 items"
    ]


async def later(x):
    return x


def forgot_async(x):
    return later(x)


@pytest.mark.parametrize("op", ["map", "filter", "flat_map", "sink"])
async def test_a_sync_function_returning_a_coroutine_is_a_type_error(op):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline = getattr(Pipeline(range(5)), op)(forgot_async)
        with pytest.raises(TypeError, match="async def") as info:
            await pipeline.run()
        # The coroutines are unreachable now; any that was not closed warns when collected.
        del info
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []


async def test_after_a_process_failure_no_worker_is_alive():
    pids, error = await pids_then_failure(
        {"fn": pid_unless_negative, "on": "process", "workers": 2, "chunksize": 1}, -1
    )
    assert isinstance(error, ValueError)
    assert "on item 4: -1" in pipework_notes(error)[0]
    assert pids
    assert os.getpid() not in pids
    assert not [pid for pid in pids if alive(pid)]


class SharedStateError(Exception):
    """Copied the way tblib's reducer (installed by distributed) copies: one __dict__ for both."""


def _rebuild_sharing(args, state):
    clone = SharedStateError(*args)
    clone.__dict__ = state  # the very dict of the original
    return clone


def _reduce_sharing(exc):
    return _rebuild_sharing, (exc.args, exc.__dict__)


def test_one_exception_for_two_items_keeps_each_items_note_under_a_sharing_reducer():
    import copyreg

    from pipework._errors import annotate

    copyreg.pickle(SharedStateError, _reduce_sharing)
    try:
        shared = SharedStateError("one for all")
        first = annotate(shared, "#1 's' (inline map)", 0, "a")
        second = annotate(shared, "#1 's' (inline map)", 1, "b")
    finally:
        del copyreg.dispatch_table[SharedStateError]
    assert first is shared
    assert second is not shared
    assert [n for n in first.__notes__ if "on item" in n] == [
        "pipework: in stage #1 's' (inline map), on item 0: 'a'"
    ]
    assert [n for n in second.__notes__ if "on item" in n] == [
        "pipework: in stage #1 's' (inline map), on item 1: 'b'"
    ]
