"""(a) No-op items: what each way of reaching worker processes costs per item."""

from __future__ import annotations

from ..contenders import CONTENDERS, WORKERS
from ..report import Section, Table, Target, rate, ratio, seconds
from ..session import Session, Timing
from ._common import MapWork, Row, chunk_note, describe, find, measure_all

N = 500_000
PER_ITEM_N = 5_000  # APIs that send one message per item run on fewer items
CHUNKSIZES = (256, 4096, 32768)

ABOUT = f"""\
Each contender maps a function that returns its argument over a list of ints,
on {WORKERS} workers, collecting the results in order. A timed call includes starting and
stopping its workers, as one call in a program would; "1-item call" is exactly that fixed
cost, and "after start-up" takes it off. joblib keeps its workers between calls, so after
the untimed warm-up call its times include no start-up at all."""

HEADERS = [
    "contender",
    "workers start by",
    "items",
    "median time",
    "items/s",
    "items/s after start-up",
    "1-item call",
    "pipework's speed ÷ this one's (after start-up)",
]


def run(session: Session) -> Section:
    settings = session.settings
    work = MapWork("noop", {}, settings.count(N), settings.count(PER_ITEM_N), CHUNKSIZES)
    # Its calls are short, so more of them cost little and steady the medians.
    rounds = settings.repeat if settings.quick else settings.repeat + 2
    rows, tried = measure_all(session, work, keys=set(CONTENDERS) - {"serial"}, rounds=rounds)
    section = Section("a", "No-op items: overhead per item", ABOUT)
    title = f"No-op items, {WORKERS} workers, median of {rounds}"
    table = Table(title, HEADERS, [_row(row, find(rows, "pipework")) for row in rows])
    table.notes.append(chunk_note(tried))
    section.tables.append(table)
    section.targets += targets(rows, tried)
    return section


def _row(row: Row, ours: Timing | None) -> list[str]:
    start = CONTENDERS[row.key].start
    timing = row.timing
    if timing is None:
        return [row.label, start, "", describe(row.result), "", "", "", ""]
    versus = _versus(ours, timing)
    return [
        row.label,
        start,
        f"{timing.n:,}",
        seconds(timing.seconds),
        rate(timing.rate),
        rate(timing.steady_rate),
        seconds(timing.startup),
        f"{ratio(versus[0])} ({ratio(versus[1])})",
    ]


def _versus(ours: Timing | None, theirs: Timing) -> tuple[float | None, float | None]:
    """pipework's speed over theirs: with start-up, and after it."""
    if ours is None:
        return None, None
    steady = (
        ours.steady_rate / theirs.steady_rate
        if ours.steady_rate is not None and theirs.steady_rate is not None
        else None
    )
    return ours.rate / theirs.rate, steady


def targets(rows: list[Row], tried: list[Row]) -> list[Target]:
    ours = find(rows, "pipework")
    ppe = next((row.timing for row in tried if row.chunksize == 4096), None)
    pipeline = find(rows, "pipework_pipeline")
    return [
        _target("no-op throughput vs ProcessPoolExecutor.map, chunksize 4096", 0.5, ours, ppe),
        _target("no-op throughput vs joblib", 5.0, ours, find(rows, "joblib")),
        # Issue 12: what a pipeline does with every default, against the two
        # calls a user would otherwise make.
        _target("Pipeline.run() with defaults vs pipework.map", 0.8, pipeline, ours),
        _target(
            "Pipeline.run() with defaults vs ProcessPoolExecutor.map, chunksize 4096",
            1.5,
            pipeline,
            ppe,
        ),
    ]


def _target(measure: str, floor: float, ours: Timing | None, theirs: Timing | None) -> Target:
    wanted = f"≥ {floor:g}x its speed"
    if ours is None or theirs is None:
        return Target(measure, wanted, "not measured", None)
    total, steady = _versus(ours, theirs)
    measured = f"{ratio(steady)} after start-up ({ratio(total)} with it)"
    return Target(measure, wanted, measured, None if steady is None else steady >= floor)
