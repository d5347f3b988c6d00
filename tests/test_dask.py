"""Process stages on a real Dask cluster: ``on=pipework.dask(client)``.

The cluster is a real ``LocalCluster`` of two worker processes with one
thread each, shared by the session. It runs in a process of its own, so
its nannies and workers are not children of the test process (the suite
checks that every test leaves no child of its own alive), and each test
connects an asynchronous client from its own event loop.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import anyio
import pytest

import pipework
from helpers import my_segments
from pipework import Pipeline, WorkerDiedError

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

CLUSTER = textwrap.dedent(
    """
    import sys

    import dask
    import distributed

    # Known noise stays out of the suite's warnings-as-errors through the
    # cluster's own configuration. allowed-failures=1: a task that kills a
    # worker is given up after two deaths, not four, so poison is found fast.
    dask.config.set({
        "distributed.scheduler.allowed-failures": 1,
        "distributed.admin.large-graph-warning-threshold": "1 GiB",
        "distributed.worker.memory.target": False,
        "distributed.worker.memory.spill": False,
    })

    if __name__ == "__main__":
        with distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster:
            print(cluster.scheduler_address, flush=True)
            sys.stdin.read()  # until the session closes our stdin
    """
)


@pytest.fixture(scope="session")
def scheduler(tmp_path_factory):
    """Start the session's cluster in a process of its own; its scheduler's address."""
    script = tmp_path_factory.mktemp("dask") / "cluster.py"
    script.write_text(CLUSTER)
    # The workers import this module's functions by name, as a user's
    # workers import the user's modules: they need them on their path.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    process = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        address = process.stdout.readline().strip()
        assert address.startswith("tcp://"), "the cluster did not start"
        yield address
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


@pytest.fixture
async def client(scheduler):
    async with distributed.Client(scheduler, asynchronous=True) as client:
        # Two workers that answer: after a test that killed workers, their
        # nannies may still be starting new ones, slowly on a busy machine.
        with anyio.fail_after(60):
            while len(await client.run(os.getpid)) < 2:
                await client.wait_for_workers(2)
                await asyncio.sleep(0.05)
        yield client
    # On uvloop, distributed's client sometimes leaves a socket to a worker
    # unclosed, found by the collector later, in any test after this one.
    # Dask's noise, with no setting to turn it off: collect it here, and let
    # only that one warning go.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "unclosed <socket", ResourceWarning)
        gc.collect()


def square(x):
    return x * x


@pytest.mark.timeout(60)
async def test_results_equal_the_local_ones_in_order(client):
    on_dask = [x async for x in Pipeline(range(5000)).map(square, on=pipework.dask(client))]
    local = [x async for x in Pipeline(range(5000)).map(square, on="process", workers=2)]
    assert on_dask == local == [x * x for x in range(5000)]


@pytest.mark.timeout(60)
async def test_lambdas_and_closures_travel_to_the_cluster(client):
    offset = 7
    stage = Pipeline(range(10)).map(lambda x: x + offset, on=pipework.dask(client))
    assert [x async for x in stage.filter(lambda x: x % 2, on=client)] == [7, 9, 11, 13, 15]


@pytest.mark.timeout(60)
async def test_the_report_names_the_engine_and_counts_every_item(client):
    report = await Pipeline(range(100)).map(square, on=client, name="sq").run()
    stage = report.stages[1]
    assert (stage.name, stage.kind) == ("sq", "dask map")
    assert (stage.items_in, stage.items_out, stage.items_failed) == (100, 100, 0)


@pytest.mark.timeout(60)
async def test_setup_runs_once_per_worker_process(client, tmp_path):
    log = tmp_path / "setups"

    def load():
        with log.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return os.getpid()

    def use(state, x):
        return state, os.getpid(), x

    out = [x async for x in Pipeline(range(2000)).map(use, on=pipework.dask(client), setup=load)]
    assert [x for _, _, x in out] == list(range(2000))
    assert all(state == pid for state, pid, _ in out)  # each worker's own setup
    setups = [int(pid) for pid in log.read_text().split()]
    assert len(setups) == len(set(setups))  # once per process
    assert set(setups) == {pid for _, pid, _ in out}
    assert len(setups) <= 2


# Noise from the killed worker's sockets, as in the kill test below.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.timeout(120)
async def test_setup_runs_again_in_a_worker_that_was_restarted(client, tmp_path):
    log = tmp_path / "setups"

    def load():
        with log.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return os.getpid()

    def use(state, x):
        time.sleep(0.05 * x)  # enough to keep both workers busy
        return state, os.getpid()

    feed: asyncio.Queue[int] = asyncio.Queue()

    async def items():
        while True:
            yield await feed.get()

    stream = Pipeline(items()).map(use, on=pipework.dask(client), setup=load, chunksize=1)
    async with stream.stream() as results:
        await feed.put(0)
        state, first = await anext(results)
        assert state == first
        before = set((await client.run(os.getpid)).values())
        os.kill(first, signal.SIGKILL)  # between chunks: no task is lost
        with anyio.fail_after(60):  # until its nanny has started a new one
            while True:
                # A worker being restarted does not answer: it is left out.
                now = set((await client.run(os.getpid, on_error="ignore")).values())
                if len(now) == 2 and now != before:
                    break
                await asyncio.sleep(0.05)
        [restarted] = now - before
        # Until a chunk lands on the new worker: Dask puts a chunk where the
        # stage's payload already is, so only enough work at once to keep
        # both workers busy sends one to the new worker, which fetches it.
        with anyio.fail_after(60):
            pids: set[int] = set()
            while restarted not in pids:
                for _ in range(8):
                    await feed.put(1)
                for _ in range(8):
                    state, pid = await anext(results)
                    assert state == pid  # every result saw its own process's setup
                    pids.add(pid)
    assert restarted in [int(line) for line in log.read_text().split()]
    await client.close()
    gc.collect()  # what the dead worker's connections left, collected under this test


@pytest.mark.timeout(60)
async def test_a_setup_that_raises_fails_the_stage_with_its_error(client):
    def broken():
        raise LookupError("no model here")

    with pytest.raises(LookupError, match="no model here") as caught:
        await Pipeline(range(3)).map(square, on=pipework.dask(client), setup=broken).run()
    assert any("in the setup of stage" in note for note in caught.value.__notes__)


@pytest.mark.timeout(60)
async def test_large_arrays_come_back_intact_and_nothing_goes_through_shared_memory(client):
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
        .map(make, on=pipework.dask(client))
        .map(lambda a: a * 2, on=pipework.dask(client))
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


# On uvloop, distributed's client sometimes leaves a socket to a worker that
# died unclosed, and the collector finds it later (seen 1 run in 3): Dask's
# noise, with no setting to turn it off. It is collected here, inside this
# test, and only this warning is let through.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.timeout(90)
async def test_an_item_that_kills_its_workers_is_reported_and_the_rest_come_out(client):
    out = []
    report = await (
        Pipeline(range(8))
        .map(exit_on_3, on=pipework.dask(client), chunksize=2, errors="skip")
        .sink(out.append)
        .run()
    )
    assert out == [0, 1, 2, 4, 5, 6, 7]
    [failure] = report.failures
    assert (failure.index, failure.item) == (3, "3")
    assert isinstance(failure.error, WorkerDiedError)
    assert "dask map" in failure.stage
    assert "killed workers until the engine gave up: Dask gave up on the chunk" in str(
        failure.error
    )
    assert report.stages[1].items_failed == 1
    await client.close()
    gc.collect()  # what the dead worker's connections left, collected under this test


def held(release):
    """An item function that holds item 0 until ``release`` exists (at most 20 s)."""

    def hold(x):
        import time

        deadline = time.monotonic() + 20
        while x == 0 and not Path(release).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return x

    return hold


async def _processing(client):
    return [key for keys in (await client.processing()).values() for key in keys]


async def _chunks_processing(client):
    return [key for key in await _processing(client) if "payload" not in str(key)]


@pytest.mark.timeout(90)
async def test_cancelling_a_run_leaves_no_task_processing_on_the_cluster(client, tmp_path):
    release = tmp_path / "release"
    run = asyncio.ensure_future(
        Pipeline(range(4)).map(held(str(release)), on=pipework.dask(client), chunksize=1).run()
    )
    try:
        while not await _chunks_processing(client):
            await asyncio.sleep(0.02)  # until the cluster has a chunk in hand
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert not [key for key in client.futures if "pipework" in str(key)]
        # The scheduler hears of the cancel as a message: give it a moment.
        with anyio.fail_after(10):
            while await _processing(client):
                await asyncio.sleep(0.02)
    finally:
        release.touch()  # Dask cannot stop a running task: let it end


@pytest.mark.timeout(60)
async def test_a_timeout_fails_an_overrunning_item_though_dask_cannot_stop_its_task(
    client, tmp_path
):
    release = tmp_path / "release"
    failures = []
    try:
        out = [
            x
            async for x in Pipeline(range(3)).map(
                # 5 s: on a busy machine a task's round trip can take a second.
                held(str(release)),
                on=pipework.dask(client),
                timeout=5.0,
                errors=failures.append,
            )
        ]
    finally:
        release.touch()
    assert out == [1, 2]
    assert [f.index for f in failures] == [0]
    assert isinstance(failures[0].error, pipework.ItemTimeoutError)
    assert any("cannot stop a running task" in note for note in failures[0].error.__notes__)


@pytest.mark.timeout(60)
async def test_a_graph_with_a_dask_branch_and_a_local_branch(client):
    numbers = Pipeline(range(300))
    on_dask = numbers.map(square, on=pipework.dask(client))
    local = numbers.map(lambda x: -x, on="thread")
    pairs = [p async for p in pipework.zip(on_dask, local)]
    assert pairs == [(x * x, -x) for x in range(300)]


@pytest.mark.timeout(60)
async def test_an_unpicklable_item_is_named_before_it_reaches_the_cluster(client):
    import threading

    failures = []
    items = [1, threading.Lock(), 3]
    out = [
        x async for x in Pipeline(items).map(str, on=pipework.dask(client), errors=failures.append)
    ]
    assert out == ["1", "3"]
    assert [f.index for f in failures] == [1]
    assert isinstance(failures[0].error, pipework.UnpicklableError)


def timed(log):
    """An item function that logs when it ran, for a test of how many ran at once."""

    def run(x):
        import time

        start = time.monotonic()
        time.sleep(0.05)
        with Path(log).open("a") as f:
            f.write(f"{start} {time.monotonic()}\n")
        return x

    return run


@pytest.mark.timeout(60)
async def test_workers_caps_the_chunks_at_once_below_the_clusters_threads(client, tmp_path):
    log = tmp_path / "runs"
    report = await (
        Pipeline(range(8))
        .map(timed(str(log)), on=pipework.dask(client), workers=1, chunksize=1)
        .run()
    )
    assert report.stages[1].items_out == 8
    runs = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    assert len(runs) == 8
    # Both workers are free, but one chunk at a time may run: none overlap.
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(runs))


@pytest.mark.timeout(60)
async def test_a_synchronous_client_is_refused_with_what_to_do(scheduler):
    def connect():
        return distributed.Client(scheduler)

    sync_client = await asyncio.to_thread(connect)
    try:
        with pytest.raises(TypeError, match="asynchronous=True"):
            await Pipeline(range(3)).map(square, on=pipework.dask(sync_client)).run()
    finally:
        await asyncio.to_thread(sync_client.close)


def test_pipework_dask_takes_only_a_client():
    with pytest.raises(TypeError, match=r"takes a distributed.Client"):
        pipework.dask("tcp://127.0.0.1:8786")


def test_importing_pipework_does_not_import_distributed(tmp_path):
    code = "import sys, pipework; print('distributed' in sys.modules, 'dask' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.timeout(60)
async def test_a_module_the_workers_cannot_import_is_named_with_what_to_do(
    client, tmp_path, monkeypatch
):
    (tmp_path / "only_here.py").write_text("def double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here

    try:
        with pytest.raises(ModuleNotFoundError) as caught:
            await Pipeline(range(3)).map(only_here.double, on=pipework.dask(client)).run()
    finally:
        sys.modules.pop("only_here", None)
    notes = "\n".join(caught.value.__notes__)
    assert "cannot import 'only_here'" in notes
    assert "register_pickle_by_value" in notes


@pytest.mark.timeout(60)
async def test_a_closed_client_is_refused_with_what_to_do(scheduler):
    async with distributed.Client(scheduler, asynchronous=True) as closed:
        pass
    with pytest.raises(RuntimeError, match="is closed, not running; open it first"):
        await Pipeline(range(3)).map(square, on=pipework.dask(closed)).run()
