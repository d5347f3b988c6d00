"""(e) Peak memory of a long stream: does it grow with the number of items?"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from ..contenders import START, WORKERS
from ..probe import NotAvailable, run_probe
from ..report import Section, Table, Target, na
from ..session import Session

SMALL, LARGE = 10_000, 1_000_000
CHUNKSIZE = 4096

ABOUT = f"""\
Each run streams {{small}} or {{large}} ints through a no-op process stage on {WORKERS} workers
and throws the outputs away, in a fresh interpreter. "Peak RSS" is `ru_maxrss` of
`getrusage(RUSAGE_SELF)` at the end: the largest resident set of the parent process over its
life (imports included), without its worker processes, which hold a chunk at a time. "Growth"
is that peak less the same figure taken just before the run, after the imports. The standard
library rows use chunksize {CHUNKSIZE} and read their results as they come."""

LABELS = {
    "pipework_run": "pipework Pipeline.map(on='process').run()",
    "pipework_stream": "pipework Pipeline.map(on='process'), async for over the outputs",
    "executor_map": f"ProcessPoolExecutor.map, chunksize {CHUNKSIZE}",
    "pool_imap": f"multiprocessing.Pool.imap, chunksize {CHUNKSIZE}",
}


def _pipework_run(n: int) -> int:
    import pipework

    from ..tasks import noop

    pipeline = pipework.Pipeline(range(n)).map(noop, on="process", workers=WORKERS, name="work")
    return asyncio.run(pipeline.run())["work"].items_out


def _pipework_stream(n: int) -> int:
    import pipework

    from ..tasks import noop

    async def count() -> int:
        pipeline = pipework.Pipeline(range(n)).map(noop, on="process", workers=WORKERS)
        return sum([1 async for _ in pipeline])

    return asyncio.run(count())


def _executor_map(n: int) -> int:
    from ..tasks import noop

    context = multiprocessing.get_context(START)
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        return sum(1 for _ in pool.map(noop, range(n), chunksize=CHUNKSIZE))


def _pool_imap(n: int) -> int:
    from ..tasks import noop

    with multiprocessing.get_context(START).Pool(WORKERS) as pool:
        return sum(1 for _ in pool.imap(noop, range(n), chunksize=CHUNKSIZE))


STREAMS: dict[str, Callable[[int], int]] = {
    "pipework_run": _pipework_run,
    "pipework_stream": _pipework_stream,
    "executor_map": _executor_map,
    "pool_imap": _pool_imap,
}


def _maxrss_mb() -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    unit = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 1e6


def peak_rss(variant: str, n: int) -> dict[str, float]:
    """Stream ``n`` items through ``variant`` and report peak RSS in MB (runs in a `cell` child)."""
    before = _maxrss_mb()
    count = STREAMS[variant](n)
    if count != n:
        raise AssertionError(f"{variant}: {count} items came out of {n}")
    return {"before": before, "peak": _maxrss_mb()}


def run(session: Session) -> Section:
    settings = session.settings
    small, large = SMALL, settings.count(LARGE, floor=SMALL)
    section = Section(
        "e", "Peak memory of a long stream", ABOUT.format(small=f"{small:,}", large=f"{large:,}")
    )
    results = {
        key: _measure(session, key, small, large) for key in STREAMS if _wanted(session, key)
    }
    section.tables.append(_table(results, small, large))
    if "pipework_run" in results:
        section.targets.append(_target(results["pipework_run"], large))
    return section


def _wanted(session: Session, key: str) -> bool:
    return session.wants("pipework" if key.startswith("pipework") else key)


def _measure(
    session: Session, key: str, small: int, large: int
) -> list[dict[str, float] | NotAvailable]:
    target = "benchmarks.workloads.memory:peak_rss"
    timeout = session.settings.timeout
    return [run_probe(target, {"variant": key, "n": n}, timeout=timeout) for n in (small, large)]


def _table(
    results: dict[str, list[dict[str, float] | NotAvailable]], small: int, large: int
) -> Table:
    headers = ["stream", f"peak RSS, {small:,} items", f"peak RSS, {large:,} items"]
    headers += [f"growth, {small:,}", f"growth, {large:,}", "difference of peaks"]
    rows = [[LABELS[key], *_cells(found)] for key, found in results.items()]
    return Table("Peak RSS of the parent process, MB", headers, rows)


def _cells(found: list[dict[str, float] | NotAvailable]) -> list[str]:
    for one in found:
        if isinstance(one, NotAvailable):
            return [na(one), "", "", "", ""]
    lo, hi = found  # type: ignore[misc]
    return [
        f"{lo['peak']:.1f}",
        f"{hi['peak']:.1f}",
        f"{lo['peak'] - lo['before']:.1f}",
        f"{hi['peak'] - hi['before']:.1f}",
        f"{hi['peak'] - lo['peak']:+.1f}",
    ]


def _target(found: list[dict[str, float] | NotAvailable], large: int) -> Target:
    measure = f"peak RSS, {large:,} items vs {SMALL:,} (Pipeline.run())"
    if any(isinstance(one, NotAvailable) for one in found):
        return Target(measure, "within 30 MB", "not measured", None)
    lo, hi = found  # type: ignore[misc]
    difference = hi["peak"] - lo["peak"]
    note = "" if large == LARGE else f" (a --quick run: {large:,} items, not {LARGE:,})"
    return Target(measure, "within 30 MB", f"{difference:+.1f} MB{note}", abs(difference) <= 30)
