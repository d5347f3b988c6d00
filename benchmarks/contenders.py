"""The ways to run ``fn`` over a list of items on worker processes, pipework's and the others'.

Each runner takes the function, the items and its options, starts its own
workers, returns the outputs (or their count), and stops its workers, as one
call of that API in a user's program would. Peers are imported inside their
runners, so that this module imports without them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from . import tasks

WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
START = "forkserver" if sys.platform == "linux" else "spawn"

Runner = Callable[..., Any]


@dataclass(frozen=True)
class Contender:
    """One way to run the work, as the tables name it."""

    key: str
    label: str
    module: str | None  # the peer it needs, or None for pipework and the standard library
    start: str  # how its workers start
    per_item: bool  # one message per item: slow enough that it runs on fewer items

    def missing(self) -> str | None:
        """Say why this contender cannot run here, or return None if it can."""
        if self.module is None or importlib.util.find_spec(self.module) is not None:
            return None
        return f"{self.module} is not installed"


def _ctx() -> multiprocessing.context.BaseContext:
    return multiprocessing.get_context(START)


def serial(fn: Runner, items: list[Any]) -> list[Any]:
    return [fn(item) for item in items]


def pipework_map(fn: Runner, items: list[Any]) -> list[Any]:
    import pipework

    return asyncio.run(pipework.map(fn, items, on="process", workers=WORKERS))


def pipework_pipeline(fn: Runner, items: list[Any]) -> int:
    """Run a pipeline that drops its outputs; return how many came out of the stage."""
    import pipework

    pipeline = pipework.Pipeline(items).map(fn, on="process", workers=WORKERS, name="work")
    report = asyncio.run(pipeline.run())
    return report["work"].items_out


def run_in_executor(fn: Runner, items: list[Any]) -> list[Any]:
    async def go() -> list[Any]:
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(WORKERS, mp_context=_ctx()) as pool:
            return await asyncio.gather(*(loop.run_in_executor(pool, fn, x) for x in items))

    return asyncio.run(go())


def executor_map(fn: Runner, items: list[Any], chunksize: int = 1) -> list[Any]:
    with ProcessPoolExecutor(WORKERS, mp_context=_ctx()) as pool:
        return list(pool.map(fn, items, chunksize=chunksize))


def pool_imap(fn: Runner, items: list[Any], chunksize: int = 1) -> list[Any]:
    with _ctx().Pool(WORKERS) as pool:
        return list(pool.imap(fn, items, chunksize=chunksize))


def joblib_parallel(fn: Runner, items: list[Any]) -> list[Any]:
    from joblib import Parallel, delayed

    return Parallel(n_jobs=WORKERS)(delayed(fn)(x) for x in items)


def mpire_map(fn: Runner, items: list[Any]) -> list[Any]:
    from mpire import WorkerPool

    with WorkerPool(n_jobs=WORKERS, start_method=START) as pool:
        return pool.map(fn, items, concatenate_numpy_output=False)


def pypeln_map(fn: Runner, items: list[Any]) -> list[Any]:
    import pypeln

    return list(pypeln.process.map(fn, items, workers=WORKERS))


def aiomultiprocess_map(fn: Runner, items: list[Any]) -> list[Any]:
    import aiomultiprocess

    aiomultiprocess.set_start_method(START)

    async def go() -> list[Any]:
        async with aiomultiprocess.Pool(processes=WORKERS) as pool:
            return await pool.map(partial(tasks.call_async, fn), items)

    return list(asyncio.run(go()))


RUNNERS: dict[str, Runner] = {
    "serial": serial,
    "pipework": pipework_map,
    "pipework_pipeline": pipework_pipeline,
    "run_in_executor": run_in_executor,
    "executor_map": executor_map,
    "pool_imap": pool_imap,
    "joblib": joblib_parallel,
    "mpire": mpire_map,
    "pypeln": pypeln_map,
    "aiomultiprocess": aiomultiprocess_map,
}


def _contender(
    key: str, label: str, module: str | None, start: str, *, per_item: bool
) -> Contender:
    return Contender(key, label, module, start, per_item=per_item)


CONTENDERS: dict[str, Contender] = {
    c.key: c
    for c in (
        _contender("serial", "serial, in process", None, "none", per_item=False),
        _contender("pipework", "pipework.map(on='process')", None, START, per_item=False),
        _contender(
            "pipework_pipeline",
            "pipework Pipeline.map(on='process').run()",
            None,
            START,
            per_item=False,
        ),
        _contender(
            "run_in_executor", "run_in_executor, one item per call", None, START, per_item=True
        ),
        _contender("executor_map", "ProcessPoolExecutor.map", None, START, per_item=False),
        _contender("pool_imap", "multiprocessing.Pool.imap", None, START, per_item=False),
        _contender(
            "joblib", "joblib.Parallel (batch_size='auto')", "joblib", "loky", per_item=False
        ),
        _contender("mpire", "mpire WorkerPool.map", "mpire", START, per_item=False),
        _contender("pypeln", "pypeln process.map", "pypeln", "fork (no choice)", per_item=True),
        _contender(
            "aiomultiprocess", "aiomultiprocess Pool.map", "aiomultiprocess", START, per_item=True
        ),
    )
}
"""Every contender, in the order the tables list them."""
