"""What each stage is, checked when the pipeline is built.

A spec is a frozen description; building runs nothing. Every check that can
be made without running happens here, so configuration that cannot work
fails at the line that wrote it, not minutes into a run.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import AsyncIterable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeAlias

from .._worker._ops import Op
from .._worker._payload import pickle_payload
from ._options import ErrorHandler, On, Retry, check_errors, check_retry

Mode = Literal["inline", "async", "thread", "process", "executor"]

DEFAULT_CONCURRENCY = 16
"""Calls an async stage keeps in flight by default."""


@dataclass(frozen=True, slots=True, weakref_slot=True)
class SourceSpec:
    """Where items come from."""

    source: Iterable[Any] | AsyncIterable[Any]
    name: str
    buffer: int | None

    @property
    def kind(self) -> str:
        """Describe the stage for reports and errors."""
        return "source"


@dataclass(frozen=True, slots=True)
class MapSpec:
    """A map, filter or flat_map, and where its function runs."""

    op: Op
    fn: Callable[..., Any]
    name: str
    mode: Mode
    on: On
    workers: int | None
    concurrency: int
    setup: Callable[[], Any] | None
    ordered: bool
    buffer: int | None
    chunksize: int | None
    # The function and setup, pickled once at build time for process stages,
    # which both proves they can travel and saves pickling them per run.
    payload: bytes | None
    retry: Retry | None = None
    errors: ErrorHandler = "raise"
    timeout: float | None = None
    chunk_time: float | None = None
    # For a batch function (op "map_batches"): the most items per call, and how long
    # the oldest item of a batch that is not full may wait for company.
    max_size: int | None = None
    max_wait: float | None = None
    # The most items the stage holds at once, taken and not yet put out.
    max_in_flight: int | None = None

    @property
    def kind(self) -> str:
        """Describe the stage for reports and errors, such as ``process map``."""
        return f"{self.mode} {self.op}"


@dataclass(frozen=True, slots=True)
class BatchSpec:
    """Groups items into lists by size and by the oldest item's wait."""

    size: int
    max_wait: float | None
    name: str
    buffer: int | None

    @property
    def kind(self) -> str:
        """Describe the stage for reports and errors."""
        return "batch"


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """Consumes every item, in order; the end of a pipeline."""

    fn: Callable[[Any], Any]
    name: str
    is_async: bool

    @property
    def kind(self) -> str:
        """Describe the stage for reports and errors."""
        return "sink"


@dataclass(frozen=True, slots=True)
class ZipSpec:
    """Joins branches of one source into a tuple per source item, in order."""

    name: str
    buffer: int | None

    @property
    def kind(self) -> str:
        """Describe the stage for reports and errors."""
        return "zip"


@dataclass(frozen=True, slots=True)
class MergeSpec:
    """Passes on every item of every input, as it comes."""

    name: str
    buffer: int | None

    @property
    def kind(self) -> str:
        """Describe the stage for reports and errors."""
        return "merge"


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """Sends each item to one of ``parts`` outputs, chosen by its key."""

    parts: int
    key: Callable[[Any], Any]
    name: str
    buffer: int | None

    @property
    def kind(self) -> str:
        """Describe the stage for reports and errors."""
        return "partition"


StageSpec: TypeAlias = (
    SourceSpec | MapSpec | BatchSpec | SinkSpec | ZipSpec | MergeSpec | PartitionSpec
)


def label(index: int, spec: StageSpec) -> str:
    """Name a stage in messages: its position, name and kind, e.g. ``#2 'parse' (process map)``."""
    return f"#{index} {spec.name!r} ({spec.kind})"


def source_spec(source: object, *, name: str, buffer: int | None) -> SourceSpec:
    """Check a pipeline's source."""
    if inspect.iscoroutine(source):
        source.close()
        raise TypeError(
            "Pipeline() got a coroutine; pass an iterable, an async iterable "
            "or an async generator, not the result of calling an async def function"
        )
    if inspect.isasyncgenfunction(source) or inspect.isgeneratorfunction(source):
        raise TypeError(
            f"Pipeline() got the generator function {_callable_name(source)!r}; "
            "call it and pass its generator"
        )
    if not isinstance(source, Iterable | AsyncIterable):
        raise TypeError(
            f"Pipeline() needs an iterable or an async iterable, not {type(source).__qualname__}"
        )
    if isinstance(source, str | bytes | bytearray | memoryview):
        # Iterable, but almost always a slip for a list of one: Pipeline(url).
        kind = type(source).__qualname__
        raise TypeError(
            f"Pipeline() got a {kind}, which would stream its "
            f"{'characters' if isinstance(source, str) else 'bytes'} one by one; for one item, "
            f"pass a list: Pipeline([value]); to stream its {kind} parts, pass iter(value)"
        )
    return SourceSpec(
        source, name=_name(name, "name"), buffer=_count("buffer", buffer, optional=True)
    )


