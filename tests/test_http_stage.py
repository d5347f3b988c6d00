"""pipework.http against a real aiohttp server on 127.0.0.1 that fails on purpose.

The server injects 5xx answers, 429 with ``Retry-After``, slow answers,
connection resets, bodies that break off and malformed JSON, and counts what
it sees. Backoff delays are milliseconds, and nothing asserts an upper bound
on wall time: a retry that waited is shown by the server's clock (a lower
bound, which load cannot break) or by the delay the fetcher logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web

import pipework
from pipework import Pipeline, http

FAST = http.Retry(attempts=4, base_delay=0.001, max_delay=0.01)


@dataclass
class Server:
    """A misbehaving server; ``?times=n`` makes a fault apply to the first n hits of a path."""

    url: str = ""
    runner: web.AppRunner | None = None
    hits: Counter = field(default_factory=Counter)
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    in_flight: int = 0
    peak: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def faulty(self, request) -> bool:
        """Whether this hit is one of the first ``times`` (all of them without ``times``)."""
        times = request.query.get("times")
        return times is None or self.hits[request.path] <= int(times)

    @property
    def connections(self) -> int:
        return len(self.runner.server.connections)

    async def count(self, request, handler):
        self.hits[request.path] += 1
        self.arrivals.setdefault(request.path, []).append(asyncio.get_running_loop().time())
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1

    async def ok(self, request):
        return web.json_response({"name": request.match_info["name"]})

    async def status(self, request):
        if self.faulty(request):
            return web.Response(status=int(request.match_info["code"]), text="no")
        return web.json_response({"ok": True})

    async def retry_after(self, request):
        if not self.faulty(request):
            return web.json_response({"ok": True})
        value = request.query["value"]
        if value.startswith("+"):  # an HTTP date this many seconds from now
            when = datetime.now(UTC) + timedelta(seconds=float(value[1:]))
            value = format_datetime(when, usegmt=True)
        return web.Response(status=429, headers={"Retry-After": value})

    async def slow(self, request):
        if self.faulty(request):
            # Until the test ends: a timeout must cut it short.
            await self.release.wait()
        return web.json_response({"ok": True})

    async def reset(self, request):
        if self.faulty(request):
            request.transport.close()  # the connection drops before any response
        return web.json_response({"ok": True})

    async def bad_json(self, _request):
        return web.Response(text='{"almost": json', content_type="application/json")

    async def text(self, _request):
        body = "naïve café".encode("latin-1")
        return web.Response(body=body, content_type="text/plain", charset="latin-1")

    async def data(self, request):
        size = int(request.match_info["size"])
        response = web.StreamResponse()
        response.content_length = size
        await response.prepare(request)
        for start in range(0, size, 4096):
            await response.write(bytes(min(4096, size - start)))
        return response

    async def breaks(self, request):
        response = web.StreamResponse()
        response.content_length = 100_000
        await response.prepare(request)
        await response.write(bytes(1000))
        await asyncio.sleep(0.05)  # let the first bytes reach the client
        request.transport.close()
        return response

    async def hold(self, request):
        """Answer once ``target`` requests are in flight together, or after a second."""
        target = int(request.query["target"])
        for _ in range(100):
            if self.in_flight >= target:
                break
            await asyncio.sleep(0.01)
        return web.json_response({"ok": True})

    async def echo(self, request):
        if "times" in request.query and self.faulty(request):
            request.transport.close()
        return web.json_response({"method": request.method, "body": await request.json()})


@pytest.fixture
async def server():
    state = Server()

    @web.middleware
    async def counting(request, handler):
        return await state.count(request, handler)

    app = web.Application(middlewares=[counting])
    app.router.add_get("/ok/{name}", state.ok)
    app.router.add_get(r"/status/{code:\d+}", state.status)
    app.router.add_get("/retry-after", state.retry_after)
    app.router.add_get("/slow", state.slow)
    app.router.add_get("/reset", state.reset)
    app.router.add_get("/bad-json", state.bad_json)
    app.router.add_get("/text", state.text)
    app.router.add_get(r"/data/{size:\d+}", state.data)
    app.router.add_get("/breaks", state.breaks)
    app.router.add_get("/hold", state.hold)
    app.router.add_post("/echo", state.echo)
    state.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await state.runner.setup()
    try:
        await web.TCPSite(state.runner, "127.0.0.1", 0).start()
        host, port = state.runner.addresses[0][:2]
        state.url = f"http://{host}:{port}"
        yield state
    finally:
        state.release.set()
        await state.runner.cleanup()


async def run_one(fetcher, url):
    """Fetch one URL in a one-stage pipeline and return the result."""
    return (await pipework.map(fetcher, [url]))[0]


async def eventually(condition, seconds=5.0):
    """Wait until ``condition()`` holds, polling; the server notices closed sockets a bit later."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


