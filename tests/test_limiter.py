"""`RateLimiter`, the token bucket of `pipework.http`, on an injected clock.

`tests/test_http_stage.py` shows the limiter spacing requests at a real
server and refilling up to its burst after a pause. Here are the parts of
its contract those cannot see: partial refills, float round-off that must
cost no extra sleep, a caller that gives up while it waits, and the
running loop's clock by default.
"""

from __future__ import annotations

import asyncio

import pytest

from pipework._http._limiter import RateLimiter

pytestmark = pytest.mark.timeout(30)


class FakeTime:
    """A clock that moves only when the limiter sleeps, by exactly what it asked for."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    async def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class HeldSleep:
    """A sleep that lasts until the test lets it end."""

    def __init__(self):
        self.started = asyncio.Event()
        self.wake = asyncio.Event()
        self.calls = 0

    async def sleep(self, _seconds):
        self.calls += 1
        self.started.set()
        await self.wake.wait()


@pytest.mark.parametrize("rate", [3.0, 7.0, 10.0, 0.3, 1 / 3])
async def test_each_token_past_the_burst_costs_exactly_one_sleep(rate):
    # 1/rate is not exact in binary: without slack, the bucket would hold
    # 0.9999999 of a token after its sleep and sleep again for nothing.
    time = FakeTime()
    limiter = RateLimiter(rate, 2, clock=time.clock, sleep=time.sleep)
    for _ in range(12):
        await limiter.acquire()
    assert len(time.sleeps) == 10
    assert time.now == pytest.approx(10 / rate)


async def test_a_partial_refill_shortens_the_next_wait():
    time = FakeTime()
    limiter = RateLimiter(10.0, 1, clock=time.clock, sleep=time.sleep)
    await limiter.acquire()  # the bucket is empty now
    time.now += 0.04  # 0.4 of a token comes back
    await limiter.acquire()
    assert time.sleeps == [pytest.approx(0.06)]


async def test_a_rate_below_one_a_second_spaces_calls_by_its_interval():
    time = FakeTime()
    limiter = RateLimiter(0.5, 1, clock=time.clock, sleep=time.sleep)
    passed = []
    for _ in range(3):
        await limiter.acquire()
        passed.append(time.now)
    assert passed == pytest.approx([0.0, 2.0, 4.0])


async def test_time_going_back_adds_no_tokens():
    time = FakeTime()
    time.now = 100.0
    limiter = RateLimiter(1.0, 1, clock=time.clock, sleep=time.sleep)
    await limiter.acquire()
    time.now = 50.0  # a clock that stepped back: no negative refill, no free token
    await limiter.acquire()
    assert time.sleeps == [pytest.approx(1.0)]


async def test_a_caller_that_gives_up_while_waiting_takes_no_token_and_lets_the_next_go():
    held = HeldSleep()
    now = 0.0
    limiter = RateLimiter(1.0, 1, clock=lambda: now, sleep=held.sleep)
    await limiter.acquire()  # the only token

    quitter = asyncio.create_task(limiter.acquire())
    await asyncio.wait_for(held.started.wait(), 10)
    patient = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter

    now = 1.0  # one token's worth of time: the patient caller gets it without sleeping
    held.wake.set()
    await asyncio.wait_for(patient, 10)
    assert held.calls <= 2  # the quitter's sleep, and at most one of the patient's


async def test_callers_queue_first_come_first_served():
    time = FakeTime()
    limiter = RateLimiter(100.0, 1, clock=time.clock, sleep=time.sleep)
    order = []

    async def call(name):
        await limiter.acquire()
        order.append(name)

    await asyncio.gather(*(call(name) for name in "abcdef"))
    assert order == list("abcdef")


async def test_by_default_it_waits_on_the_running_loops_clock():
    loop = asyncio.get_running_loop()
    rate, burst, calls = 200.0, 2, 6
    limiter = RateLimiter(rate, burst)
    start = loop.time()
    for _ in range(calls):
        await limiter.acquire()
    # A lower bound only: load can make it slower, never faster.
    assert loop.time() - start >= (calls - burst) / rate - 1e-6


def test_without_a_running_loop_a_clock_must_be_given():
    with pytest.raises(RuntimeError, match="no running event loop"):
        RateLimiter(1.0, 1)
