"""The two ends of a pipeline: the source that feeds it and the sink that consumes it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Iterator
from itertools import islice
from time import perf_counter
from typing import Any

import anyio

from .._batch import Batch
from .._channel import Channel
from .._errors import annotate, cancelled_by_code
from .._report import StageStats
from .._shutdown import StopSignal
from .._specs import SinkSpec, SourceSpec
from .._tasks import being_cancelled, call_user

# How long an aborted run waits for an async source's cleanup (its finally
# blocks) before it gives up on it.
_SOURCE_CLOSE_TIMEOUT = 5.0


async def run_source(
    spec: SourceSpec,
    label: str,
    out: Channel[Any],
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


async def _pull(spec: SourceSpec, label: str, out: Channel[Any], stats: StageStats) -> None:
    if isinstance(spec.source, AsyncIterable):
        await _pull_async(spec.source.__aiter__(), label, out, stats)
    else:
        await _pull_sync(iter(spec.source), label, out, stats)


async def _pull_sync(
    iterator: Iterator[Any], label: str, out: Channel[Any], stats: StageStats
) -> None:
    # A sync iterable is read on the event loop, as much as fits at once:
    # it should be cheap (a list, a range, a file's lines). A blocking one
    # belongs in an async generator that reads it through a thread.
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
            out.put_nowait(Batch(range(position, position + len(items)), items))
            position += len(items)
            stats.items_out = stats.items_in = position
            if len(items) < room:  # islice stops short only at the end
                return
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


async def _pull_async(
    iterator: AsyncIterator[Any], label: str, out: Channel[Any], stats: StageStats
) -> None:
    # The whole loop runs as one user task, so the source is cancelled the
    # asyncio way (once, with room for the awaits in its finally blocks),
    # at the cost of one task per run rather than one per item.
    await call_user(_pull_async_loop(iterator, label, out, stats), "the source")


async def _pull_async_loop(
    iterator: AsyncIterator[Any], label: str, out: Channel[Any], stats: StageStats
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
            out.put_nowait(Batch(range(position, position + 1), [item]))
            position += 1
            stats.items_out = stats.items_in = position
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            # A generator paused at a yield is closed here; its cleanup gets
            # a bounded time even when the run is being cancelled.
            with anyio.move_on_after(_SOURCE_CLOSE_TIMEOUT, shield=True):
                await aclose()


def _source_failed(exc: Exception, label: str, position: int) -> None:
    exc.add_note(f"pipework: the source {label} raised after yielding {position} items")


async def run_sink(spec: SinkSpec, label: str, inp: Channel[Any], stats: StageStats) -> None:
    """Call the sink on each item, in order, awaiting it if it is async."""
    fn, is_async = spec.fn, spec.is_async
    while (batch := await inp.take()) is not None:
        stats.items_in += len(batch)
        start = perf_counter()
        try:
            for position, item in enumerate(batch.items):  # noqa: B007 - read on failure
                result = fn(item)
                if is_async:
                    await call_user(result, "the sink")
                elif inspect.iscoroutine(result):
                    _refuse_coroutine(result, label)
        except Exception as exc:
            stats.failed += 1
            noted = annotate(exc, label, batch.index[position], batch.items[position])
            if noted is exc:
                raise
            raise noted from exc.__cause__
        except asyncio.CancelledError as exc:
            if being_cancelled():
                raise
            stats.failed += 1
            error = cancelled_by_code(exc, "the sink")
            raise annotate(error, label, batch.index[position], batch.items[position]) from exc
        finally:
            elapsed = perf_counter() - start
            stats.busy += elapsed
        stats.latency.add(elapsed / len(batch), len(batch))
        stats.items_out += len(batch)


def _refuse_coroutine(result: Coroutine[Any, Any, Any], label: str) -> None:
    result.close()  # it will never run; closing it silences "never awaited"
    raise TypeError(f"sink {label} returned a coroutine; pass an async def function to await it")
