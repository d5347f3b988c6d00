"""Progress while a run runs: ``progress=True``, or ``progress=callable``.

A task beside the run takes a `Snapshot` at an interval and shows it. It
reads counters the stages keep anyway, so it adds no work per item, and a
tick costs the loop some microseconds per stage. Three displays:

- on a terminal, with rich installed (``pipework[progress]``), a table of
  one line per stage, redrawn in place, left on screen as the summary;
- anywhere else (a pipe, a CI log, ``nohup``, or a terminal without rich),
  plain lines now and then, and a last block at the end, with no control codes;
- a callable given as ``progress=``, called with each snapshot and once at
  the end (``snapshot.done``), for an app's own display.

Progress writes to stderr, never to stdout, which belongs to the program.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TextIO, TypeAlias, TypeVar

import anyio

from .._tasks import FailFastGroup
from ._snapshot import Monitor, Snapshot
from ._words import plain_lines

T = TypeVar("T")

ProgressOption: TypeAlias = "bool | Callable[[Snapshot], object]"
"""What ``progress=`` takes: ``True`` for a display on stderr, or a callable fed snapshots."""

TERMINAL_INTERVAL = 0.25
"""Seconds between redraws of the terminal display: lively, and a few hundred µs a second."""

PLAIN_INTERVAL = 10.0
"""Seconds between plain blocks into a log: readable when a run lasts hours."""

PLAIN_TERMINAL_INTERVAL = 2.0
"""Seconds between plain blocks on a terminal without rich: a person is watching."""

CALLBACK_INTERVAL = 1.0
"""Seconds between calls of a ``progress=`` callable."""

logger = logging.getLogger("pipework.progress")


class Display(Protocol):
    """Shows snapshots: ``show`` at each tick, ``end`` once with the last one."""

    interval: float

    async def show(self, snapshot: Snapshot) -> None:
        """Show a snapshot taken while the run goes on."""

    async def end(self, snapshot: Snapshot) -> None:
        """Show the run's last snapshot, and leave it there."""


async def with_progress(progress: ProgressOption, monitor: Monitor, run: Awaitable[T]) -> T:
    """Await ``run`` while ``progress`` shows what ``monitor`` sees; see the module docstring.

    A callable that raises stops the run, as a failing stage would: it is
    the caller's code, and its bug should be seen, not logged away.
    """
    if progress is False:
        return await run
    display = display_for(progress)
    outcome: list[T] = []

    async def work() -> None:
        outcome.append(await run)
        group.cancel()  # the ticker: nothing more to show

    failed = True
    try:
        async with FailFastGroup() as group:
            group.spawn(work)
            group.spawn(_tick, display, monitor)
        failed = False
    finally:
        monitor.finished()
        with anyio.CancelScope(shield=True):
            try:
                await display.end(monitor.snapshot())
            except Exception:
                if not failed:
                    raise
                logger.exception("the progress display failed at the end of a failed run")
    return outcome[0]


async def _tick(display: Display, monitor: Monitor) -> None:
    while True:
        await asyncio.sleep(display.interval)
        await display.show(monitor.snapshot())


def check_progress(progress: object) -> None:
    """Refuse a ``progress=`` that is neither a bool nor a callable, before anything runs.

    :raises TypeError: for anything else, such as ``"yes"`` or ``None``
    """
    if not (isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress= must be True, False or a callable, not {progress!r}")


def display_for(
    progress: ProgressOption, stream: TextIO | None = None, *, terminal: bool | None = None
) -> Display:
    """Choose the display for ``progress``: its callable, rich on a terminal, or plain lines.

    ``stream`` (stderr by default) and ``terminal`` (whether it is one) are
    for tests.
    """
    check_progress(progress)
    if callable(progress):
        return Callback(progress)
    out = stream if stream is not None else sys.stderr
    if terminal is None:
        terminal = _isatty(out)
    if terminal and importlib.util.find_spec("rich") is not None:
        from ._rich import RichDisplay  # noqa: PLC0415 - rich is imported only when shown

        return RichDisplay(out, TERMINAL_INTERVAL)
    return Plain(out, PLAIN_TERMINAL_INTERVAL if terminal else PLAIN_INTERVAL)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a stand-in without it, or a closed file
        return False


class Callback:
    """Hands each snapshot to the user's callable, awaiting what it returns if it is awaitable."""

    def __init__(
        self, fn: Callable[[Snapshot], object], interval: float = CALLBACK_INTERVAL
    ) -> None:
        """Call ``fn`` every ``interval`` seconds, and once at the end."""
        self._fn = fn
        self.interval = interval

    async def show(self, snapshot: Snapshot) -> None:
        """Call the callable with a snapshot."""
        result: Any = self._fn(snapshot)
        if inspect.isawaitable(result):
            await result

    async def end(self, snapshot: Snapshot) -> None:
        """Call the callable with the last snapshot (``snapshot.done`` is true)."""
        await self.show(snapshot)


class Plain:
    """Writes a block of plain lines, one per stage, at each tick and at the end."""

    def __init__(self, out: TextIO, interval: float) -> None:
        """Write to ``out`` every ``interval`` seconds."""
        self._out = out
        self.interval = interval

    async def show(self, snapshot: Snapshot) -> None:
        """Write the snapshot's lines."""
        self._out.write("\n".join(plain_lines(snapshot)) + "\n")
        self._out.flush()

    async def end(self, snapshot: Snapshot) -> None:
        """Write the last snapshot's lines."""
        await self.show(snapshot)
