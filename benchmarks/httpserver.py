"""A local HTTP server that answers every request after a fixed delay: the far end of an I/O stage.

Run as ``python -m benchmarks.httpserver DELAY``: it listens on
127.0.0.1 at a free port, prints the port, and stops by itself after
`LIFETIME` seconds even if nobody stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator

from .probe import ROOT

LIFETIME = 900.0
BODY = b"x" * 1024


async def serve(delay: float, lifetime: float = LIFETIME) -> None:
    from aiohttp import web

    async def answer(_request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.Response(body=BODY)

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sys.stdout.write(f"{runner.addresses[0][1]}\n")
    sys.stdout.flush()
    try:
        await asyncio.sleep(lifetime)
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def http_server(delay: float) -> Iterator[str]:
    """Run the server in a process of its own, off this one's event loop; yield its base URL."""
    command = [sys.executable, "-m", "benchmarks.httpserver", str(delay)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None  # noqa: S101 - stdout=PIPE gives one
        port = int(server.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    asyncio.run(serve(float(sys.argv[1])))
