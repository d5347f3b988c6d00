"""One module per kind of stage; `run_node` starts the right one for a node of the graph."""

from __future__ import annotations

import asyncio
from typing import Any

from .._channel import Channel
from .._errors import annotate, cancelled_by_code
from .._graph import Node
from .._report import StageStats
from .._shutdown import StopSignal
from .._specs import BatchSpec, MapSpec, SinkSpec, SourceSpec, StageSpec
from .._tasks import being_cancelled
from ._async import run_async
from ._batch import run_batch
from ._inline import run_inline
from ._pooled import run_pooled
from ._sink import run_sink
from ._source import claim_sources as claim_sources
from ._source import run_source


async def run_node(
    node: Node,
    inp: Channel[Any] | None,
    out: Channel[Any] | None,
    stats: StageStats,
    stop: StopSignal | None = None,
) -> None:
    """Run one stage from its input channel to its output channel.

    The output is closed however the stage ends, so the end of the stream, or
    the news that it was cut short, reaches the stage downstream. ``stop``
    is for sources: setting it ends the stream there.
    """
    spec, label = node.spec, node.label
    try:
        await _run_spec(spec, label, inp, out, stats=stats, stop=stop)
    except asyncio.CancelledError as exc:
        # Each kind of stage turns a CancelledError from user code into the
        # item's failure where it knows the item; one that got past them all
        # still must not end the stage as if the run had been cancelled.
        if being_cancelled():
            raise
        raise annotate(cancelled_by_code(exc, f"stage {label}"), label, None) from exc
    finally:
        if out is not None:
            out.close()


async def _run_spec(
    spec: StageSpec,
    label: str,
    inp: Channel[Any] | None,
    out: Channel[Any] | None,
    *,
    stats: StageStats,
    stop: StopSignal | None,
) -> None:
    if isinstance(spec, SourceSpec):
        assert out is not None  # noqa: S101 - the graph gives every source an output
        await run_source(spec, label, out, stats, stop)
    elif isinstance(spec, SinkSpec):
        assert inp is not None  # noqa: S101 - and every other stage an input
        await run_sink(spec, label, inp, stats)
    else:
        assert inp is not None  # noqa: S101 - a middle stage has both
        assert out is not None  # noqa: S101
        if isinstance(spec, BatchSpec):
            await run_batch(spec, inp, out, stats)
        else:
            await _run_map(spec, label, inp, out, stats)


async def _run_map(
    spec: MapSpec, label: str, inp: Channel[Any], out: Channel[Any], stats: StageStats
) -> None:
    if spec.mode == "inline" and spec.op != "batch":
        await run_inline(spec, label, inp, out, stats)
    elif spec.mode in ("async", "inline"):
        await run_async(spec, label, inp, out, stats)
    else:
        await run_pooled(spec, label, inp, out, stats)
