"""A run seen while it runs: a frozen `Snapshot` of every stage's counters, taken at any moment.

Taking one reads what the stages already count (`StageStats`) and what the
channels already keep (their size, bound, and the integral of their fill),
so it never stops the run and adds no work per item. The report at the end
is built from the same reading (`Monitor.report`), so the two never disagree.

The figures are those a bottleneck is judged by: how busy a stage is against
its capacity (workers, or concurrency), how full its input and output have
been on average, and for a source, whether it waited on its iterator or on
the room downstream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sized
from dataclasses import dataclass
from operator import attrgetter
from time import perf_counter
from typing import Any

from .._channel import Channel, Drain, Sender, Tee
from .._model._graph import Graph, Node
from .._model._specs import MapSpec, SinkSpec, SourceSpec, StageSpec
from ._bottleneck import Bottleneck, find_bottleneck
from ._latency import Latency
from ._report import Report, StageReport, StageStats, first_named

RECENT = 5.0
"""Seconds over which `StageSnapshot.recent_rate` is measured, at least (see `Monitor`)."""


@dataclass(frozen=True, slots=True)
class StageSnapshot:
    """One stage at one moment of a run.

    :ivar name: the stage's name
    :ivar kind: where and how it runs, such as ``process map`` or ``source``
    :ivar items_in: items it took from its input so far
    :ivar items_out: items it put on its output so far (for a sink: items consumed)
    :ivar items_failed: items that failed for good
    :ivar items_retried: tries made again after a failure
    :ivar busy_seconds: time in the stage's work, summed over its workers or
        calls; for a source, the time spent waiting on its iterator
    :ivar blocked_seconds: time it waited for room in its output, the stages
        after it being full (for a source, the other half of its time)
    :ivar capacity: how many items it works on at once: its workers, its
        ``concurrency``, or 1; ``None`` for a stage with no work of its own
        (a batch, merge, partition or zip)
    :ivar utilisation: ``busy_seconds / (elapsed * capacity)``: 1.0 is a stage
        busy with every worker, or every call slot, for the whole run so far
    :ivar rate: items out per second over the run so far
    :ivar recent_rate: items out per second over the last few seconds
        (5 s or more, between snapshots); the whole run's until then
    :ivar input_fill: how full its input is now, 0.0 to 1.0 (the fullest, for
        a stage with several); ``None`` for a source
    :ivar input_fill_mean: its input's fill averaged over time since the start
    :ivar output_fill_mean: its output's fill averaged over time since the
        start; ``None`` for a sink, or an output nobody reads
    :ivar latency: per item, the time in the stage's work, as percentiles
    :ivar length: for a source, ``len()`` of what it reads when it has one
    """

    name: str
    kind: str
    items_in: int
    items_out: int
    items_failed: int
    items_retried: int
    busy_seconds: float
    blocked_seconds: float
    capacity: int | None
    utilisation: float | None
    rate: float
    recent_rate: float
    input_fill: float | None
    input_fill_mean: float | None
    output_fill_mean: float | None
    latency: Latency | None
    length: int | None = None

    @property
    def remaining(self) -> int | None:
        """For a source of known length, the items it has yet to read, else ``None``."""
        return None if self.length is None else max(0, self.length - self.items_out)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every stage of a run at one moment, upstream first, as in a `Report`.

    Example::

        async with pipeline.stream() as outputs:
            async for out in outputs:
                snap = outputs.snapshot()
                print(snap["parse"].utilisation, snap.eta_seconds)

    :ivar stages: one `StageSnapshot` per stage
    :ivar elapsed: seconds since the run started (0.0 before it has)
    :ivar done: whether the run has ended: this is its last word
    """

    stages: tuple[StageSnapshot, ...]
    elapsed: float
    done: bool

    def __getitem__(self, name: str) -> StageSnapshot:
        """Return the first stage called ``name``.

        :raises KeyError: if no stage has that name
        """
        return first_named(self.stages, name)

    @property
    def bottleneck(self) -> Bottleneck | None:
        """The stage holding the run back so far, with the evidence; see `Bottleneck`."""
        return find_bottleneck(self.stages)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until every source is read, at their recent rates; ``None`` if unknown.

        Unknown when a source has no length, or has read nothing lately. The
        run ends a little after: what the channels hold still has to finish.
        """
        sources = [s for s in self.stages if s.kind == "source"]
        if self.done:
            return 0.0
        etas = []
        for source in sources:
            remaining = source.remaining
            if remaining is None:
                return None
            if remaining == 0:
                etas.append(0.0)
            elif source.recent_rate > 0:
                etas.append(remaining / source.recent_rate)
            else:
                return None
        return max(etas, default=None)


class Monitor:
    """The live view of one run: its stages' counters and channels, read on demand.

    The run (`_run.execute`) counts into `stats`, tells `started` which
    channels it wired and `finished` when it ends. A monitor that has not
    started yet shows every stage at zero.
    """

    __slots__ = (
        "_capacities",
        "_end",
        "_inputs",
        "_lengths",
        "_nodes",
        "_outputs",
        "_samples",
        "_start",
        "stats",
    )

    def __init__(self, graph: Graph) -> None:
        """Watch a run of ``graph``; the run has not started yet."""
        self._nodes: tuple[Node, ...] = tuple(graph.nodes)
        self.stats = [StageStats() for _ in self._nodes]
        for node, stats in zip(self._nodes, self.stats, strict=True):
            stats.capacity = _capacity(node.spec)
        self._lengths = [_length(node.spec) for node in self._nodes]
        self._inputs: list[list[Channel[Any]]] = [[] for _ in self._nodes]
        self._outputs: list[list[Channel[Any]]] = [[] for _ in self._nodes]
        self._start: float | None = None
        self._end: float | None = None
        # (time, items out per stage) of earlier snapshots, for the recent rates.
        self._samples: deque[tuple[float, tuple[int, ...]]] = deque()

    def started(
        self, inputs: dict[int, list[Channel[Any]]], outputs: dict[int, list[Sender]]
    ) -> None:
        """Note the run's channels; the clock starts now."""
        self._start = perf_counter()
        self._samples.append((self._start, (0,) * len(self._nodes)))
        for node in self._nodes:
            self._inputs[node.id] = list(inputs[node.id])
            self._outputs[node.id] = [
                channel
                for out in outputs[node.id]
                for channel in (out.channels if isinstance(out, Tee) else [out])
                if not isinstance(channel, Drain)
            ]

    def finished(self) -> None:
        """Stop the clock: later snapshots are the run's last word."""
        if self._end is None:
            self._end = perf_counter()

    def snapshot(self) -> Snapshot:
        """Read every stage's counters now; see `Snapshot`."""
        now = self._end or perf_counter()
        elapsed = 0.0 if self._start is None else now - self._start
        outs = tuple(stats.items_out for stats in self.stats)
        before, before_outs = self._recent(now, outs)
        stages = tuple(
            self._stage(node, elapsed, now, outs[node.id] - before_outs[node.id], now - before)
            for node in self._nodes
        )
        return Snapshot(stages, elapsed, self._end is not None)

    def report(self) -> Report:
        """Build the report of the run from the same reading as a snapshot."""
        snapshot = self.snapshot()
        stages = tuple(
            StageReport(
                name=stage.name,
                kind=stage.kind,
                items_in=stage.items_in,
                items_out=stage.items_out,
                items_failed=stage.items_failed,
                busy_seconds=stage.busy_seconds,
                queue_capacity=_bound(self._outputs[node.id]),
                queue_peak=max((out.peak for out in self._outputs[node.id]), default=0),
                items_retried=stage.items_retried,
                # In source order, whatever order the items failed in.
                failures=tuple(sorted(stats.failures, key=attrgetter("index"))),
                latency=stage.latency,
                items_unmatched=stats.unmatched,
                utilisation=stage.utilisation,
                capacity=stage.capacity,
                blocked_seconds=stage.blocked_seconds,
                input_fill_mean=stage.input_fill_mean,
                output_fill_mean=stage.output_fill_mean,
            )
            for node, stage, stats in zip(self._nodes, snapshot.stages, self.stats, strict=True)
        )
        return Report(stages, snapshot.elapsed)

    def _recent(self, now: float, outs: tuple[int, ...]) -> tuple[float, tuple[int, ...]]:
        """Return the sample to measure recent rates against, and keep this one.

        Samples are kept while they are less than `RECENT` old, and the newest
        older one with them, so the rate spans at least `RECENT` seconds once
        the run is that old, and one interval of a caller that asks less often.
        """
        samples = self._samples
        if not samples:  # not started
            return now, outs
        while len(samples) > 1 and samples[1][0] <= now - RECENT:
            samples.popleft()
        oldest = samples[0]
        if now - samples[-1][0] >= RECENT / 10:  # a caller asking in a tight loop keeps few
            samples.append((now, outs))
        return oldest

    def _stage(
        self, node: Node, elapsed: float, now: float, recent: int, span: float
    ) -> StageSnapshot:
        stats = self.stats[node.id]
        inputs, outputs = self._inputs[node.id], self._outputs[node.id]
        capacity = stats.capacity
        utilisation = None
        if capacity is not None and elapsed > 0:
            utilisation = min(1.0, stats.busy / (elapsed * capacity))
        kind = node.spec.kind
        return StageSnapshot(
            name=node.spec.name,
            kind=kind,
            items_in=stats.items_in,
            items_out=stats.items_out,
            items_failed=stats.failed,
            items_retried=stats.retried,
            busy_seconds=stats.busy,
            blocked_seconds=sum(out.blocked for out in outputs),
            capacity=capacity,
            utilisation=utilisation,
            rate=stats.items_out / elapsed if elapsed > 0 else 0.0,
            recent_rate=recent / span if span > 0 else 0.0,
            input_fill=max((inp.fill() for inp in inputs), default=None),
            input_fill_mean=_mean_fill(inputs, now),
            output_fill_mean=_mean_fill(outputs, now),
            latency=stats.latency.summary(),
            length=self._lengths[node.id],
        )


