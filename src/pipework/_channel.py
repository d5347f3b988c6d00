"""Bounded channels between stages.

A channel's bound is counted in items, the unit a user reasons in, but it
carries packets, so the event loop pays for a message once per packet. A put
that does not fit is split: the part that fits goes in and the rest waits.
The number of items held never exceeds the capacity, which is what makes
the memory of a pipeline independent of the length of its stream.

A channel given ``max_bytes`` (every channel whose ``buffer=`` was left to
its default) is also bounded by the measured size of its items: it holds as
many as fit in ``max_bytes``, never more than ``capacity`` and always at
least one. Small items then move in packets large enough to keep the loop's
cost per item low, and large ones in packets small enough to keep memory flat.

Every operation tries the non-blocking path first and creates a future only
when it must wait; in the steady state of a busy pipeline most calls never
touch the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import Any, Generic, TypeAlias, TypeVar

import anyio

from ._packet import Packet
from ._sizes import SizeEstimate, approx_size

T = TypeVar("T")

__all__ = [
    "AUTO_BYTES",
    "AUTO_FLOOR",
    "AUTO_ITEMS",
    "Channel",
    "ChannelClosedError",
    "Drain",
    "Sender",
    "Tee",
    "WouldBlockError",
    "take_until",
]

AUTO_ITEMS = 4096
"""The most items a channel holds when its ``buffer=`` is left to its default."""

AUTO_FLOOR = 128
"""The items a channel left to its default holds, within its bytes, whatever its reader.

It holds more only for a reader that takes more at once: a pooled stage
says how large its next chunk may grow (`Channel.wants`), and the channel
makes room for two of them, up to `AUTO_ITEMS`. So cheap items travel in
chunks of thousands, while slow ones, whose chunks hold a few items, are not
read thousands ahead (a graceful stop finishes what the channels hold).
"""

AUTO_BYTES = 1024 * 1024
"""The most bytes of items, by `approx_size`, a channel holds when its ``buffer=`` is left
to its default. 4,096 small items fit (an int, a short string); megabyte items go one by one."""

FIRST_GUESS = 16
"""The items a channel bounded in bytes says it fits before it has seen one.

