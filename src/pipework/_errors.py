"""Errors raised by pipework, and how a failure is tied to its stage and item.

pipework's own exceptions form a small tree::

    PipeworkError
    ├── UnpicklableError (also a TypeError)
    │     a function, item or result could not be pickled for a worker process
    ├── RemoteError
    │     a worker raised an exception that could not travel back as itself
    ├── WorkerDiedError (also concurrent.futures.process.BrokenProcessPool)
    │   │ a worker process died while it ran an item: killed, crashed, out of memory
    │   └── WorkerStartError
    │         worker processes die as they start, so the pool cannot run anything
    ├── ItemTimeoutError (also a TimeoutError)
    │     an item ran longer than its stage's ``timeout=``
    ├── ItemCancelledError
    │     a stage's own code raised ``asyncio.CancelledError``, though the run
    │     was not cancelled: the item's failure, not the run's cancellation
    ├── ItemExitError
    │     a thread or process stage's function called ``sys.exit()``
    ├── ServiceBusyError (defined in _service/_ledger.py)
    │     a service is full and the caller asked not to wait
    ├── ServiceClosedError (also a RuntimeError; defined in _service/_ledger.py)
    │     a service is not open, or stopped before it could answer
    ├── FilteredOutError (defined in _service/_ledger.py)
    │     a service's filter stage dropped the item that was submitted
    └── http.HTTPError (in pipework.http, defined in _http/_error.py)
          a request failed after every attempt it was allowed; names the URL,
          the attempts and the last status or error

A user function's own exception is never wrapped. ``run()`` raises the very
exception the function raised, of the same type. When it was raised in a
worker process, its ``__cause__`` is a `RemoteTraceback` holding the worker's
traceback. Either way a note (``add_note``) names the stage and the item's
index in the source, so a failure in a stream of millions points at one item.
"""

from __future__ import annotations

import copy
import reprlib
import sys
from concurrent.futures.process import BrokenProcessPool
from typing import Any

__all__ = [
    "MAIN_GUARD_NOTE",
    "ItemCancelledError",
    "ItemExitError",
    "ItemTimeoutError",
    "PipeworkError",
    "RemoteError",
    "RemoteTraceback",
    "UnpicklableError",
    "WorkerDiedError",
    "WorkerStartError",
    "annotate",
    "annotate_batch",
    "cancelled_by_code",
    "exited_by_code",
    "is_cancellation",
]

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 4


# Workers that die as they start, with no word, most often come from a script
# without a main guard: each worker imports the main module, and starts again.
MAIN_GUARD_NOTE = (
    "pipework: if workers die as soon as they start, check that the script starts its "
    "pools and pipelines under `if __name__ == '__main__':`, because worker processes "
    "import the main module."
)


class PipeworkError(Exception):
    """Base of the exceptions that pipework itself raises."""


class UnpicklableError(PipeworkError, TypeError):
    """A function, an item or a result could not be pickled to cross a process boundary.

    The message names the stage, and the item when there is one; ``__cause__``
    is pickle's own error. Functions travel with cloudpickle, so lambdas and
    closures work; this error means something they hold cannot travel, such
    as a lock, an open file or a socket.
    """


class RemoteError(PipeworkError):
    """A worker process raised an exception that could not be sent back as itself.

    Some exceptions cannot be pickled (they hold a lock, or their ``__init__``
    takes arguments that ``args`` does not hold). Rather than lose the failure,
    the worker sends this instead, with the original type's name and message.
    The worker's traceback is the ``__cause__``, as for any remote failure.

    :ivar type_name: the qualified name of the exception the worker raised
    """

    def __init__(self, type_name: str, message: str) -> None:
        """Record the original exception's type name and message."""
        super().__init__(type_name, message)
        self.type_name = type_name
        self.message = message

    def __str__(self) -> str:
        """Read as the original exception would have."""
        return f"{self.type_name}: {self.message}"


class WorkerDiedError(PipeworkError, BrokenProcessPool):
    """A worker process died while it ran a call: killed, crashed, or out of memory.

    Unlike `concurrent.futures.process.BrokenProcessPool`, which it extends so
    that existing handlers still catch it, it fails only the call that was
    running; the pool replaces the worker and goes on. A pipeline sends the
    items again and raises this only for an item that kills worker after
    worker.

    :ivar exitcode: the worker's exit code, negative for the signal that
        killed it, or ``None`` if it could not be learned
    :ivar position: within a chunk of items, the one that was running when
        the worker died, if known
    """

    def __init__(self, message: str, *, exitcode: int | None, position: int | None = None) -> None:
        """Describe the death; ``position`` is for pipework's own bookkeeping."""
        super().__init__(message)
        self.exitcode = exitcode
        self.position = position


class WorkerStartError(WorkerDiedError):
    """Worker processes die as they start, one after another, so the pool cannot run anything.

    The usual causes: a ``setup`` or initializer that raises (its error is the
    ``__cause__``), or a script that starts work at import time, outside
    ``if __name__ == "__main__":``.
    """


class ItemTimeoutError(PipeworkError, TimeoutError):
    """An item ran longer than its stage's ``timeout=``.

    In a process stage the worker that ran it was killed and replaced.

    :ivar timeout: the limit, in seconds
    """

    def __init__(self, message: str, *, timeout: float, position: int | None = None) -> None:
        """Describe the overrun; ``position`` is for pipework's own bookkeeping."""
        super().__init__(message)
        self.timeout = timeout
        self.position = position


