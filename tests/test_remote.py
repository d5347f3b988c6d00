"""An engine's side and pipework's side of a chunk: `work` in a worker, `RemoteRunner` here.

`work` is what an engine's task runs; it is called here as an engine's
worker thread would call it. `RemoteRunner` drives an engine's `Workers`;
the engine in these tests is a thread pool, which is all the protocol asks:
run ``work`` somewhere and hand back its bytes.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

import pipework
from pipework import ItemTimeoutError, StagePlan
from pipework._executors._remote import RemoteRunner
from pipework._worker import _remote, _serial
from pipework._worker._payload import pickle_payload
from pipework._worker._remote import OPS, chunk_of, outcome_of, work
from pipework._worker._serial import NotPicklableError


def payload(fn, setup=None):
    return pickle_payload(fn, setup, "#1 'test' (threads map)")


def chunk(op, items):
    return chunk_of(op, _serial.pack_values(items)[0])


def key():
    return f"{os.getpid()}-{secrets.token_hex(8)}"


# Module-level, so the payload refers to them by name and a test sees what they
# record: a closure would travel by value, its lists copied.
SETUPS: list[int] = []


def counted_setup():
    SETUPS.append(threading.get_ident())
    return "model"


def use(state, x):
    return state, x


def failing_setup():
    SETUPS.append(threading.get_ident())
    raise OSError("no model")


# work: one chunk in, its outcome out --------------------------------------------------


@pytest.mark.parametrize("op", OPS)
def test_each_op_travels_in_the_chunks_first_byte(op):
    fns = {
        "map": lambda x: x + 1,
        "filter": lambda x: x % 2,
        "flat_map": lambda x: [x, x],
        "map_batches": lambda xs: [x * 10 for x in xs],
    }
    results, seconds, failure = outcome_of(work(key(), payload(fns[op]), chunk(op, [1, 2, 3])))
    expected = {
        "map": [2, 3, 4],
        "filter": [True, False, True],  # what the stage keeps, decided here
        "flat_map": [[1, 1], [2, 2], [3, 3]],
        "map_batches": [10, 20, 30],
    }
    assert failure is None
    assert seconds >= 0
    assert results == expected[op]


def test_a_failure_comes_back_portable_with_its_position_and_the_workers_traceback():
    def fail_on_2(x):
        if x == 2:
            raise KeyError(x)
        return x

    results, _, (position, error, traceback) = outcome_of(
        work(key(), payload(fail_on_2), chunk("map", [0, 1, 2, 3]))
    )
    assert (results, position) == ([0, 1], 2)
    assert isinstance(error, KeyError)
    assert "fail_on_2" in traceback


def test_setup_runs_once_per_process_however_many_threads_start_at_once():
    SETUPS.clear()
    gate = threading.Barrier(8)
    stage, sent = key(), payload(use, counted_setup)

    def one(i):
        gate.wait(timeout=10)  # every thread asks for the stage at once
        return outcome_of(work(stage, sent, chunk("map", [i])))[0]

    with ThreadPoolExecutor(8) as threads:
        results = list(threads.map(one, range(8)))
    assert results == [[("model", i)] for i in range(8)]
    assert len(SETUPS) == 1


def test_a_setup_that_raises_fails_at_minus_one_and_is_tried_again_on_the_next_chunk():
    SETUPS.clear()
    stage, sent = key(), payload(use, failing_setup)
    for _ in range(2):
        results, _, (position, error, _) = outcome_of(work(stage, sent, chunk("map", [1])))
        assert (results, position) == ([], -1)
        assert isinstance(error, OSError)
    assert len(SETUPS) == 2  # a failed setup is not kept


def test_a_result_that_cannot_travel_fails_its_item_and_keeps_the_ones_before():
    def lock_on_1(x):
        return threading.Lock() if x == 1 else x

    results, _, (position, error, _) = outcome_of(
        work(key(), payload(lock_on_1), chunk("map", [0, 1, 2]))
    )
    assert (results, position) == ([0], 1)
    assert isinstance(error, pipework.UnpicklableError)


def test_large_buffers_travel_inside_the_bytes_never_through_shared_memory():
    np = pytest.importorskip("numpy")
    data, segments = _serial.pack_values([np.ones(1 << 18)])  # 2 MB
    assert segments == ()
    reply = work(key(), payload(lambda a: a * 2), chunk_of("map", data))
    [doubled] = outcome_of(reply)[0]
    assert doubled.nbytes == 1 << 21
    assert float(doubled[0]) == 2.0
    assert len(reply) > 1 << 21  # the array came back in the reply itself


def test_the_stages_a_process_keeps_are_bounded():
    sent = payload(abs)
    for n in range(_remote._MAX_STAGES + 5):
        work(f"bounded-{n}", sent, chunk("map", [-1]))
    assert len(_remote._stages) <= _remote._MAX_STAGES


# RemoteRunner: pipework's side --------------------------------------------------------


class Threads:
    """An engine's workers, here threads; ``capacity`` and ``abilities`` as given."""

    def __init__(self, plan, capacity=4, abilities=None, hold=None):
        self.plan = plan
        self.capacity = capacity
        self.abilities = abilities or pipework.Abilities()
        self.hold = hold
        self.closed = []
        self.chunks = []

    async def run(self, chunk):
        self.chunks.append(len(chunk))
        if self.hold is not None:
            await self.hold.wait()
        return await anyio.to_thread.run_sync(work, self.plan.key, self.plan.payload, chunk)

    async def aclose(self, *, aborted):
        self.closed.append(aborted)