def logged_delays(caplog):
    return [
        float(re.search(r" in (\d+\.\d+) s ", record.getMessage()).group(1))
        for record in caplog.records
        if record.name == "pipework.http" and record.getMessage().startswith("retrying")
    ]


# Responses -------------------------------------------------------------


async def test_bytes_text_and_json_come_back_in_input_order(server):
    names = [f"n{i}" for i in range(30)]
    urls = [f"{server.url}/ok/{name}" for name in names]

    records = await pipework.map(http.fetch(response="json"), urls, concurrency=8)
    raw = await pipework.map(http.fetch(), urls[:2])
    text = await run_one(http.fetch(response="text"), f"{server.url}/text")

    assert [record["name"] for record in records] == names
    assert [json.loads(body) for body in raw] == [{"name": "n0"}, {"name": "n1"}]
    assert text == "naïve café"  # decoded by the charset the server declared, not UTF-8


async def test_base_url_headers_and_a_request_item(server):
    fetch = http.fetch(response="json", base_url=server.url, headers={"X-Token": "t"})
    posted = http.Request("/echo", method="POST", json={"id": 7})

    got = await pipework.map(fetch, ["/ok/a", posted])

    assert got == [{"name": "a"}, {"method": "POST", "body": {"id": 7}}]


async def test_http_source_starts_a_pipeline_with_a_fetch_stage(server):
    urls = [f"{server.url}/ok/{i}" for i in range(5)]

    outputs = []
    report = (
        await http.source(urls, http.fetch(response="json"), concurrency=3)
        .sink(outputs.append)
        .run()
    )

    assert outputs == [{"name": str(i)} for i in range(5)]
    assert report["fetch"].items_out == 5


# Retries ---------------------------------------------------------------


async def test_5xx_is_retried_until_it_succeeds(server):
    fetch = http.fetch(response="json", retry=FAST)

    got = await run_one(fetch, f"{server.url}/status/503?times=2")

    assert got == {"ok": True}
    assert server.hits["/status/503"] == 3
    assert fetch.stats == http.FetchStats(requests=3, retries=2, failed=0)


async def test_after_the_last_attempt_the_error_names_url_attempts_and_status(server):
    fetch = http.fetch(retry=http.Retry(attempts=3, base_delay=0.001, max_delay=0.01))
    url = f"{server.url}/status/500"

    with pytest.raises(http.HTTPError) as caught:
        await Pipeline([url]).map(fetch).run()

    error = caught.value
    assert str(error) == f"GET {url} failed after 3 attempts: status 500 Internal Server Error"
    assert (error.status, error.attempts, error.url, error.method) == (500, 3, url, "GET")
    assert isinstance(error, pipework.PipeworkError)
    assert error.__notes__ == [f"pipework: in stage #1 'fetch' (async map), on item 0: {url!r}"]
    assert server.hits["/status/500"] == 3
    assert fetch.stats.failed == 1


async def test_a_4xx_other_than_429_is_not_retried(server):
    fetch = http.fetch(retry=FAST)

    with pytest.raises(http.HTTPError, match="after 1 attempt: status 404 Not Found") as caught:
        await run_one(fetch, f"{server.url}/status/404")

    assert caught.value.status == 404
    assert server.hits["/status/404"] == 1


