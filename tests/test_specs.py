"""Build-time validation: configuration that cannot work fails where it was written."""

from __future__ import annotations

import functools
import gc
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

import pipework
from pipework import Pipeline


def double(x):
    return 2 * x


def keyed(state, x):
    return state + x


async def fetch(x):
    return x


async def fetch_keyed(state, x):
    return state + x


class AsyncCallable:
    async def __call__(self, x):
        return x


class SyncCallable:
    def __call__(self, x):
        return x


def numbers():
    yield 1


async def anumbers():
    yield 1


async def coroutine_source():
    return [1, 2]


def each_digit(x):
    yield from str(x)


async def each_digit_later(x):
    for digit in str(x):
        yield digit


class YieldingCallable:
    def __call__(self, x):
        yield x


def locked_closure():
    lock = threading.Lock()

    def guarded(x):
        with lock:
            return x

    return guarded


def p():
    return Pipeline(range(3))


# (id, build, exception type, regex on the message)
BAD = [
    ("max_in_flight=0", lambda: p().map(double, on="thread", max_in_flight=0), ValueError,
     r"max_in_flight= must be at least 1, not 0"),
    ("max_in_flight='8'", lambda: p().map(double, max_in_flight="8"), TypeError,
     r"max_in_flight= must be a whole number"),
    ("chunksize over max_in_flight",
     lambda: p().map(double, on="process", chunksize=32, max_in_flight=8), ValueError,
     r"chunksize=32 cannot fit in max_in_flight=8"),
    ("max_size over max_in_flight",
     lambda: p().map_batches(lambda xs: xs, max_size=64, max_in_flight=16), ValueError,
     r"max_size=64 cannot fit in max_in_flight=16"),
    ("workers=0", lambda: p().map(double, on="thread", workers=0), ValueError,
     r"workers= must be at least 1, not 0"),
    ("workers=-1", lambda: p().map(double, on="thread", workers=-1), ValueError,
     r"workers= must be at least 1, not -1"),
    ("workers=True", lambda: p().map(double, on="thread", workers=True), TypeError,
     r"workers= must be a whole number, not True"),
    ("workers=1.5", lambda: p().map(double, on="thread", workers=1.5), TypeError,
     r"workers= must be a whole number, not 1\.5"),
    ("concurrency=0", lambda: p().map(fetch, concurrency=0), ValueError,
     r"stage #1 'fetch': concurrency= must be at least 1"),
    ("concurrency=True", lambda: p().map(fetch, concurrency=True), TypeError,
     r"concurrency= must be a whole number"),
    ("buffer=-1", lambda: p().map(double, buffer=-1), ValueError,
     r"buffer= must be at least 1, not -1"),
    ("buffer=0", lambda: p().map(double, buffer=0), ValueError,
     r"buffer= must be at least 1, not 0"),
    ("source buffer=0", lambda: Pipeline(range(3), buffer=0), ValueError,
     r"Pipeline\(\): buffer= must be at least 1"),
    ("batch size=0", lambda: p().batch(0), ValueError,
     r"stage #1 'batch': size= must be at least 1, not 0"),
    ("batch size=True", lambda: p().batch(True), TypeError,
     r"size= must be a whole number"),
    ("batch max_wait=-1", lambda: p().batch(2, max_wait=-1), ValueError,
     r"max_wait= must be zero or more seconds, not -1"),
    ("batch max_wait=nan", lambda: p().batch(2, max_wait=float("nan")), ValueError,
     r"max_wait= must be zero or more seconds, not nan"),
    ("batch max_wait='1'", lambda: p().batch(2, max_wait="1"), TypeError,
     r"max_wait= must be a number of seconds"),
    ("chunksize=0", lambda: p().map(double, on="thread", chunksize=0), ValueError,
     r"chunksize= must be at least 1, not 0"),
    ("map not callable", lambda: p().map(42), TypeError, r"map\(\) needs a callable, not int"),
    ("filter not callable", lambda: p().filter("x"), TypeError,
     r"filter\(\) needs a callable, not str"),
    ("flat_map not callable", lambda: p().flat_map(None), TypeError,
     r"flat_map\(\) needs a callable, not NoneType"),
    ("sink not callable", lambda: p().sink([]), TypeError, r"sink\(\) needs a callable, not list"),
    ("setup not callable", lambda: p().map(keyed, setup=3), TypeError,
     r"stage #1 'keyed': setup= must be a callable"),
    ("on='gpu'", lambda: p().map(double, on="gpu"), ValueError,
     r"on= must be 'thread', 'process' or an Executor, not 'gpu'"),
    ("on=42", lambda: p().map(double, on=42), TypeError,
     r"on= must be .*concurrent\.futures\.Executor or a backend .*, not int"),
    ("async fn on='process'", lambda: p().map(fetch, on="process"), TypeError,
     r"async def function runs on the event loop; on='process' is for sync"),
    ("async fn on='thread'", lambda: p().filter(fetch, on="thread"), TypeError,
     r"on='thread' is for sync functions"),
    ("workers= on async", lambda: p().map(fetch, workers=2), TypeError,
     r"workers= is for thread and process stages; use concurrency="),
    ("concurrency= on process", lambda: p().map(double, on="process", concurrency=4), TypeError,
     r"concurrency= is for async functions"),
    ("concurrency= on inline", lambda: p().map(double, concurrency=4), TypeError,
     r"concurrency= is for async functions"),
    ("workers= on inline", lambda: p().map(double, workers=2), TypeError,
     r"workers= is for thread and process stages; pass on='thread' or on='process'"),
    ("chunksize= on async", lambda: p().map(fetch, chunksize=8), TypeError,
     r"chunksize= and chunk_time= are for thread and process stages"),
    ("chunksize= on inline", lambda: p().flat_map(double, chunksize=8), TypeError,
     r"chunksize= and chunk_time= are for thread and process stages"),
    ("unknown keyword", lambda: p().map(double, colour="red", size=2), TypeError,
     r"map\(\) got unexpected keyword arguments: colour, size"),
    ("ordered='yes'", lambda: p().map(double, ordered="yes"), TypeError,
     r"ordered= must be True or False, not 'yes'"),
    ("name=''", lambda: p().map(double, name=""), TypeError, r"name= must be a non-empty string"),
    ("source name=3", lambda: Pipeline(range(3), name=3), TypeError,
     r"name= must be a non-empty string, not 3"),
    ("Pipeline(42)", lambda: Pipeline(42), TypeError,
     r"needs an iterable or an async iterable, not int"),
    ("Pipeline(coroutine)", lambda: Pipeline(coroutine_source()), TypeError,
     r"got a coroutine; pass an iterable"),
    ("Pipeline(generator function)", lambda: Pipeline(numbers), TypeError,
     r"generator function 'numbers'; call it"),
    ("Pipeline(async generator function)", lambda: Pipeline(anumbers), TypeError,
     r"generator function 'anumbers'; call it"),
    ("Pipeline(str)", lambda: Pipeline("https://example.org"), TypeError,
     r"got a str, which would stream its characters one by one; .*Pipeline\(\[value\]\)"),
    ("Pipeline(bytes)", lambda: Pipeline(b"abc"), TypeError,
     r"got a bytes, which would stream its bytes one by one"),
    ("Pipeline(bytearray)", lambda: Pipeline(bytearray(3)), TypeError, r"got a bytearray"),
    ("map(generator function)", lambda: p().map(each_digit), TypeError,
     r"stage #1 'each_digit': map\(\) got a generator function.*use flat_map\(\)"),
    ("map(async generator function)", lambda: p().map(each_digit_later), TypeError,
     r"map\(\) got an async generator function.*use flat_map\(\)"),
    ("map(partial of a generator)", lambda: p().map(functools.partial(each_digit)), TypeError,
     r"map\(\) got a generator function"),
    ("map(object yielding)", lambda: p().map(YieldingCallable()), TypeError,
     r"map\(\) got a generator function"),
    ("map(generator) on='process'", lambda: p().map(each_digit, on="process"), TypeError,
     r"map\(\) got a generator function"),
    ("filter(generator function)", lambda: p().filter(each_digit), TypeError,
     r"filter\(\) got a generator function.*always true"),
    ("map_batches(async generator)", lambda: p().map_batches(each_digit_later, max_size=2),
     TypeError, r"map_batches\(\) got an async generator function"),
    ("sink(generator function)", lambda: p().sink(each_digit), TypeError,
     r"sink\(\) got the generator function 'each_digit'.*never run"),
    ("async generator on='thread'", lambda: p().flat_map(each_digit_later, on="thread"),
     TypeError, r"runs on the event loop; on='thread' is for sync functions"),
    ("map after sink", lambda: p().sink(print).map(double), AttributeError,
     r"ends with sink\(\) takes no more stages, and has no 'map'"),
    ("batch after sink", lambda: p().sink(print).batch(2), AttributeError,
     r"ends with sink\(\) takes no more stages, and has no 'batch'"),
    ("unpicklable process fn", lambda: p().map(locked_closure(), on="process"),
     pipework.UnpicklableError, r"stage #1 'guarded' \(process map\).*cannot be pickled"),
    ("unpicklable process setup", lambda: p().map(keyed, on="process", setup=locked_closure()),
     pipework.UnpicklableError, r"stage #1 'keyed' \(process map\).*cannot be pickled"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "error", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_configuration_fails_at_build(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_unpicklable_error_is_a_type_error_with_the_pickle_error_as_cause():
    with pytest.raises(TypeError) as caught:
        p().map(locked_closure(), on="process")
    assert isinstance(caught.value, pipework.UnpicklableError)
    assert isinstance(caught.value, pipework.PipeworkError)
    assert caught.value.__cause__ is not None


def test_coroutine_source_is_closed_so_no_never_awaited_warning_escapes():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TypeError):
            Pipeline(coroutine_source())
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_generator_function_source_is_not_called():
    calls = []

    def gen():
        calls.append(1)
        yield 1

    with pytest.raises(TypeError):
        Pipeline(gen)
    assert calls == []


def mode(pipeline):
    return pipeline._graph.tail.spec.mode


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (fetch, "async"),
        (functools.partial(fetch_keyed, 1), "async"),
        (functools.partial(functools.partial(fetch_keyed), 1), "async"),
        (AsyncCallable(), "async"),
        (double, "inline"),
        (functools.partial(keyed, 1), "inline"),
        (SyncCallable(), "inline"),
        (lambda x: x, "inline"),
        (str, "inline"),
    ],
    ids=[
        "async def",
        "partial of async def",
        "nested partial of async def",
        "async __call__",
        "plain function",
        "partial of plain function",
        "sync __call__",
        "lambda",
        "builtin type",
    ],
)
def test_where_a_function_runs_is_inferred(fn, expected):
    assert mode(p().map(fn)) == expected
    assert mode(p().filter(fn)) == expected


