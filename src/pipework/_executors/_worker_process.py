"""One worker process of a supervised pool: how it starts, how it is reaped, and its end told.

`SupervisedPool` decides when workers start, retire and are replaced; this
module does the part that touches the operating system, so that the pool's
module reads as the policy it is.
"""

from __future__ import annotations

import asyncio
import multiprocessing.context
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio

from .._worker._tracker import Tracker
from ._child import serve
from ._wire import FrameProtocol

# How long a worker that was asked to exit gets before it is killed.
EXIT_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """How to start and keep the workers of one pool."""

    workers: int
    context: multiprocessing.context.BaseContext
    initializer: Callable[..., Any] | None = None
    initargs: tuple[Any, ...] = ()
    max_tasks: int | None = None
    max_memory: int | None = None


class PendingCall:
    """A call to a worker, from when it is made until its future is resolved."""

    __slots__ = (
        "clock_from",
        "frame",
        "future",
        "sent_at",
        "timed_out",
        "timeout",
        "timer",
        "tracked",
    )

    def __init__(
        self, frame: bytes, future: asyncio.Future[Any], *, tracked: bool, timeout: float | None
    ) -> None:
        self.frame = frame
        self.future = future
        self.tracked = tracked
        self.timeout = timeout
        self.sent_at = 0.0  # when it went to its worker
        self.clock_from = 0.0  # when its timeout began: once the worker was ready
        self.timer: asyncio.TimerHandle | None = None
        self.timed_out = False


class Worker:
    """One worker process, its socket, and the call it runs, if any."""

    __slots__ = ("call", "calls_done", "process", "protocol", "ready", "retiring", "tracker")
    protocol: FrameProtocol  # set once its socket is connected, before any call is sent

    def __init__(self, process: Any, tracker: Tracker) -> None:
        self.process = process
        self.tracker = tracker
        self.call: PendingCall | None = None
        self.calls_done = 0
        self.ready = False
        self.retiring = False


async def start_worker(
    options: PoolOptions,
    on_frame: Callable[[Worker, bytes | bytearray], None],
    on_lost: Callable[[Worker], None],
) -> Worker:
    """Start one worker process, its socket read by the running loop; it says when it is ready."""
    tracker = Tracker(options.context)
    ours, theirs = socket.socketpair()
    process = options.context.Process(  # type: ignore[attr-defined]
        target=serve,
        args=(theirs, os.getpid(), tracker, options.initializer, options.initargs),
        kwargs={"measure_memory": options.max_memory is not None},
        name="pipework-worker",
    )
    worker = Worker(process, tracker)

    def protocol() -> FrameProtocol:
        return FrameProtocol(partial(on_frame, worker), partial(on_lost, worker))

    # A start cannot be taken back, so it runs to its end even when this task
    # is cancelled (asyncio's own cancel goes through anyio's shield); then a
    # cancelled start stops the process it made, and nothing outlives it.
    starting = asyncio.ensure_future(anyio.to_thread.run_sync(_start, process))
    cancelled = await _wait_out(starting)
    theirs.close()
    if cancelled:
        ours.close()
        if starting.exception() is None:
            _stop(process)
        raise asyncio.CancelledError
    try:
        await starting  # done: it returns at once, or raises the start's error
    except BaseException:
        ours.close()  # no process: nobody else will close our end
        # The future holds the error, whose traceback holds this frame: let go
        # of it, so the failed process and its pipes are freed with the error.
        del starting
        raise
    try:
        loop = asyncio.get_running_loop()
        _, worker.protocol = await loop.connect_accepted_socket(protocol, ours)
    except BaseException:
        ours.close()  # no transport took it; closing twice is harmless
        _stop(process)
        raise
    return worker


async def _wait_out(future: asyncio.Future[Any]) -> bool:
    """Wait until ``future`` is done, through any cancellation; return whether one came."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled = True
        except Exception:  # noqa: BLE001 - the caller reads the future's exception
            break
    return cancelled


def _start(process: Any) -> None:
    process.start()
    _serialize_polls(process)


def _serialize_polls(process: Any) -> None:
    """Let only one thread at a time ask ``process`` for its exit status.

    Under forkserver the status is 8 bytes on a pipe, and two threads that
    poll at once both see the pipe readable: one reads the status, the other
    reads the end of the pipe and records 255 over it. Polls do come at once:
    every ``Process.start()`` polls all live children from the thread that
    starts a replacement, while the loop reaps the worker that died. The lock
    is taken only for a poll, which does not block once the pipe is readable.
    Polls of a process begin only once it has started, so this is in place
    before the first one that matters.
    """
    popen = process._popen  # noqa: SLF001 - the object every exitcode and join asks
    poll = popen.poll
    lock = threading.Lock()

    def locked_poll(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return poll(*args, **kwargs)

    popen.poll = locked_poll


def _stop(process: Any) -> None:
    # SIGKILL, then a join that takes a few milliseconds: done here, on the
    # loop, since a cancelled task may not wait on a thread again.
    process.kill()
    process.join()
    process.close()


async def reap(process: Any) -> int | None:
    """Wait for a process whose socket has closed to exit, killing it past the grace time."""
    # The exit status arrives a moment after the socket closes; there is
    # no portable way to be told, so look for it a few times.
    deadline = time.monotonic() + EXIT_GRACE
    while process.exitcode is None and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.002)
    if process.exitcode is None:
        process.kill()
        await anyio.to_thread.run_sync(process.join)
    return process.exitcode  # type: ignore[no-any-return]


def position(tracker: Tracker, call: PendingCall) -> int | None:
    """Where in its chunk a tracked call's worker was, if it had begun the call."""
    if not call.tracked:
        return None
    position, started = tracker.read()
    return position if started >= call.sent_at and position >= 0 else None


def death(exitcode: int | None) -> str:
    """Say how a process ended, for an error message: its signal, or its exit code."""
    if exitcode is None:
        return "died"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def join_all(processes: list[Any]) -> None:
    """Wait for every process to exit, together within the grace time, then kill the rest."""
    deadline = time.monotonic() + EXIT_GRACE
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.exitcode is None:
            process.kill()
            process.join()
