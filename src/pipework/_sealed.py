"""A pipeline that ends in a sink: it can be run, and nothing can follow it."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from ._model._graph import Graph, Outlet
from ._observe._progress import ProgressOption
from ._observe._report import Report
from ._run import execute
from ._shutdown import StopSignal


class SealedPipeline:
    """What `Pipeline.sink` returns: a pipeline with nowhere left to send its items.

    It has no ``map`` or other stage methods, so a stage after a sink is a
    type error (and an ``AttributeError`` when run without a type checker).
    Run it on its own, or with other pipelines in one run with
    `pipework.run_all`.

    Example::

        saved = Pipeline(rows).map(clean).sink(save)
        report = await saved.run()
    """

    __slots__ = ("_outlet",)

    def __init__(self, outlet: Outlet) -> None:
        """Wrap the outlet of a sink; use `Pipeline.sink`."""
        self._outlet = outlet

    @property
    def _graph(self) -> Graph:
        return Graph.of([self._outlet])

    def __repr__(self) -> str:
        """List the stages, upstream first."""
        return "SealedPipeline(" + " -> ".join(n.label for n in self._graph.nodes) + ")"

    if not TYPE_CHECKING:  # to a type checker, a stage after a sink is simply not there

        def __getattr__(self, name: str) -> NoReturn:
            """Say why a stage method is missing, for code that no type checker saw."""
            if name.startswith("_"):
                raise AttributeError(name)
            raise AttributeError(
                f"a pipeline that ends with sink() takes no more stages, and has no {name!r}: "
                "add stages before the sink, or start another branch from the pipeline "
                "the sink ends"
            )

    async def run(
        self, *, stop: StopSignal | None = None, progress: ProgressOption = False
    ) -> Report:
        """Run every stage to the end of the source, and return the report; see `Pipeline.run`."""
        return await execute(self._graph, stop=stop, progress=progress)