Only a stage that sizes its takes by its output's room reads it before the
first put (an inline stage, whose function may turn small items into large
ones), so it bounds that first packet; the first put measures, and the room
follows the items from then on.
"""


class WouldBlockError(Exception):
    """Raised by `Channel.take_nowait` when the channel is open but empty."""


class ChannelClosedError(RuntimeError):
    """Raised when putting into a channel that has been closed."""


class Channel(Generic[T]):
    """A bounded queue of items, moved in packets, from one stage to the next.

    The producer closes the channel when it is done; the consumer then drains
    what is left and receives ``None``.
    """

    __slots__ = (
        "_batches",
        "_bound",
        "_closed",
        "_filled",
        "_getters",
        "_max_bytes",
        "_offset",
        "_putters",
        "_since",
        "_size",
        "_sizes",
        "blocked",
        "born",
        "capacity",
        "peak",
        "peak_bound",
        "wants",
    )

    def __init__(self, capacity: int, max_bytes: int | None = None) -> None:
        """Create an empty channel of at most ``capacity`` items, and ``max_bytes`` if given."""
        if capacity < 1:
            raise ValueError(f"a channel holds at least one item, not {capacity}")
        self.capacity = capacity
        self.peak = 0
        # What the channel held room for when it held its peak: for a channel
        # bounded in bytes, the bound that mattered, not its item ceiling.
        self.peak_bound = 0
        self._max_bytes = max_bytes
        self._sizes = SizeEstimate()
        # The most its reader takes at once, as the reader says; see AUTO_FLOOR.
        self.wants = 0
        self._batches: deque[Packet[T]] = deque()
        # How many items of the first packet were already taken. Taking part of
        # a packet moves this offset instead of copying the rest of the packet.
        self._offset = 0
        self._size = 0
        self._closed = False
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        # How full the channel has been, for snapshots: the integral over time
        # of its fill (items held / its bound then), brought up to date at each
        # packet in or out, so it costs a clock read per packet, never per item.
        # The bound is the one last computed by a put; only a put changes it.
        self.born = self._since = perf_counter()
        self._filled = 0.0
        self._bound = self.fits()
        # Seconds its producer spent waiting for room (summed over producers).
        self.blocked = 0.0

    def __len__(self) -> int:
        """Return the number of items held now."""
        return self._size

    @property
    def closed(self) -> bool:
        """Whether the producer has closed the channel."""
        return self._closed

    def fits(self) -> int:
        """Return how many items the channel holds when empty, as far as their sizes are known.

        With an item bound only, its capacity. Bounded in bytes, it is what
        fits in them, no more than two of what its reader `wants` (and at
        least `AUTO_FLOOR`), and no more than its capacity.
        """
        if self._max_bytes is None:
            return self.capacity
        if self._sizes.per_item is None:
            return min(self.capacity, FIRST_GUESS)
        most = min(self.capacity, max(AUTO_FLOOR, 2 * self.wants))
        return self._sizes.items_in(self._max_bytes, most)

    def room(self) -> int:
        """Return how many items can be put now without waiting."""
        return max(0, self.fits() - self._size)

    def fill(self) -> float:
        """Return how full it is now: the items held over its bound (at most 1.0)."""
        return min(1.0, self._size / self._bound)

    def fill_seconds(self, now: float) -> float:
        """Return the integral of `fill` over time, from its creation to ``now`` (perf_counter)."""
        return self._filled + self._size / self._bound * max(0.0, now - self._since)

    async def wait_room(self) -> int:
        """Wait until at least one item fits, and return how many fit."""
        if room := self.room():
            return room
        start = perf_counter()  # only a wait pays for the clock
        try:
            while not (room := self.room()):
                await _wait(self._putters)
        finally:
            self.blocked += perf_counter() - start
        return room

    def measure(self, packet: Packet[T]) -> None:
        """Fold the size of the packet's first item into the estimate, if bytes bound this channel.

        One item a packet: a few hundred nanoseconds, where measuring all of
        them would cost as much as moving them.
        """
        if self._max_bytes is not None and packet.items:
            self._sizes.observe(approx_size(packet.items[0]))

    def put_nowait(self, packet: Packet[T]) -> None:
        """Put a packet that fits in the room available now, then measure it."""
        self._append(packet)
        self.measure(packet)
        if self._size == self.peak:
            # Measured after it went in (it fit the room it was given): the
            # bound at this peak is what its size allows, or what it took.
            self.peak_bound = max(self.peak, self.fits())

    async def put(self, packet: Packet[T]) -> None:
        """Put a packet, waiting for room; a packet larger than the room goes in parts.

        It is measured first, so a packet of items larger than the last ones
        goes in as few as the channel holds of them, not as many as it held.
        """
        self.measure(packet)
        while len(packet):
            room = await self.wait_room()
            if len(packet) <= room:
                self._append(packet)
                return
            self._append(packet.slice(0, room))
            packet = packet.slice(room, len(packet))

    def _append(self, packet: Packet[T]) -> None:
        if self._closed:
            raise ChannelClosedError("put into a closed channel")
        n = len(packet)
        fits = self.fits()
        if n > fits - self._size:
            raise ValueError(f"a packet of {n} does not fit in the room of {self.room()}")
        if n:
            # The fill integral, brought up to date before the size changes;
            # inline, since a method call here would cost as much again.
            now = perf_counter()
            self._filled += self._size / self._bound * (now - self._since)
            self._since = now
            self._bound = fits
            self._batches.append(packet)
            self._size += n
            if self._size > self.peak:
                self.peak = self._size
                self.peak_bound = fits
            _wake(self._getters)

    def close(self) -> None:
        """Mark the end of the stream; the consumer drains what is left."""
        self._closed = True
        _wake(self._getters)

    def take_nowait(self, max_items: int | None = None) -> Packet[T] | None:
        """Take up to ``max_items`` items without waiting.

        With no ``max_items``, take the next packet as it was put.

        :returns: the items, or ``None`` once the channel is closed and empty
        :raises WouldBlockError: if the channel is open but empty
        """
        if not self._batches:
            if self._closed:
                return None
            raise WouldBlockError
        taken = self._take_one() if max_items is None else self._take_up_to(max_items)
        now = perf_counter()
        self._filled += self._size / self._bound * (now - self._since)
        self._since = now
        self._size -= len(taken)
        _wake(self._putters)
        return taken

    async def take(self, max_items: int | None = None) -> Packet[T] | None:
        """Take up to ``max_items`` items, waiting only while the channel is empty.

        It returns what is there rather than waiting for ``max_items``: a
        consumer that wants more can ask again, and a lone item is never kept
        waiting for company.

        :returns: the items, or ``None`` once the channel is closed and empty
        """
        while not self._batches and not self._closed:
            await _wait(self._getters)
        return self.take_nowait(max_items)

    def _take_one(self) -> Packet[T]:
        head = self._batches.popleft()
        offset, self._offset = self._offset, 0
        return head if offset == 0 else head.slice(offset, len(head))

    def _take_up_to(self, max_items: int) -> Packet[T]:
        parts: list[Packet[T]] = []
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
        return Packet.concat(parts)


class Drain(Channel[T]):
    """The end of an output that nothing reads: every put is taken at once and dropped.

    ``Pipeline.run()`` keeps no outputs, so its tail has no reader to wait
    for. A channel and a task that empties it would cost two task switches
    per packet of at most ``capacity`` items, for nothing; a drain costs a call.
    Its bounds stay what the channel's would be, since an inline stage
    sizes what it takes by them.
    """

    __slots__ = ()

    def __init__(self, capacity: int, max_bytes: int | None = None) -> None:
        """Drop what is put; see `Channel` for the bounds a stage before it reads."""
        super().__init__(capacity, max_bytes)
        self.wants = capacity  # it takes anything at once

    def put_nowait(self, packet: Packet[T]) -> None:
        """Drop a packet of any size, measuring it: the stage before sizes its takes by `fits`."""
        if self._closed:
            raise ChannelClosedError("put into a closed channel")
        self.measure(packet)

    async def put(self, packet: Packet[T]) -> None:
        """Drop a packet of any size, without waiting."""
        self.put_nowait(packet)


class Tee(Generic[T]):
    """The sending end of a fan-out: every packet goes to each of several channels.

    A packet goes in only when it fits in all of them, so at every moment
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

    def fits(self) -> int:
        """Return how many items every channel holds when empty."""
        return min(channel.fits() for channel in self.channels)

    @property
    def wants(self) -> int:
        """The most that any of its readers takes at once."""
        return max(channel.wants for channel in self.channels)

    @property
    def peak(self) -> int:
        """The most items any of the channels held."""
        return max(channel.peak for channel in self.channels)

    @property
    def peak_bound(self) -> int:
        """The bound of the fullest channel when it was at its peak."""
        return max(self.channels, key=lambda channel: channel.peak).peak_bound

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

    def put_nowait(self, packet: Packet[T]) -> None:
        """Put a packet that fits in every channel now."""
        for channel in self.channels:
            channel.put_nowait(packet)
        if self._copied is not None:
            for index in packet.index:
                self._copied(index)

    async def put(self, packet: Packet[T]) -> None:
        """Put a packet in every channel, in parts as room allows."""
        for channel in self.channels:
            channel.measure(packet)
        while len(packet):
            room = await self.wait_room()
            if len(packet) <= room:
                self.put_nowait(packet)
                return
            self.put_nowait(packet.slice(0, room))
            packet = packet.slice(room, len(packet))

    def close(self) -> None:
        """Mark the end of the stream in every channel."""
        for channel in self.channels:
            channel.close()


Sender: TypeAlias = "Channel[Any] | Tee[Any]"
"""Where a stage puts its output: a channel, or a tee to several."""


async def take_until(
    channel: Channel[T], wanted: int, deadline: float | None
) -> tuple[list[Packet[T]], bool]:
    """Take up to ``wanted`` items as they come, until ``deadline`` (anyio's clock) or for ever.

    The waiting of a batch that fills up by size or by time. Past the
    deadline it still takes what is already there: a take that need not
    suspend is not cancelled.

    :returns: the packets taken, and whether the channel ended
    """
    parts: list[Packet[T]] = []
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
