"""The demo, run as the CLI runs it (in-process through main(), and as `python -m pipework`),
and its parts: the paced server, the preprocessing, the figures and the progress line."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import math
import re
import signal
import subprocess
import sys
import time

import aiohttp
import pytest

pytest.importorskip("sklearn", reason="the demo needs pipework[demo]")

import numpy as np

from helpers import LOOPS
from pipework import Report
from pipework.__main__ import main
from pipework._demo import _digits
from pipework._demo._job import Outcome, pace
from pipework._demo._options import DemoOptions
from pipework._demo._progress import Progress
from pipework._demo._server import RecordServer, serve_elsewhere
from pipework._demo._stats import (
    Collector,
    Results,
    Split,
    checksum,
    histogram,
    percentile,
    results,
    text,
)
from pipework._executors import default_workers

STAGES = ["records", "fetch", "preprocess", "classify", "sink"]
ROW = re.compile(
    r"^#\d+ (\S+)\s+(\w+(?: map(?:_batches)?)?)\s+(\d+)\s+(\d+)\s+(\d+)\s", re.MULTILINE
)
HEADER = re.compile(r"^pipework demo: .*, event loop: (\w+)$", re.MULTILINE)
RECORDS = re.compile(r"^records   ([\d,]+) in [\d.]+ s: ([\d,.]+) records/s", re.MULTILINE)
LATENCY = re.compile(
    r"^latency   p50 ([\d,.]+) ms, p95 ([\d,.]+) ms, p99 ([\d,.]+) ms, max ([\d,.]+) ms",
    re.MULTILINE,
)
BATCHES = re.compile(
    r"^batches   ([\d,]+) model calls: mean ([\d.]+), p50 (\d+), max (\d+) records", re.MULTILINE
)
BIN = re.compile(r"^ +(\d+)(?:-(\d+))?  #* +([\d,]+)$", re.MULTILINE)
ACCURACY = re.compile(r"^accuracy  ([\d.]+)% \(([\d,]+) of ([\d,]+) right\)", re.MULTILINE)
CHECKSUM = re.compile(r"^checksum  ([0-9a-f]{8}) ", re.MULTILINE)

FAST = ["--rate", "3000", "--no-progress"]

RESULTS = Results(  # the figures of a run, made up, for what is said about them
    records=4000,
    seconds=10.0,
    latency=(0.02, 0.03, 0.04, 0.05),
    batch_sizes=(8, 8),
    batch_seconds=(0.005, 0.008),
    oldest=(0.02, 0.03),
    split=Split((0.001, 0.002), (0.01, 0.02), (0.001, 0.002)),
    correct=3900,
    checksum="00000000",
)  # a few records take a moment, not seconds


def number(text):
    return float(text.replace(",", ""))


@pytest.fixture(scope="module")
def model():
    return _digits.load_model()


def expected_checksum(model, count):
    """The same records and model in a plain loop: no HTTP, no JSON, no processes, no batches."""
    digits = _digits.load()
    predicted = []
    for i in range(count):
        position = i % len(digits.stream_labels)
        record = {
            "id": i,
            "label": int(digits.stream_labels[position]),
            "pixels": _digits.encode(digits.stream_images[position]),
            "due": 0.0,
            "served": 0.0,
        }
        predicted.append(_digits.classify_one(model, _digits.preprocess(record)).digit)
    return checksum(predicted)


def figures(out, count, warmups):
    """Check the report and the figures every run prints; return the batch sizes seen."""
    rows = {name: (kind, int(i), int(o), int(f)) for name, kind, i, o, f in ROW.findall(out)}
    assert list(rows) == STAGES, out
    assert rows["fetch"][0] == "async map"
    assert rows["preprocess"][0] == "process map"
    for name in STAGES:  # the warm-up records go through every stage too
        assert rows[name][1:] == (count + warmups, count + warmups, 0), (name, out)
    records = RECORDS.search(out)
    assert records is not None, out
    assert number(records[1]) == count
    assert number(records[2]) > 0
    latency = LATENCY.search(out)
    assert latency is not None, out
    p50, p95, p99, worst = map(number, latency.groups())
    assert 0 < p50 <= p95 <= p99 <= worst
    accuracy = ACCURACY.search(out)
    assert accuracy is not None, out
    assert number(accuracy[3]) == count
    assert number(accuracy[1]) > 90
    batches = BATCHES.search(out)
    assert batches is not None, out
    calls, mean, _, largest = map(number, batches.groups())
    assert math.isclose(mean, count / calls, abs_tol=0.05)
    bins = [
        (int(low), int(high or low), int(n.replace(",", ""))) for low, high, n in BIN.findall(out)
    ]
    assert sum(n for _, _, n in bins) == calls
    assert bins[-1][1] == largest
    return rows, largest


def loop_in(text):
    header = HEADER.search(text)
    assert header is not None, text
    return header[1]


# The command -----------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_demo_in_process(loop, model, capsys):
    argv = ["demo", "--count", "120", "--workers", "1", "--max-batch", "8", *FAST, "--loop", loop]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("pipework demo: 120 digit images from http://127.0.0.1:")
    assert loop_in(out) == loop
    rows, largest = figures(out, 120, warmups=1)
    assert rows["classify"][0] == "process map_batches"
    assert 1 <= largest <= 8
    assert "stopped early" not in out
    assert CHECKSUM.search(out)[1] == expected_checksum(model, 120)
    # One throughput, the records line's: the report's wall line is left out.
    assert not re.search(r"^wall ", out, re.MULTILINE)
    assert "after 1 warm-up records (counted in the table)" in out


@pytest.mark.parametrize(("throughput", "said"), [(399.0, True), (300.0, False)])
def test_the_demo_says_the_server_set_the_pace_only_when_the_pipeline_kept_up(throughput, said):
    found = dataclasses.replace(RESULTS, records=int(throughput * 10), seconds=10.0)
    outcome = Outcome(Report((), 10.0), found, 1.0, signalled=False)
    line = pace(outcome, 400.0)
    assert ("the record server's pace is the limit" in line) is said
    assert pace(outcome, None) == ""  # as fast as it goes: nothing sets a pace but the stages


def test_no_batch_classifies_one_record_per_call(model, capsys):
    assert main(["demo", "--count", "40", "--workers", "2", "--no-batch", *FAST]) == 0
    out = capsys.readouterr().out
    assert "classified one at a time" in out
    rows, largest = figures(out, 40, warmups=2)
    assert rows["classify"][0] == "process map"
    assert largest == 1
    assert BATCHES.search(out)[1] == "40"  # 40 model calls for 40 records
    assert CHECKSUM.search(out)[1] == expected_checksum(model, 40)  # batching changes nothing


def test_max_rate_with_a_duration_stops_on_time(capsys):
    argv = ["demo", "--rate", "max", "--duration", "0.5", "--workers", "1", "--no-progress"]
    started = time.monotonic()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "for 0.5 s from" in out
    assert "as fast as they go" in out
    assert "stopped early" not in out  # the timer is not a signal
    count = int(number(RECORDS.search(out)[1]))
    assert count > 0
    figures(out, count, warmups=1)
    assert time.monotonic() - started < 60  # it ended, long before the test's timeout


def test_loop_may_be_named_before_the_command(capsys):
    loop = LOOPS[-1]
    assert main(["--loop", loop, "demo", "--count", "3", "--workers", "1", *FAST]) == 0
    assert loop_in(capsys.readouterr().out) == loop


def test_the_loop_named_after_the_command_wins(capsys):
    other = LOOPS[-1]
    argv = ["--loop", "asyncio", "demo", "--count", "3", "--workers", "1", *FAST, "--loop", other]
    assert main(argv) == 0
    assert loop_in(capsys.readouterr().out) == other


def test_demo_as_module(model):
    done = subprocess.run(
        [sys.executable, "-m", "pipework", "demo", "--count", "50", "--rate", "1000"],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert loop_in(done.stdout) == LOOPS[-1]  # uvloop, by default, where it is installed
    figures(done.stdout, 50, warmups=default_workers())  # one warm-up record per worker
    assert CHECKSUM.search(done.stdout)[1] == expected_checksum(model, 50)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["demo", "--count", "0"],
        ["demo", "--workers", "two"],
        ["demo", "--rate", "0"],
        ["demo", "--rate", "-5"],
        ["demo", "--rate", "nan"],
        ["demo", "--rate", "inf"],
        ["demo", "--rate", "fast"],
        ["demo", "--duration", "0"],
        ["demo", "--duration", "-1"],
        ["demo", "--count", "10", "--duration", "5"],
        ["demo", "--max-batch", "0"],
        ["demo", "--max-batch", "2.5"],
        ["demo", "--max-wait", "-0.01"],
        ["demo", "--max-wait", "11"],
        ["demo", "--no-batch", "--max-batch", "8"],
        ["demo", "--no-batch", "--max-wait", "0.01"],
        ["demo", "--concurrency", "0"],
        ["demo", "--loop", "trio"],
        ["--loop", "Uvloop", "demo"],
    ],
)
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage: pipework" in capsys.readouterr().err


def test_without_scikit_learn_it_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # what `import sklearn` sees without it
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--count", "3"])
    assert exited.value.code == 2
    assert "pip install 'pipework[demo]'" in capsys.readouterr().err


def test_asking_for_uvloop_without_it_exits_with_usage(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--count", "3", "--loop", "uvloop"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --loop: loop='uvloop' needs uvloop, which is not installed" in err
    assert "pipework[uvloop]" in err


def test_without_uvloop_the_default_loop_is_asyncio(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert main(["demo", "--count", "3", "--workers", "1", *FAST]) == 0
    assert loop_in(capsys.readouterr().out) == "asyncio"


def test_options_count_records_by_count_or_duration():
    assert DemoOptions(count=7).records() == 7
    assert DemoOptions(rate=100, duration=2.5).records() == 250
    assert DemoOptions(rate=None, duration=3).records() is None
    assert DemoOptions(rate=None, duration=3).timer() == 3
    assert DemoOptions(rate=100, duration=3).timer() is None


# The parts -------------------------------------------------------------------


async def test_server_serves_each_record_when_it_is_due():
    digits = _digits.load()
    server = RecordServer(digits, rate=50.0)
    async with server.running() as base, aiohttp.ClientSession(base) as session:

        async def get(path):
            async with session.get(path) as response:
                response.raise_for_status()
                return await response.json()

        first, tenth = await asyncio.gather(get("/records/0"), get("/records/10"))
    assert tenth["due"] - first["due"] == pytest.approx(10 / 50)
    for body in (first, tenth):
        assert body["served"] >= body["due"]  # never early
    position = 10 % len(digits.stream_labels)
    assert tenth["label"] == digits.stream_labels[position]
    assert tenth["pixels"] == _digits.encode(digits.stream_images[position])
    assert server.served == 2


async def test_a_record_asked_for_late_keeps_its_due_time():
    """Latency counts from the schedule, so a pipeline that falls behind shows it."""
    server = RecordServer(_digits.load(), rate=1000.0)
    async with server.running() as base, aiohttp.ClientSession(base) as session:
        async with session.get("/records/0") as response:
            first = await response.json()
        await asyncio.sleep(0.2)
        async with session.get("/records/1") as response:
            late = await response.json()
    assert late["due"] == pytest.approx(first["due"] + 0.001)
    assert late["served"] - late["due"] > 0.15  # the wait is the pipeline's, and counted


async def test_warmup_records_are_off_the_schedule():
    server = RecordServer(_digits.load(), rate=1.0)
    async with (
        server.running() as base,
        aiohttp.ClientSession(base) as session,
        session.get("/warmup/0") as response,
    ):
        warm = await response.json()
    assert warm["id"] < 0
    assert server.started is None  # the schedule starts with the first record proper


async def test_the_server_in_a_process_of_its_own_serves_and_reports_its_schedule():
    """The demo's server runs apart from the pipeline's loop; its clock is still comparable."""
    async with serve_elsewhere(rate=100.0) as server:
        assert server.started is None
        async with aiohttp.ClientSession(server.base_url) as session:
            async with session.get("/warmup/0") as response:
                warm = await response.json()
            before = time.perf_counter()
            async with session.get("/records/3") as response:
                record = await response.json()
            after = time.perf_counter()
    assert warm["id"] < 0
    assert record["id"] == 3
    # One system-wide clock: the child's readings fall between this process's.
    assert before <= record["due"] - 3 / 100 <= after
    assert record["due"] <= record["served"] <= after
    assert server.started == pytest.approx(record["due"] - 3 / 100)
    assert server.served == 1  # warm-up records are not counted


async def test_the_server_process_ignores_ctrl_c_and_ends_with_its_parent_pipe():
    """Closing its standard input, as the death of the demo does, ends the server."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipework._demo._server",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    url = (await asyncio.wait_for(child.stdout.readline(), 60)).decode().strip()
    assert url.startswith("http://127.0.0.1:")
    # Ctrl-C reaches the whole process group; a graceful stop needs the server to go on.
    child.send_signal(signal.SIGINT)
    async with aiohttp.ClientSession(url) as session, session.get("/records/0") as response:
        assert (await response.json())["id"] == 0
    assert child.returncode is None
    child.stdin.close()
    assert await asyncio.wait_for(child.wait(), 10) == 0
    summary = json.loads(await child.stdout.readline())
    assert summary["served"] == 1


