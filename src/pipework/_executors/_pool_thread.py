"""The supervised pool on an event loop of its own, in a thread, for callers without a loop.

`ProcessPool` is used from plain threads, as ``ProcessPoolExecutor`` is,
so it cannot borrow the caller's event loop. Its pool runs on a loop in a
daemon thread, and each call crosses into it once.

Three things make it safe to forget, as the standard pool is:

- **A pool dropped without shutdown** (garbage-collected) shuts down as if
  ``shutdown(wait=False)`` were called: its calls finish, then its workers
  and its thread exit.
- **At interpreter exit**, every pool still open finishes its calls and
  stops its workers, before `multiprocessing` joins its children, which
  would otherwise wait for ever on workers that nobody asked to exit.
- **Nothing a reply does can stop the loop**: a result whose unpickling
  raises ``SystemExit`` fails its own call, not the thread that serves all.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import pickle
import threading
from concurrent.futures import Future, InvalidStateError
from multiprocessing import util as _multiprocessing_util  # noqa: F401 - see _close_all
from typing import Any

from .._errors import UnpicklableError
from ._child import CallEscaped, call_pickled
from ._supervisor import SupervisedPool
from ._worker_process import PoolOptions

# Every pool not yet shut down, dropped or not: they are closed at exit.
_open_threads: set[PoolThread] = set()
_open_lock = threading.Lock()


class PoolThread:
    """A `SupervisedPool` served by a loop in a thread of its own; call it from any thread."""

    def __init__(self, options: PoolOptions) -> None:
        """Start the loop's thread and the pool's workers.

        On any failure the thread and the workers that did start are stopped
        before the error is raised, so a failed construction leaves nothing behind.
        """
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=_serve, args=(self._loop,), name="pipework-process-pool", daemon=True
        )
        self._lock = threading.Lock()
        self._closing = False
        self._thread.start()
        try:
            self._pool = asyncio.run_coroutine_threadsafe(_open(options), self._loop).result()
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            raise
        with _open_lock:
            _open_threads.add(self)

    def submit(self, blob: bytes) -> Future[Any]:
        """Run a call pickled by `ProcessPool` and return its future.

        The future stays pending while the call runs, so that cancelling it
        can still stop the call (by killing its worker).

        :raises RuntimeError: if the pool is shut down
        :raises WorkerStartError: if the pool is broken, as its workers cannot start
        """
        future: Future[Any] = Future()
        with self._lock:
            if self._closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._pool.broken:
                raise self._pool.broken_error()
            self._loop.call_soon_threadsafe(self._start, future, blob)
        return future

    def shutdown(self, *, wait: bool, cancel: bool) -> None:
        """Let the calls finish (``cancel`` drops those waiting for a worker), then stop.

        With ``wait``, returns once every worker and the thread have exited.
        """
        with self._lock:
            first, self._closing = not self._closing, True
        if first and cancel and self._thread.is_alive():
            # Before returning, as ProcessPoolExecutor does: a call that waits
            # must not reach a worker that frees up a moment later.
            asyncio.run_coroutine_threadsafe(self._cancel_pending(), self._loop).result()
        if first:
            closed = asyncio.run_coroutine_threadsafe(self._close(cancel=cancel), self._loop)
        if wait:
            if first:
                closed.result()
            self._thread.join()

    def _start(self, future: Future[Any], blob: bytes) -> None:
        if future.cancelled():
            return
        task = self._loop.create_task(_run(self._pool, future, blob))

        def cancelled(done: Future[Any]) -> None:
            if done.cancelled():
                with contextlib.suppress(RuntimeError):  # the loop has stopped: nothing runs
                    self._loop.call_soon_threadsafe(task.cancel)

        future.add_done_callback(cancelled)

    async def _cancel_pending(self) -> None:
        # Calls submitted before shutdown() reached the loop before this did.
        self._pool.cancel_pending()

    async def _close(self, *, cancel: bool) -> None:
        # Calls submitted before shutdown() reached the loop before this did,
        # so cancelling here cancels every one that waits.
        try:
            if cancel:
                self._pool.cancel_pending()
            await self._pool.aclose(kill=False)
        finally:
            with _open_lock:
                _open_threads.discard(self)
            self._loop.call_soon(self._loop.stop)


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()


async def _open(options: PoolOptions) -> SupervisedPool:
    pool = SupervisedPool(options)
    try:
        await pool.start()
    except BaseException:
        await pool.aclose(kill=True)
        raise
    return pool


async def _run(pool: SupervisedPool, future: Future[Any], blob: bytes) -> None:
    # Never raises but for its own cancellation: the outcome goes to the
    # caller's future, and nothing may escape into the loop.
    try:
        outcome: Any = pickle.loads(await pool.call(call_pickled, blob))
    except asyncio.CancelledError:
        future.cancel()  # shutdown(cancel_futures=True) dropped it, or its caller did
        raise
    except CallEscaped as escaped:
        # SystemExit or KeyboardInterrupt in the call: the caller gets it
        # back, as from ProcessPoolExecutor, with the worker's traceback.
        error: BaseException = escaped.escaped
        error.__cause__ = escaped.__cause__
        _resolve(future, error=error)
    except Exception as exc:  # noqa: BLE001 - the call's failure goes to its caller
        _resolve(future, error=exc)
    except BaseException as exc:  # noqa: BLE001 - SystemExit unpickling a result: the call's failure
        unreadable = UnpicklableError(f"the result of a call could not be unpickled: {exc!r}")
        unreadable.__cause__ = exc
        _resolve(future, error=unreadable)
    else:
        _resolve(future, value=outcome)


def _resolve(future: Future[Any], *, value: Any = None, error: BaseException | None = None) -> None:
    with contextlib.suppress(InvalidStateError):  # cancelled by its caller meanwhile
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


def _close_all() -> None:
    # Registered after multiprocessing.util registered its own exit hook, so
    # this runs first: atexit runs hooks last-in, first-out. Dropped pools
    # that are still closing are waited for as well.
    with _open_lock:
        threads = list(_open_threads)
    for thread in threads:
        thread.shutdown(wait=True, cancel=False)


atexit.register(_close_all)
