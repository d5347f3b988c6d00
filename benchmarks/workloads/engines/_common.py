"""What (l)'s engines share: its settings, the work, the job a probe runs, and their names.

The work and `apply_chunk` run on the engines' workers, which import this
module by name; everything else runs in the probes and the workload.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from ...measure import median

N = 6_000  # 1 ms items: about 3 s at the capacity of 2 threads
NOOP_N = 50_000
NOOP_PER_TASK_N = 2_000  # variants that make one task per item run on fewer no-op items
CPU_SECONDS = 0.001
BATCH = 1_000  # the items per task of the batched idiom (fewer if it would leave threads idle)
WARMUP = 8  # items of the untimed call that warms the client, the workers and the imports
OFFSET = 10**9  # the warm-up and 1-item calls' items start here, so Dask reuses no result
EFFICIENCY = 0.9  # the share of the cluster's capacity pipework's chunks must reach
SERIAL_ITEMS = 100  # items per serial timing of one item's cost; five timings per round
START_TIMEOUT = 120.0  # seconds a cluster gets to start

Fn = Callable[[int], int]
Calls = dict[str, list[int]]  # "warmup", "startup", "seconds": the items of each call


# The work, run on the workers ----------------------------------------------


def work(x: int, iterations: int) -> int:
    """About 1 ms of pure-Python CPU: the loop of `tasks.burn`, so that its calibration holds."""
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return x * x + total


def noop(x: int) -> int:
    return x


def apply_chunk(fn: Fn, chunk: list[int]) -> list[int]:
    """The batched idiom's task: ``fn`` over a chunk of items."""
    return [fn(x) for x in chunk]


def function_for(task: str, iterations: int) -> Fn:
    return partial(work, iterations=iterations) if task == "work" else noop


def _expected(task: str, fn: Fn, items: list[int]) -> list[int]:
    if task == "noop":
        return list(items)
    total = fn(0)  # the loop's share of `work`, the same for every item
    return [x * x + total for x in items]


def _check(task: str, fn: Fn, items: list[int], outputs: Any) -> None:
    got = list(outputs)
    want = _expected(task, fn, items)
    if got != want:
        wrong = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), None)
        where = f"first wrong at {wrong}" if wrong is not None else "the rest missing or extra"
        raise AssertionError(f"{len(got)} results for {len(items)} items; {where}")


def in_chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def serial_seconds(*, iterations: int) -> float:
    """One item's cost, run serially in this process: the median of five timings (a probe)."""
    fn = function_for("work", iterations)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for x in range(SERIAL_ITEMS):
            fn(x)
        times.append((time.perf_counter() - start) / SERIAL_ITEMS)
    return median(times)


def loop_rate(iterations: int) -> float:
    """Items/s of the loop run right here, on a worker (through `client.run`)."""
    fn = function_for("work", iterations)
    start = time.perf_counter()
    for x in range(3 * SERIAL_ITEMS):
        fn(x)
    return 3 * SERIAL_ITEMS / (time.perf_counter() - start)


# Timing calls, inside a probe ------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What one probe runs: its calls' items, the function, and where."""

    address: str | None  # the cluster's scheduler; None for the local variant
    task: str
    fn: Fn
    calls: Calls
    batch: int  # items per task of the batched idiom

    def check(self, items: list[int], outputs: Any) -> None:
        _check(self.task, self.fn, items, outputs)


Map = Callable[[Job, list[int]], Awaitable[list[int]]]


async def time_calls(map_: Map, job: Job) -> dict[str, float]:
    found = {}
    for name, items in job.calls.items():
        start = time.perf_counter()
        outputs = await map_(job, items)
        found[name] = time.perf_counter() - start
        job.check(items, outputs)
    return found


def _pipework_local(job: Job) -> dict[str, float]:
    from pipework import Pipeline

    async def map_(job: Job, items: list[int]) -> list[int]:
        return [y async for y in Pipeline(items).map(job.fn, on="process")]

    return asyncio.run(time_calls(map_, job))


# What runs, and where ---------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One way to run the map, as the tables name it."""

    key: str
    label: str
    runner: Callable[[Job], dict[str, float]]  # the seconds of each of the job's calls
    needs: tuple[str, ...] = ()  # modules it imports
    contender: str | None = None  # the `--contenders` key that selects it; None: always run
    per_task: bool = False  # one task per item: runs on fewer no-op items

    def missing(self) -> str | None:
        absent = [name for name in self.needs if importlib.util.find_spec(name) is None]
        return f"{absent[0]} is not installed" if absent else None


@dataclass(frozen=True)
class Engine:
    """A cluster engine: how to start its cluster, and what runs on it."""

    key: str
    name: str
    module: str  # what it needs installed
    cluster: str  # the cluster, as the tables describe it
    serve: str  # "module:function" that starts the cluster in its own process (see `serve_dask`)
    variants: tuple[Variant, ...]
    pipework: str  # the variant that is pipework on this engine
    idioms: tuple[str, ...]  # the engine's own idioms; the first is the ratios' base
    about: str
    base: str  # the ratios' base, as the tables' headers name it
    starter: str  # the call that starts the cluster, in the note on its start
    direct: str  # how the loop ran on every worker at once, in the note on capacity


LOCAL = Variant(
    "local",
    "pipework Pipeline.map(f, on='process'), locally",
    _pipework_local,
    contender="pipework",
)
