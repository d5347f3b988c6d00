"""Process stages on a real Ray cluster: ``on=pipework.ray()``.

The cluster is a local Ray instance of two CPUs, started once for this
module by ``ray.init``. Ray starts its processes (GCS, raylet, workers)
with ``subprocess``, not ``multiprocessing``, so the suite's check that no
child of ours outlives a test is not troubled by them; they go at
``ray.shutdown()`` when the module ends. Ray reuses its worker processes
from test to test, as it does from run to run.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest

import pipework
from helpers import alive, my_segments, run_script
from pipework import Pipeline, WorkerDiedError

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install ray)")

from pipework._executors._ray import _tasks_at_once  # noqa: E402 - only with Ray

CPUS = 2


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance of two CPUs for the module; ``ray.shutdown()`` after its last test."""
    with pytest.MonkeyPatch.context() as env:
        # The workers import this module's functions by name, as a user's
        # workers import the user's modules: they need them on their path.
        # Ray's processes take the environment they start in.
        env.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), *sys.path]))
        # Workers' output stays in Ray's log files, out of the test's output.
        ray.init(num_cpus=CPUS, include_dashboard=False, log_to_driver=False)
    # Ray's tqdm support replaces builtins.print for the whole process when it
    # first sees a bar (RAY_TQDM_PATCH_PRINT); the tests after these need the
    # real one, so it is put back.
    real_print = builtins.print
    try:
        yield
    finally:
        ray.shutdown()
        builtins.print = real_print


def square(x):
    return x * x


@pytest.mark.timeout(60)
async def test_results_equal_the_local_ones_in_order(cluster):
    on_ray = [x async for x in Pipeline(range(5000)).map(square, on=pipework.ray())]
    local = [x async for x in Pipeline(range(5000)).map(square, on="process", workers=2)]
    assert on_ray == local == [x * x for x in range(5000)]


@pytest.mark.timeout(60)
async def test_lambdas_and_closures_travel_to_the_cluster(cluster):
    offset = 7
    stage = Pipeline(range(10)).map(lambda x: x + offset, on=pipework.ray())
    assert [x async for x in stage.filter(lambda x: x % 2, on=pipework.ray())] == [7, 9, 11, 13, 15]


@pytest.mark.timeout(60)
async def test_the_report_names_the_engine_and_counts_every_item(cluster):
    report = await Pipeline(range(100)).map(square, on=pipework.ray(), name="sq").run()
    stage = report.stages[1]
    assert (stage.name, stage.kind) == ("sq", "ray map")
    assert (stage.items_in, stage.items_out, stage.items_failed) == (100, 100, 0)


@pytest.mark.timeout(60)
async def test_setup_runs_once_per_worker_process(cluster, tmp_path):
    log = tmp_path / "setups"

    def load():
        with log.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return os.getpid()

    def use(state, x):
        return state, os.getpid(), x

    out = [x async for x in Pipeline(range(2000)).map(use, on=pipework.ray(), setup=load)]
    assert [x for _, _, x in out] == list(range(2000))
    assert all(state == pid for state, pid, _ in out)  # each worker's own setup
    setups = [int(pid) for pid in log.read_text().split()]
    assert len(setups) == len(set(setups))  # once per process, though Ray keeps its workers
    assert set(setups) == {pid for _, pid, _ in out}


@pytest.mark.timeout(60)
async def test_a_setup_that_raises_fails_the_stage_with_its_error(cluster):
    def broken():
        raise LookupError("no model here")

    with pytest.raises(LookupError, match="no model here") as caught:
        await Pipeline(range(3)).map(square, on=pipework.ray(), setup=broken).run()
    assert any("in the setup of stage" in note for note in caught.value.__notes__)


