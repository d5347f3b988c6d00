"""(h) The demo under load: its latency at 25%, 50% and 90% of its capacity, batched or not."""

from __future__ import annotations

from typing import Any

from ..probe import NotAvailable, run_probe
from ..report import Section
from ..session import Session
from . import versus_hand
from .serving_figures import (
    SLO,
    SUSTAINED,
    Run,
    _gain_table,
    _gain_target,
    _runs_table,
    _split_table,
)

LOADS = (0.25, 0.5, 0.9)  # shares of a mode's closed-loop throughput, offered open-loop
CLOSED_SECONDS = 5.0  # a closed-loop run takes records for this long after its warm-up
OPEN_SECONDS = 6.0  # an open-loop run asks for this many seconds of records at its rate

ABOUT = """\
The pipeline of `python -m pipework demo`, whole: an embedded aiohttp server, in a process
of its own, streams handwritten digits (scikit-learn's bundled set) over loopback; the
pipeline fetches them
(64 requests in flight), preprocesses each on a process stage (decode, normalise, deskew),
classifies them on a second process stage with a random forest of {trees} trees trained by
`setup=` in each worker, and measures each record at the sink. "batched" classifies with
`map_batches(max_size={max_batch}, max_wait={max_wait:g})`; "one by one" with a plain
process `map`, one model call per record. Both stages have {workers} workers, on the same
{cores} cores as the server and the event loop that runs the fetches and the sink.

**Closed loop**, for capacity: the server answers each request at once, so the pipeline
sets the pace; it takes records for {closed:g} s after its warm-up. **Open loop**, for
latency: the server makes record *i* due at *i*/rate seconds and answers its request then,
whether or not the pipeline is ready for it, as an outside source would; each mode is
offered 25%, 50% and 90% of its own closed-loop throughput, for {open:g} s of records.
A closed loop runs hotter than an open one: no request waits at the server, workers
never sleep between calls, so caches stay warm and wake-ups are few (on this machine a
model call takes less time in the closed loop than at 25% or 50% load). Its throughput
therefore overstates what an open loop sustains, and the 90% rows may fall behind.

**Latency** is per record, from the moment it was due at the server to the moment its
prediction reached the sink (`time.perf_counter`, one system-wide clock). A record that
the pipeline was too busy to ask for on time counts the wait, so an overloaded run shows
its queue rather than hiding it (no coordinated omission). In a closed loop a record is
due when it is asked for, so its latency includes the wait in the pipeline's full
channels, not a latency a user would see. Each run first sends {warm} warm-up records
through every stage and starts the schedule once they reach the sink, so start-up (workers
starting, models training) is not counted; the table's notes say how long it took.

**Gain from batching at equal p99**: for a p99 budget, the highest offered rate each mode
sustained (delivered ≥ {sustained:.0%} of it) with p99 within the budget, among the rates
measured; the gain is their ratio. With three rates per mode this is coarse: each mode's
true limit lies between the highest rate that met the budget and the next one measured (or
its closed-loop throughput), so the tables give the least and the most the gain can be.
The target of a 3x gain is judged at a budget of {slo}, a common one for a request that a
person waits on, and well above what batching adds by design (up to `max_wait` of waiting
plus a model call); under budgets close to that, batching with this `max_wait` cannot meet
them at any rate, and one by one at a low rate is the faster choice (the table shows where).
Each row is one real run: of {rounds} runs of it, the one with the median throughput
(closed loop) or the median p99 (open loop), so that a stall of this shared machine during
one run (it shows as a p99 far above the p95, in every column of the split table at once)
decides neither the rates offered nor a verdict. Rows still move by tens of percent from
one benchmark run to the next, and a verdict near its target can flip."""


# In the measuring process -------------------------------------------------


def serve(
    *, batch: bool, rate: float | None, seconds: float, max_batch: int, max_wait: float
) -> dict[str, Any]:
    """Run the demo once, quietly, and return its figures (runs in a `cell` child)."""
    import pipework
    from pipework._demo._job import run_job
    from pipework._loop import running_loop_name

    options = _options(rate, seconds, max_batch, max_wait, batch=batch)

    async def measure() -> tuple[Any, str]:
        return await run_job(options, say=False), running_loop_name()

    outcome, loop = pipework.run_main(measure)
    return figures(outcome.results, outcome.warmup_seconds, loop)


