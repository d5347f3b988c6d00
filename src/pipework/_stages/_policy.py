"""What a stage does when an item fails: retry it, skip it, or stop the run.

Every kind of stage settles a failed item the same way (`Policy.settle`):

1. if ``retry=`` allows another attempt for this exception, wait a backoff
   with full jitter, and try the item again;
2. otherwise the item has failed for good. With ``errors="raise"``, the
   default, the run stops and the exception is raised as itself. With
   ``errors="skip"`` or a dead-letter handler, the item is dropped, recorded
   in the report as a `Failure`, and handed to the handler.

A run may also have an `ItemObserver` (a service does): every item that
fails for good is then handed to it, and ``errors="raise"`` drops the item
there instead of stopping the run, because the item's failure belongs to
whoever submitted it, not to the run.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

import anyio

from .._errors import annotate, annotate_batch, cancelled_by_code, describe_item, is_cancellation
from .._model._failure import Failure
from .._model._options import ErrorHandler, Retry
from .._observe._report import StageStats
from .._tasks import call_user

logger = logging.getLogger("pipework.stages")
"""Retries at INFO, skipped items at WARNING (DEBUG in a service, whose callers get them)."""

# A report keeps at most this many failures per stage; a dead-letter handler
# sees every one. A stream of millions of bad items must not fill memory.
MAX_KEPT_FAILURES = 1000


class ItemObserver(Protocol):
    """Learns, for a whole run, what became of the items that did not simply pass through.

    A caller that matches outputs to inputs by source index (a service,
    which resolves one future per submitted item) needs to hear of every item
    that leaves the stream early or multiplies; everything else it sees at
    the end of the pipeline.
    """

    def failed(self, failure: Failure) -> None:
        """Hear of an item that failed for good and left the stream; the run goes on."""

    def reshaped(self, index: int, count: int, stage: str) -> None:
        """Hear that a filter or flat_map made ``count`` items (0: none) of item ``index``."""


RUN_OBSERVER: ContextVar[ItemObserver | None] = ContextVar("pipework_run_observer", default=None)
"""The observer of the run a stage belongs to.

A context variable rather than an argument threaded through every kind of
stage: `_run.execute` sets it before it starts the stages' tasks, which copy
it, and a run started inside a stage function sets its own.
"""


LEFT_STREAM: ContextVar[Callable[[int], None] | None] = ContextVar(
    "pipework_left_stream", default=None
)
"""Hears of each item that leaves the stream at the current stage, by index.

A filter that drops an item, or a failure that is skipped, tells it. `_run`
sets it for the stages between a fan-out and a zip, so that the zip need
not wait for a partner that will never come. A context variable for the
same reason as `RUN_OBSERVER`; each stage's task sets its own.
"""


class Policy:
    """Settles the failed items of one stage in one run; see the module docstring."""

    def __init__(
        self,
        label: str,
        *,
        retry: Retry | None,
        errors: ErrorHandler,
        stats: StageStats,
        observer: ItemObserver | None = None,
    ) -> None:
        """Apply ``retry`` and ``errors`` to the failures of the stage ``label``.

        With an ``observer``, every item that fails for good is handed to it,
        and none stops the run.
        """
        self._label = label
        self._retry = retry
        self._errors = errors
        self._stats = stats
        self.observer = observer

    async def settle(self, error: Exception, index: int, item: Any, attempt: int) -> bool:
        """Decide about try number ``attempt`` of an item, which raised ``error``.

        :returns: ``True`` to try the item again (the backoff has been
            waited), ``False`` to drop it (it has been recorded)
        :raises Exception: ``error`` itself, with a note naming the stage and
            item, when the stage's policy is to raise and the run has no observer
        """
        if await self._retried(error, attempt, f"item {index}"):
            return True
        self._stats.failed += 1
        noted = annotate(error, self._label, index, item)
        if self._errors == "raise" and self.observer is None:
            raise noted
        self._skipped(f"item {index}", error, attempt)
        await self._record(Failure(self._label, index, describe_item(item), noted, attempt))
        return False

    def _skipped(self, what: str, error: Exception, attempt: int) -> None:
        # In a service, an item's failure goes back to whoever submitted it;
        # a warning per failed request would only repeat it.
        level = logging.DEBUG if self._errors == "raise" else logging.WARNING
        if logger.isEnabledFor(level):
            tries = "try" if attempt == 1 else f"{attempt} tries"
            logger.log(
                level,
                "stage %s: %s skipped after %s: %s: %s",
                self._label,
                what,
                tries,
                type(error).__name__,
                error,
            )

    async def _retried(self, error: Exception, attempt: int, what: str) -> bool:
        """Wait the backoff and say yes, if ``retry=`` allows another try for ``error``."""
        retry = self._retry
        if retry is None or attempt >= retry.attempts or not isinstance(error, retry.on):
            return False
        self._stats.retried += 1
        delay = retry.delay(attempt)
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "stage %s: %s failed on try %d of %d (%s: %s); trying again in %.2f s",
                self._label,
                what,
                attempt,
                retry.attempts,
                type(error).__name__,
                error,
                delay,
            )
        await anyio.sleep(delay)
        return True

    async def _record(self, failure: Failure) -> None:
        if (left := LEFT_STREAM.get()) is not None:
            left(failure.index)
        if len(self._stats.failures) < MAX_KEPT_FAILURES:
            self._stats.failures.append(failure)
        if callable(self._errors):
            await self._dead_letter(self._errors, failure)
        if self.observer is not None:
            self.observer.failed(failure)

    async def settle_all(
        self, error: Exception, indexes: Sequence[int], items: list[Any], attempt: int
    ) -> bool:
        """Decide about try number ``attempt`` of a batch function, which raised ``error``.

        Like `settle`, for a failure that belongs to every item of a batch: a
        retry tries the whole batch again; a failure for good is recorded, and
        given to the dead-letter handler, once per item.
        """
        what = f"the batch of {len(items)} from item {indexes[0] if indexes else '-'}"
        if await self._retried(error, attempt, what):
            return True
        self._stats.failed += len(items)
        noted = annotate_batch(error, self._label, indexes, items)
        if self._errors == "raise" and self.observer is None:
            raise noted
        self._skipped(what, error, attempt)
        for index, item in zip(indexes, items, strict=True):
            await self._record(Failure(self._label, index, describe_item(item), noted, attempt))
        return False

    async def _dead_letter(self, handler: Callable[[Failure], Any], failure: Failure) -> None:
        where = f"the dead-letter handler of stage {self._label}"
        try:
            try:
                result = handler(failure)
            except BaseException as exc:
                if is_cancellation(exc):  # a sync handler cannot be cancelled by the run
                    raise cancelled_by_code(exc, where) from exc
                raise
            if inspect.isawaitable(result):
                await call_user(result, where)
        except Exception as exc:
            exc.add_note(f"pipework: in {where}")
            raise
