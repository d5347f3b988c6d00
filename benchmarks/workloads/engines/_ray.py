"""(l) on Ray: pipework against `ray.get` of a task per item, and of a task per chunk."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ._common import Engine, Job, Map, Variant, apply_chunk, in_chunks, loop_rate, time_calls


def _on_ray(make: Callable[[Any], Map]) -> Callable[[Job], dict[str, float]]:
    """A runner that connects to the Ray cluster and starts its workers before any call.

    Ray starts worker processes for each driver (each probe is one), on demand:
    a task per worker thread that waits a moment has them all up before the
    warm-up call, as a Dask cluster's workers are.
    """

    def runner(job: Job) -> dict[str, float]:
        ray = _connect_ray(job.address)
        try:
            _start_ray_workers(ray)
            return asyncio.run(time_calls(make(ray), job))
        finally:
            ray.shutdown()

    return runner


def _ray_environment() -> None:
    """Set, before Ray is imported, what the cluster and its drivers must agree on.

    A cluster that ``ray.init()`` starts turns on Ray's token authentication
    by default (its token in Ray's default place, ``~/.ray/auth_token``); a
    driver given the cluster's address turns it on only if told to, so both
    take ``RAY_AUTH_MODE=token`` unless the environment says otherwise. Ray's
    usage statistics are not sent.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _connect_ray(address: str | None) -> Any:
    """Connect this process, as a driver, to the cluster at ``address``; return `ray`."""
    _ray_environment()
    import ray

    ray.init(address=address, log_to_driver=False)
    return ray


def _start_ray_workers(ray: Any) -> int:
    """Have every worker thread of the cluster run a task at once; return how many there are."""
    threads = int(ray.cluster_resources().get("CPU", 1))
    wait = ray.remote(_pause)
    ray.get([wait.remote(0.5) for _ in range(threads)])
    return threads


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _pipework_ray(ray: Any) -> Map:  # noqa: ARG001 - the runner's connection
    import pipework

    async def map_(job: Job, items: list[int]) -> list[int]:
        return [y async for y in pipework.Pipeline(items).map(job.fn, on=pipework.ray())]

    return map_


def _ray_get(ray: Any) -> Map:
    """``ray.get([f_remote.remote(x) ...])``; ``f_remote`` is made once, at the warm-up call."""
    made: list[Any] = []

    async def map_(job: Job, items: list[int]) -> list[int]:
        if not made:
            fn = job.fn

            def f(x: int) -> int:  # `ray.remote` takes a function, not a partial
                return fn(x)

            made.append(ray.remote(f))
        f_remote = made[0]
        return ray.get([f_remote.remote(x) for x in items])  # type: ignore[no-any-return]

    return map_


def _ray_batched(ray: Any) -> Map:
    """One task per chunk of ``job.batch`` items, flattened."""
    chunk_remote = ray.remote(apply_chunk)

    async def map_(job: Job, items: list[int]) -> list[int]:
        chunks = in_chunks(items, job.batch)
        done = ray.get([chunk_remote.remote(job.fn, chunk) for chunk in chunks])
        return [y for chunk in done for y in chunk]

    return map_


def ray_workers_rate(*, address: str, iterations: int) -> float:
    """Items/s of the loop as one Ray task per worker thread at once, each timing itself (a probe).

    The tasks time their own loops, so no scheduling is in the figure; they
    start together, on workers already up.
    """
    ray = _connect_ray(address)
    try:
        threads = _start_ray_workers(ray)
        loop = ray.remote(loop_rate)
        return float(sum(ray.get([loop.remote(iterations) for _ in range(threads)])))
    finally:
        ray.shutdown()


# The engine -------------------------------------------------------------------


RAY_ABOUT = """\
The Ray cluster is a local instance, `ray.init(num_cpus=2, include_dashboard=False,
log_to_driver=False)`, started once for the workload in a process of its own; every timed
call runs in a fresh process, a driver that connects to it with
`ray.init(address=..., log_to_driver=False)` and has one 0.5 s task per CPU run at once,
so that Ray has started the worker processes it starts for each driver (not timed); then
it makes an untimed call of {warmup} items, a 1-item call and the timed call, and ends with
`ray.shutdown()`. pipework runs with every default:
`Pipeline(items).map(f, on=pipework.ray())`, read with `async for`. Ray's own idiom is
`ray.get([f_remote.remote(x) for x in items])` with `f_remote = ray.remote(f)`, one task
per item; batched, it is one task of `ray.remote` per chunk of {batch} items, flattened."""


def _ray_variants() -> tuple[Variant, ...]:
    needs = ("ray",)
    return (
        Variant(
            "pipework_ray",
            "pipework Pipeline.map(f, on=pipework.ray())",
            _on_ray(_pipework_ray),
            needs,
            contender="pipework",
        ),
        Variant(
            "ray_get",
            "Ray ray.get([f_remote.remote(x) for x in items])",
            _on_ray(_ray_get),
            needs,
            per_task=True,
        ),
        Variant(
            "ray_batched",
            "Ray remote tasks over chunks of {batch}, flattened",
            _on_ray(_ray_batched),
            needs,
        ),
    )


RAY = Engine(
    key="ray",
    name="Ray",
    module="ray",
    cluster="local ray.init(num_cpus=2), 2 CPUs",
    serve="benchmarks.workloads.engines._ray:serve_ray",
    variants=_ray_variants(),
    pipework="pipework_ray",
    idioms=("ray_get", "ray_batched"),
    about=RAY_ABOUT,
    base="ray.get",
    starter="`ray.init(...)`",
    direct=(
        "Run as one Ray task per CPU at once, each task timing its own loop (no scheduling "
        "in the figure)"
    ),
)


# The cluster, in a process of its own ---------------------------------------------


def serve_ray() -> None:
    """Start a local Ray, print one line saying where it is, and keep it until stdin closes.

    Ray's own processes (GCS, raylet, workers) get stderr for their stdout, so
    that the one line is all the workload reads, and no one of them holds the
    pipe; `ray.shutdown()` stops them all.
    """
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _ray_environment()
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        made = time.perf_counter() - start
        threads = int(ray.cluster_resources()["CPU"])
        ready = {
            "address": ray.get_runtime_context().gcs_address,
            "threads": threads,
            "direct": "benchmarks.workloads.engines._ray:ray_workers_rate",
            "made": made,
            "ready": time.perf_counter() - start,
        }
        out.write(json.dumps(ready) + "\n")
        out.flush()
        sys.stdin.read()  # until the workload closes it
    finally:
        ray.shutdown()
        out.close()
