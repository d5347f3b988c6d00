"""(l) Engines: pipework's process stages on a cluster engine, against the engine's own idioms.

Two engines, Dask and Ray. An engine is an `Engine`: how its cluster is started
(once for the workload, in a process of its own), the `Variant` s that run on
it, which of them is pipework and which are the engine's own idioms. Another
engine is one more `Engine` in `ENGINES`, with a ``serve`` function and its
variants; the tables, the ratios and the targets follow from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..contenders import WORKERS
from ..measure import median
from ..probe import ROOT, NotAvailable, run_probe
from ..report import Section, Table, Target, na, rate, ratio, seconds
from ..session import Session

N = 6_000  # 1 ms items: about 3 s at the capacity of 2 threads
NOOP_N = 50_000
NOOP_PER_TASK_N = 2_000  # variants that make one task per item run on fewer no-op items
CPU_SECONDS = 0.001
BATCH = 1_000  # the items per task of the batched idiom (fewer if it would leave threads idle)
WARMUP = 8  # items of the untimed call that warms the client, the workers and the imports
OFFSET = 10**9  # the warm-up and 1-item calls' items start here, so Dask reuses no result
EFFICIENCY = 0.9  # the share of the cluster's capacity pipework's chunks must reach
SERIAL_ITEMS = 100  # items per serial timing of one item's cost; five timings per round
START_TIMEOUT = 120.0  # seconds a cluster gets to start

Fn = Callable[[int], int]
Calls = dict[str, list[int]]  # "warmup", "startup", "seconds": the items of each call


# The work, run on the workers ----------------------------------------------


def work(x: int, iterations: int) -> int:
    """About 1 ms of pure-Python CPU: the loop of `tasks.burn`, so that its calibration holds."""
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return x * x + total


def noop(x: int) -> int:
    return x


def apply_chunk(fn: Fn, chunk: list[int]) -> list[int]:
    """The batched idiom's task: ``fn`` over a chunk of items."""
    return [fn(x) for x in chunk]


def _task(task: str, iterations: int) -> Fn:
    return partial(work, iterations=iterations) if task == "work" else noop


def _expected(task: str, fn: Fn, items: list[int]) -> list[int]:
    if task == "noop":
        return list(items)
    total = fn(0)  # the loop's share of `work`, the same for every item
    return [x * x + total for x in items]


def _check(task: str, fn: Fn, items: list[int], outputs: Any) -> None:
    got = list(outputs)
    want = _expected(task, fn, items)
    if got != want:
        wrong = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), None)
        where = f"first wrong at {wrong}" if wrong is not None else "the rest missing or extra"
        raise AssertionError(f"{len(got)} results for {len(items)} items; {where}")


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# Timing calls, inside a probe ------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What one probe runs: its calls' items, the function, and where."""

    address: str | None  # the cluster's scheduler; None for the local variant
    task: str
    fn: Fn
    calls: Calls
    batch: int  # items per task of the batched idiom

    def check(self, items: list[int], outputs: Any) -> None:
        _check(self.task, self.fn, items, outputs)


Map = Callable[[Job, list[int]], Awaitable[list[int]]]


async def _atimed(map_: Map, job: Job) -> dict[str, float]:
    found = {}
    for name, items in job.calls.items():
        start = time.perf_counter()
        outputs = await map_(job, items)
        found[name] = time.perf_counter() - start
        job.check(items, outputs)
    return found


def _pipework_local(job: Job) -> dict[str, float]:
    from pipework import Pipeline

    async def map_(job: Job, items: list[int]) -> list[int]:
        return [y async for y in Pipeline(items).map(job.fn, on="process")]

    return asyncio.run(_atimed(map_, job))