def test_deskew_makes_a_slanted_stroke_upright():
    slanted = np.zeros((8, 8))
    for row in range(8):
        slanted[row, 1 + row // 2 + 1] = 1.0  # leans right as it goes down
    upright = _digits.deskew(slanted)
    columns = (upright * np.arange(8)).sum(axis=1) / upright.sum(axis=1)
    assert np.ptp(columns) < np.ptp((slanted * np.arange(8)).sum(axis=1)) / 2
    assert upright.sum() == pytest.approx(slanted.sum(), rel=0.2)
    blank = np.zeros((8, 8))
    assert (_digits.deskew(blank) == blank).all()


def test_batched_and_single_calls_predict_alike(model):
    digits = _digits.load()
    samples = [
        _digits.Sample(_digits.Meta(i, 0, 0.0, 0.0, 0.0), _digits.features(image / 16))
        for i, image in enumerate(digits.stream_images[:20].astype(float))
    ]
    batched = _digits.classify_batch(model, samples)
    alone = [_digits.classify_one(model, sample) for sample in samples]
    assert [p.digit for p in batched] == [p.digit for p in alone]
    assert {p.size for p in batched} == {20}
    assert len({p.batch for p in batched}) == 1
    assert len({p.batch for p in alone}) == 20


def prediction(index, label, digit, *, batch, size, due):
    meta = _digits.Meta(index, label, due, due, due + 0.004)
    return _digits.Prediction(meta, digit, batch, size, 0.005, due + 0.01)


def test_collector_measures_from_due_time_and_skips_the_warmup():
    collector = Collector(warmups=1)
    assert not collector.ready.is_set()
    collector(prediction(-1, 3, 3, batch=(1, 1), size=1, due=time.perf_counter()))
    assert collector.ready.is_set()
    now = time.perf_counter()
    for i in range(10):
        collector(prediction(i, i % 3, 0, batch=(1, 2 + i // 4), size=4, due=now - 0.1))
    found = results(collector, started=now - 0.1)
    assert found.records == 10
    assert found.correct == 4  # labels 0 at indices 0, 3, 6 and 9
    assert found.batch_sizes == (4, 4, 4)  # three calls, each named once
    p50, p95, p99, worst = found.latency
    assert 0.1 <= p50 <= p95 <= p99 <= worst < 10
    assert found.split.upstream == (pytest.approx(0.004), pytest.approx(0.004))
    assert found.split.waiting == (pytest.approx(0.006), pytest.approx(0.006))  # to call start
    assert 0.08 < found.split.back[0] <= p50  # call end to sink: the rest of the 0.1 s
    assert "accuracy  40.0% (4 of 10 right)" in text(found, rate=100.0)


def test_each_call_counts_its_longest_latency_once():
    collector = Collector(warmups=0)
    now = time.perf_counter()
    # Call (1, 1) opened with a record due 0.3 s ago; call (1, 2) with one due 0.2 s ago.
    for index, due, batch in [(0, 0.3, 1), (1, 0.1, 1), (2, 0.2, 2), (3, 0.1, 2), (4, 0.15, 2)]:
        collector(prediction(index, 0, 0, batch=(1, batch), size=2, due=now - due))
    found = results(collector, started=now - 0.3)
    later = time.perf_counter() - now
    assert 0.2 <= found.oldest[0] <= 0.2 + later  # the median of two is the lower one
    assert 0.3 <= found.oldest[1] <= 0.3 + later
    assert "waited longest in each: p50 200." in text(found, rate=None)
    one_by_one = Collector(warmups=0)
    one_by_one(prediction(0, 0, 0, batch=(1, 1), size=1, due=now))
    assert "waited longest" not in text(results(one_by_one, started=now), rate=None)


def test_percentile_is_a_measured_value():
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_histogram_bins_double_and_stop_at_the_largest():
    lines = histogram([1, 1, 2, 3, 5, 12])
    labels = [line.split()[0] for line in lines]
    assert labels == ["1", "2-3", "4-7", "8-12"]
    assert [int(line.split()[-1]) for line in lines] == [2, 2, 1, 1]
    assert histogram([]) == []


class Terminal(io.StringIO):
    def isatty(self):
        return True


async def test_progress_draws_one_line_on_a_terminal_and_lines_otherwise(monkeypatch):
    from pipework._demo import _progress

    monkeypatch.setattr(_progress, "TTY_INTERVAL", 0.01)
    monkeypatch.setattr(_progress, "LOG_INTERVAL", 0.01)
    for out in (Terminal(), io.StringIO()):
        collector = Collector(warmups=0)
        collector(prediction(0, 1, 1, batch=(1, 1), size=1, due=time.perf_counter() - 0.02))
        async with Progress(collector, total=5, out=out).shown():
            await asyncio.sleep(0.1)
        written = out.getvalue()
        assert "1/5 records" in written
        if isinstance(out, Terminal):
            assert "\n" not in written
            assert written.endswith("\r\033[K")  # wiped, so the report starts clean
        else:
            assert "\r" not in written
            assert written.count("\n") >= 2
