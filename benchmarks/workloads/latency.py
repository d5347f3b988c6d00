"""(f) The latency of a lone item through an idle process stage."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from ..contenders import CONTENDERS, START, WORKERS
from ..measure import percentile
from ..probe import NotAvailable, run_probe
from ..report import Section, Table, Target, na, ratio, seconds
from ..session import Session
from ..tasks import call_async, noop

SAMPLES = 300
GAP = 0.01  # seconds between items: every item finds the stage idle
WARM = 5  # first items, not counted: they warm the stage up

ABOUT = f"""\
One item at a time, {GAP * 1000:g} ms apart, goes through a no-op stage on {WORKERS} worker
processes, and its latency is the time from the source yielding it to the reader receiving
it. pipework's stage is a long-lived `Pipeline(source).map(noop, on=...)` read with
`async for`, fed by an async generator; the baseline awaits one bare `loop.run_in_executor`
call per item on a ProcessPoolExecutor whose workers have all started. The first {WARM} items
of each warm it up and are not counted: the measured items start once those are through.
"First item" shows the first, with whatever start-up the contender does on it; on a user's
executor, pipework's first items also load its worker code and the stage's function."""

# Which contender each variant belongs to, for --contenders and for missing peers.
OWNERS = {
    "pipework": "pipework",
    "pipework_executor": "pipework",
    "run_in_executor": "run_in_executor",
    "aiomultiprocess": "aiomultiprocess",
}
LABELS = {
    "pipework": "pipework Pipeline.map(on='process'), streamed",
    "pipework_executor": "pipework Pipeline.map(on=warm ProcessPoolExecutor), streamed",
    "run_in_executor": "bare run_in_executor on a warm ProcessPoolExecutor",
    "aiomultiprocess": "aiomultiprocess Pool.apply on a warm pool",
}


async def _ticks(
    samples: int, sent: list[float], warm: asyncio.Event | None = None
) -> AsyncIterator[int]:
    """Yield one item every `GAP` seconds; after `WARM` items, wait for ``warm`` first."""
    for i in range(samples):
        if i == WARM and warm is not None:
            await warm.wait()
        await asyncio.sleep(GAP)
        sent.append(time.perf_counter())
        yield i


async def _through_pipework(samples: int, on: Any) -> list[float]:
    import pipework

    sent: list[float] = []
    warm = asyncio.Event()  # set once the warm-up items are through: the stage is idle
    latencies = []
    pipeline = pipework.Pipeline(_ticks(samples, sent, warm)).map(noop, on=on, workers=WORKERS)
    async with pipeline.stream() as outputs:
        async for i in outputs:
            latencies.append(time.perf_counter() - sent[i])
            if i == WARM - 1:
                warm.set()
    return latencies


async def _one_by_one(samples: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    latencies = []
    async for i in _ticks(samples, []):
        start = time.perf_counter()
        await call(i)
        latencies.append(time.perf_counter() - start)
    return latencies


def _pool() -> Executor:
    return ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context(START))


async def _warm(pool: Executor) -> None:
    """Start every worker: a pool starts them one at a time, as calls overlap."""
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(pool, time.sleep, 0.05) for _ in range(WORKERS)))


async def _pipework(samples: int) -> list[float]:
    return await _through_pipework(samples, "process")


async def _pipework_executor(samples: int) -> list[float]:
    with _pool() as pool:
        await _warm(pool)
        return await _through_pipework(samples, pool)


async def _run_in_executor(samples: int) -> list[float]:
    loop = asyncio.get_running_loop()
    with _pool() as pool:
        await _warm(pool)
        return await _one_by_one(samples, lambda i: loop.run_in_executor(pool, noop, i))


async def _aiomultiprocess(samples: int) -> list[float]:
    import aiomultiprocess

    aiomultiprocess.set_start_method(START)
    async with aiomultiprocess.Pool(processes=WORKERS) as pool:
        return await _one_by_one(samples, lambda i: pool.apply(call_async, (noop, i)))


PROBES: dict[str, Callable[[int], Awaitable[list[float]]]] = {
    "pipework": _pipework,
    "pipework_executor": _pipework_executor,
    "run_in_executor": _run_in_executor,
    "aiomultiprocess": _aiomultiprocess,
}


async def latencies(variant: str, samples: int) -> list[float]:
    """Measure ``samples`` lone items through ``variant`` (runs in a `cell` child)."""
    found = await PROBES[variant](samples)
    if len(found) != samples:
        raise AssertionError(f"{variant}: {len(found)} latencies for {samples} items")
    return found


def run(session: Session) -> Section:
    samples = session.settings.count(SAMPLES, floor=4 * WARM)
    section = Section("f", "Latency of a lone item", ABOUT)
    found = {key: _measure(session, key, samples) for key in PROBES if _wanted(session, key)}
    section.tables.append(_table(found, samples - WARM))
    section.plot = {LABELS[k]: v[WARM:] for k, v in found.items() if isinstance(v, list)}
    section.targets.append(_target(found))
    return section


def _wanted(session: Session, key: str) -> bool:
    return session.wants(OWNERS[key])


def _measure(session: Session, key: str, samples: int) -> list[float] | NotAvailable:
    missing = CONTENDERS[OWNERS[key]].missing()
    if missing:
        return NotAvailable(missing)
    target = "benchmarks.workloads.latency:latencies"
    kwargs = {"variant": key, "samples": samples}
    return run_probe(target, kwargs, timeout=session.settings.timeout)  # type: ignore[no-any-return]


def _table(found: dict[str, list[float] | NotAvailable], samples: int) -> Table:
    headers = ["contender", "p50", "p99", "max", "first item", "pipework's p50 ÷ this one's"]
    ours = found.get("pipework")
    ours_p50 = percentile(ours[WARM:], 0.5) if isinstance(ours, list) else None
    rows = []
    for key, value in found.items():
        if isinstance(value, NotAvailable):
            rows.append([LABELS[key], na(value), "", "", "", ""])
            continue
        counted = value[WARM:]
        p50 = percentile(counted, 0.5)
        versus = None if ours_p50 is None else ours_p50 / p50
        cells = [p50, percentile(counted, 0.99), max(counted), value[0]]
        rows.append([LABELS[key], *map(seconds, cells), ratio(versus)])
    title = f"Latency of {samples} lone items (after {WARM} warm-up items)"
    return Table(title, headers, rows)


def _target(found: dict[str, list[float] | NotAvailable]) -> Target:
    measure = "lone item through an idle process stage: p50 latency"
    wanted = "no worse than one bare run_in_executor call (ratio ≤ 1.00x)"
    ours, theirs = found.get("pipework"), found.get("run_in_executor")
    if not isinstance(ours, list) or not isinstance(theirs, list):
        return Target(measure, wanted, "not measured", None)
    p50, base = percentile(ours[WARM:], 0.5), percentile(theirs[WARM:], 0.5)
    measured = f"{ratio(p50 / base)} ({seconds(p50)} vs {seconds(base)})"
    return Target(measure, wanted, measured, p50 <= base)
