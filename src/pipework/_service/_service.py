"""Service mode: a pipeline opened once and fed, item by item, for as long as an app lives.

Each submitted item gets a future. The service numbers items as it admits
them; the source hands them to the pipeline in that order, so an item's
source index is its number, and every stage carries it along (`Packet.index`).
The service resolves futures by index, which is why results find their
callers whatever the stages reorder. A filter or flat_map, and an item that
fails, are reported by the run's `ItemObserver` (`Ledger`), so the service
knows when an item has nothing more to come.

``max_in_flight`` bounds the items admitted and not yet finished, wherever
they are: waiting for the source, in a channel, or in a stage.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

import anyio

from .._channel import Channel
from .._model._graph import Graph, Outlet, Step, one_each, output_bounds
from .._model._specs import BatchSpec, MapSpec, SourceSpec, source_spec
from .._observe._progress import ProgressOption, check_progress
from .._observe._report import Report
from .._observe._snapshot import Monitor, Snapshot
from .._run import execute
from .._tasks import FailFastGroup, retrieve_outcome
from ._ledger import Gate, Intake, Ledger, ServiceBusyError, ServiceClosedError

R_co = TypeVar("R_co", covariant=True)

DEFAULT_MAX_IN_FLIGHT = 256
"""Items a service holds at once by default, from admission to result.

Enough for a few process workers to get full chunks of cheap items while
more arrive; past that, queueing only adds latency, and a caller is better
told at once that the service is busy. Raise it for cheap items at high
rates, lower it for slow ones.
"""


class _Requests:
    """The source of a `Pipeline.service` pipeline: it is fed by ``submit``, not read."""

    def __aiter__(self) -> AsyncIterator[Any]:
        raise TypeError(
            "a Pipeline.service() pipeline is fed by submit(); open it with "
            "`async with pipeline.open() as service:` rather than run() or stream()"
        )


def service_outlet(*, buffer: int | None, name: str) -> Outlet:
    """Return the start of a pipeline whose items will come from a service's ``submit``."""
    return Outlet(Step.make(source_spec(_Requests(), name=name, buffer=buffer)))


