"""Choosing and starting the runner of one pooled stage for one run."""

from __future__ import annotations

from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Literal

from .._worker import _buffers as buffers
from .._worker._payload import pickle_payload
from .._worker._trampoline import preload
from ._backend import Backend, StagePlan
from ._base import Runner
from ._facade import ProcessPool
from ._local import ProcessRunner
from ._pool import ExecutorRunner
from ._processes import default_workers, stage_pool_options
from ._remote import RemoteRunner


async def open_runner(
    on: Literal["thread", "process"] | Executor | Backend,
    *,
    fn: Any,
    setup: Any,
    workers: int | None,
    stage: str,
    payload: bytes | None,
) -> Runner:
    """Start the workers of one pooled stage for one run.

    ``payload`` is the stage's function already pickled at build time, for
    process stages; a user's executor that is not a thread pool gets it
    pickled here, before any item is taken from the input.
    """
    key = buffers.new_key()
    if isinstance(on, Backend):
        # An engine's workers may be on other hosts: no shared memory, and
        # the payload pickled at build time goes to the cluster once.
        plan = StagePlan(stage, key, payload or pickle_payload(fn, setup, stage), workers)
        return RemoteRunner(await on.open(plan), plan)
    buffers.sweep_orphans()  # segments of an earlier parent that was killed
    if on == "process":
        count = workers or default_workers()
        pickled = payload if payload is not None else pickle_payload(fn, setup, stage)
        options = stage_pool_options(count, key=key, payload=pickled, fn=fn)
        return await ProcessRunner.start(options, key=key, payload=pickled)
    if on == "thread":
        count = workers or min(32, default_workers() + 4)
        direct = (fn, setup)
        pool = ThreadPoolExecutor(
            count,
            thread_name_prefix=f"pipework-{stage}",
            initializer=preload,
            initargs=(key, direct),
        )
        return ExecutorRunner(
            pool, owned=True, remote=False, capacity=count, key=key, payload=direct
        )
    count = workers or getattr(on, "_max_workers", None) or default_workers()
    if isinstance(on, ThreadPoolExecutor):
        return ExecutorRunner(
            on, owned=False, remote=False, capacity=count, key=key, payload=(fn, setup)
        )
    pickled = payload if payload is not None else pickle_payload(fn, setup, stage)
    return ExecutorRunner(
        on,
        owned=False,
        remote=True,
        capacity=count,
        key=key,
        payload=pickled,
        share_memory=_on_this_host(on),
    )


def _on_this_host(executor: Executor) -> bool:
    """Whether an executor's workers are processes of this host, which share its memory.

    Known local pools only: the standard library's, pipework's, and loky's
    (joblib's); any other may send work to other hosts (Dask's
    ``ClientExecutor``), where a shared-memory segment of this host is not found.
    """
    if isinstance(executor, ProcessPoolExecutor | ProcessPool):
        return True
    return type(executor).__module__.split(".")[0] in ("loky", "joblib")