def _mean_fill(channels: list[Channel[Any]], now: float) -> float | None:
    """Return the time-averaged fill of the fullest of ``channels``, or ``None`` if none."""
    means = [
        channel.fill_seconds(now) / (now - channel.born) if now > channel.born else 0.0
        for channel in channels
    ]
    return min(1.0, max(means)) if means else None


def _bound(outputs: list[Channel[Any]]) -> int:
    """Return the bound of a stage's fullest output at its peak; 0 for a sink or a drain.

    A channel bounded in bytes holds as many items as fit, so its item
    ceiling (`AUTO_ITEMS`) would say nothing; what it held room for at its
    peak tells whether it was full. An output nobody reads (a `Drain`) holds
    nothing, and counts as none.
    """
    if not outputs:
        return 0
    fullest = max(outputs, key=attrgetter("peak"))
    return fullest.peak_bound if fullest.peak else fullest.fits()


def _capacity(spec: StageSpec) -> int | None:
    """Return how many items a stage works on at once, as far as its spec says.

    A pooled stage's is its workers; the stage sets the true count once its
    runner has started (the core count by default, or an engine's slots).
    """
    if isinstance(spec, MapSpec):
        if spec.mode == "async":
            return spec.concurrency
        if spec.mode == "inline":
            return 1
        return spec.workers or 1
    if isinstance(spec, SourceSpec | SinkSpec):
        return 1
    return None


def _length(spec: StageSpec) -> int | None:
    """Return ``len()`` of a source's iterable when it has one (a list, a range), else ``None``."""
    if not isinstance(spec, SourceSpec) or not isinstance(spec.source, Sized):
        return None
    try:
        return len(spec.source)
    except Exception:  # noqa: BLE001 - a length that cannot be had is unknown, not an error
        return None
