"""Pieces every map-like stage shares: binding setup state, and shaping outputs."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from .._batch import Batch
from .._ops import Op
from .._specs import MapSpec


async def bind(spec: MapSpec, label: str) -> Callable[[Any], Any]:
    """Return the stage's function, with its ``setup`` state bound first if it has one.

    For inline and async stages there is one "worker", the event loop, so
    setup runs once per run. It runs in a thread, because loading a model
    must not stall the loop that serves everything else.
    """
    if spec.setup is None:
        return spec.fn
    try:
        state = await anyio.to_thread.run_sync(spec.setup)
    except Exception as exc:
        exc.add_note(f"pipework: in the setup of stage {label}")
        raise
    return partial(spec.fn, state)


def finish(op: Op, batch: Batch[Any], results: list[Any], label: str) -> Batch[Any]:
    """Turn a chunk's shaped results into the batch the stage puts on its output."""
    if op == "map":
        if results and inspect.isawaitable(results[0]):
            raise _awaitable_error(results, label)
        return Batch(batch.index, results)
    if op == "filter":
        kept = [i for i, keep in enumerate(results) if keep]
        if len(kept) == len(results):
            return batch
        return Batch([batch.index[i] for i in kept], [batch.items[i] for i in kept])
    index = [i for i, out in zip(batch.index, results, strict=True) for _ in out]
    return Batch(index, [x for out in results for x in out])


def _awaitable_error(results: list[Any], label: str) -> TypeError:
    for value in results:
        if inspect.iscoroutine(value):
            value.close()  # it will never run; closing it silences "never awaited"
    return TypeError(
        f"stage {label}: the function returned an awaitable; to await it, pass an "
        "async def function (a lambda cannot be async: define one with async def)"
    )
