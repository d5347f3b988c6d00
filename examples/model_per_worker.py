"""Load a model once per worker process with ``setup=``, then predict in batches.

The old ways: load the model at the top of the function, so it loads again
for every item; or stash it in a global from a ``Pool(initializer=...)``.
With pipework, ``setup=`` is called once in each worker, and its result is
passed first to the function: ``predict(model, batch)``.

The "model" is a small pure-Python nearest-neighbour classifier that
``setup`` builds from generated data (a real one would read weights from
disk, which is why it must not happen per item). Every batch comes back with
the id of the process that predicted it and the id of the model load it
used, and the script checks that each worker loaded the model exactly once.

The points are grouped with ``.batch(50)``; ``chunksize=1`` then sends each
batch to a worker as one call, because a batch is already a chunk.

Run it from the repository root::

    python examples/model_per_worker.py
"""

from __future__ import annotations

import asyncio
import heapq
import os
import random
import uuid
from collections import Counter

from pipework import Pipeline

Point = tuple[float, float]


def make_points(count: int, seed: int) -> list[tuple[Point, int]]:
    """Two noisy clusters of 2-D points, labelled 0 and 1."""
    rng = random.Random(seed)
    points = []
    for _ in range(count):
        label = rng.randrange(2)
        centre = 1.0 if label else -1.0
        points.append(((rng.gauss(centre, 0.8), rng.gauss(centre, 0.8)), label))
    return points


class NearestNeighbours:
    """Labels a point by a vote of the ``k`` closest reference points."""

    def __init__(self, reference: list[tuple[Point, int]], k: int = 7) -> None:
        self.reference = reference
        self.k = k
        self.load_id = uuid.uuid4().hex[:8]  # tells one load of the model from another

    def label(self, point: Point) -> int:
        x, y = point
        nearest = heapq.nsmallest(
            self.k, self.reference, key=lambda ref: (ref[0][0] - x) ** 2 + (ref[0][1] - y) ** 2
        )
        votes = sum(label for _, label in nearest)
        return int(votes * 2 > self.k)


def load_model() -> NearestNeighbours:
    """Called once in each worker process, before its first batch."""
    return NearestNeighbours(make_points(400, seed=1))


def predict(model: NearestNeighbours, batch: list[Point]) -> tuple[int, str, list[int]]:
    """Label a batch of points, and say which process and which model load did it."""
    return os.getpid(), model.load_id, [model.label(point) for point in batch]


async def main() -> None:
    test_set = make_points(4000, seed=2)
    answers: list[tuple[int, str, list[int]]] = []

    report = await (
        Pipeline(point for point, _ in test_set)
        .batch(50)
        .map(predict, on="process", workers=2, setup=load_model, chunksize=1)
        .sink(answers.append)
        .run()
    )

    loads: dict[int, set[str]] = {}
    batches: Counter[int] = Counter()
    for pid, load_id, _ in answers:
        loads.setdefault(pid, set()).add(load_id)
        batches[pid] += 1
    for pid, ids in sorted(loads.items()):
        print(f"worker pid {pid}: {batches[pid]} batches, model loads {sorted(ids)}")
    all_loads = {load_id for _, load_id, _ in answers}
    if any(len(ids) != 1 for ids in loads.values()) or len(all_loads) != len(loads):
        raise SystemExit("a worker loaded the model more than once")
    print(f"setup ran once per worker: {len(all_loads)} loads for {len(loads)} worker processes")

    labels = [label for _, _, batch in answers for label in batch]
    correct = sum(label == truth for label, (_, truth) in zip(labels, test_set, strict=True))
    print(f"accuracy on {len(labels)} points: {correct / len(labels):.1%}")
    print(report)


if __name__ == "__main__":
    asyncio.run(main())
