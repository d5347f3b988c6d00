"""Measuring every contender on one map workload, with ProcessPoolExecutor at its best chunksize."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ..contenders import CONTENDERS, WORKERS
from ..probe import NotAvailable
from ..session import Cell, Result, Session, Timing


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    result: Result
    chunksize: int | None = None

    @property
    def timing(self) -> Timing | None:
        return self.result if isinstance(self.result, Timing) else None


@dataclass(frozen=True)
class MapWork:
    """A map workload: ``task`` over ``n`` items (``per_item_n`` for one-message-per-item APIs)."""

    task: str
    task_args: dict[str, Any]
    n: int
    per_item_n: int
    chunksizes: tuple[int, ...]  # ProcessPoolExecutor tries each
    kind: str = "ints"
    mbytes: int = 0
    imap_chunksize: int | None = None  # None: the rule Pool.map uses

    def cell(self, key: str, chunksize: int | None = None) -> Cell:
        per_item = CONTENDERS[key].per_item
        spec = {
            "task": self.task,
            "task_args": self.task_args,
            "kind": self.kind,
            "n": min(self.n, self.per_item_n) if per_item else self.n,
            "mbytes": self.mbytes,
            "options": {} if chunksize is None else {"chunksize": chunksize},
        }
        label = CONTENDERS[key].label + ("" if chunksize is None else f", chunksize {chunksize}")
        return Cell(key, label, spec, chunksize)

    def pool_map_chunksize(self) -> int:
        """The chunksize Pool.map would choose: four chunks per worker."""
        if self.imap_chunksize is not None:
            return self.imap_chunksize
        size, extra = divmod(self.n, 4 * WORKERS)
        return size + 1 if extra else size


def measure_all(
    session: Session, work: MapWork, *, keys: Collection[str], rounds: int | None = None
) -> tuple[list[Row], list[Row]]:
    """Return a row per contender in ``keys``, and one per chunksize ProcessPoolExecutor tried."""
    cells = [cell for key in CONTENDERS if key in keys for cell in _cells(work, key)]
    cells = [cell for cell in cells if session.wants(cell.key)]
    results = session.measure(cells, rounds)
    everything = [Row(c.key, c.label, r, c.chunksize) for c, r in zip(cells, results, strict=True)]
    tried = [row for row in everything if row.key == "executor_map"]
    rows = [row for row in everything if row.key != "executor_map"]
    if tried:
        rows.insert(_position(rows, "executor_map"), best(tried))
    return rows, tried


def _cells(work: MapWork, key: str) -> list[Cell]:
    if key == "executor_map":
        return [work.cell(key, size) for size in work.chunksizes]
    if key == "pool_imap":
        return [work.cell(key, work.pool_map_chunksize())]
    return [work.cell(key)]


def _position(rows: list[Row], key: str) -> int:
    """Where ``key`` goes among ``rows`` to keep the order of `CONTENDERS`."""
    order = list(CONTENDERS)
    return sum(1 for row in rows if order.index(row.key) < order.index(key))


def best(rows: list[Row]) -> Row:
    """The fastest of ``rows``, or the first if none could run."""
    timed = [(row.timing.rate, index) for index, row in enumerate(rows) if row.timing is not None]
    return rows[max(timed)[1]] if timed else rows[0]


def find(rows: list[Row], key: str) -> Timing | None:
    """The timing of contender ``key`` in ``rows``, if it ran."""
    return next((row.timing for row in rows if row.key == key), None)


def describe(result: Result) -> str:
    return f"n/a: {result.reason}" if isinstance(result, NotAvailable) else ""


def chunk_note(tried: list[Row]) -> str:
    """Say what each chunksize gave, so the best one is seen to be best."""
    parts = [
        f"{row.chunksize}: "
        + (f"{row.timing.rate:,.0f} items/s" if row.timing else describe(row.result))
        for row in tried
    ]
    return "ProcessPoolExecutor.map chunksizes tried: " + "; ".join(parts) + "."
