"""Timing a contender over a workload, inside a `cell` child; and the statistics of the tables."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from . import tasks
from .contenders import RUNNERS


def time_map(
    *,
    contender: str,
    task: str,
    task_args: dict[str, Any],
    kind: str,
    n: int,
    mbytes: int = 0,
    options: dict[str, Any] | None = None,
    repeat: int = 3,
    warmup: int = 0,
    startup_repeat: int = 0,
) -> dict[str, Any]:
    """Time ``repeat`` runs of ``contender`` over ``n`` items, after an untimed warm-up.

    The warm-up starts whatever a contender keeps between calls (the forkserver,
    joblib's workers), so every timed run sees the same program state.
    ``startup_repeat`` calls with a single no-op item give the fixed cost of one
    call: starting and stopping its workers.
    """
    fn = partial(tasks.TASKS[task], **task_args) if task_args else tasks.TASKS[task]
    run = partial(RUNNERS[contender], **(options or {}))
    items = tasks.make_items(kind, n, mbytes)
    if warmup:
        run(fn, items[:warmup])
    startup = [_timed(run, tasks.noop, [0]) for _ in range(startup_repeat)]
    times = [_timed(run, fn, items) for _ in range(repeat)]
    return {"times": times, "startup": startup, "n": n}


def _timed(run: Callable[..., Any], fn: Callable[..., Any], items: list[Any]) -> float:
    start = time.perf_counter()
    outputs = run(fn, items)
    elapsed = time.perf_counter() - start
    tasks.check(items, outputs)
    return elapsed


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile: a value that was measured, not interpolated."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
