"""(d) An I/O stage (HTTP with a fixed delay) feeding a CPU stage: do the stages overlap?"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from ..contenders import WORKERS
from ..httpserver import http_server
from ..measure import median
from ..probe import NotAvailable, run_probe
from ..report import Section, Table, Target, na, ratio, seconds
from ..session import Session

N = 400
DELAY = 0.05  # seconds the server waits before each answer
CONCURRENCY = 16  # requests in flight: the I/O stage alone takes N * DELAY / CONCURRENCY
CPU_SECONDS = 0.0065  # per item: the CPU stage alone takes about N * CPU_SECONDS / WORKERS

VARIANTS = ("pipeline", "one stage after the other", "I/O stage alone", "CPU stage alone")

ABOUT = f"""\
{{n}} requests to a local aiohttp server (in a process of its own) that answers each after
{DELAY * 1000:g} ms, {CONCURRENCY} in flight, feed a CPU stage of about {CPU_SECONDS * 1000:g} ms
per item on {WORKERS} worker processes. The pipeline runs both stages at once; "one stage after
the other" fetches everything with `pipework.map`, then computes with `pipework.map`; each stage
is also run alone (the CPU stage on pages fetched beforehand). Every variant starts its own
process pool. The variants take turns in one process, so drift affects them alike.
Peers are not run here: this workload measures how well pipework overlaps its own stages."""


async def get(http: Any, url: str) -> bytes:
    async with http.get(url) as response:
        return await response.read()  # type: ignore[no-any-return]


async def pipeline_times(url: str, n: int, iterations: int, repeat: int) -> dict[str, list[float]]:
    """Time every variant ``repeat`` times, taking turns (runs in a `cell` child)."""
    import aiohttp

    import pipework

    from .. import tasks

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:
        fetch = partial(get, http)
        urls = [f"{url}/item/{i}" for i in range(n)]
        pages = await pipework.map(fetch, urls, concurrency=CONCURRENCY)  # also a warm-up
        variants = _variants(pipework, fetch, partial(tasks.burn, iterations=iterations))
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(repeat):
            for name, variant in variants.items():
                start = time.perf_counter()
                await variant(urls, pages)
                times[name].append(time.perf_counter() - start)
    return times


def _variants(
    pipework: Any, fetch: Callable[[str], Awaitable[bytes]], cpu: Callable[[bytes], bytes]
) -> dict[str, Callable[[list[str], list[bytes]], Awaitable[Any]]]:
    def io_stage(source: Any) -> Any:
        return pipework.Pipeline(source).map(fetch, concurrency=CONCURRENCY)

    async def sequential(urls: list[str], _pages: list[bytes]) -> None:
        fetched = await pipework.map(fetch, urls, concurrency=CONCURRENCY)
        await pipework.map(cpu, fetched, on="process", workers=WORKERS)

    return {
        "pipeline": lambda urls, _: io_stage(urls).map(cpu, on="process", workers=WORKERS).run(),
        "one stage after the other": sequential,
        "I/O stage alone": lambda urls, _: io_stage(urls).run(),
        "CPU stage alone": lambda _, pages: (
            pipework.Pipeline(pages).map(cpu, on="process", workers=WORKERS).run()
        ),
    }


def run(session: Session) -> Section:
    settings = session.settings
    n = settings.count(N, floor=CONCURRENCY)
    section = Section("d", "An I/O stage feeding a CPU stage", ABOUT.format(n=f"{n:,}"))
    if not session.wants("pipework"):
        return section
    kwargs = {"n": n, "iterations": session.iterations(CPU_SECONDS), "repeat": settings.repeat}
    with http_server(DELAY) as url:
        found = run_probe(
            "benchmarks.workloads.pipeline:pipeline_times",
            {"url": url, **kwargs},
            timeout=settings.timeout,
        )
    section.tables.append(_table(found, settings.repeat))
    section.targets.append(_target(found))
    return section


def _table(found: dict[str, list[float]] | NotAvailable, repeat: int) -> Table:
    title = f"Wall time, median of {repeat}"
    headers = ["variant", "median wall time", "÷ slowest stage alone", "÷ pipeline"]
    if isinstance(found, NotAvailable):
        return Table(title, headers, [["all", na(found), "", ""]])
    medians = {name: median(found[name]) for name in VARIANTS}
    slowest = max(medians["I/O stage alone"], medians["CPU stage alone"])
    rows = [
        [name, seconds(value), ratio(value / slowest), ratio(value / medians["pipeline"])]
        for name, value in medians.items()
    ]
    return Table(title, headers, rows)


def _target(found: dict[str, list[float]] | NotAvailable) -> Target:
    measure = "I/O + CPU pipeline: wall time ÷ its slowest stage run alone"
    if isinstance(found, NotAvailable):
        return Target(measure, "≤ 1.15x", "not measured", None)
    medians = {name: median(found[name]) for name in VARIANTS}
    versus = medians["pipeline"] / max(medians["I/O stage alone"], medians["CPU stage alone"])
    return Target(measure, "≤ 1.15x", ratio(versus), versus <= 1.15)
