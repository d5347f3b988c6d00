"""Graph: the immutable shape of a pipeline, stages as nodes and channels as edges."""

from __future__ import annotations

import dataclasses

import pytest

import pipework
from pipework import Pipeline, SealedPipeline
from pipework._channel import AUTO_BYTES, AUTO_ITEMS
from pipework._model._graph import Edge, Graph


def double(x):
    return 2 * x


def halve(x):
    return x / 2


def test_adding_a_stage_leaves_the_old_pipeline_unchanged():
    base = Pipeline(range(3))
    outlet = base._outlet
    longer = base.map(double)
    assert base._outlet is outlet
    assert len(base._graph.nodes) == 1
    assert base._graph.edges == ()
    assert len(longer._graph.nodes) == 2
    assert longer._outlet.step.inputs == (outlet,)  # shared, never copied or changed


def test_branches_from_one_pipeline_are_independent():
    base = Pipeline(range(3)).map(double)
    left = base.map(halve)
    right = base.filter(double, name="odd")
    assert [n.spec.name for n in left._graph.nodes] == ["source", "double", "halve"]
    assert [n.spec.name for n in right._graph.nodes] == ["source", "double", "odd"]
    assert len(base._graph.nodes) == 2


def test_graph_and_its_parts_are_frozen():
    graph = Pipeline(range(3)).map(double)._graph
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.nodes = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.edges[0].capacity = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.nodes[0].id = 5


def test_edges_carry_each_stage_output_buffer():
    graph = (
        Pipeline(range(3), buffer=5)
        .map(double, buffer=7)
        .batch(2, buffer=9)
        .filter(bool)
        .sink(print)
        ._graph
    )
    assert graph.edges == (
        Edge(0, 1, 5),
        Edge(1, 2, 7),
        Edge(2, 3, 9),
        Edge(3, 4, AUTO_ITEMS, max_bytes=AUTO_BYTES),  # buffer= left to its default
    )
    assert [n.id for n in graph.nodes] == [0, 1, 2, 3, 4]


def test_input_and_output_edges_of_a_node():
    graph = Pipeline(range(3)).map(double).map(halve)._graph
    source, middle, tail = graph.nodes

    def into(node):
        return [e for e in graph.edges if e.target == node.id]

    def out_of(node):
        return [e for e in graph.edges if e.source == node.id]

    assert into(source) == []
    assert out_of(source) == [Edge(0, 1, AUTO_ITEMS, max_bytes=AUTO_BYTES)]
    assert into(middle) == [Edge(0, 1, AUTO_ITEMS, max_bytes=AUTO_BYTES)]
    assert out_of(middle) == [Edge(1, 2, AUTO_ITEMS, max_bytes=AUTO_BYTES)]
    assert out_of(tail) == []
    assert graph.tail is tail


def test_node_label_names_position_name_and_kind():
    graph = Pipeline(range(3)).map(double, on="thread")._graph
    assert graph.tail.label == "#1 'double' (thread map)"


def test_a_sink_seals_its_pipeline():
    done = Pipeline(range(3)).sink(print)
    assert isinstance(done, SealedPipeline)
    assert done._outlet.sealed
    assert done._graph.tails == ()  # a run hands none of its items to anyone


def test_pipeline_after_sink_takes_no_stages():
    done = Pipeline(range(3)).sink(print)
    for name in ("map", "filter", "flat_map", "batch", "sink", "partition", "stream", "open"):
        with pytest.raises(AttributeError, match=f"takes no more stages, and has no '{name}'"):
            getattr(done, name)


# Graphs that are not chains --------------------------------------------------------


def test_a_fan_out_and_zip_are_numbered_upstream_first_with_an_edge_per_reader():
    base = Pipeline(range(3), buffer=5)
    a = base.map(double, buffer=6)
    b = base.map(halve, buffer=7)
    graph = pipework.zip(a, b, buffer=8)._graph
    assert [n.label for n in graph.nodes] == [
        "#0 'source' (source)",
        "#1 'double' (inline map)",
        "#2 'halve' (inline map)",
        "#3 'zip' (zip)",
    ]
    assert graph.edges == (
        Edge(0, 1, 5),
        Edge(0, 2, 5),
        Edge(1, 3, 6, target_port=0),
        Edge(2, 3, 7, target_port=1),
    )
    assert graph.tails == ((3, 0),)
    assert graph.upstream(3) == {0, 1, 2, 3}
    assert graph.upstream(2) == {0, 2}


def test_parts_of_a_partition_are_outlets_of_one_step():
    first, second = Pipeline(range(3)).partition(2, key=int)
    assert first._outlet.step is second._outlet.step
    assert (first._outlet.port, second._outlet.port) == (0, 1)
    graph = Graph.of([first._outlet, second._outlet])
    assert graph.tails == ((1, 0), (1, 1))


def test_no_cycle_can_be_built_since_steps_read_only_what_exists_and_never_change():
    step = Pipeline(range(3)).map(double)._outlet.step
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.inputs = ()
    assert step not in step.inputs[0].step.upstream  # what it reads knows nothing of it
