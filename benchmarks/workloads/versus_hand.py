"""(h) against the same pipeline written by hand: the rates both are offered, a table, targets.

The contender itself, what a competent user writes with asyncio, aiohttp and
``run_in_executor``, is `handwritten`; this module compares its runs with
pipework's. The runs are `serving`'s, measured in the same rounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..probe import NotAvailable
from ..report import Table, Target, ratio, seconds

ABOUT = """\
**Against the same pipeline by hand** (issue 14, part 6): `benchmarks/workloads/handwritten.py`
writes the batched pipeline as a competent user would without pipework: asyncio tasks
joined by bounded queues, one aiohttp session with {concurrency} fetches in flight, two
`ProcessPoolExecutor`s ({workers} workers each, started by forkserver, the model trained by
each classify worker's `initializer`) reached through `loop.run_in_executor`, one call per
record to preprocess, and a batching loop of its own: up to {max_batch} records, the first
waiting up to {max_wait:g} ms, a batch formed only once a model worker is free. Its results
reach the sink in input order, as pipework's do; it runs on the same event loop, with the
same server, functions, warm-up and sink. Its capacity is measured in the closed loop of
the same rounds as pipework's. Both are then offered 25%, 50% and 90% of the lower of the
two capacities, the same rates for both, so that neither is offered more than it can take
and their p99s compare at one load. "Same predictions" says whether both predicted the same
digits in the same order at that rate (the checksum of the digits, in order)."""


@dataclass(frozen=True)
class Pair:
    """pipework's run and the hand-written one's at one load (None: the closed loop)."""

    load: float | None
    offered: float | None
    pipework: dict[str, Any] | NotAvailable
    by_hand: dict[str, Any] | NotAvailable
    behind: tuple[bool, bool] = (False, False)  # each fell behind the rate offered

    @property
    def both(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if isinstance(self.pipework, dict) and isinstance(self.by_hand, dict):
            return self.pipework, self.by_hand
        return None


def shared_rates(capacity: float, by_hand: float, loads: tuple[float, ...]) -> list[float]:
    """The rates both are offered: shares of the lower capacity, so that both can take them."""
    lower = min(capacity, by_hand)
    return [load * lower for load in loads]


def table(pairs: list[Pair]) -> Table:
    rows = []
    for pair in pairs:
        key = "throughput" if pair.load is None else "p99"
        show = _rate if pair.load is None else seconds
        ours, theirs = (
            (found[key] if isinstance(found, dict) else None)
            for found in (pair.pipework, pair.by_hand)
        )
        versus = None if ours is None or theirs is None else ours / theirs
        rows.append(
            [
                _measure(pair),
                "-" if pair.offered is None else f"{pair.offered:,.0f}",
                _cell(pair.pipework, ours, show),
                _cell(pair.by_hand, theirs, show),
                ratio(versus),
                _same(pair),
            ]
        )
    headers = [
        "measure",
        "offered/s",
        "pipework",
        "by hand",
        "pipework ÷ by hand",
        "same predictions",
    ]
    notes = [
        (
            "Capacity: records/s in the closed loop, higher is better; p99: latency from due "
            "at the server to the sink, lower is better. The runs are those of the table above."
        )
    ]
    return Table("pipework against the same pipeline by hand", headers, rows, notes=notes)


def targets(pairs: list[Pair]) -> list[Target]:
    """Capacity at least the hand-written one's; p99 no worse at each load offered."""
    found = []
    for pair in pairs:
        if pair.load is None:
            measure = "demo vs the same pipeline by hand (asyncio, run_in_executor): capacity"
            wanted = "pipework's ≥ the hand-written one's (ratio ≥ 1.00x)"
        else:
            measure = f"demo vs the same pipeline by hand: p99 at {pair.load:.0%} of capacity"
            wanted = "pipework's no worse than the hand-written one's (ratio ≤ 1.00x)"
        both = pair.both
        if both is None:
            found.append(Target(measure, wanted, "not measured", None))
            continue
        ours, theirs = both
        if pair.load is None:
            value, base = ours["throughput"], theirs["throughput"]
            measured = f"{ratio(value / base)} ({_rate(value)} vs {_rate(base)} records/s)"
            found.append(Target(measure, wanted, measured, value >= base))
            continue
        value, base = ours["p99"], theirs["p99"]
        measured = (
            f"{ratio(value / base)} ({seconds(value)} vs {seconds(base)} "
            f"at {pair.offered:,.0f}/s){_behind(pair)}"
        )
        found.append(Target(measure, wanted, measured, value <= base))
    return found


def _measure(pair: Pair) -> str:
    return "capacity (closed loop)" if pair.load is None else f"p99 at {pair.load:.0%}"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def _cell(found: dict[str, Any] | NotAvailable, value: float | None, show: Any) -> str:
    if isinstance(found, NotAvailable):
        return f"n/a: {found.reason}"
    return "-" if value is None else str(show(value))


def _same(pair: Pair) -> str:
    both = pair.both
    if pair.load is None or both is None:
        return "-"
    return "yes" if both[0]["checksum"] == both[1]["checksum"] else "**no**"


def _behind(pair: Pair) -> str:
    names = ("pipework", "by hand")
    late = [name for name, behind in zip(names, pair.behind, strict=True) if behind]
    return f"; behind: {', '.join(late)}" if late else ""
