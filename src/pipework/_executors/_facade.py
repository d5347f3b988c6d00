"""`ProcessPool`: the supervised pool as a `concurrent.futures.Executor`, usable anywhere."""

from __future__ import annotations

import contextlib
import itertools
import pickle
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from .._errors import UnpicklableError
from .._worker import _serial as serial
from ._child import start_pickled
from ._pool_thread import PoolThread
from ._processes import default_workers, worker_context, worker_environment
from ._worker_process import PoolOptions

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

    A pool dropped without ``shutdown()``, or still open at exit, finishes the
    calls it was given and lets its workers go, as the standard pool does.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_worker: int | None = None,
        max_memory_per_worker: int | None = None,
        max_tasks_per_child: int | None = None,
    ) -> None:
        """Start the workers; see the class docstring.

        ``max_tasks_per_child`` is ``ProcessPoolExecutor``'s name for
        ``max_tasks_per_worker``, accepted so that a pool can be swapped in.

        :raises ValueError: for a count below 1
        :raises UnpicklableError: if the initializer cannot be pickled
        :raises TypeError: if ``initargs`` cannot be pickled, as multiprocessing says
        """
        if max_tasks_per_child is not None:
            if max_tasks_per_worker is not None:
                raise TypeError(
                    "ProcessPool: give max_tasks_per_worker= or max_tasks_per_child=, not both"
                )
            max_tasks_per_worker = _count("max_tasks_per_child", max_tasks_per_child)
        workers = _count("max_workers", max_workers) or default_workers()
        options = PoolOptions(
            workers=workers,
            context=worker_context(worker_environment(workers)),
            initializer=None if initializer is None else start_pickled,
            # The arguments go as the worker process's own, pickled by
            # multiprocessing as it starts: only then may a Queue or a Lock travel.
            initargs=()
            if initializer is None
            else (_pickle(initializer, "the initializer"), *initargs),
            max_tasks=_count("max_tasks_per_worker", max_tasks_per_worker),
            max_memory=_count("max_memory_per_worker", max_memory_per_worker),
        )
        self._thread = PoolThread(options)
        self._max_workers = workers  # read by pipelines given on=pool
        # Dropped without shutdown(): finish the calls and let the workers go,
        # as ProcessPoolExecutor does. Exit is handled by PoolThread itself.
        finalizer = weakref.finalize(self, self._thread.shutdown, wait=False, cancel=False)
        finalizer.atexit = False

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)`` in a worker and return its future.

        :raises UnpicklableError: at once, if the call cannot be pickled
        :raises RuntimeError: if the pool is shut down
        :raises WorkerStartError: a ``BrokenProcessPool``, if workers cannot start
        """
        return self._thread.submit(_pickle((fn, args, kwargs)))

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
        if _count("chunksize", chunksize) == 1:
            return super().map(fn, *iterables, timeout=timeout)
        calls = zip(*iterables, strict=False)
        chunks = iter(lambda: list(itertools.islice(calls, chunksize)), [])
        results = super().map(_run_chunk, itertools.repeat(fn), chunks, timeout=timeout)
        return itertools.chain.from_iterable(results)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers once their calls are done; ``cancel_futures`` drops the calls waiting.

        Returns at once with ``wait=False``; the workers still finish and exit.
        """
        self._thread.shutdown(wait=wait, cancel=cancel_futures)


def _run_chunk(fn: Callable[..., R], calls: list[tuple[Any, ...]]) -> list[R]:
    return [fn(*args) for args in calls]


def _pickle(value: object, what: str = "the call") -> bytes:
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
        raise UnpicklableError(f"{what} cannot be pickled for a worker process: {exc}") from exc


def _count(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"ProcessPool: {name}= must be a whole number, not {value!r}")
    if value < 1:
        # ProcessPoolExecutor's words, so that code which matches them still does.
        raise ValueError(f"ProcessPool: {name} must be greater than 0, not {value}")
    return value
