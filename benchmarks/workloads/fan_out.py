"""(j) Fan-out and join: a CPU feature on processes and a blocking one on threads, per item."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

from ..contenders import START
from ..measure import median
from ..probe import NotAvailable, run_probe
from ..report import Section, Table, na, rate, ratio, seconds
from ..session import Session

N = 3_000
CPU_SECONDS = 0.0005  # feature A: a pure-Python loop, per item
SLEEP = 0.001  # feature B: a blocking call, per item
IN_FLIGHT = 64  # items the hand-written version lets run at once
WARMUP = 8  # items of the untimed call that starts the forkserver and the imports

ABOUT = f"""\
For each of {{n}} ints, feature A (a pure-Python loop of about {CPU_SECONDS * 1000:g} ms) runs
on worker processes and feature B (`time.sleep({SLEEP:g})`, a blocking call) on threads, and
the two results are joined into one tuple per item, in source order. pipework runs with every
default: `base = Pipeline(items)`, then
`pipework.zip(base.map(feature_a, on="process"), base.map(feature_b, on="thread"))`, read with
`async for`. The hand-written version is what a user of asyncio would write: a
`ProcessPoolExecutor(os.cpu_count())` (workers started by {START}, as elsewhere here), one task
per item that awaits `asyncio.gather(loop.run_in_executor(pool, feature_a, x),
asyncio.to_thread(feature_b, x))` under an `asyncio.Semaphore({IN_FLIGHT})`, and
`asyncio.gather` over the tasks. Both use {os.cpu_count()} processes, and their threads are
the default {min(32, (os.cpu_count() or 1) + 4)} (pipework's thread stage and asyncio's default
executor alike). Each timed call runs in a fresh process after an untimed call of
{WARMUP} items, starts and stops its own process pool, and its joined results are checked
against the expected tuples; "1-item call" is the cost of a call with a single item, and
"after start-up" takes it off. Peers are not run here: they have no fan-out and join."""

LABELS = {
    "pipework": "pipework.zip(base.map(A, on='process'), base.map(B, on='thread'))",
    "asyncio": f"asyncio.gather(run_in_executor(A), to_thread(B)), {IN_FLIGHT} in flight",
}

HEADERS = [
    "variant",
    "items",
    "median time",
    "items/s",
    "items/s after start-up",
    "1-item call",
    "pipework's speed ÷ this one's (after start-up)",
]


def feature_a(x: int, iterations: int) -> int:
    """CPU-bound: the loop of `tasks.burn`, so that its calibration applies."""
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return x * x + total


def feature_b(x: int) -> int:
    """Blocking: holds a thread, not a core."""
    time.sleep(SLEEP)
    return -x


Join = Callable[[Callable[[int], int], Callable[[int], int], list[int]], Awaitable[list[Any]]]


async def _pipework(fa: Callable[[int], int], fb: Callable[[int], int], items: list[int]) -> Any:
    import pipework

    base = pipework.Pipeline(items)
    joined = pipework.zip(base.map(fa, on="process"), base.map(fb, on="thread"))
    return [pair async for pair in joined]


async def _asyncio(fa: Callable[[int], int], fb: Callable[[int], int], items: list[int]) -> Any:
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context(START)
    with ProcessPoolExecutor(os.cpu_count(), mp_context=context) as pool:
        room = asyncio.Semaphore(IN_FLIGHT)

        async def one(x: int) -> tuple[int, int]:
            async with room:
                a, b = await asyncio.gather(
                    loop.run_in_executor(pool, fa, x), asyncio.to_thread(fb, x)
                )
                return a, b

        return await asyncio.gather(*(one(x) for x in items))


VARIANTS: dict[str, Join] = {"pipework": _pipework, "asyncio": _asyncio}


async def time_variant(variant: str, n: int, iterations: int) -> dict[str, float]:
    """Time one call of ``variant`` on ``n`` items, and one on a single item (in a `cell`)."""
    join = VARIANTS[variant]
    fa = partial(feature_a, iterations=iterations)
    await _timed(join, fa, list(range(WARMUP)))
    startup = await _timed(join, fa, [0])
    elapsed = await _timed(join, fa, list(range(n)))
    return {"seconds": elapsed, "startup": startup}


async def _timed(join: Join, fa: Callable[[int], int], items: list[int]) -> float:
    start = time.perf_counter()
    outputs = await join(fa, feature_b, items)
    elapsed = time.perf_counter() - start
    total = fa(0)  # the loop's share of feature A, the same for every item
    expected = [(x * x + total, -x) for x in items]
    got = [tuple(pair) for pair in outputs]
    if got != expected:
        wrong = next(i for i, (g, e) in enumerate(zip(got, expected, strict=False)) if g != e)
        raise AssertionError(
            f"{len(got)} joined results for {len(items)} items; first wrong at {wrong}"
            if len(got) == len(items)
            else f"{len(got)} joined results for {len(items)} items"
        )
    return elapsed


def run(session: Session) -> Section:
    settings = session.settings
    n = settings.count(N, floor=IN_FLIGHT)
    section = Section("j", "Fan-out and join", ABOUT.format(n=f"{n:,}"))
    if not session.wants("pipework"):
        return section
    kwargs = {"n": n, "iterations": session.iterations(CPU_SECONDS)}
    found: dict[str, list[dict[str, float]] | NotAvailable] = {key: [] for key in VARIANTS}
    for _ in range(settings.repeat):  # the variants take turns, one timed call each
        for key in VARIANTS:
            found[key] = _sample(found[key], key, kwargs, settings.timeout)
    section.tables.append(_table(found, n, settings.repeat))
    return section


def _sample(
    times: list[dict[str, float]] | NotAvailable, key: str, kwargs: dict[str, Any], timeout: float
) -> list[dict[str, float]] | NotAvailable:
    if isinstance(times, NotAvailable):
        return times
    target = "benchmarks.workloads.fan_out:time_variant"
    one = run_probe(target, {"variant": key, **kwargs}, timeout=timeout)
    return one if isinstance(one, NotAvailable) else [*times, one]


def _figures(found: list[dict[str, float]], n: int) -> tuple[float, float, float | None]:
    """Median time, its rate, and the rate after the median 1-item call is taken off."""
    elapsed = median([one["seconds"] for one in found])
    startup = median([one["startup"] for one in found])
    steady = n / (elapsed - startup) if elapsed > startup else None
    return elapsed, n / elapsed, steady


def _table(found: dict[str, list[dict[str, float]] | NotAvailable], n: int, repeat: int) -> Table:
    title = f"Fan-out and join, {os.cpu_count()} processes, median of {repeat}"
    ours = found["pipework"]
    mine = None if isinstance(ours, NotAvailable) else _figures(ours, n)
    rows = []
    for key, result in found.items():
        if isinstance(result, NotAvailable):
            rows.append([LABELS[key], "", na(result), "", "", "", ""])
            continue
        elapsed, speed, steady = _figures(result, n)
        startup = median([one["startup"] for one in result])
        versus = "-"
        if mine is not None:
            after = mine[2] / steady if mine[2] is not None and steady is not None else None
            versus = f"{ratio(mine[1] / speed)} ({ratio(after)})"
        row = [LABELS[key], f"{n:,}", seconds(elapsed), rate(speed), rate(steady)]
        rows.append([*row, seconds(startup), versus])
    return Table(title, HEADERS, rows)