@pytest.mark.timeout(60)
async def test_large_arrays_come_back_intact_and_nothing_goes_through_shared_memory(cluster):
    np = pytest.importorskip("numpy")
    seen = []

    def make(i):
        return np.full(1_000_000, i, dtype=np.float64)  # 8 MB

    def check(a):
        seen.append(my_segments())
        return a

    arrays = [
        a
        async for a in Pipeline(range(6))
        .map(make, on=pipework.ray())
        .map(lambda a: a * 2, on=pipework.ray())
        .map(check)
    ]
    assert [a.nbytes for a in arrays] == [8_000_000] * 6
    assert all(float(a[0]) == float(a[-1]) == 2.0 * i for i, a in enumerate(arrays))
    assert seen == [[]] * 6
    assert my_segments() == []


def exit_on_3(x):
    if x == 3:
        os._exit(1)
    return x


@pytest.mark.timeout(90)
async def test_an_item_that_kills_its_workers_is_reported_and_the_rest_come_out(cluster):
    out = []
    report = await (
        Pipeline(range(8))
        .map(exit_on_3, on=pipework.ray(), chunksize=2, errors="skip")
        .sink(out.append)
        .run()
    )
    assert out == [0, 1, 2, 4, 5, 6, 7]
    [failure] = report.failures
    assert (failure.index, failure.item) == (3, "3")
    assert isinstance(failure.error, WorkerDiedError)
    # Ray does not rerun the chunk (max_retries=0): pipework counts the deaths.
    assert "killed 3 worker processes" in str(failure.error)
    assert "Ray worker died" in str(failure.error)
    assert "ray map" in failure.stage


def held(directory):
    """An item function that says which process runs it, and holds item 0 for 60 s."""

    def hold(x):
        Path(directory, f"{x}-{os.getpid()}").touch()
        if x == 0:
            time.sleep(60)
        return x

    return hold


def _pid_of(directory, x):
    [name] = [p.name for p in Path(directory).iterdir() if p.name.startswith(f"{x}-")]
    return int(name.partition("-")[2])


async def _until_the_cluster_is_idle():
    # A freed CPU reaches the cluster's view of its resources as a message.
    with anyio.fail_after(10):
        while ray.available_resources().get("CPU") != CPUS:
            await asyncio.sleep(0.02)


@pytest.mark.timeout(90)
async def test_cancelling_a_run_kills_its_tasks_on_the_cluster(cluster, tmp_path):
    run = asyncio.ensure_future(
        Pipeline(range(4)).map(held(tmp_path), on=pipework.ray(), chunksize=1).run()
    )
    while not any(p.name.startswith("0-") for p in tmp_path.iterdir()):
        await asyncio.sleep(0.02)  # until a worker has item 0 in hand
    started = time.monotonic()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    pid = _pid_of(tmp_path, 0)
    with anyio.fail_after(10):
        while alive(pid):  # the task's worker is killed, not left to sleep
            await asyncio.sleep(0.02)
    await _until_the_cluster_is_idle()
    assert time.monotonic() - started < 10


def nap(x):
    time.sleep(0.5)
    return os.getpid()


async def _a_worker_per_cpu():
    """Have Ray start a worker process per CPU, which it does only when tasks wait for one."""
    with anyio.fail_after(30):
        while True:
            pids = [
                pid async for pid in Pipeline(range(CPUS)).map(nap, on=pipework.ray(), chunksize=1)
            ]
            if len(set(pids)) == CPUS:
                return


@pytest.mark.timeout(60)
async def test_a_timeout_kills_an_overrunning_item(cluster, tmp_path):
    # The timeout counts from when the chunk is sent, and earlier tests killed
    # workers: have one per CPU first, so that items 1 and 2 wait for none to
    # start (a new one takes seconds on a busy machine).
    await _a_worker_per_cpu()
    failures = []
    started = time.monotonic()
    out = [
        x
        async for x in Pipeline(range(3)).map(
            held(tmp_path), on=pipework.ray(), timeout=2, errors=failures.append
        )
    ]
    assert time.monotonic() - started < 10  # not the 60 s item 0 would hold
    assert out == [1, 2]
    assert [f.index for f in failures] == [0]
    assert isinstance(failures[0].error, pipework.ItemTimeoutError)
    pid = _pid_of(tmp_path, 0)
    with anyio.fail_after(10):
        while alive(pid):
            await asyncio.sleep(0.02)
    await _until_the_cluster_is_idle()


