"""A pipeline's shape: stages as nodes, bounded channels as edges.

The builder makes only chains today, but a run works from this graph rather
than from a list, so that fan-out (broadcast, partition by key) and fan-in
(merge) can arrive as new node kinds and edges without a rewrite of the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._specs import SinkSpec, SourceSpec, StageSpec, label


@dataclass(frozen=True, slots=True)
class Node:
    """One stage, identified by its position in the graph."""

    id: int
    spec: StageSpec

    @property
    def label(self) -> str:
        """Name the stage in messages, such as ``#2 'parse' (process map)``."""
        return label(self.id, self.spec)


@dataclass(frozen=True, slots=True)
class Edge:
    """A channel from one stage to the next, holding at most ``capacity`` items."""

    source: int
    target: int
    capacity: int


@dataclass(frozen=True, slots=True)
class Graph:
    """An immutable graph of stages; adding a stage returns a new graph."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    @classmethod
    def from_source(cls, spec: SourceSpec) -> Graph:
        """Start a graph with its source."""
        return cls((Node(0, spec),), ())

    @property
    def tail(self) -> Node:
        """The stage whose output is the pipeline's output."""
        return self.nodes[-1]

    @property
    def sealed(self) -> bool:
        """Whether the graph ends in a sink, so no stage can follow."""
        return isinstance(self.tail.spec, SinkSpec)

    def then(self, spec: StageSpec) -> Graph:
        """Return a new graph with ``spec`` fed by the current tail."""
        if self.sealed:
            raise TypeError("a pipeline that ends with sink() takes no more stages")
        tail = self.tail
        node = Node(len(self.nodes), spec)
        edge = Edge(tail.id, node.id, output_capacity(tail.spec))
        return Graph((*self.nodes, node), (*self.edges, edge))


def output_capacity(spec: StageSpec) -> int:
    """Return the size of a stage's output channel: its ``buffer=``."""
    if isinstance(spec, SinkSpec):  # pragma: no cover - a sink has no output
        raise TypeError("a sink has no output")
    return spec.buffer
