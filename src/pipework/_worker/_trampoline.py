"""What runs inside a worker: the trampoline, and each stage's per-worker state.

The parent never sends a stage's function with each chunk. It sends a key;
the worker keeps the loaded function, and the result of ``setup``, under that
key. A worker that has never seen the key answers ``None``, and the parent
sends the payload once. Pools that pipework starts get the payload through
their initializer instead, so they never miss. This works the same for any
``concurrent.futures.Executor``, and for workers that are replaced.

State is per thread: in a process pool that is one per process, and in a
thread pool ``setup`` runs once in each thread, as users expect of "once per
worker".

This module is imported in every worker process, so it stays light.
"""

from __future__ import annotations

import os
import pickle
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .._errors import RemoteError, UnpicklableError, cancelled_by_code, is_cancellation
from . import _buffers as buffers
from . import _serial as serial
from ._ops import Op, apply, refuse_awaitables

if TYPE_CHECKING:
    from ._tracker import Tracker

__all__ = [
    "Failure",
    "Outcome",
    "Payload",
    "failure",
    "load",
    "portable",
    "preload",
    "run_chunk",
    "run_items",
    "send_back",
    "warm",
]

# The function and the setup callable: pickled bytes when they go to another
# process, the objects themselves for a thread pool.
Payload = bytes | tuple[Callable[..., Any], Callable[[], Any] | None]
# Where the chunk failed (-1: in setup), the exception, and for a remote
# worker the formatted traceback, which does not survive pickling otherwise.
Failure = tuple[int, BaseException, str | None]
# Shaped results, seconds spent computing them, and the failure if any.
Outcome = tuple[list[Any], float, Failure | None]

# A long-lived executor may serve many stages over its life; keep the ones
# used most recently, so memory stays bounded and busy stages stay loaded.
_MAX_STAGES = 32


class _Local(threading.local):
    def __init__(self) -> None:
        self.installed: OrderedDict[str, Callable[[Any], Any]] = OrderedDict()
        self.pending: dict[str, Payload] = {}


_local = _Local()


def preload(
    key: str, payload: Payload, environment: dict[str, str] | None = None, load: bool = False
) -> None:
    """Keep a stage's payload, set the worker's environment, and with ``load``, load it now.

    This is a pool initializer. A ``setup`` that fails here is not an error
    yet: the stage's first chunk runs it again, and reports the failure as
    the stage's, with its traceback, rather than as a broken pool.
    ``environment`` holds the thread-count variables for native libraries
    (see `pipework._executors._processes`).
    """
    _local.pending[key] = payload
    if environment:
        os.environ.update(environment)
        _limit_loaded_libraries(int(environment.get("OMP_NUM_THREADS", "0")))
    if load:
        warm(key)


def warm(key: str) -> None:
    """Load the stage under ``key`` now, running its setup, so the first item finds it ready."""
    if key not in _local.installed and key in _local.pending:
        _install(key, _local.pending.pop(key))


def _limit_loaded_libraries(threads: int) -> None:
    # Variables reach libraries loaded from now on; threadpoolctl, where the
    # user has it, also reaches those already loaded (numpy imported by the
    # main module, say).
    if threads < 1:
        return
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 - optional
    except ImportError:
        return
    threadpool_limits(threads)


def run_chunk(
    key: str,
    payload: Payload | None,
    op: Op,
    items: list[Any] | serial.Packed,
    *,
    tracker: Tracker | None = None,
    began: Callable[[], object] | None = None,
    share_memory: bool = True,
) -> Outcome | serial.Packed | None:
    """Run one chunk of a stage in this worker.

    ``items`` arrive packed from another process, and the outcome then goes
    back packed too, its large buffers in segments named under ``key``; from
    a thread they are the list itself. A ``tracker`` is told as each item
    starts, so the parent can tell which item hung or killed the worker.
    ``began`` is called once the stage is installed (its setup done) and the
    items are about to run: a timeout counts from there. Without
    ``share_memory`` (an executor whose workers may be on other hosts), every
    buffer of the outcome goes back in band.

    :returns: the outcome, or ``None`` if this worker needs the payload first
    """
    installed: Callable[[Any], Any] | Exception | None = _local.installed.get(key)
    if installed is not None:
        _local.installed.move_to_end(key)  # least recently used goes first
    else:
        payload = payload if payload is not None else _local.pending.pop(key, None)
        if payload is None:
            return None
        installed = _install(key, payload)
    remote = isinstance(items, tuple)
    if began is not None:
        began()
    if isinstance(installed, Exception):
        outcome: Outcome = [], 0.0, failure(-1, installed, remote=remote)
    else:
        if tracker is not None:
            tracker.begin(-1)  # a death while unpacking is no item's fault
        # The sender removes these segments once the chunk is done. Tracked, so
        # that a result lying in one goes back as a reference, not a copy.
        values: list[Any] = (
            serial.unpack(items, unlink=False, track=True) if isinstance(items, tuple) else items
        )
        outcome = run_items(installed, op, values, tracker, remote=remote)
    if not remote:
        return outcome
    try:
        return send_back(outcome, buffers.prefix_for(key) if share_memory else None)
    finally:
        buffers.forget_inbound()


