"""The life of a supervised worker process: start, serve calls one at a time, die with the parent.

The parent sends a frame per call, a `Call`, pickled; the worker answers
with one frame, a `Reply`. Its first frame says it is ready (`Ready`), or
why it could not start (`StartFailed`). An empty frame, or the parent closing the socket, tells
it to exit.

A worker must never outlive its parent, even one killed with SIGKILL, which
gets no chance to clean up. Two watches see to it:

- ``PR_SET_PDEATHSIG`` on Linux: the kernel kills the worker when the
  process that forked it dies. Under forkserver that is the fork server,
  which exits as soon as the parent does, so the chain holds;
- a thread that waits on a pidfd of the parent itself (polling where there
  is no pidfd), and exits the process when the parent goes, whoever forked it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

from .._worker._buffers import alive
from .._worker._tracker import Tracker
from .._worker._trampoline import portable
from ._wire import Call, Ready, Reply, StartFailed, recv_frame, send_frame

# How often a worker without pidfds looks for its parent.
_PARENT_POLL = 0.2


def serve(
    sock: socket.socket,
    parent: int,
    tracker: Tracker,
    initializer: Callable[..., Any] | None,
    initargs: tuple[Any, ...],
    *,
    measure_memory: bool,
) -> None:
    """Run calls from the parent until it says stop, or goes away."""
    # Ctrl-C in a terminal reaches the whole process group. The parent decides
    # what it means (a graceful stop, or cancellation, which kills workers);
    # a worker that died of it would only be replaced.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    try:
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, then the worker exits
        send_frame(sock, pickle.dumps(StartFailed(portable(exc), _format(exc))))
        sys.exit(1)
    me = os.getpid()
    send_frame(sock, pickle.dumps(Ready(me)))
    while frame := recv_frame(sock):
        # Marked as read, before anything of it runs: a worker that dies
        # without this mark died before the call, which is then sent again.
        tracker.begin(-1)
        call: Call = pickle.loads(frame)
        value: Any = None
        error: BaseException | None = None
        text: str | None = None
        try:
            fn, args = call.fn, call.args
            value = fn(*args, tracker=tracker) if call.tracked else fn(*args)
        except Exception as exc:  # noqa: BLE001 - a call's failure is its reply
            error, text = portable(exc), _format(exc)
        if os.getpid() != me:
            _stop_forked_child()
        rss = _resident_bytes() if measure_memory else 0
        try:
            data = pickle.dumps(Reply(value, error, text, rss), protocol=5)
        except Exception as exc:  # noqa: BLE001 - a value that cannot travel fails its call
            unsent = TypeError(f"the result cannot be pickled to return from the worker: {exc}")
            data = pickle.dumps(Reply(None, unsent, None, rss), protocol=5)
        send_frame(sock, data)


class CallEscaped(Exception):  # noqa: N818 - it carries what escaped, it is not an error itself
    """Carries a ``SystemExit`` or ``KeyboardInterrupt`` from a `ProcessPool` call to its caller.

    Raised as such in the worker, it would end the worker and come back as
    `WorkerDiedError`; ``ProcessPoolExecutor`` gives the caller the exception.
    """

    def __init__(self, escaped: BaseException) -> None:
        """Wrap ``escaped``."""
        super().__init__(escaped)
        self.escaped = escaped


def call_pickled(blob: bytes) -> bytes:
    """Run a call that came pickled with cloudpickle, and pickle its result the same way.

    For `ProcessPool`: cloudpickle lets lambdas travel, and lets a result
    whose class is defined in the user's script arrive as the parent's class.
    """
    try:
        fn, args, kwargs = pickle.loads(blob)
        return cloudpickle.dumps(fn(*args, **kwargs))  # type: ignore[no-any-return]
    except Exception:
        raise
    except BaseException as exc:  # sys.exit() in the call, or as its result pickles
        raise CallEscaped(exc) from exc


def start_pickled(blob: bytes, *initargs: Any) -> None:
    """Run a user's initializer that came pickled with cloudpickle, with ``initargs``.

    The arguments are the worker process's own, so that what multiprocessing
    lets travel only to a starting process (a ``Queue``, a ``Lock``) can be
    among them, as with ``ProcessPoolExecutor``.
    """
    pickle.loads(blob)(*initargs)


def _stop_forked_child() -> None:
    # The call forked, and the child returned from it into this loop, as
    # though it were the worker: its reply would interleave with the
    # worker's on their shared socket, and the parent would read duplicated,
    # lost or garbled results. Stop it, and say why.
    sys.stderr.write(
        f"pipework: process {os.getpid()} was forked by a call in worker process "
        f"{os.getppid()} and returned from it into the worker's loop; it was stopped. "
        "A child forked in a worker must end with os._exit() (or exec), never return.\n"
    )
    sys.stderr.flush()
    os._exit(70)


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _resident_bytes() -> int:
    # Current, not peak, resident memory: a worker that freed what it used
    # is fine to keep. /proc is Linux's; elsewhere the limit is not enforced.
    try:
        with open("/proc/self/statm", "rb") as statm:  # noqa: PTH123 - cheapest read there is
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _die_with_parent(parent: int) -> None:
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            import ctypes  # noqa: PLC0415 - Linux only

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    threading.Thread(target=_watch, args=(parent,), name="pipework-parent", daemon=True).start()


def _watch(parent: int) -> None:
    try:
        handle = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)  # the parent is already gone
    except (AttributeError, OSError):  # no pidfds here: poll instead
        while alive(parent):
            time.sleep(_PARENT_POLL)
        os._exit(1)
    select.select([handle], [], [])  # readable once the parent has exited
    os._exit(1)
