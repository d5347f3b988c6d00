"""A token bucket on the event loop's clock, shared by every call of one fetcher."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

# Float arithmetic leaves 0.9999999 of a token after a sleep that should
# have made a whole one; without slack the caller would sleep again for nothing.
_SLACK = 1e-9


class RateLimiter:
    """Let calls through at ``rate`` a second on average, at most ``burst`` at once.

    The bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a
    second; each request takes one. Callers queue on a lock, first come
    first served, and the one at the head sleeps until its token is due.

    Tokens are counted at the moment a caller actually goes, on the clock,
    never reserved in advance. So a loop that stalls for a second does not
    release a second's worth of requests at once when it wakes: a stall adds
    at most ``burst`` tokens, like any idle time. In any span of ``t``
    seconds at most ``burst + rate * t`` calls get through.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Start with a full bucket; ``clock`` defaults to the running loop's."""
        self._interval = 1.0 / rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock or asyncio.get_running_loop().time
        self._sleep = sleep
        self._updated = self._clock()
        # Created on the loop that uses it: a fetcher opens a new limiter each
        # time it opens a session, so a fetcher can serve one asyncio.run after another.
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a request may go, and take its token."""
        async with self._lock:
            while True:
                now = self._clock()
                elapsed = max(0.0, now - self._updated)
                self._tokens = min(self._burst, self._tokens + elapsed / self._interval)
                self._updated = now
                if self._tokens >= 1.0 - _SLACK:
                    self._tokens -= 1.0
                    return
                await self._sleep((1.0 - self._tokens) * self._interval)
