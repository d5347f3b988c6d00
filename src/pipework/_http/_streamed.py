"""A response whose body is read as it arrives, and which gives its connection back when done."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Self, final

import aiohttp
from multidict import CIMultiDictProxy

from ._error import HTTPError, describe_error

_BODY_ERRORS = (aiohttp.ClientError, TimeoutError)


@final
class StreamedResponse:
    """A successful response whose body has not been read yet: what ``response="stream"`` gives.

    Its body arrives as you read it, so a large download never sits whole in
    memory. It holds a connection until the body is read to the end or you
    release it; reading to the end, ``read()``, leaving ``async with`` and
    ``release()`` all give the connection back. One you drop unread gives
    it back when it is garbage-collected, but do not count on that.

    The fetcher's session stays open while any of its streamed responses are
    unreleased, so a stage after the fetch stage, or your own ``async for``
    over the pipeline, can read them after the fetch stage has finished.

    Example::

        fetch = http.fetch(response="stream", chunk_size=1 << 20)
        async for response in Pipeline(urls).map(fetch):
            async with response:
                async for chunk in response:
                    sink.write(chunk)

    Retries cover the request up to the status line and headers; a body that
    breaks off partway raises `HTTPError` and is not retried, since its first
    chunks have already been handed out.

    :ivar url: the URL that answered, after any redirects
    :ivar method: the request's method
    :ivar status: the status code, below 400
    :ivar headers: the response headers, case-insensitive
    :ivar attempts: requests it took to get this response
    """

    __slots__ = (
        "__weakref__",
        "_chunk_size",
        "_done",
        "_finalizer",
        "_on_release",
        "_received",
        "_response",
        "attempts",
        "headers",
        "method",
        "status",
        "url",
    )

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        *,
        attempts: int,
        chunk_size: int,
        on_release: Callable[[], Awaitable[None]],
        on_drop: Callable[[], None],
    ) -> None:
        """Wrap an aiohttp response; ``on_release`` or ``on_drop`` runs exactly once."""
        self.url = str(response.url)
        self.method = response.method
        self.status = response.status
        self.headers: CIMultiDictProxy[str] = response.headers
        self.attempts = attempts
        self._response = response
        self._chunk_size = chunk_size
        self._received = 0
        self._done = False
        self._on_release = on_release
        self._finalizer = weakref.finalize(self, on_drop)

    def __repr__(self) -> str:
        """Show the status and the request, as in error notes."""
        return f"<StreamedResponse {self.status} {self.method} {self.url}>"

    def __aiter__(self) -> Self:
        """Iterate over the body in chunks of up to the fetcher's ``chunk_size`` bytes."""
        return self

    async def __anext__(self) -> bytes:
        """Return the next chunk of the body; release the connection after the last."""
        if self._done:
            raise StopAsyncIteration
        chunk = await self._read(self._response.content.read(self._chunk_size))
        if not chunk:
            await self.release()
            raise StopAsyncIteration
        return chunk

    async def lines(self) -> AsyncIterator[bytes]:
        """Yield the body line by line, each with its line ending: for NDJSON or logs.

        Example::

            async for line in response.lines():
                record = json.loads(line)
        """
        try:
            while line := await self._read(self._response.content.readline()):
                yield line
        finally:
            await self.release()

    async def read(self) -> bytes:
        """Read the rest of the body at once, and release the connection."""
        try:
            return await self._read(self._response.content.read())
        finally:
            await self.release()

    async def release(self) -> None:
        """Give the connection back; an unread rest of the body is discarded.

        Safe to call more than once, and after the body has been read.
        """
        if self._done:
            return
        self._done = True
        # An unread body makes aiohttp close the connection rather than reuse it.
        self._response.release()
        self._finalizer.detach()
        await self._on_release()

    async def __aenter__(self) -> Self:
        """Use the response in ``async with``, which releases it on the way out."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the connection."""
        await self.release()

    async def _read(self, reading: Awaitable[bytes]) -> bytes:
        if self._done:
            close = getattr(reading, "close", None)
            if close is not None:
                close()  # a coroutine that will never run; silences "never awaited"
            raise RuntimeError(f"pipework.http: the body of {self!r} was already released")
        try:
            data = await reading
        except _BODY_ERRORS as exc:
            self._response.close()  # a connection that broke mid-body is not reused
            await self.release()
            raise HTTPError(
                self.method,
                self.url,
                self.attempts,
                f"the body broke off after {self._received} bytes: {describe_error(exc)}",
                self.status,
            ) from exc
        self._received += len(data)
        return data
