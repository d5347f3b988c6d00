"""(g) Workers killed at random while a process stage runs: what it costs, and what is lost."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import re
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from functools import partial
from itertools import pairwise
from types import TracebackType
from typing import Any, Self

from .. import tasks
from ..contenders import START, WORKERS
from ..measure import median
from ..probe import NotAvailable, run_probe
from ..report import Section, Table, na, rate, ratio, seconds
from ..session import Session

N = 12_000  # items per kill rate for the pipework stage, split over the rounds
COMPARE_N = 3_000  # the executors' calls end at their first dead worker: fewer items show it
RATES = (0.0, 2.0, 10.0)  # kills per second
TASK_SECONDS = 0.001
CHUNKSIZE = 20  # the executors' map: about 20 ms of work per call, as pipework's chunks aim for
SEED = 4
WORKER_NAME = "pipework-worker"  # what pipework names its worker processes

# Variant -> (the contenders that --contenders may name for it, its label).
VARIANTS: dict[str, tuple[tuple[str, ...], str]] = {
    "pipeline": (("pipework", "pipework_pipeline"), "pipework Pipeline.map(on='process')"),
    "process_pool": (("pipework",), "pipework.ProcessPool.map, the drop-in"),
    "executor_map": (("executor_map",), "ProcessPoolExecutor.map"),
}

ABOUT = f"""\
A process stage on {WORKERS} workers maps a task of about {TASK_SECONDS * 1000:g} ms of CPU
over ints, `Pipeline(items).map(task, on="process").sink(outputs.append)` with the default
failure policy, while a thread of the measuring process sends SIGKILL to one of its workers
at a steady rate: one kill in the middle of every interval of 1/rate s, to a worker chosen at
random among `multiprocessing.active_children()` named `{WORKER_NAME}`, including one that
is still starting. Each kill rate runs {{n}} items in all, in {{rounds}} run(s) that take
turns with the other rates, each in a fresh process after an untimed warm-up. Throughput is
the median of the runs, as a ratio to the runs with no kills. The outputs are checked
against the inputs: an item missing from a run that ended without an error is lost, one that
comes out twice is duplicated, one that comes out after an item that followed it in the input
is out of order. All three must be 0: a dead worker costs time, never items. A run can still
stop with an error, which "runs completed" would show: an item that kills 3 workers fails
with `WorkerDiedError`, and workers that die 3 times in a row before they are ready break
the pool with `WorkerStartError`. Throughput and wall time are those of the completed runs.

