"""What a run reports: per stage, items in and out, failures and busy time.

Counters are plain integers and floats on one object per stage, bumped by
the stage's own task, so counting costs the hot path almost nothing. The
report the caller sees is a frozen reading of them, made by the same code
as a live `Snapshot` (`_snapshot.Monitor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .._model._failure import Failure
from ._bottleneck import Bottleneck, find_bottleneck
from ._latency import Histogram, Latency

if TYPE_CHECKING:
    from ._snapshot import StageSnapshot


class StageStats:
    """Mutable counters of one stage during a run."""

    __slots__ = (
        "busy",
        "capacity",
        "failed",
        "failures",
        "items_in",
        "items_out",
        "latency",
        "retried",
        "unmatched",
    )

    def __init__(self) -> None:
        """Start every counter at zero."""
        self.items_in = 0
        self.items_out = 0
        self.failed = 0
        self.retried = 0
        self.unmatched = 0
        self.busy = 0.0
        # Items it works on at once (workers, concurrency); None: no work of its own.
        self.capacity: int | None = 1
        self.failures: list[Failure] = []
        self.latency = Histogram()


@dataclass(frozen=True, slots=True)
class StageReport:
    """How one stage did in a run.

    :ivar name: the stage's name (its function's, unless given with ``name=``)
    :ivar kind: where and how it ran, such as ``process map`` or ``batch``
    :ivar items_in: items it took from its input
    :ivar items_out: items it put on its output (for a sink: items consumed)
    :ivar items_failed: items that failed for good (their last try raised)
    :ivar items_retried: tries made again after a failure, by ``retry=``
    :ivar busy_seconds: time spent in the stage's work, summed over its
        concurrent workers or calls; divide by ``wall_seconds`` times the
        workers to get utilisation
    :ivar queue_capacity: the bound of its output channel when it held the most: for a
        channel bounded in bytes, what fit then (0 for a sink, or an output nobody reads)
    :ivar queue_peak: the most items its output channel held at once
    :ivar failures: the items it skipped, each with its error, by index in the
        source (the first 1,000 to fail)
    :ivar latency: per item, the time in the stage's work (a call, a chunk or a
        batch), as percentiles; ``None`` for a source or a batch stage
    :ivar items_unmatched: for a zip, the source items it left out because
        some branch dropped them (a filter, a skipped failure); the other
        branches' copies of them are in ``items_in``
    :ivar utilisation: ``busy_seconds / (wall_seconds * capacity)``, 0.0 to 1.0:
        for an async stage, the share of its ``concurrency`` in use, not summed
        seconds; ``None`` for a stage with no work of its own (batch, merge, zip)
    :ivar capacity: the items it works on at once: its workers, its
        ``concurrency``, or 1; ``None`` for a batch, merge, partition or zip
    :ivar blocked_seconds: time it waited for room in its output; for a
        source, ``busy_seconds`` is the time it waited on its iterator
    :ivar input_fill_mean: how full its input was, 0.0 to 1.0, averaged over
        the run; ``None`` for a source
    :ivar output_fill_mean: the same for its output; ``None`` for a sink, or
        an output nobody reads
    """

    name: str
    kind: str
    items_in: int
    items_out: int
    items_failed: int
    busy_seconds: float
    queue_capacity: int
    queue_peak: int
    items_retried: int = 0
    failures: tuple[Failure, ...] = ()
    latency: Latency | None = None
    items_unmatched: int = 0
    utilisation: float | None = None
    capacity: int | None = None
    blocked_seconds: float = 0.0
    input_fill_mean: float | None = None
    output_fill_mean: float | None = None


Named = TypeVar("Named", bound="StageReport | StageSnapshot")


def first_named(stages: Sequence[Named], name: str) -> Named:
    """Return the first of ``stages`` called ``name``: a report's or a snapshot's lookup.

    :raises KeyError: if no stage has that name
    """
    for stage in stages:
        if stage.name == name:
            return stage
    raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of a run: one `StageReport` per stage, upstream first.

    A chain's stages come in pipeline order; in a graph, each stage comes
    once, after every stage that feeds it.

    Example::

        report = await Pipeline(range(100)).map(square, on="process").run()
        print(report)                    # a table, one row per stage
        report["square"].items_out       # 100
    """

    stages: tuple[StageReport, ...]
    wall_seconds: float

    def __getitem__(self, name: str) -> StageReport:
        """Return the first stage called ``name``.

        :raises KeyError: if no stage has that name
        """
        return first_named(self.stages, name)

    @property
    def failures(self) -> tuple[Failure, ...]:
        """Every item skipped by a stage with ``errors="skip"`` or a dead-letter handler.

        Each names its stage, its index in the source, a repr of the item and
        the exception. They come stage by stage in pipeline order, and within
        a stage by index in the source, whatever order the items failed in;
        at most 1,000 are kept per stage, the first to fail.
        """
        return tuple(f for stage in self.stages for f in stage.failures)

    @property
    def items_per_second(self) -> float:
        """Source items per second of wall time, over every source: the run's throughput."""
        if self.wall_seconds <= 0:
            return 0.0
        read = sum(stage.items_out for stage in self.stages if stage.kind == "source")
        return read / self.wall_seconds

    @property
    def bottleneck(self) -> Bottleneck | None:
        """The stage that held the run back, with the evidence and what would help.

        ``None`` when no stage was busy near its capacity with a full input
        (see `Bottleneck`). The last line of the table says it too.
        """
        return find_bottleneck(self.stages)

    def __str__(self) -> str:
        """Render the report as a fixed-width table, then its throughput and bottleneck.

        ``busy`` is the stage's utilisation: the share of its workers or call
        slots in use over the run (for a source, the time it waited on its
        iterator).
        """
        head: tuple[str, ...] = ("stage", "kind", "in", "out", "failed", "retried", "busy")
        head = (*head, "queue peak")
        rows: list[tuple[str, ...]] = [
            (
                f"#{i} {s.name}",
                s.kind,
                str(s.items_in),
                str(s.items_out),
                str(s.items_failed),
                str(s.items_retried),
                "-" if s.utilisation is None else f"{s.utilisation:.0%}",
                f"{s.queue_peak}/{s.queue_capacity}" if s.queue_capacity else "-",
            )
            for i, s in enumerate(self.stages)
        ]
        if any(s.kind == "zip" for s in self.stages):  # what a zip left out shows nowhere else
            head = (*head, "unmatched")
            rows = [
                (*row, str(s.items_unmatched) if s.kind == "zip" else "-")
                for row, s in zip(rows, self.stages, strict=True)
            ]
        widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            for row in [head, *rows]
        ]
        lines.append(f"wall {self.wall_seconds:.3f} s, {self.items_per_second:,.0f} items/s")
        if (bottleneck := self.bottleneck) is not None:
            lines.append(str(bottleneck))
        return "\n".join(line.rstrip() for line in lines)
