"""Property tests: random chains of stages lose, duplicate and reorder nothing.

Items are tuples that record what happened to them: a map appends the stage's
number, a flat_map makes tagged copies, a filter keeps tuples by a rule of
their contents, and a batch is undone by a flat_map right after it. A plain
list comprehension model of the same chain then gives the exact expected
output; it must match as a list when every stage keeps order, and as a
multiset when any stage does not. Each property runs on every event loop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipework
from helpers import LOOPS
from pipework import Pipeline

CONCURRENT = ("async", "thread", "process")


@dataclass(frozen=True)
class Stage:
    op: str  # map, filter, flat_map or batch
    mode: str  # inline, async, thread or process (ignored by batch)
    ordered: bool
    buffer: int
    concurrency: int
    workers: int
    chunksize: int | None
    copies: int  # outputs per input of a flat_map
    size: int  # of a batch
    max_wait: float | None  # of a batch


# what each stage does, as plain functions that the model shares ---------------------------


def tag(j, item):
    return (*item, j)


def keep(j, item):
    return (sum(item) + j) % 3 != 0


def copies(j, k, item):
    return [(*item, j, c) for c in range(k)]


def unbatch(size, batch):
    if not 1 <= len(batch) <= size:
        raise AssertionError(f"a batch of {len(batch)} items, for a size of {size}")
    return batch


async def after_a_nap(fn, item):
    # A small delay that varies from item to item, so calls finish out of order.
    await asyncio.sleep((hash(item) % 4) * 0.0005)
    return fn(item)


def stage_fn(j, stage):
    if stage.op == "map":
        return partial(tag, j)
    if stage.op == "filter":
        return partial(keep, j)
    return partial(copies, j, stage.copies)


def options(stage):
    if stage.mode == "inline":
        return {"buffer": stage.buffer}
    common = {"buffer": stage.buffer, "ordered": stage.ordered}
    if stage.mode == "async":
        return {**common, "concurrency": stage.concurrency}
    return {**common, "on": stage.mode, "workers": stage.workers, "chunksize": stage.chunksize}


def build(n, source_buffer, stages):
    pipeline = Pipeline([(i,) for i in range(n)], buffer=source_buffer)
    for j, stage in enumerate(stages):
        if stage.op == "map_batches":
            pipeline = pipeline.batch(stage.size, max_wait=stage.max_wait, buffer=stage.buffer)
            pipeline = pipeline.flat_map(partial(unbatch, stage.size), buffer=stage.buffer)
            continue
        fn = stage_fn(j, stage)
        if stage.mode == "async":
            fn = partial(after_a_nap, fn)
        pipeline = getattr(pipeline, stage.op)(fn, **options(stage))
    return pipeline


def model(n, stages):
    items = [(i,) for i in range(n)]
    for j, stage in enumerate(stages):
        if stage.op == "map_batches":
            continue
        fn = stage_fn(j, stage)
        if stage.op == "map":
            items = [fn(item) for item in items]
        elif stage.op == "filter":
            items = [item for item in items if fn(item)]
        else:
            items = [out for item in items for out in fn(item)]
    return items


def keeps_order(stages):
    return all(s.ordered for s in stages if s.op != "map_batches" and s.mode in CONCURRENT)


async def outputs(pipeline, via_sink):
    if not via_sink:
        return [x async for x in pipeline]
    seen = []
    report = await pipeline.sink(seen.append).run()
    assert report.stages[-1].items_in == len(seen)
    return seen


def check(loop, n, source_buffer, stages, via_sink):
    got = pipework.run_main(outputs, build(n, source_buffer, stages), via_sink, loop=loop)
    expected = model(n, stages)
    if keeps_order(stages):
        assert got == expected
    else:
        assert Counter(got) == Counter(expected)


# strategies ----------------------------------------------------------------------------------


def stages_of(modes):
    return st.builds(
        Stage,
        op=st.sampled_from(["map", "filter", "flat_map", "map_batches"]),
        mode=st.sampled_from(modes),
        ordered=st.booleans(),
        buffer=st.integers(1, 8),
        concurrency=st.integers(1, 4),
        workers=st.integers(1, 3),
        chunksize=st.none() | st.integers(1, 4),
        copies=st.integers(0, 2),
        size=st.integers(1, 5),
        max_wait=st.sampled_from([None, 0.0, 0.001, 0.003]),
    )


@st.composite
def chains_with_a_process_stage(draw):
    """One to three stages, one of them a process map, filter or flat_map on 1 or 2 workers."""
    stages = draw(st.lists(stages_of(["inline", "async", "thread"]), min_size=1, max_size=3))
    at = draw(st.integers(0, len(stages) - 1))
    op = draw(st.sampled_from(["map", "filter", "flat_map"]))
    stages[at] = Stage(
        op=op,
        mode="process",
        ordered=draw(st.booleans()),
        buffer=draw(st.integers(1, 8)),
        concurrency=1,
        workers=draw(st.integers(1, 2)),
        chunksize=draw(st.none() | st.integers(1, 4)),
        copies=draw(st.integers(0, 2)),
        size=1,
        max_wait=None,
    )
    return stages


# properties ----------------------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
@settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 60),
    source_buffer=st.integers(1, 8),
    stages=st.lists(stages_of(["inline", "async", "thread"]), min_size=1, max_size=4),
    via_sink=st.booleans(),
)
def test_every_item_comes_out_exactly_once(loop, n, source_buffer, stages, via_sink):
    check(loop, n, source_buffer, stages, via_sink)


@pytest.mark.parametrize("loop", LOOPS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 60),
    source_buffer=st.integers(1, 8),
    stages=chains_with_a_process_stage(),
    via_sink=st.booleans(),
)
def test_every_item_comes_out_exactly_once_through_processes(
    loop, n, source_buffer, stages, via_sink
):
    check(loop, n, source_buffer, stages, via_sink)


def test_the_model_is_not_trivial():
    """Guard the guard: the model must transform, filter and duplicate, or it checks little."""
    stages = [
        Stage("map", "inline", True, 1, 1, 1, None, 0, 1, None),
        Stage("filter", "inline", True, 1, 1, 1, None, 0, 1, None),
        Stage("flat_map", "inline", True, 1, 1, 1, None, 2, 1, None),
    ]
    out = model(6, stages)
    assert out[0] == (0, 0, 2, 0)
    assert len(out) == 2 * len([i for i in range(6) if (i + 1) % 3 != 0])