def map_spec(
    op: Op,
    fn: object,
    *,
    index: int,
    on: object,
    workers: object,
    concurrency: object,
    setup: object,
    ordered: object,
    buffer: object,
    chunksize: object,
    name: object,
    retry: object = None,
    errors: object = "raise",
    timeout: object = None,
    chunk_time: object = None,
    max_size: object = None,
    max_wait: object = None,
    max_in_flight: object = None,
) -> MapSpec:
    """Check a map, filter or flat_map stage and decide where its function runs."""
    if not callable(fn):
        raise TypeError(f"{op}() needs a callable, not {type(fn).__qualname__}")
    stage_name = _callable_name(fn) if name is None else _name(name, "name")
    where = f"stage #{index} {stage_name!r}"
    _refuse_generators(op, fn, where)
    if setup is not None and not callable(setup):
        raise TypeError(f"{where}: setup= must be a callable that takes no arguments")
    if not isinstance(ordered, bool):
        raise TypeError(f"{where}: ordered= must be True or False, not {ordered!r}")
    mode = _mode(fn, on, where)
    _check_fit(
        mode,
        where,
        workers=workers,
        concurrency=concurrency,
        chunksize=chunksize,
        chunk_time=chunk_time,
        timeout=timeout,
    )
    spec = MapSpec(
        op=op,
        fn=fn,
        name=stage_name,
        mode=mode,
        on=on,  # type: ignore[arg-type]  # checked by _mode
        workers=_count("workers", workers, where, optional=True),
        concurrency=_count(
            "concurrency", DEFAULT_CONCURRENCY if concurrency is None else concurrency, where
        ),
        setup=setup,
        ordered=ordered,
        buffer=_count("buffer", buffer, where, optional=True),
        chunksize=_count("chunksize", chunksize, where, optional=True),
        payload=None,
        retry=check_retry(retry, where),
        errors=check_errors(errors, where),
        timeout=_seconds("timeout", timeout, where),
        chunk_time=_seconds("chunk_time", chunk_time, where),
        max_in_flight=_in_flight(max_in_flight, where, chunksize=chunksize, max_size=max_size),
        **_batching(
            op,
            where,
            max_size=max_size,
            max_wait=max_wait,
            chunksize=chunksize,
            chunk_time=chunk_time,
        ),
    )
    if mode == "process":
        payload = pickle_payload(spec.fn, spec.setup, label(index, spec))
        spec = replace(spec, payload=payload)
    return spec


def _in_flight(value: object, where: str, *, chunksize: object, max_size: object) -> int | None:
    limit: int | None = _count("max_in_flight", value, where, optional=True)
    if limit is None:
        return None
    # A chunk (or a batch) never holds more than the stage may: refuse a
    # fixed size that could not fit, rather than shrink it in silence.
    for option, size in (("chunksize", chunksize), ("max_size", max_size)):
        if isinstance(size, int) and size > limit:
            raise ValueError(
                f"{where}: {option}={size} cannot fit in max_in_flight={limit}; "
                "a chunk never holds more than the stage may"
            )
    return limit


def batch_spec(
    size: object, *, index: int, max_wait: object, buffer: object, name: object
) -> BatchSpec:
    """Check a batch stage."""
    where = f"stage #{index} 'batch'"
    wait = _wait(max_wait, where)
    return BatchSpec(
        size=_count("size", size, where),
        max_wait=wait,
        name="batch" if name is None else _name(name, "name"),
        buffer=_count("buffer", buffer, where, optional=True),
    )


def sink_spec(fn: object, *, name: object) -> SinkSpec:
    """Check a sink."""
    if not callable(fn):
        raise TypeError(f"sink() needs a callable, not {type(fn).__qualname__}")
    if generator_kind(fn) is not None:
        raise TypeError(
            f"sink() got the {generator_kind(fn)} function {_callable_name(fn)!r}: calling it "
            "only makes a generator, so its body would never run; write a plain function"
        )
    return SinkSpec(
        fn=fn,
        name=_callable_name(fn) if name is None else _name(name, "name"),
        is_async=is_async_callable(fn),
    )


def zip_spec(*, buffer: object, name: object) -> ZipSpec:
    """Check a zip."""
    return ZipSpec(
        name="zip" if name is None else _name(name, "name"),
        buffer=_count("buffer", buffer, "zip()", optional=True),
    )


def merge_spec(*, buffer: object, name: object) -> MergeSpec:
    """Check a merge."""
    return MergeSpec(
        name="merge" if name is None else _name(name, "name"),
        buffer=_count("buffer", buffer, "merge()", optional=True),
    )


def partition_spec(parts: object, key: object, *, buffer: object, name: object) -> PartitionSpec:
    """Check a partition: ``parts`` outputs, and a key function that picks one for each item."""
    where = "partition()"
    if not callable(key):
        raise TypeError(f"{where}: key= must be a callable, not {type(key).__qualname__}")
    if is_async_callable(key) or generator_kind(key) is not None:
        raise TypeError(
            f"{where}: key= runs on the event loop for every item, so it must be a plain "
            f"function, not {_callable_name(key)!r}; compute an expensive key in a map() first"
        )
    count = _count("n", parts, where)
    if count < 2:  # noqa: PLR2004 - one part would be the pipeline itself
        raise ValueError(f"{where}: n must be at least 2, not {count}")
    return PartitionSpec(
        parts=count,
        key=key,
        name=_callable_name(key) if name is None else _name(name, "name"),
        buffer=_count("buffer", buffer, where, optional=True),
    )


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine: an async def function, partial or object."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object whose __call__ is async def
    )


