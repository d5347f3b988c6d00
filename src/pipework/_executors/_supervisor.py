"""A pool of worker processes that the event loop drives, and that outlives its workers.

Why not `concurrent.futures.ProcessPoolExecutor`:

- **Cost.** Each of its calls crosses three threads in the parent (a feeder,
  a manager, and the loop's callback), about 0.3-0.6 ms of parent CPU. Here
  the loop reads each worker's socket itself (`_wire.FrameProtocol`), and a
  reply sends the next waiting call from the same callback.
- **Survival.** One dead worker breaks that pool for good, and every call in
  it fails. Here only the call the dead worker was running fails, with
  `WorkerDiedError`; a new worker takes its place. Workers that die as they
  start, again and again, break the pool with `WorkerStartError` instead of
  being restarted forever.
- **Control.** A call can have a timeout per item: the worker that overruns
  is killed, and the call fails with `ItemTimeoutError`. Cancelling a call
  kills the worker that runs it. Workers can be recycled after a number of
  calls or past a memory limit, between calls, so nothing is lost.

Each worker runs one call at a time; calls wait in the parent, in order,
for a free worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import signal
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from .._errors import (
    MAIN_GUARD_NOTE,
    ItemTimeoutError,
    RemoteTraceback,
    UnpicklableError,
    WorkerDiedError,
    WorkerStartError,
)
from .._tasks import retrieve_outcome
from ._wire import Call, Ready, Reply, StartFailed
from ._worker_process import (
    PendingCall,
    PoolOptions,
    Worker,
    death,
    join_all,
    position,
    reap,
    start_worker,
)

logger = logging.getLogger("pipework")

# Workers that die before they are ready, one after another, with no worker
# becoming ready in between: the pool is broken, not unlucky.
_START_FAILURES = 3
# Turns of the loop a closing pool waits for its aborted sockets to report.
_CLOSE_ROUNDS = 10


class SupervisedPool:
    """Worker processes driven by the event loop; see the module docstring.

    Use it from one event loop: ``await start()``, then ``await call(...)``
    from any number of tasks, then ``await aclose(kill=...)``.
    """

    def __init__(self, options: PoolOptions) -> None:
        """Prepare the pool; `start` starts its workers."""
        self._options = options
        self._loop = asyncio.get_running_loop()
        self._workers: set[Worker] = set()
        self._idle: list[Worker] = []
        self._pending: deque[PendingCall] = deque()
        self._start_failures = 0
        self._start_error: BaseException | None = None
        self._broken_by = f"{_START_FAILURES} in a row died starting"
        self._broken = False
        self._accepting = True  # false once closing: no new calls
        self._closing = False  # true once the calls are done: no new workers
        self._background: set[asyncio.Task[None]] = set()

    @property
    def broken(self) -> bool:
        """Whether workers cannot start, so every call fails with `broken_error`."""
        return self._broken

    @property
    def capacity(self) -> int:
        """How many calls run at once: the number of workers."""
        return self._options.workers

    async def start(self) -> None:
        """Start every worker; calls made meanwhile go to the first to start.

        :raises Exception: whatever kept the first worker from starting at all
        """
        spawning = self._in_background(self._spawn(self._options.workers))
        try:
            # Shielded: a cancel passed on to the spawning would interrupt a
            # process half-started in its thread, and the run would end with
            # the fork server's EOFError instead of its cancellation.
            await asyncio.shield(spawning)
        except BaseException:
            # Nobody holds the pool yet, so nobody else would stop the workers
            # that did start.
            await self.aclose(kill=True)
            raise

    async def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        tracked: bool = False,
        item_timeout: float | None = None,
    ) -> Any:
        """Run ``fn(*args)`` in a worker and return its result, or raise its exception.

        ``fn`` must be picklable by reference (a module-level function).
        ``tracked`` passes the worker's `Tracker` as ``tracker=``, for calls
        that run items one by one; ``item_timeout`` then limits each item.

        :raises WorkerDiedError: if the worker died during the call; it has been replaced
        :raises ItemTimeoutError: if an item overran ``item_timeout``; its worker was killed
        :raises WorkerStartError: if workers die as they start, so none can run the call
        """
        if self._broken:
            raise self.broken_error()
        if not self._accepting:
            raise RuntimeError("the pool is shut down")
        tracked = tracked or item_timeout is not None
        frame = pickle.dumps(Call(fn, args, tracked), protocol=5)
        call = PendingCall(frame, self._loop.create_future(), tracked=tracked, timeout=item_timeout)
        self._pending.append(call)
        self._dispatch()
        try:
            return await call.future
        except asyncio.CancelledError:
            self._abandon(call)
            raise

    def cancel_pending(self) -> None:
        """Cancel the calls that wait for a worker; those running go on."""
        for call in self._pending:
            call.future.cancel()
        self._pending.clear()

    async def aclose(self, *, kill: bool) -> None:
        """Stop every worker. ``kill`` stops them at once, else they finish their calls first.

        Returns once every worker process has exited, even if cancelled.
        """
        self._accepting = False
        try:
            if not kill:
                # Workers that die meanwhile are still replaced, so this ends.
                waiting = [c.future for c in self._pending] + [
                    w.call.future for w in self._workers if w.call is not None
                ]
                if waiting:
                    await asyncio.wait(waiting)
        except BaseException:
            kill = True
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await self._stop(kill=kill)

    async def _stop(self, *, kill: bool) -> None:
        self._closing = True
        self.cancel_pending()
        await self._join_background()  # a worker being started joins, then goes
        workers = list(self._workers)
        for worker in workers:
            if kill or worker.call is not None:
                worker.process.kill()
            else:
                self._retire(worker, replace=False)
        await anyio.to_thread.run_sync(join_all, [w.process for w in workers])
        # Every worker has exited; close the sockets whose end the loop has
        # not read yet, so none outlives the pool, and hear of it now.
        for worker in workers:
            if worker.protocol.transport is not None:
                worker.protocol.transport.abort()
        for _ in range(_CLOSE_ROUNDS):
            if not self._workers:
                break
            await asyncio.sleep(0)  # connection_lost comes on the next turn of the loop
        await self._join_background()

    async def _join_background(self) -> None:
        while self._background:
            await asyncio.wait(list(self._background))

    # Sending calls ----------------------------------------------------------

    def _dispatch(self) -> None:
        while self._pending and self._idle:
            call = self._pending.popleft()
            if call.future.done():  # cancelled while it waited
                continue
            self._send(self._idle.pop(), call)

    def _send(self, worker: Worker, call: PendingCall) -> None:
        # A worker that is still starting takes the call at once, so that it
        # runs as soon as the worker is ready; its clock starts only then.
        worker.call = call
        call.sent_at = time.monotonic()
        worker.protocol.send(call.frame)
        if worker.ready:
            self._start_clock(worker, call)

    def _start_clock(self, worker: Worker, call: PendingCall) -> None:
        # ``timeout=`` limits an item's own run, never a worker's start or
        # its setup: a clock started at sending would kill a worker in setup
        # again and again, and no item would ever run.
        if call.timeout is not None:
            call.clock_from = time.monotonic()
            call.timer = self._loop.call_later(call.timeout, self._check_time, worker, call)

    def _check_time(self, worker: Worker, call: PendingCall) -> None:
        if worker.call is not call or call.timeout is None:
            return
        _, started = worker.tracker.read()
        began = max(started, call.clock_from)
        overrun = time.monotonic() - began
        if overrun < call.timeout:
            call.timer = self._loop.call_later(
                call.timeout - overrun, self._check_time, worker, call
            )
            return
        call.timed_out = True
        worker.process.kill()

    def _abandon(self, call: PendingCall) -> None:
        # A call whose caller is gone: cancelling process work means killing it.
        for worker in self._workers:
            if worker.call is call:
                worker.process.kill()
                return

    # Hearing from workers ---------------------------------------------------

    def _on_frame(self, worker: Worker, frame: bytes | bytearray) -> None:
        try:
            message: Reply | Ready | StartFailed = pickle.loads(frame)
        except BaseException as exc:  # noqa: BLE001 - a reply the parent cannot read fails its call
            # Even SystemExit: unpickling runs the reply's own code, and
            # nothing it raises may stop the event loop that drives the pool.
            message = Reply(None, _unreadable(exc), None, 0)
        if isinstance(message, Ready):
            worker.ready = True
            self._start_failures = 0
            if worker.call is not None:
                self._start_clock(worker, worker.call)
            return
        if isinstance(message, StartFailed):
            # The initializer raised: every worker would fail the same way,
            # so the pool is broken now, as ProcessPoolExecutor's would be.
            self._start_error = message.error
            message.error.__cause__ = RemoteTraceback(message.traceback)
            logger.error(
                "a worker's initializer raised: the pool is broken", exc_info=message.error
            )
            self._broken_by = "the initializer raised"
            self._break()
            return
        call, worker.call = worker.call, None
        assert call is not None  # noqa: S101 - a worker answers only what it was sent
        if call.timer is not None:
            call.timer.cancel()
        if not call.future.done():
            if message.error is None:
                call.future.set_result(message.value)
            else:
                if message.traceback is not None:
                    message.error.__cause__ = RemoteTraceback(message.traceback)
                call.future.set_exception(message.error)
        worker.calls_done += 1
        if self._worn_out(worker, rss=message.rss):
            self._retire(worker, replace=True)
        else:
            self._idle.append(worker)
        self._dispatch()

    def _worn_out(self, worker: Worker, *, rss: int) -> bool:
        options = self._options
        return (options.max_tasks is not None and worker.calls_done >= options.max_tasks) or (
            options.max_memory is not None and rss > options.max_memory
        )

    def _retire(self, worker: Worker, *, replace: bool) -> None:
        # Between calls, so no work is lost: ask it to exit, and start another.
        worker.retiring = True
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        if not worker.protocol.send(b""):
            worker.process.kill()  # its connection is closing: it cannot be asked
        if replace and not self._closing:
            self._in_background(self._spawn(1))

    def _on_lost(self, worker: Worker) -> None:
        self._workers.discard(worker)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        if worker.retiring:
            self._in_background(reap(worker.process))
            return
        call, worker.call = worker.call, None
        if call is not None and (not worker.ready or self._never_began(worker, call)):
            # Not the call's fault: the worker died as it started, or before
            # it read the call (killed while it looked idle). Send it again,
            # unless the pool broke meanwhile or is closing, as the call would
            # then wait for ever.
            if call.future.done():  # its caller gave up meanwhile
                call = None
            elif self._broken:
                call.future.set_exception(self.broken_error())
                call = None
            elif not self._closing:
                self._pending.appendleft(call)
                call = None
        if not self._closing:
            self._in_background(self._spawn(1))
        self._in_background(self._bury(worker, call))

    @staticmethod
    def _never_began(worker: Worker, call: PendingCall) -> bool:
        # A worker marks each call it reads (see _child.serve); one whose
        # last mark is older than the call died before it read the call.
        _, began = worker.tracker.read()
        return began < call.sent_at

    async def _bury(self, worker: Worker, call: PendingCall | None) -> None:
        exitcode = await reap(worker.process)
        if not worker.ready and exitcode != -signal.SIGKILL:
            # It died of its own accord before it was ready: a failing
            # initializer, an import error, a script without a main guard. A
            # worker killed from outside as it started is bad luck, not that.
            self._start_failures += 1
            if self._start_failures >= _START_FAILURES:
                self._break()
        if not self._closing:  # a pool being closed kills its workers itself
            _log_death(worker.process.pid, exitcode, call)
        if call is None or call.future.done():
            return
        if call.timer is not None:
            call.timer.cancel()
        where = position(worker.tracker, call)
        if call.timed_out:
            error: Exception = ItemTimeoutError(
                f"an item ran longer than its timeout of {call.timeout} s; "
                f"its worker process {worker.process.pid} was killed",
                timeout=call.timeout or 0.0,
                position=where,
            )
        else:
            error = WorkerDiedError(
                f"worker process {worker.process.pid} {death(exitcode)} while it ran a call",
                exitcode=exitcode,
                position=where,
            )
        call.future.set_exception(error)

    def _break(self) -> None:
        if self._broken:
            return
        self._broken = True
        for call in self._pending:
            if not call.future.done():
                call.future.set_exception(self.broken_error())
        self._pending.clear()

    def broken_error(self) -> WorkerStartError:
        """Return why the pool is broken, as a new exception for each call.

        One object raised in many tasks would gather all their tracebacks.
        """
        error = WorkerStartError(
            f"worker processes could not start: {self._broken_by}"
            + ("; its error is the cause" if self._start_error else ""),
            exitcode=None,
        )
        error.__cause__ = self._start_error
        if self._start_error is None:  # they died with no word: most often, no main guard
            error.add_note(MAIN_GUARD_NOTE)
        return error

    # Starting and reaping workers ------------------------------------------

    async def _spawn(self, count: int) -> None:
        try:
            for _ in range(count):
                if self._closing or self._broken:
                    return
                await self._spawn_one()
        except Exception as exc:
            # No worker can start (the fork server is gone, say): fail the
            # calls that wait rather than leave them waiting for ever.
            self._start_error = exc
            self._broken_by = "a worker process could not be started"
            self._break()
            raise

    async def _spawn_one(self) -> None:
        worker = await start_worker(self._options, self._on_frame, self._on_lost)
        self._workers.add(worker)
        if self._closing:
            worker.process.kill()
            return
        self._idle.append(worker)
        self._dispatch()

    def _in_background(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = self._loop.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(retrieve_outcome)  # a failure is already passed to the calls
        return task


def _log_death(pid: int | None, exitcode: int | None, call: PendingCall | None) -> None:
    """Log a worker's death: a warning, unless it was killed for overrunning an item's timeout."""
    if call is not None and call.timed_out:
        logger.info("worker process %s was killed: an item overran its timeout", pid)
    elif call is not None:
        logger.warning(
            "worker process %s %s while it ran a call; a new worker replaces it, "
            "and the call's items are sent again",
            pid,
            death(exitcode),
        )
    else:
        logger.warning(
            "worker process %s %s while idle; a new worker replaces it", pid, death(exitcode)
        )


def _unreadable(exc: BaseException) -> Exception:
    # An exception is the call's own failure; anything else (SystemExit,
    # KeyboardInterrupt) is wrapped, so that it fails the call and no more.
    if isinstance(exc, Exception):
        return exc
    error = UnpicklableError(f"the reply of a worker could not be unpickled: {exc!r}")
    error.__cause__ = exc
    return error
