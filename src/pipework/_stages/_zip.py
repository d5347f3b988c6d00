"""Zip: one tuple per source item from branches of one source, aligned by the item's index.

Each branch brings its items in source order (the builder refuses a branch
that could reorder or multiply them), so the zip is a merge join: it looks
at the smallest index at the head of any branch, and either every branch
has it (a tuple goes out), or some branch is known not to (the others'
copies are left out, and counted). A branch is known not to have an item
when it has brought a later one, when it has ended, or when a stage on it
said that the item left the stream there (a filter, a skipped failure):
that last word lets the zip go on without waiting for a partner that will
never come, so it never holds more than its inputs' buffers.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import Callable
from typing import Any

from .._channel import Channel, Sender
from .._observe._report import StageStats
from .._packet import Packet
from .._tasks import FailFastGroup
from ._policy import LEFT_STREAM, RUN_OBSERVER


class _Lane:
    """What the zip knows of one branch: its items not yet joined, and its holes."""

    __slots__ = ("ended", "holes", "index", "items", "last", "limit", "news", "room")

    def __init__(self, news: asyncio.Event, limit: Callable[[], int]) -> None:
        self.news = news
        self.room = asyncio.Event()
        self.limit = limit
        self.index: deque[int] = deque()
        self.items: deque[Any] = deque()
        # Indexes that left the stream on this branch, past the last it brought.
        self.holes: list[int] = []
        self.last = -1
        self.ended = False

    def left(self, index: int) -> None:
        """Hear that the item ``index`` left the stream on this branch."""
        if index > self.last:
            heapq.heappush(self.holes, index)
            self.news.set()

    def push(self, packet: Packet[Any]) -> None:
        self.index.extend(packet.index)
        self.items.extend(packet.items)
        self.last = packet.index[-1]
        # A hole before the last item brought says nothing the order does not.
        while self.holes and self.holes[0] < self.last:
            heapq.heappop(self.holes)
        self.news.set()

    def pop(self) -> Any:
        self.index.popleft()
        if len(self.items) <= self.limit():
            self.room.set()
        return self.items.popleft()

    def lacks(self, index: int) -> bool | None:
        """Whether this branch will never bring ``index``; ``None`` if it cannot tell yet."""
        if self.index and self.index[0] == index:
            return False
        if self.last > index or self.ended:
            return True
        while self.holes and self.holes[0] < index:
            heapq.heappop(self.holes)
        if self.holes and self.holes[0] == index:
            heapq.heappop(self.holes)
            return True
        return None


class Zipper:
    """The state of one zip in one run; `_run` hands each lane's `left` to the stages upstream."""

    def __init__(self, limits: list[Callable[[], int]]) -> None:
        """Join as many branches as ``limits``, holding at most ``limits[i]()`` items of branch i.

        A limit is read as it is needed: a channel bounded in bytes says how
        many of its branch's items fit (`Channel.fits`), and the lane follows.
        """
        self._news = asyncio.Event()
        self.lanes = [_Lane(self._news, limit) for limit in limits]

    async def run(
        self, label: str, inputs: list[Channel[Any]], out: Sender, stats: StageStats
    ) -> None:
        """Read every branch and emit the tuples, until every branch has ended."""
        async with FailFastGroup() as group:
            for lane, inp in zip(self.lanes, inputs, strict=True):
                group.spawn(_read, lane, inp, stats)
            await self._join(label, out, stats)

    async def _join(self, label: str, out: Sender, stats: StageStats) -> None:
        lanes = self.lanes
        while True:
            # Cleared before looking, so news that comes while this looks, or
            # while it puts, is not missed.
            self._news.clear()
            index, items = self._decide(label, stats)
            if items:
                stats.items_out += len(items)
                await out.put(Packet(index, items))
            elif all(lane.ended and not lane.index for lane in lanes):
                return
            else:
                await self._news.wait()

    def _decide(self, label: str, stats: StageStats) -> tuple[list[int], list[tuple[Any, ...]]]:
        """Join or leave out the items at the heads of the lanes, until a branch must be awaited."""
        observer = RUN_OBSERVER.get()
        left = LEFT_STREAM.get()  # a zip on a branch of another zip
        lanes = self.lanes
        index: list[int] = []
        items: list[tuple[Any, ...]] = []
        while heads := [lane.index[0] for lane in lanes if lane.index]:
            first = min(heads)
            fates = [lane.lacks(first) for lane in lanes]
            if None in fates:
                break  # a branch may still bring it
            if not any(fates):
                index.append(first)
                items.append(tuple(lane.pop() for lane in lanes))
                if observer is not None:  # the copies of a fan-out are one again
                    for _ in lanes[1:]:
                        observer.reshaped(first, 0, label)
                continue
            stats.unmatched += 1  # some branch left it out, so the zip does
            for lane, lacks in zip(lanes, fates, strict=True):
                if not lacks:
                    lane.pop()
                    if observer is not None:
                        observer.reshaped(first, 0, label)
            if left is not None:
                left(first)
        return index, items


async def _read(lane: _Lane, inp: Channel[Any], stats: StageStats) -> None:
    while True:
        lane.room.clear()
        room = lane.limit() - len(lane.items)
        if room < 1:
            await lane.room.wait()
            continue
        packet = await inp.take(room)
        if packet is None:
            lane.ended = True
            lane.news.set()
            return
        stats.items_in += len(packet)
        lane.push(packet)
