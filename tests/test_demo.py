"""The demo, run as the CLI runs it: in-process through main(), and as `python -m pipework`."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from helpers import LOOPS
from pipework.__main__ import main
from pipework._demo import checksum, features, record, score

STAGES = ["ids", "fetch", "features", "score", "collect"]
ROW = re.compile(r"^#\d+ (\S+)\s+(\w+(?: map)?)\s+(\d+)\s+(\d+)\s+(\d+)\s", re.MULTILINE)
HEADER = re.compile(r"^pipework demo: .*, event loop: (\w+)$", re.MULTILINE)
SUMMARY = re.compile(
    r"^(\d+) items in [\d.]+ s, [\d,]+ items/s, checksum ([0-9a-f]{8})$", re.MULTILINE
)


def expected_checksum(count):
    """The same functions in a plain loop: no HTTP, no JSON, no processes."""
    return checksum(score(features(record(i))) for i in range(count))


def check_output(text, count):
    rows = {name: (kind, int(i), int(o), int(f)) for name, kind, i, o, f in ROW.findall(text)}
    assert list(rows) == STAGES, text
    assert rows["fetch"][0] == "async map"
    assert rows["features"][0] == "process map"
    for name in STAGES:
        assert rows[name][1:] == (count, count, 0), (name, text)
    summary = SUMMARY.search(text)
    assert summary is not None, text
    assert int(summary[1]) == count
    assert summary[2] == expected_checksum(count)


def test_checksum_tells_runs_apart():
    assert expected_checksum(40) == expected_checksum(40)
    assert expected_checksum(40) != expected_checksum(39)
    scores = [score(features(record(i))) for i in range(3)]
    assert checksum(scores) != checksum(reversed(scores))


def loop_in(text):
    header = HEADER.search(text)
    assert header is not None, text
    return header[1]


@pytest.mark.parametrize("loop", LOOPS)
def test_demo_in_process(loop, capsys):
    argv = ["demo", "--count", "40", "--workers", "2", "--concurrency", "4", "--loop", loop]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("pipework demo: 40 records from http://127.0.0.1:")
    assert loop_in(out) == loop
    check_output(out, 40)


@pytest.mark.parametrize("loop", LOOPS)
def test_loop_may_be_named_before_the_command(loop, capsys):
    assert main(["--loop", loop, "demo", "--count", "3", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert loop_in(out) == loop
    check_output(out, 3)


def test_the_loop_named_after_the_command_wins(capsys):
    other = LOOPS[-1]
    argv = ["--loop", "asyncio", "demo", "--count", "3", "--workers", "1", "--loop", other]
    assert main(argv) == 0
    assert loop_in(capsys.readouterr().out) == other


def test_demo_as_module():
    done = subprocess.run(
        [sys.executable, "-m", "pipework", "demo", "--count", "50"],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert loop_in(done.stdout) == LOOPS[-1]  # uvloop, by default, where it is installed
    check_output(done.stdout, 50)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["demo", "--count", "0"],
        ["demo", "--workers", "two"],
        ["nonsense"],
        ["demo", "--loop", "trio"],
        ["--loop", "Uvloop", "demo"],
    ],
)
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage: pipework" in capsys.readouterr().err


def test_asking_for_uvloop_without_it_exits_with_usage(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what `import uvloop` sees without it
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--count", "3", "--loop", "uvloop"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --loop: loop='uvloop' needs uvloop, which is not installed" in err
    assert "pipework[uvloop]" in err


def test_without_uvloop_the_default_loop_is_asyncio(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert main(["demo", "--count", "3", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert loop_in(out) == "asyncio"
    check_output(out, 3)
