"""Async stages: a coroutine function, with a bounded number of calls in flight."""

from __future__ import annotations

from time import perf_counter
from typing import Any

import anyio

from .._batch import Batch
from .._channel import Channel
from .._errors import ItemTimeoutError
from .._ops import shape
from .._report import StageStats
from .._specs import MapSpec
from .._tasks import call_user
from ._common import Step, bind, policy_of, settle
from ._window import Window


async def run_async(
    spec: MapSpec, label: str, inp: Channel[Any], out: Channel[Any], stats: StageStats
) -> None:
    """Run one call per item, ``spec.concurrency`` at a time."""
    call = await bind(spec, label)
    op, timeout = spec.op, spec.timeout
    policy = policy_of(spec, label, stats)

    async def attempt(batch: Batch[Any]) -> Step:
        start = perf_counter()
        try:
            with anyio.move_on_after(timeout) as scope:
                return [shape(op, await call_user(call(batch.items[0])))], None
        except Exception as exc:  # noqa: BLE001 - settled by the stage's policy
            return [], (0, exc)
        finally:
            stats.busy += perf_counter() - start
        assert scope.cancelled_caught  # noqa: S101 - the only way past the return
        return [], (0, _timed_out(timeout or 0.0))

    async def job(batch: Batch[Any]) -> Batch[Any]:
        return await settle(op, batch, attempt, policy, label)

    # Ordered output may hold finished calls behind a slow one; twice the
    # concurrency in the window lets the others keep working meanwhile.
    window = Window(
        inp,
        out,
        job,
        running=spec.concurrency,
        window=2 * spec.concurrency,
        ordered=spec.ordered,
        chunk=lambda: 1,
        stats=stats,
    )
    await window.run()


def _timed_out(timeout: float) -> ItemTimeoutError:
    # The call was cancelled, as asyncio code expects, and its cleanup ran.
    return ItemTimeoutError(
        f"an item ran longer than its timeout of {timeout} s", timeout=timeout, position=0
    )
