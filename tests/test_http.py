"""Pipelines whose async stage fetches over HTTP from a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from pipework import Pipeline


def no_delay(_index):
    return 0.0


@dataclass
class Server:
    """A server for /items/{i} that counts requests in flight and can fail one item."""

    url: str = ""
    delay: Callable[[int], float] = no_delay
    fail_on: int | None = None
    fail_by_raising: bool = False
    in_flight: int = 0
    peak: int = 0
    completed: list[int] = field(default_factory=list)

    async def handle(self, request):
        index = int(request.match_info["index"])
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay(index))
            if index == self.fail_on:
                if self.fail_by_raising:
                    raise RuntimeError("the handler broke")
                return web.json_response({"error": "unavailable"}, status=500)
            return web.json_response({"index": index, "square": index * index})
        finally:
            self.in_flight -= 1
            self.completed.append(index)


@pytest.fixture
async def server():
    state = Server()
    app = web.Application()
    app.router.add_get(r"/items/{index:\d+}", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        state.url = f"http://{host}:{port}"
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def fetch(server):
    """An async stage function over one shared session with no connection limit of its own."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def fetch(index):
            async with session.get(f"{server.url}/items/{index}") as response:
                response.raise_for_status()
                return await response.json()

        yield fetch


def digit_sum(page):
    """CPU work for a process stage; module-level, so workers import it by name."""
    return page["index"], sum(int(digit) for digit in str(page["square"]))


async def collect(pipeline):
    return [out async for out in pipeline]


async def test_all_items_arrive_in_order(server, fetch):
    # Every third response is slow, so responses finish out of order.
    server.delay = lambda i: 0.02 if i % 3 == 0 else 0.0
    pages = await collect(Pipeline(range(60)).map(fetch, concurrency=8))
    assert pages == [{"index": i, "square": i * i} for i in range(60)]
    assert server.completed != sorted(server.completed)  # the order was really restored


async def test_unordered_stage_delivers_every_item(server, fetch):
    server.delay = lambda i: 0.02 if i % 3 == 0 else 0.0
    pages = await collect(Pipeline(range(60)).map(fetch, concurrency=8, ordered=False))
    assert sorted(page["index"] for page in pages) == list(range(60))


@pytest.mark.parametrize("fail_by_raising", [False, True], ids=["status-500", "handler-raises"])
async def test_a_failed_request_names_stage_and_item(server, fetch, fail_by_raising):
    server.fail_on = 107
    server.fail_by_raising = fail_by_raising
    pipeline = Pipeline(range(100, 200)).map(fetch, concurrency=4).sink(lambda _: None)
    with pytest.raises(aiohttp.ClientResponseError) as raised:
        await pipeline.run()
    assert raised.value.status == 500
    notes = getattr(raised.value, "__notes__", [])
    assert any("stage #1 'fetch'" in note and "on item 7: 107" in note for note in notes), notes


@pytest.mark.parametrize("limit", [2, 5])
async def test_concurrency_bounds_requests_in_flight(server, fetch, limit):
    server.delay = lambda _: 0.005
    report = await Pipeline(range(40)).map(fetch, concurrency=limit).run()
    assert report["fetch"].items_out == 40
    assert 1 < server.peak <= limit


async def test_fetch_then_process_stage_end_to_end(server, fetch):
    results = []
    report = await (
        Pipeline(range(200))
        .map(fetch, concurrency=16)
        .map(digit_sum, on="process", workers=2)
        .sink(results.append)
        .run()
    )
    assert results == [(i, sum(int(d) for d in str(i * i))) for i in range(200)]
    assert report["digit_sum"].kind == "process map"
    assert report["digit_sum"].items_out == 200
    assert server.in_flight == 0
