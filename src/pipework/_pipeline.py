"""The typed, immutable pipeline builder."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any, Generic, Literal, TypeVar, Unpack, overload

from ._model._graph import Graph, Outlet, Step, position
from ._model._options import (
    AnyOptions,
    AsyncBatchOptions,
    AsyncOptions,
    WorkerBatchOptions,
    WorkerOptions,
)
from ._model._specs import (
    batch_spec,
    map_spec,
    partition_spec,
    sink_spec,
    source_spec,
)
from ._observe._progress import ProgressOption
from ._observe._report import Report
from ._run import execute
from ._sealed import SealedPipeline
from ._service import DEFAULT_MAX_IN_FLIGHT, Service, service_outlet
from ._shutdown import StopSignal
from ._stream import Stream
from ._worker._ops import Op

T_co = TypeVar("T_co", covariant=True)
U = TypeVar("U")
S = TypeVar("S")

# Every option a stage method takes: its TypedDicts' keys, and the two taken by name.
_KNOWN = frozenset(
    {*AnyOptions.__optional_keys__, *WorkerBatchOptions.__optional_keys__, "setup", "max_size"}
)


class Pipeline(Generic[T_co]):
    """A pipeline of stages joined by bounded channels. Building it runs nothing.

    Each method returns a new pipeline with one more stage, typed by what the
    stage produces, so ``Pipeline(range(3)).map(str)`` is a ``Pipeline[str]``.

    Where a stage's function runs follows from the function and one word:

    - an ``async def`` function runs on the event loop, ``concurrency`` calls at once;
    - ``on="thread"`` runs a blocking function on ``workers`` threads;
    - ``on="process"`` runs a CPU-heavy function on ``workers`` processes
      (the core count by default), in chunks, pickled with cloudpickle so
      lambdas and closures work;
    - ``on=executor`` runs it on any ``concurrent.futures.Executor`` you own;
    - with none of these, a plain function runs inline on the event loop,
      which suits cheap transforms such as ``str``.

    ``setup=`` is called once per worker and its result is passed as the
    function's first argument, ``fn(state, item)``: load a model once, not
    once per item.

    Example::

        async def fetch(url: str) -> bytes: ...
        def parse(page: bytes) -> Record: ...

        report = await (
            Pipeline(urls)
            .map(fetch, concurrency=32)
            .map(parse, on="process")
            .sink(save)
            .run()
        )

    :param source: an iterable, an async iterable or an async generator
    :param buffer: how many items the channel after the source holds; by default,
        up to 4,096 that fit in about 1 MiB by their measured size (at least one)
    :param name: the source's name in reports and errors
    """

    __slots__ = ("_outlet",)

    def __init__(
        self,
        source: Iterable[T_co] | AsyncIterable[T_co],
        *,
        buffer: int | None = None,
        name: str = "source",
    ) -> None:
        """Start a pipeline that reads ``source``; see the class docstring."""
        self._outlet = Outlet(Step.make(source_spec(source, name=name, buffer=buffer)))

    @classmethod
    def _of(cls, outlet: Outlet) -> Pipeline[Any]:
        pipeline: Pipeline[Any] = object.__new__(cls)
        pipeline._outlet = outlet  # the one other way to make a pipeline
        return pipeline

    @property
    def _graph(self) -> Graph:
        """The stages a run of this pipeline runs, numbered."""
        return Graph.of([self._outlet])

    def __repr__(self) -> str:
        """List the stages, upstream first."""
        return "Pipeline(" + " -> ".join(node.label for node in self._graph.nodes) + ")"

    # map ---------------------------------------------------------------

    @overload
    def map(
        self,
        fn: Callable[[T_co], Awaitable[U]],
        **options: Unpack[AsyncOptions],
    ) -> Pipeline[U]: ...
    @overload
    def map(
        self,
        fn: Callable[[S, T_co], Awaitable[U]],
        *,
        setup: Callable[[], S],
        **options: Unpack[AsyncOptions],
    ) -> Pipeline[U]: ...
    @overload
    def map(
        self,
        fn: Callable[[T_co], U],
        **options: Unpack[WorkerOptions],
    ) -> Pipeline[U]: ...
    @overload
    def map(
        self,
        fn: Callable[[S, T_co], U],
        *,
        setup: Callable[[], S],
        **options: Unpack[WorkerOptions],
    ) -> Pipeline[U]: ...
    def map(self, fn: Callable[..., Any], **options: Any) -> Pipeline[Any]:
        """Apply ``fn`` to every item.

        Example::

            Pipeline(paths).map(load_image, on="thread").map(embed, on="process", setup=load_model)

        With failures settled per item::

            Pipeline(urls).map(fetch, retry=Retry(5, on=(OSError,)), errors="skip", timeout=10)

        :param on: ``"thread"``, ``"process"`` or an executor; leave it out for
            an async function or a cheap inline one
        :param workers: threads or processes (thread and process stages)
        :param concurrency: calls in flight (async stages; 16 by default)
        :param setup: called once per worker; its result is passed first to ``fn``
        :param chunksize: items per call to a worker; adaptive by default
        :param chunk_time: for adaptive chunks, the seconds of work each chunk
            aims at (20 ms by default): lower favours latency and balance,
            higher the cost per item
        :param ordered: keep input order (the default), or emit results as they finish
        :param retry: try a failed item again: a number of attempts, or a `Retry`
            with backoff and the exceptions worth retrying
        :param errors: what to do with an item that failed for good: ``"raise"``
            (the default) stops the run; ``"skip"`` drops the item and records it
            in the report; a callable is a dead-letter handler, given each
            `Failure` (sync or async), and the item is dropped
        :param timeout: seconds each item may take. A process stage kills the
            worker of an item that overruns, and replaces it; a thread cannot be
            killed, so it is left to finish while the item fails. The item fails
            with `ItemTimeoutError`, which ``retry`` and ``errors`` then settle
        :param max_in_flight: the most items the stage holds at once: taken from
            its input and not yet put to its output, whatever is running or
            waiting to be emitted in order. By default a thread or process stage
            holds up to 4 chunks per worker (a chunk: at most 4,096 items and
            about 4 MB), an async stage ``2 * concurrency`` items, and an inline
            stage one batch of at most its ``buffer``. A smaller figure lowers
            how far the stage reads ahead of a slow consumer, at some cost in
            speed for cheap items
        :param buffer: how many items the channel after this stage holds; by
            default, up to 4,096 that fit in about 1 MiB by their measured size
        :param name: the stage's name in reports and errors
        :raises TypeError, ValueError: at once, for settings that cannot work
        :raises UnpicklableError: at once, if a process stage's function cannot be pickled
        """
        return self._then("map", fn, options)

    # filter ------------------------------------------------------------

    @overload
    def filter(
        self,
        predicate: Callable[[T_co], object],
        **options: Unpack[AnyOptions],
    ) -> Pipeline[T_co]: ...
    @overload
    def filter(
        self,
        predicate: Callable[[S, T_co], object],
        *,
        setup: Callable[[], S],
        **options: Unpack[AnyOptions],
    ) -> Pipeline[T_co]: ...
    def filter(self, predicate: Callable[..., Any], **options: Any) -> Pipeline[Any]:
        """Keep the items for which ``predicate`` is true; it may be async.

        It takes the same options as `map`. A process stage sends back only a
        flag per item, not the item.

        Example::

            Pipeline(rows).filter(lambda row: row["score"] > 0.5)
        """
        return self._then("filter", predicate, options)

    # flat_map ----------------------------------------------------------

    @overload
    def flat_map(
        self,
        fn: Callable[[T_co], Awaitable[Iterable[U]]] | Callable[[T_co], AsyncIterable[U]],
        **options: Unpack[AsyncOptions],
    ) -> Pipeline[U]: ...
    @overload
    def flat_map(
        self,
        fn: Callable[[T_co], Iterable[U]],
        **options: Unpack[WorkerOptions],
    ) -> Pipeline[U]: ...
    @overload
    def flat_map(
        self,
        fn: Callable[[S, T_co], Iterable[U]],
        *,
        setup: Callable[[], S],
        **options: Unpack[WorkerOptions],
    ) -> Pipeline[U]: ...
    def flat_map(self, fn: Callable[..., Any], **options: Any) -> Pipeline[Any]:
        """Replace each item with the items of the iterable ``fn`` returns.

        It takes the same options as `map`. In a process stage the iterable is
        made a list in the worker, because a generator cannot travel. An async
        generator function runs on the event loop, as an async function does,
        and the items it yields for each input are its outputs.

        Example::

            Pipeline(documents).flat_map(split_sentences)

            async def pages(query: str) -> AsyncIterator[Page]:
                async for page in search(query):  # a paginated API
                    yield page

            Pipeline(queries).flat_map(pages, concurrency=8)
        """
        return self._then("flat_map", fn, options)

    # map_batches ------------------------------------------------------

    @overload
    def map_batches(
        self,
        fn: Callable[[list[T_co]], Awaitable[Iterable[U]]],
        *,
        max_size: int,
        **options: Unpack[AsyncBatchOptions],
    ) -> Pipeline[U]: ...
    @overload
    def map_batches(
        self,
        fn: Callable[[list[T_co]], Iterable[U]],
        *,
        max_size: int,
        **options: Unpack[WorkerBatchOptions],
    ) -> Pipeline[U]: ...
    @overload
    def map_batches(
        self,
        fn: Callable[[S, list[T_co]], Iterable[U]],
        *,
        setup: Callable[[], S],
        max_size: int,
        **options: Unpack[WorkerBatchOptions],
    ) -> Pipeline[U]: ...
    def map_batches(self, fn: Callable[..., Any], **options: Any) -> Pipeline[Any]:
        """Apply ``fn`` to batches of items; it returns one result per item, which flow on singly.

        This is dynamic batching, for models that are much faster per batch: a
        batch goes to ``fn`` when it holds ``max_size`` items, or when its
        oldest item has waited ``max_wait`` seconds, whichever comes first; a
        first item is never waited for. While every worker is busy, the next
        batch keeps filling up to ``max_size``, so batches grow with the load.
        Each result keeps its item's place in the stream, so order, reports
        and errors still speak of single items.

        ``fn`` must return exactly one result per item, in order; any other
        count is a `ValueError` naming the stage. A batch fails or succeeds as
        a whole: ``retry=`` tries the whole batch again, and a failure for good
        fails each of its items. ``timeout=`` limits each call.

        Example::

            def predict(model, images: list[Image]) -> list[int]:
                return model.predict(np.stack(images)).tolist()

            Pipeline(images).map_batches(
                predict, max_size=64, max_wait=0.005, on="process", setup=load_model
            )

        It takes the options of `map` but ``chunksize`` and ``chunk_time``: the
        batch is the chunk.
        """
        return self._then("map_batches", fn, options)

    # batch and sink ----------------------------------------------------

    def batch(
        self,
        size: int,
        *,
        max_wait: float | None = None,
        buffer: int | None = None,
        name: str | None = None,
    ) -> Pipeline[list[T_co]]:
        """Group items into lists of ``size``, or fewer once the first has waited ``max_wait`` s.

        The last list may be short. ``max_wait=0`` groups whatever has
        arrived, without waiting for more: the batching of a server under load.

        Example::

            Pipeline(requests).batch(32, max_wait=0.01).map(predict, on="process")
        """
        spec = batch_spec(
            size, index=position(self._outlet), max_wait=max_wait, buffer=buffer, name=name
        )
        return Pipeline._of(self._outlet.then(spec))

    def sink(self, fn: Callable[[T_co], object], *, name: str | None = None) -> SealedPipeline:
        """End the pipeline by calling ``fn`` on each item in order; it may be async.

        What it returns can only be run: no stage can follow a sink. The
        pipeline it ends can still start other branches.

        Example::

            await Pipeline(rows).map(clean).sink(database.insert).run()
        """
        return SealedPipeline(self._outlet.then(sink_spec(fn, name=name)))

    def partition(
        self,
        n: int,
        key: Callable[[T_co], object],
        *,
        buffer: int | None = None,
        name: str | None = None,
    ) -> tuple[Pipeline[T_co], ...]:
        """Split the stream into ``n`` pipelines by key: equal keys go to the same one, in order.

        An int key ``k`` goes to part ``k % n``, so a ``bool`` key sends
        False to part 0 and True to part 1; any other key goes by its hash.
        The key runs on the event loop for every item, so keep it cheap. The
        parts run together in one run (of a `pipework.merge` of them, or of
        `pipework.run_all`); a part that the run does not read is drained.

        Example::

            invalid, valid = Pipeline(rows).partition(2, key=is_valid)
            await pipework.run_all(valid.sink(save), invalid.sink(quarantine))

            shards = Pipeline(events).partition(4, key=lambda e: e.user_id)
            counted = pipework.merge(*(shard.map(Counter()) for shard in shards))
        """
        spec = partition_spec(n, key, buffer=buffer, name=name)
        step = Step.make(spec, (self._outlet,))
        return tuple(Pipeline._of(Outlet(step, port)) for port in range(spec.parts))

    # running -----------------------------------------------------------

    async def run(
        self, *, stop: StopSignal | None = None, progress: ProgressOption = False
    ) -> Report:
        """Run the pipeline to the end of its source, and return its report.

        Outputs of a pipeline with no sink are counted and dropped. The first
        failure in any stage cancels the others; once every stage has stopped
        and every worker process has exited, it is raised as itself, with a
        note naming the stage and the item's index.

        Example::

            report = await Pipeline(range(1000)).map(work, on="process").run()
            print(report)

        :param stop: an `asyncio.Event` (or `anyio.Event`) for a graceful stop:
            once it is set the source takes no more input, the items in flight
            finish, and the report is returned. `stop_on_signals` sets one on
            SIGINT or SIGTERM. To stop at once instead, cancel the run.
        :param progress: ``True`` to show progress on stderr while it runs: on
            a terminal, one line per stage redrawn in place (with rich, the
            ``pipework[progress]`` extra), else plain lines every 10 s; or a
            callable that receives a `Snapshot` every second and once at the
            end (``snapshot.done``), for a display of your own
        """
        return await execute(self._graph, stop=stop, progress=progress)

    @classmethod
    def service(
        cls,
        item_type: type[U] | None = None,  # noqa: ARG003 - it types the pipeline for mypy
        *,
        buffer: int | None = None,
        name: str = "requests",
    ) -> Pipeline[U]:
        """Start a pipeline fed by a service's ``submit``, for `open`; ``item_type`` types it.

        Example::

            pipeline = Pipeline.service(Features).map(predict, on="process", setup=load_model)
            async with pipeline.open() as service:
                label = await service.submit(features)
        """
        return Pipeline._of(service_outlet(buffer=buffer, name=name))

    @overload
    def open(
        self,
        *,
        max_in_flight: int = ...,
        results: Literal["one"] = ...,
        progress: ProgressOption = ...,
    ) -> Service[T_co]: ...
    @overload
    def open(
        self, *, max_in_flight: int = ..., results: Literal["list"], progress: ProgressOption = ...
    ) -> Service[list[T_co]]: ...
    def open(
        self,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        results: Literal["one", "list"] = "one",
        progress: ProgressOption = False,
    ) -> Service[T_co] | Service[list[T_co]]:
        """Return a `Service` that runs this pipeline while its ``async with`` block lasts.

        The pipeline must start with `Pipeline.service`; it cannot hold a
        ``batch()`` or a ``sink()``, which would lose track of whose item is
        whose. See `Service` for results, failures and closing.

        Example::

            sentences = Pipeline.service(str).flat_map(split).map(embed, on="process")
            async with sentences.open(results="list") as service:
                vectors = await service.submit(document)  # one per sentence

        :param max_in_flight: the most items in the service at once, from
            ``submit`` to result; past it, ``submit`` waits and
            ``submit_nowait`` raises `ServiceBusyError`
        :param results: ``"one"``: each item's result is its one output (a
            filter that drops it raises `FilteredOutError`); ``"list"``: the
            list of its outputs, possibly empty, which a pipeline with a
            ``flat_map`` needs
        :param progress: as for `Pipeline.run`, for as long as the service is open; a
            callable suits a service best (a log line, a metrics page), and
            `Service.snapshot` reads the same figures on demand
        :raises TypeError, ValueError: at once, for a pipeline or a setting a
            service cannot run
        """
        return Service(
            self._outlet, max_in_flight=max_in_flight, results=results, progress=progress
        )

    def stream(self, *, progress: ProgressOption = False) -> Stream[T_co]:
        """Return the outputs as an async iterator that runs the pipeline as it is read.

        Example::

            async with Pipeline(urls).map(fetch).stream(progress=True) as pages:
                async for page in pages:
                    print(len(page))

        :param progress: as for `Pipeline.run`; `Stream.snapshot` reads the same figures
        """
        return Stream(self._graph, progress=progress)

    def __aiter__(self) -> Stream[T_co]:
        """Iterate over the outputs: ``async for out in pipeline`` is ``pipeline.stream()``."""
        return self.stream()

    def _then(self, op: Op, fn: Callable[..., Any], options: dict[str, Any]) -> Pipeline[Any]:
        unknown = sorted(set(options) - _KNOWN)
        if unknown:
            raise TypeError(f"{op}() got unexpected keyword arguments: {', '.join(unknown)}")
        spec = map_spec(
            op,
            fn,
            index=position(self._outlet),
            on=options.get("on"),
            workers=options.get("workers"),
            concurrency=options.get("concurrency"),
            setup=options.get("setup"),
            ordered=options.get("ordered", True),
            buffer=options.get("buffer"),
            chunksize=options.get("chunksize"),
            name=options.get("name"),
            retry=options.get("retry"),
            errors=options.get("errors", "raise"),
            timeout=options.get("timeout"),
            chunk_time=options.get("chunk_time"),
            max_size=options.get("max_size"),
            max_wait=options.get("max_wait"),
            max_in_flight=options.get("max_in_flight"),
        )
        return Pipeline._of(self._outlet.then(spec))
