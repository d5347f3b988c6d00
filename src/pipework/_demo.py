"""The main job that ``python -m pipework demo`` runs: fetch, compute, score, collect.

It is the smallest honest picture of what pipework is for: records come over
HTTP (async I/O, many requests in flight), each needs real CPU work (a
process pool, so the event loop stays free), and a cheap final step runs
inline. The server is embedded and the data is generated from each record's
number, so the demo needs no network and every run sees the same records;
the checksum at the end lets two runs, or a run and a plain loop, be compared.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from functools import partial
from typing import TypedDict, cast

import aiohttp
from aiohttp import web

from ._executors import default_workers
from ._loop import running_loop_name
from ._pipeline import Pipeline
from ._report import Report
from ._shutdown import stop_on_signals

DEFAULT_COUNT = 2000
"""Records a demo run fetches: a couple of seconds on two cores."""

DEFAULT_CONCURRENCY = 32
"""Requests in flight: enough that the fetch stage keeps ahead of the process pool."""

RECORD_LENGTH = 256
LAGS = 96
"""Autocorrelation lags per record: about a millisecond of pure Python each."""

_SCALE = float(0x8000 * 0x8000)
_WEIGHTS = tuple((-1.0) ** lag / (1 + lag) for lag in range(LAGS))


class Record(TypedDict):
    """One record as the server sends it."""

    id: int
    values: list[int]


# The data ----------------------------------------------------------------


def record(index: int) -> Record:
    """Make record ``index`` from its number alone, so nothing is downloaded and runs agree.

    A linear congruential generator is plenty here and, unlike `random`, its
    output is fixed by the arithmetic rather than by a library version. The
    values are 16-bit integers: exact in JSON, and short, so that parsing
    the responses costs the event loop less than the features cost the pool.
    """
    state = (index * 2654435761 + 1) & 0xFFFFFFFF
    values = []
    for _ in range(RECORD_LENGTH):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        values.append((state >> 16) - 0x8000)
    return {"id": index, "values": values}


def features(item: Record) -> list[float]:
    """Compute the record's autocorrelation at each lag: the CPU-heavy step.

    It is deliberately pure Python, which holds the GIL, so only processes
    (not threads) can run it in parallel.
    """
    values = item["values"]
    return [
        sum(a * b for a, b in zip(values, values[lag:], strict=False))
        / (len(values) - lag)
        / _SCALE
        for lag in range(LAGS)
    ]


def score(feature_vector: list[float]) -> float:
    """Reduce the features to one number: cheap, so it runs inline on the event loop."""
    return sum(f * w for f, w in zip(feature_vector, _WEIGHTS, strict=True))


def checksum(scores: Iterable[float]) -> str:
    """Hash the scores' exact bits, in order, so runs compare with one short string."""
    digest = hashlib.blake2b(digest_size=4)
    for value in scores:
        digest.update(struct.pack("<d", value))
    return digest.hexdigest()


# The server --------------------------------------------------------------


async def _handle_record(request: web.Request) -> web.Response:
    return web.json_response(record(int(request.match_info["index"])))


@contextlib.asynccontextmanager
async def serve_records() -> AsyncIterator[str]:
    """Serve ``/records/{i}`` on a free loopback port; yield the base URL.

    Port 0 lets the system pick a free port, so runs never collide. The
    server is torn down however the block ends.
    """
    app = web.Application()
    app.router.add_get(r"/records/{index:\d+}", _handle_record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def fetch_record(session: aiohttp.ClientSession, base_url: str, index: int) -> Record:
    """Fetch one record; an HTTP error status raises, and pipework names the item."""
    async with session.get(f"{base_url}/records/{index}") as response:
        response.raise_for_status()
        return cast("Record", await response.json())


# The pipeline ------------------------------------------------------------


def build(
    session: aiohttp.ClientSession,
    base_url: str,
    count: int,
    *,
    workers: int | None,
    concurrency: int,
    collect: Callable[[float], object],
) -> Pipeline[object]:
    """Assemble the demo pipeline: ids -> fetch -> features -> score -> collect."""
    return (
        Pipeline(range(count), name="ids")
        .map(partial(fetch_record, session, base_url), concurrency=concurrency, name="fetch")
        .map(features, on="process", workers=workers)
        .map(score)
        .sink(collect, name="collect")
    )


async def run_demo(
    count: int = DEFAULT_COUNT,
    *,
    workers: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> int:
    """Run the demo, print its report and summary, and return the exit code."""
    scores: list[float] = []
    # The connection pool is as large as the stage's concurrency, so the
    # number of requests in flight is pipework's to decide.
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with serve_records() as base_url, aiohttp.ClientSession(connector=connector) as session:
        _say(_header(count, base_url, workers, concurrency))
        pipeline = build(
            session,
            base_url,
            count,
            workers=workers,
            concurrency=concurrency,
            collect=scores.append,
        )
        # Ctrl-C or SIGTERM once: stop fetching, finish what is in flight and
        # report; twice: stop at once.
        async with stop_on_signals() as stop:
            report = await pipeline.run(stop=stop)
    stopped = "stopped early by a signal; " if stop.is_set() else ""
    _say(f"{report}\n{stopped}{summary(report, scores)}")
    return 0


def _header(count: int, base_url: str, workers: int | None, concurrency: int) -> str:
    processes = workers or default_workers()
    return (
        f"pipework demo: {count} records from {base_url}, {concurrency} requests in flight, "
        f"features on {processes} processes, event loop: {running_loop_name()}\n"
    )


def summary(report: Report, scores: list[float]) -> str:
    """Say in one line how many items, how fast, and the checksum that makes runs comparable."""
    return (
        f"{len(scores)} items in {report.wall_seconds:.2f} s, "
        f"{report.items_per_second:,.0f} items/s, checksum {checksum(scores)}"
    )


def _say(text: str) -> None:
    # Written through sys.stdout at call time, so redirections and capture see it.
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