def _on_dask(make: Callable[[Any], Map]) -> Callable[[Job], dict[str, float]]:
    """A runner whose calls share one asynchronous client, connected before any call."""

    def runner(job: Job) -> dict[str, float]:
        async def go() -> dict[str, float]:
            from distributed import Client

            async with Client(job.address, asynchronous=True) as client:
                return await _atimed(make(client), job)

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
        chunks = _chunks(items, job.batch)
        done = await client.gather(client.map(partial(apply_chunk, job.fn), chunks))
        return [y for chunk in done for y in chunk]

    return map_


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
            return asyncio.run(_atimed(make(ray), job))
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
        chunks = _chunks(items, job.batch)
        done = ray.get([chunk_remote.remote(job.fn, chunk) for chunk in chunks])
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


def time_variant(
    *, variant: str, address: str | None, task: str, iterations: int, n: int, batch: int
) -> dict[str, float]:
    """Time one call of ``variant`` on ``n`` items, after a warm-up and a 1-item call (a probe)."""
    calls = {
        "warmup": list(range(OFFSET, OFFSET + WARMUP)),
        "startup": [2 * OFFSET],
        "seconds": list(range(n)),
    }
    job = Job(address, task, _task(task, iterations), calls, batch)
    found = VARIANTS[variant].runner(job)
    return {"seconds": found["seconds"], "startup": found["startup"]}


def serial_seconds(*, iterations: int) -> float:
    """One item's cost, run serially in this process: the median of five timings (a probe)."""
    fn = _task("work", iterations)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for x in range(SERIAL_ITEMS):
            fn(x)
        times.append((time.perf_counter() - start) / SERIAL_ITEMS)
    return median(times)


def _loop_rate(iterations: int) -> float:
    """Items/s of the loop run right here, on a worker (through `client.run`)."""
    fn = _task("work", iterations)
    start = time.perf_counter()
    for x in range(3 * SERIAL_ITEMS):
        fn(x)
    return 3 * SERIAL_ITEMS / (time.perf_counter() - start)


def workers_rate(*, address: str, iterations: int) -> float:
    """Items/s of the loop run by every worker at once, with no scheduling at all (a probe)."""

    async def go() -> float:
        from distributed import Client

        async with Client(address, asynchronous=True) as client:
            found = await client.run(_loop_rate, iterations)
            return float(sum(found.values()))

    return asyncio.run(go())


def ray_workers_rate(*, address: str, iterations: int) -> float:
    """Items/s of the loop as one Ray task per worker thread at once, each timing itself (a probe).

    The tasks time their own loops, so no scheduling is in the figure; they
    start together, on workers already up.
    """
    ray = _connect_ray(address)
    try:
        threads = _start_ray_workers(ray)
        loop = ray.remote(_loop_rate)
        return float(sum(ray.get([loop.remote(iterations) for _ in range(threads)])))
    finally:
        ray.shutdown()


# The engines -------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One way to run the map, as the tables name it."""

    key: str
    label: str
    runner: Callable[[Job], dict[str, float]]  # the seconds of each of the job's calls
    needs: tuple[str, ...] = ()  # modules it imports
    contender: str | None = None  # the `--contenders` key that selects it; None: always run
    per_task: bool = False  # one task per item: runs on fewer no-op items

    def missing(self) -> str | None:
        absent = [name for name in self.needs if importlib.util.find_spec(name) is None]
        return f"{absent[0]} is not installed" if absent else None


@dataclass(frozen=True)
class Engine:
    """A cluster engine: how to start its cluster, and what runs on it."""

    key: str
    name: str
    module: str  # what it needs installed
    cluster: str  # the cluster, as the tables describe it
    serve: str  # "module:function" that starts the cluster in its own process (see `serve_dask`)
    variants: tuple[Variant, ...]
    pipework: str  # the variant that is pipework on this engine
    idioms: tuple[str, ...]  # the engine's own idioms; the first is the ratios' base
    about: str
    base: str  # the ratios' base, as the tables' headers name it
    starter: str  # the call that starts the cluster, in the note on its start
    direct: str  # how the loop ran on every worker at once, in the note on capacity


