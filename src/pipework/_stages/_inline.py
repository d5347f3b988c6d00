"""Inline stages: a plain function applied on the event loop, a batch at a time.

This is for cheap transforms, such as ``.map(str)``; they cost less inline
than any hand-off to a thread would. Work that blocks belongs on
``on="thread"``, and CPU-heavy work on ``on="process"``.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from .._channel import Channel
from .._errors import annotate
from .._ops import apply
from .._report import StageStats
from .._specs import MapSpec
from ._common import bind, finish


async def run_inline(
    spec: MapSpec, label: str, inp: Channel[Any], out: Channel[Any], stats: StageStats
) -> None:
    """Apply the stage's function to each batch as it arrives."""
    call = await bind(spec, label)
    op = spec.op
    while (batch := await inp.take()) is not None:
        stats.items_in += len(batch)
        start = perf_counter()
        results, failed = apply(call, op, batch.items)
        stats.busy += perf_counter() - start
        if failed is not None:
            position, exc = failed
            stats.failed += 1
            raise annotate(exc, label, batch.index[position], batch.items[position])
        result = finish(op, batch, results, label)
        stats.items_out += len(result)
        await out.put(result)
