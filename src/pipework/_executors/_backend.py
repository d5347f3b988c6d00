"""The open seam for engines: what ``on=`` takes besides "thread", "process" and an Executor.

A `Backend` is an engine a user already runs, such as a Dask cluster or Ray.
For each process stage of each run, pipework opens it with a `StagePlan` and
gets `Workers` back: how many chunks they run at once, what they can do,
and a way to run one chunk. A chunk and its outcome are opaque bytes, made
and read by pipework; the engine's part is to call `work` with them on one
of its workers and hand back what it returns. So a new engine needs no
knowledge of pipework's items, ops or failures.

This module imports no engine; each backend imports its own when opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Abilities", "Backend", "StagePlan", "Workers"]


@dataclass(frozen=True, slots=True)
class StagePlan:
    """What a backend is told when it opens for one stage of one run.

    :ivar stage: the stage's label, such as ``#2 'parse' (dask map)``, for
        names and messages
    :ivar key: unique to this stage in this run; workers keep the stage's
        loaded function and ``setup`` state under it
    :ivar payload: the stage's function and ``setup``, pickled once; send it
        to the cluster once per stage, and pass it (or what the engine made of
        it) to every call of `work`
    :ivar workers: the ``workers=`` the user gave, a ceiling on the chunks
        that run at once, or ``None``
    """

    stage: str
    key: str
    payload: bytes
    workers: int | None


@dataclass(frozen=True, slots=True)
class Abilities:
    """What a backend's workers can do, so that stages ask instead of testing types.

    :ivar kills_overrunning: cancelling a running chunk stops it (Ray kills
        its worker); without it, a ``timeout=`` fails the item but the task
        runs on to its end
    :ivar reruns_lost_work: the engine itself runs a chunk again when its
        worker dies, and gives up only after several deaths; pipework then
        takes one lost chunk as final, instead of adding deaths of its own
    :ivar chunk_time: the seconds of work a chunk should hold; an engine's
        per-task cost is milliseconds, so its chunks are longer than a local
        pool's
    """

    kills_overrunning: bool = False
    reruns_lost_work: bool = True
    chunk_time: float = 0.1


@runtime_checkable
class Workers(Protocol):
    """A backend opened for one stage: it runs that stage's chunks until closed."""

    @property
    def capacity(self) -> int:
        """How many chunks run at once, read when the stage opens (the cluster's threads)."""
        ...

    @property
    def abilities(self) -> Abilities:
        """What these workers can do; see `Abilities`."""
        ...

    async def run(self, chunk: bytes) -> bytes:
        """Call ``work(plan.key, payload, chunk)`` on one worker and return its result.

        Cancelling this call cancels the task on the engine.

        :raises WorkerDiedError: if the engine lost the chunk to dying workers
        """
        ...

    async def aclose(self, *, aborted: bool) -> None:
        """Release what `Backend.open` made; an aborted run cancels what still runs."""
        ...


@runtime_checkable
class Backend(Protocol):
    """An engine that process stages can run on: ``map(fn, on=backend)``.

    Example, a third engine in a few lines (here a thread pool stands in
    for a cluster)::

        class Threads:
            name = "threads"

            async def open(self, plan: pipework.StagePlan) -> pipework.Workers:
                return ThreadWorkers(plan)   # runs pipework.work(plan.key, plan.payload, chunk)

        await Pipeline(items).map(parse, on=Threads()).run()
    """

    @property
    def name(self) -> str:
        """A short name for reports, such as ``dask``: the stage's kind reads ``dask map``."""
        ...

    async def open(self, plan: StagePlan) -> Workers:
        """Get ready to run one stage's chunks: send its payload, read the capacity."""
        ...
