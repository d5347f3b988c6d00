"""Joining pipelines: `zip` and `merge` fan in, and `run_all` runs several as one graph."""

from __future__ import annotations

from typing import Any, TypeVar, overload

from ._model._graph import Graph, Outlet, Step, keeps_order, label_in, outlets_read
from ._model._specs import MapSpec, MergeSpec, PartitionSpec, ZipSpec, merge_spec, zip_spec
from ._observe._progress import ProgressOption
from ._observe._report import Report
from ._pipeline import Pipeline
from ._run import execute
from ._sealed import SealedPipeline
from ._shutdown import StopSignal

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
T = TypeVar("T")


@overload
def zip(
    a: Pipeline[A], b: Pipeline[B], /, *, buffer: int | None = ..., name: str | None = ...
) -> Pipeline[tuple[A, B]]: ...
@overload
def zip(
    a: Pipeline[A],
    b: Pipeline[B],
    c: Pipeline[C],
    /,
    *,
    buffer: int | None = ...,
    name: str | None = ...,
) -> Pipeline[tuple[A, B, C]]: ...
@overload
def zip(
    a: Pipeline[A],
    b: Pipeline[B],
    c: Pipeline[C],
    d: Pipeline[D],
    /,
    *,
    buffer: int | None = ...,
    name: str | None = ...,
) -> Pipeline[tuple[A, B, C, D]]: ...
@overload
def zip(
    *branches: Pipeline[Any], buffer: int | None = ..., name: str | None = ...
) -> Pipeline[tuple[Any, ...]]: ...
def zip(
    *branches: Pipeline[Any], buffer: int | None = None, name: str | None = None
) -> Pipeline[tuple[Any, ...]]:
    """Join branches of one pipeline: one tuple per source item, with each branch's result.

    The branches start from one pipeline and run together, so the stages
    they share run once per item. Tuples come in source order. An item that
    some branch drops (a filter, a failure skipped by ``errors="skip"``) is
    left out, and the zip's report counts it in ``items_unmatched``.

    Each branch must keep its items in source order and one per item, so a
    stage after the fork may not be a ``flat_map``, a ``batch()``, a
    ``partition`` or a ``merge``, or have ``ordered=False``; to zip with a
    branch that makes several items of one, have it ``map`` each item to a
    list instead. Such a branch is refused here, by name.

    Example::

        fetched = Pipeline(urls).map(http.fetch(response="json"), concurrency=32)
        a = fetched.map(feature_a, on="process")
        b = fetched.map(feature_b, on="thread")
        await pipework.zip(a, b).map(score).sink(save).run()  # score((A, B))

    :param buffer: how many tuples the channel after the zip holds; by default,
        up to 4,096 that fit in about 1 MiB by their measured size
    :param name: the zip's name in reports and errors
    :raises TypeError: for fewer than two branches, a branch that ends in a
        sink, branches that share no source, or a branch that reorders or
        multiplies its items
    """
    outlets = _outlets("zip", branches)
    sources = {outlet.sources for outlet in outlets}
    if len(sources) != 1 or len(next(iter(sources))) != 1:
        raise TypeError(
            "zip() pairs the results of branches of one pipeline, item by item, but these "
            "do not all start from the same one source; to take the items of several "
            "pipelines as they come, use pipework.merge()"
        )
    shared = frozenset.intersection(*(outlet.step.upstream for outlet in outlets))
    for number, outlet in enumerate(outlets):
        _check_branch(number, outlet, shared)
    _refuse_parts(outlets)
    spec = zip_spec(buffer=buffer, name=name)
    return Pipeline._of(Outlet(Step.make(spec, outlets)))  # noqa: SLF001 - one package


def _check_branch(number: int, outlet: Outlet, shared: frozenset[Step]) -> None:
    """Refuse a branch whose items would not line up with the others' by source position."""
    for step in outlet.step.upstream - shared:
        spec = step.spec
        why = None
        if isinstance(spec, MapSpec) and spec.op == "flat_map":
            why = "may make several items of one; map() each item to a list instead"
        elif isinstance(spec, MapSpec) and not spec.ordered:
            why = "has ordered=False; a zip needs each branch in source order"
        elif isinstance(spec, MergeSpec):
            why = "brings items of several branches in any order"
        elif isinstance(spec, PartitionSpec):
            why = "sends each item to one part only, so the branches would never pair"
        elif not isinstance(spec, MapSpec | ZipSpec):
            why = "groups items into lists; batch before the fork, or use map_batches()"
        if why is not None:
            raise TypeError(f"zip(): branch {number}'s stage {label_in(step, outlet)} {why}")
    if not keeps_order(outlet):  # upstream of the fork: nothing to align with
        raise TypeError(
            f"zip(): branch {number} does not keep its items in source order, one each, "
            "upstream of where the branches part (a flat_map, a merge or ordered=False); "
            "a zip aligns items by their position in the source"
        )


