"""A task group that fails fast and raises the first error as itself.

A pipeline's stages, and the calls inside a concurrent stage, all stop on
the first failure. anyio's task group would report every failure that races
in behind it, wrapped in an ``ExceptionGroup``; users asked for the original
exception, of its own type, so this group keeps the first and cancels the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import anyio
import anyio.abc

T = TypeVar("T")


class FailFastGroup:
    """Run tasks together; the first to raise cancels the others and is re-raised alone.

    Cancellation from outside still propagates as cancellation.
    """

    __slots__ = ("_first", "_group")

    def __init__(self) -> None:
        """Create a group; enter it with ``async with``."""
        self._group: anyio.abc.TaskGroup = anyio.create_task_group()
        self._first: Exception | None = None

    async def __aenter__(self) -> Self:
        """Open the underlying task group."""
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Wait for every task, then raise the first failure, if any."""
        await self._group.__aexit__(exc_type, exc, tb)
        if self._first is not None:
            first, self._first = self._first, None
            raise first

    def cancel(self) -> None:
        """Cancel every task in the group."""
        self._group.cancel_scope.cancel()

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` in the group."""
        self._group.start_soon(self._guard, fn, args)

    async def _guard(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await fn(*args)
        except Exception as exc:  # noqa: BLE001 - kept, and raised by __aexit__
            if self._first is None:
                self._first = exc
            self._group.cancel_scope.cancel()


class _Outcome(Protocol):
    def cancelled(self) -> bool: ...
    def exception(self) -> BaseException | None: ...


def retrieve_outcome(future: _Outcome) -> None:
    """Fetch a finished future's exception so that it is not reported as lost.

    For futures no one awaits any more: work cut short by a cancelled run,
    whose outcome no longer concerns anyone. A done callback.
    """
    if not future.cancelled():
        future.exception()


USER_CLEANUP_GRACE = 10.0
"""Seconds a cancelled user coroutine may spend in its cleanup before the run stops waiting."""


async def call_user(awaitable: Awaitable[T]) -> T:
    """Await a user's coroutine with asyncio's cancellation semantics.

    anyio cancels level-triggered: inside a cancelled scope every ``await``
    is cancelled again, so a user's ``finally: await conn.close()`` would be
    cut short. asyncio code expects one ``CancelledError`` and then room to
    clean up. So the user's code runs in a task of its own, shielded from
    the repeated cancellation, is cancelled once, and is given
    `USER_CLEANUP_GRACE` seconds to finish its cleanup.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        with anyio.CancelScope(shield=True), anyio.move_on_after(USER_CLEANUP_GRACE):
            await asyncio.wait([task])
        if task.done():
            retrieve_outcome(task)  # the run is being cancelled anyway
        raise