def _options(
    rate: float | None, seconds: float, max_batch: int, max_wait: float, *, batch: bool
) -> Any:
    """The demo's options for one run: a count of records at ``rate``, or a duration."""
    from pipework._demo import DemoOptions

    return DemoOptions(
        count=None if rate is None else max(1, round(rate * seconds)),
        rate=rate,
        duration=seconds,
        max_batch=max_batch,
        max_wait=max_wait,
        batch=batch,
        progress=False,
    )


def serve_by_hand(
    *, rate: float | None, seconds: float, max_batch: int, max_wait: float
) -> dict[str, Any]:
    """Run the demo's job written by hand once, batched, and return its figures (in a child)."""
    from .handwritten import main

    found, warmup, loop = main(_options(rate, seconds, max_batch, max_wait, batch=True))
    return figures(found, warmup, loop)


def figures(found: Any, warmup: float, loop: str) -> dict[str, Any]:
    """The figures of one run, from the demo's `Results`, as the tables read them."""
    p50, p95, p99, worst = found.latency
    return {
        "records": found.records,
        "throughput": found.throughput,
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "max": worst,
        "mean_batch": found.mean_batch,
        "largest_batch": max(found.batch_sizes, default=0),
        "call_p50": found.batch_seconds[0],
        "call_p99": found.batch_seconds[1],
        "oldest_p50": found.oldest[0],
        **{
            f"{part}_{q}": value
            for part, pair in found.split._asdict().items()
            for q, value in zip(("p50", "p99"), pair, strict=True)
        },
        "accuracy": found.accuracy,
        "checksum": found.checksum,
        "warmup": warmup,
        "loop": loop,
    }


# In the parent --------------------------------------------------------------


def run(session: Session) -> Section:
    from pipework._executors import default_workers

    settings = session.settings
    scale = 0.4 if settings.quick else 1.0
    rounds = 1 if settings.quick else settings.repeat
    closed, open_ = CLOSED_SECONDS * scale, OPEN_SECONDS * scale
    about = _about(default_workers(), closed, open_, rounds)
    section = Section("h", "The demo under load: latency and batching", about, rounds=rounds)
    if not session.wants("pipework"):
        return section

    def probe(kind: Kind, rate: float | None, length: float) -> dict[str, Any] | NotAvailable:
        return _probe(kind, rate, length, settings.timeout)

    # Each row is the median of `rounds` runs: of throughput for capacity, of
    # p99 for latency. One stall of this shared machine, or one lucky quiet
    # spell, then decides neither the rates offered nor a verdict. The runs
    # take turns within a round, so drift hits all of them alike.
    kinds = [BATCHED, ONE_BY_ONE] + ([BY_HAND] if session.wants("run_in_executor") else [])
    tries = [[probe(kind, None, closed) for kind in kinds] for _ in range(rounds)]
    closed_runs = {
        kind: _median(kind, None, None, [t[k] for t in tries], "throughput")
        for k, kind in enumerate(kinds)
    }
    capacity = {kind: r.ok["throughput"] for kind, r in closed_runs.items() if r.ok is not None}
    own, shared = _offers(capacity)
    plan = list(dict.fromkeys(own + shared))  # a rate both lists hold is run once
    rows = [[probe(kind, rate, open_) for kind, _, rate in plan] for _ in range(rounds)]
    opened = {
        offer: _median(*offer, [row[k] for row in rows], "p99") for k, offer in enumerate(plan)
    }
    runs = [closed_runs[BATCHED], closed_runs[ONE_BY_ONE], *(opened[offer] for offer in own)]
    section.tables += [_runs_table(runs), _gain_table(runs), _split_table(runs)]
    section.targets.append(_gain_target(runs))
    if BY_HAND in closed_runs:
        versus = [closed_runs[BATCHED], closed_runs[BY_HAND], *(opened[offer] for offer in shared)]
        pairs = _pairs(versus)
        section.tables += [
            _runs_table(versus, versus=True),
            versus_hand.table(pairs),
            _split_table(versus, versus=True),
        ]
        section.targets += versus_hand.targets(pairs)
    return section


