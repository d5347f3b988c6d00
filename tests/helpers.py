"""Helpers shared by the tests: stage kinds, process liveness, scripts in a subprocess."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