async def test_statuses_to_retry_are_configurable(server):
    fetch = http.fetch(retry=http.Retry(statuses={404}, base_delay=0.001, max_delay=0.01))

    with pytest.raises(http.HTTPError, match="after 1 attempt: status 503"):
        await run_one(fetch, f"{server.url}/status/503")
    await run_one(fetch, f"{server.url}/status/404?times=1")

    assert server.hits["/status/503"] == 1
    assert server.hits["/status/404"] == 2


@pytest.mark.timeout(20)
async def test_retry_after_in_seconds_is_waited_for(server, caplog):
    caplog.set_level(logging.INFO, logger="pipework.http")
    fetch = http.fetch(response="json", retry=http.Retry(base_delay=0.001, max_delay=30))

    got = await run_one(fetch, f"{server.url}/retry-after?value=1&times=1")

    assert got == {"ok": True}
    assert logged_delays(caplog) == [1.0]
    first, second = server.arrivals["/retry-after"]
    assert second - first >= 0.95  # a lower bound: a loaded machine only makes it longer


@pytest.mark.timeout(20)
async def test_retry_after_as_an_http_date_is_capped_by_max_delay(server, caplog):
    caplog.set_level(logging.INFO, logger="pipework.http")
    fetch = http.fetch(response="json", retry=http.Retry(base_delay=0.001, max_delay=0.2))

    # 60 s from now, said as a date: far above the cap, and not a number of seconds.
    got = await run_one(fetch, f"{server.url}/retry-after?value=%2B60&times=1")

    assert got == {"ok": True}
    assert logged_delays(caplog) == [0.2]
    assert server.hits["/retry-after"] == 2


def test_retry_after_reads_seconds_and_dates():
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    from pipework._http._retry import parse_retry_after as parse

    assert parse("120", now) == 120.0
    assert parse(" 1.5 ", now) == 1.5
    assert parse("Wed, 01 May 2024 12:00:30 GMT", now) == 30.0
    assert parse("Wed, 01 May 2024 11:00:00 GMT", now) == 0.0  # in the past: now
    assert parse("-5", now) is None
    assert parse("soon", now) is None
    assert parse(None, now) is None


def test_backoff_has_full_jitter_under_an_exponential_ceiling():
    import random

    from pipework._http._retry import backoff_delay

    retry = http.Retry(base_delay=0.1, max_delay=1.0)
    rng = random.Random(5)  # noqa: S311 - jitter under test, not cryptography
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (60, 1.0)]:
        delays = [backoff_delay(retry, attempt, rng) for _ in range(200)]
        assert all(0.0 <= delay <= ceiling for delay in delays)
        # Full jitter spreads over the whole range, not around the ceiling.
        assert min(delays) < ceiling * 0.1
        assert max(delays) > ceiling * 0.9


@pytest.mark.timeout(20)
async def test_a_timeout_is_retried_and_then_reported(server):
    fetch = http.fetch(response="json", timeout=0.2, retry=FAST)

    got = await run_one(fetch, f"{server.url}/slow?times=1")
    with pytest.raises(http.HTTPError, match=r"/slow failed after 2 attempts: TimeoutError") as e:
        await run_one(
            http.fetch(timeout=0.2, retry=http.Retry(attempts=2, base_delay=0.001)),
            f"{server.url}/slow",
        )

    assert got == {"ok": True}
    assert server.hits["/slow"] == 1 + 1 + 2
    assert isinstance(e.value.__cause__, TimeoutError)
    assert e.value.status is None


@pytest.mark.timeout(20)
async def test_read_timeout_is_a_gap_between_reads(server):
    fetch = http.fetch(timeout=None, read_timeout=0.2, retry=http.Retry(attempts=1))

    with pytest.raises(http.HTTPError, match=r"after 1 attempt: .*Timeout") as caught:
        await run_one(fetch, f"{server.url}/slow")

    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_a_reset_connection_is_retried(server):
    fetch = http.fetch(response="json", retry=FAST)

    got = await run_one(fetch, f"{server.url}/reset?times=3")

    assert got == {"ok": True}
    # aiohttp itself resends an idempotent request once on a dropped connection.
    assert server.hits["/reset"] == 4
    assert fetch.stats.retries >= 1


