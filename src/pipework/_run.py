"""Running a graph: one task per stage in one task group, and a report at the end.

Each stage reads its input channel and writes its output channel; when it
finishes it closes its output, and the end of the stream flows downstream.
The first failure cancels every stage, and is raised as itself once every
stage has cleaned up: pools shut down, worker processes gone.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Awaitable, Callable
from functools import partial
from operator import attrgetter
from typing import Any

from ._channel import Channel, Drain, Sender, Tee
from ._model._graph import Graph, output_bounds
from ._model._specs import PartitionSpec, SinkSpec, StageSpec, ZipSpec
from ._observe._progress import ProgressOption, check_progress, with_progress
from ._observe._report import Report
from ._observe._snapshot import Monitor
from ._shutdown import StopSignal
from ._stages import Zipper, claim_sources, run_node
from ._stages._policy import LEFT_STREAM, RUN_OBSERVER, ItemObserver
from ._tasks import FailFastGroup


async def execute(
    graph: Graph,
    tail: Channel[Any] | None = None,
    stop: StopSignal | None = None,
    observer: ItemObserver | None = None,
    *,
    monitor: Monitor | None = None,
    progress: ProgressOption = False,
) -> Report:
    """Run ``graph`` to the end of its stream and return its report.

    The last stage's output goes to ``tail`` when the caller reads it (a
    stream); otherwise it is drained here. ``tail`` is closed however the run
    ends, so its reader always wakes. Setting ``stop`` ends the stream at
    the source, and the run drains. An ``observer`` hears of every item that
    fails for good, or that a filter or flat_map reshapes; with one, a
    failed item never stops the run (see `ItemObserver`). A ``monitor``
    made for ``graph`` holds the run's counters, for live snapshots; the
    report is its last reading. ``progress`` shows the run as it goes
    (see `_observe._progress`).
    """
    check_progress(progress)
    token = RUN_OBSERVER.set(observer)  # even None: a run inside a stage has its own
    try:
        _refuse_in_worker_bootstrap()
        claim_sources(graph)
        monitor = monitor or Monitor(graph)
        run = _execute(graph, tail, stop, observer, monitor)
        return await (with_progress(progress, monitor, run) if progress is not False else run)
    finally:
        RUN_OBSERVER.reset(token)
        if tail is not None:
            tail.close()


async def _execute(
    graph: Graph,
    tail: Channel[Any] | None,
    stop: StopSignal | None,
    observer: ItemObserver | None,
    monitor: Monitor,
) -> Report:
    inputs, outputs = _wire(graph, tail, observer)
    zippers = _zippers(graph, inputs)
    hooks = _hooks(graph, zippers)
    monitor.started(inputs, outputs)
    try:
        async with FailFastGroup() as group:
            for node in graph.nodes:
                run = partial(run_node, stop=stop, zipper=zippers.get(node.id))
                group.spawn(
                    _told,
                    hooks.get(node.id),
                    run,
                    node,
                    inputs[node.id],
                    outputs[node.id],
                    monitor.stats[node.id],
                )
    finally:
        monitor.finished()
    return monitor.report()


def _wire(
    graph: Graph, tail: Channel[Any] | None, observer: ItemObserver | None
) -> tuple[dict[int, list[Channel[Any]]], dict[int, list[Sender]]]:
    """Make a channel for each edge; an output read more than once sends through a tee.

    The first of the graph's tails goes to ``tail`` if there is one; the
    others, and the parts of a partition that nothing reads, are drained.
    """
    inputs: dict[int, list[Channel[Any]]] = {node.id: [] for node in graph.nodes}
    readers: dict[tuple[int, int], list[Channel[Any]]] = {}
    for edge in sorted(graph.edges, key=attrgetter("target", "target_port")):
        channel: Channel[Any] = Channel(edge.capacity, edge.max_bytes)
        inputs[edge.target].append(channel)
        readers.setdefault((edge.source, edge.source_port), []).append(channel)
    for number, (tail_id, port) in enumerate(graph.tails):
        if number == 0 and tail is not None:
            readers.setdefault((tail_id, port), []).append(tail)
        else:
            drain = Drain[Any](*output_bounds(graph.nodes[tail_id].spec))
            readers.setdefault((tail_id, port), []).append(drain)
    outputs: dict[int, list[Sender]] = {}
    for node in graph.nodes:
        senders: list[Sender] = []
        for port in range(_ports(node.spec)):
            channels = readers.get((node.id, port))
            if channels is None:  # a part of a partition that this run does not read
                channels = [Drain(*output_bounds(node.spec))]
            if len(channels) == 1:
                senders.append(channels[0])
                continue
            copied = None
            if observer is not None:  # a service counts an item's copies
                copied = partial(observer.reshaped, count=len(channels), stage=node.label)
            senders.append(Tee(channels, copied))
        outputs[node.id] = senders
    return inputs, outputs


def _ports(spec: StageSpec) -> int:
    if isinstance(spec, SinkSpec):
        return 0
    return spec.parts if isinstance(spec, PartitionSpec) else 1


def _zippers(graph: Graph, inputs: dict[int, list[Channel[Any]]]) -> dict[int, Zipper]:
    """Make the state of each zip: it holds at most its input channels' worth per branch."""
    return {
        node.id: Zipper([channel.fits for channel in inputs[node.id]])
        for node in graph.nodes
        if isinstance(node.spec, ZipSpec)
    }


def _hooks(graph: Graph, zippers: dict[int, Zipper]) -> dict[int, list[Callable[[int], None]]]:
    """Tell each zip of the items that leave the stream on one of its branches only.

    A stage upstream of every branch of a zip needs no such word: an item it
    drops reaches no branch, so no branch waits for it.
    """
    hooks: dict[int, list[Callable[[int], None]]] = {}
    for zip_id, zipper in zippers.items():
        feeds = sorted(
            (edge for edge in graph.edges if edge.target == zip_id),
            key=attrgetter("target_port"),
        )
        above = [graph.upstream(edge.source) for edge in feeds]
        shared = set.intersection(*above)
        for lane, nodes in zip(zipper.lanes, above, strict=True):
            for node in nodes - shared:
                hooks.setdefault(node, []).append(lane.left)
    return hooks


async def _told(
    hooks: list[Callable[[int], None]] | None,
    run: Callable[..., Awaitable[None]],
    *args: Any,
) -> None:
    """Run a stage with the zips downstream listening for the items that leave it."""
    if hooks is not None:
        LEFT_STREAM.set(hooks[0] if len(hooks) == 1 else _all(hooks))  # this task's own context
    await run(*args)


def _all(hooks: list[Callable[[int], None]]) -> Callable[[int], None]:
    def tell(index: int) -> None:
        for hook in hooks:
            hook(index)

    return tell


def _refuse_in_worker_bootstrap() -> None:
    # Worker processes import the main module. A script without a main guard
    # would start its pipeline again in every worker, and each would start
    # workers of its own; say so plainly instead.
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(
            "pipework: a pipeline was started while a worker process was importing the "
            "main module. Run pipelines under `if __name__ == '__main__':` in scripts."
        )
