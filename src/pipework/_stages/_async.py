"""Async stages: a coroutine function, with a bounded number of calls in flight.

A stage function that is also an async context manager (it has
``__aenter__`` and ``__aexit__``) is entered when the stage starts and exited
when it ends, however it ends: it can hold a resource for the run, such as
the HTTP session of `pipework.http.fetch`, without the user managing it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any

import anyio

from .._channel import Channel, Sender
from .._errors import ItemTimeoutError
from .._model._checks import generator_kind
from .._model._specs import MapSpec
from .._observe._report import StageStats
from .._packet import Packet
from .._tasks import USER_CLEANUP_GRACE, as_item_failure, call_user
from .._worker._ops import batch_results, shape
from ._common import Step, bind, policy_of, run_whole_with_policy, run_with_policy
from ._window import Window


async def run_async(
    spec: MapSpec, label: str, inp: Channel[Any], out: Sender, stats: StageStats
) -> None:
    """Run one call per item (per batch, for a batch function), ``spec.concurrency`` at a time.

    A sync batch function without ``on=`` runs here too, on the loop, one
    batch at a time.
    """
    call = await bind(spec, label)
    op, timeout = spec.op, spec.timeout
    policy = policy_of(spec, label, stats)
    batched = op == "map_batches"
    concurrency = spec.concurrency if spec.mode == "async" else 1  # a sync function blocks
    streams = generator_kind(spec.fn) == "async generator"

    async def once(packet: Packet[Any]) -> Step:
        if batched:
            value = call(packet.items)
            if inspect.isawaitable(value):
                value = await call_user(value, "the batch function")
            return batch_results(value, len(packet))
        value = call(packet.items[0])
        if streams:  # an async generator function's flat_map: its items are the outputs
            return [await call_user(_collect(value), "the function")], None
        return [shape(op, await call_user(value, "the function"))], None

    async def attempt(packet: Packet[Any]) -> Step:
        start = perf_counter()
        try:
            if timeout is None:  # a scope per item costs more than some calls
                return await once(packet)
            with anyio.move_on_after(timeout):
                return await once(packet)
        except BaseException as exc:  # noqa: BLE001 - settled by the stage's policy
            # A CancelledError from a sync batch function is the item's too.
            return [], (0, as_item_failure(exc, "the function"))
        finally:
            stats.busy += perf_counter() - start
        return [], (0, _timed_out(timeout))  # the scope was cancelled: the only way past

    async def job(packet: Packet[Any]) -> Packet[Any]:
        if batched:
            return await run_whole_with_policy(packet, attempt, policy, label)
        return await run_with_policy(op, packet, attempt, policy, label)

    # Ordered output may hold finished calls behind a slow one; twice the
    # concurrency in the window lets the others keep working meanwhile.
    window = Window(
        inp,
        out,
        job,
        running=concurrency,
        window=2 * concurrency,
        ordered=spec.ordered,
        chunk=lambda: spec.max_size or 1,
        stats=stats,
        max_wait=spec.max_wait,
        limit=spec.max_in_flight,
    )
    async with held_for_the_stage(spec.fn):
        await window.run()


async def _collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


def _timed_out(timeout: float) -> ItemTimeoutError:
    # The call was cancelled, as asyncio code expects, and its cleanup ran.
    return ItemTimeoutError(
        f"an item ran longer than its timeout of {timeout} s", timeout=timeout, position=0
    )


@asynccontextmanager
async def held_for_the_stage(fn: object) -> AsyncIterator[None]:
    """Enter ``fn`` for the length of the stage if it is an async context manager.

    Its ``__aexit__`` runs after the last call has finished, shielded from the
    run's cancellation and given `USER_CLEANUP_GRACE` seconds, as any user
    cleanup is. Its ``__aenter__`` result is ignored: the stage calls ``fn``.
    """
    kind = type(fn)
    if not (hasattr(kind, "__aenter__") and hasattr(kind, "__aexit__")):
        yield
        return
    await call_user(kind.__aenter__(fn), "the stage function's __aenter__")
    try:
        yield
    except BaseException as exc:
        with anyio.move_on_after(USER_CLEANUP_GRACE, shield=True):
            await kind.__aexit__(fn, type(exc), exc, exc.__traceback__)
        raise
    with anyio.move_on_after(USER_CLEANUP_GRACE, shield=True):
        await kind.__aexit__(fn, None, None, None)
