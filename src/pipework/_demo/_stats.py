"""What the demo measures at its sink: latency per record, batch sizes, accuracy.

The sink is the one place every record passes with its whole history: the
server stamped when it was due and served, the classify worker named the
model call that predicted it. So the sink takes one clock reading per
record and keeps the rest, and the figures are computed once at the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ._digits import Prediction


class Collector:
    """The demo's sink: it records each prediction, and says when the warm-up is through."""

    def __init__(self, warmups: int) -> None:
        """Expect ``warmups`` warm-up records first; `ready` is set once all are through."""
        self.ready = asyncio.Event()
        self._warmups = warmups
        self.latencies: list[float] = []
        # Where each record's time went; see `Split`.
        self.split: tuple[list[float], list[float], list[float]] = ([], [], [])
        self.digits: list[int] = []
        self.correct = 0
        self.batches: dict[tuple[int, int], tuple[int, float]] = {}
        # Each model call's longest latency: as a rule, its batch's first record's.
        self.oldest: dict[tuple[int, int], float] = {}
        self.last = 0.0
        self.ready_at: float | None = None
        if warmups == 0:
            self.ready.set()

    def __call__(self, prediction: Prediction) -> None:
        """Take one prediction: the record's latency ends here."""
        now = time.perf_counter()
        meta = prediction.meta
        if meta.id < 0:  # a warm-up record
            self._warmups -= 1
            if self._warmups == 0:
                self.ready_at = now
                self.ready.set()
            return
        latency = now - meta.due
        self.latencies.append(latency)
        upstream, waiting, back = self.split
        upstream.append(meta.prepared - meta.due)
        waiting.append(prediction.started - meta.prepared)
        back.append(now - prediction.started - prediction.seconds)
        self.digits.append(prediction.digit)
        self.correct += prediction.digit == meta.label
        self.batches[prediction.batch] = (prediction.size, prediction.seconds)
        self.oldest[prediction.batch] = max(latency, self.oldest.get(prediction.batch, 0.0))
        self.last = now

    def __len__(self) -> int:
        """Count the records through, not the warm-up."""
        return len(self.latencies)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Return the nearest-rank ``q`` quantile of sorted ``ordered``: a value that was measured."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Split(NamedTuple):
    """Where records' time went besides the model call: p50 and p99 of each part, in seconds.

    :ivar upstream: from due to the end of preprocessing: the wait at the
        server, the fetch, and the preprocess stage
    :ivar waiting: from there to the start of the model call: the batch
        filling up, and a free worker
    :ivar back: from the end of the model call to the sink: the way back to
        the parent, the wait for earlier records (output keeps input order)
    """

    upstream: tuple[float, float]
    waiting: tuple[float, float]
    back: tuple[float, float]


@dataclass(frozen=True)
class Results:
    """The figures of one run, in seconds and counts; `text` renders them."""

    records: int
    seconds: float
    latency: tuple[float, float, float, float]  # p50, p95, p99, max
    batch_sizes: tuple[int, ...]  # one per model call, sorted
    batch_seconds: tuple[float, float]  # a model call's p50 and p99
    oldest: tuple[float, float]  # p50 and p99 of each call's longest latency
    split: Split
    correct: int
    checksum: str

    @property
    def throughput(self) -> float:
        """Records per second, from the first record's due time to the last one's sink."""
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def accuracy(self) -> float:
        """The share of records whose predicted digit was their label."""
        return self.correct / self.records if self.records else math.nan

    @property
    def mean_batch(self) -> float:
        """Records per model call."""
        return self.records / len(self.batch_sizes) if self.batch_sizes else math.nan


