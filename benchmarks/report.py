"""Tables, targets and the Markdown they become."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .probe import NotAvailable

PEERS = (
    "joblib",
    "mpire",
    "pypeln",
    "aiomultiprocess",
    "numpy",
    "aiohttp",
    "matplotlib",
    "distributed",
)


@dataclass
class Table:
    title: str | None
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    numeric: bool = True  # right-align every column but the first

    def markdown(self) -> str:
        lines = [f"#### {self.title}", ""] if self.title else []
        align = "---:" if self.numeric else "---"
        lines.append("| " + " | ".join(self.headers) + " |")
        lines.append("|" + "|".join(["---"] + [align] * (len(self.headers) - 1)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines += ["", *(f"- {note}" for note in self.notes)] if self.notes else []
        return "\n".join(lines) + "\n"


@dataclass
class Target:
    """One target of issue 3, and whether this run met it (None: not measured)."""

    measure: str
    target: str
    measured: str
    met: bool | None


@dataclass
class Section:
    """One workload's results."""

    key: str
    title: str
    about: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    plot: dict[str, Any] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    rounds: int | None = None  # runs per figure, when not the run's --repeat

    def markdown(self) -> str:
        parts = [f"### ({self.key}) {self.title}", "", self.about, ""]
        parts += [table.markdown() for table in self.tables]
        parts += [f"![{self.title}]({image})\n" for image in self.images]
        return "\n".join(parts)


# Cells --------------------------------------------------------------------


def na(result: NotAvailable) -> str:
    return f"n/a: {result.reason}"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:,.1f} ms" if value < 1 else f"{value:,.2f} s"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def targets_table(targets: list[Target]) -> Table:
    rows = [[t.measure, t.target, t.measured, verdict(t.met)] for t in targets]
    headers = ["measure", "target", "this run", "verdict"]
    return Table(None, headers, rows, numeric=False)


# Updating a page -----------------------------------------------------------


def splice(page: str, sections: list[Section]) -> str:
    """Put ``sections`` into a page an earlier run wrote, in place of their old versions.

    A section the page lacks goes at its end. The rows of the sections'
    targets replace their old rows in the targets table, or are added to it,
    each new one after the row of its section's target before it.
    The rest of the page, measured by that earlier run, is left as it was.
    """
    for section in sections:
        page = _splice_section(page, section)
    for section in sections:
        previous = None
        for target in section.targets:
            page = _splice_target(page, target, previous)
            previous = target
    return page


def _splice_section(page: str, section: Section) -> str:
    heading = re.search(rf"^### \({re.escape(section.key)}\) ", page, re.MULTILINE)
    if heading is None:
        return page.rstrip("\n") + "\n\n" + section.markdown()
    following = re.compile(r"^###? ", re.MULTILINE).search(page, heading.end())
    if following is None:
        return page[: heading.start()] + section.markdown()
    return page[: heading.start()] + section.markdown() + "\n" + page[following.start() :]


def _splice_target(page: str, target: Target, previous: Target | None = None) -> str:
    """Replace ``target``'s row; a new one goes after ``previous``'s, its section's last."""
    row = targets_table([target]).markdown().splitlines()[-1]
    lines = page.split("\n")
    old = f"| {target.measure} |"
    for index, line in enumerate(lines):
        if line.startswith(old):
            lines[index] = row
            return "\n".join(lines)
    if previous is not None:
        before = f"| {previous.measure} |"
        for index, line in enumerate(lines):
            if line.startswith(before):
                lines.insert(index + 1, row)
                return "\n".join(lines)
    # A new target: after the last row of the first table of the targets' heading.
    start = next(
        i for i, line in enumerate(lines) if line.startswith("## ") and "targets" in line.lower()
    )
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    last = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    lines.insert(last, row)
    return "\n".join(lines)


# The machine ---------------------------------------------------------------


def machine() -> dict[str, str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": f"{cores} usable ({os.cpu_count()} online)",
        "cpu": _cpu_model(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "system": f"{platform.system()} {platform.release()}",
        "pipework": f"{_version('pipework')} ({_commit()})",
        "peers": ", ".join(f"{name} {_version(name)}" for name in PEERS),
    }


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return "unknown commit"
    return f"commit {head}{' with local changes' if dirty else ''}" if head else "unknown commit"
