"""The options of the stages that run a function, declared once for every method that takes them.

`Pipeline.map`, ``filter``, ``flat_map`` and ``map_batches`` each have
overloads (async or not, with ``setup`` or not) so that types flow from the
function to the pipeline. The options are the same across them, so each set
is a `TypedDict` here, taken as ``**options: Unpack[...]``: one place to add
an option, and to read which stage kinds take it. Defaults and meanings are
documented once, on `Pipeline.map`.
"""

from __future__ import annotations

from typing import TypedDict

from ._policy import ErrorHandler, Retry
from ._specs import On


class StageOptions(TypedDict, total=False):
    """What every stage that runs a function takes: failure policy, order, buffer, name."""

    ordered: bool
    retry: int | Retry | None
    errors: ErrorHandler
    timeout: float | None
    buffer: int | None
    name: str | None
    max_in_flight: int | None


class AsyncOptions(StageOptions, total=False):
    """An async stage's: how many calls are in flight."""

    concurrency: int | None


class PlacedOptions(StageOptions, total=False):
    """A stage that may run on threads or processes: where, and on how many."""

    on: On
    workers: int | None


class WorkerOptions(PlacedOptions, total=False):
    """A map, filter or flat_map on threads or processes: in what chunks, too."""

    chunksize: int | None
    chunk_time: float | None


class AnyOptions(AsyncOptions, WorkerOptions, total=False):
    """A stage whose function may be either kind (a filter's predicate)."""


class AsyncBatchOptions(AsyncOptions, total=False):
    """An async batch function's: its batches are made by size and wait, not chunked."""

    max_wait: float | None


class WorkerBatchOptions(PlacedOptions, total=False):
    """A batch function's on threads or processes: the batch is the chunk."""

    max_wait: float | None
