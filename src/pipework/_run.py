"""Running a graph: one task per stage in one task group, and a report at the end.

Each stage reads its input channel and writes its output channel; when it
finishes it closes its output, and the end of the stream flows downstream.
The first failure cancels every stage, and is raised as itself once every
stage has cleaned up: pools shut down, worker processes gone.
"""

from __future__ import annotations

import multiprocessing
from operator import attrgetter
from time import perf_counter
from typing import Any

from ._channel import Channel
from ._graph import Graph, output_capacity
from ._policy import RUN_OBSERVER, ItemObserver
from ._report import Report, StageReport, StageStats
from ._shutdown import StopSignal
from ._stages import claim_sources, run_node
from ._tasks import FailFastGroup


async def execute(
    graph: Graph,
    tail: Channel[Any] | None = None,
    stop: StopSignal | None = None,
    observer: ItemObserver | None = None,
) -> Report:
    """Run ``graph`` to the end of its stream and return its report.

    The last stage's output goes to ``tail`` when the caller reads it (a
    stream); otherwise it is drained here. ``tail`` is closed however the run
    ends, so its reader always wakes. Setting ``stop`` ends the stream at
    the source, and the run drains. An ``observer`` hears of every item that
    fails for good, or that a filter or flat_map reshapes; with one, a
    failed item never stops the run (see `ItemObserver`).
    """
    token = RUN_OBSERVER.set(observer)  # even None: a run inside a stage has its own
    try:
        _refuse_in_worker_bootstrap()
        claim_sources(graph)
        return await _execute(graph, tail, stop)
    finally:
        RUN_OBSERVER.reset(token)
        if tail is not None:
            tail.close()


async def _execute(graph: Graph, tail: Channel[Any] | None, stop: StopSignal | None) -> Report:
    start = perf_counter()
    inputs: dict[int, Channel[Any]] = {}
    outputs: dict[int, Channel[Any]] = {}
    for edge in graph.edges:
        outputs[edge.source] = inputs[edge.target] = Channel(edge.capacity)
    last = graph.tail
    drain: Channel[Any] | None = None
    if not graph.sealed:
        if tail is None:
            tail = drain = Channel[Any](output_capacity(last.spec))
        outputs[last.id] = tail
    stats = [StageStats() for _ in graph.nodes]
    async with FailFastGroup() as group:
        for node in graph.nodes:
            group.spawn(
                run_node, node, inputs.get(node.id), outputs.get(node.id), stats[node.id], stop
            )
        if drain is not None:
            group.spawn(_drain, drain)
    stages = tuple(
        StageReport(
            name=node.spec.name,
            kind=node.spec.kind,
            items_in=s.items_in,
            items_out=s.items_out,
            items_failed=s.failed,
            busy_seconds=s.busy,
            queue_capacity=outputs[node.id].capacity if node.id in outputs else 0,
            queue_peak=outputs[node.id].peak if node.id in outputs else 0,
            items_retried=s.retried,
            # In source order, whatever order the items failed in.
            failures=tuple(sorted(s.failures, key=attrgetter("index"))),
            latency=s.latency.summary(),
        )
        for node, s in zip(graph.nodes, stats, strict=True)
    )
    return Report(stages, perf_counter() - start)


async def _drain(channel: Channel[Any]) -> None:
    while await channel.take() is not None:
        pass


def _refuse_in_worker_bootstrap() -> None:
    # Worker processes import the main module. A script without a main guard
    # would start its pipeline again in every worker, and each would start
    # workers of its own; say so plainly instead.
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(
            "pipework: a pipeline was started while a worker process was importing the "
            "main module. Run pipelines under `if __name__ == '__main__':` in scripts."
        )
