"""(m) The cost of progress: ``progress=`` off, into a log, on a terminal, to a callable."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..measure import median
from ..probe import NotAvailable, run_probe
from ..report import Section, Table, Target, na, rate, ratio, seconds
from ..session import Session

N = 600_000
FAST_CALLBACK = 0.01  # seconds between a stress callable's snapshots: 100 a second
MOST_COST = 1.05  # a target: progress on costs at most 5% of the run's time (the noise of 2 cores)

VARIANTS = {
    "off": "progress off (the default)",
    "plain": "progress=True into a pipe (plain lines)",
    "terminal": "progress=True on a terminal (rich table, redrawn every 0.25 s)",
    "callable": f"progress=callable, a snapshot every {FAST_CALLBACK * 1000:g} ms",
}

ABOUT = f"""\
One pipeline, `Pipeline(range({{n}})).map(square, on="process").map(str).filter(bool).run()`,
with `progress=` off and in three forms. Into a pipe is what a CI log sees; "on a terminal"
forces the rich display's terminal mode onto `/dev/null`, so each redraw renders and writes
its control codes; the callable is a stress case, taking {1 / FAST_CALLBACK:g} snapshots a
second where the default is one. The variants take turns in one process, one run each per
round, so that the machine's drift hits them alike; each run starts and stops its own
worker processes. The ratio is the median, over rounds, of a variant's time over the time
with progress off in the same round."""

HEADERS = ["variant", "items", "median time", "items/s", "time ÷ progress off (paired)"]


def square(x: int) -> int:
    return x * x


async def _one(n: int, progress: Any) -> float:
    from pipework import Pipeline

    start = time.perf_counter()
    report = await (
        Pipeline(range(n)).map(square, on="process").map(str).filter(bool).run(progress=progress)
    )
    elapsed = time.perf_counter() - start
    if report.stages[-1].items_out != n:  # every str() of a square is non-empty
        raise AssertionError(f"{report.stages[-1].items_out} items out of {n}")
    return elapsed


def _progress_of(variant: str) -> tuple[Any, Callable[[], None]]:
    """Return what ``progress=`` gets for ``variant``, and how to undo its set-up."""
    from pipework._observe import _progress

    if variant == "off":
        return False, lambda: None
    if variant == "plain":
        return True, lambda: None
    if variant == "callable":
        saved = _progress.CALLBACK_INTERVAL
        _progress.CALLBACK_INTERVAL = FAST_CALLBACK
        seen: list[Any] = []

        def undo_callable() -> None:
            _progress.CALLBACK_INTERVAL = saved

        return seen.append, undo_callable
    # On a terminal: rich's display, drawing into /dev/null as if it were one.
    stderr, isatty = sys.stderr, _progress._isatty  # noqa: SLF001 - a benchmark's own set-up
    sys.stderr = Path(os.devnull).open("w")  # noqa: SIM115 - closed by undo
    _progress._isatty = lambda _: True  # noqa: SLF001

    def undo_terminal() -> None:
        sys.stderr.close()
        sys.stderr = stderr
        _progress._isatty = isatty  # noqa: SLF001

    return True, undo_terminal


async def time_variants(n: int, rounds: int) -> dict[str, Any]:
    """Time ``rounds`` runs of every variant, taking turns, after an untimed one (in a `cell`).

    Also time importing rich, which the first terminal display of a process pays once.
    """
    start = time.perf_counter()
    import rich.console
    import rich.live
    import rich.table  # noqa: F401

    rich_import = time.perf_counter() - start
    times: dict[str, list[float]] = {key: [] for key in VARIANTS}
    for timed in (False, *([True] * rounds)):
        for key in VARIANTS:
            progress, undo = _progress_of(key)
            try:
                elapsed = await _one(n if timed else 1_000, progress)
            finally:
                undo()
            if timed:
                times[key].append(elapsed)
    return {"times": times, "rich_import": rich_import}


def run(session: Session) -> Section:
    settings = session.settings
    n = settings.count(N, floor=1_000)
    rounds = settings.repeat if settings.quick else settings.repeat + 4
    section = Section("m", "The cost of progress", ABOUT.format(n=f"{n:,}"), rounds=rounds)
    if not session.wants("pipework"):
        return section
    found = run_probe(
        "benchmarks.workloads.progress:time_variants",
        {"n": n, "rounds": rounds},
        timeout=settings.timeout,
    )
    if isinstance(found, NotAvailable):
        title = f"progress= on and off, median of {rounds}"
        section.tables.append(
            Table(title, HEADERS, [[VARIANTS["off"], f"{n:,}", na(found), "", ""]])
        )
        return section
    table = _table(found["times"], n, rounds)
    table.notes.append(
        f"Importing rich took {seconds(found['rich_import'])} in this process: a cost paid "
        "once, by the first terminal display, and never by a run without one."
    )
    section.tables.append(table)
    section.targets.append(_target(found["times"]))
    return section


def _table(found: dict[str, list[float]], n: int, rounds: int) -> Table:
    title = f"progress= on and off, median of {rounds}"
    rows = []
    for key, label in VARIANTS.items():
        elapsed = median(found[key])
        row = [label, f"{n:,}", seconds(elapsed), rate(n / elapsed), ratio(_paired(found, key))]
        rows.append(row)
    return Table(title, HEADERS, rows)


def _paired(found: dict[str, list[float]], key: str) -> float:
    """The median, over rounds, of ``key``'s time over progress off's in the same round."""
    return median([t / off for t, off in zip(found[key], found["off"], strict=True)])


def _target(found: dict[str, list[float]]) -> Target:
    worst = max(_paired(found, key) for key in ("plain", "terminal"))
    return Target(
        "progress=True, time ÷ progress off (worst of pipe and terminal)",
        f"≤ {MOST_COST:.2f}x",
        ratio(worst),
        worst <= MOST_COST,
    )


if __name__ == "__main__":  # a quick look by hand: python -m benchmarks.workloads.progress
    found = asyncio.run(time_variants(N, 3))
    print(_table(found["times"], N, 3).markdown())
