"""Run the benchmarks of issue 3 and write docs/benchmarks.md: ``make bench``.

    python -m benchmarks.run              # everything, about 20 minutes on 2 cores
    python -m benchmarks.run --quick      # a tenth of the items, one repeat: 1-2 minutes
    python -m benchmarks.run --only a,c   # some workloads
    python -m benchmarks.run --contenders pipework,executor_map
    python -m benchmarks.run --only g --update-docs   # refresh one section of the page

A full run writes docs/benchmarks.md and its plots in docs/benchmarks/; any
other run writes to benchmarks/results/ (ignored by git), unless --out says.
``--update-docs`` puts the workloads it ran into docs/benchmarks.md in place
of their old sections, each saying when it was measured, and keeps the rest.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from . import plots
from .contenders import CONTENDERS, WORKERS
from .probe import ROOT
from .report import Section, machine, splice, targets_table
from .session import Session, Settings
from .workloads import WORKLOADS

METHOD = """\
- Every contender runs the same workload in the same run. Each timed call runs in a fresh
  Python process that first makes one untimed call (so the forkserver, imports and any pool
  a library keeps between calls are warm). The contenders take turns, one timed call each
  per round, so that a stretch of time in which the machine is slower (it is shared) slows
  them all alike. Tables give the median of the rounds, and each contender's figure as a
  ratio to pipework's: only ratios taken side by side mean much here.
- A timed call does what one call does in a program: a contender that starts workers per
  call (pipework.map, ProcessPoolExecutor, Pool, mpire, pypeln, aiomultiprocess) starts and
  stops them inside the timing. joblib keeps its loky workers between calls, so its timed
  calls start none. "1-item call" measures that fixed cost, and "after start-up" figures
  take it off; issue 3's throughput and speedup targets are judged after start-up, since
  starting workers is a cost per call, not per item. Both figures are shown.
- Workers start by forkserver on Linux where the contender lets one choose; joblib uses
  loky's own start, and pypeln always forks. ProcessPoolExecutor.map tries a few chunksizes
  and the best is reported; Pool.imap uses the chunksize Pool.map would choose (four chunks
  per worker). APIs that send one message per item run on fewer items; rates are per item.
- A contender that cannot run a workload, is not installed, fails or runs past its time
  limit shows n/a with the reason. Outputs are checked (all items back, none changed) on
  every timed call; times are never asserted."""


VERDICTS = """\
Each verdict compares one ratio from this run with its target. On this shared machine a
ratio moves by several percent from run to run (a speedup above the 2.0x limit in (b) shows
how much), so a verdict that close to its target could go either way on the next run."""


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the items, one repeat")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="workloads, e.g. a,c")
    parser.add_argument("--contenders", default=None, help="e.g. pipework,executor_map")
    parser.add_argument("--repeat", type=int, default=None, help="timed calls per measurement")
    parser.add_argument("--out", type=Path, default=None, help="where benchmarks.md goes")
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="replace these workloads' sections in docs/benchmarks.md, keep the rest",
    )
    args = parser.parse_args(argv)
    if args.update_docs and (args.quick or args.contenders or args.out):
        parser.error("--update-docs takes full figures: no --quick, --contenders or --out")
    args.only = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = [key for key in args.only if key not in WORKLOADS]
    chosen = args.contenders.split(",") if args.contenders else None
    unknown += [key for key in chosen or () if key not in CONTENDERS]
    if unknown:
        parser.error(f"unknown workloads or contenders: {', '.join(unknown)}")
    args.contenders = frozenset(chosen) if chosen else None
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    repeat = args.repeat or (1 if args.quick else 3)
    scale = 0.1 if args.quick else 1.0
    timeout = 60.0 if args.quick else 150.0
    return Settings(args.quick, repeat, scale, args.contenders, timeout)


def full_run(args: argparse.Namespace) -> bool:
    return not args.quick and args.contenders is None and args.only == list(WORKLOADS)


def describe(args: argparse.Namespace) -> str:
    """Say what kind of run this was, for the report's first lines."""
    if full_run(args):
        return "a full run"
    parts = ["a --quick run" if args.quick else "a partial run", "workloads " + ",".join(args.only)]
    if args.contenders:
        parts.append("contenders " + ",".join(sorted(args.contenders)))
    return ", ".join(parts)


