"""One module per kind of stage; `run_node` starts the right one for a node of the graph."""

from __future__ import annotations

import asyncio
from typing import Any

from .._channel import Channel, Sender
from .._errors import annotate, cancelled_by_code
from .._model._graph import Node
from .._model._specs import (
    BatchSpec,
    MapSpec,
    MergeSpec,
    PartitionSpec,
    SinkSpec,
    SourceSpec,
    StageSpec,
    ZipSpec,
)
from .._observe._report import StageStats
from .._shutdown import StopSignal
from .._tasks import being_cancelled
from ._async import run_async
from ._batch import run_batch
from ._inline import run_inline
from ._merge import run_merge, run_partition
from ._pooled import run_pooled
from ._sink import run_sink
from ._source import claim_sources as claim_sources
from ._source import run_source
from ._zip import Zipper as Zipper


async def run_node(
    node: Node,
    inputs: list[Channel[Any]],
    outputs: list[Sender],
    stats: StageStats,
    *,
    stop: StopSignal | None = None,
    zipper: Zipper | None = None,
) -> None:
    """Run one stage from its input channels to its outputs (one per port).

    The outputs are closed however the stage ends, so the end of the stream,
    or the news that it was cut short, reaches the stages downstream.
    ``stop`` is for sources: setting it ends the stream there. ``zipper`` is
    a zip's state, which the stages upstream of it already hold.
    """
    spec, label = node.spec, node.label
    try:
        await _run_spec(spec, label, inputs, outputs, stats=stats, stop=stop, zipper=zipper)
    except asyncio.CancelledError as exc:
        # Each kind of stage turns a CancelledError from user code into the
        # item's failure where it knows the item; one that got past them all
        # still must not end the stage as if the run had been cancelled.
        if being_cancelled():
            raise
        raise annotate(cancelled_by_code(exc, f"stage {label}"), label, None) from exc
    finally:
        for out in outputs:
            out.close()


async def _run_spec(
    spec: StageSpec,
    label: str,
    inputs: list[Channel[Any]],
    outputs: list[Sender],
    *,
    stats: StageStats,
    stop: StopSignal | None,
    zipper: Zipper | None,
) -> None:
    if isinstance(spec, SourceSpec):
        await run_source(spec, label, outputs[0], stats, stop)
    elif isinstance(spec, SinkSpec):
        await run_sink(spec, label, inputs[0], stats)
    elif isinstance(spec, ZipSpec):
        assert zipper is not None  # noqa: S101 - the run makes one for every zip
        await zipper.run(label, inputs, outputs[0], stats)
    elif isinstance(spec, MergeSpec):
        await run_merge(inputs, outputs[0], stats)
    elif isinstance(spec, PartitionSpec):
        await run_partition(spec, label, inputs[0], outputs, stats)
    elif isinstance(spec, BatchSpec):
        await run_batch(spec, inputs[0], outputs[0], stats)
    else:
        await _run_map(spec, label, inputs[0], outputs[0], stats)


async def _run_map(
    spec: MapSpec, label: str, inp: Channel[Any], out: Sender, stats: StageStats
) -> None:
    if spec.mode == "inline" and spec.op != "map_batches":
        await run_inline(spec, label, inp, out, stats)
    elif spec.mode in ("async", "inline"):
        await run_async(spec, label, inp, out, stats)
    else:
        await run_pooled(spec, label, inp, out, stats)
