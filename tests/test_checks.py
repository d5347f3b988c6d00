"""The build-time checks of `pipework._model._checks`, called directly.

`tests/test_specs.py` shows that a bad stage fails where it is built; here
each check is driven on its own: every good value passes through (converted
as promised), and every bad one gets its own error, naming the stage it was
given as ``where``.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipework import Pipeline
from pipework._model._checks import (
    batching,
    callable_name,
    check_count,
    check_fit,
    check_name,
    check_seconds,
    check_wait,
    generator_kind,
    is_async_callable,
    mode_of,
    refuse_generators,
)

WHERE = "stage #3 'probe'"


def plain(x):
    return x


async def coro(x):
    return x


def gen(x):
    yield x


async def agen(x):
    yield x


class AsyncCall:
    async def __call__(self, x):
        return x


class SyncCall:
    def __call__(self, x):
        return x


class GenCall:
    def __call__(self, x):
        yield x


class AsyncGenCall:
    async def __call__(self, x):
        yield x


class Methods:
    async def fetch(self, x):
        return x

    def parse(self, x):
        return x


def no_options(**changes):
    options = dict.fromkeys(("workers", "chunksize", "chunk_time", "timeout", "concurrency"))
    options.update(changes)
    return options


# Async callables and generators ---------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        coro,
        functools.partial(coro),
        functools.partial(functools.partial(coro), 1),
        AsyncCall(),
        functools.partial(AsyncCall()),
        Methods().fetch,
    ],
    ids=[
        "async def",
        "partial",
        "partial of a partial",
        "object with async __call__",
        "partial of such an object",
        "bound async method",
    ],
)
def test_an_async_callable_is_recognised_through_partials_and_objects(fn):
    assert is_async_callable(fn)


@pytest.mark.parametrize(
    "fn",
    [plain, functools.partial(plain), SyncCall(), Methods().parse, len, str, lambda x: x, agen],
    ids=[
        "def",
        "partial of def",
        "object with sync __call__",
        "bound method",
        "builtin",
        "type",
        "lambda",
        "async generator function",
    ],
)
def test_a_callable_whose_call_returns_no_coroutine_is_not_async(fn):
    assert not is_async_callable(fn)


def test_something_that_is_not_callable_is_not_async():
    assert not is_async_callable(42)
    assert not is_async_callable(None)
    assert generator_kind(42) is None


@pytest.mark.parametrize(
    ("fn", "kind"),
    [
        (gen, "generator"),
        (functools.partial(gen, 1), "generator"),
        (functools.partial(functools.partial(gen), 1), "generator"),
        (GenCall(), "generator"),
        (agen, "async generator"),
        (functools.partial(agen), "async generator"),
        (AsyncGenCall(), "async generator"),
        (plain, None),
        (coro, None),
        (AsyncCall(), None),
        (SyncCall(), None),
        (len, None),
    ],
    ids=[
        "generator function",
        "partial",
        "partial of a partial",
        "object yielding",
        "async generator function",
        "partial of async generator",
        "object yielding async",
        "def",
        "async def",
        "object with async __call__",
        "object with sync __call__",
        "builtin",
    ],
)
def test_generator_kind_tells_generators_from_results(fn, kind):
    assert generator_kind(fn) == kind


# refuse_generators -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "fn"),
    [
        ("map", plain),
        ("map", coro),
        ("filter", plain),
        ("flat_map", gen),
        ("flat_map", agen),
        ("flat_map", GenCall()),
        ("map_batches", gen),
        ("map_batches", plain),
    ],
)
def test_generators_pass_where_their_items_are_the_outputs(op, fn):
    assert refuse_generators(op, fn, WHERE) is None


@pytest.mark.parametrize(
    ("op", "fn", "message"),
    [
        ("map", gen, r"map\(\) got a generator function, .*; use flat_map\(\) to output"),
        ("map", agen, r"map\(\) got an async generator function, .*; use flat_map\(\)"),
        ("map", functools.partial(GenCall()), r"map\(\) got a generator function"),
        ("filter", gen, r"filter\(\) got a generator function, .*always true"),
        ("filter", AsyncGenCall(), r"filter\(\) got an async generator function"),
        (
            "map_batches",
            agen,
            (
                r"map_batches\(\) got an async generator function, .*"
                r"return a list of results from an async def function instead"
            ),
        ),
    ],
)
def test_a_generator_where_a_call_must_return_a_value_is_refused_naming_the_stage(op, fn, message):
    with pytest.raises(TypeError, match=message) as caught:
        refuse_generators(op, fn, WHERE)
    assert str(caught.value).startswith(f"{WHERE}: {op}() got ")
    assert "makes a generator for each call rather than a result" in str(caught.value)


# mode_of ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "on", "mode"),
    [
        (coro, None, "async"),
        (AsyncCall(), None, "async"),
        (agen, None, "async"),
        (functools.partial(agen), None, "async"),
        (plain, None, "inline"),
        (gen, None, "inline"),
        (plain, "thread", "thread"),
        (plain, "process", "process"),
        (gen, "process", "process"),
    ],
)
def test_mode_of_decides_where_a_function_runs(fn, on, mode):
    assert mode_of(fn, on, WHERE) == mode


def test_mode_of_an_executor_is_executor():
    with ThreadPoolExecutor(1) as executor:
        assert mode_of(plain, executor, WHERE) == "executor"
        with pytest.raises(TypeError, match=r"on=<concurrent\.futures\.thread"):
            mode_of(coro, executor, WHERE)


@pytest.mark.parametrize("fn", [coro, AsyncCall(), agen, functools.partial(coro)])
@pytest.mark.parametrize("on", ["thread", "process"])
def test_an_async_function_refuses_any_on(fn, on):
    with pytest.raises(TypeError) as caught:
        mode_of(fn, on, WHERE)
    assert str(caught.value) == (
        f"{WHERE}: an async def function runs on the event loop; on={on!r} is for sync functions"
    )


@pytest.mark.parametrize("on", ["threads", "Process", "", "gpu"])
def test_an_unknown_on_string_is_a_value_error_quoting_it(on):
    with pytest.raises(ValueError) as caught:
        mode_of(plain, on, WHERE)
    assert str(caught.value) == (
        f"{WHERE}: on= must be 'thread', 'process' or an Executor, not {on!r}"
    )


@pytest.mark.parametrize(
    ("on", "type_name"),
    [(42, "int"), (True, "bool"), (ThreadPoolExecutor, "type"), (["thread"], "list")],
)
def test_an_on_of_another_type_is_a_type_error_naming_the_type(on, type_name):
    with pytest.raises(TypeError) as caught:
        mode_of(plain, on, WHERE)
    assert str(caught.value) == (
        f"{WHERE}: on= must be 'thread', 'process', a concurrent.futures.Executor or a "
        f"backend such as pipework.dask(client), not {type_name}"
    )


# check_fit ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("inline", {}),
        ("async", {"concurrency": 4, "timeout": 1.0}),
        ("thread", {"workers": 2, "chunksize": 8, "timeout": 1.0}),
        ("process", {"workers": 2, "chunk_time": 0.1}),
        ("executor", {"chunksize": 3, "timeout": 2.0}),
    ],
)
def test_options_that_fit_where_the_function_runs_pass(mode, options):
    assert check_fit(mode, WHERE, **no_options(**options)) is None


@pytest.mark.parametrize(
    ("mode", "options", "message"),
    [
        ("async", {"workers": 2}, "workers= is for thread and process stages; use concurrency="),
        (
            "inline",
            {"workers": 2},
            "workers= is for thread and process stages; pass on='thread' or on='process'",
        ),
        ("async", {"chunksize": 4}, "chunksize= and chunk_time= are for thread and process"),
        ("inline", {"chunk_time": 0.1}, "chunksize= and chunk_time= are for thread and process"),
        ("thread", {"chunksize": 4, "chunk_time": 0.1}, "it cannot go with a fixed chunksize="),
        ("process", {"chunksize": 4, "chunk_time": 0.1}, "it cannot go with a fixed chunksize="),
        ("inline", {"timeout": 1.0}, "timeout= cannot interrupt a plain function"),
        ("inline", {"concurrency": 2}, "concurrency= is for async functions; use workers="),
        ("thread", {"concurrency": 2}, "concurrency= is for async functions"),
        ("process", {"concurrency": 2}, "concurrency= is for async functions"),
        ("executor", {"concurrency": 2}, "concurrency= is for async functions"),
    ],
)
def test_options_that_mean_nothing_where_the_function_runs_are_refused(mode, options, message):
    with pytest.raises(TypeError) as caught:
        check_fit(mode, WHERE, **no_options(**options))
    assert str(caught.value).startswith(f"{WHERE}: ")
    assert message in str(caught.value)


# batching -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["map", "filter", "flat_map"])
def test_batching_is_nothing_for_other_operations_whatever_the_values(op):
    assert batching(op, WHERE, max_size="x", max_wait=-1, chunksize=4, chunk_time=1.0) == {}


def test_batching_checks_and_returns_a_batch_functions_bounds():
    assert batching(
        "map_batches", WHERE, max_size=32, max_wait=1, chunksize=None, chunk_time=None
    ) == {"max_size": 32, "max_wait": 1.0}
    got = batching("map_batches", WHERE, max_size=1, max_wait=None, chunksize=None, chunk_time=None)
    assert got == {"max_size": 1, "max_wait": None}
    assert isinstance(
        batching("map_batches", WHERE, max_size=2, max_wait=0, chunksize=None, chunk_time=None)[
            "max_wait"
        ],
        float,
    )


@pytest.mark.parametrize(("chunksize", "chunk_time"), [(4, None), (None, 0.1), (4, 0.1)])
def test_batching_refuses_chunk_settings_for_a_batch_function(chunksize, chunk_time):
    with pytest.raises(TypeError) as caught:
        batching(
            "map_batches",
            WHERE,
            max_size=8,
            max_wait=None,
            chunksize=chunksize,
            chunk_time=chunk_time,
        )
    assert str(caught.value) == (
        f"{WHERE}: a batch function gets batches of max_size= items; "
        "chunksize= and chunk_time= do not apply"
    )


@pytest.mark.parametrize(
    ("max_size", "max_wait", "error", "message"),
    [
        (0, None, ValueError, "max_size= must be at least 1, not 0"),
        (2.0, None, TypeError, "max_size= must be a whole number, not 2.0"),
        (None, None, TypeError, "max_size= must be a whole number, not None"),
        (4, -0.5, ValueError, "max_wait= must be zero or more seconds, not -0.5"),
        (4, "1", TypeError, "max_wait= must be a number of seconds or None"),
    ],
)
def test_batching_refuses_bad_bounds_naming_the_stage(max_size, max_wait, error, message):
    with pytest.raises(error) as caught:
        batching(
            "map_batches",
            WHERE,
            max_size=max_size,
            max_wait=max_wait,
            chunksize=None,
            chunk_time=None,
        )
    assert str(caught.value) == f"{WHERE}: {message}"


# check_wait and check_seconds --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), (0, 0.0), (0.0, 0.0), (2, 2.0), (0.25, 0.25)]
)
def test_check_wait_takes_zero_or_more_seconds_as_a_float(value, expected):
    got = check_wait(value, WHERE)
    assert got == expected
    assert got is None or type(got) is float


def test_check_wait_takes_an_endless_wait():
    assert check_wait(math.inf, WHERE) == math.inf


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-1, ValueError, "max_wait= must be zero or more seconds, not -1"),
        (-1e-9, ValueError, "max_wait= must be zero or more seconds, not -1e-09"),
        (math.nan, ValueError, "max_wait= must be zero or more seconds, not nan"),
        (-math.inf, ValueError, "max_wait= must be zero or more seconds, not -inf"),
        (True, TypeError, "max_wait= must be a number of seconds or None"),
        (False, TypeError, "max_wait= must be a number of seconds or None"),
        ("1", TypeError, "max_wait= must be a number of seconds or None"),
        ([1], TypeError, "max_wait= must be a number of seconds or None"),
    ],
)
def test_check_wait_refuses_what_is_not_zero_or_more_seconds(value, error, message):
    with pytest.raises(error) as caught:
        check_wait(value, WHERE)
    assert str(caught.value) == f"{WHERE}: {message}"


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), (1, 1.0), (0.001, 0.001), (math.inf, math.inf)]
)
def test_check_seconds_takes_more_than_zero_seconds_as_a_float(value, expected):
    got = check_seconds("timeout", value, WHERE)
    assert got == expected
    assert got is None or type(got) is float


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "timeout= must be more than zero seconds, not 0"),
        (0.0, ValueError, "timeout= must be more than zero seconds, not 0.0"),
        (-2, ValueError, "timeout= must be more than zero seconds, not -2"),
        (math.nan, ValueError, "timeout= must be more than zero seconds, not nan"),
        (True, TypeError, "timeout= must be a number of seconds or None, not True"),
        ("5", TypeError, "timeout= must be a number of seconds or None, not '5'"),
    ],
)
def test_check_seconds_refuses_what_is_not_more_than_zero_seconds(value, error, message):
    with pytest.raises(error) as caught:
        check_seconds("timeout", value, WHERE)
    assert str(caught.value) == f"{WHERE}: {message}"


# check_count --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 2, 10**9])
def test_check_count_returns_a_whole_number_of_one_or_more_as_it_is(value):
    assert check_count("workers", value, WHERE) is value


def test_check_count_takes_none_only_when_optional():
    assert check_count("workers", None, WHERE, optional=True) is None
    with pytest.raises(TypeError, match=r"workers= must be a whole number, not None"):
        check_count("workers", None, WHERE)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "buffer= must be at least 1, not 0"),
        (-3, ValueError, "buffer= must be at least 1, not -3"),
        (True, TypeError, "buffer= must be a whole number, not True"),
        (1.0, TypeError, "buffer= must be a whole number, not 1.0"),
        ("4", TypeError, "buffer= must be a whole number, not '4'"),
    ],
)
def test_check_count_refuses_what_is_not_a_count(value, error, message):
    with pytest.raises(error) as caught:
        check_count("buffer", value, WHERE, optional=True)
    assert str(caught.value) == f"{WHERE}: {message}"


def test_check_count_names_the_pipeline_by_default():
    with pytest.raises(ValueError, match=r"^Pipeline\(\): buffer= must be at least 1, not 0$"):
        check_count("buffer", 0)


# check_name and callable_name --------------------------------------------------------


@pytest.mark.parametrize("value", ["x", "fetch pages", "#1"])
def test_check_name_returns_a_non_empty_string(value):
    assert check_name(value, "name") is value


@pytest.mark.parametrize(("value", "shown"), [("", "''"), (None, "None"), (3, "3"), (b"x", "b'x'")])
def test_check_name_refuses_anything_else(value, shown):
    with pytest.raises(TypeError) as caught:
        check_name(value, "name")
    assert str(caught.value) == f"name= must be a non-empty string, not {shown}"


class Nameless:
    __name__ = ""

    def __call__(self, x):
        return x


@pytest.mark.parametrize(
    ("fn", "name"),
    [
        (plain, "plain"),
        (functools.partial(plain), "plain"),
        (functools.partial(functools.partial(coro), 1), "coro"),
        (AsyncCall(), "AsyncCall"),
        (functools.partial(SyncCall(), 1), "SyncCall"),
        (Methods().parse, "parse"),
        (len, "len"),
        (lambda x: x, "<lambda>"),
        (Nameless(), "Nameless"),
    ],
)
def test_callable_name_names_a_stage_after_its_function(fn, name):
    assert callable_name(fn) == name


class Job:
    """A class whose instances are async callables: the class itself is not one."""

    def __init__(self, x):
        self.x = x

    async def __call__(self):
        return self.x


class Rows:
    """A class whose instances are generator functions: calling the class makes an instance."""

    def __init__(self, x):
        self.x = x

    def __call__(self):
        yield self.x


def test_a_class_is_judged_by_what_calling_it_makes_not_by_its_instances_call():
    assert not is_async_callable(Job)
    assert is_async_callable(Job(1))
    assert generator_kind(Rows) is None
    assert generator_kind(Rows(1)) == "generator"
    assert not is_async_callable(functools.partial(Job))


async def test_a_class_as_a_stage_function_builds_an_instance_per_item():
    made = [x async for x in Pipeline([1, 2]).map(Rows).map(lambda rows: list(rows()))]
    assert made == [[1], [2]]
    jobs = [x async for x in Pipeline([3]).map(Job)]
    assert [type(job) for job in jobs] == [Job]
    assert await jobs[0]() == 3
