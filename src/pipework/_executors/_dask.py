"""Process stages on a Dask cluster: ``on=pipework.dask(client)``.

pipework uses the cluster as it is: it starts no scheduler and no workers.
Per stage it submits one task that holds the stage's payload, copied to
every worker; every chunk is a task that depends on it, so each worker gets
the payload once, and Dask recomputes it if every worker that held it is
lost (a scattered value would be gone with them). Chunks are bytes, so Dask never walks the
items (`dask._task_spec` does walk lists, element by element).

``distributed`` is imported only when a stage opens.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import anyio

from .._errors import WorkerDiedError
from .._worker._remote import work
from ._backend import Abilities, StagePlan

__all__ = ["DaskBackend", "dask", "is_dask_client"]

# Dask cannot stop a running task (dask/distributed#4694), and it reruns a
# task whose worker died until `distributed.scheduler.allowed-failures`.
# A task's round trip is 7-14 ms (the client sends every 10 ms, the
# scheduler every 5 ms), so chunks of 0.2 s lose about 5% to it; 0.1 s
# chunks lost 10% in benchmark (l).
_ABILITIES = Abilities(kills_overrunning=False, reruns_lost_work=True, chunk_time=0.2)


def dask(client: Any) -> DaskBackend:
    """Run process stages on the Dask cluster of ``client``.

    ``client`` must be asynchronous, made in the running event loop, as
    async code makes it::

        async with distributed.Client(address, asynchronous=True) as client:
            await Pipeline(src).map(parse, on=pipework.dask(client), setup=load_model).run()

    Each stage runs as many chunks at once as the cluster has worker
    threads (or ``workers=``, if fewer), read when the stage opens; its
    ``setup`` runs once per worker process. pipework must be installed on the
    workers and on the scheduler, which unpickles the tasks.
    """
    return DaskBackend(client)


def is_dask_client(on: object) -> bool:
    """Whether ``on`` is a ``distributed.Client``, told without importing ``distributed``."""
    kind = type(on)
    return kind.__name__ == "Client" and kind.__module__.split(".")[0] == "distributed"


class DaskBackend:
    """The `Backend` of a Dask cluster; see `dask`."""

    name = "dask"

    def __init__(self, client: Any) -> None:
        """Keep ``client``; it is checked when a stage opens, in the loop it must run in."""
        if not is_dask_client(client):
            raise TypeError(f"pipework.dask() takes a distributed.Client, not {client!r}")
        self.client = client

    def __repr__(self) -> str:
        """Name the scheduler, for messages."""
        return f"pipework.dask({self.client!r})"

    async def open(self, plan: StagePlan) -> DaskWorkers:
        """Send the stage's payload to the cluster, and read how many threads it has."""
        client = self.client
        if not getattr(client, "asynchronous", False):
            raise TypeError(
                f"stage {plan.stage}: pipework.dask() needs an asynchronous client, made in the "
                "running event loop: distributed.Client(address, asynchronous=True)"
            )
        if client.status != "running":
            raise RuntimeError(
                f"stage {plan.stage}: the Dask client is {client.status}, not running; "
                "open it first: async with distributed.Client(..., asynchronous=True) as client"
            )
        nthreads: dict[str, int] = await client.nthreads()
        payload = client.submit(_hold, plan.payload, key=f"pipework-payload-{plan.key}", pure=False)
        # On every worker at once: the scheduler puts a task where its inputs
        # are, so a payload on one worker would draw the first chunks there.
        await client.replicate([payload])
        return DaskWorkers(client, plan, payload, sum(nthreads.values()))


class DaskWorkers:
    """One stage's chunks on a Dask cluster."""

    abilities = _ABILITIES

    def __init__(self, client: Any, plan: StagePlan, payload: Any, capacity: int) -> None:
        """Run ``plan``'s chunks with ``client``; ``payload`` is the future that holds it."""
        self._client = client
        self._plan = plan
        self._payload = payload
        self._capacity = capacity
        self._numbers = itertools.count()
        self._running: set[Any] = set()

    @property
    def capacity(self) -> int:
        """The cluster's worker threads when the stage opened."""
        return self._capacity

    async def run(self, chunk: bytes) -> bytes:
        """Run a chunk as one task; cancelling this cancels the task on the cluster.

        :raises WorkerDiedError: if the task killed workers until Dask gave up
        """
        from distributed import KilledWorker  # noqa: PLC0415 - only with the extra

        key = f"pipework-{self._plan.key}-{next(self._numbers)}"
        future = self._client.submit(
            work, self._plan.key, self._payload, chunk, key=key, pure=False, retries=0
        )
        self._running.add(future)
        try:
            reply: bytes = await future
        except KilledWorker as exc:
            raise WorkerDiedError(f"Dask gave up on the chunk: {exc}", exitcode=None) from exc
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):
                await self._client.cancel([future], force=True)
            raise
        finally:
            self._running.discard(future)
        return reply

    async def aclose(self, *, aborted: bool) -> None:
        """Release the payload; cancel any chunk still running."""
        with anyio.CancelScope(shield=True):
            futures = [*self._running, self._payload]
            if aborted or self._running:
                await self._client.cancel(futures, force=True)
            else:
                self._payload.release()


def _hold(payload: bytes) -> bytes:
    # A task whose result is the payload: lost with a worker, it is run again.
    return payload
