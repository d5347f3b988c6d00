"""An engine's cluster, started in a process of its own for the length of the workload."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from ...probe import ROOT, NotAvailable
from ._common import START_TIMEOUT, Engine


@contextlib.contextmanager
def cluster(engine: Engine) -> Iterator[dict[str, Any] | NotAvailable]:
    """Start ``engine``'s cluster; yield what its process said, with ``launch`` seconds added.

    The cluster leads a process group of its own; when the workload is done
    with it, its stdin is closed, it gets time to shut down, and whatever of
    its group is left is killed by the group's id.
    """
    if importlib.util.find_spec(engine.module) is None:
        yield NotAvailable(f"{engine.module} is not installed")
        return
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "benchmarks.cell", engine.serve, "{}"]
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        try:
            line = _first_line(process, START_TIMEOUT)
            if line is None:
                log.seek(0)
                lines = [text for text in log.read().splitlines() if text.strip()]
                why = lines[-1][:160] if lines else f"no address in {START_TIMEOUT:.0f} s"
                yield NotAvailable(f"the cluster did not start: {why}")
            else:
                yield {**json.loads(line), "launch": time.perf_counter() - start}
        finally:
            _stop(process)


def _first_line(process: subprocess.Popen[str], timeout: float) -> str | None:
    out = process.stdout
    if out is None:
        return None
    ready, _, _ = select.select([out], [], [], timeout)
    line = out.readline() if ready else ""
    return line if line.startswith("{") else None


def _stop(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # its nannies and workers, if any are left
    if process.poll() is None:
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
