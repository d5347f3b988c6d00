"""The demo's settings and their defaults: the command line's, the benchmark's and the tests'.

This module imports nothing but the standard library, so that the command
line can parse its arguments, and say what to install, without numpy or
scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_RATE = 400.0
"""Records a second: a tenth to a seventh of what two cores classify in batches (2,700 to 3,900
a second in benchmark h), so a record waits for its batch, not in a queue."""

DEFAULT_DURATION = 12.0
"""Seconds of records a default run asks for: 4,800 at the default rate."""

DEFAULT_MAX_BATCH = 32
DEFAULT_MAX_WAIT = 0.02
"""Seconds a batch that is not full waits for company: at the default rate, 8 or 9 records come in
that time, and a call of 9 costs little more than a call of 1 (about 5 ms against 3 to 5 in
benchmark h and the demo's report)."""

DEFAULT_CONCURRENCY = 64
"""Requests in flight: with the server setting the pace, enough to be ahead of it."""


@dataclass(frozen=True)
class DemoOptions:
    """One demo run.

    :ivar count: records to ask for; None for no end (then ``duration`` ends it)
    :ivar rate: records the server makes due each second; None to serve each
        one as soon as it is asked for, so the pipeline sets the pace
    :ivar duration: with no ``count``, stop taking records after this many
        seconds, counted from the end of the warm-up
    :ivar workers: processes per process stage (None: one per core)
    :ivar max_batch: most records per model call
    :ivar max_wait: seconds the first record of a batch that is not full waits
    :ivar batch: classify in batches (``map_batches``) rather than one by one (``map``)
    :ivar concurrency: requests in flight
    :ivar progress: show progress while it runs
    """

    count: int | None = None
    rate: float | None = DEFAULT_RATE
    duration: float | None = DEFAULT_DURATION
    workers: int | None = None
    max_batch: int = DEFAULT_MAX_BATCH
    max_wait: float = DEFAULT_MAX_WAIT
    batch: bool = True
    concurrency: int = DEFAULT_CONCURRENCY
    progress: bool = True

    def records(self) -> int | None:
        """How many records to ask for: ``count``, or ``duration`` at ``rate``."""
        if self.count is not None:
            return self.count
        if self.rate is not None and self.duration is not None:
            return max(1, round(self.rate * self.duration))
        return None

    def timer(self) -> float | None:
        """Seconds after which to stop taking records: only when nothing else ends the run."""
        return self.duration if self.records() is None else None
