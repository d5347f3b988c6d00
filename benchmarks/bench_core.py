"""Overhead and scaling of pipework's process stages against the standard ways.

Every contender runs the same workload in the same run of this script, and
the table reports medians and each one's time as a ratio to pipework's: this
machine is noisy, and only ratios taken side by side mean much.

Run: ``make bench`` (or ``python benchmarks/bench_core.py --quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import pipework

WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def noop(x: int) -> int:
    return x


def spin(x: int, seconds: float = 0.001) -> int:
    """Pure-Python CPU work for about ``seconds``."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return x


def _ctx() -> multiprocessing.context.BaseContext:
    return multiprocessing.get_context("forkserver" if sys.platform == "linux" else "spawn")


def serial(fn: Callable[[int], int], n: int) -> None:
    for i in range(n):
        fn(i)


def with_pipework(fn: Callable[[int], int], n: int) -> None:
    out = asyncio.run(pipework.map(fn, range(n), on="process", workers=WORKERS))
    assert len(out) == n


def with_run_in_executor(fn: Callable[[int], int], n: int) -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(WORKERS, mp_context=_ctx()) as pool:
            await asyncio.gather(*(loop.run_in_executor(pool, fn, i) for i in range(n)))

    asyncio.run(go())


def with_executor_map(fn: Callable[[int], int], n: int, chunksize: int) -> None:
    with ProcessPoolExecutor(WORKERS, mp_context=_ctx()) as pool:
        assert sum(1 for _ in pool.map(fn, range(n), chunksize=chunksize)) == n


def with_pool_imap(fn: Callable[[int], int], n: int, chunksize: int) -> None:
    with _ctx().Pool(WORKERS) as pool:
        assert sum(1 for _ in pool.imap(fn, range(n), chunksize=chunksize)) == n


def median_time(run: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def workload(name: str, fn: Callable[[int], int], n: int, repeat: int, *, raw_n: int) -> list[str]:
    chunk = max(1, n // (WORKERS * 8))
    contenders: dict[str, tuple[Callable[[], None], int]] = {
        "pipework.map": (lambda: with_pipework(fn, n), n),
        "serial, in process": (lambda: serial(fn, n), n),
        f"ProcessPoolExecutor.map, chunksize {chunk}": (lambda: with_executor_map(fn, n, chunk), n),
        f"Pool.imap, chunksize {chunk}": (lambda: with_pool_imap(fn, n, chunk), n),
        # One call per item is so slow that it runs on fewer items; its
        # rate is scaled to the same count.
        "run_in_executor, one item per call": (lambda: with_run_in_executor(fn, raw_n), raw_n),
    }
    rates = {label: count / median_time(run, repeat) for label, (run, count) in contenders.items()}
    ours = rates["pipework.map"]
    rows = [f"### {name} ({n:,} items, {WORKERS} workers, median of {repeat})", ""]
    rows += ["| contender | items/s | pipework's speed ÷ theirs |", "|---|---:|---:|"]
    rows += [f"| {label} | {rate:,.0f} | {ours / rate:.2f} |" for label, rate in rates.items()]
    return [*rows, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer items and repeats")
    args = parser.parse_args()
    scale, repeat = (0.1, 1) if args.quick else (1.0, 3)
    lines = ["# pipework core benchmark", ""]
    lines += workload("no-op items", noop, int(200_000 * scale), repeat, raw_n=int(5_000 * scale))
    lines += workload("1 ms CPU items", spin, int(4_000 * scale), repeat, raw_n=int(1_000 * scale))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
