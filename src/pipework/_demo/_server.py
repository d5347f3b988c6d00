"""The demo's embedded HTTP server: a stream of digit records, served on a schedule.

Record ``i`` is due ``i / rate`` seconds after the first record is asked
for, and a request for it waits until then: the server sets the pace, as an
outside source of data would, and the client asks ahead (many requests in
flight) so that each record is in hand as soon as it is due. With no rate,
each record is due when it is asked for: the client sets the pace, and the
pipeline runs as fast as it can (a closed loop).

Each response carries when its record was due and when it was served, as
`time.perf_counter` readings. Warm-up records (``/warmup/{k}``) are served at once, off the
schedule, so the pipeline's workers can start before the clock does.

The demo runs the server in a process of its own (`serve_elsewhere`), as
a real source of records is elsewhere: its work (a thousand responses a
second) would otherwise share the pipeline's event loop, and its delays
would be counted as the pipeline's. Its times are `time.perf_counter`
readings, one system-wide monotonic clock on Linux, macOS and Windows, so
the pipeline's process can compare them with its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from .._loop import run_main
from ._digits import Digits, Record, encode, load

START_TIMEOUT = 60.0
"""Seconds the server's process may take to start listening (it imports numpy and scikit-learn)."""


class RecordServer:
    """Serves ``/records/{i}`` at ``rate`` records a second, and counts what it served."""

    def __init__(self, digits: Digits, rate: float | None) -> None:
        """Serve the stream part of ``digits``; ``rate=None`` serves each record when asked."""
        self._digits = digits
        self._rate = rate
        self._pixels = [encode(image) for image in digits.stream_images]
        self._warm_pixels = [encode(image) for image in digits.train_images]
        self.started: float | None = None
        """When the first record was asked for: the schedule's time zero."""
        self.served = 0

    def due(self, index: int) -> float:
        """When record ``index`` is due, on the schedule that starts at the first request."""
        now = time.perf_counter()
        if self.started is None:
            self.started = now
        if self._rate is None:
            return now
        return self.started + index / self._rate

    async def record(self, request: web.Request) -> web.Response:
        """Answer with record ``index`` once it is due; its image repeats every 797 records."""
        index = int(request.match_info["index"])
        due = self.due(index)
        # A loop's timers may wake a little early (uvloop rounds to the
        # millisecond); a record is never served before it is due.
        while (delay := due - time.perf_counter()) > 0:  # noqa: ASYNC110 - a deadline, not an event
            await asyncio.sleep(delay)
        position = index % len(self._pixels)
        label = int(self._digits.stream_labels[position])
        self.served += 1
        return web.json_response(self._body(index, label, self._pixels[position], due))

    async def warmup(self, request: web.Request) -> web.Response:
        """Answer at once with a training image; its id is negative, so it is never counted."""
        index = int(request.match_info["index"])
        position = index % len(self._warm_pixels)
        label = int(self._digits.train_labels[position])
        now = time.perf_counter()
        return web.json_response(self._body(-1 - index, label, self._warm_pixels[position], now))

    @staticmethod
    def _body(index: int, label: int, pixels: str, due: float) -> Record:
        return {
            "id": index,
            "label": label,
            "pixels": pixels,
            "due": due,
            "served": time.perf_counter(),
        }

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        """Serve on a free loopback port while the block runs; yield the base URL.

        Port 0 lets the system pick a free port, so runs never collide. The
        server is torn down however the block ends.
        """
        app = web.Application()
        app.router.add_get(r"/records/{index:\d+}", self.record)
        app.router.add_get(r"/warmup/{index:\d+}", self.warmup)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            yield f"http://{host}:{port}"
        finally:
            await runner.cleanup()


# In a process of its own ----------------------------------------------------


@dataclass
class Elsewhere:
    """A server running in another process: where it listens, and, once it has stopped, its count.

    :ivar base_url: the server's address, on loopback
    :ivar started: when its first record proper was asked for (see `RecordServer.started`),
        known once the server has stopped
    :ivar served: the records it served, known once it has stopped
    """

    base_url: str
    started: float | None = None
    served: int = 0


@contextlib.asynccontextmanager
async def serve_elsewhere(rate: float | None) -> AsyncIterator[Elsewhere]:
    """Run a `RecordServer` in a child process while the block runs.

    The child says where it listens on its standard output, and serves until
    its standard input ends, which also happens when this process dies, so it
    never outlives the demo. It ignores Ctrl-C: a graceful stop lets the
    pipeline finish the requests it has in flight.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        "-" if rate is None else repr(rate),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None  # noqa: S101 - both were asked for as pipes
    assert process.stdout is not None  # noqa: S101
    try:
        line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        if not line:
            code = await process.wait()
            msg = f"the demo's record server exited with status {code} before it listened"
            raise RuntimeError(msg)
        server = Elsewhere(line.decode().strip())
        yield server
        process.stdin.close()
        summary = json.loads(await process.stdout.readline() or b"{}")
        server.started = summary.get("started")
        server.served = summary.get("served", 0)
    finally:
        if process.returncode is None:
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _serve_until_told(rate: float | None) -> None:
    """Serve, say where, and say what was served once standard input ends: the child's side."""
    server = RecordServer(load(), rate)
    async with server.running() as base_url:
        _tell(base_url)
        # Blocks in a thread until the parent closes the pipe or dies.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    _tell(json.dumps({"started": server.started, "served": server.served}))


def _tell(line: str) -> None:
    """Write a line for the parent, which reads the child's standard output."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    """Run the server as the demo's child: ``python -m pipework._demo._server RATE|-``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rate = None if sys.argv[1] == "-" else float(sys.argv[1])
    run_main(_serve_until_told, rate)


if __name__ == "__main__":
    main()
