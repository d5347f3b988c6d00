"""Process stages survive their workers: real SIGKILLs, real exits, real hangs."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from helpers import alive
from pipework import ItemTimeoutError, Pipeline, WorkerDiedError

pytestmark = pytest.mark.timeout(120)


def workers():
    return [p for p in multiprocessing.active_children() if p.name == "pipework-worker"]


def shm_segments():
    shm = Path("/dev/shm")  # noqa: S108 - where pipework's segments live, not a temp file
    return sorted(p.name for p in shm.glob(f"pipework-{os.getpid()}-*"))


def spin(x):
    deadline = time.perf_counter() + 0.0005
    while time.perf_counter() < deadline:
        pass
    return x * 2


def exit_on_77(x):
    if x == 77:
        os._exit(3)
    return x


def hang_on_5(x):
    if x == 5:
        time.sleep(60)
    return x


async def test_sigkilling_a_random_worker_every_200_items_loses_nothing():
    rng = random.Random(7)  # noqa: S311 - picks a victim, not a secret
    outputs, kills = [], 0
    async for out in Pipeline(range(5000)).map(spin, on="process", workers=2):
        outputs.append(out)
        if len(outputs) % 200 == 0 and (victims := workers()):
            os.kill(rng.choice(victims).pid, signal.SIGKILL)
            kills += 1
    assert outputs == [x * 2 for x in range(5000)]  # none lost, none twice, in order
    assert kills >= 20


async def test_a_poison_item_is_pinned_and_skipped_and_the_rest_succeed():
    report = (
        await Pipeline(range(300)).map(exit_on_77, on="process", workers=2, errors="skip").run()
    )
    [failure] = report.failures
    assert failure.index == 77
    assert failure.item == "77"
    assert isinstance(failure.error, WorkerDiedError)
    assert failure.error.exitcode == 3
    assert "exit_on_77" in failure.stage
    assert report.stages[1].items_out == 299
    assert report.stages[1].items_failed == 1


async def test_a_poison_item_stops_a_raising_stage_with_its_name():
    with pytest.raises(WorkerDiedError) as caught:
        await Pipeline(range(300)).map(exit_on_77, on="process", workers=2).run()
    assert "killed 3 worker processes" in str(caught.value)
    assert any("on item 77: 77" in note for note in caught.value.__notes__)


async def test_a_hanging_item_times_out_alone_and_its_worker_is_replaced():
    pipeline = Pipeline(range(20)).map(hang_on_5, on="process", workers=2, timeout=1, errors="skip")
    outputs = [x async for x in pipeline]
    assert outputs == [x for x in range(20) if x != 5]
    report = await pipeline.run()
    [failure] = report.failures
    assert failure.index == 5
    assert isinstance(failure.error, ItemTimeoutError)
    assert failure.error.timeout == 1.0


async def test_a_hanging_item_raises_its_timeout_by_default():
    with pytest.raises(ItemTimeoutError) as caught:
        await Pipeline(range(20)).map(hang_on_5, on="process", workers=2, timeout=0.5).run()
    assert isinstance(caught.value, TimeoutError)
    assert any("on item 5: 5" in note for note in caught.value.__notes__)


def slow_setup():
    time.sleep(1.0)
    return "model"


def pid_with(state, x):
    time.sleep(0.01)
    return state, x, os.getpid()


@pytest.mark.parametrize("on", ["process", "thread"])
async def test_setup_does_not_count_against_an_items_timeout(on):
    # Before: a process stage's workers were killed in their setup over and
    # over (60 started in 15 s, no item ever ran); a thread stage's first
    # items timed out while their threads ran setup.
    pipeline = Pipeline(range(20)).map(pid_with, setup=slow_setup, on=on, workers=2, timeout=0.5)
    with anyio.fail_after(60):
        outputs = [out async for out in pipeline]
    assert [(state, x) for state, x, _ in outputs] == [("model", x) for x in range(20)]
    if on == "process":
        assert len({pid for *_, pid in outputs}) == 2  # no worker was replaced


def nap(x):
    time.sleep(0.3)
    return x


async def test_a_timeout_shorter_than_a_workers_start_fails_items_not_the_pool(caplog):
    # Before: WorkerStartError, "3 in a row died starting", and an
    # InvalidStateError traceback from the supervisor's callback.
    caplog.set_level("ERROR", logger="asyncio")
    report = await (
        Pipeline(range(4)).map(nap, on="process", workers=1, timeout=0.05, errors="skip").run()
    )
    assert [f.index for f in report.failures] == [0, 1, 2, 3]
    assert all(isinstance(f.error, ItemTimeoutError) for f in report.failures)
    assert not [r for r in caplog.records if r.name == "asyncio"]


async def test_cancelling_mid_run_leaves_no_process_and_no_segment():
    import numpy as np

    def heavy(x):
        time.sleep(0.05)
        return np.full(300_000, x)  # 2.4 MB: through shared memory

    before = shm_segments()
    task = asyncio.ensure_future(Pipeline(range(1000)).map(heavy, on="process", workers=2).run())
    await asyncio.sleep(1.5)
    assert workers()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not multiprocessing.active_children()
    assert shm_segments() == before


PARENT = """
import asyncio, os, sys, time
from pipework import Pipeline

def nap(x):
    time.sleep(60)
    return x

async def main():
    async for _ in Pipeline(range(4)).map(nap, on="process", workers=2):
        pass

if __name__ == "__main__":
    asyncio.run(main())
"""


def children_of(pid):
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_sigkilling_the_parent_takes_its_workers_down_within_2_seconds(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(PARENT))
    parent = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 30
        worker_pids = []
        while time.monotonic() < deadline and len(worker_pids) < 2:
            time.sleep(0.1)
            # Workers are children of the fork server, which is the parent's child.
            worker_pids = [w for server in children_of(parent.pid) for w in children_of(server)]
        assert len(worker_pids) >= 2, "the workers never started"
        parent.kill()
        parent.wait()
        time.sleep(2)
        assert not [pid for pid in worker_pids if alive(pid)]
    finally:
        parent.kill()
        parent.wait()
