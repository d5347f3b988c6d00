"""Fetch each record once, compute two features of it in parallel, and join them: fan-out + zip.

A common shape: every record needs a CPU-heavy feature (best in processes)
and a blocking one (a lookup through a sync client, best in threads), then a
score from both. Written by hand, that is ``asyncio.gather`` of
``run_in_executor`` and ``to_thread`` per record, with the pools, the
back-pressure, the ordering and the error handling up to you. Here it is a
graph::

    urls -> fetch (async, 16 in flight) -+-> cpu_feature (2 processes) -+-> zip -> score -> keep
                                         +-> io_feature (threads) ------+

Reusing ``fetched`` for two branches fans out: the fetch stage runs once per
record and each response goes to both branches. ``pipework.zip`` joins them
into one ``(a, b)`` tuple per record, in source order. The script serves its
own records from an aiohttp server on 127.0.0.1 and counts the requests, to
show each record is fetched once.

Run it from the repository root::

    python examples/fetch_two_features.py
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

import pipework
from pipework import Pipeline, http

RECORDS = 200
requests_served: Counter[str] = Counter()  # path -> requests, counted by the server


async def get_record(request: web.Request) -> web.Response:
    """Serve a record derived from its id, so every run is the same."""
    requests_served[request.path] += 1
    record_id = int(request.match_info["id"])
    numbers = [(record_id * 7919 + k * 104_729) % 50_000 + 2 for k in range(100)]
    return web.json_response({"id": record_id, "numbers": numbers, "tag": f"rec-{record_id}"})


@asynccontextmanager
async def record_server() -> AsyncIterator[str]:
    """Run the record server on 127.0.0.1, on a free port, for the block; yield its base URL."""
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


# Stage functions are module-level, so worker processes can import them.
def cpu_feature(record: dict[str, Any]) -> int:
    """Count the primes among the record's numbers by trial division: CPU work."""

    def is_prime(n: int) -> bool:
        return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))

    return sum(map(is_prime, record["numbers"]))


def io_feature(record: dict[str, Any]) -> int:
    """Stand in for a blocking lookup (a sync database client, say): sleep, then answer."""
    time.sleep(0.001)
    return len(record["tag"])


def score(features: tuple[int, int]) -> int:
    """Combine the two features of one record."""
    primes, tag_length = features
    return primes * 10 + tag_length


async def main() -> None:
    scores: list[int] = []

    async with record_server() as base_url:
        urls = [f"/records/{i}" for i in range(RECORDS)]
        fetch = http.fetch(response="json", base_url=base_url)
        fetched = Pipeline(urls, name="urls").map(fetch, concurrency=16, name="fetch")
        a = fetched.map(cpu_feature, on="process", workers=2)  # branch 1: processes
        b = fetched.map(io_feature, on="thread")  # branch 2: threads
        joined = pipework.zip(a, b).map(score)  # one (a, b) per record, in order
        report = await joined.sink(scores.append, name="keep").run()

    requests = sum(requests_served.values())
    print(f"scored {len(scores)} records; first five scores: {scores[:5]}")
    print(f"the server answered {requests} requests for {len(requests_served)} records")
    print(f"each record fetched once: {requests == RECORDS == len(scores)}")
    print(f"zip left out {report['zip'].items_unmatched} records")
    print(report)
    if requests != RECORDS:
        raise SystemExit(f"expected {RECORDS} requests, the server saw {requests}")


if __name__ == "__main__":
    pipework.run_main(main)
