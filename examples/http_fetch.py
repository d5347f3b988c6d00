"""Fetch from a flaky HTTP server with pipework.http: retries, Retry-After, a rate limit, streams.

The script serves its own data: an aiohttp server on 127.0.0.1, on a free
port, answers ``GET /items/{id}`` with a JSON record, but misbehaves the way
real services do. The first request for some items gets a 503, for others a
429 with ``Retry-After: 1``, and for one the connection is dropped before any
answer. Each fault happens once per item, so a retry succeeds::

    item ids -> fetch (async, 16 in flight, at most 200 requests a second,
                       retried with backoff; one session, closed by the run)
             -> total (inline)

Then it streams a few large bodies in chunks, and shows what a failure that
outlasts its retries looks like.

Run it from the repository root::

    python examples/http_fetch.py
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from pipework import Pipeline, http

ITEMS = 200
RATE = 200.0  # requests per second, retries included


class FlakyServer:
    """Serves records and files, failing the first request for some of them."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()

    async def item(self, request: web.Request) -> web.StreamResponse:
        item_id = int(request.match_info["id"])
        self.seen[request.path] += 1
        first = self.seen[request.path] == 1
        if first and item_id % 10 == 3:
            self.answers["503"] += 1
            return web.Response(status=503)
        if first and item_id % 50 == 7:
            self.answers["429"] += 1
            return web.Response(status=429, headers={"Retry-After": "1"})
        if item_id == 100 and self.seen[request.path] <= 2:
            # aiohttp resends a GET once on a dropped connection by itself;
            # dropping it twice makes pipework's own retry do the work.
            self.answers["reset"] += 1
            if request.transport is not None:
                request.transport.close()
            return web.Response()  # goes nowhere: the connection is gone
        self.answers["200"] += 1
        return web.json_response({"id": item_id, "value": item_id * 3 % 7})

    async def broken(self, _request: web.Request) -> web.Response:
        return web.Response(status=503)

    async def file(self, request: web.Request) -> web.StreamResponse:
        size = int(request.match_info["size"])
        response = web.StreamResponse()
        response.content_length = size
        await response.prepare(request)
        for start in range(0, size, 256 * 1024):
            await response.write(b"x" * min(256 * 1024, size - start))
        return response


@asynccontextmanager
async def flaky_server(state: FlakyServer) -> AsyncIterator[str]:
    """Run the server on 127.0.0.1 for the length of the block; yield its base URL."""
    app = web.Application()
    app.router.add_get("/items/{id}", state.item)
    app.router.add_get("/broken", state.broken)
    app.router.add_get("/files/{size}", state.file)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()  # port 0: any free port
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def fetch_records(base_url: str, state: FlakyServer) -> None:
    fetch = http.fetch(
        response="json",
        base_url=base_url,
        rate=RATE,
        burst=10,
        retry=http.Retry(attempts=4, base_delay=0.05, max_delay=2.0),
    )
    values: list[int] = []

    def keep(record: dict[str, Any]) -> None:
        values.append(record["value"])

    report = await (
        Pipeline(range(ITEMS), name="ids")
        .map(lambda item_id: f"/items/{item_id}", name="path")
        # A sum needs no order, and unordered, a record that waits out a
        # Retry-After does not hold back the ones behind it.
        .map(fetch, concurrency=16, ordered=False)
        .sink(keep)
        .run()
    )
    answers = ", ".join(f"{count} x {status}" for status, count in sorted(state.answers.items()))
    print(f"fetched {len(values)} records; sum of values {sum(values)}")
    print(f"the server answered: {answers}")
    stats = fetch.stats
    print(f"the fetcher sent {stats.requests} requests, {stats.retries} of them retries")
    print(f"its session was closed by the run: {fetch.session is None}")
    print(report)


async def stream_files(base_url: str) -> None:
    fetch = http.fetch(response="stream", base_url=base_url, chunk_size=1 << 20)
    sizes = [3_000_000, 1_500_000, 10]
    chunks = total = 0
    async for response in Pipeline([f"/files/{size}" for size in sizes]).map(fetch):
        async with response:  # gives the connection back even if we stop early
            async for chunk in response:
                chunks += 1
                total += len(chunk)
    print(f"streamed {len(sizes)} files: {total:,} bytes in {chunks} chunks of at most 1 MiB")


async def show_a_failure(base_url: str) -> None:
    fetch = http.fetch(base_url=base_url, retry=http.Retry(attempts=3, base_delay=0.01))
    try:
        await Pipeline(["/items/1", "/items/2", "/broken"]).map(fetch).run()
    except http.HTTPError as error:
        print(f"the run stopped with HTTPError: {error}")
        print(f"note: {error.__notes__[0]}")
        print(f"status {error.status} after {error.attempts} attempts")


async def main() -> None:
    state = FlakyServer()
    async with flaky_server(state) as base_url:
        await fetch_records(base_url, state)
        await stream_files(base_url)
        await show_a_failure(base_url)


if __name__ == "__main__":
    asyncio.run(main())
