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

from ._errors import cancelled_by_code, is_cancellation

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
            await _stray_is_failure(fn, args)
        except Exception as exc:  # noqa: BLE001 - kept, and raised by __aexit__
            if self._first is None:
                self._first = exc
            self._group.cancel_scope.cancel()


class JobGroup:
    """`FailFastGroup` for many short tasks, such as a stage's one task per item.

    anyio gives every task of its task groups a cancel scope and an event of
    its own (since 4.14), which costs a stage that starts a task per item more
    than the rest of its work on that item. Here each job is a plain asyncio
    task, and the group does what the task group would: the first job to raise
    cancels the others and the body (which runs in an anyio scope, so that
    its waits are cancelled the anyio way), and is raised as itself; leaving
    the block waits for every job; cancellation from outside cancels them.
    """

    __slots__ = ("_first", "_scope", "_tasks")

    def __init__(self) -> None:
        """Create a group; enter it with ``async with``."""
        self._scope = anyio.CancelScope()
        self._tasks: set[asyncio.Task[None]] = set()
        self._first: Exception | None = None

    async def __aenter__(self) -> Self:
        """Enter the group's scope: a failing job cancels what the body awaits."""
        self._scope.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Wait for every job, then raise the first failure, if any."""
        raised = None
        if exc is None:
            try:
                while self._tasks:
                    await asyncio.wait(self._tasks)
            except BaseException as error:  # noqa: BLE001 - cancelled: by a failed job, or from outside
                raised = exc = error
                exc_type, tb = type(error), error.__traceback__
        await self._cancel_all()
        handled = self._scope.__exit__(exc_type, exc, tb)
        if self._first is not None:
            first, self._first = self._first, None
            raise first
        if raised is not None and not handled:
            raise raised
        return bool(handled)

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` as a job of the group."""
        task = asyncio.get_running_loop().create_task(self._guard(fn, args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await _stray_is_failure(fn, args)
        except Exception as exc:  # noqa: BLE001 - kept, and raised by __aexit__
            if self._first is None:
                self._first = exc
                self._scope.cancel()
                for task in self._tasks:
                    if task is not asyncio.current_task():
                        task.cancel()

    async def _cancel_all(self) -> None:
        """Cancel the jobs still running and wait for them, whatever cancels this task."""
        if not self._tasks:
            return
        for task in self._tasks:
            task.cancel()
        with anyio.CancelScope(shield=True):
            while self._tasks:
                await asyncio.wait(self._tasks)


async def _stray_is_failure(fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
    # A task that ends with a CancelledError nobody asked for would end as
    # if cancelled, silently; in a group that fails fast, it is a failure.
    try:
        await fn(*args)
    except asyncio.CancelledError as exc:
        if being_cancelled():
            raise
        raise cancelled_by_code(exc) from exc


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


def being_cancelled() -> bool:
    """Whether the current task has been asked to cancel, so a ``CancelledError`` is its own.

    A ``CancelledError`` raised in a task that nobody cancelled came from
    user code: it awaited a future or a task that someone else cancelled, or
    raised one. That is a failure of the code, not a cancellation of the run
    (see `ItemCancelledError`). anyio's cancel scopes, asyncio's timeouts and
    ``Task.cancel`` all count in ``Task.cancelling``.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def as_item_failure(exc: BaseException, where: str) -> Exception:
    """Return ``exc`` as the failure of an item, or raise it if it is not one.

    An exception is; a ``CancelledError`` is when nobody cancelled this task
    (see `being_cancelled`), as `ItemCancelledError`; the cancellation of the
    run, ``SystemExit`` and ``KeyboardInterrupt`` are raised on.
    """
    if isinstance(exc, Exception):
        return exc
    if is_cancellation(exc) and not being_cancelled():
        return cancelled_by_code(exc, where)
    raise exc


async def call_user(awaitable: Awaitable[T], where: str = "") -> T:
    """Await a user's coroutine with asyncio's cancellation semantics.

    anyio cancels level-triggered: inside a cancelled scope every ``await``
    is cancelled again, so a user's ``finally: await conn.close()`` would be
    cut short. asyncio code expects one ``CancelledError`` and then room to
    clean up. So the user's code runs in a task of its own, shielded from
    the repeated cancellation, is cancelled once, and is given
    `USER_CLEANUP_GRACE` seconds to finish its cleanup.

    A ``CancelledError`` that the user's code raises when it was not
    cancelled comes out as `ItemCancelledError`, a failure like any other;
    ``where`` names the code in its message.
    """
    task = asyncio.get_running_loop().create_task(_as_own(awaitable, where))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        with anyio.CancelScope(shield=True), anyio.move_on_after(USER_CLEANUP_GRACE):
            await asyncio.wait([task])
        if task.done():
            retrieve_outcome(task)  # the run is being cancelled anyway
        raise


async def _as_own(awaitable: Awaitable[T], where: str) -> T:
    try:
        return await awaitable
    except asyncio.CancelledError as exc:
        if being_cancelled():
            raise
        raise cancelled_by_code(exc, where) from exc