For comparison, the same kill rates run against `ProcessPoolExecutor.map` and the drop-in
`pipework.ProcessPool.map` ({{compare_n}} items, chunksize {CHUNKSIZE}, one run each, the pool
started and stopped inside it). `Executor.map` does not send work again: a call whose
worker died fails, and iterating stops there. The table shows how many items each
delivered, in order, before it stopped, and whether the pool could still run a call after
that: one dead worker breaks ProcessPoolExecutor for good, while pipework's pool replaces
the worker and fails only the call it was running. Throughput on a machine that others
share moves by tens of percent from run to run; the counts do not depend on it."""


# In the measuring process -------------------------------------------------


class Killer:
    """While its ``with`` block runs, SIGKILL a random live worker ``rate`` times a second."""

    def __init__(self, rate: float, seed: int, *, name: str | None) -> None:
        self.kills = 0
        self._interval = 1 / rate if rate > 0 else 0.0  # 0: no kills
        self._random = random.Random(seed)
        self._name = name  # None: every child process is a worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-killer", daemon=True)

    def __enter__(self) -> Self:
        if self._interval:
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        # A steady schedule, one kill in the middle of each interval, so that
        # a short run still sees one; the time a kill takes does not slow it.
        due = time.monotonic() + self._interval / 2
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            due += self._interval
            workers = [
                p
                for p in multiprocessing.active_children()
                if self._name is None or p.name == self._name
            ]
            if not workers:  # every worker is starting: nothing to kill this time
                continue
            victim = self._random.choice(workers)
            try:
                os.kill(victim.pid, signal.SIGKILL)
            except ProcessLookupError:  # it exited since it was listed
                continue
            self.kills += 1


Outcome = dict[str, Any]


def _pipeline(fn: Callable[[int], int], items: list[int], killer: Killer) -> Outcome:
    import pipework

    outputs: list[int] = []
    pipeline = (
        pipework.Pipeline(items)
        .map(fn, on="process", workers=WORKERS, name="work")
        .sink(outputs.append)
    )
    with killer:
        try:
            asyncio.run(pipeline.run())
        except Exception as exc:
            return {"outputs": outputs, "error": _describe(exc), "usable": None}
    return {"outputs": outputs, "error": None, "usable": None}


def _mapped(
    fn: Callable[[int], int], items: list[int], killer: Killer, *, pool: Callable[[], Executor]
) -> Outcome:
    outputs: list[int] = []
    error = None
    with pool() as executor:
        with killer:
            try:
                for output in executor.map(fn, items, chunksize=CHUNKSIZE):
                    outputs.append(output)  # noqa: PERF402 - keep what came before a failure
            except Exception as exc:
                error = _describe(exc)
        unusable = _unusable(executor)
    return {"outputs": outputs, "error": error, "usable": unusable is None, "unusable": unusable}


def _unusable(executor: Executor) -> str | None:
    """Why the pool no longer runs a call, after what its workers went through; None if it does."""
    try:
        result = executor.submit(tasks.noop, 1).result(timeout=30)
    except Exception as exc:
        return _describe(exc)
    return None if result == 1 else f"the call returned {result!r}"


def _process_pool() -> Executor:
    import pipework

    return pipework.ProcessPool(WORKERS)


def _executor() -> Executor:
    return ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context(START))


RUNNERS: dict[str, Callable[..., Outcome]] = {
    "pipeline": _pipeline,
    "process_pool": partial(_mapped, pool=_process_pool),
    "executor_map": partial(_mapped, pool=_executor),
}


def _describe(exc: BaseException) -> str:
    # Without process ids, a table that did not change does not change from run to run.
    text = re.sub(r"process \d+", "process N", f"{type(exc).__name__}: {exc}").splitlines()[0]
    return text if len(text) <= 90 else text[:87] + "..."


def chaos(*, variant: str, n: int, rate: float, iterations: int, seed: int) -> Outcome:
    """Run ``variant`` over ``n`` items with ``rate`` kills a second (runs in a `cell` child)."""
    fn = partial(tasks.burn, iterations=iterations)
    run = RUNNERS[variant]
    name = None if variant == "executor_map" else WORKER_NAME
    run(fn, list(range(4 * WORKERS)), Killer(0, seed, name=name))  # warm-up: the forkserver
    killer = Killer(rate, seed, name=name)
    start = time.perf_counter()
    outcome = run(fn, list(range(n)), killer)
    elapsed = time.perf_counter() - start
    outputs = outcome.pop("outputs")
    unique = set(outputs)
    return {
        **outcome,
        "seconds": elapsed,
        "n": n,
        "delivered": len(outputs),
        "lost": n - len(unique & set(range(n))),
        "duplicated": len(outputs) - len(unique),
        "out_of_order": sum(1 for a, b in pairwise(outputs) if b < a),
        "kills": killer.kills,
    }


# In the parent --------------------------------------------------------------


def run(session: Session) -> Section:
    settings = session.settings
    rounds = settings.repeat
    n = settings.count(N, floor=100 * rounds)
    compare_n = settings.count(COMPARE_N, floor=1_000)
    about = ABOUT.format(n=f"{n:,}", rounds=rounds, compare_n=f"{compare_n:,}")
    section = Section("g", "Workers killed at random", about)
    iterations = session.iterations(TASK_SECONDS)
    probe = partial(_probe, session, iterations=iterations)
    if _wanted(session, "pipeline"):
        runs: dict[float, list[Outcome | NotAvailable]] = {r: [] for r in RATES}
        for round_ in range(rounds):
            items = n // rounds + (round_ < n % rounds)
            for kill_rate in RATES:  # taking turns, so drift hits every rate alike
                runs[kill_rate].append(probe("pipeline", items, kill_rate, SEED + round_))
        section.tables.append(_pipework_table(runs, n, rounds))
    compared = {
        (variant, kill_rate): probe(variant, compare_n, kill_rate, SEED)
        for variant in ("process_pool", "executor_map")
        if _wanted(session, variant)
        for kill_rate in RATES
    }
    if compared:
        section.tables.append(_compare_table(compared, compare_n))
    return section


def _wanted(session: Session, variant: str) -> bool:
    return any(session.wants(key) for key in VARIANTS[variant][0])


def _probe(
    session: Session, variant: str, n: int, kill_rate: float, seed: int, *, iterations: int
) -> Outcome | NotAvailable:
    kwargs = {"variant": variant, "n": n, "rate": kill_rate, "iterations": iterations, "seed": seed}
    return run_probe(  # type: ignore[no-any-return]
        "benchmarks.workloads.chaos:chaos", kwargs, timeout=session.settings.timeout
    )


def _kill_rate(value: float) -> str:
    return "none" if value == 0 else f"{value:g}/s"


PIPEWORK_HEADERS = [
    "kills",
    "items",
    "median wall time",
    "items/s",
    "÷ no kills",
    "workers killed",
    "lost",
    "duplicated",
    "out of order",
    "runs completed",
]


def _pipework_table(runs: dict[float, list[Outcome | NotAvailable]], n: int, rounds: int) -> Table:
    rates_seen = {
        r: median([o["n"] / o["seconds"] for o in completed])
        for r, found in runs.items()
        if (completed := [o for o in found if isinstance(o, dict) and o["error"] is None])
    }
    base = rates_seen.get(0.0)
    rows = [_pipework_row(r, found, rates_seen.get(r), base) for r, found in runs.items()]
    title = f"{VARIANTS['pipeline'][1]}, {WORKERS} workers, {n:,} items per kill rate"
    notes = [f"Throughput is the median of {rounds} run(s); the counts are summed over them."]
    return Table(title, PIPEWORK_HEADERS, rows, notes=notes)


def _pipework_row(
    kill_rate: float,
    found: list[Outcome | NotAvailable],
    items_per_second: float | None,
    base: float | None,
) -> list[str]:
    done = [o for o in found if isinstance(o, dict)]
    missing = [o for o in found if isinstance(o, NotAvailable)]
    if not done:
        return [_kill_rate(kill_rate), na(missing[0]), *[""] * (len(PIPEWORK_HEADERS) - 2)]
    completed = [o for o in done if o["error"] is None]
    errors = sorted({o["error"] for o in done if o["error"] is not None})
    errors += [na(o) for o in missing]
    versus = None if base is None or items_per_second is None else items_per_second / base
    return [
        _kill_rate(kill_rate),
        f"{sum(o['n'] for o in done):,}",
        seconds(median([o["seconds"] for o in completed]) if completed else None),
        rate(items_per_second),
        ratio(versus),
        str(sum(o["kills"] for o in done)),
        # A run that stopped with an error said so; lost means missing from a run that did not.
        str(sum(o["lost"] for o in completed)),
        *(str(sum(o[key] for o in done)) for key in ("duplicated", "out_of_order")),
        f"{len(completed)} of {len(found)}" + (f" ({'; '.join(errors)})" if errors else ""),
    ]


COMPARE_HEADERS = [
    "contender",
    "kills",
    "completed",
    "items delivered",
    "workers killed",
    "stopped by",
    "pool usable afterwards",
]


def _compare_table(compared: dict[tuple[str, float], Outcome | NotAvailable], n: int) -> Table:
    rows = []
    for (variant, kill_rate), found in compared.items():
        label = VARIANTS[variant][1]
        if isinstance(found, NotAvailable):
            rows.append([label, _kill_rate(kill_rate), na(found), "", "", "", ""])
            continue
        delivered = f"{found['delivered']:,} of {n:,}"
        disorder = found["duplicated"] + found["out_of_order"]
        rows.append(
            [
                label,
                _kill_rate(kill_rate),
                "yes" if found["error"] is None else "**no**",
                delivered + (f" (**{disorder} duplicated or out of order**)" if disorder else ""),
                str(found["kills"]),
                found["error"] or "-",
                "yes" if found["usable"] else f"**no** ({found.get('unusable') or '?'})",
            ]
        )
    title = (
        f"Executor.map under the same kills, {WORKERS} workers, {n:,} items, chunksize {CHUNKSIZE}"
    )
    return Table(title, COMPARE_HEADERS, rows, numeric=False)
