"""Failure: the record of an item that failed for good, frozen, and able to travel."""

from __future__ import annotations

import pickle

import pytest

from pipework import Failure


def test_a_failure_is_frozen_and_keeps_its_error():
    error = ValueError("bad record")
    failure = Failure(stage="#1 'parse' (process map)", index=5, item="5", error=error, attempts=2)
    assert failure.error is error
    with pytest.raises(AttributeError):
        failure.index = 6  # type: ignore[misc]


def test_a_failure_travels_through_pickle_with_its_error():
    failure = Failure(stage="#1 'parse'", index=5, item="5", error=ValueError("bad"), attempts=1)
    back = pickle.loads(pickle.dumps(failure))
    assert (back.stage, back.index, back.item, back.attempts) == ("#1 'parse'", 5, "5", 1)
    assert isinstance(back.error, ValueError)
    assert back.error.args == ("bad",)
