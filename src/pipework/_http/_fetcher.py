"""The fetcher: an async callable that sends one request per item, with retries and limits.

Its session belongs to whoever uses it. A pipeline stage enters the fetcher
(an async context manager) when the stage starts and leaves it when the
stage ends, so each run opens one session and closes it; ``async with
fetcher:`` does the same around your own calls. Uses are counted, so one
fetcher can serve two stages or two runs at once, and streamed responses
count too: the session closes when the last use ends, and never while a
streamed body is still being read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Self, TypeVar, cast, final

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from ._error import HTTPError, describe_error
from ._limiter import RateLimiter
from ._retry import backoff_delay, parse_retry_after
from ._settings import Request, Settings
from ._streamed import StreamedResponse

T_co = TypeVar("T_co", covariant=True)

logger = logging.getLogger("pipework.http")

# Worth another attempt: the network or the server may behave next time.
# A certificate or fingerprint that does not match will not.
_TRANSIENT = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)
_PERMANENT = (aiohttp.ServerFingerprintMismatch, aiohttp.ClientSSLError)


@dataclass(frozen=True, slots=True)
class FetchStats:
    """What a fetcher has done since it was built, over all its runs.

    :ivar requests: requests sent, retries included
    :ivar retries: requests that were retries of an earlier one
    :ivar failed: calls that raised `HTTPError`
    """

    requests: int
    retries: int
    failed: int


@dataclass(slots=True)
class _Failure:
    """How one attempt failed."""

    reason: str
    transient: bool
    status: int | None = None
    error: BaseException | None = None
    retry_after: float | None = None


@final
class Fetcher(Generic[T_co]):
    """An async function of a URL that returns its response; build one with `http.fetch`.

    Use it as a pipeline stage, ``pipeline.map(fetcher, concurrency=32)``; the
    stage opens its session when it starts and closes it when it ends. To
    call it yourself, open it with ``async with fetcher:`` around the calls.
    It works on one event loop at a time.
    """

    def __init__(self, settings: Settings) -> None:
        """Hold checked settings; `http.fetch` builds them."""
        self.__name__ = "fetch"  # the stage's name in reports, as for a function
        self._settings = settings
        self._users = 0
        self._session: aiohttp.ClientSession | None = None
        self._limiter: RateLimiter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._requests = self._retries = self._failed = 0

    def __repr__(self) -> str:
        """Show the response kind and the method."""
        return f"<Fetcher {self._settings.method} -> {self._settings.response}>"

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session in use while the fetcher is open, else ``None``."""
        return self._session

    @property
    def stats(self) -> FetchStats:
        """Counts of requests, retries and failures so far."""
        return FetchStats(self._requests, self._retries, self._failed)

    async def __aenter__(self) -> Self:
        """Open the fetcher: its session and rate limiter, if it is not open already."""
        if self._users == 0:
            self._open()
        self._users += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the session if this was the last use and the session is the fetcher's own."""
        await self._leave()

    async def __call__(self, request: str | URL | Request) -> T_co:
        """Send ``request``, retrying as configured, and return its response.

        :raises HTTPError: when the last attempt failed, or a failure was not
            worth retrying; it names the URL, the attempts and the last status
            or error
        :raises RuntimeError: when the fetcher is not open
        """
        if not isinstance(request, Request):
            request = Request(request)
        method = (request.method or self._settings.method).upper()
        session = self._open_session()
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(session, request, method, attempt)
            if not isinstance(outcome, _Failure):
                return cast("T_co", outcome)
            delay = self._retry_delay(outcome, method, attempt)
            if delay is None:
                self._failed += 1
                reason = outcome.reason + self._not_retried(outcome, method, attempt)
                url = str(_full_url(session, request.url))
                raise HTTPError(method, url, attempt, reason, outcome.status) from outcome.error
            logger.info(
                "retrying %s %s in %.3f s (attempt %d of %d failed: %s)",
                method,
                _full_url(session, request.url),
                delay,
                attempt,
                self._settings.retry.attempts,
                outcome.reason,
            )
            self._retries += 1
            await asyncio.sleep(delay)

    def _retry_delay(self, failure: _Failure, method: str, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up."""
        retry = self._settings.retry
        if attempt >= retry.attempts or not failure.transient or method not in retry.methods:
            return None
        if failure.retry_after is not None:
            return min(failure.retry_after, retry.max_delay)
        return backoff_delay(retry, attempt)

    def _not_retried(self, failure: _Failure, method: str, attempt: int) -> str:
        """Explain a failure worth retrying that was not, because of its method."""
        retry = self._settings.retry
        if failure.transient and attempt < retry.attempts and method not in retry.methods:
            return f" (not retried: {method} is not in Retry(methods=...))"
        return ""

    # Each attempt ------------------------------------------------------

    async def _attempt(
        self, session: aiohttp.ClientSession, request: Request, method: str, attempt: int
    ) -> object:
        """Send the request once; return what the caller gets, or a `_Failure`."""
        response = await self._send(session, request, method)
        if isinstance(response, _Failure):
            return response
        settings = self._settings
        if response.status >= 400:  # noqa: PLR2004 - where HTTP's errors begin
            failure = _status_failure(response, settings.retry.statuses)
            response.release()
            return failure
        if settings.response == "stream":
            self._users += 1  # the body holds the session open until it is released
            return StreamedResponse(
                response,
                attempts=attempt,
                chunk_size=settings.chunk_size,
                on_release=self._leave,
                on_drop=self._dropped,
            )
        try:
            body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _error_failure(exc)
        finally:
            response.release()
        return _decode(body, settings.response, response)

    async def _send(
        self, session: aiohttp.ClientSession, request: Request, method: str
    ) -> aiohttp.ClientResponse | _Failure:
        settings = self._settings
        if self._limiter is not None:
            await self._limiter.acquire()
        self._requests += 1
        headers = None
        if settings.headers or request.headers:  # most calls have none: no dict to build
            headers = CIMultiDict(settings.headers)
            headers.update(request.headers or {})
        try:
            return await session.request(
                method,
                request.url,
                params=request.params,
                headers=headers,
                json=request.json,
                data=request.data,
                timeout=settings.timeout,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _error_failure(exc)

    # The session -------------------------------------------------------

    def _open(self) -> None:
        settings = self._settings
        self._loop = asyncio.get_running_loop()
        if settings.session is not None:
            self._session = settings.session
        else:
            connector = aiohttp.TCPConnector(
                limit=settings.limit, limit_per_host=settings.limit_per_host
            )
            self._session = aiohttp.ClientSession(base_url=settings.base_url, connector=connector)
        if settings.rate is not None:
            self._limiter = RateLimiter(settings.rate, settings.burst)

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(
                "pipework.http: this fetcher is not open. Use it as a pipeline stage, "
                "pipeline.map(fetcher), which opens it for the run, or open it yourself "
                "around your calls: async with fetcher: await fetcher(url)"
            )
        return self._session

    async def _leave(self) -> None:
        session = self._count_out()
        if session is not None:
            await session.close()

    def _dropped(self) -> None:
        """Count out a streamed response that was garbage-collected unreleased."""
        session, loop = self._count_out(), self._loop
        if session is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._close_later, session)

    def _close_later(self, session: aiohttp.ClientSession) -> None:
        task = asyncio.get_running_loop().create_task(session.close())
        self._closing.add(task)  # a task nobody holds may be collected mid-way
        task.add_done_callback(self._closing.discard)

    def _count_out(self) -> aiohttp.ClientSession | None:
        """Count one use out; return the session to close if it was the last, and ours."""
        if self._users == 0:  # an __aexit__ without its __aenter__
            return None
        self._users -= 1
        if self._users > 0:
            return None
        session, self._session, self._limiter = self._session, None, None
        return None if self._settings.session is not None else session


def _error_failure(exc: BaseException) -> _Failure:
    transient = isinstance(exc, _TRANSIENT) and not isinstance(exc, _PERMANENT)
    return _Failure(describe_error(exc), transient, error=exc)


def _status_failure(response: aiohttp.ClientResponse, statuses: frozenset[int]) -> _Failure:
    status = response.status
    reason = f"status {status} {response.reason or ''}".rstrip()
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return _Failure(reason, status in statuses, status=status, retry_after=retry_after)


def _decode(body: bytes, kind: str, response: aiohttp.ClientResponse) -> object:
    """Turn a body into what the fetcher returns; a body that cannot be is a lasting failure.

    Decoding is not retried: a body that is not JSON will not become JSON by
    asking again.
    """
    try:
        if kind == "json":
            return json.loads(body)
        if kind == "text":
            return body.decode(response.get_encoding())
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
        what = "valid JSON" if kind == "json" else f"text in {response.get_encoding()}"
        reason = f"the body is not {what}: {exc}"
        return _Failure(reason, transient=False, status=response.status, error=exc)
    return body


def _full_url(session: aiohttp.ClientSession, url: str | URL) -> URL:
    """Return the URL the session will request, joined to its ``base_url`` if it has one."""
    # A private method, hence the fallback: the message loses only the base URL.
    build: Callable[[str | URL], URL] = getattr(session, "_build_url", URL)
    return build(url)
