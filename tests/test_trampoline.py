"""The worker trampoline (`_worker._trampoline`), run in this process, and the ops it applies."""

from __future__ import annotations

import gc
import pickle
import threading
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor

import cloudpickle
import pytest

import pipework
from pipework._worker import _serial as serial
from pipework._worker import _trampoline as _worker
from pipework._worker._ops import apply, shape
from pipework._worker._trampoline import preload, run_chunk


class BadInitError(Exception):
    """Pickles, but its ``__init__`` cannot be called with its own ``args``."""

    def __init__(self, a, b):
        super().__init__(f"{a}-{b}")


def add(state, x):
    return state + x


def square(x):
    return x * x


def fail_on_three(x):
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def raise_bad_init(x):
    raise BadInitError("left", "right")


def broken_setup():
    raise OSError("no model here")


@pytest.fixture(autouse=True)
def _clean_registry():
    """Give each test an empty per-thread registry in the test's thread."""
    _worker._local.installed.clear()
    _worker._local.pending.clear()
    yield
    _worker._local.installed.clear()
    _worker._local.pending.clear()


def key():
    return uuid.uuid4().hex


def remote(fn, setup=None):
    return cloudpickle.dumps((fn, setup))


def run_remote(k, payload, op, items):
    """Run a chunk as a process pool's worker sees it: items and outcome pickled."""
    packed = run_chunk(k, payload, op, serial.pack(items))
    return packed if packed is None else serial.unpack(packed, unlink=True)


def test_unknown_key_without_payload_asks_for_it():
    assert run_chunk(key(), None, "map", [1, 2]) is None


def test_installs_from_pickled_payload_and_keeps_it():
    k = key()
    results, seconds, failure = run_chunk(k, remote(square), "map", [1, 2, 3])
    assert (results, failure) == ([1, 4, 9], None)
    assert seconds >= 0
    # Installed: the next chunk needs no payload.
    results, _, failure = run_chunk(k, None, "map", [4])
    assert (results, failure) == ([16], None)


def test_installs_from_pickled_lambda():
    offset = 10
    k = key()
    results, _, failure = run_chunk(k, remote(lambda x: x + offset), "map", [1, 2])
    assert (results, failure) == ([11, 12], None)


def test_installs_from_function_and_setup_tuple():
    k = key()
    results, _, failure = run_chunk(k, (add, lambda: 100), "map", [1, 2])
    assert (results, failure) == ([101, 102], None)


def test_installs_from_pickled_function_and_setup():
    results, _, failure = run_chunk(key(), remote(add, lambda: 5), "map", [1])
    assert (results, failure) == ([6], None)


def test_setup_runs_once_per_thread():
    calls = []
    lock = threading.Lock()
    # Each of the two threads must run setup before either goes on, which
    # proves both threads served the stage.
    both = threading.Barrier(2, timeout=10)

    def setup():
        with lock:
            calls.append(threading.get_ident())
        both.wait()
        return threading.get_ident()

    def which(state, _):
        return state, threading.get_ident()

    k = key()
    with ThreadPoolExecutor(2, initializer=preload, initargs=(k, (which, setup))) as pool:
        futures = [pool.submit(run_chunk, k, None, "map", [i]) for i in range(20)]
        outcomes = [f.result() for f in futures]
    assert len(calls) == 2
    assert len(set(calls)) == 2
    for results, _, failure in outcomes:
        assert failure is None
        [(state, thread)] = results
        assert state == thread  # each thread uses its own setup's state


def test_preload_defers_setup_to_the_first_chunk():
    calls = []

    def setup():
        calls.append(1)
        return 1

    k = key()
    preload(k, (add, setup))
    assert calls == []
    assert run_chunk(k, None, "map", [1])[0] == [2]
    assert run_chunk(k, None, "map", [2])[0] == [3]
    assert calls == [1]
    assert k not in _worker._local.pending


def test_failing_item_from_remote_payload_reports_position_and_traceback():
    results, _, failure = run_remote(key(), remote(fail_on_three), "map", [1, 2, 3, 4])
    assert results == [fail_on_three(1), fail_on_three(2)]  # kept, for a policy that goes on
    position, exc, text = failure
    assert position == 2
    assert type(exc) is ValueError
    assert "ValueError: bad item 3" in text
    assert "fail_on_three" in text
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is ValueError
    assert copy.args == ("bad item 3",)


def test_failing_item_from_local_payload_is_the_exception_itself():
    _, _, failure = run_chunk(key(), (fail_on_three, None), "map", [3])
    position, exc, text = failure
    assert position == 0
    assert type(exc) is ValueError
    assert text is None


