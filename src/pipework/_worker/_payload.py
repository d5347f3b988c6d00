"""Pickling a stage's function for its workers, once per stage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._errors import UnpicklableError
from . import _serial as serial


def pickle_payload(fn: Callable[..., Any], setup: Callable[[], Any] | None, stage: str) -> bytes:
    """Pickle a stage's function and setup with cloudpickle, so lambdas and closures travel.

    :raises UnpicklableError: naming the stage, if either cannot be pickled
    """
    try:
        payload = serial.dumps((fn, setup))
    except Exception as exc:
        raise UnpicklableError(
            f"stage {stage}: its function or setup cannot be pickled for worker processes: {exc}"
        ) from exc
    return payload
