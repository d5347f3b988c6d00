"""`StreamedResponse` wrapped around real aiohttp responses from a server on 127.0.0.1.

`tests/test_http_stage.py` reads streamed bodies through a fetcher; here
the wrapper is built directly, with its two hooks recorded, so that what it
promises can be checked: its hooks run exactly once whichever way it ends,
reads after a release fail plainly (or end, for iteration), and a body
that breaks off says how far it got.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from pipework import http
from pipework._http._streamed import StreamedResponse

pytestmark = pytest.mark.timeout(30)


@dataclass
class Server:
    url: str = ""
    first_bytes_read: asyncio.Event = field(default_factory=asyncio.Event)

    async def data(self, request):
        size = int(request.match_info["size"])
        response = web.StreamResponse(headers={"X-Kind": "zeros"})
        response.content_length = size
        await response.prepare(request)
        for start in range(0, size, 4096):
            await response.write(bytes(min(4096, size - start)))
        return response

    async def lines(self, _request):
        return web.Response(body=b"one\ntwo\r\n\nlast")

    async def moved(self, _request):
        raise web.HTTPFound("/data/10")

    async def breaks(self, request):
        response = web.StreamResponse()
        response.content_length = 100_000
        await response.prepare(request)
        await response.write(bytes(1000))
        await self.first_bytes_read.wait()  # the client has them: now break off
        request.transport.close()
        return response


@pytest.fixture
async def server():
    state = Server()
    app = web.Application()
    app.router.add_get(r"/data/{size:\d+}", state.data)
    app.router.add_get("/lines", state.lines)
    app.router.add_get("/moved", state.moved)
    app.router.add_get("/breaks", state.breaks)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        state.url = f"http://{host}:{port}"
        yield state
    finally:
        state.first_bytes_read.set()
        await runner.cleanup()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


class Hooks:
    def __init__(self):
        self.released = 0
        self.dropped = 0

    async def on_release(self):
        self.released += 1

    def on_drop(self):
        self.dropped += 1


async def streamed(session, url, *, chunk_size=1000, attempts=1):
    hooks = Hooks()
    response = await session.get(url)
    wrapped = StreamedResponse(
        response,
        attempts=attempts,
        chunk_size=chunk_size,
        on_release=hooks.on_release,
        on_drop=hooks.on_drop,
    )
    return wrapped, hooks


async def test_it_shows_the_request_that_answered_after_redirects(server, session):
    response, hooks = await streamed(session, f"{server.url}/moved", attempts=2)
    async with response:
        assert response.url == f"{server.url}/data/10"
        assert (response.method, response.status, response.attempts) == ("GET", 200, 2)
        assert response.headers["x-kind"] == "zeros"  # case-insensitive
        assert repr(response) == f"<StreamedResponse 200 GET {server.url}/data/10>"
    assert hooks.released == 1


async def test_chunks_are_at_most_chunk_size_and_the_last_read_releases(server, session):
    response, hooks = await streamed(session, f"{server.url}/data/10500", chunk_size=1000)
    chunks = [chunk async for chunk in response]
    assert all(0 < len(chunk) <= 1000 for chunk in chunks)
    assert sum(map(len, chunks)) == 10_500
    assert hooks.released == 1
    assert [chunk async for chunk in response] == []  # iterating again just ends
    await response.release()
    assert (hooks.released, hooks.dropped) == (1, 0)


async def test_release_runs_its_hook_once_however_often_and_whichever_way_it_is_called(
    server, session
):
    response, hooks = await streamed(session, f"{server.url}/data/50000")
    async with response:
        await anext(response)
        await response.release()
        await response.release()
    assert hooks.released == 1
    del response
    gc.collect()
    assert hooks.dropped == 0  # released: the drop hook is detached


async def test_lines_keep_their_endings_and_release_at_the_end(server, session):
    response, hooks = await streamed(session, f"{server.url}/lines")
    assert [line async for line in response.lines()] == [b"one\n", b"two\r\n", b"\n", b"last"]
    assert hooks.released == 1


async def test_lines_left_early_release_the_connection(server, session):
    response, hooks = await streamed(session, f"{server.url}/lines")
    lines = response.lines()
    assert await anext(lines) == b"one\n"
    await lines.aclose()
    assert hooks.released == 1


async def test_read_returns_the_rest_of_the_body_and_releases(server, session):
    response, hooks = await streamed(session, f"{server.url}/data/30000", chunk_size=4096)
    first = await anext(response)
    rest = await response.read()
    assert len(first) + len(rest) == 30_000
    assert hooks.released == 1


@pytest.mark.parametrize("how", ["read", "lines"])
async def test_reading_a_released_body_is_a_runtime_error_naming_the_response(server, session, how):
    response, hooks = await streamed(session, f"{server.url}/data/20000")
    await response.release()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reading = response.read() if how == "read" else anext(response.lines())
        with pytest.raises(RuntimeError) as raised:
            await reading
        gc.collect()
    assert str(raised.value) == f"pipework.http: the body of {response!r} was already released"
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert hooks.released == 1


async def test_a_response_dropped_unread_runs_its_drop_hook_once(server, session):
    response, hooks = await streamed(session, f"{server.url}/data/100000")
    await anext(response)
    del response
    gc.collect()
    assert (hooks.released, hooks.dropped) == (0, 1)


async def test_a_body_that_breaks_off_says_how_many_bytes_came_and_releases(server, session):
    response, hooks = await streamed(session, f"{server.url}/breaks", chunk_size=100_000)
    received = 0
    while received < 1000:
        received += len(await anext(response))
    server.first_bytes_read.set()
    with pytest.raises(http.HTTPError) as raised:
        async for _ in response:
            pass
    error = raised.value
    assert (error.method, error.url, error.status, error.attempts) == (
        "GET",
        f"{server.url}/breaks",
        200,
        1,
    )
    assert "the body broke off after 1000 bytes" in str(error)
    assert isinstance(error.__cause__, aiohttp.ClientError)
    assert hooks.released == 1
    with pytest.raises(StopAsyncIteration):
        await anext(response)  # released: iteration is over
