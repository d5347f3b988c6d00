"""Which stage holds a run back, with the evidence, and what would help.

A stage limits the run when it is busy near its capacity and its output has
room: the stages before it wait for room in its input, and the stages after
it wait for its output. Busy time counts only a stage's own work, never its
waits, so a stage upstream of the bottleneck (blocked on a full output) and
one downstream (starved) both show low utilisation. Each stage's score is

    busy x free

from the figures every snapshot and report already carry: busy is its
`utilisation` (the share of its workers or call slots in use), and free is
the room its output had on average (1.0 for a sink, or an output that nobody
reads). How full its input was is part of the evidence, not of the score: a
process stage takes its input into its chunks as fast as it can, so its
input can look empty while the stage is the limit.

The highest score names the stage, if it is high enough to mean something.
A source is scored the same way, its busy time being the time it waited on
its iterator: a slow feed or a rate limit. When no stage scores, but the
last stage's output was full, the code reading the stream is the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

BUSY = 0.6
"""The least utilisation at which a stage can be the bottleneck."""

SCORE = 0.5
"""The least score (busy x free) that names a stage."""

READER_FULL = 0.7
"""The mean fill of the last output past which the reader of the stream is the limit."""


class Figures(Protocol):
    """What the bottleneck is judged by: a `StageSnapshot` or a `StageReport`."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def capacity(self) -> int | None: ...
    @property
    def utilisation(self) -> float | None: ...
    @property
    def input_fill_mean(self) -> float | None: ...
    @property
    def output_fill_mean(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Bottleneck:
    """The stage that limits a run's throughput, why pipework thinks so, and what would help.

    Example::

        report = await pipeline.run()
        if report.bottleneck:
            print(report.bottleneck)   # bottleneck: #2 'parse' (process map): busy 98% ...

    :ivar stage: the stage's label, such as ``#2 'parse' (process map)``, or
        ``the reader of the stream`` when the code reading the outputs is slower
        than the pipeline
    :ivar evidence: the figures behind the verdict, in words
    :ivar advice: what would raise the throughput
    :ivar score: busy x free, 0.0 to 1.0: its utilisation times the room its
        output had
    """

    stage: str
    evidence: str
    advice: str
    score: float

    def __str__(self) -> str:
        """One line: the stage, the evidence, and the advice."""
        return f"bottleneck: {self.stage}: {self.evidence}. {self.advice}"


def find_bottleneck(stages: Sequence[Figures]) -> Bottleneck | None:
    """Name the stage that limits the run, from its stages' figures; ``None`` if none does.

    ``stages`` are a snapshot's or a report's, upstream first.
    """
    best: tuple[float, int] | None = None
    for position, stage in enumerate(stages):
        score = _score(stage)
        if score is not None and (best is None or score > best[0]):
            best = (score, position)
    if best is not None and best[0] >= SCORE:
        score, position = best
        stage = stages[position]
        label = f"#{position} {stage.name!r} ({stage.kind})"
        return Bottleneck(label, _evidence(stage), _advice(stage), round(score, 3))
    return _reader(stages)


def _score(stage: Figures) -> float | None:
    busy = stage.utilisation
    if busy is None or stage.capacity is None or busy < BUSY:
        return None
    free = 1.0 if stage.output_fill_mean is None else 1.0 - stage.output_fill_mean
    return busy * free


def _evidence(stage: Figures) -> str:
    busy = stage.utilisation or 0.0
    if stage.kind == "source":
        said = f"it spent {busy:.0%} of the run waiting on its iterator for the next item"
    elif stage.kind == "sink":
        said = f"busy {busy:.0%} of the run"
    elif stage.kind.startswith("inline"):
        said = f"busy {busy:.0%} of the run, on the event loop"
    else:
        slots = (
            f"across its {stage.capacity} workers"
            if _pooled(stage.kind)
            else f"of its concurrency of {stage.capacity}"
        )
        said = f"busy {busy:.0%} {slots}"
    if stage.input_fill_mean is not None:
        said += f", its input {stage.input_fill_mean:.0%} full on average"
    if stage.output_fill_mean is not None:
        said += f", its output {stage.output_fill_mean:.0%} full"
    return said


_ADVICE = {
    "source": (
        "The pipeline keeps up with its source: more speed must come from the source "
        "(a slow feed, or a rate limit), not from the stages"
    ),
    "sink": (
        "Would help: fewer, larger writes (.batch(n) before the sink), or the writes "
        "in a stage of their own with concurrency= or workers=, before a cheap sink"
    ),
    "inline": (
        "It runs on the event loop: move it to threads or processes "
        '(on="thread" or on="process") to run it in parallel'
    ),
}


def _advice(stage: Figures) -> str:
    where, _, op = stage.kind.partition(" ")
    if where in _ADVICE:
        return _ADVICE[where]
    if where == "async":
        return (
            f"Would help: more concurrency than {stage.capacity} (concurrency=), if what it "
            "waits on can take more calls at once; if not, that service's rate is the limit"
        )
    also = (
        ", or larger batches (max_size=) if a call costs much the same whatever its size"
        if op == "map_batches"
        else ", or a cheaper function"
    )
    if where in {"process", "thread"}:
        more = f"more workers than {stage.capacity} (workers=) while the machine has cores to spare"
        cluster = ", or a cluster (on=pipework.dask(client))" if where == "process" else ""
        help_ = f"{more}{also}{cluster}"
    elif where == "executor":
        help_ = f"a larger executor than its {stage.capacity} workers{also}"
    else:  # an engine's
        help_ = f"more workers on the cluster than its {stage.capacity} threads{also}"
    return f"Would help: {help_}"


def _pooled(kind: str) -> bool:
    return not kind.startswith(("async", "inline"))


def _reader(stages: Sequence[Figures]) -> Bottleneck | None:
    """Name the code reading a stream, when the last stage's output was mostly full."""
    if not stages:
        return None
    last = stages[-1]
    full = last.output_fill_mean
    if last.kind == "sink" or full is None or full < READER_FULL:
        return None
    return Bottleneck(
        "the reader of the stream",
        f"the last stage's output was {full:.0%} full on average: the outputs wait to be read",
        "The pipeline is faster than the code that reads it: speed that up, or read less",
        round(full, 3),
    )
