"""How long items spend in a stage's work: a histogram of bounded size, and its percentiles.

Buckets grow by 12% (twenty to a decade) from a microsecond to three hours,
so a percentile is exact to within one bucket whatever the stream's length,
and recording one costs a logarithm and an addition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_FLOOR = 1e-6
_PER_DECADE = 20
_BUCKETS = 200


@dataclass(frozen=True, slots=True)
class Latency:
    """Seconds an item spent in a stage's work: the call, or the chunk or batch it went in.

    Percentiles are upper bounds of 12%-wide buckets, and never above ``max``.
    Time waiting in a channel is not counted: that is the queue's, and the
    report's queue peaks show it.

    :ivar p50: half the items took at most this long
    :ivar p90: nine in ten took at most this long
    :ivar p99: ninety-nine in a hundred took at most this long
    :ivar max: the longest
    """

    p50: float
    p90: float
    p99: float
    max: float


class Histogram:
    """Counts of items by how long they took; see the module docstring."""

    __slots__ = ("_counts", "_max", "_total")

    def __init__(self) -> None:
        """Start empty."""
        self._counts = [0] * _BUCKETS
        self._total = 0
        self._max = 0.0

    def add(self, seconds: float, items: int = 1) -> None:
        """Record that ``items`` items each took ``seconds``."""
        if seconds <= _FLOOR:
            bucket = 0
        else:
            bucket = min(_BUCKETS - 1, int(math.log10(seconds / _FLOOR) * _PER_DECADE) + 1)
        self._counts[bucket] += items
        self._total += items
        self._max = max(self._max, seconds)

    def summary(self) -> Latency | None:
        """Return the percentiles, or ``None`` if nothing was recorded."""
        if not self._total:
            return None
        return Latency(self._at(0.5), self._at(0.9), self._at(0.99), self._max)

    def _at(self, fraction: float) -> float:
        rank = math.ceil(fraction * self._total)
        seen = 0
        for bucket, count in enumerate(self._counts):
            seen += count
            if seen >= rank:
                return min(self._max, _FLOOR * 10 ** (bucket / _PER_DECADE))
        return self._max  # pragma: no cover - the counts add up to the total