class Service(Generic[R_co]):
    """A pipeline that runs for as long as the ``async with`` block, fed one item at a time.

    Open it with `Pipeline.open`. Each item submitted gets its own result,
    whatever order the stages finish items in. ``max_in_flight`` items at
    most are in the service at once: ``submit`` waits for room, and
    ``submit_nowait`` raises `ServiceBusyError` instead.

    A failed item fails only its own result, with its own exception, whatever
    its stage's ``errors=``; the service goes on. A filter that drops an item
    fails its result with `FilteredOutError`. Opened with ``results="list"``
    (which a pipeline with a flat_map needs), each result is instead the list
    of that item's outputs, empty for an item a filter dropped.

    Leaving the block normally takes no more items, lets every item in flight
    finish, and then stops the workers. Leaving it by an exception or a
    cancellation stops at once and cancels the results still pending. If the
    service itself fails (a ``setup`` that raises, a dead-letter handler that
    raises), the pending results fail with `ServiceClosedError` and the
    failure is raised from the ``async with``.

    Example::

        pipeline = Pipeline.service().map(predict, on="process", setup=load_model)
        async with pipeline.open(max_in_flight=64) as service:
            label = await service.submit(features)
        print(service.report)
    """

    def __init__(
        self,
        outlet: Outlet,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        results: Literal["one", "list"] = "one",
        progress: ProgressOption = False,
    ) -> None:
        """Prepare to serve the pipeline that ends at ``outlet``; use `Pipeline.open`."""
        _check(outlet, max_in_flight, results)
        check_progress(progress)
        self._outlet = outlet
        self._progress = progress
        self._gate = Gate(max_in_flight)
        self._ledger = Ledger(self._gate, collect=results == "list")
        self._intake = Intake()
        self._next_index = 0
        self._state: Literal["new", "open", "closing", "closed"] = "new"
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._report: Report | None = None
        self._monitor: Monitor | None = None

    @property
    def max_in_flight(self) -> int:
        """The most items the service holds at once."""
        return self._gate.limit

    @property
    def in_flight(self) -> int:
        """Items submitted and not yet finished (their places in ``max_in_flight``)."""
        return self._gate.held

    @property
    def closed(self) -> bool:
        """Whether the service has stopped taking items: closing, closed, or failed."""
        return self._state != "open"

    @property
    def report(self) -> Report | None:
        """The run's report once the service has closed after draining, else ``None``.

        Items that failed are listed in ``report.failures``, whatever their
        stage's ``errors=``, since each failed only its own result.
        """
        return self._report

    def snapshot(self) -> Snapshot:
        """Return every stage's counts, rates, busy share and channel fill, as of now.

        It reads counters the stages keep anyway, so it is cheap, and the
        service goes on meanwhile: a health check or a metrics page may call
        it as often as it likes. Call it from the event loop's thread.

        Example::

            async with pipeline.open() as service:
                ...
                snap = service.snapshot()
                for stage in snap.stages:
                    print(stage.name, stage.items_out, stage.utilisation, stage.input_fill)

        :raises ServiceClosedError: if the service has not been opened yet
        """
        if self._monitor is None:
            raise ServiceClosedError(
                "the service is not open: take snapshots inside `async with pipeline.open()`"
            )
        return self._monitor.snapshot()

    async def submit(self, item: Any) -> R_co:
        """Submit ``item`` and return its result, waiting first for room if the service is full.

        If the caller stops waiting (it is cancelled, or times out), the item
        still runs to its end and keeps its place in ``max_in_flight`` until
        then; only its result is discarded.

        :raises ServiceClosedError: if the service is not open, or closes
            or fails before the item finishes
        :raises FilteredOutError: if a filter dropped the item
        :raises Exception: the item's own failure, as itself, with a note
            naming the stage and the item
        """
        self._check_open()
        await self._gate.enter()
        if self._state != "open":
            self._gate.leave()
            self._check_open()
        return await self._admit(item)  # type: ignore[no-any-return]

    def submit_nowait(self, item: Any) -> asyncio.Future[R_co]:
        """Submit ``item`` if there is room now, and return the future of its result.

        Example::

            try:
                result = await service.submit_nowait(item)
            except pipework.ServiceBusyError:
                return web.Response(status=503)

        :raises ServiceBusyError: at once, if ``max_in_flight`` items are in
            flight (or callers of ``submit`` are waiting for room)
        :raises ServiceClosedError: if the service is not open
        """
        self._check_open()
        if not self._gate.try_enter():
            raise ServiceBusyError(
                f"the service is busy: {self.max_in_flight} items are in flight (max_in_flight)"
            )
        return self._admit(item)

    def _admit(self, item: Any) -> asyncio.Future[Any]:
        index, self._next_index = self._next_index, self._next_index + 1
        future = self._ledger.add(index)
        self._intake.put(item)  # the source numbers it `index`: both count in this order
        return future

    def _check_open(self) -> None:
        if self._state == "open":
            return
        if self._failure is not None:
            raise ServiceClosedError(
                f"the service stopped because it failed: {self._failure!r}"
            ) from self._failure
        if self._state == "new":
            raise ServiceClosedError(
                "the service is not open: submit inside `async with pipeline.open() as service:`"
            )
        raise ServiceClosedError(f"the service is {self._state}: it takes no more items")

    async def __aenter__(self) -> Service[R_co]:
        """Start the pipeline's stages and worker pools, and start taking items."""
        if self._state != "new":
            raise RuntimeError("a Service is opened once; call pipeline.open() for another")
        (source,) = self._outlet.sources  # checked by _check
        assert isinstance(source.spec, SourceSpec)  # noqa: S101
        fed = replace(source.spec, source=self._intake)
        graph = Graph.of([self._outlet], replace={source: fed})
        tail: Channel[Any] = Channel(*output_bounds(self._outlet.step.spec))
        self._monitor = Monitor(graph)
        self._state = "open"
        self._task = asyncio.get_running_loop().create_task(self._serve(graph, tail, self._monitor))
        self._task.add_done_callback(retrieve_outcome)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Drain and stop, or stop at once if the block raised or was cancelled; see the class."""
        task = self._task
        assert task is not None  # noqa: S101 - __aenter__ made it
        if exc_type is not None:
            await self._abort(task)
            return
        self._close("closing")
        self._intake.close()
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            await self._abort(task)
            raise
        self._state = "closed"
        if self._failure is not None:
            raise self._failure
        # Every item reached the end or was reported on its way; one that did
        # not would be a bug, and its caller must not wait forever.
        self._ledger.end(RuntimeError("pipework: the service lost track of this item"))

    async def _serve(self, graph: Graph, tail: Channel[Any], monitor: Monitor) -> None:
        try:
            async with FailFastGroup() as group:
                group.spawn(self._run, graph, tail, monitor)
                group.spawn(self._read, tail)
        except Exception as exc:
            self._failure = exc
            self._close("closed")
            error = ServiceClosedError(f"the service stopped because it failed: {exc!r}")
            error.__cause__ = exc
            self._ledger.end(error)
            raise

    async def _run(self, graph: Graph, tail: Channel[Any], monitor: Monitor) -> None:
        self._report = await execute(
            graph, tail, observer=self._ledger, monitor=monitor, progress=self._progress
        )

    async def _read(self, tail: Channel[Any]) -> None:
        while (packet := await tail.take()) is not None:
            self._ledger.arrived(packet)

    def _close(self, state: Literal["closing", "closed"]) -> None:
        self._state = state
        self._gate.close(ServiceClosedError(f"the service is {state}: it takes no more items"))

    async def _abort(self, task: asyncio.Task[None]) -> None:
        self._close("closed")
        task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([task])
        self._ledger.end(None)


def _check(outlet: Outlet, max_in_flight: object, results: object) -> None:
    """Refuse, at ``open()``, what a service cannot serve."""
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int):
        raise TypeError(f"open(): max_in_flight= must be a whole number, not {max_in_flight!r}")
    if max_in_flight < 1:
        raise ValueError(f"open(): max_in_flight= must be at least 1, not {max_in_flight}")
    if results not in ("one", "list"):
        raise ValueError(f'open(): results= must be "one" or "list", not {results!r}')
    sources = outlet.sources
    if len(sources) != 1 or not all(
        isinstance(s.spec, SourceSpec) and isinstance(s.spec.source, _Requests) for s in sources
    ):
        raise TypeError(
            "open() serves a pipeline started with Pipeline.service(), which submit() feeds; "
            "this one reads a source of its own: use run() or stream()"
        )
    graph = Graph.of([outlet])
    for node in graph.nodes:
        if isinstance(node.spec, BatchSpec):
            raise TypeError(
                f"open(): stage {node.label} groups the items of several callers into one "
                "list, so their results could not be told apart; in a service, use "
                "map_batches(fn, max_size=, max_wait=), which packets and keeps each "
                "item's result apart"
            )
    spreading = next(
        (n for n in graph.nodes if isinstance(n.spec, MapSpec) and n.spec.op == "flat_map"), None
    )
    if spreading is not None and results == "one":
        raise ValueError(
            f"open(): stage {spreading.label} is a flat_map, so an item may have any number of "
            'outputs; open it with results="list" to get each item\'s outputs as a list'
        )
    if not one_each(outlet) and results == "one":
        raise ValueError(
            "open(): the pipeline merges branches of its one source, so an item comes out "
            'once per branch; open it with results="list" to get each item\'s outputs as a list'
        )