def results(collector: Collector, started: float | None) -> Results:
    """Compute the figures of a run whose schedule started at ``started``."""
    latencies = sorted(collector.latencies)
    sizes = sorted(size for size, _ in collector.batches.values())
    calls = sorted(seconds for _, seconds in collector.batches.values())
    return Results(
        records=len(latencies),
        seconds=collector.last - started if started is not None and latencies else 0.0,
        latency=(
            percentile(latencies, 0.5),
            percentile(latencies, 0.95),
            percentile(latencies, 0.99),
            latencies[-1] if latencies else math.nan,
        ),
        batch_sizes=tuple(sizes),
        batch_seconds=_median_p99(calls),
        oldest=_median_p99(sorted(collector.oldest.values())),
        split=Split(*(_median_p99(sorted(part)) for part in collector.split)),
        correct=collector.correct,
        checksum=checksum(collector.digits),
    )


def _median_p99(ordered: Sequence[float]) -> tuple[float, float]:
    return percentile(ordered, 0.5), percentile(ordered, 0.99)


def checksum(digits: Sequence[int]) -> str:
    """Hash the predicted digits, in record order, so two runs compare with one short string."""
    return hashlib.blake2b(bytes(digits), digest_size=4).hexdigest()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def text(found: Results, rate: float | None) -> str:
    """Render the figures: throughput, latency, batches, accuracy, checksum."""
    if not found.records:
        return (
            f"records   none: the run stopped before the first was due\nchecksum  {found.checksum}"
        )
    offered = "as fast as it goes" if rate is None else f"offered {rate:,.0f}/s"
    p50, p95, p99, worst = found.latency
    call50, call99 = found.batch_seconds
    lines = [
        (
            f"records   {found.records:,} in {found.seconds:.2f} s: "
            f"{found.throughput:,.1f} records/s ({offered})"
        ),
        (
            f"latency   p50 {_ms(p50)}, p95 {_ms(p95)}, p99 {_ms(p99)}, max {_ms(worst)}, "
            "from due at the server to the sink"
        ),
        f"  of it   fetch and preprocess {_both(found.split.upstream)}",
        f"          waiting to be classified {_both(found.split.waiting)} (batch, free worker)",
        f"          from the model call to the sink {_both(found.split.back)}",
        (
            f"batches   {len(found.batch_sizes):,} model calls: mean {found.mean_batch:.1f}, "
            f"p50 {_size(found.batch_sizes, 0.5)}, max {_size(found.batch_sizes, 1.0)} "
            f"records; a call took p50 {_ms(call50)}, p99 {_ms(call99)}"
        ),
        # One by one, each call's record is its longest: the latency line says it all.
        *(
            [f"          the record that waited longest in each: {_both(found.oldest)}"]
            if found.mean_batch > 1
            else []
        ),
        *histogram(found.batch_sizes),
        f"accuracy  {found.accuracy:.1%} ({found.correct:,} of {found.records:,} right)",
        f"checksum  {found.checksum} (of the predicted digits, in order)",
    ]
    return "\n".join(lines)


def _both(p50_p99: tuple[float, float]) -> str:
    return f"p50 {_ms(p50_p99[0])}, p99 {_ms(p50_p99[1])}"


def _size(ordered: Sequence[int], q: float) -> str:
    return str(ordered[max(0, math.ceil(q * len(ordered)) - 1)]) if ordered else "-"


def histogram(sizes: Sequence[int], width: int = 30) -> list[str]:
    """Model calls by batch size, in bins that double: 1, 2-3, 4-7 and so on."""
    if not sizes:
        return []
    bins: dict[int, int] = {}
    for size in sizes:
        low = 1 << (size.bit_length() - 1)
        bins[low] = bins.get(low, 0) + 1
    most = max(bins.values())
    lines = []
    low, largest = 1, max(sizes)
    while low <= largest:
        calls = bins.get(low, 0)
        high = min(2 * low - 1, largest)
        label = str(low) if low == high else f"{low}-{high}"
        bar = "#" * (math.ceil(width * calls / most) if calls else 0)
        lines.append(f"  {label:>7}  {bar:<{width}}  {calls:,}")
        low *= 2
    return lines