LOCAL = Variant(
    "local",
    "pipework Pipeline.map(f, on='process'), locally",
    _pipework_local,
    contender="pipework",
)

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
    serve="benchmarks.workloads.engines:serve_dask",
    variants=_dask_variants(),
    pipework="pipework_dask",
    idioms=("dask_map", "dask_batched"),
    about=DASK_ABOUT,
    base="client.map",
    starter="`LocalCluster(...)`",
    direct="Run on every worker at once through `client.run` (no tasks, no scheduler)",
)

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
    serve="benchmarks.workloads.engines:serve_ray",
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

ENGINES: dict[str, Engine] = {"dask": DASK, "ray": RAY}
VARIANTS: dict[str, Variant] = {
    LOCAL.key: LOCAL,
    **{v.key: v for engine in ENGINES.values() for v in engine.variants},
}


# A cluster, in a process of its own ------------------------------------------------


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
            "direct": "benchmarks.workloads.engines:workers_rate",
            "made": made,
            "ready": time.perf_counter() - start,
        }
        print(json.dumps(ready), flush=True)
        sys.stdin.read()  # until the workload closes it


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
            "direct": "benchmarks.workloads.engines:ray_workers_rate",
            "made": made,
            "ready": time.perf_counter() - start,
        }
        out.write(json.dumps(ready) + "\n")
        out.flush()
        sys.stdin.read()  # until the workload closes it
    finally:
        ray.shutdown()
        out.close()


@contextlib.contextmanager
def cluster(engine: Engine) -> Iterator[dict[str, Any] | NotAvailable]:
    """Start ``engine``'s cluster; yield what its process said, with ``launch`` seconds added.

    The cluster leads a process group of its own; when the workload is done
    with it, its stdin is closed, it gets time to shut down, and whatever of
    its group is left is killed by the group's id.
    """
    if importlib.util.find_spec(engine.module) is None:
        yield NotAvailable(f"{engine.module} is not installed")
        return
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "benchmarks.cell", engine.serve, "{}"]
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        try:
            line = _first_line(process, START_TIMEOUT)
            if line is None:
                log.seek(0)
                lines = [text for text in log.read().splitlines() if text.strip()]
                why = lines[-1][:160] if lines else f"no address in {START_TIMEOUT:.0f} s"
                yield NotAvailable(f"the cluster did not start: {why}")
            else:
                yield {**json.loads(line), "launch": time.perf_counter() - start}
        finally:
            _stop(process)


def _first_line(process: subprocess.Popen[str], timeout: float) -> str | None:
    out = process.stdout
    if out is None:
        return None
    ready, _, _ = select.select([out], [], [], timeout)
    line = out.readline() if ready else ""
    return line if line.startswith("{") else None


