"""progress=: plain lines into a pipe, a table in place on a terminal, and a callable's snapshots.

The terminal display runs under a real pseudo-terminal, in a child process,
as a user would see it; the plain one writes into a real pipe. Tests that
need a tick to happen during the run hold a stage until one has, on an
event, rather than sleep for a guessed time.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import textwrap

import pytest

import pipework
from pipework import Pipeline, Snapshot
from pipework._observe import _progress
from pipework._observe._progress import Plain, display_for

pytestmark = pytest.mark.timeout(60)

HAS_RICH = _progress.importlib.util.find_spec("rich") is not None

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import pipework
    from pipework import Pipeline
    from pipework._observe import _progress

    _progress.TERMINAL_INTERVAL = _progress.PLAIN_INTERVAL = 0.01

    def double(x):
        return 2 * x

    async def main():
        report = await Pipeline(range(300)).map(double, on="process", workers=1).run(progress=True)
        print("outputs", report.stages[-1].items_out)
        print("rich" in sys.modules)

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


def _script(tmp_path) -> str:
    path = tmp_path / "show.py"
    path.write_text(SCRIPT)
    return str(path)


def test_into_a_pipe_it_writes_plain_lines_on_stderr_and_leaves_stdout_alone(tmp_path):
    done = subprocess.run(
        [sys.executable, _script(tmp_path)], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines() == ["outputs 300", "False"]  # rich never imported
    assert "\x1b" not in done.stderr
    last = done.stderr.splitlines()[-3:]
    assert last[0].startswith("pipework: done in ")
    assert last[1] == "  #0 source (source): 300/300 read, " + last[1].split("read, ")[1]
    assert last[2].startswith("  #1 double (process map): in 300, out 300, ")


@pytest.mark.skipif(not HAS_RICH, reason="the terminal display needs rich (pipework[progress])")
def test_on_a_terminal_it_redraws_a_table_and_leaves_the_summary(tmp_path):
    leader, follower = os.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    child = subprocess.Popen(
        [sys.executable, _script(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(follower)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child has closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    stdout, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert stdout.decode().splitlines() == ["outputs 300", "True"]
    text = shown.decode(errors="replace")
    assert "\x1b[" in text  # drawn in place: cursor moves and erases
    summary = text.rsplit("pipework: done in", 1)[1]
    assert "#0 source (source)" in summary
    assert "300/300" in summary
    assert "#1 double (process" in summary


@pytest.mark.skipif(not HAS_RICH, reason="the terminal display needs rich (pipework[progress])")
async def test_forced_terminal_mode_draws_with_control_codes():
    out = io.StringIO()
    display = display_for(True, out, terminal=True)
    snapshots: list[Snapshot] = []
    await Pipeline(range(50)).map(str).run(progress=snapshots.append)
    await display.show(snapshots[-1])
    await display.end(snapshots[-1])
    assert "\x1b[" in out.getvalue()
    assert "#1 str (inline map)" in out.getvalue()


def test_a_terminal_without_rich_gets_the_plain_display(monkeypatch):
    real = _progress.importlib.util.find_spec
    monkeypatch.setattr(
        _progress.importlib.util, "find_spec", lambda name: None if name == "rich" else real(name)
    )
    display = display_for(True, io.StringIO(), terminal=True)
    assert isinstance(display, Plain)
    assert display.interval == _progress.PLAIN_TERMINAL_INTERVAL


class _Watched(io.StringIO):
    """A stand-in for stderr that says when something has been written."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


async def test_plain_lines_come_at_each_interval_and_once_at_the_end(monkeypatch):
    monkeypatch.setattr(_progress, "PLAIN_INTERVAL", 0.01)
    err = _Watched()
    monkeypatch.setattr(sys, "stderr", err)

    async def held(x: int) -> int:
        await err.written.wait()  # until the first block is out
        return x

    await Pipeline(range(5)).map(held).run(progress=True)
    blocks = [b for b in err.getvalue().split("pipework: ") if b]
    assert len(blocks) >= 2
    assert blocks[-1].startswith("done in ")
    assert "\x1b" not in err.getvalue()


