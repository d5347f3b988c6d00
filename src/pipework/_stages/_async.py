"""Async stages: a coroutine function, with a bounded number of calls in flight."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from .._batch import Batch
from .._channel import Channel
from .._errors import annotate
from .._ops import shape
from .._report import StageStats
from .._specs import MapSpec
from .._tasks import call_user
from ._common import bind, finish
from ._window import Window


async def run_async(
    spec: MapSpec, label: str, inp: Channel[Any], out: Channel[Any], stats: StageStats
) -> None:
    """Run one call per item, ``spec.concurrency`` at a time."""
    call = await bind(spec, label)
    op = spec.op

    async def job(batch: Batch[Any]) -> Batch[Any]:
        item = batch.items[0]
        start = perf_counter()
        try:
            value = shape(op, await call_user(call(item)))
        except Exception as exc:
            stats.failed += 1
            annotate(exc, label, batch.index[0], item)
            raise
        finally:
            stats.busy += perf_counter() - start
        return finish(op, batch, [value], label)

    # Ordered output may hold finished calls behind a slow one; twice the
    # concurrency in the window lets the others keep working meanwhile.
    window = Window(
        inp,
        out,
        job,
        running=spec.concurrency,
        window=2 * spec.concurrency,
        ordered=spec.ordered,
        chunk=lambda: 1,
        stats=stats,
    )
    await window.run()
