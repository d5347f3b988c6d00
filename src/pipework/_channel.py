"""Bounded channels between stages.

A channel's bound is counted in items, the unit a user reasons in, but it
carries batches, so the event loop pays for a message once per batch. A put
that does not fit is split: the part that fits goes in and the rest waits.
The number of items held never exceeds the capacity, which is what makes
the memory of a pipeline independent of the length of its stream.

Every operation tries the non-blocking path first and creates a future only
when it must wait; in the steady state of a busy pipeline most calls never
touch the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeAlias, TypeVar

import anyio

from ._batch import Batch

T = TypeVar("T")

__all__ = ["Channel", "ChannelClosedError", "Sender", "Tee", "WouldBlockError", "take_until"]


class WouldBlockError(Exception):
    """Raised by `Channel.take_nowait` when the channel is open but empty."""


class ChannelClosedError(RuntimeError):
    """Raised when putting into a channel that has been closed."""


class Channel(Generic[T]):
    """A bounded queue of items, moved in batches, from one stage to the next.

    The producer closes the channel when it is done; the consumer then drains
    what is left and receives ``None``.
    """

    __slots__ = (
        "_batches",
        "_closed",
        "_getters",
        "_offset",
        "_putters",
        "_size",
        "capacity",
        "peak",
    )

    def __init__(self, capacity: int) -> None:
        """Create an empty channel that holds at most ``capacity`` items."""
        if capacity < 1:
            raise ValueError(f"a channel holds at least one item, not {capacity}")
        self.capacity = capacity
        self.peak = 0
        self._batches: deque[Batch[T]] = deque()
        # How many items of the first batch were already taken. Taking part of
        # a batch moves this offset instead of copying the rest of the batch.
        self._offset = 0
        self._size = 0
        self._closed = False
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        """Return the number of items held now."""
        return self._size

    @property
    def closed(self) -> bool:
        """Whether the producer has closed the channel."""
        return self._closed

    def room(self) -> int:
        """Return how many items can be put now without waiting."""
        return self.capacity - self._size

    async def wait_room(self) -> int:
        """Wait until at least one item fits, and return how many fit."""
        while self._size >= self.capacity:
            await _wait(self._putters)
        return self.capacity - self._size

    def put_nowait(self, batch: Batch[T]) -> None:
        """Put a batch that fits in the room available now."""
        if self._closed:
            raise ChannelClosedError("put into a closed channel")
        n = len(batch)
        if n > self.capacity - self._size:
            raise ValueError(f"a batch of {n} does not fit in the room of {self.room()}")
        if n:
            self._batches.append(batch)
            self._size += n
            self.peak = max(self.peak, self._size)
            _wake(self._getters)

    async def put(self, batch: Batch[T]) -> None:
        """Put a batch, waiting for room; a batch larger than the room goes in parts."""
        while len(batch):
            room = await self.wait_room()
            if len(batch) <= room:
                self.put_nowait(batch)
                return
            self.put_nowait(batch.slice(0, room))
            batch = batch.slice(room, len(batch))

    def close(self) -> None:
        """Mark the end of the stream; the consumer drains what is left."""
        self._closed = True
        _wake(self._getters)

    def take_nowait(self, max_items: int | None = None) -> Batch[T] | None:
        """Take up to ``max_items`` items without waiting.

        With no ``max_items``, take the next batch as it was put.

        :returns: the items, or ``None`` once the channel is closed and empty
        :raises WouldBlockError: if the channel is open but empty
        """
        if not self._batches:
            if self._closed:
                return None
            raise WouldBlockError
        taken = self._take_one() if max_items is None else self._take_up_to(max_items)
        self._size -= len(taken)
        _wake(self._putters)
        return taken

    async def take(self, max_items: int | None = None) -> Batch[T] | None:
        """Take up to ``max_items`` items, waiting only while the channel is empty.

        It returns what is there rather than waiting for ``max_items``: a
        consumer that wants more can ask again, and a lone item is never kept
        waiting for company.

        :returns: the items, or ``None`` once the channel is closed and empty
        """
        while not self._batches and not self._closed:
            await _wait(self._getters)
        return self.take_nowait(max_items)

    def _take_one(self) -> Batch[T]:
        head = self._batches.popleft()
        offset, self._offset = self._offset, 0
        return head if offset == 0 else head.slice(offset, len(head))

    def _take_up_to(self, max_items: int) -> Batch[T]:
        parts: list[Batch[T]] = []
        want = max_items
        while want > 0 and self._batches:
            head = self._batches[0]
            left = len(head) - self._offset
            if left <= want:
                parts.append(self._take_one())
                want -= left
            else:
                parts.append(head.slice(self._offset, self._offset + want))
                self._offset += want
                want = 0
        return Batch.concat(parts)


class Tee(Generic[T]):
    """The sending end of a fan-out: every batch goes to each of several channels.

    A batch goes in only when it fits in all of them, so at every moment
    each reader has been sent the same items: a zip that waits on one branch
    never waits for an item still held back from it. The slowest reader
    sets the pace.
    """

    __slots__ = ("_copied", "capacity", "channels")

    def __init__(
        self, channels: list[Channel[T]], copied: Callable[[int], None] | None = None
    ) -> None:
        """Send to ``channels``, at least two; ``copied`` hears of each item's index as it goes."""
        self.channels = channels
        self.capacity = min(channel.capacity for channel in channels)
        self._copied = copied

    @property
    def peak(self) -> int:
        """The most items any of the channels held."""
        return max(channel.peak for channel in self.channels)

    def room(self) -> int:
        """Return how many items fit in every channel now."""
        return min(channel.room() for channel in self.channels)

    async def wait_room(self) -> int:
        """Wait until at least one item fits in every channel, and return how many fit."""
        for channel in self.channels:
            await channel.wait_room()
        # A channel that had room may have none after another's wait; look again.
        while not (room := self.room()):  # pragma: no cover - one producer per tee
            for channel in self.channels:
                await channel.wait_room()
        return room

    def put_nowait(self, batch: Batch[T]) -> None:
        """Put a batch that fits in every channel now."""
        for channel in self.channels:
            channel.put_nowait(batch)
        if self._copied is not None:
            for index in batch.index:
                self._copied(index)

    async def put(self, batch: Batch[T]) -> None:
        """Put a batch in every channel, in parts as room allows."""
        while len(batch):
            room = await self.wait_room()
            if len(batch) <= room:
                self.put_nowait(batch)
                return
            self.put_nowait(batch.slice(0, room))
            batch = batch.slice(room, len(batch))

    def close(self) -> None:
        """Mark the end of the stream in every channel."""
        for channel in self.channels:
            channel.close()


