"""Options: `Retry`'s checks and waits, the `backoff` both retries share, and the option checks.

`check_errors` and `check_retry` vet a stage's ``errors=`` and ``retry=``;
`pipework.http.Retry` waits by the same `backoff` as a stage's `Retry`.
"""

# ruff: noqa: S311 - seeded generators drive the jitter under test, not secrets

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from pipework import http
from pipework._http._retry import backoff_delay
from pipework._model._options import Retry, backoff, check_errors, check_retry


class Highest(random.Random):
    """A generator whose every uniform draw is the top of its range, to read the ceiling."""

    def uniform(self, a, b):  # noqa: ARG002 - only the top matters
        return b


def test_the_default_policy_is_valid_and_frozen():
    retry = Retry()
    assert (retry.attempts, retry.on) == (3, Exception)
    with pytest.raises(dataclasses.FrozenInstanceError):
        retry.attempts = 5


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"attempts": True}, TypeError, "attempts= must be a whole number, not True"),
        ({"attempts": 2.0}, TypeError, "attempts= must be a whole number, not 2.0"),
        ({"attempts": 0}, ValueError, "attempts= must be at least 1, not 0"),
        ({"base_delay": "1"}, TypeError, "base_delay= must be a number of seconds, not '1'"),
        ({"base_delay": False}, TypeError, "base_delay= must be a number of seconds"),
        ({"base_delay": -0.5}, ValueError, "base_delay= must be zero or more seconds, not -0.5"),
        ({"max_delay": math.nan}, ValueError, "max_delay= must be zero or more seconds, not nan"),
        ({"max_delay": math.inf}, ValueError, "max_delay= must be zero or more seconds, not inf"),
        ({"on": ()}, TypeError, "on= must be an exception type or a tuple of them"),
        ({"on": ValueError("x")}, TypeError, "on= must be an exception type"),
        ({"on": (ValueError, int)}, TypeError, "on= must be an exception type"),
        ({"on": KeyboardInterrupt}, TypeError, "on= must be an exception type"),
    ],
)
def test_retry_refuses_bad_settings_when_written(kwargs, error, message):
    with pytest.raises(error, match=r"^Retry: ") as caught:
        Retry(**kwargs)
    assert message in str(caught.value)


def test_retry_takes_zero_delays_and_a_tuple_of_types():
    retry = Retry(attempts=1, base_delay=0, max_delay=0, on=(ValueError, KeyError))
    assert retry.delay(1) == 0.0
    assert retry.delay(50) == 0.0


def test_retry_delay_stays_under_its_ceiling():
    retry = Retry(base_delay=0.25, max_delay=1.0)
    for attempt in range(1, 8):
        ceiling = min(1.0, 0.25 * 2 ** (attempt - 1))
        for _ in range(50):
            assert 0.0 <= retry.delay(attempt) <= ceiling


@pytest.mark.parametrize(("base", "top"), [(0.1, 10.0), (1.0, 3.0), (2.0, 1.0)])
def test_the_ceiling_doubles_from_base_delay_until_max_delay(base, top):
    for attempt in range(1, 20):
        expected = min(top, base * 2 ** (attempt - 1))
        assert backoff(base, top, attempt, Highest()) == pytest.approx(expected)


def test_a_huge_attempt_number_waits_max_delay_at_most_without_overflow():
    assert backoff(0.1, 10.0, 5000, Highest()) == 10.0
    assert 0.0 <= backoff(0.1, 10.0, 5000, random.Random(1)) <= 10.0
    assert backoff(1e300, 7.0, 5000, Highest()) == 7.0


def test_backoff_is_never_negative():
    rng = random.Random(2024)
    waits = [backoff(0.5, 30.0, attempt, rng) for attempt in range(1, 12) for _ in range(200)]
    assert min(waits) >= 0.0
    assert len(set(waits)) > 1  # jittered: not one fixed value


def test_backoff_with_a_seeded_generator_is_deterministic():
    first = [backoff(0.2, 5.0, n, random.Random(7)) for n in range(1, 10)]
    second = [backoff(0.2, 5.0, n, random.Random(7)) for n in range(1, 10)]
    assert first == second
    # full jitter: one uniform draw between zero and the ceiling
    assert first[0] == random.Random(7).uniform(0.0, 0.2)


def test_an_http_retry_waits_exactly_as_backoff_does():
    retry = http.Retry(base_delay=0.3, max_delay=4.0)
    for attempt in (1, 2, 3, 5, 9, 5000):
        assert backoff_delay(retry, attempt, random.Random(attempt)) == backoff(
            0.3, 4.0, attempt, random.Random(attempt)
        )
    shared_a, shared_b = random.Random(11), random.Random(11)
    assert [backoff_delay(retry, n, shared_a) for n in range(1, 6)] == [
        backoff(0.3, 4.0, n, shared_b) for n in range(1, 6)
    ]


@pytest.mark.parametrize("errors", ["raise", "skip"])
def test_check_errors_takes_the_named_policies(errors):
    assert check_errors(errors, "#1 'parse'") == errors


def test_check_errors_takes_a_dead_letter_callable_as_it_is():
    def handler(failure):
        return None

    assert check_errors(handler, "#1 'parse'") is handler


@pytest.mark.parametrize("errors", ["ignore", None, 3, b"skip"])
def test_check_errors_refuses_anything_else_naming_the_stage(errors):
    with pytest.raises(ValueError, match=r"^#1 'parse': errors= must be 'raise', 'skip'") as caught:
        check_errors(errors, "#1 'parse'")
    assert repr(errors) in str(caught.value)


def test_check_retry_takes_none_a_policy_or_a_number_of_attempts():
    policy = Retry(attempts=4)
    assert check_retry(None, "s") is None
    assert check_retry(policy, "s") is policy
    assert check_retry(5, "s") == Retry(attempts=5)
    assert check_retry(1, "s").attempts == 1


def test_check_retry_refuses_fewer_than_one_attempt():
    with pytest.raises(ValueError, match=r"^#2 'f': retry= must be at least 1 attempt, not 0$"):
        check_retry(0, "#2 'f'")


@pytest.mark.parametrize("retry", [True, 2.5, "3", http.Retry()])
def test_check_retry_refuses_what_is_not_a_count_or_a_stage_retry(retry):
    with pytest.raises(TypeError, match=r"^#2 'f': retry= must be a number of attempts"):
        check_retry(retry, "#2 'f'")
