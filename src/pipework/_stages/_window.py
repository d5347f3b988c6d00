"""The engine of every concurrent stage: bounded work in flight, outputs in order.

An async stage runs one call per item; a thread or process stage runs one
call per chunk. Both are "jobs" here. The engine keeps three bounds:

- ``running``: jobs started and not finished, the stage's concurrency;
- ``window``: jobs started and not yet emitted. When a job ahead is slow,
  finished results wait for it in a reorder buffer; this bound keeps that
  buffer, and so memory, from growing. It is the backpressure of the stage.
- ``limit`` (the stage's ``max_in_flight=``, if given): items taken from the
  input and not yet emitted. A chunk never holds more than the room left
  under it, so the stage holds at most ``limit`` items, however its chunks
  are sized.

Input is taken only once the window has room, so items wait in the channel,
where they are counted. While every running slot is busy, the next chunk
keeps growing from the input, up to its target size: a job that could only
queue gains nothing from going early, and larger chunks cost less per item.

At the end of the stream, with ``share_tail``, the last items are shared
out: once the input is closed, no chunk takes more than an equal share of
what was left then over the running slots, so the workers finish together
instead of one of them running a last full chunk alone.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

import anyio

from .._channel import Channel, Sender, WouldBlockError, take_until
from .._observe._report import StageStats
from .._packet import Packet
from .._tasks import JobGroup

Job = Callable[[Packet[Any]], Awaitable[Packet[Any]]]


class Window:
    """Runs jobs over a stage's input and emits their outputs in input order."""

    def __init__(
        self,
        inp: Channel[Any],
        out: Sender,
        job: Job,
        *,
        running: int,
        window: int,
        ordered: bool,
        chunk: Callable[[], int],
        stats: StageStats,
        max_wait: float | None = None,
        limit: int | None = None,
        share_tail: bool = False,
    ) -> None:
        """Prepare to run ``job`` over ``inp``; see the module docstring for the bounds.

        With ``max_wait``, a chunk that is not full waits up to that long from
        its first item for more, even when a worker is free: the batching of
        a model that is much faster per packet.
        """
        self._inp = inp
        self._out = out
        self._job = job
        self._ordered = ordered
        self._chunk = chunk
        self._stats = stats
        self._max_wait = max_wait
        # asyncio's semaphore, not anyio's: it does not yield when a slot is
        # free, which matters when an async stage takes one item per job.
        self._running = asyncio.Semaphore(running)
        self._slots = running if share_tail else 0
        self._share: int | None = None  # once the input is closed: each chunk's share of it
        self._unemitted = asyncio.Semaphore(window if ordered else running)
        self._ready: dict[int, Packet[Any]] = {}
        self._taken: dict[int, int] = {}  # input items behind each ready result
        self._next = 0
        self._completed = 0
        self._emitting = False
        self._slot_freed: anyio.CancelScope | None = None
        # Items under ``limit`` not yet taken; None when there is no limit.
        self._room = limit
        self._room_freed = asyncio.Event()

    async def run(self) -> None:
        """Take input until it ends, running jobs; return once all are emitted."""
        async with JobGroup() as group:
            seq = 0
            while True:
                await self._unemitted.acquire()
                largest = await self._largest_chunk()
                self._inp.wants = largest  # a channel left to its default makes room for it
                packet = await self._inp.take(largest)
                if packet is None:
                    return
                packet = await self._top_up(packet, largest)
                if self._max_wait is not None:
                    packet = await self._fill(
                        packet, largest, anyio.current_time() + self._max_wait
                    )
                packet = await self._grow_until_free(packet, largest)
                if self._room is not None:
                    self._room -= len(packet)
                self._stats.items_in += len(packet)
                group.spawn(self._run_job, seq, packet)
                seq += 1

    async def _largest_chunk(self) -> int:
        """Wait for room under the limit; return the size the next chunk may reach."""
        if self._room is not None:
            while self._room < 1:
                self._room_freed.clear()
                await self._room_freed.wait()
        largest = self._chunk()
        if self._slots > 1 and self._inp.closed:  # what is left is all there is
            if self._share is None:  # shared once, so the last chunks are alike
                self._share = max(1, math.ceil(len(self._inp) / self._slots))
            largest = min(largest, self._share)
        return largest if self._room is None else min(largest, self._room)

    async def _top_up(self, packet: Packet[Any], largest: int) -> Packet[Any]:
        """Grow a chunk short of ``largest`` with what the producer puts, a loop turn at a time.

        A take returns what the channel holds, and a channel holds less than a
        chunk of cheap items may grow to. While the producer keeps putting, one
        loop turn brings more; once a turn brings nothing (a slow source, or
        none left), the chunk goes as it is, a turn later than it would have.
        """
        parts = [packet]
        size = len(packet)
        while size < largest:
            await asyncio.sleep(0)
            try:
                more = self._inp.take_nowait(largest - size)
            except WouldBlockError:
                break
            if more is None:
                break
            parts.append(more)
            size += len(more)
        return Packet.concat(parts) if len(parts) > 1 else packet

    async def _fill(self, packet: Packet[Any], largest: int, deadline: float) -> Packet[Any]:
        """Add input to ``packet`` until it has ``largest`` items or the deadline passes."""
        parts, _ = await take_until(self._inp, largest - len(packet), deadline)
        return Packet.concat([packet, *parts])

    async def _grow_until_free(self, packet: Packet[Any], largest: int) -> Packet[Any]:
        """Wait for a running slot, adding input to ``packet`` meanwhile; take the slot.

        While every slot is busy a new job could only queue, so its chunk may
        as well grow toward the target size: fewer, larger calls. A job that
        finishes cancels the wait, and the chunk goes as it is.
        """
        target = largest
        parts = [packet]
        size = len(packet)
        while size < target and self._running.locked():
            with anyio.CancelScope() as scope:
                self._slot_freed = scope
                more = await self._inp.take(target - size)
            self._slot_freed = None
            if scope.cancelled_caught or more is None:
                break
            parts.append(more)
            size += len(more)
        await self._running.acquire()
        return Packet.concat(parts)

    async def _run_job(self, seq: int, packet: Packet[Any]) -> None:
        taken = len(packet)
        start = perf_counter()
        try:
            result = await self._job(packet)
            self._stats.latency.add(perf_counter() - start, len(packet))
        finally:
            self._running.release()
            if self._slot_freed is not None:
                self._slot_freed.cancel()
        if not self._ordered:
            seq = self._completed
            self._completed += 1
        self._ready[seq] = result
        self._taken[seq] = taken
        await self._emit()

    async def _emit(self) -> None:
        # One job at a time emits, in sequence. A job that finishes while
        # another is emitting leaves its result in the buffer; the emitting
        # job finds it before it stops, because nothing awaits between its
        # last look at the buffer and clearing the flag.
        if self._emitting:
            return
        self._emitting = True
        try:
            while (result := self._ready.pop(self._next, None)) is not None:
                taken = self._taken.pop(self._next)
                self._next += 1
                if len(result):
                    self._stats.items_out += len(result)
                    await self._out.put(result)
                self._unemitted.release()
                if self._room is not None:
                    self._room += taken
                    self._room_freed.set()
        finally:
            self._emitting = False