def _refuse_parts(outlets: tuple[Outlet, ...]) -> None:
    """Refuse branches that come out of different parts of one partition."""
    parts: dict[Step, set[int]] = {}
    for outlet in outlets:
        for read in outlets_read(outlet):
            if isinstance(read.step.spec, PartitionSpec):
                parts.setdefault(read.step, set()).add(read.port)
    for step, ports in parts.items():
        if len(ports) > 1:
            raise TypeError(
                f"zip(): the branches read different parts of stage {label_in(step, outlets[0])}, "
                "which sends each item to one part only, so the branches would never pair"
            )


@overload
def merge(
    a: Pipeline[A], b: Pipeline[B], /, *, buffer: int | None = ..., name: str | None = ...
) -> Pipeline[A | B]: ...
@overload
def merge(
    a: Pipeline[A],
    b: Pipeline[B],
    c: Pipeline[C],
    /,
    *,
    buffer: int | None = ...,
    name: str | None = ...,
) -> Pipeline[A | B | C]: ...
@overload
def merge(
    *pipelines: Pipeline[T], buffer: int | None = ..., name: str | None = ...
) -> Pipeline[T]: ...
def merge(
    *pipelines: Pipeline[Any], buffer: int | None = None, name: str | None = None
) -> Pipeline[Any]:
    """Take every item of every pipeline as it comes, in one stream.

    The pipelines may be branches of one pipeline (each item then comes
    once per branch), parts of a `Pipeline.partition`, or pipelines with
    sources of their own, such as two feeds. Order is kept within each input
    but not across them. After a merge of separate sources, an item's index
    in reports is its position in its own source.

    Example::

        events = pipework.merge(Pipeline(kafka_feed()), Pipeline(http_feed()))
        await events.map(parse).sink(store).run()

    :param buffer: how many items the channel after the merge holds; by default,
        up to 4,096 that fit in about 1 MiB by their measured size
    :param name: the merge's name in reports and errors
    :raises TypeError: for fewer than two pipelines, or one that ends in a sink
    """
    outlets = _outlets("merge", pipelines)
    spec = merge_spec(buffer=buffer, name=name)
    return Pipeline._of(Outlet(Step.make(spec, outlets)))  # noqa: SLF001 - one package


async def run_all(
    *pipelines: Pipeline[Any] | SealedPipeline,
    stop: StopSignal | None = None,
    progress: ProgressOption = False,
) -> Report:
    """Run several pipelines as one graph, and return one report.

    Stages the pipelines share run once, and each of their items goes to
    every pipeline that reads it: save to a database and to a file from one
    read of the source. The outputs of a pipeline without a sink are counted
    and dropped. The first failure anywhere stops them all, as `Pipeline.run`.

    Example::

        rows = Pipeline(read_rows()).map(clean)
        report = await pipework.run_all(rows.sink(database.insert), rows.sink(csv_file.write))

    :param stop: as for `Pipeline.run`: once set, every source stops reading
    :param progress: as for `Pipeline.run`: one line per stage of the whole graph
    """
    if not pipelines:
        raise TypeError("run_all() needs at least one pipeline")
    outlets = []
    for number, pipeline in enumerate(pipelines):
        if not isinstance(pipeline, Pipeline | SealedPipeline):
            raise TypeError(
                f"run_all(): argument {number} is a {type(pipeline).__qualname__}, not a pipeline"
            )
        outlets.append(pipeline._outlet)  # noqa: SLF001 - one package
    return await execute(Graph.of(outlets), stop=stop, progress=progress)


def _outlets(what: str, pipelines: tuple[Any, ...]) -> tuple[Outlet, ...]:
    if len(pipelines) < 2:  # noqa: PLR2004 - a fan-in of one is the pipeline itself
        raise TypeError(f"{what}() needs at least two pipelines, not {len(pipelines)}")
    for number, pipeline in enumerate(pipelines):
        if isinstance(pipeline, SealedPipeline):
            raise TypeError(
                f"{what}(): pipeline {number} ends with sink(), so it has no items to pass on"
            )
        if not isinstance(pipeline, Pipeline):
            raise TypeError(
                f"{what}(): argument {number} is a {type(pipeline).__qualname__}, not a Pipeline"
            )
    return tuple(pipeline._outlet for pipeline in pipelines)  # noqa: SLF001 - one package