def _held_until_seen(seen: list[Snapshot]):
    """A stage that waits until the progress callable has been called once."""
    called = asyncio.Event()

    def record(snapshot: Snapshot) -> None:
        seen.append(snapshot)
        called.set()

    async def held(x: int) -> int:
        await called.wait()
        return x

    return record, held


@pytest.fixture
def fast_callback(monkeypatch):
    monkeypatch.setattr(_progress, "CALLBACK_INTERVAL", 0.01)


@pytest.mark.usefixtures("fast_callback")
async def test_a_callable_gets_snapshots_while_a_pipeline_runs_and_the_last_at_the_end():
    seen: list[Snapshot] = []
    record, held = _held_until_seen(seen)
    report = await Pipeline(range(20)).map(held).sink(lambda _: None).run(progress=record)
    assert len(seen) >= 2
    assert not seen[0].done
    assert [s.done for s in seen].count(True) == 1
    assert seen[-1].done
    assert [s.items_out for s in seen[-1].stages] == [s.items_out for s in report.stages]


@pytest.mark.usefixtures("fast_callback")
async def test_a_callable_follows_a_stream_a_graph_and_pipework_map():
    seen: list[Snapshot] = []
    record, held = _held_until_seen(seen)
    async with Pipeline(range(10)).map(held).stream(progress=record) as outputs:
        assert [x async for x in outputs] == list(range(10))
    assert seen[-1].done

    graph: list[Snapshot] = []
    base = Pipeline(range(10))
    await pipework.run_all(base.sink(lambda _: None), base.map(str), progress=graph.append)
    assert graph[-1].done
    assert [s.kind for s in graph[-1].stages] == ["source", "sink", "inline map"]
    assert graph[-1].stages[0].length == 10

    mapped: list[Snapshot] = []
    assert await pipework.map(str, range(5), on="thread", progress=mapped.append) == [
        str(i) for i in range(5)
    ]
    assert mapped[-1].stages[-1].items_out == 5


@pytest.mark.usefixtures("fast_callback")
async def test_a_callable_follows_a_service_while_it_is_open():
    seen: list[Snapshot] = []
    record, held = _held_until_seen(seen)
    async with Pipeline.service(int).map(held).open(progress=record) as service:
        assert await asyncio.gather(*(service.submit(i) for i in range(5))) == list(range(5))
    assert seen[-1].done
    assert seen[-1]["held"].items_out == 5


async def test_an_async_callable_is_awaited():
    seen: list[Snapshot] = []

    async def record(snapshot: Snapshot) -> None:
        await asyncio.sleep(0)
        seen.append(snapshot)

    await Pipeline(range(3)).run(progress=record)
    assert seen[-1].done


@pytest.mark.usefixtures("fast_callback")
async def test_a_callable_that_raises_stops_the_run_with_its_error():
    def broken(snapshot: Snapshot) -> None:
        raise ZeroDivisionError

    async def forever(x: int) -> int:
        await asyncio.Event().wait()
        return x

    with pytest.raises(ZeroDivisionError):
        await Pipeline(range(3)).map(forever).run(progress=broken)


async def test_a_failed_run_still_ends_its_display_and_raises_its_own_error():
    seen: list[Snapshot] = []

    def bad(x: int) -> int:
        raise ValueError(x)

    with pytest.raises(ValueError, match="0"):
        await Pipeline(range(3)).map(bad).run(progress=seen.append)
    assert seen[-1].done
    assert seen[-1]["bad"].items_failed == 1


async def test_progress_refuses_what_it_cannot_show_before_anything_runs():
    with pytest.raises(TypeError, match="progress="):
        display_for("yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="progress= must be True, False or a callable"):
        await Pipeline(range(3)).run(progress=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="progress="):
        Pipeline(range(3)).stream(progress="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="progress="):
        Pipeline.service(int).open(progress=1)  # type: ignore[call-overload]
