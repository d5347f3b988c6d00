"""(l) on Dask: pipework against `client.map`, batched `client.map` and joblib's Dask backend."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from ._common import Engine, Job, Map, Variant, apply_chunk, in_chunks, loop_rate, time_calls


def _on_dask(make: Callable[[Any], Map]) -> Callable[[Job], dict[str, float]]:
    """A runner whose calls share one asynchronous client, connected before any call."""

    def runner(job: Job) -> dict[str, float]:
        async def go() -> dict[str, float]:
            from distributed import Client

            async with Client(job.address, asynchronous=True) as client:
                return await time_calls(make(client), job)

        return asyncio.run(go())

    return runner


def _pipework_dask(client: Any) -> Map:
    import pipework

    async def map_(job: Job, items: list[int]) -> list[int]:
        stage = pipework.Pipeline(items).map(job.fn, on=pipework.dask(client))
        return [y async for y in stage]

    return map_


def _dask_map(client: Any) -> Map:
    async def map_(job: Job, items: list[int]) -> list[int]:
        return await client.gather(client.map(job.fn, items))  # type: ignore[no-any-return]

    return map_


def _dask_batched(client: Any) -> Map:
    async def map_(job: Job, items: list[int]) -> list[int]:
        chunks = in_chunks(items, job.batch)
        done = await client.gather(client.map(partial(apply_chunk, job.fn), chunks))
        return [y for chunk in done for y in chunk]

    return map_


def _joblib_dask(job: Job) -> dict[str, float]:
    """joblib's Dask backend takes a synchronous client: this probe runs no event loop."""
    import joblib
    from distributed import Client

    found = {}
    with Client(job.address):  # the default client, which the backend finds
        for name, items in job.calls.items():
            start = time.perf_counter()
            with joblib.parallel_backend("dask"):
                outputs = joblib.Parallel(n_jobs=-1)(joblib.delayed(job.fn)(x) for x in items)
            found[name] = time.perf_counter() - start
            job.check(items, outputs)
    return found


def workers_rate(*, address: str, iterations: int) -> float:
    """Items/s of the loop run by every worker at once, with no scheduling at all (a probe)."""

    async def go() -> float:
        from distributed import Client

        async with Client(address, asynchronous=True) as client:
            found = await client.run(loop_rate, iterations)
            return float(sum(found.values()))

    return asyncio.run(go())


# The engine -------------------------------------------------------------------


DASK_ABOUT = """\
The cluster is a `distributed.LocalCluster(n_workers=2, threads_per_worker=1,
processes=True, dashboard_address=None)`, started once for the workload in a process of its
own; every timed call runs in a fresh process that connects a client to it (not timed),
makes an untimed call of {warmup} items, then a 1-item call and the timed call. pipework
runs with every default: `Pipeline(items).map(f, on=pipework.dask(client))` with an
asynchronous client, read with `async for`. Dask's own idiom is
`await client.gather(client.map(f, items))` on the same asynchronous client, one task per
item; batched, it is `client.map` over chunks of {batch} items, flattened. joblib runs
`with joblib.parallel_backend("dask"): Parallel(n_jobs=-1)(delayed(f)(x) for x in items)`
with a synchronous client (in a probe that runs no event loop)."""


def _dask_variants() -> tuple[Variant, ...]:
    needs = ("distributed",)
    return (
        Variant(
            "pipework_dask",
            "pipework Pipeline.map(f, on=pipework.dask(client))",
            _on_dask(_pipework_dask),
            needs,
            contender="pipework",
        ),
        Variant(
            "dask_map",
            "Dask client.map(f, items) + client.gather",
            _on_dask(_dask_map),
            needs,
            per_task=True,
        ),
        Variant(
            "dask_batched",
            "Dask client.map over chunks of {batch}, flattened",
            _on_dask(_dask_batched),
            needs,
        ),
        Variant(
            "joblib_dask",
            "joblib Parallel(n_jobs=-1), parallel_backend('dask')",
            _joblib_dask,
            ("distributed", "joblib"),
            contender="joblib",
        ),
    )


DASK = Engine(
    key="dask",
    name="Dask",
    module="distributed",
    cluster="LocalCluster, 2 worker processes x 1 thread",
    serve="benchmarks.workloads.engines._dask:serve_dask",
    variants=_dask_variants(),
    pipework="pipework_dask",
    idioms=("dask_map", "dask_batched"),
    about=DASK_ABOUT,
    base="client.map",
    starter="`LocalCluster(...)`",
    direct="Run on every worker at once through `client.run` (no tasks, no scheduler)",
)


# The cluster, in a process of its own ---------------------------------------------


def serve_dask() -> None:
    """Start the cluster, print one line saying where it is, and keep it until stdin closes."""
    import distributed

    start = time.perf_counter()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        made = time.perf_counter() - start
        with distributed.Client(cluster) as client:
            client.wait_for_workers(2)
            threads = sum(client.nthreads().values())
        ready = {
            "address": cluster.scheduler_address,
            "threads": threads,
            "direct": "benchmarks.workloads.engines._dask:workers_rate",
            "made": made,
            "ready": time.perf_counter() - start,
        }
        print(json.dumps(ready), flush=True)
        sys.stdin.read()  # until the workload closes it
