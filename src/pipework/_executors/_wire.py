"""Frames between the parent and a worker process over a socket: a length, then the bytes.

The worker's side blocks, as a worker has nothing else to do. The parent's
side is an asyncio protocol: the event loop reads every worker's socket
itself, so a reply wakes the loop once and needs no thread in between, and
the next chunk can be sent from the same callback.

What the frames carry is typed: the parent sends a `Call`; a worker answers
`Ready` or `StartFailed` once, as it starts, then a `Reply` per call.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any, NamedTuple, cast

HEADER = struct.Struct("!Q")


class Call(NamedTuple):
    """Run ``fn(*args)``; with ``tracked``, pass the worker's tracker as ``tracker=``."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    tracked: bool


class Ready(NamedTuple):
    """The worker has started, its initializer done, and takes calls."""

    pid: int


class StartFailed(NamedTuple):
    """The worker's initializer raised ``error``; the worker then exits."""

    error: BaseException
    traceback: str


class Reply(NamedTuple):
    """A call's outcome: ``value``, or ``error`` with the worker's ``traceback``.

    ``rss`` is the worker's resident memory after the call, if it is measured.
    """

    value: Any
    error: BaseException | None
    traceback: str | None
    rss: int


# Replies up to this size are parsed out of one reusable buffer; a larger one
# gets a buffer of its own size, filled in place, so it is copied only once.
_SCRATCH = 256 * 1024


def send_frame(sock: socket.socket, data: bytes) -> None:
    """Send one frame, blocking until the kernel has all of it."""
    header = HEADER.pack(len(data))
    sent = sock.sendmsg([header, data])
    if sent < len(header) + len(data):  # a large frame, or a signal, cut the write short
        rest = (
            (header + data)[sent:] if sent < len(header) else memoryview(data)[sent - HEADER.size :]
        )
        sock.sendall(rest)


def recv_frame(sock: socket.socket) -> bytearray | None:
    """Receive one frame, blocking; ``None`` once the other end has closed."""
    header = _recv_exactly(sock, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    return _recv_exactly(sock, size)


def _recv_exactly(sock: socket.socket, size: int) -> bytearray | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    filled = 0
    while filled < size:
        got = sock.recv_into(view[filled:])
        if not got:
            return None
        filled += got
    return buffer


class FrameProtocol(asyncio.BufferedProtocol):
    """The parent's end of one worker's socket: splits the stream into frames.

    ``on_frame`` gets each frame as it completes; ``on_lost`` is called once,
    when the connection ends, whichever end closed it.
    """

    def __init__(
        self, on_frame: Callable[[bytes | bytearray], None], on_lost: Callable[[], None]
    ) -> None:
        """Prepare to read frames; the loop calls `connection_made` with the transport."""
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._scratch = bytearray(_SCRATCH)
        self._filled = 0
        self._large: bytearray | None = None
        self._large_filled = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport, to write frames to."""
        # A stream socket's transport; uvloop's does not subclass asyncio's.
        self.transport = cast("asyncio.Transport", transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Report the end of the connection: the worker has exited or is gone."""
        del exc  # how it ended is learned from the worker's exit status
        self._on_lost()

    def send(self, data: bytes) -> bool:
        """Queue one frame to the worker; the loop writes what the socket does not take now.

        :returns: ``False`` if the connection is closing, so the frame cannot go
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        transport.writelines((HEADER.pack(len(data)), data))
        return True

    def get_buffer(self, sizehint: int) -> memoryview:
        """Return where the next bytes from the socket go, however many the loop offers."""
        del sizehint
        if self._large is not None:
            return memoryview(self._large)[self._large_filled :]
        return memoryview(self._scratch)[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        """Take ``nbytes`` newly read, and deliver every frame they complete."""
        if self._large is not None:
            self._large_filled += nbytes
            if self._large_filled == len(self._large):
                frame, self._large = self._large, None
                self._on_frame(frame)
            return
        self._filled += nbytes
        self._split()

    def _split(self) -> None:
        scratch, end, pos = self._scratch, self._filled, 0
        while end - pos >= HEADER.size:
            (size,) = HEADER.unpack_from(scratch, pos)
            start = pos + HEADER.size
            if end - start >= size:
                pos = start + size
                self._on_frame(bytes(scratch[start:pos]))
            elif size > _SCRATCH - HEADER.size:
                # Too large for the scratch buffer: read the rest in place.
                self._large = bytearray(size)
                self._large[: end - start] = scratch[start:end]
                self._large_filled = end - start
                pos = end
                break
            else:
                break
        if pos:
            scratch[: end - pos] = scratch[pos:end]
            self._filled = end - pos
