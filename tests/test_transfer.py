"""The Courier: a chunk packed for another process, its outcome unpacked; large buffers in shm.

Its ``send`` is real throughout: `run_chunk` in a worker process of a
``ProcessPoolExecutor``, or in a thread, as the executor backends call it.
What is checked is what crosses (segments or the stream), that what comes
back is intact, and that no segment of the chunk is left in ``/dev/shm``
however the round trip ends.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import anyio
import pytest

from helpers import my_segments
from pipework._executors._processes import worker_context, worker_environment
from pipework._executors._transfer import Courier
from pipework._worker import _buffers as buffers
from pipework._worker._payload import pickle_payload
from pipework._worker._serial import NotPicklableError
from pipework._worker._trampoline import run_chunk

np = pytest.importorskip("numpy")

pytestmark = pytest.mark.timeout(60)

MB = 1 << 20


def segments(prefix="pipework-"):
    """The names in /dev/shm under ``prefix``, with their sizes."""
    return {
        p.name: p.stat().st_size for p in buffers.SHM_DIR.iterdir() if p.name.startswith(prefix)
    }


@pytest.fixture(autouse=True)
def _no_segment_left():
    # This process's only: another run on the machine makes segments of its own.
    before = set(my_segments())
    yield
    assert not set(my_segments()) - before, "a round trip left shared-memory segments behind"


@pytest.fixture
def key():
    return buffers.new_key()


@pytest.fixture
def prefix(key):
    return buffers.prefix_for(key)


@pytest.fixture
def pool():
    executor = ProcessPoolExecutor(1, mp_context=worker_context(worker_environment(1)))
    yield executor
    executor.shutdown(wait=True)


class Send:
    """A real ``send``: runs the chunk with `run_chunk` in a worker process, or in a thread.

    It records what it was given, the segments under the prefix while the
    chunk was out, and what came back.
    """

    def __init__(self, key, fn, pool=None):
        self.key = key
        self.pool = pool
        # A process needs the function pickled; a thread takes it as it is.
        self.payload = pickle_payload(fn, None, "test") if pool else (fn, None)
        self.sent = []
        self.out_while_sent = []
        self.returned = []

    async def __call__(self, sent):
        self.sent.append(sent)
        self.out_while_sent.append(segments(buffers.prefix_for(self.key)))
        work = partial(run_chunk, self.key, self.payload, "map", sent)
        if self.pool is None:
            packed = await anyio.to_thread.run_sync(work)
        else:
            packed = await asyncio.get_running_loop().run_in_executor(self.pool, work)
        self.returned.append(packed)
        return packed


async def test_large_arrays_go_through_shared_memory_to_a_worker_process_and_back_intact(
    key, prefix, pool
):
    arrays = [np.arange(3 * MB // 8, dtype=np.float64), np.full(MB, 2.5, dtype=np.float32)]
    send = Send(key, lambda a: a * 2, pool)
    results, elapsed, failure = await Courier(prefix).round_trip(arrays, send)
    assert failure is None
    assert elapsed >= 0
    assert len(results) == 2
    for out, array in zip(results, arrays, strict=True):
        assert out.dtype == array.dtype
        assert np.array_equal(out, array * 2)
    [(stream, places)] = send.sent
    assert len(stream) < 4096  # no array data in the stream
    assert [size for _, _, size in places] == [a.nbytes for a in arrays]
    # While the chunk was out, each array was a file of ours, of its size.
    [out_then] = send.out_while_sent
    assert sorted(out_then.values()) == sorted(a.nbytes for a in arrays)
    # The worker wrote its results under the same prefix: new segments.
    [(_, back)] = send.returned
    written = {name for name, _, _ in back}
    assert len(written) == 2
    assert all(name.startswith(prefix) for name in written)
    assert not written & set(out_then)
    assert segments(prefix) == {}  # the outbound and the inbound ones are all gone


async def test_a_result_that_is_its_input_comes_back_by_reference_and_survives_its_segment(
    key, prefix, pool
):
    array = np.arange(MB // 4, dtype=np.int64)  # 2 MB
    send = Send(key, lambda a: a, pool)
    [out], _, failure = await Courier(prefix).round_trip([array], send)
    assert failure is None
    [(_, there)], [(_, back)] = send.sent, send.returned
    assert [name for name, _, _ in back] == [name for name, _, _ in there]  # no second copy
    assert segments(prefix) == {}
    # Unpacked before its segment was removed: the mapping lives on, unlinked.
    assert np.array_equal(out, array)
    out[0] = -1  # and it is the parent's to change
    assert out[0] == -1
    assert array[0] == 0


async def test_a_failing_item_comes_back_as_the_outcomes_failure_and_leaves_no_segment(
    key, prefix, pool
):
    def explode_on_second(a):
        if a[0] == 1:
            raise ValueError(f"item of {a.nbytes} bytes")
        return a + 1

    arrays = [np.full(MB, i, dtype=np.float64) for i in range(3)]
    results, _, failure = await Courier(prefix).round_trip(
        arrays, Send(key, explode_on_second, pool)
    )
    assert len(results) == 1  # those before the failure are kept
    assert np.array_equal(results[0], arrays[0] + 1)
    at, error, text = failure
    assert at == 1
    assert isinstance(error, ValueError)
    assert str(error) == f"item of {8 * MB} bytes"
    assert "explode_on_second" in text  # the worker's traceback, as text
    assert segments(prefix) == {}


async def test_small_items_and_bare_bytes_travel_in_the_stream_and_make_no_segment(key, prefix):
    # numpy arrays under a megabyte go in band; bytes always do (no pickle hook).
    items = [np.arange(10), b"x" * (2 * MB), "text", {"nested": [1, 2]}]
    send = Send(key, lambda x: x)
    results, _, failure = await Courier(prefix).round_trip(items, send)
    assert failure is None
    assert np.array_equal(results[0], items[0])
    assert results[1:] == items[1:]
    [(_, places)] = send.sent
    assert places == ()
    assert send.out_while_sent == [{}]
    assert send.returned[0][1] == ()


@pytest.mark.parametrize(
    ("size", "out_of_band"), [(buffers.THRESHOLD - 1, 0), (buffers.THRESHOLD, 1)]
)
async def test_a_buffer_goes_through_shared_memory_from_exactly_the_threshold(
    key, prefix, size, out_of_band
):
    array = np.ones(size, dtype=np.uint8)
    send = Send(key, lambda a: a)
    [out], _, _ = await Courier(prefix).round_trip([array], send)
    assert np.array_equal(out, array)
    assert len(send.sent[0][1]) == out_of_band
    assert len(send.out_while_sent[0]) == out_of_band


async def test_a_send_that_raises_passes_its_error_on_and_leaves_no_segment(prefix):
    seen = []

    async def broken(sent):
        seen.append(segments(prefix))
        raise ConnectionResetError("the worker went away")

    with pytest.raises(ConnectionResetError, match="the worker went away"):
        await Courier(prefix).round_trip([np.zeros(MB), np.zeros(MB)], broken)
    assert len(seen[0]) == 2  # they were there while it was out
    assert segments(prefix) == {}


async def test_a_round_trip_cancelled_while_its_chunk_is_out_leaves_no_segment(prefix):
    out = anyio.Event()
    never = anyio.Event()

    async def waits(sent):
        out.set()
        await never.wait()

    task = asyncio.create_task(Courier(prefix).round_trip([np.zeros(2 * MB)], waits))
    with anyio.fail_after(30):
        await out.wait()
    assert len(segments(prefix)) == 1
    task.cancel()
    await asyncio.wait([task], timeout=30)
    assert task.cancelled()
    assert segments(prefix) == {}


@pytest.mark.parametrize("after_large", [False, True], ids=["on the loop", "in a thread"])
async def test_an_item_that_cannot_be_pickled_is_named_and_nothing_is_sent_or_left(
    key, prefix, after_large
):
    courier = Courier(prefix)
    send = Send(key, lambda x: x)
    if after_large:  # so this chunk is packed in a thread
        await courier.round_trip([np.zeros(MB)], send)
    before = len(send.sent)
    with pytest.raises(NotPicklableError) as caught:
        await courier.round_trip([np.zeros(2 * MB), "fine", threading.Lock()], send)
    assert caught.value.position == 2
    assert "lock" in str(caught.value.cause)
    assert len(send.sent) == before  # never sent
    assert segments(prefix) == {}  # the array already written was removed


class Spy:
    """Records the thread it is pickled on; arrives as a plain string."""

    threads: list[int] = []  # noqa: RUF012 - one list for the test that reads it

    def __reduce__(self):
        Spy.threads.append(threading.get_ident())
        return str, ("spy",)


async def test_a_chunk_after_one_with_large_buffers_is_packed_off_the_event_loop(key, prefix):
    Spy.threads = []
    loop_thread = threading.get_ident()
    courier = Courier(prefix)
    send = Send(key, lambda x: x)
    chunks = [[Spy()], [np.zeros(MB), Spy()], [Spy()], [Spy()]]
    for chunk in chunks:
        results, _, _ = await courier.round_trip(chunk, send)
        assert results[-1] == "spy"
    on_loop = [thread == loop_thread for thread in Spy.threads]
    # No hint yet, then the large chunk's hint, then none again.
    assert on_loop == [True, True, False, True]
