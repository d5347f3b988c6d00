"""(l)'s tables and targets, from the samples the workload measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...contenders import WORKERS
from ...measure import median
from ...probe import NotAvailable
from ...report import Section, Table, Target, na, rate, ratio, seconds
from ._common import BATCH, CPU_SECONDS, EFFICIENCY, WARMUP, Engine, Variant
from ._registry import VARIANTS

ABOUT = f"""\
Each variant maps a function over a list of ints and collects the results in order; every
call's results are checked against the expected ones. The function is a pure-Python loop
of about {CPU_SECONDS * 1000:g} ms that returns `x * x` plus the loop's sum ({{n}} items),
then a no-op that returns its item, for the cost per item ({{noop_n}} items; {{per_task_n}}
for a variant that makes one task per item). pipework also runs locally,
`Pipeline(items).map(f, on="process")` with every default ({WORKERS} worker processes on this
machine, started inside each call), for scale. Starting the cluster is in no figure; how
long it took is said under each engine's first table. The variants take turns, one call
each per round, and the tables give the median of the rounds. "items/s" is over the whole
call; "after the 1-item call" takes off the median time of a call with a single item.
Ratios are each variant's items/s over that of the engine's own one-task-per-item idiom
(`client.map` on Dask, `ray.get` of one `f.remote(x)` per item on Ray), both over whole
calls, and so are the targets. The cluster's capacity is
its worker threads over one item's time measured serially (in a fresh process, with the
cluster idle); a variant's share of capacity is its items/s over that."""

HEADERS = [
    "variant",
    "items",
    "median time",
    "items/s",
    "items/s after the 1-item call",
    "1-item call",
    "share of capacity",
]
NOOP_HEADERS = ["variant", "items", "median time", "items/s", "per item"]


def _versus(engine: Engine) -> str:
    """The header of the ratios' column."""
    return f"speed ÷ {engine.base}'s"


Found = dict[str, list[dict[str, float]] | NotAvailable]


@dataclass(frozen=True)
class Figures:
    """One variant's medians over the rounds."""

    n: int
    seconds: float
    startup: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def steady_rate(self) -> float | None:
        return self.n / (self.seconds - self.startup) if self.seconds > self.startup else None


@dataclass
class Measured:
    """One engine's samples: per variant, per workload, the calls of every round."""

    ready: dict[str, Any]  # what the cluster's process said when it was up
    work: Found
    noop: Found
    serial: list[float]  # one item's seconds, run serially, once per round
    direct: list[float]  # items/s of the loop run on every worker at once, once per round


def _figures(found: list[dict[str, float]] | NotAvailable | None) -> Figures | None:
    if not isinstance(found, list) or not found:
        return None
    n = int(found[0]["n"])
    elapsed = median([one["seconds"] for one in found])
    return Figures(n, elapsed, median([one["startup"] for one in found]))


def _label(variant: Variant, found: list[dict[str, float]] | NotAvailable | None) -> str:
    """The variant's label, with the batch its timed calls used."""
    return variant.label.format(batch=_batch_of(found))


def _batch_of(found: list[dict[str, float]] | NotAvailable | None) -> str:
    batch = found[0]["batch"] if isinstance(found, list) and found else BATCH
    return f"{int(batch):,}"


def _capacity(measured: Measured) -> tuple[float | None, float | None]:
    """One item's serial seconds (the median of the rounds), and the cluster's items/s."""
    if not measured.serial:
        return None, None
    serial = median(measured.serial)
    return serial, int(measured.ready["threads"]) / serial


