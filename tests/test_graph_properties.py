"""Property tests: random graphs (fan-out, zip, merge, partition) account for every item once.

Hypothesis draws a list of operations over a growing set of branches: maps,
filters and skipped failures on async, thread or inline stages with random
delays and buffers; zips and merges of two branches; partitions; now and
then a second source. The same operations run on a plain-list model, keyed
by each item's source index. Every branch is then run in one `run_all`,
and each must give exactly the model's items: as a list where order is
promised (no merge upstream), as a multiset where it is not.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipework
from pipework import Pipeline


def num(value):
    """A number made of everything a value holds, for rules that must see all of it."""
    return sum(num(v) for v in value) if isinstance(value, tuple) else value


class Tag:
    def __init__(self, j, delay):
        self.j, self.delay = j, delay

    def __call__(self, value):
        if self.delay and num(value) % 4 == 0:
            time.sleep(self.delay)
        return (value, self.j)


class AsyncTag(Tag):
    async def __call__(self, value):  # type: ignore[override]
        if self.delay and num(value) % 4 == 0:
            await asyncio.sleep(self.delay)
        return (value, self.j)


def keep(j):
    return lambda value: (num(value) + j) % 3 != 0


def fail_some(j):
    def check(value):
        if (num(value) + j) % 5 == 0:
            raise ValueError(value)
        return value

    return check


@dataclass
class Branch:
    pipeline: pipework.Pipeline
    items: list  # the model: (source, index, value) in the order promised
    ordered: bool
    source: int


OPS = st.lists(
    st.tuples(
        st.sampled_from(["map", "filter", "skip", "zip", "merge", "partition", "source"]),
        st.integers(0, 1_000),  # which branches
        st.sampled_from(["inline", "async", "thread"]),
        st.integers(1, 6),  # buffer
        st.sampled_from([0.0, 0.0, 0.0005]),  # delay
    ),
    min_size=1,
    max_size=8,
)


def build(n, ops):
    branches = [Branch(Pipeline(range(n), buffer=3), [(0, i, i) for i in range(n)], True, 0)]
    sources = 1
    for j, (op, pick, mode, buffer, delay) in enumerate(ops):
        a = branches[pick % len(branches)]
        b = branches[(pick // 7) % len(branches)]
        where = {"on": "thread", "workers": 2} if mode == "thread" else {}
        if op == "source":
            m = (j * 7) % (n + 1)
            branches.append(
                Branch(
                    Pipeline(range(m), buffer=buffer),
                    [(sources, i, i) for i in range(m)],
                    True,
                    sources,
                )
            )
            sources += 1
        elif op == "map":
            fn = AsyncTag(j, delay) if mode == "async" else Tag(j, delay)
            pipeline = a.pipeline.map(fn, buffer=buffer, **where)
            items = [(s, i, (v, j)) for s, i, v in a.items]
            branches.append(Branch(pipeline, items, a.ordered, a.source))
        elif op == "filter":
            pipeline = a.pipeline.filter(keep(j), buffer=buffer, **where)
            items = [(s, i, v) for s, i, v in a.items if keep(j)(v)]
            branches.append(Branch(pipeline, items, a.ordered, a.source))
        elif op == "skip":
            pipeline = a.pipeline.map(fail_some(j), errors="skip", buffer=buffer, **where)
            items = [(s, i, v) for s, i, v in a.items if (num(v) + j) % 5 != 0]
            branches.append(Branch(pipeline, items, a.ordered, a.source))
        elif op == "zip":
            try:
                pipeline = pipework.zip(a.pipeline, b.pipeline, buffer=buffer)
            except TypeError:  # refused: the model's rules are coarser than the builder's
                continue
            assert a.ordered
            assert b.ordered
            assert a.source == b.source
            theirs = {(s, i): v for s, i, v in b.items}
            items = [(s, i, (v, theirs[s, i])) for s, i, v in a.items if (s, i) in theirs]
            branches.append(Branch(pipeline, items, True, a.source))
        elif op == "merge":
            pipeline = pipework.merge(a.pipeline, b.pipeline, buffer=buffer)
            source = a.source if a.source == b.source else -1
            branches.append(Branch(pipeline, a.items + b.items, False, source))
        else:
            parts = a.pipeline.partition(2, key=num, buffer=buffer)
            for part, pipeline in enumerate(parts):
                items = [(s, i, v) for s, i, v in a.items if num(v) % 2 == part]
                branches.append(Branch(pipeline, items, a.ordered, a.source))
    return branches


@pytest.mark.timeout(600)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 60), ops=OPS)
def test_every_item_is_accounted_for_on_every_path(n, ops):
    branches = build(n, ops)
    outputs = [[] for _ in branches]
    sinks = [b.pipeline.sink(out.append) for b, out in zip(branches, outputs, strict=True)]

    async def main():
        return await asyncio.wait_for(pipework.run_all(*sinks), 60)

    report = asyncio.run(main())
    for branch, got in zip(branches, outputs, strict=True):
        want = [v for _, _, v in branch.items]
        if branch.ordered:
            assert got == want
        else:
            assert Counter(got) == Counter(want)
    # Every stage is reported once: the sinks' counts are what they were given.
    sink_reports = [s for s in report.stages if s.kind == "sink"]
    assert [s.items_in for s in sink_reports] == [len(out) for out in outputs]


def test_the_model_is_not_trivial():
    """Operations drawn by hand reach zips that drop items and merges of two sources."""
    branches = build(
        30,
        [
            ("filter", 0, "thread", 2, 0.0),
            ("map", 1, "async", 1, 0.0005),  # of the filter
            ("zip", 2, "inline", 2, 0.0),  # of that map, and the source
            ("source", 0, "inline", 3, 0.0),
            ("merge", 28, "inline", 2, 0.0),  # of the zip, and the new source
        ],
    )
    zipped, merged = branches[3], branches[5]
    assert 0 < len(zipped.items) < 30
    assert not merged.ordered
    assert {s for s, _, _ in merged.items} == {0, 1}
