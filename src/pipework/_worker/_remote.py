"""What an engine's worker runs for pipework: `work`, one chunk in, its outcome out, as bytes.

Unlike pipework's own pool, an engine's worker is a long-lived process that
may run several tasks at once on threads (Dask's ``nthreads``). So a stage's
state is kept per process, not per thread: ``setup`` runs once per worker
process, under the stage's key, with a lock so that two threads starting at
once do not both run it. A worker the engine restarts is a new process, and
loads the stage again on its first chunk.

Nothing here touches shared memory: an engine's workers may be on other
hosts, so every buffer travels inside the bytes.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, get_args

from . import _serial as serial
from ._ops import Op
from ._trampoline import Outcome, failure, load, run_items, send_back

__all__ = ["OPS", "chunk_of", "outcome_of", "work"]

OPS: tuple[Op, ...] = get_args(Op)
"""The ops by number: a chunk's first byte says which one it runs."""

# As in the trampoline, a bound on the stages kept, so memory stays bounded;
# the first loaded goes first.
_MAX_STAGES = 32

_lock = threading.Lock()
_stages: OrderedDict[str, Callable[[Any], Any]] = OrderedDict()


def chunk_of(op: Op, data: bytes) -> bytes:
    """Make a chunk of pickled items (`serial.pack_values`, in band) for `work`."""
    return bytes((OPS.index(op),)) + data


def outcome_of(reply: bytes) -> Outcome:
    """Read what `work` returned."""
    return serial.unpack((reply, ()), unlink=False)  # type: ignore[no-any-return]


def work(key: str, payload: bytes, chunk: bytes) -> bytes:
    """Run one chunk of the stage under ``key`` in this process, loading it on first use.

    This is the function an engine's task calls; its arguments and result
    are bytes, so the engine never walks the items. A setup that raises is
    the chunk's failure at position -1, which fails the stage with that
    error, as on pipework's own workers; it is tried again on the next chunk.
    """
    op = OPS[chunk[0]]
    call = _stage(key, payload)
    if isinstance(call, Exception):
        outcome: Outcome = [], 0.0, failure(-1, call, remote=True)
    else:
        values = pickle.loads(memoryview(chunk)[1:])
        outcome = run_items(call, op, values, remote=True)
    return send_back(outcome, None)[0]


def _stage(key: str, payload: bytes) -> Callable[[Any], Any] | Exception:
    call = _stages.get(key)
    if call is not None:
        return call
    with _lock:
        call = _stages.get(key)
        if call is not None:
            return call
        loaded = load(payload)
        if isinstance(loaded, Exception):
            return loaded
        _stages[key] = loaded
        if len(_stages) > _MAX_STAGES:
            _stages.popitem(last=False)
        return loaded
