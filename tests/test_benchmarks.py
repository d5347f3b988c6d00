"""The benchmark suite keeps working: it imports without its peers, and a tiny workload runs.

The test environment has none of the peers, nor numpy or matplotlib, so these
tests also prove that the benchmark modules import them only when needed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = frozenset({"pipework", "run_in_executor", "executor_map", "pool_imap"})
LAZY = (
    "joblib",
    "mpire",
    "pypeln",
    "aiomultiprocess",
    "numpy",
    "matplotlib",
    "distributed",
    "dask",
    "ray",
)


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
    assert ppe[6].startswith("**no** (BrokenProcessPool")
    ours_pool = rows["pipework.ProcessPool.map, the drop-in", "10/s"]
    assert ours_pool[5].startswith("WorkerDiedError")
    assert ours_pool[6] == "yes"  # if not, the cell says why the pool could not run a call


def serving_runs(figures):
    """Closed-loop runs and three open-loop rates per mode, with made-up figures."""

    def run(batch, load, offered, throughput, p99):
        found = {
            "throughput": throughput,
            "p50": p99 / 2,
            "p99": p99,
            "call_p50": 0.008,
        }
        return figures.Run(batch, load, offered, found)

    return [
        run(True, None, None, 1000.0, 0.2),
        run(False, None, None, 300.0, 3.0),
        run(True, 0.25, 250.0, 249.0, 0.03),
        run(False, 0.25, 75.0, 75.0, 0.01),
        run(True, 0.5, 500.0, 498.0, 0.05),
        run(False, 0.5, 150.0, 149.0, 0.02),
        run(True, 0.9, 900.0, 890.0, 0.2),
        run(False, 0.9, 270.0, 200.0, 0.9),  # behind: delivered 74% of the rate offered
    ]


def test_serving_gain_compares_rates_sustained_within_one_p99(bench):
    from benchmarks.workloads import serving_figures as figures

    runs = serving_runs(figures)
    assert not runs[-1].sustained()
    assert figures.best_within(runs, 0.1, batch=True).offered == 500.0
    assert figures.best_within(runs, 0.1, batch=False).offered == 150.0
    assert figures.best_within(runs, 0.02, batch=True) is None  # batching's wait costs more
    assert figures.ceiling(runs, runs[5]) == 270.0  # the next rate measured, which missed
    assert figures.ceiling(runs, runs[6]) == 1000.0  # none above: closed-loop throughput
    gain, least, most = figures.gain_between(runs, 0.1)
    assert gain == pytest.approx(500 / 150)
    assert least == pytest.approx(500 / 270)
    assert most == pytest.approx(900 / 150)
    target = figures._gain_target(runs)
    assert target.met is True
    assert target.measured.startswith("3.33x: 500/s (50%) batched vs 150/s (50%) one by one")


def test_serving_rows_are_the_run_with_the_median_figure(bench):
    from benchmarks.probe import NotAvailable
    from benchmarks.workloads import serving

    def found(p99, throughput=100.0):
        return {"p99": p99, "throughput": throughput}

    stalled, quiet, usual = found(0.9), found(0.02), found(0.04)
    row = serving.median_run(True, 0.5, 100.0, [stalled, quiet, usual], "p99")
    assert row.found is usual  # a whole run, not a mix of figures
    pair = serving.median_run(True, 0.5, 100.0, [quiet, usual], "p99")
    assert pair.found is usual  # of two, the worse p99
    failed = NotAvailable("timed out")
    assert serving.median_run(True, 0.5, 100.0, [failed, quiet], "p99").found is quiet
    assert serving.median_run(True, 0.5, 100.0, [failed, failed], "p99").found is failed
    fast, slow = found(0.1, 3000.0), found(0.1, 2000.0)
    assert serving.median_run(True, None, None, [fast, slow], "throughput").found is fast


@pytest.mark.timeout(120)
def test_serving_measures_one_run_of_the_demo(bench):
    pytest.importorskip("sklearn")
    from benchmarks.workloads import serving

    found = serving.serve(batch=True, rate=2000.0, seconds=0.2, max_batch=8, max_wait=0.005)
    assert found["records"] == 400
    assert 0 < found["p50"] <= found["p95"] <= found["p99"] <= found["max"]
    assert 1 <= found["mean_batch"] <= found["largest_batch"] <= 8
    assert found["accuracy"] > 0.9
    assert found["upstream_p50"] > 0
    assert found["waiting_p50"] > 0


@pytest.mark.timeout(120)
def test_fan_out_workload_checks_every_joined_pair_of_both_variants(bench, monkeypatch):
    from benchmarks.session import Session, Settings
    from benchmarks.workloads import fan_out

    settings = Settings(quick=True, repeat=1, scale=0.1, contenders=STDLIB, timeout=60)
    (table,) = fan_out.run(Session(settings)).tables
    col = {name: i for i, name in enumerate(table.headers)}
    assert [row[0] for row in table.rows] == list(fan_out.LABELS.values())
    for row in table.rows:  # a variant whose pairs were wrong would show n/a with the reason
        assert row[col["items"]] == "300"
        assert float(row[col["items/s"]].replace(",", "")) > 0
    # Its own ratio: 1.00x; after start-up too, or "-" when a busy machine made the
    # 1-item call take longer than the whole call, which leaves nothing to divide.
    assert table.rows[0][col["pipework's speed ÷ this one's (after start-up)"]] in (
        "1.00x (1.00x)",
        "1.00x (-)",
    )


@pytest.mark.timeout(60)
def test_fan_out_check_catches_a_wrong_join(bench):
    from benchmarks.workloads import fan_out

    async def swapped(fa, fb, items):
        return [(fb(x), fa(x)) for x in items]

    fa = functools.partial(fan_out.feature_a, iterations=1)
    with pytest.raises(AssertionError, match="first wrong at 1"):  # item 0 reads (0, 0) anyway
        asyncio.run(fan_out._timed(swapped, fa, [0, 1, 2]))


@pytest.mark.timeout(120)
def test_pull_ahead_workload_keeps_pipework_within_its_documented_bound(bench, monkeypatch):
    from benchmarks.session import Session, Settings
    from benchmarks.workloads import pull_ahead

    monkeypatch.setattr(pull_ahead, "N", 2_000)
    monkeypatch.setattr(pull_ahead, "CONSUMED", 50)
    settings = Settings(quick=True, repeat=1, scale=0.1, contenders=STDLIB, timeout=60)
    section = pull_ahead.run(Session(settings))
    (table,) = section.tables
    col = {name: i for i, name in enumerate(table.headers)}
    rows = {row[0]: row for row in table.rows}
    assert list(rows) == list(pull_ahead.LABELS.values())
    pulled, ahead = "pulled when 50 were consumed", "pull-ahead"
    for row in table.rows:  # a run that failed or hung would show n/a with the reason
        assert not row[col[pulled]].startswith("n/a"), row
    for variant in pull_ahead.PIPEWORK.values():
        row = rows[variant.label]
        assert row[col["documented bound"]] == f"{variant.bound():,}"
        assert int(row[col["largest seen"]].replace(",", "")) <= variant.bound(), row
    for key in ("process_map", "thread_map", "pool_imap"):  # eager: the whole source, read
        row = rows[pull_ahead.LABELS[key]]
        assert row[col[pulled]] == "2,000 (all)", row
        assert row[col[ahead]] == "1,950"
        assert row[col["documented bound"]] == "none"
    assert rows[pull_ahead.LABELS["pipework_thread"]][-1] == "1.00x"
    (target,) = section.targets
    assert target.met is True, target.measured


def test_pull_ahead_bounds_are_the_documented_sums(bench):
    from benchmarks.workloads import pull_ahead

    bounds = {key: variant.bound() for key, variant in pull_ahead.PIPEWORK.items()}
    # docs/concepts.md: buffer=4 and max_in_flight=16 read 4 + 16 + 4 ahead, and the
    # reader's batch is at most the stage's channel (design, D47).
    assert bounds["pipework_thread_4_limit"] == 4 + 16 + 4 + 4
    channel = pull_ahead.default_buffer()  # 128, or 4,096 for channels sized by bytes
    assert channel in (128, 4_096)
    assert bounds["pipework_async"] == channel + 2 * 16 + channel + channel
    threads = pull_ahead.THREADS
    assert bounds["pipework_thread"] == channel + 4 * threads * 4_096 + channel + channel
    assert bounds["pipework_thread_buffer"] == channel + 4 * threads * 4_096 + 4 + 4
    assert bounds["pipework_thread_4"] == 4 + 4 * threads * 4_096 + 4 + 4
    # By default the source outlasts every bound: a pipeline that read all of it read too far.
    assert pull_ahead.source_length() > max(bounds.values()) + pull_ahead.CONSUMED


def test_pull_ahead_target_is_missed_above_a_bound(bench):
    from benchmarks.probe import NotAvailable
    from benchmarks.workloads import pull_ahead

    def found(largest):
        return [{"pulled": largest + 300, "gap": largest, "largest": largest}]

    bound = pull_ahead.PIPEWORK["pipework_async"].bound()
    within = pull_ahead._target({"pipework_async": found(bound)})
    assert within.met is True
    assert within.measured == f"closest: {bound:,} of {bound:,} (pipework .map(async_f))"
    over = pull_ahead._target(
        {"pipework_async": found(bound + 1), "pipework_thread": NotAvailable("timed out")}
    )
    assert over.met is False
    assert over.measured.startswith(
        f"over for pipework .map(async_f); closest: {bound + 1:,} of {bound:,}"
    )
    assert over.measured.endswith("; 1 not measured")
    assert pull_ahead._target({"pipework_async": NotAvailable("x")}).met is None


def test_engines_targets_follow_the_measured_figures(bench):
    from benchmarks.probe import NotAvailable
    from benchmarks.workloads import engines

    def calls(n, seconds, batch=1_000):
        return [{"n": n, "seconds": seconds, "startup": 0.01, "batch": batch}]

    found = {
        "pipework_dask": calls(6_000, 3.2),  # 1,875/s
        "dask_map": calls(6_000, 6.0),  # 1,000/s
        "dask_batched": calls(6_000, 3.0),  # 2,000/s
    }
    speed, batched, share = engines.targets(engines.DASK, found, capacity=2_000.0)
    assert (speed.met, batched.met, share.met) == (True, False, True)
    assert speed.measured == "1.88x (1,875 vs 1,000 items/s)"
    assert batched.measure.startswith("pipework on Dask vs Dask client.map over chunks of 1,000")
    assert share.measured == "94% (1,875 of 2,000 items/s)"
    found["pipework_dask"] = NotAvailable("timed out")
    assert [t.met for t in engines.targets(engines.DASK, found, capacity=2_000.0)] == [None] * 3


def test_serving_against_by_hand_judges_capacity_and_p99_at_each_load(bench):
    from benchmarks.probe import NotAvailable
    from benchmarks.workloads import versus_hand

    def found(throughput, p99, checksum="abcd"):
        return {"throughput": throughput, "p99": p99, "checksum": checksum}

    pairs = [
        versus_hand.Pair(None, None, found(2000.0, 0.1), found(1600.0, 0.2)),
        versus_hand.Pair(0.25, 400.0, found(400.0, 0.03), found(400.0, 0.04)),
        versus_hand.Pair(0.5, 800.0, found(799.0, 0.05), found(700.0, 0.04), (False, True)),
        versus_hand.Pair(0.9, 1440.0, found(1440.0, 0.06), NotAvailable("timed out")),
    ]
    capacity, quarter, half, most = versus_hand.targets(pairs)
    assert (capacity.met, quarter.met, half.met, most.met) == (True, True, False, None)
    assert capacity.measured == "1.25x (2,000 vs 1,600 records/s)"
    assert quarter.measured == "0.75x (30.0 ms vs 40.0 ms at 400/s)"
    assert half.measured == "1.25x (50.0 ms vs 40.0 ms at 800/s); behind: by hand"
    assert most.measured == "not measured"
    assert [row[-1] for row in versus_hand.table(pairs).rows] == ["-", "yes", "yes", "-"]


def test_serving_offers_both_the_same_rates_from_the_lower_capacity(bench):
    from benchmarks.workloads import serving

    capacity = {serving.BATCHED: 2000.0, serving.ONE_BY_ONE: 400.0, serving.BY_HAND: 1600.0}
    own, shared = serving._offers(capacity)
    assert [rate for _, _, rate in own] == [500.0, 100.0, 1000.0, 200.0, 1800.0, 360.0]
    assert [(kind, rate) for kind, _, rate in shared[:2]] == [
        (serving.BATCHED, 400.0),
        (serving.BY_HAND, 400.0),
    ]
    # With pipework's the lower capacity, its own rows are the shared ones: run once.
    capacity[serving.BY_HAND] = 3000.0
    own, shared = serving._offers(capacity)
    assert len(set(own + shared)) == len(own) + len(shared) // 2


@pytest.mark.timeout(120)
def test_serving_measures_one_run_of_the_pipeline_by_hand(bench):
    pytest.importorskip("sklearn")
    from benchmarks.workloads import serving

    found = serving.serve_by_hand(rate=2000.0, seconds=0.2, max_batch=8, max_wait=0.005)
    assert found["records"] == 400
    assert 0 < found["p50"] <= found["p95"] <= found["p99"] <= found["max"]
    assert 1 <= found["mean_batch"] <= found["largest_batch"] <= 8
    assert found["accuracy"] > 0.9
    theirs = serving.serve(batch=True, rate=2000.0, seconds=0.2, max_batch=8, max_wait=0.005)
    assert found["checksum"] == theirs["checksum"]  # the same digits, in the same order


def test_engines_split_keeps_its_names(bench):
    from benchmarks.workloads import engines

    assert set(engines.ENGINES) == {"dask", "ray"}
    assert engines.DASK.serve == "benchmarks.workloads.engines._dask:serve_dask"
