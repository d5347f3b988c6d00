"""Pieces every map-like stage shares: binding setup state, settling failures, shaping outputs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeAlias

import anyio

from .._errors import cancelled_by_code
from .._model._specs import MapSpec
from .._observe._report import StageStats
from .._packet import Packet
from .._tasks import being_cancelled
from .._worker._ops import Op, refuse_awaitables
from ._policy import LEFT_STREAM, RUN_OBSERVER, ItemObserver, Policy

# What one try over a run of items gives: the shaped results of the items
# before the first that failed, and that failure, ``(position, exception)``.
Step: TypeAlias = tuple[list[Any], tuple[int, Exception] | None]


async def bind(spec: MapSpec, label: str) -> Callable[[Any], Any]:
    """Return the stage's function, with its ``setup`` state bound first if it has one.

    For inline and async stages there is one "worker", the event loop, so
    setup runs once per run. It runs in a thread, because loading a model
    must not stall the loop that serves everything else.
    """
    if spec.setup is None:
        return spec.fn
    try:
        try:
            state = await anyio.to_thread.run_sync(spec.setup)
        except asyncio.CancelledError as exc:
            if being_cancelled():
                raise
            raise cancelled_by_code(exc, "setup") from exc
    except Exception as exc:
        exc.add_note(f"pipework: in the setup of stage {label}")
        raise
    return partial(spec.fn, state)


def policy_of(spec: MapSpec, label: str, stats: StageStats) -> Policy:
    """Return the stage's failure policy for this run, with the run's observer if it has one."""
    return Policy(
        label, retry=spec.retry, errors=spec.errors, stats=stats, observer=RUN_OBSERVER.get()
    )


async def run_with_policy(
    op: Op,
    packet: Packet[Any],
    attempt: Callable[[Packet[Any]], Awaitable[Step]],
    policy: Policy,
    label: str,
) -> Packet[Any]:
    """Run ``packet`` through ``attempt`` until every item has a result or is settled.

    A failed item is retried or dropped as the policy says (or the policy
    raises); the items after it are then tried again from there, so one bad
    item costs its chunk neither its place nor the results around it.
    """
    parts: list[Packet[Any]] = []
    tries: dict[int, int] = {}
    rest = packet
    observer = None if op == "map" else policy.observer
    while len(rest):
        results, fault = await attempt(rest)
        done = rest if fault is None else rest.slice(0, fault[0])
        if observer is not None:
            _tell_shape(observer, op, done, results, label)
        if fault is None:
            parts.append(finish(op, rest, results, label))
            break
        position, error = fault
        if position:
            parts.append(finish(op, done, results, label))
        index = rest.index[position]
        tries[index] = tries.get(index, 0) + 1
        again = await policy.settle(error, index, rest.items[position], tries[index])
        rest = rest.slice(position if again else position + 1, len(rest))
    parts = [part for part in parts if len(part)]
    return Packet.concat(parts) if parts else Packet(range(0), [])


async def run_whole_with_policy(
    packet: Packet[Any],
    attempt: Callable[[Packet[Any]], Awaitable[Step]],
    policy: Policy,
    label: str,
) -> Packet[Any]:
    """Run a batch function over ``packet``: it succeeds or fails as one.

    A failure cannot be pinned on one item, so a retry tries the whole packet
    again, and a failure for good fails every item in it.
    """
    tries = 0
    while True:
        results, fault = await attempt(packet)
        if fault is None:
            return finish("map_batches", packet, results, label)
        tries += 1
        if not await policy.settle_all(fault[1], packet.index, packet.items, tries):
            return Packet(range(0), [])


def finish(op: Op, packet: Packet[Any], results: list[Any], label: str) -> Packet[Any]:
    """Turn a chunk's shaped results into the packet the stage puts on its output."""
    if op in ("map", "map_batches"):
        if (error := refuse_awaitables(op, results)) is not None:
            raise _named(error, label)
        return Packet(packet.index, results)
    if op == "filter":
        kept = [i for i, keep in enumerate(results) if keep]
        if len(kept) == len(results):
            return packet
        if (left := LEFT_STREAM.get()) is not None:
            for i, keep in enumerate(results):
                if not keep:
                    left(packet.index[i])
        return Packet([packet.index[i] for i in kept], [packet.items[i] for i in kept])
    index = [i for i, out in zip(packet.index, results, strict=True) for _ in out]
    return Packet(index, [x for out in results for x in out])


def _tell_shape(
    observer: ItemObserver, op: Op, packet: Packet[Any], results: list[Any], label: str
) -> None:
    """Tell the run's observer which items a filter dropped or a flat_map multiplied."""
    for index, result in zip(packet.index, results, strict=True):
        count = len(result) if op == "flat_map" else int(result)
        if count != 1:
            observer.reshaped(index, count, label)


def _named(error: TypeError, label: str) -> TypeError:
    return TypeError(f"stage {label}: {error}")
