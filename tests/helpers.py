"""Helpers shared by the tests: stage kinds, process liveness, scripts, channels to drive."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio

from pipework._channel import Channel
from pipework._model._specs import label
from pipework._observe._report import StageStats
from pipework._packet import Packet

LOOPS = ("asyncio", "uvloop") if importlib.util.find_spec("uvloop") else ("asyncio",)
"""The event loops tests run on here: uvloop where it is installed (it has no Windows build)."""


def in_mode(mode, fn):
    """Return ``fn`` as the given stage kind needs it: async for async stages."""
    if mode != "async":
        return fn

    async def call(x):
        await asyncio.sleep(0)
        return fn(x)

    call.__name__ = fn.__name__
    return call


def where(mode):
    """The keyword arguments that put a stage in ``mode``."""
    if mode in ("thread", "process"):
        return {"on": mode, "workers": 2}
    return {}


def alive(pid):
    """Whether a process runs: a zombie, waiting to be reaped, no longer does."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone, or going as it is read
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def run_script(
    directory: Path, source: str, *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a script file (worker processes import it) with warnings as errors."""
    script = directory / "script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def my_segments():
    """The shared-memory segments of this process's runs, by name.

    A stage's key starts with the pid of the parent that made it, so another
    run on the same machine (another suite, a benchmark) is not counted.
    """
    from pipework._worker import _buffers as buffers

    mine = f"pipework-{os.getpid()}-"
    return sorted(p.name for p in buffers.SHM_DIR.iterdir() if p.name.startswith(mine))


def filled(items):
    """A closed channel that holds ``items``, indexed from 0: a stage's whole input."""
    items = list(items)
    channel = Channel(max(len(items), 1))
    channel.put_nowait(Packet(range(len(items)), items))
    channel.close()
    return channel


async def drain(channel, seen=None):
    """Read ``channel`` to its end; return (index, item) pairs, telling ``seen`` of each read."""
    out = []
    while (got := await channel.take()) is not None:
        out.extend(zip(got.index, got.items, strict=True))
        if seen is not None:
            seen(out)
    return out


async def drive(run_stage, stage, inp, *, out=None, stats=None, seen=None, limit=20.0):
    """Run a stage as ``run_stage`` (run_async, run_pooled) does, reading its output as it goes.

    Returns what it put out, as (index, item) pairs; ``limit`` seconds at most.
    """
    out = out or Channel(100)
    reader = asyncio.create_task(drain(out, seen))
    try:
        with anyio.fail_after(limit):
            await run_stage(stage, label(1, stage), inp, out, stats or StageStats())
    finally:
        out.close()
    return await reader
