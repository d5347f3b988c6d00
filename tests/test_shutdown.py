"""Graceful stops: the source stops, the items in flight finish, and the report comes back."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import anyio
import pytest

import pipework
from pipework import Pipeline

pytestmark = pytest.mark.timeout(60)


def slow_double(x):
    time.sleep(0.01)
    return x * 2


async def endless():
    n = 0
    while True:
        yield n
        n += 1
        await asyncio.sleep(0)


@pytest.mark.parametrize("event_type", [asyncio.Event, anyio.Event])
async def test_a_stop_drains_what_the_source_gave_and_returns_the_report(event_type):
    stop = event_type()
    seen = []

    def sink(x):
        seen.append(x)
        if len(seen) == 50:
            stop.set()

    report = (
        await Pipeline(endless())
        .map(slow_double, on="process", workers=2)
        .sink(sink)
        .run(stop=stop)
    )
    taken = report.stages[0].items_out
    assert taken >= 50
    # Everything the source gave came out, in order: nothing was cut off.
    assert seen == [x * 2 for x in range(taken)]
    assert report.stages[2].items_in == taken


async def test_a_stop_set_before_the_run_runs_nothing():
    stop = asyncio.Event()
    stop.set()
    report = await Pipeline(range(10)).map(abs).run(stop=stop)
    assert report.stages[0].items_out == 0


async def test_a_stop_runs_an_async_generators_finally():
    closed = []

    async def source():
        try:
            n = 0
            while True:
                yield n
                n += 1
                await asyncio.sleep(0.001)
        finally:
            await asyncio.sleep(0)
            closed.append(True)

    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, stop.set)
    await Pipeline(source()).map(abs).run(stop=stop)
    assert closed == [True]


async def test_the_first_signal_stops_gracefully_and_the_second_cancels():
    async with pipework.stop_on_signals() as stop:
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, os.kill, os.getpid(), signal.SIGTERM)
        report = await Pipeline(endless()).map(abs).run(stop=stop)
        assert stop.is_set()
        assert report.stages[0].items_out > 0

    async def second_signal():
        async with pipework.stop_on_signals(signal.SIGUSR1) as stop:
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.sleep(0.05)
            assert stop.is_set()
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.sleep(10)

    with pytest.raises(asyncio.CancelledError):
        await asyncio.ensure_future(second_signal())


def test_ctrl_c_stops_the_cli_demo_gracefully_and_it_still_reports():
    import subprocess
    import sys

    pytest.importorskip("sklearn")  # the demo's model; in the dev extra, not in test

    demo = subprocess.Popen(
        [sys.executable, "-m", "pipework", "demo", "--count", "1000000", "--loop", "asyncio"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        assert demo.stdout.readline().startswith("pipework demo:")
        time.sleep(1.5)  # under way: records fetched and in the process stage
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=30)
    finally:
        demo.kill()
    assert demo.returncode == 0, err
    assert "stopped early by a signal" in out
    assert "checksum" in out
