"""(b) Pure-Python CPU tasks of about 0.1, 1 and 10 ms: speedup over serial, in process."""

from __future__ import annotations

from ..contenders import CONTENDERS, WORKERS
from ..report import Section, Table, Target, rate, ratio, seconds
from ..session import Session, Timing
from ._common import MapWork, Row, chunk_note, describe, find, measure_all

# Task seconds -> items: about 2 s of serial work each.
SIZES = {0.0001: 20_000, 0.001: 2_000, 0.01: 200}
PER_ITEM_N = 5_000
TARGETS = {0.001: 1.9, 0.0001: 1.8}

ABOUT = f"""\
Each item runs a loop of pure-Python arithmetic, its length calibrated once per run to take
the stated time in process. "Speedup" is the contender's items/s over serial's, in this
process with no workers; {WORKERS} workers can reach at most {WORKERS:.1f}x. Start-up (the
1-item call of workload a) is included in "speedup" and taken off in "after start-up". A
speedup above the limit is noise of that size: serial and parallel calls are timed at
different moments on a machine that others share."""

HEADERS = [
    "contender",
    "items",
    "median time",
    "items/s",
    "speedup over serial",
    "speedup after start-up",
    "pipework's speed ÷ this one's (after start-up)",
]


def run(session: Session) -> Section:
    section = Section("b", "CPU tasks: scaling over serial", ABOUT)
    series: dict[str, dict[str, list[float | None]]] = {}
    for task_seconds, full_n in SIZES.items():
        rows, table = _one_size(session, task_seconds, full_n)
        section.tables.append(table)
        _add_series(series, rows)
        if task_seconds in TARGETS:
            section.targets.append(_target(rows, task_seconds, TARGETS[task_seconds]))
    section.plot = {"sizes_ms": [s * 1000 for s in SIZES], "series": series}
    return section


def _one_size(session: Session, task_seconds: float, full_n: int) -> tuple[list[Row], Table]:
    settings = session.settings
    n = settings.count(full_n, floor=4 * WORKERS)
    sizes = tuple(sorted({1, max(1, n // (32 * WORKERS)), max(1, n // (4 * WORKERS))}))
    args = {"iterations": session.iterations(task_seconds)}
    work = MapWork("burn", args, n, settings.count(PER_ITEM_N, floor=4 * WORKERS), sizes)
    rows, tried = measure_all(session, work, keys=CONTENDERS.keys())
    serial = find(rows, "serial")
    title = f"{task_seconds * 1000:g} ms tasks, {WORKERS} workers, median of {settings.repeat}"
    table = Table(title, HEADERS, [_row(row, serial, find(rows, "pipework")) for row in rows])
    table.notes.append(chunk_note(tried))
    return rows, table


def speedups(timing: Timing, serial: Timing | None) -> tuple[float | None, float | None]:
    """Speedup over serial, with start-up and after it."""
    if serial is None:
        return None, None
    steady = timing.steady_rate
    return timing.rate / serial.rate, None if steady is None else steady / serial.rate


def _row(row: Row, serial: Timing | None, ours: Timing | None) -> list[str]:
    timing = row.timing
    if timing is None:
        return [row.label, "", describe(row.result), "", "", "", ""]
    total, steady = speedups(timing, serial)
    versus = None
    if ours is not None and ours.steady_rate and timing.steady_rate:
        versus = ours.steady_rate / timing.steady_rate
    if row.key == "serial":
        steady = total
        versus = ours.steady_rate / timing.rate if ours and ours.steady_rate else None
    return [
        row.label,
        f"{timing.n:,}",
        seconds(timing.seconds),
        rate(timing.rate),
        ratio(total),
        ratio(steady),
        ratio(versus),
    ]


def _add_series(series: dict[str, dict[str, list[float | None]]], rows: list[Row]) -> None:
    """Append this task size's figures; rows come in `SIZES` order, the plot's x values."""
    serial = find(rows, "serial")
    for row in rows:
        name = CONTENDERS[row.key].label
        entry = series.setdefault(name, {"rate": [], "speedup": []})
        timing = row.timing
        entry["rate"].append(timing.rate if timing else None)
        steady = speedups(timing, serial)[1] if timing else None
        entry["speedup"].append(1.0 if row.key == "serial" and timing else steady)


def _target(rows: list[Row], task_seconds: float, floor: float) -> Target:
    measure = f"speedup of {WORKERS} workers over serial, {task_seconds * 1000:g} ms tasks"
    wanted = f"≥ {floor}x"
    ours, serial = find(rows, "pipework"), find(rows, "serial")
    if ours is None or serial is None:
        return Target(measure, wanted, "not measured", None)
    total, steady = speedups(ours, serial)
    measured = f"{ratio(steady)} after start-up ({ratio(total)} with it)"
    return Target(measure, wanted, measured, None if steady is None else steady >= floor)