def report_engine(section: Section, engine: Engine, measured: Measured, repeat: int) -> None:
    ready = measured.ready
    threads = int(ready["threads"])
    serial, capacity = _capacity(measured)
    base = _figures(measured.work.get(engine.idioms[0]))
    batch = next((_batch_of(one) for one in measured.work.values() if one), f"{BATCH:,}")
    section.about += "\n\n" + engine.about.format(warmup=WARMUP, batch=batch)
    rows = []
    for key, result in measured.work.items():
        label = _label(VARIANTS[key], result)
        figures = _figures(result)
        if figures is None:
            rows.append([label, "", _why(result), "", "", "", "", ""])
            continue
        share = f"{figures.rate / capacity:.0%}" if capacity else "-"
        versus = ratio(figures.rate / base.rate) if base else "-"
        row = [label, f"{figures.n:,}", seconds(figures.seconds), rate(figures.rate)]
        rows.append([*row, rate(figures.steady_rate), seconds(figures.startup), share, versus])
    title = f"{engine.name}, {engine.cluster}: {CPU_SECONDS * 1000:g} ms items, median of {repeat}"
    table = Table(title, [*HEADERS, _versus(engine)], rows)
    note = (
        f"The cluster took {seconds(ready['launch'])} from launching its process to "
        f"{threads} worker threads ready ({seconds(ready['made'])} of it in "
        f"{engine.starter}); that is in no figure here."
    )
    if serial and capacity:
        note += (
            f" One item takes {serial * 1000:.3f} ms serially, so the cluster's capacity is "
            f"{threads} / {serial * 1000:.3f} ms = {rate(capacity)} items/s."
        )
    if measured.direct and capacity:
        direct = median(measured.direct)
        note += (
            f" {engine.direct}, the loop reached {rate(direct)} items/s, "
            f"{direct / capacity:.0%} of that capacity: "
            "what this machine, shared with other work, left the cluster in this run."
        )
    table.notes.append(note)
    section.tables += [table, _noop_table(engine, measured.noop, repeat)]
    section.targets += targets(engine, measured.work, capacity)


def _why(result: list[dict[str, float]] | NotAvailable | None) -> str:
    return na(result if isinstance(result, NotAvailable) else NotAvailable("no figures"))


def _noop_table(engine: Engine, found: Found, repeat: int) -> Table:
    base = _figures(found.get(engine.idioms[0]))
    rows = []
    for key, result in found.items():
        label = _label(VARIANTS[key], result)
        figures = _figures(result)
        if figures is None:
            rows.append([label, "", _why(result), "", "", ""])
            continue
        per_item = f"{1e6 / figures.rate:,.1f} µs"
        versus = ratio(figures.rate / base.rate) if base else "-"
        row = [label, f"{figures.n:,}", seconds(figures.seconds), rate(figures.rate)]
        rows.append([*row, per_item, versus])
    title = f"{engine.name}, {engine.cluster}: no-op items, median of {repeat}"
    return Table(title, [*NOOP_HEADERS, _versus(engine)], rows)


def unavailable_table(engine: Engine, reason: NotAvailable) -> Table:
    title = f"{engine.name}, {engine.cluster}"
    rows = [[_label(v, None), na(reason)] for v in engine.variants]
    return Table(title, ["variant", "result"], rows, numeric=False)


def targets(engine: Engine, found: Found | None, capacity: float | None) -> list[Target]:
    """The issue's two targets for ``engine``, judged on whole calls' items/s."""
    found = found or {}
    ours = _figures(found.get(engine.pipework))
    targets = []
    wanted = "≥ 1x its speed: at least as fast as the engine's own idiom"
    for key in engine.idioms:
        theirs = _figures(found.get(key))
        label = _label(VARIANTS[key], found.get(key))
        measure = f"pipework on {engine.name} vs {label}, {CPU_SECONDS * 1000:g} ms items"
        if ours is None or theirs is None:
            targets.append(Target(measure, wanted, "not measured", None))
            continue
        speed = ours.rate / theirs.rate
        measured = f"{ratio(speed)} ({rate(ours.rate)} vs {rate(theirs.rate)} items/s)"
        targets.append(Target(measure, wanted, measured, speed >= 1.0))
    measure = f"pipework on {engine.name}: its adaptive chunks' share of the cluster's capacity"
    wanted = f"≥ {EFFICIENCY:.0%} of it"
    if ours is None or not capacity:
        targets.append(Target(measure, wanted, "not measured", None))
    else:
        share = ours.rate / capacity
        measured = f"{share:.0%} ({rate(ours.rate)} of {rate(capacity)} items/s)"
        targets.append(Target(measure, wanted, measured, share >= EFFICIENCY))
    return targets
