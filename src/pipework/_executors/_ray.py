"""Process stages on a Ray cluster: ``on=pipework.ray()``.

pipework uses the cluster as it is: it starts no cluster, and connects to
none; the user's ``ray.init(...)`` does that. Per stage the payload is put in
Ray's object store once, and every chunk is a task of `work` that takes it,
so Ray hands each worker the same object instead of one copy per chunk.

Ray can stop a running task: ``ray.cancel(ref, force=True)`` kills the
worker process that runs it. So a ``timeout=`` stops its item, and a
cancelled run leaves nothing running on the cluster.

A chunk's task is given ``max_retries=0``: Ray does not rerun a chunk whose
worker died; pipework does, splitting it until one item is left and failing
that item after `pipework._stages._pooled.MAX_DEATHS` deaths, as on its own
pools. With Ray's default of 3 retries, every loss pipework sees would have
cost four deaths: an item that kills its worker, in a chunk of 16, was
found after 20 deaths instead of 7.

A ``timeout=`` counts from when the chunk is sent, so it includes Ray's
scheduling and, after a worker was killed, the start of a new one (under a
second on one machine): give it more than that.

``ray`` is imported only when a stage opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from types import ModuleType
from typing import Any

import anyio

from .._errors import WorkerDiedError
from .._worker._remote import work
from ._backend import Abilities, StagePlan

__all__ = ["RayBackend", "RayWorkers", "ray"]

# Ray kills a cancelled task's worker (force=True); it does not rerun a lost
# chunk, since its tasks get max_retries=0: pipework counts the deaths.
_ABILITIES = Abilities(kills_overrunning=True, reruns_lost_work=False, chunk_time=0.1)
_MAX_RETRIES = 0

# The task options that pipework sets itself, for what it needs of a chunk.
_OWN_OPTIONS = frozenset({"num_cpus", "max_retries", "retry_exceptions", "num_returns"})

# A chunk or payload of this many bytes is handed to Ray off the event loop:
# Ray copies it into its object store, which takes milliseconds.
_LARGE = 1 << 20


def ray(*, num_cpus: float = 1, **options: Any) -> RayBackend:
    """Run process stages on the Ray cluster this process is connected to.

    Ray must be initialised first; pipework starts no cluster::

        ray.init()  # or ray.init(address="ray://head:10001")
        await Pipeline(src).map(parse, on=pipework.ray(), setup=load_model).run()

    Each chunk is a task that asks for ``num_cpus`` CPUs, so a stage runs as
    many chunks at once as the cluster has CPUs divided by ``num_cpus`` (or
    by its scarcest resource that the options ask for, such as GPUs), or
    ``workers=`` if fewer. It is read when the stage opens: a cluster that
    scales up later is not used more, and one with nothing yet runs one.
    Ray reuses its worker processes; a stage's ``setup`` runs once per worker
    process that runs its chunks, and again in a worker that replaces a dead
    one. pipework must be installed where the workers run.

    ``options`` go to the remote function's ``.options()``, for instance
    ``num_gpus=1``, ``memory=2 * 2**30`` (bytes), ``resources={"model": 1}``,
    ``runtime_env={...}`` or ``scheduling_strategy="SPREAD"``; see Ray's
    ``ray.remote``. ``max_retries``, ``retry_exceptions`` and ``num_returns``
    are pipework's to set.
    """
    return RayBackend(num_cpus=num_cpus, **options)


class RayBackend:
    """The `Backend` of a Ray cluster; see `ray`."""

    name = "ray"

    def __init__(self, *, num_cpus: float = 1, **options: Any) -> None:
        """Keep the task options; the cluster is looked at when a stage opens."""
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, int | float) or num_cpus < 0:
            raise ValueError(
                f"pipework.ray(): num_cpus must be a number of 0 or more, not {num_cpus!r}"
            )
        if taken := sorted(_OWN_OPTIONS & options.keys()):
            raise TypeError(f"pipework.ray(): pipework sets {', '.join(taken)} itself")
        self.num_cpus = num_cpus
        self.options = options

    def __repr__(self) -> str:
        """Show the call that made it, for messages."""
        options = "".join(f", {name}={value!r}" for name, value in self.options.items())
        return f"pipework.ray(num_cpus={self.num_cpus!r}{options})"

    def _needs(self) -> dict[str, float]:
        """Say what one task asks of the cluster, by Ray's names for its resources."""
        needs = {"CPU": self.num_cpus, "GPU": self.options.get("num_gpus") or 0}
        needs["memory"] = self.options.get("memory") or 0
        needs.update(self.options.get("resources") or {})
        return {name: float(amount) for name, amount in needs.items() if amount}

    async def open(self, plan: StagePlan) -> RayWorkers:
        """Put the stage's payload in the object store, and read what the cluster has."""
        ray = _import_ray(plan.stage)
        if not ray.is_initialized():
            raise RuntimeError(
                f"stage {plan.stage}: Ray is not initialised in this process; call ray.init() "
                "(or ray.init(address=...) for a running cluster) before the run; "
                "pipework starts no cluster"
            )
        capacity = _tasks_at_once(ray.cluster_resources(), self._needs())
        remote = ray.remote(work).options(
            num_cpus=self.num_cpus,
            max_retries=_MAX_RETRIES,
            retry_exceptions=False,
            **{"name": f"pipework {plan.stage}", **self.options},
        )
        if len(plan.payload) > _LARGE:
            payload = await anyio.to_thread.run_sync(ray.put, plan.payload)
        else:
            payload = ray.put(plan.payload)
        return RayWorkers(ray, remote, plan, payload, capacity)


