"""What a fetcher is configured with, checked when it is built, and the items it accepts.

Every check that can be made before a run is made here, so a negative rate
or a misspelt response kind fails at the line that wrote it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, TypedDict

import aiohttp
from yarl import URL

from ._retry import Retry, check_seconds

ResponseKind: TypeAlias = Literal["bytes", "text", "json", "stream"]
RESPONSE_KINDS: tuple[ResponseKind, ...] = ("bytes", "text", "json", "stream")

DEFAULT_LIMIT = 100
"""Connections a fetcher's own session opens at once, over all hosts: aiohttp's default."""

DEFAULT_TIMEOUT = 30.0
"""Seconds one attempt may take, from its start to the last byte of its body.

For ``response="stream"`` it bounds the wait for each read instead.
"""

DEFAULT_CHUNK_SIZE = 64 * 1024
"""Bytes per chunk of a streamed body: large enough that a chunk costs little per byte."""


class FetchOptions(TypedDict, total=False):
    """The settings of `pipework.http.fetch` besides ``response``; see its docstring."""

    method: str
    headers: Mapping[str, str] | None
    base_url: str | URL | None
    session: aiohttp.ClientSession | None
    limit: int | None
    limit_per_host: int | None
    timeout: float | None
    connect_timeout: float | None
    read_timeout: float | None
    rate: float | None
    burst: int
    retry: Retry | None
    chunk_size: int | None


@dataclass(frozen=True, slots=True)
class Request:
    """One request, for when an item needs more than a URL: a method, a body, headers.

    A fetcher accepts a URL (a string or a ``yarl.URL``) or a `Request`.
    Unset fields fall back to the fetcher's settings; ``headers`` are added
    to the fetcher's own.

    Example::

        items = [http.Request(url, method="POST", json={"id": i}) for i, url in enumerate(urls)]
        Pipeline(items).map(http.fetch(response="json", retry=http.Retry(methods={"POST"})))

    :param url: absolute, or relative to the fetcher's ``base_url``
    :param method: overrides the fetcher's method
    :param params: query parameters to add to the URL
    :param headers: headers to add to the fetcher's
    :param json: a value to send as a JSON body
    :param data: bytes or text to send as the body
    """

    url: str | URL
    method: str | None = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None
    json: Any = None
    data: bytes | str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """A fetcher's checked configuration."""

    response: ResponseKind
    method: str
    headers: Mapping[str, str]
    base_url: URL | None
    session: aiohttp.ClientSession | None
    limit: int
    limit_per_host: int
    timeout: aiohttp.ClientTimeout
    rate: float | None
    burst: int
    retry: Retry
    chunk_size: int


def settings(response: object, options: FetchOptions) -> Settings:
    """Check a fetcher's settings and fill in the defaults."""
    if response not in RESPONSE_KINDS:
        raise ValueError(
            f"fetch(): response= must be one of {', '.join(map(repr, RESPONSE_KINDS))}, "
            f"not {response!r}"
        )
    unknown = set(options) - set(FetchOptions.__annotations__)
    if unknown:
        raise TypeError(f"fetch() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    session = options.get("session")
    _check_session(session, options)
    retry = options.get("retry", Retry())
    if retry is None:
        retry = Retry(attempts=1)
    elif not isinstance(retry, Retry):
        raise TypeError(f"fetch(): retry= must be a pipework.http.Retry or None, not {retry!r}")
    base_url = options.get("base_url")
    return Settings(
        response=response,
        method=_method(options.get("method", "GET")),
        headers=_headers(options.get("headers")),
        base_url=None if base_url is None else URL(base_url),
        session=session,
        limit=_count("limit", options.get("limit"), DEFAULT_LIMIT),
        limit_per_host=_count("limit_per_host", options.get("limit_per_host"), 0),
        timeout=_timeout(response, options),
        rate=_rate(options.get("rate")),
        burst=_count("burst", options.get("burst", 1), 1, least=1),
        retry=retry,
        chunk_size=_chunk_size(response, options.get("chunk_size")),
    )


def _check_session(session: object, options: FetchOptions) -> None:
    if session is None:
        return
    if not isinstance(session, aiohttp.ClientSession):
        raise TypeError(f"fetch(): session= must be an aiohttp.ClientSession, not {session!r}")
    for name in ("limit", "limit_per_host", "base_url"):
        if options.get(name) is not None:
            raise ValueError(
                f"fetch(): {name}= configures the session pipework creates; with "
                f"session= set it on your own session (its connector, or its base_url) instead"
            )


def _method(value: object) -> str:
    if not isinstance(value, str) or not value.isalpha():
        raise ValueError(f"fetch(): method= must be a method name such as 'GET', not {value!r}")
    return value.upper()


def _headers(value: object) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"fetch(): headers= must be a mapping of names to values, not {value!r}")
    return dict(value)


def _count(what: str, value: object, default: int, *, least: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"fetch(): {what}= must be a whole number, not {value!r}")
    if value < least:
        meaning = " (0 means no limit)" if least == 0 else ""
        raise ValueError(f"fetch(): {what}= must be at least {least}{meaning}, not {value}")
    return value


def _rate(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"fetch(): rate= must be a number of requests per second, not {value!r}")
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise ValueError(
            f"fetch(): rate= must be more than zero requests per second, not {value} "
            "(leave it out, or pass None, for no rate limit)"
        )
    return float(value)


def _timeout(response: object, options: FetchOptions) -> aiohttp.ClientTimeout:
    # aiohttp's total timeout runs until the body is read. A streamed body may
    # wait in a channel, or take minutes to read, so by default a stream is
    # bounded by the gap between reads instead.
    stream = response == "stream"
    given = {
        "timeout": options.get("timeout", None if stream else DEFAULT_TIMEOUT),
        "connect_timeout": options.get("connect_timeout"),
        "read_timeout": options.get("read_timeout", DEFAULT_TIMEOUT if stream else None),
    }
    seconds = {
        name: None if value is None else check_seconds("fetch()", name, value)
        for name, value in given.items()
    }
    # sock_connect, not connect: aiohttp's connect also counts the wait for a
    # free connection from the pool, which a busy stage should not fail on.
    return aiohttp.ClientTimeout(
        total=seconds["timeout"],
        sock_connect=seconds["connect_timeout"],
        sock_read=seconds["read_timeout"],
    )


def _chunk_size(response: object, value: object) -> int:
    if value is None:
        return DEFAULT_CHUNK_SIZE
    if response != "stream":
        raise TypeError("fetch(): chunk_size= is for response='stream'")
    return _count("chunk_size", value, DEFAULT_CHUNK_SIZE, least=1)
