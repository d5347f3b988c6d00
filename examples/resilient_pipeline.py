"""Keep a pipeline going past bad items: retries, a timeout, dead letters and skips.

Forty sensor records go through three stages, each with its own failure policy::

    ids -> fetch    (async: a flaky service; ConnectionError is retried with backoff)
        -> analyse  (processes: a corrupt record raises, one record hangs and is
                     killed by its 1 s timeout; both go to a dead-letter list)
        -> check    (inline: a reading out of range is skipped, and reported)
        -> results  (a sink)

No failure stops the run. Each item either comes out, or is recorded in the
report as a `pipework.Failure` naming its stage, its index, its repr and the
exception; the dead-letter handler gets the same `Failure` objects as they
happen. The worker that ran the hanging record is killed and replaced, so the
stage never waits more than the timeout for it.

Run it from the repository root::

    python examples/resilient_pipeline.py
"""

from __future__ import annotations

import asyncio
import math
import time

from pipework import Failure, Pipeline, Retry

RECORDS = 40
FLAKY = {3, 10, 17}  # the service fails twice for these before it answers
CORRUPT = 11  # its payload does not parse
HANGS = 23  # analysing it never ends
OUT_OF_RANGE = 31  # analysed fine, but its reading fails the check
MAX_READING = 100.0

tries: dict[int, int] = {}


async def fetch(record: int) -> str:
    """Fetch a record's payload from a service that sometimes drops the connection."""
    await asyncio.sleep(0.001)  # the network round trip
    tries[record] = tries.get(record, 0) + 1
    if record in FLAKY and tries[record] <= 2:
        raise ConnectionError(f"connection reset fetching record {record}")
    if record == CORRUPT:
        return f"{record}:###"
    scale = 1_000_000 if record == OUT_OF_RANGE else 1
    return f"{record}:" + ",".join(str((record * 10 + i) * scale) for i in range(50))


def analyse(payload: str) -> tuple[int, float]:
    """Parse a payload and compute its reading: CPU work, so it runs in processes."""
    head, _, data = payload.partition(":")
    record = int(head)
    values = [int(field) for field in data.split(",")]  # ValueError for a corrupt one
    if record == HANGS:
        time.sleep(60)  # a bug that loops for ever; the timeout kills its worker
    return record, math.fsum(math.sqrt(v) for v in values) / len(values)


def check(result: tuple[int, float]) -> tuple[int, float]:
    """Refuse a reading outside the sensor's range."""
    record, reading = result
    if not 0 <= reading <= MAX_READING:
        raise ValueError(f"reading {reading:,.0f} of record {record} is out of range")
    return result


async def main() -> None:
    dead_letters: list[Failure] = []
    results: list[tuple[int, float]] = []
    start = time.perf_counter()
    report = await (
        Pipeline(range(RECORDS))
        .map(fetch, concurrency=8, retry=Retry(attempts=3, base_delay=0.01, on=(ConnectionError,)))
        .map(analyse, on="process", workers=2, timeout=1.0, errors=dead_letters.append)
        .map(check, errors="skip")
        .sink(results.append)
        .run()
    )
    elapsed = time.perf_counter() - start

    print(report)
    print()
    print(f"{RECORDS} records in: {len(results)} results, {len(report.failures)} failures")
    accounted = len(results) + len(report.failures) == RECORDS
    print(f"every record is a result or a failure: {accounted}")
    print(f"results in input order: {[r for r, _ in results] == sorted(r for r, _ in results)}")
    print(f"tries made again after a ConnectionError: {report['fetch'].items_retried}")
    print(f"the run took {elapsed:.1f} s, though one record would have taken 60 s")
    print()
    print("failures, from the report:")
    for failure in report.failures:
        error = failure.error
        tries_made = f"{failure.attempts} {'try' if failure.attempts == 1 else 'tries'}"
        print(f"  item {failure.index} in stage {failure.stage}, after {tries_made}:")
        print(f"    {type(error).__name__}: {error}")
    print(f"dead letters: items {[failure.index for failure in dead_letters]}")


if __name__ == "__main__":
    asyncio.run(main())
