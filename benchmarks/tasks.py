"""The work each benchmark gives its contenders; these functions run in worker processes.

CPU tasks do a fixed number of loop iterations, calibrated once per run in
the parent, rather than spinning until a clock says stop: a clock-bound spin
takes the same wall time whether or not it gets a core, so it would show a
perfect speedup on a machine with no free core at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def noop(item: Any) -> Any:
    """Return the item: the cost of moving it is all there is to measure."""
    return item


def burn(item: Any, iterations: int) -> Any:
    """Do ``iterations`` steps of pure-Python arithmetic, then return the item."""
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return item if total >= 0 else None


async def call_async(fn: Callable[[Any], Any], item: Any) -> Any:
    """Run a plain function as a coroutine, for pools that only take ``async def``."""
    return fn(item)


TASKS: dict[str, Callable[..., Any]] = {"noop": noop, "burn": burn}


def iterations_for(seconds: float, *, trials: int = 5) -> int:
    """Return how many `burn` iterations take about ``seconds`` in this process."""
    probe = 200_000
    best = min(_time_burn(probe) for _ in range(trials))
    return max(1, round(probe * seconds / best))


def _time_burn(iterations: int) -> float:
    start = time.perf_counter()
    burn(0, iterations)
    return time.perf_counter() - start


def make_items(kind: str, n: int, mbytes: int = 0) -> list[Any]:
    """Build the inputs: ``n`` ints, or ``n`` float64 arrays of ``mbytes`` MB each."""
    if kind == "ints":
        return list(range(n))
    import numpy as np

    length = mbytes * 1_000_000 // 8
    return [np.full(length, float(i)) for i in range(n)]


def fingerprint(value: Any) -> Any:
    """Summarise an output so results can be checked without comparing whole arrays."""
    if isinstance(value, int):
        return value
    return (value.shape, float(value.flat[0]))


def check(items: list[Any], outputs: Any) -> None:
    """Raise unless ``outputs`` are ``items`` (every task returns its item), in any order.

    Some contenders (pypeln) emit in completion order, so order is not checked;
    a count is all a pipeline that drops its outputs can be checked by.
    """
    if isinstance(outputs, int):
        got, want = outputs, len(items)
    else:
        got = sorted(fingerprint(out) for out in outputs)
        want = sorted(fingerprint(item) for item in items)
    if got != want:
        raise AssertionError(f"wrong outputs: {_short(got)} != {_short(want)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
