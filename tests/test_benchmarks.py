"""The benchmark suite keeps working: it imports without its peers, and a tiny workload runs.

The test environment has none of the peers, nor numpy or matplotlib, so these
tests also prove that the benchmark modules import them only when needed.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = frozenset({"pipework", "run_in_executor", "executor_map", "pool_imap"})
LAZY = ("joblib", "mpire", "pypeln", "aiomultiprocess", "numpy", "matplotlib")


@pytest.fixture
def bench(monkeypatch):
    """Make the ``benchmarks`` package importable, as ``python -m benchmarks.run`` finds it."""
    monkeypatch.syspath_prepend(str(ROOT))
    import benchmarks.run

    return benchmarks


def tiny(overhead, monkeypatch, contenders):
    """Run workload (a) on a thousand items, one chunksize, one repeat."""
    from benchmarks.session import Session, Settings

    monkeypatch.setattr(overhead, "CHUNKSIZES", (256,))
    settings = Settings(quick=True, repeat=1, scale=0.002, contenders=contenders, timeout=60)
    return overhead.run(Session(settings))


def rates(section):
    """Items/s per contender label, read back from the table as printed."""
    table = section.tables[0]
    column = table.headers.index("items/s")
    return {row[0]: float(row[column].replace(",", "")) for row in table.rows}


def test_modules_import_without_peers():
    modules = "benchmarks.run, benchmarks.plots, benchmarks.httpserver, benchmarks.cell"
    code = f"import sys, {modules}; print(sorted(set({LAZY!r}) & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_overhead_workload_runs_with_stdlib_contenders(bench, monkeypatch):
    from benchmarks.workloads import overhead

    section = tiny(overhead, monkeypatch, STDLIB)
    found = rates(section)
    assert list(found) == [
        "pipework.map(on='process')",
        "run_in_executor, one item per call",
        "ProcessPoolExecutor.map, chunksize 256",
        "multiprocessing.Pool.imap, chunksize 125",  # Pool.map's rule: 4 chunks per worker
    ]
    assert all(rate > 0 for rate in found.values())
    assert "| pipework.map(on='process') | forkserver | 1,000 |" in section.markdown()
    joblib_target = section.targets[1]
    assert joblib_target.met is None  # joblib was not asked for, so not measured


def test_a_peer_runs_when_installed(bench, monkeypatch):
    pytest.importorskip("joblib")
    from benchmarks.workloads import overhead

    found = rates(tiny(overhead, monkeypatch, frozenset({"pipework", "joblib"})))
    assert set(found) == {"pipework.map(on='process')", "joblib.Parallel (batch_size='auto')"}


def test_a_missing_peer_is_reported_not_run(bench, monkeypatch):
    from benchmarks import contenders
    from benchmarks.probe import NotAvailable
    from benchmarks.session import Cell, Session, Settings

    absent = dataclasses.replace(contenders.CONTENDERS["mpire"], module="no_such_peer_here")
    monkeypatch.setitem(contenders.CONTENDERS, "mpire", absent)
    cell = Cell("mpire", "mpire", {"task": "noop", "task_args": {}, "kind": "ints", "n": 10})
    assert Session(Settings()).measure([cell]) == [
        NotAvailable("no_such_peer_here is not installed")
    ]


def test_a_measurement_that_hangs_is_killed(bench):
    from benchmarks.probe import NotAvailable, run_probe

    result = run_probe("asyncio:sleep", {"delay": 60}, timeout=1)
    assert result == NotAvailable("timed out after 1 s")


def test_a_measurement_that_fails_says_why(bench):
    from benchmarks.probe import NotAvailable, run_probe

    result = run_probe("benchmarks.measure:percentile", {"values": [], "fraction": 0.5}, timeout=30)
    assert isinstance(result, NotAvailable)
    assert result.reason == "failed: IndexError: list index out of range"


@pytest.mark.timeout(120)
def test_chaos_workload_loses_nothing_and_reports_broken_pools(bench, monkeypatch):
    from benchmarks.session import Session, Settings
    from benchmarks.workloads import chaos

    monkeypatch.setattr(chaos, "RATES", (0.0, 10.0))
    monkeypatch.setattr(chaos, "COMPARE_N", 1_000)
    settings = Settings(
        quick=True,
        repeat=1,
        scale=0.1,
        contenders=frozenset({"pipework", "executor_map"}),
        timeout=60,
    )
    ours, theirs = chaos.run(Session(settings)).tables
    col = {name: i for i, name in enumerate(ours.headers)}
    assert int(ours.rows[1][col["workers killed"]]) > 0
    for row in ours.rows:
        assert row[col["lost"]] == row[col["duplicated"]] == row[col["out of order"]] == "0"
        assert row[col["runs completed"]] == "1 of 1"
    rows = {(r[0], r[1]): r for r in theirs.rows}
    ppe = rows["ProcessPoolExecutor.map", "10/s"]
    assert ppe[2] == "**no**"
    assert ppe[5].startswith("BrokenProcessPool")
    assert ppe[6] == "**no**"
    ours_pool = rows["pipework.ProcessPool.map, the drop-in", "10/s"]
    assert ours_pool[5].startswith("WorkerDiedError")
    assert ours_pool[6] == "yes"