async def test_resets_that_persist_end_in_an_error_naming_the_last_one(server):
    fetch = http.fetch(retry=http.Retry(attempts=2, base_delay=0.001, max_delay=0.01))

    with pytest.raises(http.HTTPError, match=r"after 2 attempts: ServerDisconnectedError"):
        await run_one(fetch, f"{server.url}/reset")

    assert server.hits["/reset"] >= 2


async def test_post_is_not_retried_unless_allowed(server):
    request = http.Request(f"{server.url}/echo?times=1", method="POST", json={"a": 1})

    with pytest.raises(http.HTTPError, match=r"POST .* after 1 attempt: .* is not in Retry"):
        await run_one(http.fetch(retry=FAST), request)
    got = await run_one(
        http.fetch(response="json", retry=http.Retry(methods={"post"}, base_delay=0.001)),
        http.Request(f"{server.url}/echo?times=1", method="POST", json={"a": 1}),
    )

    assert got == {"method": "POST", "body": {"a": 1}}


async def test_malformed_json_fails_at_once_with_its_cause(server):
    fetch = http.fetch(response="json", retry=FAST)

    with pytest.raises(http.HTTPError, match="after 1 attempt: the body is not valid JSON") as e:
        await run_one(fetch, f"{server.url}/bad-json")

    assert isinstance(e.value.__cause__, json.JSONDecodeError)
    assert e.value.status == 200
    assert server.hits["/bad-json"] == 1


def test_an_http_error_survives_pickling():
    error = http.HTTPError("GET", "http://h/x", 3, "status 503 Service Unavailable", 503)

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.method, copy.url, copy.attempts, copy.status) == ("GET", "http://h/x", 3, 503)
    assert str(copy) == str(error)


# Streamed bodies -------------------------------------------------------


async def test_stream_yields_chunks_and_releases_the_connection(server):
    fetch = http.fetch(response="stream", chunk_size=10_000)
    urls = [f"{server.url}/data/{size}" for size in (0, 50_000, 123_457)]

    sizes = []
    async for response in Pipeline(urls).map(fetch, concurrency=2):
        assert response.status == 200
        chunks = [chunk async for chunk in response]
        assert all(len(chunk) <= 10_000 for chunk in chunks)
        sizes.append(sum(map(len, chunks)))
        # Read to the end, so released, so the session stays open only for
        # the responses still unread.
    assert sizes == [0, 50_000, 123_457]
    assert fetch.session is None  # every response read: the session is closed
    assert await eventually(lambda: server.connections == 0)


async def test_stream_read_lines_and_release_early(server):
    async with http.fetch(response="stream", base_url=server.url) as fetch:
        whole = await fetch("/data/20000")
        assert len(await whole.read()) == 20_000
        early = await fetch("/data/1000000")
        async with early:
            first = await anext(early)
        lines = [line async for line in (await fetch("/ok/x")).lines()]
        with pytest.raises(RuntimeError, match="already released"):
            await early.read()

    assert len(first) > 0
    assert lines == [b'{"name": "x"}']
    assert fetch.session is None


async def test_a_streamed_body_that_breaks_off_raises_http_error(server):
    fetch = http.fetch(response="stream")

    async def read_all():
        async for response in Pipeline([f"{server.url}/breaks"]).map(fetch):
            async for _ in response:
                pass

    with pytest.raises(http.HTTPError, match=r"/breaks failed after 1 attempt: the body broke off"):
        await read_all()

    assert fetch.session is None


async def test_an_unread_streamed_response_that_is_dropped_closes_the_session(server):
    fetch = http.fetch(response="stream")

    responses = await pipework.map(fetch, [f"{server.url}/data/100000"])
    assert fetch.session is not None  # held open by the unread response
    session = fetch.session
    del responses  # dropped unread, as a failed run drops what its channels held

    assert await eventually(lambda: session.closed)
    assert fetch.session is None


# Sessions --------------------------------------------------------------


