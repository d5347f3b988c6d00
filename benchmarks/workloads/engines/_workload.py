"""(l)'s run: each engine's cluster up, every variant timed in turns, then its tables."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ...probe import NotAvailable, run_probe
from ...report import Section
from ...session import Session
from ._cluster import cluster
from ._common import BATCH, CPU_SECONDS, LOCAL, NOOP_N, NOOP_PER_TASK_N, N, Variant
from ._registry import ENGINES
from ._report import ABOUT, Found, Measured, report_engine, targets, unavailable_table


@dataclass(frozen=True)
class Plan:
    """How much each probe runs: the item counts, the loop's iterations, its time limit."""

    n: int
    noop_n: int
    per_task_n: int
    iterations: int
    timeout: float

    def count(self, task: str, *, per_task: bool) -> int:
        if task == "work":
            return self.n
        return self.per_task_n if per_task else self.noop_n


def run(session: Session) -> Section:
    settings = session.settings
    n = settings.count(N, floor=200)
    noop_n = settings.count(NOOP_N, floor=1_000)
    per_task_n = settings.count(NOOP_PER_TASK_N, floor=200)
    about = ABOUT.format(n=f"{n:,}", noop_n=f"{noop_n:,}", per_task_n=f"{per_task_n:,}")
    section = Section("l", "Engines: pipework on a cluster, against the engine's own idioms", about)
    if not session.wants("pipework"):
        return section
    plan = Plan(n, noop_n, per_task_n, session.iterations(CPU_SECONDS), settings.timeout)
    for engine in ENGINES.values():
        with cluster(engine) as ready:
            if isinstance(ready, NotAvailable):
                section.tables.append(unavailable_table(engine, ready))
                section.targets += targets(engine, None, None)
                continue
            variants = [
                v
                for v in (LOCAL, *engine.variants)
                if v.contender is None or session.wants(v.contender)
            ]
            measured = _measure(variants, ready, plan, settings.repeat)
        report_engine(section, engine, measured, settings.repeat)
    return section


def _measure(variants: list[Variant], ready: dict[str, Any], plan: Plan, repeat: int) -> Measured:
    """Every variant on both workloads, taking turns, one call each per round."""
    blank: Found = {v.key: NotAvailable(v.missing() or "") if v.missing() else [] for v in variants}
    measured = Measured(ready, dict(blank), dict(blank), [], [])
    for _ in range(repeat):
        one = run_probe(
            "benchmarks.workloads.engines._common:serial_seconds",
            {"iterations": plan.iterations},
            timeout=plan.timeout,
        )
        if not isinstance(one, NotAvailable):
            measured.serial.append(one)
        if ready.get("direct"):
            kwargs = {"address": ready["address"], "iterations": plan.iterations}
            one = run_probe(ready["direct"], kwargs, timeout=plan.timeout)
            if not isinstance(one, NotAvailable):
                measured.direct.append(one)
        for v in variants:
            measured.work[v.key] = _sample(measured.work[v.key], v, ready, "work", plan)
        for v in variants:
            measured.noop[v.key] = _sample(measured.noop[v.key], v, ready, "noop", plan)
    return measured


def _batch(n: int, threads: int) -> int:
    """`BATCH` items per task, or fewer so that each thread has two tasks at least."""
    return max(1, min(BATCH, math.ceil(n / (2 * threads))))


def _sample(
    times: list[dict[str, float]] | NotAvailable,
    variant: Variant,
    ready: dict[str, Any],
    task: str,
    plan: Plan,
) -> list[dict[str, float]] | NotAvailable:
    """Run ``variant`` once more on ``task``, unless it could not run before."""
    if isinstance(times, NotAvailable):
        return times
    n = plan.count(task, per_task=variant.per_task)
    kwargs = {
        "variant": variant.key,
        "address": ready["address"],
        "task": task,
        "iterations": plan.iterations if task == "work" else 0,
        "n": n,
        "batch": _batch(n, int(ready["threads"])),
    }
    one = run_probe(
        "benchmarks.workloads.engines._registry:time_variant", kwargs, timeout=plan.timeout
    )
    return one if isinstance(one, NotAvailable) else [*times, {**one, "n": n, **kwargs}]