def _stop(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # its nannies and workers, if any are left
    if process.poll() is None:
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


# The workload -------------------------------------------------------------------------------

ABOUT = f"""\
Each variant maps a function over a list of ints and collects the results in order; every
call's results are checked against the expected ones. The function is a pure-Python loop
of about {CPU_SECONDS * 1000:g} ms that returns `x * x` plus the loop's sum ({{n}} items),
then a no-op that returns its item, for the cost per item ({{noop_n}} items; {{per_task_n}}
for a variant that makes one task per item). pipework also runs locally,
`Pipeline(items).map(f, on="process")` with every default ({WORKERS} worker processes on this
machine, started inside each call), for scale. Starting the cluster is in no figure; how
long it took is said under each engine's first table. The variants take turns, one call
each per round, and the tables give the median of the rounds. "items/s" is over the whole
call; "after the 1-item call" takes off the median time of a call with a single item.
Ratios are each variant's items/s over that of the engine's own one-task-per-item idiom
(`client.map` on Dask, `ray.get` of one `f.remote(x)` per item on Ray), both over whole
calls, and so are the targets. The cluster's capacity is
its worker threads over one item's time measured serially (in a fresh process, with the
cluster idle); a variant's share of capacity is its items/s over that."""

HEADERS = [
    "variant",
    "items",
    "median time",
    "items/s",
    "items/s after the 1-item call",
    "1-item call",
    "share of capacity",
]
NOOP_HEADERS = ["variant", "items", "median time", "items/s", "per item"]


def _versus(engine: Engine) -> str:
    """The header of the ratios' column."""
    return f"speed ÷ {engine.base}'s"


Found = dict[str, list[dict[str, float]] | NotAvailable]


@dataclass(frozen=True)
class Figures:
    """One variant's medians over the rounds."""

    n: int
    seconds: float
    startup: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def steady_rate(self) -> float | None:
        return self.n / (self.seconds - self.startup) if self.seconds > self.startup else None


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


@dataclass
class Measured:
    """One engine's samples: per variant, per workload, the calls of every round."""

    ready: dict[str, Any]  # what the cluster's process said when it was up
    work: Found
    noop: Found
    serial: list[float]  # one item's seconds, run serially, once per round
    direct: list[float]  # items/s of the loop run on every worker at once, once per round


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
                section.tables.append(_unavailable(engine, ready))
                section.targets += _targets(engine, None, None)
                continue
            variants = [
                v
                for v in (LOCAL, *engine.variants)
                if v.contender is None or session.wants(v.contender)
            ]
            measured = _measure(variants, ready, plan, settings.repeat)
        _report(section, engine, measured, settings.repeat)
    return section


def _measure(variants: list[Variant], ready: dict[str, Any], plan: Plan, repeat: int) -> Measured:
    """Every variant on both workloads, taking turns, one call each per round."""
    blank: Found = {v.key: NotAvailable(v.missing() or "") if v.missing() else [] for v in variants}
    measured = Measured(ready, dict(blank), dict(blank), [], [])
    for _ in range(repeat):
        one = run_probe(
            "benchmarks.workloads.engines:serial_seconds",
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
    one = run_probe("benchmarks.workloads.engines:time_variant", kwargs, timeout=plan.timeout)
    return one if isinstance(one, NotAvailable) else [*times, {**one, "n": n, **kwargs}]


def _figures(found: list[dict[str, float]] | NotAvailable | None) -> Figures | None:
    if not isinstance(found, list) or not found:
        return None
    n = int(found[0]["n"])
    elapsed = median([one["seconds"] for one in found])
    return Figures(n, elapsed, median([one["startup"] for one in found]))


def _label(variant: Variant, found: list[dict[str, float]] | NotAvailable | None) -> str:
    """The variant's label, with the batch its timed calls used."""
    return variant.label.format(batch=_batch_of(found))


def _batch_of(found: list[dict[str, float]] | NotAvailable | None) -> str:
    batch = found[0]["batch"] if isinstance(found, list) and found else BATCH
    return f"{int(batch):,}"


def _capacity(measured: Measured) -> tuple[float | None, float | None]:
    """One item's serial seconds (the median of the rounds), and the cluster's items/s."""
    if not measured.serial:
        return None, None
    serial = median(measured.serial)
    return serial, int(measured.ready["threads"]) / serial


def _report(section: Section, engine: Engine, measured: Measured, repeat: int) -> None:
    ready = measured.ready
    threads = int(ready["threads"])
    serial, capacity = _capacity(measured)
    base = _figures(measured.work.get(engine.idioms[0]))
    batch = next((_batch_of(one) for one in measured.work.values() if one), f"{BATCH:,}")
    section.about += "\n\n" + engine.about.format(warmup=WARMUP, batch=batch)
    rows = []
    for key, result in measured.work.items():
        label = _label(VARIANTS[key], result)
        figures = _figures(result)
        if figures is None:
            rows.append([label, "", _why(result), "", "", "", "", ""])
            continue
        share = f"{figures.rate / capacity:.0%}" if capacity else "-"
        versus = ratio(figures.rate / base.rate) if base else "-"
        row = [label, f"{figures.n:,}", seconds(figures.seconds), rate(figures.rate)]
        rows.append([*row, rate(figures.steady_rate), seconds(figures.startup), share, versus])
    title = f"{engine.name}, {engine.cluster}: {CPU_SECONDS * 1000:g} ms items, median of {repeat}"
    table = Table(title, [*HEADERS, _versus(engine)], rows)
    note = (
        f"The cluster took {seconds(ready['launch'])} from launching its process to "
        f"{threads} worker threads ready ({seconds(ready['made'])} of it in "
        f"{engine.starter}); that is in no figure here."
    )
    if serial and capacity:
        note += (
            f" One item takes {serial * 1000:.3f} ms serially, so the cluster's capacity is "
            f"{threads} / {serial * 1000:.3f} ms = {rate(capacity)} items/s."
        )
    if measured.direct and capacity:
        direct = median(measured.direct)
        note += (
            f" {engine.direct}, the loop reached {rate(direct)} items/s, "
            f"{direct / capacity:.0%} of that capacity: "
            "what this machine, shared with other work, left the cluster in this run."
        )
    table.notes.append(note)
    section.tables += [table, _noop_table(engine, measured.noop, repeat)]
    section.targets += _targets(engine, measured.work, capacity)


def _why(result: list[dict[str, float]] | NotAvailable | None) -> str:
    return na(result if isinstance(result, NotAvailable) else NotAvailable("no figures"))


def _noop_table(engine: Engine, found: Found, repeat: int) -> Table:
    base = _figures(found.get(engine.idioms[0]))
    rows = []
    for key, result in found.items():
        label = _label(VARIANTS[key], result)
        figures = _figures(result)
        if figures is None:
            rows.append([label, "", _why(result), "", "", ""])
            continue
        per_item = f"{1e6 / figures.rate:,.1f} µs"
        versus = ratio(figures.rate / base.rate) if base else "-"
        row = [label, f"{figures.n:,}", seconds(figures.seconds), rate(figures.rate)]
        rows.append([*row, per_item, versus])
    title = f"{engine.name}, {engine.cluster}: no-op items, median of {repeat}"
    return Table(title, [*NOOP_HEADERS, _versus(engine)], rows)


def _unavailable(engine: Engine, reason: NotAvailable) -> Table:
    title = f"{engine.name}, {engine.cluster}"
    rows = [[_label(v, None), na(reason)] for v in engine.variants]
    return Table(title, ["variant", "result"], rows, numeric=False)


def _targets(engine: Engine, found: Found | None, capacity: float | None) -> list[Target]:
    """The issue's two targets for ``engine``, judged on whole calls' items/s."""
    found = found or {}
    ours = _figures(found.get(engine.pipework))
    targets = []
    wanted = "≥ 1x its speed: at least as fast as the engine's own idiom"
    for key in engine.idioms:
        theirs = _figures(found.get(key))
        label = _label(VARIANTS[key], found.get(key))
        measure = f"pipework on {engine.name} vs {label}, {CPU_SECONDS * 1000:g} ms items"
        if ours is None or theirs is None:
            targets.append(Target(measure, wanted, "not measured", None))
            continue
        speed = ours.rate / theirs.rate
        measured = f"{ratio(speed)} ({rate(ours.rate)} vs {rate(theirs.rate)} items/s)"
        targets.append(Target(measure, wanted, measured, speed >= 1.0))
    measure = f"pipework on {engine.name}: its 100 ms chunks' share of the cluster's capacity"
    wanted = f"≥ {EFFICIENCY:.0%} of it"
    if ours is None or not capacity:
        targets.append(Target(measure, wanted, "not measured", None))
    else:
        share = ours.rate / capacity
        measured = f"{share:.0%} ({rate(ours.rate)} of {rate(capacity)} items/s)"
        targets.append(Target(measure, wanted, measured, share >= EFFICIENCY))
    return targets
