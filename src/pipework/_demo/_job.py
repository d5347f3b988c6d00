"""The main job: fetch over HTTP, preprocess on processes, batch, classify, sink; and its report.

The pipeline::

    records -> fetch (async, 64 in flight) -> preprocess (process)
            -> classify (process, map_batches) -> sink (latency, accuracy)

A few warm-up records go through first, and the records proper are only
asked for once they reach the sink: by then every stage has started its
workers and trained its model, as a service takes traffic only once it is
ready. So the latencies measured are those of the running pipeline, not of
its start-up, which is reported on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .. import http
from .._executors import default_workers
from .._loop import running_loop_name
from .._observe._report import Report
from .._pipeline import Pipeline
from .._sealed import SealedPipeline
from .._shutdown import stop_on_signals
from . import _digits
from ._options import DemoOptions
from ._progress import Progress
from ._server import serve_elsewhere
from ._stats import Collector, Results, results, text


@dataclass(frozen=True)
class Outcome:
    """What a run did: pipework's report, the demo's own figures, and how it began and ended."""

    report: Report
    results: Results
    warmup_seconds: float
    signalled: bool


async def _urls(count: int | None, warmups: int, ready: asyncio.Event) -> AsyncIterator[str]:
    """Warm-up records first; the records proper once those have reached the sink."""
    for k in range(warmups):
        yield f"/warmup/{k}"
    await ready.wait()
    for i in range(count) if count is not None else itertools.count():
        yield f"/records/{i}"


def build(
    options: DemoOptions, base_url: str, collector: Collector, warmups: int
) -> SealedPipeline:
    """Assemble the demo's pipeline; ``collector`` is its sink."""
    count = options.records()
    # A request waits at the server until its record is due: up to as many
    # records ahead as are in flight. The timeout leaves room for that.
    ahead = options.concurrency / options.rate if options.rate else 0.0
    fetch = http.fetch(
        response="json", base_url=base_url, limit=options.concurrency, timeout=30.0 + ahead
    )
    fetched = Pipeline(_urls(count, warmups, collector.ready), name="records").map(
        fetch, concurrency=options.concurrency, name="fetch"
    )
    samples = fetched.map(_digits.preprocess, on="process", workers=options.workers)
    if options.batch:
        predictions = samples.map_batches(
            _digits.classify_batch,
            max_size=options.max_batch,
            max_wait=options.max_wait,
            on="process",
            workers=options.workers,
            setup=_digits.load_model,
            name="classify",
        )
    else:
        predictions = samples.map(
            _digits.classify_one,
            on="process",
            workers=options.workers,
            setup=_digits.load_model,
            name="classify",
        )
    return predictions.sink(collector, name="sink")


async def run_job(options: DemoOptions, *, say: bool = True) -> Outcome:
    """Run the demo once and return what it measured; with ``say``, print as it goes.

    The first SIGINT or SIGTERM stops it gracefully (no more records are
    asked for; those in flight finish and are counted), a second at once.
    """
    warmups = options.workers or default_workers()
    collector = Collector(warmups)
    async with serve_elsewhere(options.rate) as server, stop_on_signals() as stop:
        base_url = server.base_url
        if say:
            _say(header(options, base_url))
        pipeline = build(options, base_url, collector, warmups)
        progress = Progress(collector, options.records()) if say and options.progress else None
        start = time.perf_counter()
        async with _showing(progress), _timer(collector, stop, options.timer()) as timer:
            report = await pipeline.run(stop=stop)
    return Outcome(
        report,
        results(collector, server.started),
        (collector.ready_at or time.perf_counter()) - start,
        signalled=stop.is_set() and not timer.rang,
    )


KEPT_UP = 0.98
"""The share of the offered rate at which the pipeline kept up with the server's pace."""


async def run_demo(options: DemoOptions) -> int:
    """Run the demo as ``python -m pipework demo`` does: header, progress, report; exit code."""
    outcome = await run_job(options)
    stopped = "stopped early by a signal; the figures count what finished\n"
    # What set the pace goes right under the throughput it explains.
    records, _, rest = text(outcome.results, options.rate).partition("\n")
    _say(
        f"{table(outcome.report)}\n"
        f"warm-up   {outcome.warmup_seconds:.2f} s: workers started and models trained "
        "before the first record was due\n"
        f"{stopped if outcome.signalled else ''}{records}{pace(outcome, options.rate)}\n{rest}"
    )
    return 0


def table(report: Report) -> str:
    """Render the report's table and its bottleneck, without its own throughput line.

    The demo's one throughput is the records line's, over the timed records;
    the report's would count the warm-up and its start-up too.
    """
    return "\n".join(line for line in str(report).splitlines() if not line.startswith("wall "))


def pace(outcome: Outcome, rate: float | None) -> str:
    """Say what set the pace, when the records came as fast as the server offered them."""
    found = outcome.results
    if rate is None or not found.records or found.throughput < KEPT_UP * rate:
        return ""
    return (
        f"\npace      the pipeline kept up: {found.throughput:,.1f} of the {rate:,.0f} records/s "
        "offered, so the record server's pace is the limit, not a stage"
    )


def header(options: DemoOptions, base_url: str) -> str:
    """Say in one line what runs, where, and on which event loop."""
    count = options.records()
    records = f"{count:,} digit images" if count is not None else "digit images"
    if options.timer() is not None:
        records += f" for {options.timer():g} s"
    speed = "as fast as they go" if options.rate is None else f"at {options.rate:g}/s"
    processes = options.workers or default_workers()
    classify = (
        f"classified in batches of up to {options.max_batch} "
        f"(waiting up to {options.max_wait * 1000:g} ms)"
        if options.batch
        else "classified one at a time"
    )
    return (
        f"pipework demo: {records} from {base_url} {speed}, after {processes} warm-up "
        f"records (counted in the table), {options.concurrency} requests in flight, "
        f"preprocessed and {classify} on {processes} processes each, "
        f"event loop: {running_loop_name()}"
    )


@contextlib.asynccontextmanager
async def _showing(progress: Progress | None) -> AsyncIterator[None]:
    if progress is None:
        yield
        return
    async with progress.shown():
        yield


class _Timer:
    """Sets a stop event ``seconds`` after the warm-up ends, and says if it did."""

    def __init__(self, collector: Collector, stop: asyncio.Event, seconds: float) -> None:
        self._collector = collector
        self._stop = stop
        self._seconds = seconds
        self.rang = False

    async def run(self) -> None:
        await self._collector.ready.wait()
        await asyncio.sleep(self._seconds)
        self.rang = True
        self._stop.set()


@contextlib.asynccontextmanager
async def _timer(
    collector: Collector, stop: asyncio.Event, seconds: float | None
) -> AsyncIterator[_Timer]:
    """Stop the run ``seconds`` after the warm-up while the block runs (never, for None)."""
    timer = _Timer(collector, stop, seconds or 0.0)
    task = None if seconds is None else asyncio.ensure_future(timer.run())
    try:
        yield timer
    finally:
        if task is not None:
            task.cancel()
            await asyncio.wait([task])


def _say(line: str) -> None:
    # Written through sys.stdout at call time, so redirections and capture see it.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
