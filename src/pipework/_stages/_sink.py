"""The end of a pipeline: the sink that consumes each item, in order."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine
from time import perf_counter
from typing import Any

from .._channel import Channel
from .._errors import annotate, cancelled_by_code
from .._model._specs import SinkSpec
from .._observe._report import StageStats
from .._tasks import being_cancelled, call_user


async def run_sink(spec: SinkSpec, label: str, inp: Channel[Any], stats: StageStats) -> None:
    """Call the sink on each item, in order, awaiting it if it is async."""
    fn, is_async = spec.fn, spec.is_async
    while (packet := await inp.take()) is not None:
        stats.items_in += len(packet)
        start = perf_counter()
        try:
            for position, item in enumerate(packet.items):  # noqa: B007 - read on failure
                result = fn(item)
                if is_async:
                    await call_user(result, "the sink")
                elif inspect.iscoroutine(result):
                    _refuse_coroutine(result, label)
        except Exception as exc:
            stats.failed += 1
            noted = annotate(exc, label, packet.index[position], packet.items[position])
            if noted is exc:
                raise
            raise noted from exc.__cause__
        except asyncio.CancelledError as exc:
            if being_cancelled():
                raise
            stats.failed += 1
            error = cancelled_by_code(exc, "the sink")
            raise annotate(error, label, packet.index[position], packet.items[position]) from exc
        finally:
            elapsed = perf_counter() - start
            stats.busy += elapsed
        stats.latency.add(elapsed / len(packet), len(packet))
        stats.items_out += len(packet)


def _refuse_coroutine(result: Coroutine[Any, Any, Any], label: str) -> None:
    result.close()  # it will never run; closing it silences "never awaited"
    raise TypeError(f"sink {label} returned a coroutine; pass an async def function to await it")
