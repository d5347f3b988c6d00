"""(c) numpy arrays of 8 MB and 64 MB to a worker and back."""

from __future__ import annotations

import importlib.util

from ..contenders import WORKERS
from ..probe import NotAvailable
from ..report import Section, Table, Target, na, ratio, seconds
from ..session import Session, Timing
from ._common import MapWork, Row, find, measure_all

# Array size in MB -> arrays per run (full run).
SIZES = {8: 16, 64: 4}
CONTENDERS_HERE = (
    "pipework",
    "executor_map",
    "pool_imap",
    "run_in_executor",
    "joblib",
    "mpire",
    "pypeln",
    "aiomultiprocess",
)

ABOUT = f"""\
Each contender sends float64 arrays to {WORKERS} workers through a function that returns its
argument, so every array crosses to a worker and a same-sized array comes back; the
function itself costs nothing. ProcessPoolExecutor and Pool.imap pickle each array through a
pipe, one array per call (chunksize 1). joblib memory-maps large inputs by default, but
pickles results back. Times are per array after start-up: (median time - 1-item call) ÷ arrays.
A --quick run measures only pipework and ProcessPoolExecutor here."""

HEADERS = ["contender", "arrays", "median time", "per array, after start-up", "MB/s, both ways"]
HEADERS += ["pipework's speed ÷ this one's (after start-up)"]


def run(session: Session) -> Section:
    section = Section("c", "Large numpy arrays there and back", ABOUT)
    if importlib.util.find_spec("numpy") is None:
        section.about += "\n\nNot run: numpy is not installed."
        return section
    keys = ("pipework", "executor_map") if session.settings.quick else CONTENDERS_HERE
    for mbytes, count in SIZES.items():
        rows = _measure(session, mbytes, session.settings.count(count, floor=WORKERS), keys)
        section.tables.append(_table(rows, mbytes, session.settings.repeat))
        if mbytes == 64:
            section.targets.append(_target(rows))
    return section


def _measure(session: Session, mbytes: int, count: int, keys: tuple[str, ...]) -> list[Row]:
    work = MapWork("noop", {}, count, count, (1,), "arrays", mbytes, imap_chunksize=1)
    rows, _ = measure_all(session, work, keys=keys)
    return rows


def per_array(timing: Timing | None) -> float | None:
    """Seconds per array once workers are up; None if start-up noise swallowed it."""
    if timing is None:
        return None
    each = (timing.seconds - (timing.startup or 0.0)) / timing.n
    return each if each > 0 else None


def _speed_ratio(ours: Timing | None, theirs: Timing | None) -> float | None:
    mine, other = per_array(ours), per_array(theirs)
    return None if mine is None or other is None else other / mine


def _table(rows: list[Row], mbytes: int, repeat: int) -> Table:
    ours = find(rows, "pipework")
    body = [_row(row, ours, mbytes) for row in rows]
    return Table(f"{mbytes} MB arrays, {WORKERS} workers, median of {repeat}", HEADERS, body)


def _row(row: Row, ours: Timing | None, mbytes: int) -> list[str]:
    timing = row.timing
    if timing is None:
        assert isinstance(row.result, NotAvailable)  # noqa: S101 - a row holds one or the other
        return [row.label, "", na(row.result), "", "", ""]
    each = per_array(timing)
    return [
        row.label,
        f"{timing.n:,}",
        seconds(timing.seconds),
        seconds(each),
        "-" if each is None else f"{2 * mbytes / each:,.0f}",
        ratio(_speed_ratio(ours, timing)),
    ]


def _target(rows: list[Row]) -> Target:
    measure = "64 MB array there and back vs pickling through ProcessPoolExecutor"
    wanted = "pipework ≥ 10x as fast"
    ours, theirs = find(rows, "pipework"), find(rows, "executor_map")
    versus = _speed_ratio(ours, theirs)
    if versus is None:
        return Target(measure, wanted, "not measured", None)
    each = f"{seconds(per_array(ours))} vs {seconds(per_array(theirs))} per array"
    return Target(measure, wanted, f"{ratio(versus)} ({each})", versus >= 10)
