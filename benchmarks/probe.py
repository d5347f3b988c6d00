"""Run a measurement in a child process with a time limit (the parent's side of `cell`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cell import MARK

ROOT = Path(__file__).resolve().parent.parent
GRACE = 5.0  # seconds a finished or interrupted child's processes get to clean up


@dataclass(frozen=True)
class NotAvailable:
    """A measurement that could not be made, and why: shown as ``n/a`` in the tables."""

    reason: str


def run_probe(target: str, kwargs: dict[str, Any], *, timeout: float) -> Any:
    """Run ``module:function`` in a fresh interpreter; return its result or `NotAvailable`.

    The child leads a process group of its own, so that whatever it leaves
    behind (workers, a manager, a resource tracker) can be found, given a
    moment to finish its cleanup, and then killed by the group's id.
    """
    command = [sys.executable, "-m", "benchmarks.cell", target, json.dumps(kwargs)]
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _interrupt(child)
        return NotAvailable(f"timed out after {timeout:.0f} s")
    finally:
        _end_group(child.pid)
    return _parse(out, err, child.returncode)


def _interrupt(child: subprocess.Popen[str]) -> None:
    """Ask a stuck child to clean up as on Ctrl-C; kill its group if it does not."""
    child.send_signal(signal.SIGINT)
    try:
        child.communicate(timeout=GRACE)
    except subprocess.TimeoutExpired:
        _end_group(child.pid, grace=0)
        child.communicate()


def _end_group(pgid: int, grace: float = GRACE) -> None:
    """Wait up to ``grace`` seconds for the group's processes to exit, then kill the rest."""
    deadline = time.monotonic() + grace
    while _running(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs; exited ones may linger unreaped."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _parse(out: str, err: str, returncode: int) -> Any:
    for line in reversed(out.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    lines = [line for line in err.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit status {returncode}"
    return NotAvailable(f"failed: {last[:160]}")
