"""The options of the stages that run a function, declared once for every method that takes them.

`Pipeline.map`, ``filter``, ``flat_map`` and ``map_batches`` each have
overloads (async or not, with ``setup`` or not) so that types flow from the
function to the pipeline. The options are the same across them, so each set
is a `TypedDict` here, taken as ``**options: Unpack[...]``: one place to add
an option, and to read which stage kinds take it. Defaults and meanings are
documented once, on `Pipeline.map`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypedDict

from .._executors._backend import Backend

if TYPE_CHECKING:
    from ._failure import Failure

On: TypeAlias = Literal["thread", "process"] | Executor | Backend | None
"""Where a stage's function runs: ``None`` for its own kind's default; a `Backend` is an engine."""

ErrorHandler: TypeAlias = Literal["raise", "skip"] | Callable[["Failure"], Any]


@dataclass(frozen=True, slots=True)
class Retry:
    """How many times to try an item, how long to wait between tries, and for which errors.

    The wait before try ``n + 1`` is drawn uniformly between zero and
    ``min(max_delay, base_delay * 2 ** (n - 1))`` ("full jitter"), so items
    that failed together do not retry together.

    Example::

        pipeline.map(fetch, retry=Retry(attempts=5, base_delay=0.2, on=(ConnectionError,)))

    :param attempts: tries in all, the first included
    :param base_delay: the first wait's upper bound, in seconds
    :param max_delay: the cap on any wait, in seconds
    :param on: the exception types worth another try; others fail at once
    """

    attempts: int = 3
    base_delay: float = 0.1
    max_delay: float = 10.0
    on: type[Exception] | tuple[type[Exception], ...] = Exception

    def __post_init__(self) -> None:
        """Check the settings when the policy is written, not when an item first fails."""
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise TypeError(f"Retry: attempts= must be a whole number, not {self.attempts!r}")
        if self.attempts < 1:
            raise ValueError(f"Retry: attempts= must be at least 1, not {self.attempts}")
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"Retry: {name}= must be a number of seconds, not {value!r}")
            if math.isnan(value) or value < 0 or math.isinf(value):
                raise ValueError(f"Retry: {name}= must be zero or more seconds, not {value}")
        types = self.on if isinstance(self.on, tuple) else (self.on,)
        if not types or not all(isinstance(t, type) and issubclass(t, Exception) for t in types):
            raise TypeError(
                f"Retry: on= must be an exception type or a tuple of them, not {self.on!r}"
            )

    def delay(self, attempt: int) -> float:
        """Return how long to wait after try number ``attempt`` failed."""
        return backoff(self.base_delay, self.max_delay, attempt)


def backoff(
    base_delay: float, max_delay: float, attempt: int, rng: random.Random | None = None
) -> float:
    """Return the wait after failed try number ``attempt`` (from 1), with full jitter.

    Uniform between zero and ``min(max_delay, base_delay * 2 ** (attempt - 1))``.
    Both kinds of retry use it: a stage's (`Retry`) and a fetch's (`pipework.http.Retry`).
    """
    # The exponent is capped before it multiplies a float: 2 ** 2000 is a fine
    # int, but base_delay * 2 ** 2000 overflows.
    ceiling = min(max_delay, base_delay * 2.0 ** min(attempt - 1, 64))
    return (rng or _rng).uniform(0.0, ceiling)


_rng = random.Random()  # noqa: S311 - jitter, not cryptography


def check_errors(errors: object, where: str) -> ErrorHandler:
    """Check an ``errors=`` setting: ``"raise"``, ``"skip"`` or a dead-letter callable."""
    if errors in ("raise", "skip") or (callable(errors) and not isinstance(errors, str)):
        return errors
    raise ValueError(
        f"{where}: errors= must be 'raise', 'skip' or a callable that takes a "
        f"pipework.Failure (a dead-letter handler), not {errors!r}"
    )


def check_retry(retry: object, where: str) -> Retry | None:
    """Check a ``retry=`` setting: ``None``, a number of attempts, or a `Retry`."""
    if retry is None or isinstance(retry, Retry):
        return retry
    if isinstance(retry, int) and not isinstance(retry, bool):
        if retry < 1:
            raise ValueError(f"{where}: retry= must be at least 1 attempt, not {retry}")
        return Retry(attempts=retry)
    raise TypeError(f"{where}: retry= must be a number of attempts or a pipework.Retry")


class StageOptions(TypedDict, total=False):
    """What every stage that runs a function takes: failure policy, order, buffer, name."""

    ordered: bool
    retry: int | Retry | None
    errors: ErrorHandler
    timeout: float | None
    buffer: int | None
    name: str | None
    max_in_flight: int | None


class AsyncOptions(StageOptions, total=False):
    """An async stage's: how many calls are in flight."""

    concurrency: int | None


class PlacedOptions(StageOptions, total=False):
    """A stage that may run on threads or processes: where, and on how many."""

    on: On
    workers: int | None


class WorkerOptions(PlacedOptions, total=False):
    """A map, filter or flat_map on threads or processes: in what chunks, too."""

    chunksize: int | None
    chunk_time: float | None


class AnyOptions(AsyncOptions, WorkerOptions, total=False):
    """A stage whose function may be either kind (a filter's predicate)."""


class AsyncBatchOptions(AsyncOptions, total=False):
    """An async batch function's: its batches are made by size and wait, not chunked."""

    max_wait: float | None


class WorkerBatchOptions(PlacedOptions, total=False):
    """A batch function's on threads or processes: the batch is the chunk."""

    max_wait: float | None