def test_on_selects_the_pooled_modes():
    assert mode(p().map(double, on="thread")) == "thread"
    process = p().map(double, on="process")
    assert mode(process) == "process"
    # The function is pickled once, at build time, for process stages only.
    assert isinstance(process._graph.tail.spec.payload, bytes)
    assert p().map(double, on="thread")._graph.tail.spec.payload is None
    with ThreadPoolExecutor(1) as executor:
        assert mode(p().map(double, on=executor)) == "executor"


def test_kind_names_mode_and_operation():
    kinds = [
        node.spec.kind
        for node in p()
        .map(fetch)
        .filter(double, on="thread")
        .flat_map(double)
        .batch(2)
        .sink(print)
        ._graph.nodes
    ]
    assert kinds == ["source", "async map", "thread filter", "inline flat_map", "batch", "sink"]


def test_default_concurrency_and_workers():
    spec = p().map(fetch)._graph.tail.spec
    assert spec.concurrency == 16
    assert spec.workers is None
    assert p().map(double, on="thread", workers=3)._graph.tail.spec.workers == 3


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (p, "source"),
        (lambda: Pipeline(range(3), name="rows"), "rows"),
        (lambda: p().map(double), "double"),
        (lambda: p().map(functools.partial(keyed, 1)), "keyed"),
        (lambda: p().map(AsyncCallable()), "AsyncCallable"),
        (lambda: p().map(lambda x: x), "<lambda>"),
        (lambda: p().map(double, name="twice"), "twice"),
        (lambda: p().batch(2), "batch"),
        (lambda: p().batch(2, name="groups"), "groups"),
        (lambda: p().sink(print), "print"),
        (lambda: p().sink(print, name="out"), "out"),
    ],
    ids=[
        "source",
        "named source",
        "function",
        "partial",
        "callable object",
        "lambda",
        "name=",
        "batch",
        "named batch",
        "sink",
        "named sink",
    ],
)
def test_default_stage_names(build, expected):
    assert build()._graph.tail.spec.name == expected


def test_repr_lists_stage_labels():
    pipeline = p().map(double).batch(2)
    assert repr(pipeline) == (
        "Pipeline(#0 'source' (source) -> #1 'double' (inline map) -> #2 'batch' (batch))"
    )
