"""Large buffers travel through shared memory, and no segment outlives its run."""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
import time
import warnings

import anyio
import pytest

import pipework
from helpers import my_segments
from pipework import Pipeline
from pipework._worker import _buffers as buffers
from pipework._worker import _serial as serial
from pipework._worker._trampoline import run_chunk

np = pytest.importorskip("numpy")

MB = 1 << 20


def ours() -> list[str]:
    return sorted(p.name for p in buffers.SHM_DIR.iterdir() if p.name.startswith("pipework-"))


@pytest.fixture(autouse=True)
def _no_segment_left():
    before = set(my_segments())
    yield
    # Only new segments count: a test may sweep the orphans of a dead process,
    # and another run on this machine makes segments of its own.
    assert not set(my_segments()) - before, "a run left shared-memory segments behind"


def test_a_large_array_goes_out_of_band_and_a_small_one_in_band():
    prefix = buffers.prefix_for(buffers.new_key())
    big, small = np.arange(MB // 8 * 2, dtype=np.float64), np.arange(10)
    data, segments = packed = serial.pack([big, small], prefix)
    assert [size for _, _, size in segments] == [big.nbytes]
    assert len(data) < 4096  # the stream holds no array data
    out_big, out_small = serial.unpack(packed, unlink=True)
    assert np.array_equal(out_big, big)
    assert np.array_equal(out_small, small)


def test_a_pickle_buffer_travels_without_numpy_semantics():
    prefix = buffers.prefix_for(buffers.new_key())
    payload = bytearray(b"x" * (2 * MB))
    packed = serial.pack(pickle.PickleBuffer(payload), prefix)
    assert len(packed[1]) == 1
    out = serial.unpack(packed, unlink=True)
    assert bytes(memoryview(out)) == bytes(payload)


def test_a_result_that_is_its_input_goes_back_as_a_reference_not_a_copy():
    key = buffers.new_key()
    prefix = buffers.prefix_for(key)
    array = np.arange(MB // 4, dtype=np.float64)  # 2 MB
    sent = serial.pack([array], prefix)
    run_chunk(key, (lambda a: a, None), "map", [])  # installs the stage
    try:
        packed = run_chunk(key, None, "map", sent)
        assert buffers.segments_of(packed) == buffers.segments_of(sent)  # no new segment
        results, _, failure = serial.unpack(packed, unlink=False)
        assert failure is None
        assert np.array_equal(results[0], array)
    finally:
        buffers.sweep(prefix)


async def test_arrays_round_trip_through_a_process_stage():
    arrays = [np.full(MB, i, dtype=np.float64) for i in range(4)]  # 8 MB each
    doubled = await pipework.map(lambda a: a * 2, arrays, workers=2)
    for i, out in enumerate(doubled):
        assert out.shape == arrays[i].shape
        assert (out == 2 * i).all()
    assert all((a == i).all() for i, a in enumerate(arrays))  # inputs untouched


async def test_an_in_place_change_comes_back_and_the_input_stays_as_it_was():
    def bump(a):
        a += 1  # in place, in the worker's mapping of the segment
        return a

    original = np.zeros(MB, dtype=np.float64)
    [out] = await pipework.map(bump, [original], workers=1)
    assert (out == 1).all()
    assert (original == 0).all()


async def test_a_failed_run_leaves_no_segment():
    def explode(a):
        raise ValueError(a.nbytes)

    with pytest.raises(ValueError, match=str(8 * MB)):
        await pipework.map(explode, [np.zeros(MB)] * 3, workers=2)


async def test_a_cancelled_run_leaves_no_segment():
    started = anyio.Event()

    async def arrays():
        for _ in range(100):
            yield np.ones(MB)
            started.set()

    def slow(a):
        time.sleep(30)
        return a

    task = asyncio.create_task(Pipeline(arrays()).map(slow, on="process", workers=2).run())
    with anyio.fail_after(20):
        await started.wait()
        await anyio.sleep(0.5)
    task.cancel()
    with anyio.fail_after(20):
        await asyncio.wait([task])
    assert task.cancelled()


def test_segments_of_a_killed_parent_are_swept_by_the_next_run(tmp_path):
    # A parent that is SIGKILLed cannot clean up; a later run removes what a
    # dead process left behind, and leaves live processes' segments alone.
    script = tmp_path / "die.py"
    script.write_text(
        "import os, signal, numpy\n"
        "from pipework._worker import _buffers as b, _serial as s\n"
        "s.pack(numpy.ones(1 << 18), b.prefix_for(b.new_key()))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    before = set(ours())
    with subprocess.Popen([sys.executable, str(script)]) as done:
        assert done.wait(timeout=60) == -9
    # The dead parent's, by the pid its key starts with: other runs on this
    # machine make segments meanwhile.
    left = {name for name in set(ours()) - before if name.startswith(f"pipework-{done.pid}-")}
    assert len(left) == 1
    assert buffers.sweep_orphans() >= 1
    assert not left & set(ours())


# /dev/shm is shared by every user: a sweep touches only what is provably ours.

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make another user's file")


def dead_pid():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def planted(name, *, uid=None):
    path = buffers.SHM_DIR / name
    path.write_bytes(b"x")
    if uid is not None:
        os.chown(path, uid, uid)
    return path


def orphan_name():
    return f"pipework-{dead_pid()}-{'a' * 16}-{'b' * 16}"


@pytest.fixture
def cleanup():
    paths = []
    yield paths
    for path in paths:
        path.unlink(missing_ok=True)


@as_root
def test_an_orphan_of_another_user_is_left_alone(cleanup):
    theirs = planted(orphan_name(), uid=NOBODY)
    cleanup.append(theirs)
    buffers.sweep_orphans()
    assert theirs.exists()  # as root we could delete it; we must not


@as_root
def test_another_users_orphan_breaks_nothing_for_a_user_who_cannot_remove_it(cleanup):
    # The sticky /dev/shm refuses to let one user remove another's file. A
    # real second user sweeps, and must neither fail nor touch our file.
    ours_but_orphaned = planted(orphan_name())
    cleanup.append(ours_but_orphaned)
    with warnings.catch_warnings():
        # 3.12+ warns of forking a process with threads; this child only sweeps.
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            removed = buffers.sweep_orphans() + buffers.sweep("pipework-")
            os._exit(10 + removed)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 10
    assert ours_but_orphaned.exists()


def test_only_names_of_our_exact_form_are_swept(cleanup):
    pid = dead_pid()
    strangers = [
        planted(f"pipework-{pid}-notours"),
        planted(f"pipework-{pid}-{'a' * 16}-{'b' * 16}.bak"),
        planted(f"pipework-{pid}-{'A' * 16}-{'b' * 16}"),
    ]
    cleanup.extend(strangers)
    orphan = planted(f"pipework-{pid}-{'c' * 16}-{'d' * 16}")
    cleanup.append(orphan)
    assert buffers.sweep_orphans() >= 1
    assert not orphan.exists()
    assert all(path.exists() for path in strangers)


def test_a_link_named_like_a_segment_is_not_followed_or_removed(tmp_path, cleanup):
    target = tmp_path / "precious"
    target.write_text("keep me")
    link = buffers.SHM_DIR / orphan_name()
    link.symlink_to(target)
    cleanup.append(link)
    buffers.sweep_orphans()
    buffers.sweep(link.name[:30])
    assert link.is_symlink()
    assert target.read_text() == "keep me"


@as_root
async def test_a_run_goes_on_beside_files_it_cannot_remove(cleanup):
    # Before: PermissionError from the sweep at the start of every pooled stage.
    theirs = planted(orphan_name(), uid=NOBODY)
    cleanup.append(theirs)
    report = await Pipeline(range(20)).map(abs, on="thread", workers=2).run()
    assert report.stages[-1].items_out == 20
    assert theirs.exists()
