"""An item that failed for good: what the report lists and a dead-letter handler receives.

It lives with the model, not with the report, because a stage's options
name it (``errors=`` takes a handler of `Failure`), and the options are
declared before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Failure:
    """An item that failed for good and was skipped: in the report, and for a dead-letter handler.

    :ivar stage: the stage's label, such as ``#2 'parse' (process map)``
    :ivar index: the item's position in the source
    :ivar item: a short repr of the item (the item itself may be large, or gone)
    :ivar error: the exception of its last try, with a note naming stage and item
    :ivar attempts: how many times it was tried
    """

    stage: str
    index: int
    item: str
    error: BaseException
    attempts: int