def run_workload(session: Session, key: str) -> Section:
    """Run one workload and print its tables; a crash becomes a note, not the end of the run."""
    print(f"\n## running ({key}) ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        section = WORKLOADS[key](session)
    except Exception:
        traceback.print_exc()
        failure = traceback.format_exc().strip().splitlines()[-1]
        section = Section(key, "failed", f"This workload failed: `{failure}`.")
    print(f"## ({key}) took {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    print(section.markdown(), flush=True)
    return section


def draw(sections: list[Section], out: Path) -> None:
    """Draw the plots next to the report, and reference them from their sections."""
    if not plots.available():
        print("matplotlib is not installed: no plots", file=sys.stderr)
        return
    for section in sections:
        if section.key == "b" and section.plot:
            plots.throughput(section.plot, out / "benchmarks" / "throughput.png", WORKERS)
            section.images.append("benchmarks/throughput.png")
        if section.key == "f" and section.plot:
            plots.latency(section.plot, out / "benchmarks" / "latency.png")
            section.images.append("benchmarks/latency.png")


def document(sections: list[Section], settings: Settings, kind: str, minutes: float) -> str:
    about = machine()
    lines = ["# Benchmarks", ""]
    lines += [
        "pipework against the standard library and its peers, on the workloads of issue 3.",
        (
            f"Generated by `make bench` (`python -m benchmarks.run`): {kind}, median of "
            f"{settings.repeat}, {minutes:.1f} minutes. Rerun it to refresh this page; do not "
            "edit it by hand."
        ),
        "",
        "## The machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in about.items()),
        "",
        "## How it measures",
        "",
        METHOD,
        "",
        "## Targets",
        "",
    ]
    targets = [target for section in sections for target in section.targets]
    lines += [targets_table(targets).markdown(), VERDICTS, "", "## Results", ""]
    lines += [section.markdown() for section in sections]
    return "\n".join(lines)


def update_docs(sections: list[Section], settings: Settings, kind: str) -> Path:
    """Put ``sections`` into docs/benchmarks.md, each saying when and how it was measured."""
    about = machine()
    sections = [section for section in sections if section.title != "failed"]  # keep the old
    for section in sections:
        rounds = section.rounds or settings.repeat
        median = f"median of {rounds}" if rounds > 1 else "one run per figure"
        section.about += (
            f"\n\n*Measured on its own ({kind}, {median}) on "
            f"{about['date']}, pipework {about['pipework']}; the rest of this page comes "
            "from the run described at its top.*"
        )
    page = ROOT / "docs" / "benchmarks.md"
    draw(sections, page.parent)
    page.write_text(splice(page.read_text(), sections))
    return page


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    settings = settings_from(args)
    out = args.out or (ROOT / "docs" if full_run(args) else ROOT / "benchmarks" / "results")
    session = Session(settings)
    start = time.perf_counter()
    sections = [run_workload(session, key) for key in args.only]
    minutes = (time.perf_counter() - start) / 60
    targets = [target for section in sections for target in section.targets]
    print("#### Targets\n\n" + targets_table(targets).markdown())
    if args.update_docs and not full_run(args):
        page = update_docs(sections, settings, describe(args))
        print(f"updated {page} in {minutes:.1f} minutes", file=sys.stderr)
        return
    draw(sections, out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.md").write_text(document(sections, settings, describe(args), minutes))
    print(f"wrote {out / 'benchmarks.md'} in {minutes:.1f} minutes", file=sys.stderr)


if __name__ == "__main__":
    main()
