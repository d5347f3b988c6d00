"""Worker processes start warm, preloaded, and with sane native thread counts."""

from __future__ import annotations

import os
import time

import anyio
import pytest

import pipework
from helpers import run_script
from pipework import Pipeline
from pipework._executors import THREAD_VARIABLES, default_workers
from pipework._worker import _trampoline as _worker


def thread_settings(_):
    return os.getpid(), {name: os.environ.get(name) for name in THREAD_VARIABLES}


async def test_workers_get_cores_divided_by_workers_threads(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    expected = str(max(1, default_workers() // 2))
    outs = await pipework.map(thread_settings, range(50), workers=2)
    assert {value for _, env in outs for value in env.values()} == {expected}


async def test_a_thread_count_the_user_set_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    outs = await pipework.map(thread_settings, range(10), workers=2)
    assert {env["OMP_NUM_THREADS"] for _, env in outs} == {"3"}
    assert os.environ["OMP_NUM_THREADS"] == "3"  # the parent's own setting is untouched


async def test_every_worker_is_set_up_before_the_first_item_arrives(tmp_path):
    # The source yields nothing until both workers have run setup, and each
    # setup waits for the other worker's, as a slow model load would keep a
    # worker busy: only warm-up calls, made when the stage opens, can get both
    # workers there before any item is sent.
    marks = tmp_path / "setups"
    marks.mkdir()

    def setup():
        (marks / str(os.getpid())).touch()
        deadline = time.monotonic() + 20
        while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        return os.getpid()

    async def items():
        with anyio.fail_after(30):
            while len(list(marks.iterdir())) < 2:
                await anyio.sleep(0.02)
        for i in range(4):
            yield i

    pids = [
        pid
        async for pid in Pipeline(items())
        .map(lambda state, _: state, setup=setup, on="process", workers=2)
        .stream()
    ]
    assert len(pids) == 4
    assert set(pids) <= {int(p.name) for p in marks.iterdir()}


SCRIPT = """
import asyncio, json, multiprocessing.forkserver, os, sys
import pipework

def modules(_):
    return sorted(m for m in ("pipework._worker._trampoline", "cloudpickle") if m in sys.modules)

async def main():
    loaded = await pipework.map(modules, [1], workers=1)
    preload = multiprocessing.forkserver._forkserver._preload_modules
    print(json.dumps({"preload": preload, "worker": loaded[0]}))

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_the_forkserver_preloads_the_worker_modules(tmp_path):
    done = run_script(tmp_path, SCRIPT)
    assert done.returncode == 0, done.stderr
    assert '"__main__"' in done.stdout
    assert '"pipework._worker._trampoline"' in done.stdout
    assert '"worker": ["cloudpickle", "pipework._worker._trampoline"]' in done.stdout


NO_GUARD = """
import asyncio, pipework

def double(x):
    return x * 2

print("result", asyncio.run(pipework.map(double, [1, 2, 3], workers=2)))
"""


def test_a_script_without_a_main_guard_fails_fast_and_says_why(tmp_path):
    # Workers import the main module; without the guard each would start the
    # pipeline again. pipework refuses in the worker, and the parent's error
    # points at the guard: no hang, no fork bomb.
    done = run_script(tmp_path, NO_GUARD)
    assert done.returncode != 0
    assert "result" not in done.stdout
    assert "a pipeline was started while a worker process was importing" in done.stderr
    assert "WorkerStartError" in done.stderr
    assert "if __name__ == '__main__':" in done.stderr
    assert "InvalidStateError" not in done.stderr  # a supervisor callback that failed
    assert "Exception in callback" not in done.stderr


def test_threadpoolctl_limits_a_native_library_that_is_already_loaded():
    np = pytest.importorskip("numpy")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    np.ones(4) @ np.ones(4)  # BLAS is loaded, with the threads it chose then
    with threadpoolctl.threadpool_limits(None):  # restored when the test ends
        _worker._limit_loaded_libraries(1)
        blas = [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
        assert blas, "numpy should have loaded a BLAS library"
        assert {lib["num_threads"] for lib in blas} == {1}
