"""When a failed request is tried again, and how long it waits first.

Backoff is exponential with full jitter: before retry ``n`` the wait is
uniform in ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``. Jitter spreads
the retries of many concurrent calls that failed together (a server that
restarted) instead of sending them back in one wave. A ``Retry-After``
header is the server saying when to come back, so it replaces the backoff,
capped at ``max_delay`` so that one header cannot stall a stage for an hour.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from .._model._options import backoff

__all__ = ["Retry", "backoff_delay", "check_seconds", "parse_retry_after"]

RETRY_STATUSES = frozenset({429, *range(500, 600)})
"""Too Many Requests and every server error: the answers that may differ next time."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""Methods that may be sent twice without changing the outcome (RFC 9110, 9.2.2)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """How a fetcher retries: how often, after what, and how long it waits.

    A request is retried when it raised a connection error or a timeout, or
    got one of ``statuses``, and its method is one of ``methods``. POST and
    PATCH are left out by default, because the server may already have acted
    on a request whose connection then broke; add them when your endpoint is
    safe to repeat.

    Example::

        http.fetch(retry=http.Retry(attempts=6, base_delay=1.0, max_delay=60.0))
        http.fetch(retry=http.Retry(statuses={503}, methods={"GET", "POST"}))
        http.fetch(retry=None)                   # one attempt, no retries

    :param attempts: requests per item, the first included; 1 means no retries
    :param base_delay: seconds; the backoff before the first retry is up to this
    :param max_delay: seconds; the cap on every wait, ``Retry-After`` included
    :param statuses: status codes worth retrying; by default 429 and every 5xx
    :param methods: methods that may be retried; by default the idempotent ones
    :raises ValueError, TypeError: at once, for settings that cannot work
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    statuses: frozenset[int] = field(default=RETRY_STATUSES)
    methods: frozenset[str] = field(default=IDEMPOTENT_METHODS)

    def __post_init__(self) -> None:
        """Check every setting, and normalise the collections to frozensets."""
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise TypeError(f"Retry: attempts= must be a whole number, not {self.attempts!r}")
        if self.attempts < 1:
            raise ValueError(
                f"Retry: attempts= counts the first request too, so it must be at least 1, "
                f"not {self.attempts}"
            )
        check_seconds("Retry", "base_delay", self.base_delay, zero=True)
        check_seconds("Retry", "max_delay", self.max_delay, zero=True)
        if self.max_delay < self.base_delay:
            raise ValueError(
                f"Retry: max_delay= ({self.max_delay}) must not be less than "
                f"base_delay= ({self.base_delay})"
            )
        object.__setattr__(self, "statuses", _statuses(self.statuses))
        object.__setattr__(self, "methods", _methods(self.methods))


def _statuses(value: Iterable[int]) -> frozenset[int]:
    if isinstance(value, int | str | bytes):
        raise TypeError(f"Retry: statuses= must be a collection of status codes, not {value!r}")
    codes = frozenset(value)
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:  # noqa: PLR2004 - HTTP's range
            raise ValueError(
                f"Retry: statuses= must hold status codes from 100 to 599, not {code!r}"
            )
    return codes


def _methods(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str | bytes):
        raise TypeError(f"Retry: methods= must be a collection of methods, not {value!r}")
    methods = frozenset(value)
    if not all(isinstance(method, str) and method for method in methods):
        raise TypeError(f"Retry: methods= must hold method names such as 'GET', not {value!r}")
    return frozenset(method.upper() for method in methods)


def check_seconds(where: str, what: str, value: object, *, zero: bool = False) -> float:
    """Check a duration: a finite number of seconds, above zero (or at least zero)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where}: {what}= must be a number of seconds, not {value!r}")
    if math.isnan(value) or math.isinf(value) or value < 0 or (value == 0 and not zero):
        bound = "zero or more" if zero else "more than zero"
        raise ValueError(f"{where}: {what}= must be {bound} seconds, not {value}")
    return float(value)


def backoff_delay(retry: Retry, attempt: int, rng: random.Random | None = None) -> float:
    """Return the wait before retrying after failed attempt number ``attempt`` (from 1).

    Full jitter: uniform between zero and the exponential ceiling.
    """
    return backoff(retry.base_delay, retry.max_delay, attempt, rng)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header as seconds to wait, or ``None`` if it says nothing usable.

    The header is either a number of seconds or an HTTP date; a date in the
    past means "now". Fractions of a second are accepted, though the RFC
    asks for whole seconds.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT; "-0000" parses naive
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
