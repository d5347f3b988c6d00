"""Payload: a stage's function and setup, pickled once for its worker processes.

Lambdas and closures travel by value (cloudpickle), keep their file and lines
for tracebacks, and load in a real worker process; a function or setup that
cannot be pickled raises `UnpicklableError` naming the stage.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

from pipework import UnpicklableError
from pipework._worker import _buffers as buffers
from pipework._worker._payload import pickle_payload
from pipework._worker._trampoline import run_chunk

STAGE = "#2 'scale' (process map)"


def make_scaler(factor):
    def scale(state, x):
        return state["offset"] + x * factor

    return scale


def test_a_lambda_and_no_setup_round_trip():
    fn, setup = pickle.loads(pickle_payload(lambda x: x + 1, None, STAGE))
    assert setup is None
    assert fn(41) == 42


def test_a_closure_keeps_what_it_closed_over_and_setup_travels_too():
    payload = pickle_payload(make_scaler(3), lambda: {"offset": 100}, STAGE)
    assert isinstance(payload, bytes)
    fn, setup = pickle.loads(payload)
    assert fn(setup(), 2) == 106


def test_a_function_sent_by_value_keeps_its_file_and_first_line():
    def local(x):
        return x

    fn, _ = pickle.loads(pickle_payload(local, None, STAGE))
    assert fn.__code__.co_filename == __file__
    assert fn.__code__.co_firstlineno == local.__code__.co_firstlineno


def test_the_payload_loads_and_runs_in_a_worker_process():
    factor = 7
    payload = pickle_payload(lambda x: (x * factor, __name__), None, STAGE)
    key = buffers.new_key()
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        results, _, failure = pool.submit(run_chunk, key, payload, "map", [1, 2]).result(60)
    assert failure is None
    assert results == [(7, __name__), (14, __name__)]


def test_an_unpicklable_function_names_the_stage():
    lock = threading.Lock()

    def locked(x):
        with lock:
            return x

    with pytest.raises(UnpicklableError) as caught:
        pickle_payload(locked, None, STAGE)
    message = str(caught.value)
    assert message.startswith(f"stage {STAGE}: its function or setup cannot be pickled")
    assert "lock" in message  # pickle's own reason is in the message
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value.__cause__, TypeError)
    assert "lock" in str(caught.value.__cause__)


def test_an_unpicklable_setup_is_refused_as_well():
    lock = threading.Lock()
    with pytest.raises(UnpicklableError, match=r"^stage #1 'x': its function or setup"):
        pickle_payload(lambda _state, x: x, lambda: lock, "#1 'x'")
