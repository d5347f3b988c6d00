"""Replace ``multiprocessing.Pool.map`` with ``pipework.map``.

The old way::

    if __name__ == "__main__":
        with Pool(os.cpu_count()) as pool:
            steps = pool.map(collatz_steps, range(1, 10_000))

The pipework way is one awaited call, usable inside async code. Workers default
to the core count; items go to them in chunks sized from measured run times;
results come back in input order. Unlike ``Pool.map``:

- a lambda or a closure works, because functions travel with cloudpickle;
- ``on="thread"`` switches to threads, with nothing else changed;
- a failure comes back as itself, with a note naming the item that raised.

Run it from the repository root::

    python examples/pool_map.py
"""

from __future__ import annotations

import asyncio

import pipework


def collatz_steps(n: int) -> int:
    """Count the steps from ``n`` down to 1: a little pure-Python CPU work per item."""
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


async def main() -> None:
    numbers = range(1, 10_000)

    # Processes, one per core, in adaptive chunks: Pool(os.cpu_count()).map(...).
    steps = await pipework.map(collatz_steps, numbers)
    longest = max(numbers, key=lambda n: steps[n - 1])
    print(f"collatz: {len(steps)} results in input order")
    print(f"longest chain below 10000 starts at {longest} ({steps[longest - 1]} steps)")

    # Pool.map cannot pickle a lambda; pipework sends it with cloudpickle.
    cubes = await pipework.map(lambda x: x**3, range(8))
    print(f"lambda in processes: {cubes}")

    # The same call on threads: one word changes.
    on_threads = await pipework.map(collatz_steps, numbers, on="thread", workers=4)
    print(f"threads give the same results: {on_threads == steps}")

    # A failure is raised as itself; its note says which item it was.
    try:
        await pipework.map(lambda x: 12 // x, [4, 3, 2, 0, 1])
    except ZeroDivisionError as error:
        print(f"ZeroDivisionError raised as itself: {error.__notes__[-1]}")


if __name__ == "__main__":
    # Worker processes import this module; the guard keeps them from running main().
    asyncio.run(main())
