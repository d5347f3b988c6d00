"""What each stage is, checked when the pipeline is built.

A spec is a frozen description; building runs nothing. Every check that can
be made without running happens here, so configuration that cannot work
fails at the line that wrote it, not minutes into a run.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from .._executors._backend import Backend
from .._executors._dask import dask, is_dask_client
from .._worker._ops import Op
from .._worker._payload import pickle_payload
from ._checks import (
    Mode,
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
from ._options import ErrorHandler, On, Retry, check_errors, check_retry

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
        if isinstance(self.on, Backend):
            return f"{self.on.name} {self.op}"
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
            f"Pipeline() got the generator function {callable_name(source)!r}; "
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
        source, name=check_name(name, "name"), buffer=check_count("buffer", buffer, optional=True)
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
    stage_name = callable_name(fn) if name is None else check_name(name, "name")
    where = f"stage #{index} {stage_name!r}"
    refuse_generators(op, fn, where)
    if setup is not None and not callable(setup):
        raise TypeError(f"{where}: setup= must be a callable that takes no arguments")
    if not isinstance(ordered, bool):
        raise TypeError(f"{where}: ordered= must be True or False, not {ordered!r}")
    mode = mode_of(fn, on, where)
    if is_dask_client(on):
        on = dask(on)
    check_fit(
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
        workers=check_count("workers", workers, where, optional=True),
        concurrency=check_count(
            "concurrency", DEFAULT_CONCURRENCY if concurrency is None else concurrency, where
        ),
        setup=setup,
        ordered=ordered,
        buffer=check_count("buffer", buffer, where, optional=True),
        chunksize=check_count("chunksize", chunksize, where, optional=True),
        payload=None,
        retry=check_retry(retry, where),
        errors=check_errors(errors, where),
        timeout=check_seconds("timeout", timeout, where),
        chunk_time=check_seconds("chunk_time", chunk_time, where),
        max_in_flight=_in_flight(max_in_flight, where, chunksize=chunksize, max_size=max_size),
        **batching(
            op,
            where,
            max_size=max_size,
            max_wait=max_wait,
            chunksize=chunksize,
            chunk_time=chunk_time,
        ),
    )
    if mode in ("process", "backend"):
        payload = pickle_payload(spec.fn, spec.setup, label(index, spec))
        spec = replace(spec, payload=payload)
    return spec


def _in_flight(value: object, where: str, *, chunksize: object, max_size: object) -> int | None:
    limit: int | None = check_count("max_in_flight", value, where, optional=True)
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
    wait = check_wait(max_wait, where)
    return BatchSpec(
        size=check_count("size", size, where),
        max_wait=wait,
        name="batch" if name is None else check_name(name, "name"),
        buffer=check_count("buffer", buffer, where, optional=True),
    )


def sink_spec(fn: object, *, name: object) -> SinkSpec:
    """Check a sink."""
    if not callable(fn):
        raise TypeError(f"sink() needs a callable, not {type(fn).__qualname__}")
    if generator_kind(fn) is not None:
        raise TypeError(
            f"sink() got the {generator_kind(fn)} function {callable_name(fn)!r}: calling it "
            "only makes a generator, so its body would never run; write a plain function"
        )
    return SinkSpec(
        fn=fn,
        name=callable_name(fn) if name is None else check_name(name, "name"),
        is_async=is_async_callable(fn),
    )


def zip_spec(*, buffer: object, name: object) -> ZipSpec:
    """Check a zip."""
    return ZipSpec(
        name="zip" if name is None else check_name(name, "name"),
        buffer=check_count("buffer", buffer, "zip()", optional=True),
    )


def merge_spec(*, buffer: object, name: object) -> MergeSpec:
    """Check a merge."""
    return MergeSpec(
        name="merge" if name is None else check_name(name, "name"),
        buffer=check_count("buffer", buffer, "merge()", optional=True),
    )


def partition_spec(parts: object, key: object, *, buffer: object, name: object) -> PartitionSpec:
    """Check a partition: ``parts`` outputs, and a key function that picks one for each item."""
    where = "partition()"
    if not callable(key):
        raise TypeError(f"{where}: key= must be a callable, not {type(key).__qualname__}")
    if is_async_callable(key) or generator_kind(key) is not None:
        raise TypeError(
            f"{where}: key= runs on the event loop for every item, so it must be a plain "
            f"function, not {callable_name(key)!r}; compute an expensive key in a map() first"
        )
    count = check_count("n", parts, where)
    if count < 2:  # noqa: PLR2004 - one part would be the pipeline itself
        raise ValueError(f"{where}: n must be at least 2, not {count}")
    return PartitionSpec(
        parts=count,
        key=key,
        name=callable_name(key) if name is None else check_name(name, "name"),
        buffer=check_count("buffer", buffer, where, optional=True),
    )