@pytest.mark.timeout(60)
async def test_a_graph_with_a_ray_branch_and_a_local_branch(cluster):
    numbers = Pipeline(range(300))
    on_ray = numbers.map(square, on=pipework.ray())
    local = numbers.map(lambda x: -x, on="thread")
    pairs = [p async for p in pipework.zip(on_ray, local)]
    assert pairs == [(x * x, -x) for x in range(300)]


@pytest.mark.timeout(60)
async def test_an_unpicklable_item_is_named_before_it_reaches_the_cluster(cluster):
    failures = []
    items = [1, threading.Lock(), 3]
    out = [x async for x in Pipeline(items).map(str, on=pipework.ray(), errors=failures.append)]
    assert out == ["1", "3"]
    assert [f.index for f in failures] == [1]
    assert isinstance(failures[0].error, pipework.UnpicklableError)


def overlapping(directory):
    """An item function that returns how many items were running when it ran, itself included."""

    def run(x):
        mark = Path(directory, f"{x}.running")
        mark.touch()
        time.sleep(0.05)
        at_once = len(list(Path(directory).glob("*.running")))
        mark.unlink()
        return at_once

    return run


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("options", "most"),
    [({}, CPUS), ({"workers": 1}, 1), ({"num_cpus": CPUS}, 1)],
    ids=["cluster", "workers=1", "num_cpus=2"],
)
async def test_workers_and_num_cpus_cap_the_chunks_at_once(cluster, tmp_path, options, most):
    workers = options.get("workers")
    on = pipework.ray(num_cpus=options.get("num_cpus", 1))
    stage = Pipeline(range(20)).map(overlapping(tmp_path), on=on, workers=workers, chunksize=1)
    at_once = [x async for x in stage]
    assert max(at_once) <= most


def test_the_chunks_at_once_are_what_the_scarcest_resource_allows():
    cluster = {"CPU": 8.0, "GPU": 2.0, "memory": 16e9, "model": 3.0}
    assert pipework.ray()._needs() == {"CPU": 1.0}
    assert _tasks_at_once(cluster, pipework.ray()._needs()) == 8
    assert _tasks_at_once(cluster, pipework.ray(num_cpus=3)._needs()) == 2
    assert _tasks_at_once(cluster, pipework.ray(num_cpus=0.5, num_gpus=1)._needs()) == 2
    assert _tasks_at_once(cluster, pipework.ray(resources={"model": 1})._needs()) == 3
    assert _tasks_at_once(cluster, pipework.ray(memory=6e9)._needs()) == 2
    assert _tasks_at_once(cluster, pipework.ray(num_cpus=0)._needs()) == 8  # as one CPU
    assert _tasks_at_once({}, pipework.ray()._needs()) == 1  # a cluster with nothing yet


def test_task_options_that_pipework_sets_are_refused():
    with pytest.raises(TypeError, match="pipework sets max_retries itself"):
        pipework.ray(max_retries=3)
    with pytest.raises(ValueError, match="num_cpus must be a number of 0 or more"):
        pipework.ray(num_cpus=-1)
    assert isinstance(pipework.ray(), pipework.Backend)
    assert (
        repr(pipework.ray(num_cpus=0.5, memory=1024)) == "pipework.ray(num_cpus=0.5, memory=1024)"
    )


@pytest.mark.timeout(60)
def test_a_run_without_ray_init_says_what_to_do(tmp_path):
    done = run_script(
        tmp_path,
        """
        import asyncio

        import ray

        import pipework
        from pipework import Pipeline

        async def main():
            await Pipeline(range(3)).map(abs, on=pipework.ray()).run()

        try:
            asyncio.run(main())
        except RuntimeError as exc:
            print(exc)
        print(ray.is_initialized())
        """,
    )
    assert done.returncode == 0, done.stderr
    message, initialised = done.stdout.strip().splitlines()
    assert "Ray is not initialised" in message
    assert "ray.init()" in message
    assert initialised == "False"  # pipework started no cluster


def test_importing_pipework_does_not_import_ray():
    code = "import sys, pipework; print('ray' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["False"]