Sender: TypeAlias = "Channel[Any] | Tee[Any]"
"""Where a stage puts its output: a channel, or a tee to several."""


async def take_until(
    channel: Channel[T], wanted: int, deadline: float | None
) -> tuple[list[Batch[T]], bool]:
    """Take up to ``wanted`` items as they come, until ``deadline`` (anyio's clock) or for ever.

    The waiting of a batch that fills up by size or by time. Past the
    deadline it still takes what is already there: a take that need not
    suspend is not cancelled.

    :returns: the batches taken, and whether the channel ended
    """
    parts: list[Batch[T]] = []
    while wanted > 0:
        if deadline is None:
            more = await channel.take(wanted)
        else:
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())) as scope:
                more = await channel.take(wanted)
            if scope.cancelled_caught:
                break
        if more is None:
            return parts, True
        parts.append(more)
        wanted -= len(more)
    return parts, False


async def _wait(waiters: deque[asyncio.Future[None]]) -> None:
    future = asyncio.get_running_loop().create_future()
    waiters.append(future)
    try:
        await future
    finally:
        # A cancelled waiter must not stay queued: a wait that times out over
        # and over (a batch stage's max_wait) would otherwise grow the deque.
        if not future.done() or future.cancelled():
            future.cancel()
            with contextlib.suppress(ValueError):
                waiters.remove(future)


def _wake(waiters: deque[asyncio.Future[None]]) -> None:
    # Wake every waiter: each re-checks its own condition, and there are at
    # most a handful (one consumer, one producer per upstream stage).
    while waiters:
        future = waiters.popleft()
        if not future.done():
            future.set_result(None)
