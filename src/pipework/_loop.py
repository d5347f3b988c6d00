"""Starting an event loop for a program: `pipework.run_main`, on uvloop when it is installed.

pipework itself runs on whatever loop is running; it never installs one (no
``uvloop.install()``, no event loop policy), because the loop belongs to the
program, not to a library it imports (design D18). `run_main` is for the program:
it hands `asyncio.Runner` a loop factory, so the choice of loop holds for that
one call and leaves nothing behind in the process.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar, TypeVarTuple, Unpack

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

LoopName = Literal["auto", "uvloop", "asyncio"]
"""The loops `run_main` knows by name: ``auto`` is uvloop when it can be imported, else asyncio."""

LOOP_NAMES: tuple[LoopName, ...] = ("auto", "uvloop", "asyncio")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

_NO_UVLOOP = (
    "loop='uvloop' needs uvloop, which is not installed here "
    "(pip install 'pipework[uvloop]'; it has no Windows build)"
)


def run_main(
    main: Callable[[Unpack[Ts]], Coroutine[Any, Any, T]],
    *args: *Ts,
    loop: LoopName | LoopFactory = "auto",
    debug: bool | None = None,
) -> T:
    """Run ``main(*args)`` on a new event loop, uvloop when installed, and return its result.

    This is `asyncio.run` with a choice of loop, for the top of a program. uvloop
    speeds up the event loop's own work: sockets, callbacks and futures, which is
    where async stages (an HTTP fetch with many requests in flight) and inline
    stages spend their time. It changes nothing inside worker processes.

    The choice holds for this call only: no event loop policy is installed, so
    other code in the process, and a later `asyncio.run`, still get asyncio's
    default loop. ``main`` is a coroutine *function*, called only once the loop
    is chosen, so a bad choice raises before any coroutine exists.

    :param main: the coroutine function to run, as in ``asyncio.run(main(*args))``
    :param args: positional arguments for ``main``
    :param loop: ``"auto"`` (the default) runs on uvloop if it can be imported,
        and on asyncio's default loop if not; ``"uvloop"`` and ``"asyncio"``
        insist on one; a callable is used as the loop factory itself, for another
        loop (``winloop.new_event_loop``) or a subclass of your own
    :param debug: turn asyncio's debug mode on or off, as in `asyncio.run`
    :return: what ``main(*args)`` returns
    :raises ModuleNotFoundError: if ``loop="uvloop"`` and uvloop is not installed
    :raises ValueError: if ``loop`` is neither a known name nor a callable
    :raises RuntimeError: if called while an event loop is running in this thread;
        ``await main(*args)`` there instead

    Example::

        import pipework

        async def main(count: int) -> int:
            report = await pipework.Pipeline(range(count)).map(str).run()
            return report.stages[-1].items_out

        if __name__ == "__main__":
            print(pipework.run_main(main, 1000))                   # uvloop if installed
            print(pipework.run_main(main, 1000, loop="asyncio"))   # asyncio's own loop
    """
    factory = loop_factory(loop)
    if _loop_is_running():
        raise RuntimeError(
            "pipework.run_main() cannot be called while an event loop is running; "
            "await the coroutine instead"
        )
    with asyncio.Runner(loop_factory=factory, debug=debug) as runner:
        return runner.run(main(*args))


def loop_factory(loop: LoopName | LoopFactory) -> LoopFactory:
    """Resolve a `run_main` ``loop=`` argument to the factory that makes the loop."""
    if callable(loop):
        return loop
    if loop == "asyncio":
        return _asyncio_loop
    if loop not in LOOP_NAMES:
        names = ", ".join(repr(name) for name in LOOP_NAMES)
        raise ValueError(f"loop must be one of {names} or a loop factory, not {loop!r}")
    try:
        import uvloop  # noqa: PLC0415 - optional, and imported only by those who run on it
    except ImportError as missing:
        if loop == "auto":
            return _asyncio_loop
        raise ModuleNotFoundError(_NO_UVLOOP, name="uvloop") from missing
    return uvloop.new_event_loop


def running_loop_name() -> str:
    """Name the running loop by its package: ``"asyncio"``, ``"uvloop"``, or another's."""
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


def _asyncio_loop() -> asyncio.AbstractEventLoop:
    # asyncio's default loop class, made directly rather than through the
    # policy, so "asyncio" means asyncio's loop even where a policy was set.
    if sys.platform == "win32":
        return asyncio.ProactorEventLoop()
    return asyncio.SelectorEventLoop()


def _loop_is_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
