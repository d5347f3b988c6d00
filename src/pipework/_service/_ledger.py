"""What a service keeps track of: room for items, items waiting for the source, and futures.

- `Gate` bounds the items in flight and hands freed places to waiting
  callers first come, first served;
- `Intake` holds admitted items until the pipeline's source takes them;
- `Ledger` holds one future per item in flight and resolves it once nothing
  more of the item is to come. It is the run's `ItemObserver`.

The errors that callers of a service see live here too, beside what raises them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from .._errors import PipeworkError
from .._model._failure import Failure
from .._packet import Packet
from .._tasks import retrieve_outcome


class ServiceBusyError(PipeworkError):
    """`Service.submit_nowait` found the service full: ``max_in_flight`` items are in flight.

    Answer "busy" (an HTTP 503) and let the caller come back, or use
    ``await service.submit(item)``, which waits for room.
    """


class ServiceClosedError(PipeworkError, RuntimeError):
    """The service takes no more items: it is not open yet, it is closing, or it has stopped.

    When the service stopped because it failed, ``__cause__`` is that failure.
    Items in flight when a service fails end with this error too.
    """


class FilteredOutError(PipeworkError):
    """A filter dropped the submitted item, so there is no result for it.

    Only in pipelines without a flat_map: with one, the result is the list of
    the item's outputs, which a filter may leave empty.

    :ivar index: the item's number in the service, from 0
    :ivar stage: the stage that dropped it, such as ``#2 'valid' (inline filter)``
    """

    def __init__(self, index: int, stage: str) -> None:
        """Name the item and the stage that dropped it."""
        super().__init__(f"item {index} was filtered out by stage {stage}")
        self.index = index
        self.stage = stage

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the fields ``__init__`` takes, not by the message alone."""
        return type(self), (self.index, self.stage)


class Intake:
    """The items admitted and not yet taken by the source, in admission order."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: Any) -> None:
        self._items.append(item)
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> Intake:
        return self

    async def __anext__(self) -> Any:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class Gate:
    """Bounds the items in flight; callers that wait for room get it first come, first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed: ServiceClosedError | None = None

    def try_enter(self) -> bool:
        if self.held < self.limit and not self._waiters:
            self.held += 1
            return True
        return False

    async def enter(self) -> None:
        if self._closed is not None:
            raise self._closed
        if self.try_enter():
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.leave()  # a place was handed over just as the caller gave up
            elif future in self._waiters:
                self._waiters.remove(future)
            raise

    def leave(self) -> None:
        # A place that frees goes straight to the longest waiter, so no
        # submit_nowait can slip in ahead of it.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.held -= 1

    def close(self, error: ServiceClosedError) -> None:
        self._closed = error
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)


class _Request:
    __slots__ = ("alive", "dropped_by", "future", "outputs")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.alive = 1  # the item, or the items a flat_map made of it, still in the pipeline
        self.outputs: list[Any] = []
        self.dropped_by = ""


class Ledger:
    """The futures of the items in flight, resolved as their outputs reach the end.

    It is the run's `ItemObserver`: a filter that drops an item, a flat_map
    that multiplies it, and a failure that ends it all change how many of
    its outputs are still to come; when none are, its future is resolved and
    its place in ``max_in_flight`` is freed.
    """

    def __init__(self, gate: Gate, *, collect: bool) -> None:
        self._gate = gate
        self._collect = collect  # a flat_map: results are lists
        self._open: dict[int, _Request] = {}

    def __len__(self) -> int:
        return len(self._open)

    def add(self, index: int) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        # A caller that stops waiting does not want to hear of the outcome;
        # a failure is in the report all the same.
        future.add_done_callback(retrieve_outcome)
        self._open[index] = _Request(future)
        return future

    def arrived(self, packet: Packet[Any]) -> None:
        for index, value in zip(packet.index, packet.items, strict=True):
            request = self._open[index]
            request.outputs.append(value)
            self._less(index, request)

    def reshaped(self, index: int, count: int, stage: str) -> None:
        request = self._open[index]
        if not count and not request.dropped_by:  # the first to drop it, not a zip after
            request.dropped_by = stage
        request.alive += count
        self._less(index, request)

    def failed(self, failure: Failure) -> None:
        request = self._open[failure.index]
        if not request.future.done():
            request.future.set_exception(failure.error)
        self._less(failure.index, request)

    def _less(self, index: int, request: _Request) -> None:
        request.alive -= 1
        if request.alive:
            return
        del self._open[index]
        future = request.future
        if not future.done():
            if self._collect:
                future.set_result(request.outputs)
            elif request.outputs:
                future.set_result(request.outputs[0])
            else:
                future.set_exception(FilteredOutError(index, request.dropped_by))
        self._gate.leave()

    def end(self, error: BaseException | None) -> None:
        """Settle every future left: cancelled with no ``error``, else failed with it."""
        requests, self._open = self._open, {}
        for request in requests.values():
            if request.future.done():
                continue
            if error is None:
                request.future.cancel()
            else:
                request.future.set_exception(error)