def test_exception_that_cannot_unpickle_comes_back_as_remote_error():
    with pytest.raises(TypeError):  # the premise: it does not survive a round trip
        pickle.loads(pickle.dumps(BadInitError("a", "b")))
    _, _, failure = run_remote(key(), remote(raise_bad_init), "map", [1])
    position, exc, text = failure
    assert position == 0
    assert isinstance(exc, pipework.RemoteError)
    assert exc.type_name == "BadInitError"
    assert str(exc) == "BadInitError: left-right"
    assert "BadInitError" in text
    copy = pickle.loads(pickle.dumps(exc))  # the stand-in itself travels
    assert (copy.type_name, copy.message) == ("BadInitError", "left-right")


@pytest.mark.parametrize("run", [run_chunk, run_remote], ids=["thread", "process"])
def test_setup_failure_is_position_minus_one_and_installs_nothing(run):
    k = key()
    results, _, failure = run(k, remote(add, broken_setup), "map", [1])
    assert results == []
    position, exc, text = failure
    assert position == -1
    assert type(exc) is OSError
    assert (text is None) == (run is run_chunk)
    assert run(k, None, "map", [1]) is None


def test_a_result_that_cannot_travel_fails_its_item():
    def lock_for_two(x):
        return threading.Lock() if x == 2 else x

    _, _, failure = run_remote(key(), remote(lock_for_two), "map", [1, 2, 3])
    position, exc, text = failure
    assert position == 1
    assert isinstance(exc, pipework.UnpicklableError)
    assert "cannot be pickled to return" in str(exc)
    assert text is None


def test_a_class_sent_by_value_comes_back_as_the_same_class():
    # A class defined in the user's script travels by value with the function;
    # its instances must come back as instances of the parent's own class.
    namespace = {}
    exec("class Point:\n    def __init__(self, x):\n        self.x = x", namespace)  # noqa: S102
    point = namespace["Point"]
    point.__module__ = "__main__"  # as if defined in the script: pickled by value

    results, _, failure = run_remote(key(), remote(point), "map", [1, 2])
    assert failure is None
    assert [type(p) for p in results] == [point, point]
    assert [p.x for p in results] == [1, 2]


def test_registry_keeps_only_the_most_recently_used_stages():
    keys = [key() for _ in range(_worker._MAX_STAGES + 5)]
    busy = keys[0]
    for k in keys:
        run_chunk(k, (square, None), "map", [2])
        run_chunk(busy, None, "map", [2])  # used after every install: never evicted
    assert len(_worker._local.installed) == _worker._MAX_STAGES
    assert run_chunk(keys[1], None, "map", [2]) is None  # least recently used went first
    assert run_chunk(busy, None, "map", [3])[0] == [9]
    assert run_chunk(keys[-1], None, "map", [3])[0] == [9]


@pytest.mark.parametrize(
    ("op", "fn", "expected"),
    [
        ("map", square, [1, 4, 9]),
        ("filter", lambda x: x % 2, [True, False, True]),
        ("filter", lambda x: [] if x == 2 else [x], [True, False, True]),
        ("flat_map", range, [[0], [0, 1], [0, 1, 2]]),
        ("flat_map", lambda x: (str(i) for i in range(x - 1)), [[], ["0"], ["0", "1"]]),
    ],
    ids=["map", "filter", "filter truthiness", "flat_map", "flat_map generator"],
)
def test_apply_shapes_results(op, fn, expected):
    assert apply(fn, op, [1, 2, 3]) == (expected, None)


@pytest.mark.parametrize("op", ["map", "filter", "flat_map"])
def test_apply_stops_at_the_first_failure(op):
    def fn(x):
        if x >= 2:
            raise KeyError(x)
        return [x]

    results, (position, exc) = apply(fn, op, [0, 1, 2, 3])
    assert len(results) == 2
    assert position == 2
    assert exc.args == (2,)


def test_shape_leaves_map_values_alone():
    value = object()
    assert shape("map", value) is value


async def answer():
    return 1


@pytest.mark.parametrize("op", ["filter", "flat_map"])
def test_awaitable_to_filter_or_flat_map_raises_without_never_awaited_warning(op):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TypeError, match=f"the {op} function returned an awaitable"):
            shape(op, answer())
        _, failure = apply(lambda _: answer(), op, [1])
        gc.collect()
    assert isinstance(failure[1], TypeError)
    assert not [w for w in caught if "never awaited" in str(w.message)]