class RayWorkers:
    """One stage's chunks on a Ray cluster."""

    abilities = _ABILITIES

    def __init__(
        self, ray: ModuleType, remote: Any, plan: StagePlan, payload: Any, capacity: int
    ) -> None:
        """Run ``plan``'s chunks as tasks of ``remote``; ``payload`` is the ref that holds it."""
        self._ray = ray
        self._remote = remote
        self._plan = plan
        self._payload: Any = payload
        self._capacity = capacity
        self._running: set[Any] = set()

    @property
    def capacity(self) -> int:
        """How many tasks the cluster had room for when the stage opened."""
        return self._capacity

    async def run(self, chunk: bytes) -> bytes:
        """Run a chunk as one task; cancelling this kills the task's worker.

        :raises WorkerDiedError: if the task's worker, or its node, died
        """
        if self._payload is None:
            raise RuntimeError(f"stage {self._plan.stage}: its Ray workers are closed")
        exceptions = self._ray.exceptions

        def submit() -> Any:
            return self._remote.remote(self._plan.key, self._payload, chunk)

        # Submitted whole or not at all: a task whose ref were lost could not be cancelled.
        with anyio.CancelScope(shield=True):
            ref = await anyio.to_thread.run_sync(submit) if len(chunk) > _LARGE else submit()
        self._running.add(ref)
        try:
            # A concurrent future, completed from Ray's thread: any event loop can wait on it.
            reply: bytes = await asyncio.wrap_future(ref.future())
        except (
            exceptions.WorkerCrashedError,
            exceptions.NodeDiedError,
            exceptions.OutOfMemoryError,
        ) as exc:
            raise WorkerDiedError(f"the chunk's Ray worker died: {exc}", exitcode=None) from exc
        except asyncio.CancelledError:
            self._cancel(ref)
            raise
        finally:
            self._running.discard(ref)
        return reply

    async def aclose(self, *, aborted: bool) -> None:
        """Kill any chunk still running, and let go of the payload."""
        del aborted  # a chunk still running at the close is cancelled either way
        for ref in self._running:
            self._cancel(ref)
        self._running.clear()
        self._payload = None  # Ray frees the object once no task holds it

    def _cancel(self, ref: Any) -> None:
        """Kill the task's worker; a task that is done, or a Ray that is gone, is let be."""
        with contextlib.suppress(Exception):  # the cancellation goes on either way
            self._ray.cancel(ref, force=True)


def _tasks_at_once(cluster: dict[str, float], needs: dict[str, float]) -> int:
    """How many tasks of ``needs`` the cluster can run at once: by its scarcest resource.

    A task that asks for nothing is counted as one of a CPU.
    """
    needs = needs or {"CPU": 1.0}
    return max(1, min(int(cluster.get(name, 0) // amount) for name, amount in needs.items()))


def _import_ray(stage: str) -> ModuleType:
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ImportError(
            f"stage {stage}: pipework.ray() needs Ray: pip install ray, then ray.init()"
        ) from exc
