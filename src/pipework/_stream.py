"""Reading a pipeline's outputs as they are produced, with ``async for``."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio

from ._channel import Channel
from ._model._graph import Graph, output_bounds
from ._observe._progress import ProgressOption, check_progress
from ._observe._report import Report
from ._observe._snapshot import Monitor, Snapshot
from ._run import execute
from ._tasks import retrieve_outcome

T_co = TypeVar("T_co", covariant=True)


class Stream(Generic[T_co]):
    """The outputs of a running pipeline, in order, as an async iterator.

    The pipeline runs in a task of its own while you read; it waits when you
    do not, because every channel is bounded. Leaving an ``async with`` block
    stops the run and returns only when every stage has stopped and every
    worker process has exited::

        async with pipeline.stream() as outputs:
            async for out in outputs:
                if done(out):
                    break

    A bare ``async for out in pipeline.stream()`` works too. Running to the
    end, or to an error, cleans up before the loop ends; breaking out early
    cancels the run at once, and the event loop finishes the cleanup shortly
    after. Use ``async with`` when you need to know it has finished.

    A failure in any stage is raised from the ``async for``, as itself.
    """

    def __init__(self, graph: Graph, *, progress: ProgressOption = False) -> None:
        """Prepare to run ``graph``; it starts on entry or on the first read."""
        check_progress(progress)
        self._graph = graph
        self._progress = progress
        tails = graph.tails
        self._tail: Channel[Any] = Channel(
            *(output_bounds(graph.nodes[tails[0][0]].spec) if tails else (1, None))
        )
        self._task: asyncio.Task[Report] | None = None
        self._items: deque[Any] = deque()
        self._report: Report | None = None
        self._monitor = Monitor(graph)

    @property
    def report(self) -> Report | None:
        """The run's report once it has run to its end, else ``None``."""
        return self._report

    def snapshot(self) -> Snapshot:
        """Return every stage's counts, rates, busy share and channel fill, as of now.

        It reads counters the stages keep anyway, so it is cheap, and the run
        goes on meanwhile. Before the run starts every count is zero; after
        it ends, the snapshot is the run's last word (``done`` is true).
        Call it from the event loop's thread.

        Example::

            async with pipeline.stream() as outputs:
                async for out in outputs:
                    snap = outputs.snapshot()
                    print(f"{snap['parse'].utilisation:.0%} busy, eta {snap.eta_seconds}")
        """
        return self._monitor.snapshot()

    def _start(self) -> asyncio.Task[Report]:
        if self._task is None:
            task = asyncio.get_running_loop().create_task(
                execute(self._graph, self._tail, monitor=self._monitor, progress=self._progress)
            )
            # If the reader walks away, its failure is of no one's concern;
            # fetching it here keeps asyncio from logging it as lost.
            task.add_done_callback(retrieve_outcome)
            # An abandoned stream cancels its run. The task must not refer back
            # to this object, or the stream would never be collected.
            weakref.finalize(self, task.cancel)
            self._task = task
        return self._task

    async def __aenter__(self) -> Stream[T_co]:
        """Start the run."""
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the run and wait until it has cleaned up."""
        await self.aclose()

    def __aiter__(self) -> Stream[T_co]:
        """Return the stream itself."""
        return self

    async def __anext__(self) -> T_co:
        """Return the next output, waiting for it if need be."""
        if not self._items:
            packet = await self._next_packet()
            if packet is None:
                raise StopAsyncIteration
            self._items.extend(packet)
        return self._items.popleft()  # type: ignore[no-any-return]

    async def _next_packet(self) -> list[Any] | None:
        """Return the next run of outputs as they arrived, or ``None`` at the end.

        For readers inside pipework that want whole runs, such as `pipework.map`,
        which would otherwise pay for one ``__anext__`` per item.
        """
        if self._items:
            items, self._items = list(self._items), deque()
            return items
        task = self._start()
        packet = await self._tail.take()
        if packet is None:
            self._report = await task
            return None
        return packet.items

    async def aclose(self) -> None:
        """Stop the run, if it is still going, and wait until it has cleaned up.

        A failure of the run is raised by the ``async for`` that reads it, not
        here: a reader that stopped early has said it wants nothing more.
        """
        task = self._task
        if task is None:
            return
        task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([task])