def plan_of(fn, workers=None):
    return StagePlan("#1 'test' (threads map)", key(), payload(fn), workers)


async def test_a_runner_sends_a_chunk_and_reads_its_outcome():
    plan = plan_of(lambda x: -x)
    runner = RemoteRunner(Threads(plan), plan)
    assert (runner.remote, runner.supervised) == (True, False)
    assert await runner.run_chunk("map", [1, 2]) == ([-1, -2], pytest.approx(0, abs=1), None)


async def test_capacity_is_the_engines_or_workers_if_fewer_and_never_zero():
    plan = plan_of(abs)
    assert RemoteRunner(Threads(plan, capacity=8), plan).capacity == 8
    assert RemoteRunner(Threads(plan, capacity=0), plan).capacity == 1
    fewer = plan_of(abs, workers=3)
    assert RemoteRunner(Threads(fewer, capacity=8), fewer).capacity == 3
    more = plan_of(abs, workers=30)
    assert RemoteRunner(Threads(more, capacity=8), more).capacity == 8


async def test_the_engines_abilities_set_the_chunk_time_and_what_a_loss_means():
    plan = plan_of(abs)
    abilities = pipework.Abilities(reruns_lost_work=False, chunk_time=0.25)
    runner = RemoteRunner(Threads(plan, abilities=abilities), plan)
    assert (runner.chunk_time, runner.reruns_lost_work) == (0.25, False)


async def test_an_item_that_cannot_be_pickled_is_named_before_anything_is_sent():
    plan = plan_of(str)
    workers = Threads(plan)
    runner = RemoteRunner(workers, plan)
    with pytest.raises(NotPicklableError) as caught:
        await runner.run_chunk("map", [1, threading.Lock()])
    assert caught.value.position == 1
    assert workers.chunks == []


@pytest.mark.timeout(30)
async def test_a_chunk_past_its_timeout_is_an_item_timeout_and_its_run_is_cancelled():
    plan = plan_of(abs)
    hold = asyncio.Event()  # never set: the engine never answers
    runner = RemoteRunner(Threads(plan, hold=hold), plan)
    with pytest.raises(ItemTimeoutError) as caught:
        await runner.run_chunk("map", [1], item_timeout=0.1)
    assert caught.value.position == 0  # one item: it is the one
    with pytest.raises(ItemTimeoutError) as caught:
        await runner.run_chunk("map", [1, 2], item_timeout=0.1)
    assert caught.value.position is None  # which of two, no one can say


@pytest.mark.parametrize("kills", [True, False])
async def test_a_timeout_says_the_task_runs_on_where_the_engine_cannot_stop_it(kills):
    plan = plan_of(abs)
    abilities = pipework.Abilities(kills_overrunning=kills)
    runner = RemoteRunner(Threads(plan, abilities=abilities, hold=asyncio.Event()), plan)
    with pytest.raises(ItemTimeoutError) as caught:
        await runner.run_chunk("map", [1], item_timeout=0.1)
    runs_on = any("cannot stop a running task" in n for n in getattr(caught.value, "__notes__", []))
    assert runs_on is not kills


async def test_closing_the_runner_closes_the_workers_even_when_cancelled():
    plan = plan_of(abs)
    workers = Threads(plan)
    runner = RemoteRunner(workers, plan)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await runner.aclose(aborted=True)
    assert workers.closed == [True]


async def test_large_chunks_are_packed_and_read_off_the_event_loop():
    np = pytest.importorskip("numpy")
    plan = plan_of(lambda a: a + 1)
    runner = RemoteRunner(Threads(plan), plan)
    arrays = [np.zeros(1 << 18) for _ in range(3)]  # 6 MB a chunk
    for _ in range(2):  # the second chunk goes through the large path
        results, _, failure = await runner.run_chunk("map", arrays)
        assert failure is None
        assert [float(a[0]) for a in results] == [1.0, 1.0, 1.0]
    assert runner._large


class Counting(Threads):
    """Workers that count how many chunks they run at once."""

    def __init__(self, plan, capacity):
        super().__init__(plan, capacity)
        self.now = self.most = 0

    async def run(self, chunk):
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.01)  # the engine is busy with it
            return await super().run(chunk)
        finally:
            self.now -= 1


async def test_workers_is_a_ceiling_on_chunks_at_once_though_the_engine_has_room():
    plan = plan_of(abs, workers=2)
    workers = Counting(plan, capacity=8)
    runner = RemoteRunner(workers, plan)
    await asyncio.gather(*(runner.run_chunk("map", [i]) for i in range(10)))
    assert workers.most == 2
    unlimited = plan_of(abs)
    free = Counting(unlimited, capacity=8)
    await asyncio.gather(*(RemoteRunner(free, unlimited).run_chunk("map", [i]) for i in range(10)))
    assert free.most == 10  # without workers=, the stage's own window is the bound
