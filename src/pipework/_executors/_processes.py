"""Starting worker processes well: start method, warm forkserver, thread limits.

- **Start method.** forkserver on Linux: a worker starts from a small, clean
  server process rather than a fork of a parent that runs an event loop and
  threads, which fork does not copy safely. Elsewhere, spawn.
- **Warm start.** Before its first start, the forkserver is told to preload
  pipework's worker modules and the module of the stage's function, so each
  worker starts with them imported. A pool starts all its workers as soon as
  its stage opens, and each runs ``setup``, while the stages upstream are
  still producing the first items.
- **No oversubscription.** N workers that each start a BLAS or OpenMP pool of
  N threads would run N x N threads on N cores. Workers get
  ``cores // workers`` threads through the usual variables (`THREAD_VARIABLES`),
  unless the user set a variable, which then wins. Libraries read these when
  they load, so they are in the forkserver's environment from its start, and
  set again in each worker for libraries loaded later; where threadpoolctl is
  installed, it also limits libraries already loaded.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .._worker._trampoline import preload
from ._worker_process import PoolOptions

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

_WORKER_MODULES = (
    "pipework._executors._child",
    "pipework._worker._trampoline",
    "pipework._worker._serial",
    "pipework._worker._buffers",
    "cloudpickle",
)

_forkserver_prepared = False


def default_workers() -> int:
    """Return the number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_environment(workers: int) -> dict[str, str]:
    """Return the thread-count variables for ``workers`` processes.

    Each is the user's own setting if there is one, else ``cores // workers``.
    """
    threads = str(max(1, default_workers() // workers))
    return {name: os.environ.get(name, threads) for name in THREAD_VARIABLES}


def stage_pool_options(
    workers: int,
    *,
    key: str,
    payload: bytes,
    fn: Callable[..., Any],
    max_tasks: int | None = None,
    max_memory: int | None = None,
) -> PoolOptions:
    """Describe the pool of one process stage: warm workers, each loading the stage as it starts.

    Each worker runs the stage's ``setup`` before it says it is ready. If
    setup raises, the worker still starts; the stage's first chunk runs
    setup again and reports the error as the stage's.
    """
    environment = worker_environment(workers)
    return PoolOptions(
        workers=workers,
        context=worker_context(environment, fn),
        initializer=preload,
        initargs=(key, payload, environment, True),
        max_tasks=max_tasks,
        max_memory=max_memory,
    )


def worker_context(
    environment: dict[str, str], fn: Callable[..., Any] | None = None
) -> multiprocessing.context.BaseContext:
    """Return the start method's context, with the fork server prepared on Linux."""
    return _context(environment, fn)


def _context(
    environment: dict[str, str], fn: Callable[..., Any] | None
) -> multiprocessing.context.BaseContext:
    if sys.platform != "linux":
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    _prepare_forkserver(context, environment, None if fn is None else _module_of(fn))
    return context


def _prepare_forkserver(
    context: multiprocessing.context.BaseContext, environment: dict[str, str], module: str | None
) -> None:
    # The forkserver is one per process and reads its preload list and its
    # environment once, when it starts. A forkserver someone else started
    # first keeps its own; workers still get the variables in their
    # initializer.
    global _forkserver_prepared  # noqa: PLW0603 - once per process, as the forkserver is
    if _forkserver_prepared:
        return
    _forkserver_prepared = True
    modules = [*_current_preload(), *_WORKER_MODULES, *([module] if module else [])]
    context.set_forkserver_preload(list(dict.fromkeys(modules)))
    with _environment(environment):
        multiprocessing.forkserver.ensure_running()


def _current_preload() -> list[str]:
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    return list(getattr(server, "_preload_modules", None) or ["__main__"])


def _module_of(fn: Callable[..., Any]) -> str | None:
    module = getattr(fn, "__module__", None)
    if not isinstance(module, str) or module in {"__main__", "__mp_main__"}:
        return None
    return module if module in sys.modules else None


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    # The forkserver is started by a spawn that copies os.environ, with no
    # way to pass an environment; set the variables for that moment only.
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
