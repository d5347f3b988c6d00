"""The start of a pipeline: the source, pulled only as fast as the first channel has room.

Three kinds of source, read three ways:

- **A collection in memory** (a list, a range, a dict, an array: anything with
  a length) is read on the event loop, as much as fits at once. Nothing there
  can block, and a thread would only cost time.
- **Any other sync iterable** (a generator, a file, a database cursor) may
  block on each item, so it is read in a thread of its own, one slice at a
  time: as many items as fit, or as many as come in `READ_SLICE` seconds,
  whichever is first. The event loop never waits on it. The thread is the
  same for the whole run, so an iterator is always advanced, and closed, by
  one thread.
- **An async iterable** is awaited on the loop, in one task for the run.

A one-shot source (an iterator or an async iterator) can feed one run only.
`claim_sources` refuses a second run of it, or a run of one that is already
exhausted, at once and by name, rather than let it process no items, or split
them with another run, in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import weakref
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Iterator,
)
from itertools import islice
from time import perf_counter
from typing import Any

import anyio

from .._channel import Sender
from .._errors import cancelled_by_code
from .._model._graph import Graph
from .._model._specs import SourceSpec
from .._observe._report import StageStats
from .._packet import Packet
from .._shutdown import StopSignal
from .._tasks import being_cancelled, call_user

# How long an aborted run waits for a source's cleanup (its finally blocks)
# before it gives up on it.
_SOURCE_CLOSE_TIMEOUT = 5.0
# The longest a thread reads a sync source before it hands over what it has:
# items reach the pipeline at least this often, however slow each one is.
READ_SLICE = 0.005

# One-shot sources that a run has taken, or their specs where the source
# cannot be referred to weakly (a map object, say).
_claimed: weakref.WeakSet[Any] = weakref.WeakSet()


def claim_sources(graph: Graph) -> None:
    """Take the graph's one-shot sources for this run, or refuse them if already used.

    :raises RuntimeError: for an iterator that another run took, or that is
        exhausted or closed
    """
    for node in graph.nodes:
        spec = node.spec
        if not isinstance(spec, SourceSpec):
            continue
        source = spec.source
        if not isinstance(source, Iterator | AsyncIterator):
            continue  # re-iterable: each run gets its own iterator
        if _taken(source) or _taken(spec) or _exhausted(source):
            raise RuntimeError(
                f"pipework: the source {node.label} is a one-shot iterator, {source!r}, "
                "and an earlier run has used it, or it is exhausted. Build the pipeline on "
                "something each run can iterate afresh (a list, a range, an object whose "
                "__iter__ opens the data), or on a new iterator for each run."
            )
        try:
            _claimed.add(source)
        except TypeError:  # no weak references to it, or no hash: claim its spec instead
            _claimed.add(spec)


def _taken(claimant: object) -> bool:
    try:
        return claimant in _claimed
    except TypeError:  # unhashable: never claimed
        return False


def _exhausted(source: object) -> bool:
    # Generators and async generators say when they are finished; so do files.
    for frame in ("gi_frame", "ag_frame"):
        if hasattr(source, frame):
            return getattr(source, frame) is None
    return getattr(source, "closed", False) is True


async def run_source(
    spec: SourceSpec,
    label: str,
    out: Sender,
    stats: StageStats,
    stop: StopSignal | None = None,
) -> None:
    """Pull items from the source only as fast as the first channel makes room for them.

    Waiting for room before pulling means an item is never taken from the
    source only to wait in the source's hands.

    Setting ``stop`` stops the source as if it had ended: it is cancelled the
    asyncio way, so an async generator's ``finally`` blocks run, and every
    stage downstream finishes what it holds.
    """
    if stop is None:
        await _pull(spec, label, out, stats)
        return
    if stop.is_set():
        return
    with anyio.CancelScope() as scope:
        watcher = asyncio.ensure_future(stop.wait())
        watcher.add_done_callback(lambda _: scope.cancel())
        try:
            await _pull(spec, label, out, stats)
        finally:
            watcher.cancel()


async def _pull(spec: SourceSpec, label: str, out: Sender, stats: StageStats) -> None:
    source = spec.source
    if isinstance(source, AsyncIterable):
        await _pull_async(source.__aiter__(), label, out, stats)
    elif isinstance(source, Collection):
        await _pull_in_memory(iter(source), label, out, stats)
    else:
        await _pull_in_thread(source, label, out, stats)


async def _pull_in_memory(
    iterator: Iterator[Any], label: str, out: Sender, stats: StageStats
) -> None:
    position = 0
    try:
        while True:
            room = await out.wait_room()
            start = perf_counter()
            items: list[Any] = []
            try:
                items.extend(islice(iterator, room))
            except Exception as exc:
                # extend() keeps what the iterator yielded before it raised.
                _source_failed(exc, label, position + len(items))
                raise
            except asyncio.CancelledError as exc:  # a sync iterator's: never the run's
                error = cancelled_by_code(exc, "the source")
                _source_failed(error, label, position + len(items))
                raise error from exc
            finally:
                stats.busy += perf_counter() - start
            if not items:
                return
            out.put_nowait(Packet(range(position, position + len(items)), items))
            position += len(items)
            stats.items_out = stats.items_in = position
            if len(items) < room:  # islice stops short only at the end
                return
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


async def _pull_in_thread(
    source: Iterable[Any], label: str, out: Sender, stats: StageStats
) -> None:
    reader = _Reader(source)
    position = 0
    try:
        while True:
            room = await out.wait_room()
            start = perf_counter()
            try:
                items, ended, error = await reader.read(room)
            finally:
                stats.busy += perf_counter() - start
            if items:
                out.put_nowait(Packet(range(position, position + len(items)), items))
                position += len(items)
                stats.items_out = stats.items_in = position
            if isinstance(error, asyncio.CancelledError):  # a sync iterator's: never the run's
                cancelled = cancelled_by_code(error, "the source")
                _source_failed(cancelled, label, position)
                raise cancelled from error
            if isinstance(error, Exception):
                _source_failed(error, label, position)
                raise error
            if error is not None:
                raise error  # SystemExit, say: as it would be on the loop
            if ended:
                return
    finally:
        # Shielded and bounded, as for an async source: a read that blocks
        # for ever must not hold a cancelled run for ever.
        with anyio.move_on_after(_SOURCE_CLOSE_TIMEOUT, shield=True):
            await reader.aclose()
        reader.stop()


class _Reader:
    """A sync iterable advanced in a daemon thread of its own, a slice at a time.

    A daemon, so that a source blocked for ever cannot hold up the
    interpreter's exit; the run itself has stopped waiting on it by then.
    """

    def __init__(self, source: Iterable[Any]) -> None:
        self._source = source
        self._iterator: Iterator[Any] | None = None
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._serve, name="pipework-source", daemon=True).start()

    async def read(self, room: int) -> tuple[list[Any], bool, BaseException | None]:
        """Return up to ``room`` items, whether the source has ended, and what it raised."""
        outcome: tuple[list[Any], bool, BaseException | None] = await self._in_thread(
            lambda: self._read(room)
        )
        return outcome

    async def aclose(self) -> None:
        """Close the iterator in its thread, once the read in progress is done."""
        await self._in_thread(self._close)

    def stop(self) -> None:
        """Let the thread exit once its jobs are done."""
        self._jobs.put(None)

    def _read(self, room: int) -> tuple[list[Any], bool, BaseException | None]:
        items: list[Any] = []
        try:
            if self._iterator is None:
                self._iterator = iter(self._source)  # a cursor may query here
            deadline = perf_counter() + READ_SLICE
            for item in self._iterator:
                items.append(item)
                if len(items) >= room or perf_counter() >= deadline:
                    return items, False, None
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, with the items before it
            return items, True, exc
        return items, True, None

    def _close(self) -> None:
        close = getattr(self._iterator, "close", None)
        if close is not None:
            close()

    async def _in_thread(self, job: Callable[[], Any]) -> Any:
        future: asyncio.Future[Any] = self._loop.create_future()

        def run() -> None:
            try:
                outcome = job()
            except BaseException as exc:  # noqa: BLE001 - the caller's to raise
                self._loop.call_soon_threadsafe(_resolve, future, None, exc)
            else:
                self._loop.call_soon_threadsafe(_resolve, future, outcome, None)

        self._jobs.put(run)
        return await future

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                job()


def _resolve(future: asyncio.Future[Any], outcome: Any, error: BaseException | None) -> None:
    if future.done():  # its reader was cancelled meanwhile
        return
    if error is None:
        future.set_result(outcome)
    else:
        future.set_exception(error)


async def _pull_async(
    iterator: AsyncIterator[Any], label: str, out: Sender, stats: StageStats
) -> None:
    # The whole loop runs as one user task, so the source is cancelled the
    # asyncio way (once, with room for the awaits in its finally blocks),
    # at the cost of one task per run rather than one per item.
    await call_user(_pull_async_loop(iterator, label, out, stats), "the source")


async def _pull_async_loop(
    iterator: AsyncIterator[Any], label: str, out: Sender, stats: StageStats
) -> None:
    position = 0
    try:
        while True:
            await out.wait_room()
            start = perf_counter()
            try:
                item = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except Exception as exc:
                _source_failed(exc, label, position)
                raise
            except asyncio.CancelledError as exc:
                if being_cancelled():
                    raise
                error = cancelled_by_code(exc, "the source")
                _source_failed(error, label, position)
                raise error from exc
            finally:
                stats.busy += perf_counter() - start
            out.put_nowait(Packet(range(position, position + 1), [item]))
            position += 1
            stats.items_out = stats.items_in = position
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            # A generator paused at a yield is closed here; its cleanup gets
            # a bounded time even when the run is being cancelled.
            with anyio.move_on_after(_SOURCE_CLOSE_TIMEOUT, shield=True):
                await aclose()


def _source_failed(exc: BaseException, label: str, position: int) -> None:
    exc.add_note(f"pipework: the source {label} raised after yielding {position} items")
