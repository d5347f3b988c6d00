"""Live progress while the demo runs: one updating line on a terminal, a line now and then if not.

A task on the event loop reads the sink's counts every so often and prints
them; it touches nothing the pipeline uses, so it costs the run a few
microseconds a tick. On a terminal the line is redrawn in place and wiped at
the end, so the report prints as if it had never been there; into a file or
a pipe, a plain line every few seconds keeps a log readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import TextIO

from ._stats import Collector, percentile

TTY_INTERVAL = 0.25
LOG_INTERVAL = 2.0


class Progress:
    """Prints how far the run has got: records through, their rate, recent latency, batch size."""

    def __init__(self, collector: Collector, total: int | None, out: TextIO | None = None) -> None:
        """Watch ``collector``, out of ``total`` records (None: no end is known)."""
        self._collector = collector
        self._total = total
        self._out = out or sys.stdout
        self._tty = self._out.isatty()
        self._seen = 0
        self._calls = 0
        self._since = time.perf_counter()

    def line(self) -> str:
        """Say how far the run has got; rate and latency are those since the last line."""
        collector = self._collector
        now = time.perf_counter()
        done, calls = len(collector), len(collector.batches)
        recent = sorted(collector.latencies[self._seen :])
        rate = (done - self._seen) / (now - self._since) if now > self._since else 0.0
        batch = (done - self._seen) / (calls - self._calls) if calls > self._calls else 0.0
        self._seen, self._calls, self._since = done, calls, now
        of = "" if self._total is None else f"/{self._total:,}"
        if not recent:
            return f"  {done:,}{of} records"
        return (
            f"  {done:,}{of} records, {rate:,.0f}/s, latency p50 "
            f"{percentile(recent, 0.5) * 1000:.1f} ms p99 {percentile(recent, 0.99) * 1000:.1f} "
            f"ms, batch {batch:.1f}"
        )

    async def _run(self) -> None:
        if self._tty:
            self._write("  warming up: starting workers, training the model ...")
        await self._collector.ready.wait()
        self._since = time.perf_counter()
        while True:
            await asyncio.sleep(TTY_INTERVAL if self._tty else LOG_INTERVAL)
            self._write(self.line())

    def _write(self, line: str) -> None:
        if self._tty:
            self._out.write("\r\033[K" + line)
        else:
            self._out.write(line + "\n")
        self._out.flush()

    @contextlib.asynccontextmanager
    async def shown(self) -> AsyncIterator[None]:
        """Show progress while the block runs; on a terminal, wipe the line after."""
        task = asyncio.ensure_future(self._run())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait([task])  # unlike `await task`, keeps a cancellation of ours
            if self._tty:
                self._out.write("\r\033[K")
                self._out.flush()
