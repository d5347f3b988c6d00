"""Checking a stage's settings, and deciding where its function runs, when it is built.

Each check names the stage (``where``) and says what would work instead, so a
setting that cannot work fails at the line that wrote it.
"""

from __future__ import annotations

import functools
import inspect
import math
from concurrent.futures import Executor
from typing import Any, Literal

from .._executors._backend import Backend
from .._executors._dask import is_dask_client
from .._worker._ops import Op

Mode = Literal["inline", "async", "thread", "process", "executor", "backend"]
"""Where a stage's function runs, decided from the function and ``on=``."""


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine: an async def function, partial or object."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, type):
        return False  # calling a class makes an instance, whatever its __call__ does
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object whose __call__ is async def
    )


def generator_kind(fn: object) -> Literal["generator", "async generator"] | None:
    """Whether calling ``fn`` makes a generator or an async generator, rather than a result."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, type):
        return None  # a class makes an instance, as in is_async_callable
    for candidate in (fn, getattr(fn, "__call__", None)):  # noqa: B004 - as in is_async_callable
        if inspect.isasyncgenfunction(candidate):
            return "async generator"
        if inspect.isgeneratorfunction(candidate):
            return "generator"
    return None


def refuse_generators(op: Op, fn: object, where: str) -> None:
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


def batching(
    op: Op, where: str, *, max_size: object, max_wait: object, chunksize: object, chunk_time: object
) -> dict[str, Any]:
    """Return a batch function's ``max_size`` and ``max_wait``, checked; nothing for other ops."""
    if op != "map_batches":
        return {}
    if chunksize is not None or chunk_time is not None:
        raise TypeError(
            f"{where}: a batch function gets batches of max_size= items; "
            "chunksize= and chunk_time= do not apply"
        )
    return {
        "max_size": check_count("max_size", max_size, where),
        "max_wait": check_wait(max_wait, where),
    }


def check_wait(max_wait: object, where: str) -> float | None:
    """Check ``max_wait=``: zero or more seconds, or ``None`` for no limit."""
    if max_wait is None:
        return None
    if isinstance(max_wait, bool) or not isinstance(max_wait, int | float):
        raise TypeError(f"{where}: max_wait= must be a number of seconds or None")
    if math.isnan(max_wait) or max_wait < 0:
        raise ValueError(f"{where}: max_wait= must be zero or more seconds, not {max_wait}")
    return float(max_wait)


def check_fit(mode: Mode, where: str, **options: object) -> None:
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


def mode_of(fn: object, on: object, where: str) -> Mode:
    """Decide where ``fn`` runs: on the loop (async or inline), threads, processes, an executor."""
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
    if isinstance(on, Backend) or is_dask_client(on):
        return "backend"
    raise TypeError(
        f"{where}: on= must be 'thread', 'process', a concurrent.futures.Executor or a "
        f"backend such as pipework.dask(client), not {type(on).__qualname__}"
    )


def check_count(
    what: str, value: object, where: str = "Pipeline()", *, optional: bool = False
) -> Any:
    """Check a count such as ``workers=``: a whole number, at least 1 (or ``None`` if optional)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}: {what}= must be a whole number, not {value!r}")
    if value < 1:
        raise ValueError(f"{where}: {what}= must be at least 1, not {value}")
    return value


def check_seconds(what: str, value: object, where: str) -> float | None:
    """Check a duration such as ``timeout=``: more than zero seconds, or ``None``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where}: {what}= must be a number of seconds or None, not {value!r}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{where}: {what}= must be more than zero seconds, not {value}")
    return float(value)


def check_name(value: object, what: str) -> str:
    """Check a name given to a stage: a non-empty string."""
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what}= must be a non-empty string, not {value!r}")
    return value


def callable_name(fn: object) -> str:
    """Name a stage after its function, through any ``functools.partial``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return str(getattr(fn, "__name__", None) or type(fn).__name__)
