"""(i) Peak memory with large items: 1 MB items, cheap work, 100 against 400 of them."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..contenders import START, WORKERS
from ..probe import NotAvailable, run_probe
from ..report import Section, Table, Target, na
from ..session import Session

FEW, MANY = 100, 400
ITEM = 1_000_000

ABOUT = f"""\
Each run makes {{few}} or {{many}} items of {ITEM // 1_000_000} MB (written bytes, in the
parent) and takes each one's `len` on {WORKERS} worker processes, in a fresh interpreter.
"Peak" is the largest resident set of the run's whole process tree (the parent, any fork
server and the workers), sampled every 10 ms from a thread in the parent, with malloc's
mmap threshold fixed (`MALLOC_MMAP_THRESHOLD_=131072`) so that it shows what is held, not
what glibc keeps of freed blocks. pipework runs with every default but `buffer=8`, as in
the issue's reproducer; the standard library rows use chunksize 1, since each item is a
megabyte, and read their results as they come. A peak that grows with the number of items
is memory that grows with the stream."""

LABELS = {
    "pipework": "pipework Pipeline.map(big).map(len, on='process').run()",
    "pipework_thread": "the same, with the first stage on='thread'",
    "executor_map": "ProcessPoolExecutor.map(len, items), chunksize 1",
    "pool_imap": "multiprocessing.Pool.imap(len, items), chunksize 1",
}


def big(i: int) -> bytes:
    # Written, not bytes(ITEM): calloc's untouched zero pages are not resident,
    # so they would hide an item held anywhere but where it is copied.
    return bytes([i % 256]) * ITEM


def _pipework(n: int, first: dict[str, object]) -> int:
    import pipework

    pipeline = (
        pipework.Pipeline(range(n))
        .map(big, buffer=8, **first)  # type: ignore[call-overload]
        .map(len, on="process", workers=WORKERS, buffer=8, name="len")
    )
    return int(asyncio.run(pipeline.run())["len"].items_out)


def _executor_map(n: int) -> int:
    context = multiprocessing.get_context(START)
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        return sum(1 for _ in pool.map(len, (big(i) for i in range(n))))


def _pool_imap(n: int) -> int:
    with multiprocessing.get_context(START).Pool(WORKERS) as pool:
        return sum(1 for _ in pool.imap(len, (big(i) for i in range(n))))


STREAMS: dict[str, Callable[[int], int]] = {
    "pipework": lambda n: _pipework(n, {}),
    "pipework_thread": lambda n: _pipework(n, {"on": "thread"}),
    "executor_map": _executor_map,
    "pool_imap": _pool_imap,
}


def peak_tree(variant: str, n: int) -> dict[str, float]:
    """Run ``variant`` over ``n`` large items; return the tree's peak RSS in MB (in a `cell`)."""
    done, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_sample, args=(done, peak), daemon=True)
    sampler.start()
    try:
        count = STREAMS[variant](n)
    finally:
        done.set()
        sampler.join()
    if count != n:
        raise AssertionError(f"{variant}: {count} items came out of {n}")
    return {"peak": peak[0] / 1e6}


def _sample(done: threading.Event, peak: list[int]) -> None:
    while not done.is_set():
        peak[0] = max(peak[0], _tree_rss(os.getpid()))
        time.sleep(0.01)


def _tree_rss(root: int) -> int:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    total = 0
    for pid in parents:
        up = pid
        while up and up != root and up in parents:
            up = parents[up]
        if up == root:
            try:
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except OSError:
                continue
            total += pages * os.sysconf("SC_PAGE_SIZE")
    return total


def run(session: Session) -> Section:
    section = Section(
        "i", "Peak memory with large items", ABOUT.format(few=f"{FEW:,}", many=f"{MANY:,}")
    )
    results = {key: _measure(session, key) for key in STREAMS if _wanted(session, key)}
    section.tables.append(_table(results))
    if "pipework" in results:
        section.targets.append(_target(results["pipework"]))
    return section


def _wanted(session: Session, key: str) -> bool:
    return session.wants("pipework" if key.startswith("pipework") else key)


def _measure(session: Session, key: str) -> list[dict[str, float] | NotAvailable]:
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "131072"  # read by each child as it starts
    timeout = session.settings.timeout
    target = "benchmarks.workloads.large_items:peak_tree"
    return [run_probe(target, {"variant": key, "n": n}, timeout=timeout) for n in (FEW, MANY)]


def _table(results: dict[str, list[dict[str, float] | NotAvailable]]) -> Table:
    headers = ["stream", f"peak, {FEW:,} items", f"peak, {MANY:,} items", "difference"]
    rows = [[LABELS[key], *_cells(found)] for key, found in results.items()]
    return Table("Peak RSS of the process tree, MB", headers, rows)


def _cells(found: list[dict[str, float] | NotAvailable]) -> list[str]:
    for one in found:
        if isinstance(one, NotAvailable):
            return [na(one), "", ""]
    lo, hi = found  # type: ignore[misc]
    return [f"{lo['peak']:.0f}", f"{hi['peak']:.0f}", f"{hi['peak'] - lo['peak']:+.0f}"]


def _target(found: list[dict[str, float] | NotAvailable]) -> Target:
    measure = f"peak RSS with 1 MB items, {MANY:,} vs {FEW:,} (parent and workers)"
    if any(isinstance(one, NotAvailable) for one in found):
        return Target(measure, "within 40 MB", "not measured", None)
    lo, hi = found  # type: ignore[misc]
    difference = hi["peak"] - lo["peak"]
    return Target(measure, "within 40 MB", f"{difference:+.0f} MB", abs(difference) <= 40)
