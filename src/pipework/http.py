"""HTTP for pipelines: a fetch stage with one session per run, limits, timeouts and retries.

``fetch(...)`` builds a `Fetcher`, an async function of a URL that a pipeline
runs as an ordinary async stage::

    from pipework import Pipeline, http

    fetch = http.fetch(response="json", rate=20, retry=http.Retry(attempts=5))
    report = await Pipeline(urls).map(fetch, concurrency=32).map(parse, on="process").run()

What it takes care of:

- **One session per run.** The stage opens an ``aiohttp.ClientSession`` when it
  starts and closes it when it ends, however it ends. Pass ``session=`` to
  use your own instead; pipework never closes a session it did not open.
- **Limits.** ``limit`` connections in all and ``limit_per_host`` per host;
  ``rate`` requests a second (a token bucket shared by every concurrent call,
  retries included, ``burst`` at once at most).
- **Timeouts**, per attempt: ``timeout`` for the whole of it, ``connect_timeout``
  for the TCP connect, ``read_timeout`` for any gap between reads.
- **Retries** of connection errors, timeouts, 429 and 5xx, with exponential
  backoff and full jitter; ``Retry-After`` is honoured. See `Retry`.
- **Responses** as ``"bytes"``, ``"text"``, ``"json"`` or ``"stream"`` (a
  `StreamedResponse` to read in chunks).
- **Failures** raise `HTTPError`, naming the URL, the attempts and the last
  status or error; in a pipeline it goes through the stage's failure policy
  like any other exception.

``source(urls, fetcher)`` starts a pipeline with a fetch stage. More in
``docs/http.md``.
"""

# ruff: noqa: PLC0414 - `import X as X` marks a re-export, as in __init__.py

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any, Literal, TypeVar, Unpack, overload

from yarl import URL

from ._http._error import HTTPError as HTTPError
from ._http._fetcher import Fetcher as Fetcher
from ._http._fetcher import FetchStats as FetchStats
from ._http._retry import Retry as Retry
from ._http._settings import FetchOptions as FetchOptions
from ._http._settings import Request as Request
from ._http._settings import settings as _settings
from ._http._streamed import StreamedResponse as StreamedResponse
from ._pipeline import Pipeline

__all__ = [
    "FetchOptions",
    "FetchStats",
    "Fetcher",
    "HTTPError",
    "Request",
    "Retry",
    "StreamedResponse",
    "fetch",
    "source",
]

T = TypeVar("T")


@overload
def fetch(
    response: Literal["bytes"] = "bytes", **options: Unpack[FetchOptions]
) -> Fetcher[bytes]: ...
@overload
def fetch(response: Literal["text"], **options: Unpack[FetchOptions]) -> Fetcher[str]: ...
@overload
def fetch(response: Literal["json"], **options: Unpack[FetchOptions]) -> Fetcher[Any]: ...
@overload
def fetch(
    response: Literal["stream"], **options: Unpack[FetchOptions]
) -> Fetcher[StreamedResponse]: ...
def fetch(response: str = "bytes", **options: Unpack[FetchOptions]) -> Fetcher[Any]:
    """Build a fetcher: an async function of a URL, for a pipeline stage.

    Example::

        fetch = http.fetch(
            response="json",
            base_url="https://api.example",
            headers={"Authorization": f"Bearer {token}"},
            limit_per_host=16,
            rate=50,                                  # requests per second, retries included
            timeout=10,
            retry=http.Retry(attempts=5, base_delay=0.5, max_delay=20),
        )
        Pipeline(ids).map(lambda i: f"/items/{i}").map(fetch, concurrency=32)

    Every setting is checked here, so one that cannot work fails at this line.

    :param response: what a call returns: ``"bytes"`` (the default), ``"text"``
        (decoded by the response's charset, UTF-8 if it has none), ``"json"``
        (parsed, whatever the content type), or ``"stream"`` (a
        `StreamedResponse` whose body you read in chunks)
    :param method: the request method for URL items; a `Request` item may
        override it. ``"GET"`` by default
    :param headers: sent with every request
    :param base_url: what relative URLs are joined to
    :param session: an ``aiohttp.ClientSession`` of yours to use; it is never
        closed by pipework, and ``limit``, ``limit_per_host`` and ``base_url``
        belong to it, not here
    :param limit: connections open at once, over all hosts; 100 by default,
        0 for no limit
    :param limit_per_host: connections open at once to one host; no limit by default
    :param timeout: seconds for one attempt, from sending to the last byte of
        the body, waiting for a free connection included; 30 by default,
        ``None`` for none. For ``"stream"`` the default is none, since a
        body may be read long after it arrived
    :param connect_timeout: seconds to establish a TCP connection
    :param read_timeout: seconds to wait for the next bytes of a response;
        none by default, 30 for ``"stream"``
    :param rate: requests per second at most, retries included, shared by all
        concurrent calls; no limit by default
    :param burst: requests that may go at once after a quiet spell; 1 by
        default, which spaces requests evenly
    :param retry: a `Retry`; by default 4 attempts with backoff from 0.5 s to
        30 s, on connection errors, timeouts, 429 and 5xx, for idempotent
        methods. ``None`` for a single attempt
    :param chunk_size: bytes per chunk of a streamed body; 64 KiB by default
    :raises ValueError, TypeError: at once, for settings that cannot work
    """
    return Fetcher(_settings(response, options))


@overload
def source(
    urls: Iterable[str | URL | Request] | AsyncIterable[str | URL | Request],
    fetcher: None = None,
    *,
    concurrency: int | None = None,
    ordered: bool = True,
    buffer: int | None = None,
    name: str = "fetch",
) -> Pipeline[bytes]: ...
@overload
def source(
    urls: Iterable[str | URL | Request] | AsyncIterable[str | URL | Request],
    fetcher: Fetcher[T],
    *,
    concurrency: int | None = None,
    ordered: bool = True,
    buffer: int | None = None,
    name: str = "fetch",
) -> Pipeline[T]: ...
def source(
    urls: Iterable[str | URL | Request] | AsyncIterable[str | URL | Request],
    fetcher: Fetcher[Any] | None = None,
    *,
    concurrency: int | None = None,
    ordered: bool = True,
    buffer: int | None = None,
    name: str = "fetch",
) -> Pipeline[Any]:
    """Start a pipeline whose items are the responses to ``urls``, fetched concurrently.

    The same as ``Pipeline(urls, buffer=buffer).map(fetcher, ...)``: the
    fetch is an ordinary stage, with its own row in the report and pipework's
    note on an `HTTPError`, naming the item.

    Example::

        fetch = http.fetch(response="json", rate=10)
        async for record in http.source(urls, fetch, concurrency=16):
            print(record)

    :param urls: URLs or `Request` items; an iterable or an async iterable
    :param fetcher: a `Fetcher` from `fetch`; by default ``fetch()``, bytes
    :param concurrency: requests in flight (16 by default)
    :param ordered: responses in the order of ``urls`` (the default), or as they come
    :param buffer: how many items each of the two channels holds; by default,
        up to 4,096 that fit in about 1 MiB by their measured size
    :param name: the fetch stage's name in reports and errors
    """
    if fetcher is None:
        fetcher = fetch()
    elif not isinstance(fetcher, Fetcher):
        raise TypeError(
            f"source(): fetcher= must be a Fetcher from pipework.http.fetch(), not {fetcher!r}"
        )
    return Pipeline(urls, buffer=buffer).map(
        fetcher, concurrency=concurrency, ordered=ordered, buffer=buffer, name=name
    )
