"""`ProcessPool`: the supervised pool as a `concurrent.futures.Executor`, usable anywhere."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import pickle
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from .. import _serial as serial
from .._errors import UnpicklableError
from ._child import call_pickled, start_pickled
from ._processes import default_workers, worker_context, worker_environment
from ._supervisor import PoolOptions, SupervisedPool

P = ParamSpec("P")
R = TypeVar("R")


class ProcessPool(Executor):
    """A drop-in for `concurrent.futures.ProcessPoolExecutor` that survives its workers.

    - A worker that dies (killed, crashed, out of memory) fails only the call
      it was running, with `WorkerDiedError`, a subclass of
      ``BrokenProcessPool``; a new worker takes its place and every other call
      goes on. ``ProcessPoolExecutor`` fails every pending call and stays broken.
    - Cancelling a running future kills its worker, rather than waiting for it.
    - Workers exit when this process dies, even by SIGKILL.
    - Workers can be recycled after ``max_tasks_per_worker`` calls, or once
      their resident memory passes ``max_memory_per_worker`` bytes, between
      calls, so nothing is lost.
    - Functions and arguments travel with cloudpickle: lambdas and closures work.

    Example::

        with pipework.ProcessPool(4, max_tasks_per_worker=1000) as pool:
            squares = list(pool.map(lambda x: x * x, range(100), chunksize=10))

    It also serves pipelines as ``on=pool``, shared by stages and runs.

    :param max_workers: worker processes; the number of cores by default
    :param initializer: called in each worker as it starts, with ``initargs``
    :param max_tasks_per_worker: calls a worker serves before it is replaced
    :param max_memory_per_worker: resident bytes past which a worker is replaced
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_worker: int | None = None,
        max_memory_per_worker: int | None = None,
    ) -> None:
        """Start the workers; see the class docstring."""
        workers = _positive("max_workers", max_workers) or default_workers()
        options = PoolOptions(
            workers=workers,
            context=worker_context(worker_environment(workers)),
            initializer=None if initializer is None else start_pickled,
            initargs=() if initializer is None else (_pickle((initializer, initargs)),),
            max_tasks=_positive("max_tasks_per_worker", max_tasks_per_worker),
            max_memory=_positive("max_memory_per_worker", max_memory_per_worker),
        )
        # The pool lives on an event loop of its own, in a thread, so that it
        # serves callers with or without a loop of their own.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="pipework-process-pool", daemon=True
        )
        self._thread.start()
        self._pool: SupervisedPool = self._wait(_open(options))
        self._max_workers = workers  # read by pipelines given on=pool
        self._lock = threading.Lock()
        self._closed = False
        # Workers are not daemons (they may start processes of their own), so
        # multiprocessing joins them at exit; close the pool before that.
        atexit.register(_close_at_exit, weakref.ref(self))

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)`` in a worker and return its future.

        :raises UnpicklableError: at once, if the call cannot be pickled
        :raises RuntimeError: if the pool is shut down
        """
        blob = _pickle((fn, args, kwargs))
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            return asyncio.run_coroutine_threadsafe(_call(self._pool, blob), self._loop)

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[R]:
        """Return ``fn`` over the iterables, in order, as `Executor.map` does.

        ``chunksize`` sends that many calls to a worker at once, which costs
        less per call for small ones.
        """
        if _positive("chunksize", chunksize) == 1:
            return super().map(fn, *iterables, timeout=timeout)
        calls = zip(*iterables, strict=False)
        chunks = iter(lambda: list(itertools.islice(calls, chunksize)), [])
        results = super().map(_run_chunk, itertools.repeat(fn), chunks, timeout=timeout)
        return itertools.chain.from_iterable(results)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers once their calls are done; ``cancel_futures`` drops the calls waiting.

        Returns at once with ``wait=False``; the workers still finish and exit.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        done = asyncio.run_coroutine_threadsafe(
            _close(self._pool, cancel=cancel_futures), self._loop
        )
        if wait:
            done.result()
            self._thread.join()
            self._loop.close()

    def _wait(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()


async def _call(pool: SupervisedPool, blob: bytes) -> Any:
    return pickle.loads(await pool.call(call_pickled, blob))


async def _open(options: PoolOptions) -> SupervisedPool:
    pool = SupervisedPool(options)
    await pool.start()
    return pool


async def _close(pool: SupervisedPool, *, cancel: bool) -> None:
    # Calls submitted before shutdown() reached the loop before this did, so
    # cancelling here cancels every one that waits.
    loop = asyncio.get_running_loop()
    try:
        if cancel:
            pool.cancel_pending()
        await pool.aclose(kill=False)
    finally:
        loop.call_soon(loop.stop)


def _close_at_exit(ref: weakref.ref[ProcessPool]) -> None:
    pool = ref()
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_chunk(fn: Callable[..., R], calls: list[tuple[Any, ...]]) -> list[R]:
    return [fn(*args) for args in calls]


def _pickle(value: object) -> bytes:
    # By reference where the workers can import the function, as
    # ProcessPoolExecutor does, so that it sees its module's globals there (a
    # model an initializer loaded, say); by value with cloudpickle otherwise:
    # lambdas, closures, and functions of an interactive session.
    if getattr(sys.modules.get("__main__"), "__file__", None):
        with contextlib.suppress(Exception):
            return pickle.dumps(value, protocol=5)
    try:
        return serial.dumps(value)
    except Exception as exc:
        raise UnpicklableError(f"the call cannot be pickled for a worker process: {exc}") from exc


def _positive(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"ProcessPool: {name}= must be a whole number, not {value!r}")
    if value < 1:
        raise ValueError(f"ProcessPool: {name}= must be at least 1, not {value}")
    return value