def run_items(
    call: Callable[[Any], Any],
    op: Op,
    values: list[Any],
    tracker: Tracker | None = None,
    *,
    remote: bool,
) -> Outcome:
    """Apply a loaded stage to a chunk's values; a ``remote`` failure carries its traceback."""
    start = perf_counter()
    results, failed = apply(
        call if tracker is None else _tracked(call, tracker), op, values, in_worker=True
    )
    if tracker is not None:
        tracker.begin(len(values))  # past the last item: a death now is no item's fault
    elapsed = perf_counter() - start
    if (awaited := refuse_awaitables(op, results)) is not None:
        results, failed = [], (0, awaited)
    if failed is None:
        return results, elapsed, None
    # The results before the failure are kept: a policy that skips or
    # retries the item needs them, and they are not computed twice.
    return results, elapsed, failure(*failed, remote=remote)


def _tracked(call: Callable[[Any], Any], tracker: Tracker) -> Callable[[Any], Any]:
    position = -1

    def tracked(item: Any) -> Any:
        nonlocal position
        position += 1
        tracker.begin(position)
        return call(item)

    return tracked


def _install(key: str, payload: Payload) -> Callable[[Any], Any] | Exception:
    call = load(payload)
    if isinstance(call, Exception):
        return call
    _local.installed[key] = call
    if len(_local.installed) > _MAX_STAGES:
        _local.installed.popitem(last=False)
    return call


def load(payload: Payload) -> Callable[[Any], Any] | Exception:
    """Unpickle a stage and run its setup: the call to apply, or the exception setup raised."""
    try:
        fn, setup = pickle.loads(payload) if isinstance(payload, bytes) else payload
        call = fn if setup is None else partial(fn, setup())
    except Exception as exc:  # noqa: BLE001 - reported as a failure of setup; not kept
        return exc
    except BaseException as exc:
        if not is_cancellation(exc):
            raise
        return cancelled_by_code(exc, "setup")
    return call


def failure(position: int, exc: Exception, *, remote: bool) -> Failure:
    """Record where a chunk failed; from a remote worker, portable and with its traceback."""
    if not remote:
        return position, exc, None
    return position, portable(exc), "".join(traceback.format_exception(exc))


def send_back(outcome: Outcome, prefix: str | None) -> serial.Packed:
    """Pack an outcome for the parent, large buffers in segments under ``prefix`` if any.

    A result that cannot be pickled fails its item, in the place of any
    later failure (which a retry meets again).
    """
    results, elapsed, _ = outcome
    try:
        return serial.pack(outcome, prefix)
    except Exception as exc:  # noqa: BLE001 - a result that cannot travel fails its item
        # The exception, if any, was made portable; so a result is to blame.
        position = serial.first_unpicklable(results)
        error = UnpicklableError(
            f"its result cannot be pickled to return from the worker process: {exc}"
        )
        return serial.pack((results[:position], elapsed, (position, error, None)), prefix)


def portable(exc: BaseException) -> BaseException:
    """Return ``exc`` if it survives pickling both ways, else a `RemoteError` standing in for it."""
    # An exception that pickles but does not unpickle (an __init__ whose
    # arguments are not its args) would fail in the parent instead, so
    # prove the round trip here, on the cold path.
    try:
        serial.unpack(serial.pack(exc), unlink=True)
    except Exception:  # noqa: BLE001 - any failure to travel means: send a stand-in
        return RemoteError(type(exc).__qualname__, str(exc))
    return exc