async def test_a_run_opens_one_session_and_closes_it_when_it_ends(server):
    fetch = http.fetch(response="json")
    seen = []

    def note(_record):
        seen.append(fetch.session)

    await Pipeline([f"{server.url}/ok/{i}" for i in range(20)]).map(fetch).sink(note).run()

    assert len(seen) == 20
    assert len({id(session) for session in seen}) == 1
    assert seen[0].closed
    assert fetch.session is None
    assert await eventually(lambda: server.connections == 0)


async def test_the_session_is_closed_when_the_run_fails_or_is_cancelled(server):
    fetch = http.fetch(response="json")
    seen = []

    def boom(_record):
        seen.append(fetch.session)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await Pipeline([f"{server.url}/ok/1"]).map(fetch).sink(boom).run()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await Pipeline([f"{server.url}/slow"]).map(fetch).run()

    assert seen[0].closed
    assert fetch.session is None
    server.release.set()  # the slow handler holds its side of the connection until it ends
    assert await eventually(lambda: server.connections == 0)


async def test_a_session_passed_in_is_used_and_left_open(server):
    async with aiohttp.ClientSession() as session:
        fetch = http.fetch(response="json", session=session)
        seen = []

        await (
            Pipeline([f"{server.url}/ok/{i}" for i in range(5)])
            .map(fetch)
            .sink(lambda _: seen.append(fetch.session))
            .run()
        )

        assert set(map(id, seen)) == {id(session)}
        assert not session.closed
        async with session.get(f"{server.url}/ok/after") as response:
            assert (await response.json()) == {"name": "after"}


async def test_one_fetcher_in_two_stages_shares_one_session(server):
    fetch = http.fetch(response="json", base_url=server.url)
    seen = []

    await (
        Pipeline([f"/ok/{i}" for i in range(10)])
        .map(fetch)
        .map(lambda record: f"/ok/{record['name']}-again")
        .map(fetch)
        .sink(lambda record: seen.append((record["name"], fetch.session)))
        .run()
    )

    assert [name for name, _ in seen] == [f"{i}-again" for i in range(10)]
    assert len({id(session) for _, session in seen}) == 1
    assert seen[0][1].closed
    assert fetch.stats.requests == 20


async def test_a_fetcher_must_be_open_to_be_called(server):
    fetch = http.fetch()

    with pytest.raises(RuntimeError, match="not open"):
        await fetch(f"{server.url}/ok/x")
    async with fetch:
        assert json.loads(await fetch(f"{server.url}/ok/x")) == {"name": "x"}
        session = fetch.session
    assert session.closed


# Limits ----------------------------------------------------------------


@pytest.mark.parametrize(("options", "expected"), [({"limit_per_host": 2}, 2), ({"limit": 3}, 3)])
async def test_connection_limits_bound_requests_in_flight(server, options, expected):
    fetch = http.fetch(**options)

    await pipework.map(fetch, [f"{server.url}/hold?target={expected}"] * 12, concurrency=12)

    assert server.peak == expected  # never more; and the limit was reached


async def test_the_rate_limit_spaces_requests_at_the_server(server):
    rate, burst, count = 40.0, 2, 24
    fetch = http.fetch(rate=rate, burst=burst)
    loop = asyncio.get_running_loop()

    start = loop.time()
    await pipework.map(fetch, [f"{server.url}/ok/{i}" for i in range(count)], concurrency=count)

    arrivals = sorted(t for times in server.arrivals.values() for t in times)
    assert len(arrivals) == count
    # The bucket lets the k-th request (from 1) leave no sooner than
    # (k - burst) / rate after the start, and each arrives after it leaves;
    # so the k-th arrival at the server does too. Load only delays arrivals,
    # so this cannot flake; without the limit all 24 arrive within milliseconds.
    early = [
        (k, round(t - start, 3))
        for k, t in enumerate(arrivals, start=1)
        if t - start < (k - burst) / rate - 1e-6
    ]
    assert not early, f"requests that beat the rate limit (k, seconds): {early}"


