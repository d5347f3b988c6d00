"""A pipeline's shape: built as a tree of steps that point upstream, run as a numbered graph.

While a pipeline is built, each stage is a `Step` that refers to the
outlets it reads from. Adding a stage makes a new step and changes nothing,
so a pipeline can be reused as the start of several branches (a fan-out),
and a step can read several pipelines (``zip``, ``merge``). A step can only
read outlets that already exist, so no cycle can be built.

A run flattens the steps it needs into a `Graph`: nodes numbered upstream
first (a chain is numbered in order, source 0), and one `Edge` per reader of
each outlet, each with a channel of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .._channel import AUTO_BYTES, AUTO_ITEMS
from ._specs import (
    MapSpec,
    MergeSpec,
    PartitionSpec,
    SinkSpec,
    SourceSpec,
    StageSpec,
    ZipSpec,
    label,
)


@dataclass(frozen=True, eq=False, slots=True)
class Step:
    """A stage as built: its spec and the outlets it reads, in order.

    Steps compare by identity: two equal specs are still two stages.
    """

    spec: StageSpec
    inputs: tuple[Outlet, ...] = ()
    # The step and every step upstream of it.
    upstream: frozenset[Step] = field(default=frozenset(), repr=False)

    @staticmethod
    def make(spec: StageSpec, inputs: tuple[Outlet, ...] = ()) -> Step:
        """Make a step, and remember what is upstream of it."""
        step = Step(spec, inputs)
        above = frozenset().union(*(outlet.step.upstream for outlet in inputs))
        object.__setattr__(step, "upstream", above | {step})
        return step


@dataclass(frozen=True, slots=True)
class Outlet:
    """One output of a step: a pipeline is the outlet it ends at.

    Every step has one output but a partition, which has one per part.
    """

    step: Step
    port: int = 0

    @property
    def sealed(self) -> bool:
        """Whether the outlet is a sink's, so nothing can read it."""
        return isinstance(self.step.spec, SinkSpec)

    @property
    def sources(self) -> frozenset[Step]:
        """The sources upstream."""
        return frozenset(s for s in self.step.upstream if isinstance(s.spec, SourceSpec))

    def then(self, spec: StageSpec) -> Outlet:
        """Return the outlet of a new step that reads this one."""
        if self.sealed:  # pragma: no cover - the builder has no way to ask
            raise TypeError("a pipeline that ends with sink() takes no more stages")
        return Outlet(Step.make(spec, (self,)))


def keeps_order(outlet: Outlet) -> bool:
    """Whether the items at ``outlet`` come in the order of their source, each index once.

    A zip aligns its branches by the items' positions in their source, so it
    needs each branch in that order.
    """
    spec = outlet.step.spec
    if isinstance(spec, SourceSpec):
        return True
    if isinstance(spec, MergeSpec):
        return False
    if isinstance(spec, MapSpec) and (spec.op == "flat_map" or not spec.ordered):
        return False
    return all(keeps_order(inp) for inp in outlet.step.inputs)


def one_each(outlet: Outlet) -> bool:
    """Whether each source item reaches ``outlet`` at most once.

    A flat_map makes several items of one; a merge of branches of one
    source brings the same item along each of them.
    """
    spec = outlet.step.spec
    if isinstance(spec, MapSpec) and spec.op == "flat_map":
        return False
    inputs = outlet.step.inputs
    if isinstance(spec, MergeSpec) and any(
        _overlap(a, b) for i, a in enumerate(inputs) for b in inputs[i + 1 :]
    ):
        return False
    return all(one_each(inp) for inp in inputs)


def _overlap(a: Outlet, b: Outlet) -> bool:
    """Whether a source item can reach both ``a`` and ``b``: not if they read other parts."""
    if not a.sources & b.sources:
        return False
    parts_a = _parts(a)
    parts_b = _parts(b)
    return not any(parts_a[step].isdisjoint(parts_b[step]) for step in parts_a.keys() & parts_b)


def _parts(outlet: Outlet) -> dict[Step, set[int]]:
    parts: dict[Step, set[int]] = {}
    for read in outlets_read(outlet):
        if isinstance(read.step.spec, PartitionSpec):
            parts.setdefault(read.step, set()).add(read.port)
    return parts


def outlets_read(outlet: Outlet) -> set[Outlet]:
    """Return ``outlet`` and every outlet read upstream of it."""
    seen = {outlet}
    todo = [outlet]
    while todo:
        for read in todo.pop().step.inputs:
            if read not in seen:
                seen.add(read)
                todo.append(read)
    return seen