def generator_kind(fn: object) -> Literal["generator", "async generator"] | None:
    """Whether calling ``fn`` makes a generator or an async generator, rather than a result."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    for candidate in (fn, getattr(fn, "__call__", None)):  # noqa: B004 - as in is_async_callable
        if inspect.isasyncgenfunction(candidate):
            return "async generator"
        if inspect.isgeneratorfunction(candidate):
            return "generator"
    return None


def _refuse_generators(op: Op, fn: object, where: str) -> None:
    """Refuse a generator function where a call must return a value, at once.

    ``map`` would output one generator object per item, and ``filter`` keep
    every item, since a generator is always true. A flat_map takes either
    kind (the items it yields are the outputs), and a batch function may
    yield its results, one per item.
    """
    kind = generator_kind(fn)
    if kind is None or op == "flat_map" or (kind == "generator" and op == "map_batches"):
        return
    if op == "map":
        hint = "use flat_map() to output the items it yields"
    elif op == "filter":
        hint = "a generator object is always true, so every item would pass"
    else:
        hint = "return a list of results from an async def function instead"
    article = "an" if kind == "async generator" else "a"
    raise TypeError(
        f"{where}: {op}() got {article} {kind} function, which makes a generator "
        f"for each call rather than a result; {hint}"
    )


def _batching(
    op: Op, where: str, *, max_size: object, max_wait: object, chunksize: object, chunk_time: object
) -> dict[str, Any]:
    if op != "map_batches":
        return {}
    if chunksize is not None or chunk_time is not None:
        raise TypeError(
            f"{where}: a batch function gets batches of max_size= items; "
            "chunksize= and chunk_time= do not apply"
        )
    return {
        "max_size": _count("max_size", max_size, where),
        "max_wait": _wait(max_wait, where),
    }


def _wait(max_wait: object, where: str) -> float | None:
    if max_wait is None:
        return None
    if isinstance(max_wait, bool) or not isinstance(max_wait, int | float):
        raise TypeError(f"{where}: max_wait= must be a number of seconds or None")
    if math.isnan(max_wait) or max_wait < 0:
        raise ValueError(f"{where}: max_wait= must be zero or more seconds, not {max_wait}")
    return float(max_wait)


def _check_fit(mode: Mode, where: str, **options: object) -> None:
    """Refuse options that mean nothing where the stage's function runs."""
    if mode in {"async", "inline"}:
        if options["workers"] is not None:
            raise TypeError(
                f"{where}: workers= is for thread and process stages; "
                + (
                    "use concurrency= for an async function"
                    if mode == "async"
                    else "pass on='thread' or on='process' to run on workers"
                )
            )
        if options["chunksize"] is not None or options["chunk_time"] is not None:
            raise TypeError(
                f"{where}: chunksize= and chunk_time= are for thread and process stages"
            )
    if options["chunksize"] is not None and options["chunk_time"] is not None:
        raise TypeError(
            f"{where}: chunk_time= sizes adaptive chunks; it cannot go with a fixed chunksize="
        )
    if options["timeout"] is not None and mode == "inline":
        raise TypeError(
            f"{where}: timeout= cannot interrupt a plain function on the event loop; "
            "run it with on='thread' or on='process', or make it async"
        )
    if mode != "async" and options["concurrency"] is not None:
        raise TypeError(
            f"{where}: concurrency= is for async functions; "
            "use workers= with on='thread' or on='process'"
        )


def _mode(fn: object, on: object, where: str) -> Mode:
    if is_async_callable(fn) or generator_kind(fn) == "async generator":
        if on is not None:
            raise TypeError(
                f"{where}: an async def function runs on the event loop; "
                f"on={on!r} is for sync functions"
            )
        return "async"
    if on is None:
        return "inline"
    if isinstance(on, Executor):
        return "executor"
    if isinstance(on, str):
        if on in ("thread", "process"):
            return on  # type: ignore[return-value]  # narrowed by the test above
        raise ValueError(f"{where}: on= must be 'thread', 'process' or an Executor, not {on!r}")
    raise TypeError(
        f"{where}: on= must be 'thread', 'process' or a concurrent.futures.Executor, "
        f"not {type(on).__qualname__}"
    )


def _count(what: str, value: object, where: str = "Pipeline()", *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}: {what}= must be a whole number, not {value!r}")
    if value < 1:
        raise ValueError(f"{where}: {what}= must be at least 1, not {value}")
    return value


def _seconds(what: str, value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where}: {what}= must be a number of seconds or None, not {value!r}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{where}: {what}= must be more than zero seconds, not {value}")
    return float(value)


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what}= must be a non-empty string, not {value!r}")
    return value


def _callable_name(fn: object) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return str(getattr(fn, "__name__", None) or type(fn).__name__)