async def test_the_rate_limiter_on_an_injected_clock():
    from pipework._http._limiter import RateLimiter

    now = 0.0
    passed = []

    def clock():
        return now

    async def sleep(seconds):
        nonlocal now
        now += seconds
        await asyncio.sleep(0)

    limiter = RateLimiter(10.0, 3, clock=clock, sleep=sleep)

    async def call(i):
        await limiter.acquire()
        passed.append((i, round(now, 6)))

    await asyncio.gather(*(call(i) for i in range(8)))
    assert passed == [(0, 0), (1, 0), (2, 0), (3, 0.1), (4, 0.2), (5, 0.3), (6, 0.4), (7, 0.5)]

    # A long pause refills the bucket, but only up to the burst.
    now += 60.0
    passed.clear()
    await asyncio.gather(*(call(i) for i in range(5)))
    assert [t - 60.5 for _, t in passed] == pytest.approx([0, 0, 0, 0.1, 0.2])


# Configuration ---------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: http.fetch(rate=-1), ValueError, "rate= must be more than zero"),
        (lambda: http.fetch(rate=0), ValueError, "rate= must be more than zero"),
        (lambda: http.fetch(rate="fast"), TypeError, "rate= must be a number"),
        (lambda: http.fetch(burst=0), ValueError, "burst= must be at least 1"),
        (lambda: http.fetch(response="xml"), ValueError, "response= must be one of 'bytes'"),
        (lambda: http.fetch(timeout=-1), ValueError, "timeout= must be more than zero"),
        (lambda: http.fetch(read_timeout=float("nan")), ValueError, "read_timeout="),
        (lambda: http.fetch(limit=-1), ValueError, r"limit= must be at least 0 \(0 means no"),
        (lambda: http.fetch(limit_per_host=2.5), TypeError, "limit_per_host= must be a whole"),
        (lambda: http.fetch(method="GET /x"), ValueError, "method= must be a method name"),
        (lambda: http.fetch(chunk_size=10), TypeError, "chunk_size= is for response='stream'"),
        (lambda: http.fetch(response="stream", chunk_size=0), ValueError, "chunk_size="),
        (lambda: http.fetch(retry=3), TypeError, "retry= must be a pipework.http.Retry"),
        (lambda: http.fetch(retries=3), TypeError, "unexpected keyword arguments: retries"),
        (lambda: http.fetch(session="s"), TypeError, "session= must be an aiohttp.ClientSession"),
        (lambda: http.Retry(attempts=0), ValueError, "attempts= counts the first request"),
        (lambda: http.Retry(base_delay=-0.1), ValueError, "base_delay= must be zero or more"),
        (lambda: http.Retry(base_delay=2, max_delay=1), ValueError, "max_delay= .* less than"),
        (lambda: http.Retry(statuses={99}), ValueError, "from 100 to 599, not 99"),
        (lambda: http.Retry(statuses=503), TypeError, "a collection of status codes"),
        (lambda: http.Retry(methods="GET"), TypeError, "a collection of methods"),
        (lambda: http.source(["u"], fetcher=len), TypeError, "must be a Fetcher"),
    ],
)
def test_bad_settings_fail_at_construction(make, error, message):
    with pytest.raises(error, match=message):
        make()


async def test_a_session_of_yours_takes_no_connector_settings():
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="limit_per_host= configures the session pipework"):
            http.fetch(session=session, limit_per_host=4)


def test_a_fetcher_names_its_stage_fetch():
    pipeline = Pipeline(["u"]).map(http.fetch(response="json"))

    assert "'fetch' (async map)" in repr(pipeline)


def test_timeouts_default_per_attempt_and_by_read_gap_for_streams():
    whole = http.fetch()._settings.timeout
    stream = http.fetch(response="stream")._settings.timeout
    custom = http.fetch(timeout=5, connect_timeout=1, read_timeout=2)._settings.timeout

    assert (whole.total, whole.sock_read) == (30.0, None)
    # A streamed body may wait in a channel long after it arrived.
    assert (stream.total, stream.sock_read) == (None, 30.0)
    assert (custom.total, custom.sock_connect, custom.sock_read) == (5.0, 1.0, 2.0)