def position(outlet: Outlet) -> int:
    """Return the position a new stage after ``outlet`` takes in messages at build time."""
    return len(outlet.step.upstream)


@dataclass(frozen=True, slots=True)
class Node:
    """One stage of a run, numbered upstream first."""

    id: int
    spec: StageSpec

    @property
    def label(self) -> str:
        """Name the stage in messages, such as ``#2 'parse' (process map)``."""
        return label(self.id, self.spec)


@dataclass(frozen=True, slots=True)
class Edge:
    """A channel from one output of a stage to one input of another.

    It holds at most ``capacity`` items, and if ``max_bytes`` is set, as many
    as fit in that many bytes (see `Channel`).
    """

    source: int
    target: int
    capacity: int
    source_port: int = 0
    target_port: int = 0
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Graph:
    """The stages a run needs, numbered, with one edge per reader of each output.

    ``tails`` are the outlets whose items the run hands to its caller (or
    drops), as ``(node, port)``; a sink has none.
    """

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    tails: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(
        cls, outlets: Iterable[Outlet], replace: Mapping[Step, StageSpec] | None = None
    ) -> Graph:
        """Flatten the steps upstream of ``outlets``, with an edge for each reader of an output.

        ``replace`` runs some steps with other specs: a service feeds its
        source from ``submit``.
        """
        outlets = tuple(outlets)
        order = upstream_first(outlets)
        ids = {step: i for i, step in enumerate(order)}
        swap = replace or {}
        nodes = tuple(Node(i, swap.get(step, step.spec)) for i, step in enumerate(order))
        edges = tuple(
            _edge(ids[inp.step], ids[step], inp, port)
            for step in order
            for port, inp in enumerate(step.inputs)
        )
        tails = tuple(dict.fromkeys((ids[o.step], o.port) for o in outlets if not o.sealed))
        return cls(nodes, edges, tails)

    @property
    def tail(self) -> Node:
        """The last stage: of a graph of one outlet, the one that outlet ends at."""
        return self.nodes[-1]

    def upstream(self, node: int) -> set[int]:
        """Return the ids of ``node`` and of every node upstream of it."""
        feeds: dict[int, list[int]] = {}
        for edge in self.edges:
            feeds.setdefault(edge.target, []).append(edge.source)
        seen: set[int] = set()
        todo = [node]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(feeds.get(current, ()))
        return seen


def upstream_first(outlets: Iterable[Outlet]) -> list[Step]:
    """Return the steps upstream of ``outlets``, each after every step it reads.

    Depth first, inputs in order, so a chain comes in order from its source.
    """
    order: list[Step] = []
    seen: set[Step] = set()
    for outlet in outlets:
        stack: list[tuple[Step, int]] = [(outlet.step, 0)]
        while stack:
            current, next_input = stack.pop()
            if current in seen:
                continue
            if next_input < len(current.inputs):
                stack.append((current, next_input + 1))
                stack.append((current.inputs[next_input].step, 0))
                continue
            seen.add(current)
            order.append(current)
    return order


def label_in(step: Step, outlet: Outlet) -> str:
    """Name ``step`` as a run of ``outlet`` would, such as ``#2 'parse' (process map)``."""
    return label(upstream_first([outlet]).index(step), step.spec)


def output_bounds(spec: StageSpec) -> tuple[int, int | None]:
    """Return the bounds of each channel a stage's output feeds, in items and in bytes.

    A ``buffer=`` the user gave is exact, in items. Left to its default, a
    channel holds `AUTO_ITEMS` items at most, and no more than fit in
    `AUTO_BYTES` by their measured size: fast for small items, flat in
    memory for large ones.
    """
    if isinstance(spec, SinkSpec):  # pragma: no cover - a sink has no output
        raise TypeError("a sink has no output")
    return (AUTO_ITEMS, AUTO_BYTES) if spec.buffer is None else (spec.buffer, None)


def _edge(source: int, target: int, inp: Outlet, port: int) -> Edge:
    items, max_bytes = output_bounds(inp.step.spec)
    return Edge(source, target, items, inp.port, port, max_bytes)


def is_one_to_one(spec: StageSpec) -> bool:
    """Whether a stage gives each item it keeps back as one item with the same index."""
    if isinstance(spec, MapSpec):
        return spec.op != "flat_map"
    return isinstance(spec, ZipSpec)