class ItemCancelledError(PipeworkError):
    """A stage's own code raised ``asyncio.CancelledError`` while the run was not being cancelled.

    Only cancelling the run cancels a run. A ``CancelledError`` that comes out
    of a stage's function (say, it awaited a task that someone else
    cancelled), its setup, a sink, a source or a dead-letter handler would
    otherwise end that stage as if the run had been cancelled, and lose the
    items behind it without a word. It is that item's failure instead, which
    the stage's ``retry=`` and ``errors=`` settle like any other. The original
    ``CancelledError`` is the ``__cause__``.

    Example::

        try:
            await pipeline.run()
        except pipework.ItemCancelledError as exc:
            print(exc.__notes__)  # names the stage and the item
    """


class ItemExitError(PipeworkError):
    """A thread or process stage's function raised ``SystemExit``: it called ``sys.exit()``.

    On a worker that would end the worker process, or reach the event loop
    from a thread and end the whole program. It is the item's failure
    instead, settled by the stage's ``retry=`` and ``errors=``.

    :ivar code: the exit code the function asked for
    """

    def __init__(self, message: str, *, code: object = None) -> None:
        """Record the exit code."""
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        """Travel back from a worker process with the exit code."""
        return _rebuild_exit_error, (str(self), self.code)


def _rebuild_exit_error(message: str, code: object) -> ItemExitError:
    return ItemExitError(message, code=code)


class RemoteTraceback(Exception):  # noqa: N818 - it is a traceback, shown as a cause, not an error
    """The traceback of an exception raised in a worker process.

    It is attached as the ``__cause__`` of the re-raised exception, so that
    Python prints the worker's frames above the parent's.
    """

    def __init__(self, text: str) -> None:
        """Hold the formatted traceback text."""
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        """Show the traceback as Python would have printed it in the worker."""
        return f'\n"""\n{self.text}"""'


def describe_item(item: Any) -> str:
    """Return a short, safe repr of an item for an error message."""
    try:
        return _short.repr(item)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        return f"<{type(item).__qualname__} with a failing __repr__>"


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``asyncio.CancelledError``.

    It works in worker processes without importing asyncio, which is heavy:
    code that raised one has imported asyncio already.
    """
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


def cancelled_by_code(exc: BaseException, where: str = "") -> ItemCancelledError:
    """Return the failure that stands for a ``CancelledError`` raised by a stage's code."""
    error = ItemCancelledError(
        f"{where or 'the code'} raised asyncio.CancelledError, but the run was not being "
        "cancelled: it fails the item (a task it awaited was cancelled, perhaps)"
    )
    error.__cause__ = exc
    return error


def exited_by_code(exc: SystemExit, where: str) -> ItemExitError:
    """Return the failure that stands for a ``SystemExit`` raised by a worker's function."""
    error = ItemExitError(
        f"{where} raised SystemExit (sys.exit({exc.code!r})), which would end its worker; "
        "it fails the item",
        code=exc.code,
    )
    error.__cause__ = exc
    return error


_ITEM_NOTE = "pipework: in stage "


def annotate(exc: BaseException, stage: str, index: int | None, item: Any = None) -> BaseException:
    """Add a note to ``exc`` naming the stage and the failed item, and return what to raise.

    ``index`` is the item's position in the source. ``None`` means the failure
    was not tied to one item (a source that raised, a worker that died).

    One exception object raised for several items (a function that raises a
    module-level instance) would gather every item's note; the second item
    and later get a copy of it instead, with a note of their own. The
    returned exception is the one to raise or record.
    """
    if index is None:
        return _note_once(exc, f"pipework: in stage {stage}", tied=False)
    return _note_once(
        exc, f"pipework: in stage {stage}, on item {index}: {describe_item(item)}", tied=True
    )


def annotate_batch(exc: BaseException, stage: str, indexes: Any, items: list[Any]) -> BaseException:
    """Like `annotate`, for a failure that belongs to a whole batch of items."""
    if len(items) == 1:
        return annotate(exc, stage, indexes[0], items[0])
    note = (
        f"pipework: in stage {stage}, on a batch of {len(items)} items "
        f"from item {indexes[0]}: {describe_item(items)}"
    )
    return _note_once(exc, note, tied=True)


def _note_once(exc: BaseException, note: str, *, tied: bool) -> BaseException:
    notes = getattr(exc, "__notes__", ())
    # One exception object can reach several stages' handlers (an executor
    # fails every pending future with the same one); say each thing once.
    if note in notes:
        return exc
    if tied and any(n.startswith(_ITEM_NOTE) and ", on " in n for n in notes):
        exc = _copy_for_another(exc)
    exc.add_note(note)
    return exc


def _copy_for_another(exc: BaseException) -> BaseException:
    # A shallow copy, without the notes that tie the original to its item;
    # an exception that cannot be copied keeps its notes, all of them.
    try:
        clone = copy.copy(exc)
    except Exception:  # noqa: BLE001 - an __init__ that its args do not fit: keep the original
        return exc
    if type(clone) is not type(exc):
        return exc
    # A dict of its own: a reducer such as tblib's (which distributed
    # installs) hands copy.copy the original's __dict__ itself.
    clone.__dict__ = dict(exc.__dict__)
    clone.__notes__ = [  # a list of its own: copy.copy shares the original's
        n for n in getattr(exc, "__notes__", ()) if not n.startswith(_ITEM_NOTE)
    ]
    clone.__cause__ = exc.__cause__
    clone.__context__ = exc.__context__
    clone.__suppress_context__ = exc.__suppress_context__
    return clone.with_traceback(exc.__traceback__)
