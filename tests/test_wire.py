"""Frames over a real socket pair: the worker's blocking side against the loop's protocol."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from pipework._executors._wire import HEADER, FrameProtocol, recv_frame, send_frame

pytestmark = pytest.mark.timeout(30)

SIZES = [0, 1, 7, 1000, 256 * 1024 - HEADER.size, 256 * 1024, 3 * 1024 * 1024 + 5]


async def connected():
    """The loop's end as a FrameProtocol, the other end as a blocking socket."""
    ours, theirs = socket.socketpair()
    frames: list[bytes] = []
    lost = asyncio.Event()
    arrived = asyncio.Event()

    def on_frame(frame):
        frames.append(bytes(frame))
        arrived.set()

    _, protocol = await asyncio.get_running_loop().connect_accepted_socket(
        lambda: FrameProtocol(on_frame, lost.set), ours
    )
    return protocol, theirs, frames, lost, arrived


async def wait_for_frames(frames, arrived, count):
    while len(frames) < count:
        arrived.clear()
        await asyncio.wait_for(arrived.wait(), 20)


async def test_frames_of_every_size_arrive_whole_and_in_order():
    protocol, theirs, frames, _, arrived = await connected()
    payloads = [bytes([n % 251]) * n for n in SIZES]
    # From a thread, as a worker sends: blocking writes, some larger than
    # the socket's buffer, so the loop reads them in many pieces.
    sender = threading.Thread(target=lambda: [send_frame(theirs, p) for p in payloads])
    sender.start()
    await wait_for_frames(frames, arrived, len(payloads))
    sender.join()
    assert [len(f) for f in frames] == SIZES
    assert frames == payloads
    protocol.transport.close()
    theirs.close()


async def test_many_small_frames_in_one_read_are_each_delivered():
    protocol, theirs, frames, _, arrived = await connected()
    theirs.sendall(b"".join(HEADER.pack(3) + b"abc" for _ in range(500)))
    await wait_for_frames(frames, arrived, 500)
    assert frames == [b"abc"] * 500
    protocol.transport.close()
    theirs.close()


async def test_the_loop_side_sends_frames_the_worker_side_reads():
    protocol, theirs, _, _, _ = await connected()
    payloads = [b"", b"x" * 10, b"y" * (2 * 1024 * 1024)]
    for payload in payloads:
        assert protocol.send(payload)
    received = await asyncio.to_thread(lambda: [recv_frame(theirs) for _ in payloads])
    assert [bytes(r) for r in received] == payloads
    protocol.transport.close()
    assert await asyncio.to_thread(recv_frame, theirs) is None  # closed: no frame
    theirs.close()


async def test_the_end_of_the_connection_is_reported_once_and_send_then_refuses():
    protocol, theirs, _, lost, _ = await connected()
    theirs.close()  # the worker exited
    await asyncio.wait_for(lost.wait(), 10)
    assert protocol.send(b"exit") is False  # it cannot go, and says so


def test_a_frame_cut_short_by_the_other_end_reads_as_none():
    a, b = socket.socketpair()
    a.sendall(HEADER.pack(100) + b"only part")
    a.close()
    assert recv_frame(b) is None
    b.close()