def _about(workers: int, closed: float, open_: float, rounds: int) -> str:
    from pipework._demo import _digits
    from pipework._demo._options import DEFAULT_CONCURRENCY, DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT

    about = ABOUT.format(
        trees=_digits.TREES,
        max_batch=DEFAULT_MAX_BATCH,
        max_wait=DEFAULT_MAX_WAIT,
        workers=workers,
        cores=workers,
        closed=closed,
        open=open_,
        warm=workers,
        sustained=SUSTAINED,
        slo=f"p99 ≤ {SLO * 1000:g} ms",
        rounds=rounds,
    )
    return (
        about
        + "\n\n"
        + versus_hand.ABOUT.format(
            concurrency=DEFAULT_CONCURRENCY,
            workers=workers,
            max_batch=DEFAULT_MAX_BATCH,
            max_wait=DEFAULT_MAX_WAIT * 1000,
        )
    )


def _probe(
    kind: Kind, rate: float | None, length: float, timeout: float
) -> dict[str, Any] | NotAvailable:
    """Run one run of ``kind`` in a child: closed loop with no ``rate``, else open loop."""
    from pipework._demo._options import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT

    hand, batch = kind
    kwargs: dict[str, Any] = {
        "rate": rate,
        "seconds": length,
        "max_batch": DEFAULT_MAX_BATCH,
        "max_wait": DEFAULT_MAX_WAIT,
    }
    if not hand:
        kwargs["batch"] = batch
    target = "benchmarks.workloads.serving:" + ("serve_by_hand" if hand else "serve")
    return run_probe(target, kwargs, timeout=timeout)  # type: ignore[no-any-return]


Kind = tuple[bool, bool]  # (written by hand, batched)
BATCHED: Kind = (False, True)
ONE_BY_ONE: Kind = (False, False)
BY_HAND: Kind = (True, True)
Offer = tuple[Kind, float, float]  # what runs, the share of a capacity, records/s


def _offers(capacity: dict[Kind, float]) -> tuple[list[Offer], list[Offer]]:
    """The open-loop runs: each pipework mode at shares of its own capacity; then pipework
    batched and the pipeline by hand at the same rates, shares of the lower of their two."""
    own = [
        (kind, load, load * capacity[kind])
        for load in LOADS
        for kind in (BATCHED, ONE_BY_ONE)
        if kind in capacity
    ]
    if BATCHED not in capacity or BY_HAND not in capacity:
        return own, []
    rates = versus_hand.shared_rates(capacity[BATCHED], capacity[BY_HAND], LOADS)
    shared = [
        (kind, load, rate)
        for load, rate in zip(LOADS, rates, strict=True)
        for kind in (BATCHED, BY_HAND)
    ]
    return own, shared


def _median(
    kind: Kind,
    load: float | None,
    offered: float | None,
    found: list[dict[str, Any] | NotAvailable],
    key: str,
) -> Run:
    hand, batch = kind
    return median_run(batch, load, offered, found, key, by_hand=hand)


def _pairs(versus: list[Run]) -> list[versus_hand.Pair]:
    """pipework's run and the hand-written one's at each load, closed loop first."""
    missing = NotAvailable("not measured: no capacity to offer a share of")
    pairs = []
    for load in (None, *LOADS):
        ours = next((r for r in versus if r.load == load and not r.by_hand), None)
        theirs = next((r for r in versus if r.load == load and r.by_hand), None)
        pairs.append(
            versus_hand.Pair(
                load,
                None if ours is None else ours.offered,
                missing if ours is None else ours.found,
                missing if theirs is None else theirs.found,
                (
                    ours is not None and _behind_rate(ours),
                    theirs is not None and _behind_rate(theirs),
                ),
            )
        )
    return pairs


def _behind_rate(run: Run) -> bool:
    return run.load is not None and run.ok is not None and not run.sustained()


def median_run(
    batch: bool,
    load: float | None,
    offered: float | None,
    found: list[dict[str, Any] | NotAvailable],
    key: str,
    *,
    by_hand: bool = False,
) -> Run:
    """The run whose ``key`` is the median of those measured: a real run, every figure its own.

    With an even count, the upper median (the worse p99, the better
    throughput: neither flatters a latency verdict). Runs that failed count
    only if every run did.
    """
    measured = sorted((f for f in found if isinstance(f, dict)), key=lambda f: f[key])
    if not measured:
        return Run(batch, load, offered, found[0], by_hand)
    return Run(batch, load, offered, measured[len(measured) // 2], by_hand)
