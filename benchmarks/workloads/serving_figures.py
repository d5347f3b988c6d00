"""(h) What the runs of the demo under load say: the tables, the gain from batching, the targets.

`serving` measures the runs; this module reads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..probe import NotAvailable
from ..report import Table, Target, na, ratio, seconds

SUSTAINED = 0.95  # a run sustains its offered rate if it delivers at least this share of it
BUDGETS = (0.025, 0.05, 0.1, 0.25, 1.0)  # p99 budgets, seconds, for the gain from batching
SLO = 0.1  # the p99 budget the target of a 3x gain is judged at
MODES = {True: "batched", False: "one by one"}


@dataclass(frozen=True)
class Run:
    batch: bool
    load: float | None  # None: closed loop
    offered: float | None  # records/s; None: closed loop
    found: dict[str, Any] | NotAvailable
    by_hand: bool = False  # the same pipeline written by hand (`handwritten`), not pipework

    def mode(self, *, versus: bool = False) -> str:
        """How the tables name it: its mode, or against the pipeline by hand, who ran it."""
        if versus:
            return "by hand, batched" if self.by_hand else f"pipework, {MODES[self.batch]}"
        return MODES[self.batch]

    @property
    def ok(self) -> dict[str, Any] | None:
        return self.found if isinstance(self.found, dict) else None

    def sustained(self) -> bool:
        found = self.ok
        if found is None or self.offered is None:
            return False
        return bool(found["throughput"] >= SUSTAINED * self.offered)


def _load(value: float | None) -> str:
    return "closed loop" if value is None else f"{value:.0%}"


def _ms(value: float | None) -> str:
    return seconds(value)


RUN_HEADERS = [
    "mode",
    "load",
    "offered/s",
    "records/s",
    "p50",
    "p95",
    "p99",
    "max",
    "mean batch",
    "model call p50",
    "p99",
    "accuracy",
]


def _runs_table(runs: list[Run], *, versus: bool = False) -> Table:
    rows = []
    for run in runs:
        found = run.found
        offered = "-" if run.offered is None else f"{run.offered:,.0f}"
        if isinstance(found, NotAvailable):
            blank = [""] * (len(RUN_HEADERS) - 4)
            rows.append([run.mode(versus=versus), _load(run.load), offered, na(found), *blank])
            continue
        rows.append(
            [
                run.mode(versus=versus),
                _load(run.load),
                offered,
                f"{found['throughput']:,.0f}" + _behind(run),
                *(_ms(found[key]) for key in ("p50", "p95", "p99", "max")),
                f"{found['mean_batch']:.1f}",
                _ms(found["call_p50"]),
                _ms(found["call_p99"]),
                f"{found['accuracy']:.1%}",
            ]
        )
    loops = sorted({run.ok["loop"] for run in runs if run.ok is not None})
    warmups = [run.ok["warmup"] for run in runs if run.ok is not None]
    notes = [
        (
            "records/s: records delivered over the time from the first one's due time to the "
            "last one's arrival at the sink; (**behind**) marks a run that delivered less than "
            f"{SUSTAINED:.0%} of the rate offered. Model call: the time one call of the model "
            "took in its worker, median and p99."
        ),
        f"Event loop: {', '.join(loops) or '-'}. Warm-up per run (not counted): "
        + (f"{min(warmups):.1f} to {max(warmups):.1f} s." if warmups else "-"),
    ]
    title = "Each mode, closed loop, then offered 25%, 50% and 90% of that"
    if versus:
        title = "pipework and the pipeline by hand, closed loop, then both offered the same rates"
        notes[0] += " Load: a share of the lower of the two capacities."
    return Table(title, RUN_HEADERS, rows, notes=notes)


def _behind(run: Run) -> str:
    return "" if run.load is None or run.sustained() else " (**behind**)"


def _split_table(runs: list[Run], *, versus: bool = False) -> Table:
    rows = []
    for run in runs:
        found = run.ok
        if found is None:
            continue
        rows.append(
            [
                run.mode(versus=versus),
                _load(run.load),
                *(
                    f"{_ms(found[part + '_p50'])} / {_ms(found[part + '_p99'])}"
                    for part in ("upstream", "waiting", "call", "back")
                ),
                f"{_ms(found['p50'])} / {_ms(found['p99'])}",
            ]
        )
    headers = [
        "mode",
        "load",
        "fetch and preprocess",
        "waiting to be classified",
        "model call",
        "model call to sink",
        "whole",
    ]
    notes = [
        (
            "p50 / p99 of each part. Fetch and preprocess: from due at the server to the end "
            "of preprocessing in its worker (the wait at the server, the fetch, the preprocess "
            "stage). Waiting to be classified: from there to the start of the model call (the "
            "batch filling up, a free worker, the trips between). Model call to sink: the "
            "results' way back to the parent, the wait for earlier records (output keeps input "
            "order) and the sink. Model call times are per call, the others per record; p99s "
            "of parts do not add up to the whole's. Times taken in workers and in the parent "
            "compare because `time.perf_counter` is one system-wide clock on Linux."
        )
    ]
    title = "Where a record's time goes" + (", pipework and by hand" if versus else "")
    return Table(title, headers, rows, notes=notes)


def best_within(runs: list[Run], budget: float, *, batch: bool) -> Run | None:
    """The run of mode ``batch`` at the highest offered rate it sustained with p99 in ``budget``."""
    fits = [
        run
        for run in runs
        if run.batch == batch and run.sustained() and run.ok is not None and run.ok["p99"] <= budget
    ]
    return max(fits, key=lambda run: run.offered or 0.0, default=None)


def ceiling(runs: list[Run], best: Run) -> float | None:
    """The least rate above ``best``'s that its mode was measured at and did not meet the budget.

    ``best`` is the highest rate its mode met the budget at, so every higher
    rate measured missed it; with none measured, the mode's closed-loop
    throughput, which no offered rate can exceed.
    """
    above = [
        run.offered
        for run in runs
        if run.batch == best.batch and run.offered and best.offered and run.offered > best.offered
    ]
    if above:
        return min(above)
    closed = next((run.ok for run in runs if run.batch == best.batch and run.load is None), None)
    return None if closed is None else float(closed["throughput"])


def gain_between(runs: list[Run], budget: float) -> tuple[float, float, float] | None:
    """The gain at ``budget``: as measured, and the least and most it can be between rates."""
    batched = best_within(runs, budget, batch=True)
    alone = best_within(runs, budget, batch=False)
    if batched is None or alone is None or not batched.offered or not alone.offered:
        return None
    low, high = ceiling(runs, alone), ceiling(runs, batched)
    return (
        batched.offered / alone.offered,
        batched.offered / low if low else math.nan,
        high / alone.offered if high else math.nan,
    )


def _gain_table(runs: list[Run]) -> Table:
    rows = []
    for budget in _budgets(runs):
        batched = best_within(runs, budget, batch=True)
        alone = best_within(runs, budget, batch=False)
        gain = gain_between(runs, budget)
        if gain is not None:
            found = f"{ratio(gain[0])} ({ratio(gain[1])} to {ratio(gain[2])})"
        else:
            found = "batched only" if batched else "-"
        rows.append([f"p99 ≤ {_ms(budget)}", _rate(batched), _rate(alone), found])
    headers = [
        "p99 budget",
        "batched sustains",
        "one by one sustains",
        "gain from batching (least to most)",
    ]
    notes = [
        (
            "Budgets: a fixed ladder, and the p99 the one-by-one mode had at each load it "
            "sustained (so each of its rows is compared with batching at its own p99)."
        )
    ]
    return Table("Highest offered rate sustained within a p99 budget", headers, rows, notes=notes)


def _budgets(runs: list[Run]) -> list[float]:
    own = [run.ok["p99"] for run in runs if not run.batch and run.sustained() and run.ok]
    return sorted({*BUDGETS, *own})


def _rate(run: Run | None) -> str:
    if run is None or run.offered is None:
        return "none measured"
    return f"{run.offered:,.0f}/s ({_load(run.load)})"


def _gain_target(runs: list[Run]) -> Target:
    """Batched over one by one: the highest rates each sustained within the p99 budget `SLO`."""
    measure = f"demo: throughput with batching ÷ one by one, at the same p99 (≤ {_ms(SLO)})"
    wanted = "≥ 3x"
    batched = best_within(runs, SLO, batch=True)
    alone = best_within(runs, SLO, batch=False)
    gain = gain_between(runs, SLO)
    if gain is None or batched is None or alone is None:
        found = f"batched: {_rate(batched)}; one by one: {_rate(alone)}"
        return Target(measure, wanted, found, met=None if batched else False)
    measured = (
        f"{ratio(gain[0])}: {_rate(batched)} batched vs {_rate(alone)} one by one; "
        f"between the rates measured, {ratio(gain[1])} to {ratio(gain[2])}"
    )
    return Target(measure, wanted, measured, met=gain[0] >= 3.0)
