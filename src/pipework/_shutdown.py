"""Stopping a run gracefully: stop taking input, finish what is in flight, return the report."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol


class StopSignal(Protocol):
    """Anything a run can watch for a graceful stop: an `asyncio.Event` or an `anyio.Event`."""

    def is_set(self) -> bool:
        """Whether the stop was asked for."""
        ...

    def wait(self) -> Awaitable[Any]:
        """Wait until the stop is asked for."""
        ...


@contextlib.asynccontextmanager
async def stop_on_signals(
    *signals: signal.Signals,
) -> AsyncIterator[asyncio.Event]:
    """Turn the first SIGINT or SIGTERM into a graceful stop, and a second one into cancellation.

    Pass the event it yields to `Pipeline.run` as ``stop=``. On the first
    signal the run stops taking input, finishes the items in flight and
    returns its report; on a second, the task inside the block is cancelled,
    which kills any process work at once. The loop's previous handlers for
    these signals are removed when the block ends. Unix only, as asyncio's
    signal handling is.

    Example::

        async with pipework.stop_on_signals() as stop:
            report = await pipeline.run(stop=stop)

    :param signals: the signals to handle; SIGINT and SIGTERM if none are given
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    event = asyncio.Event()
    chosen = signals or (signal.SIGINT, signal.SIGTERM)

    def on_signal() -> None:
        if event.is_set() and task is not None:
            task.cancel()
        event.set()

    for signum in chosen:
        loop.add_signal_handler(signum, on_signal)
    try:
        yield event
    finally:
        for signum in chosen:
            loop.remove_signal_handler(signum)
