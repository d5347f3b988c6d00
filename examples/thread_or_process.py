"""Move a stage between threads and processes by changing one word: ``on=``.

The old way swaps one executor class for another::

    with ProcessPoolExecutor() as pool:      # or ThreadPoolExecutor()
        results = list(pool.map(work, items))

In pipework only ``on="thread"`` or ``on="process"`` changes; the function,
the items and the rest of the pipeline stay as they are. Which one to pick:

- CPU-bound pure Python wants processes: threads share one GIL and take turns;
- blocking I/O (a disk, a socket, a C library that releases the GIL) is fine
  on threads, which start at once and need no pickling.

The script runs one of each kind of work both ways and prints the wall times.
They vary from machine to machine; on a machine with two cores or more the
CPU row should favour processes and the blocking row threads.

Run it from the repository root::

    python examples/thread_or_process.py
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal

from pipework import Pipeline


def count_primes(limit: int) -> int:
    """CPU-bound: count primes below ``limit`` by trial division, holding the GIL throughout."""
    return sum(1 for n in range(2, limit) if all(n % d for d in range(2, int(n**0.5) + 1)))


def wait_for_disk(item: int) -> int:
    """Blocking I/O, imitated: the thread sleeps and releases the GIL, as a read would."""
    time.sleep(0.02)
    return item


async def timed(
    fn: Callable[[int], Any], items: list[int], on: Literal["thread", "process"], workers: int
) -> tuple[float, list[Any]]:
    """Run ``fn`` over ``items`` on threads or processes; return the seconds taken and results."""
    results: list[Any] = []
    start = time.perf_counter()
    await Pipeline(items).map(fn, on=on, workers=workers).sink(results.append).run()
    return time.perf_counter() - start, results


async def main() -> None:
    jobs = {
        "cpu (count primes)": (count_primes, [30_000] * 10, 2),
        "blocking (sleep)": (wait_for_disk, list(range(40)), 8),
    }
    print(f"{'work':<20}{'on=thread':>12}{'on=process':>12}")
    for title, (fn, items, workers) in jobs.items():
        thread_seconds, thread_results = await timed(fn, items, "thread", workers)
        process_seconds, process_results = await timed(fn, items, "process", workers)
        if thread_results != process_results:
            raise SystemExit(f"{title}: threads and processes disagree")
        print(f"{title:<20}{thread_seconds:>11.2f}s{process_seconds:>11.2f}s")
    print("same results both ways: True")


if __name__ == "__main__":
    asyncio.run(main())
