"""The exception of `pipework.http`: a request that failed after every attempt it was allowed."""

from __future__ import annotations

from .._errors import PipeworkError


class HTTPError(PipeworkError):
    """A request failed, and retrying did not help or was not allowed.

    The message says what was asked, how often, and how the last attempt
    ended, which is usually all a log needs::

        GET http://api.example/items/7 failed after 4 attempts: status 503 Service Unavailable

    The last attempt's exception, when it raised one (a reset connection, a
    timeout, a body that is not JSON), is the ``__cause__``. In a pipeline the
    error also carries pipework's note naming the stage and the item.

    :ivar method: the request's method, such as ``"GET"``
    :ivar url: the URL requested, as a string
    :ivar attempts: requests sent for this item, retries included
    :ivar reason: how the last attempt failed, in words
    :ivar status: the last response's status code, or ``None`` when the last
        attempt got no response at all
    """

    def __init__(
        self, method: str, url: str, attempts: int, reason: str, status: int | None = None
    ) -> None:
        """Record the request and how it failed."""
        # args mirror the parameters, so the error pickles like any other.
        super().__init__(method, url, attempts, reason, status)
        self.method = method
        self.url = url
        self.attempts = attempts
        self.reason = reason
        self.status = status

    def __str__(self) -> str:
        """Say what was asked, how many times, and how the last attempt ended."""
        plural = "" if self.attempts == 1 else "s"
        attempts = f"{self.attempts} attempt{plural}"
        return f"{self.method} {self.url} failed after {attempts}: {self.reason}"


def describe_error(exc: BaseException) -> str:
    """Name an exception with its message, which aiohttp often leaves empty for timeouts."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
