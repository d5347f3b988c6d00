"""Fetch records over HTTP in an async stage, compute in processes, and sink the results.

The script serves its own data: an aiohttp server on 127.0.0.1, on a free port
the operating system picks, answers ``GET /records/{id}`` with a JSON record.
Then one pipeline does the three kinds of work, each where it belongs::

    record ids -> fetch (async, 16 requests in flight on the event loop)
               -> score (CPU-heavy, in a pool of worker processes)
               -> keep  (a sink, in this process: no lock needed)

and prints a few scores and the run's report: per stage, items in and out,
busy time and how full its output channel got. ``pipework.run_main`` starts the
event loop: uvloop when it is installed, asyncio's own loop otherwise.

Run it from the repository root::

    python examples/fetch_then_compute.py
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

import pipework
from pipework import Pipeline

RECORDS = 200


async def get_record(request: web.Request) -> web.Response:
    """Serve a record whose numbers are derived from its id, so every run is the same."""
    record_id = int(request.match_info["id"])
    numbers = random.Random(record_id).sample(range(2, 60_000), 150)
    return web.json_response({"id": record_id, "numbers": numbers})


@asynccontextmanager
async def record_server() -> AsyncIterator[str]:
    """Run the record server on 127.0.0.1 for the length of the block; yield its base URL."""
    app = web.Application()
    app.router.add_get("/records/{id}", get_record)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()  # port 0: any free port
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def score(record: dict[str, Any]) -> tuple[int, int]:
    """Count the primes among a record's numbers, by trial division: plain CPU work."""

    def is_prime(n: int) -> bool:
        return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))

    return record["id"], sum(map(is_prime, record["numbers"]))


async def main() -> None:
    scores: dict[int, int] = {}

    def keep(result: tuple[int, int]) -> None:
        record_id, primes = result
        scores[record_id] = primes

    async with record_server() as base_url, aiohttp.ClientSession(base_url) as session:

        async def fetch(record_id: int) -> dict[str, Any]:
            async with session.get(f"/records/{record_id}") as response:
                response.raise_for_status()
                record: dict[str, Any] = await response.json()
                return record

        report = await (
            Pipeline(range(RECORDS), name="ids")
            .map(fetch, concurrency=16)
            .map(score, on="process")
            .sink(keep)
            .run()
        )

    loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
    print(f"event loop: {loop}")
    print(f"scored {len(scores)} records; primes in records 0-4: {[scores[i] for i in range(5)]}")
    print(f"total primes: {sum(scores.values())}")
    print(report)


if __name__ == "__main__":
    pipework.run_main(main)
