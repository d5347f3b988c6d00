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

import pickle
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import Any

from ._errors import RemoteError
from ._ops import Op, apply

__all__ = ["Failure", "Outcome", "Payload", "preload", "run_chunk"]

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


class _Installed:
    __slots__ = ("call", "remote")

    def __init__(self, call: Callable[[Any], Any], remote: bool) -> None:
        self.call = call
        self.remote = remote


class _Local(threading.local):
    def __init__(self) -> None:
        self.installed: OrderedDict[str, _Installed] = OrderedDict()
        self.pending: dict[str, Payload] = {}


_local = _Local()


def preload(key: str, payload: Payload) -> None:
    """Keep a stage's payload, to load on its first chunk (a pool initializer).

    Loading is deferred so that a failing ``setup`` becomes an error of the
    stage, with its traceback, rather than a broken pool.
    """
    _local.pending[key] = payload


def run_chunk(key: str, payload: Payload | None, op: Op, items: list[Any]) -> Outcome | None:
    """Run one chunk of a stage in this worker.

    :returns: the outcome, or ``None`` if this worker needs the payload first
    """
    installed = _local.installed.get(key)
    if installed is not None:
        _local.installed.move_to_end(key)  # least recently used goes first
    else:
        payload = payload if payload is not None else _local.pending.pop(key, None)
        if payload is None:
            return None
        remote = isinstance(payload, bytes)
        try:
            installed = _Installed(_load(payload), remote)
        except Exception as exc:  # noqa: BLE001 - sent back, and re-raised by the parent
            return [], 0.0, _failure(-1, exc, remote)
        _local.installed[key] = installed
        if len(_local.installed) > _MAX_STAGES:
            _local.installed.popitem(last=False)
    start = perf_counter()
    results, failed = apply(installed.call, op, items)
    elapsed = perf_counter() - start
    if failed is None:
        return results, elapsed, None
    position, error = failed
    return [], elapsed, _failure(position, error, installed.remote)


def _load(payload: Payload) -> Callable[[Any], Any]:
    fn, setup = pickle.loads(payload) if isinstance(payload, bytes) else payload
    return fn if setup is None else partial(fn, setup())


def _failure(position: int, exc: Exception, remote: bool) -> Failure:
    if not remote:
        return position, exc, None
    text = "".join(traceback.format_exception(exc))
    return position, _portable(exc), text


def _portable(exc: Exception) -> BaseException:
    # An exception that pickles but does not unpickle (an __init__ whose
    # arguments are not its args) would break the pool's result thread in
    # the parent, so prove the round trip here, on the cold path.
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure to travel means: send a stand-in
        return RemoteError(type(exc).__qualname__, str(exc))
    return exc
