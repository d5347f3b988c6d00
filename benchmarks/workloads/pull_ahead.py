"""(k) Pull-ahead: how far ahead of a slow consumer each contender reads its source."""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..contenders import START, WORKERS
from ..measure import median
from ..probe import NotAvailable, run_probe
from ..report import Section, Table, Target, na, ratio
from ..session import Session

N: int | None = None  # the source's items; None: more than any pipework pipeline may read
CONSUMED = 300  # items read before the pull-ahead is taken and the run is stopped
SLEEP = 0.002  # the consumer's pause per item
CHUNKSIZE = 64  # the process pools' chunksize; it changes nothing of how far they read
QUEUE = 64  # maxsize of each of the hand-written version's two queues
THREADS = min(32, WORKERS + 4)  # ThreadPoolExecutor's default, and a thread stage's

# What pipework documents (docs/concepts.md, docs/design.md D43 and D47).
AUTO_BUFFER = 4_096  # the most a channel holds where its default is sized by bytes (None)
MAX_CHUNK = 4_096  # the most items in a chunk
CONCURRENCY = 16  # an async stage's `concurrency=` by default

ABOUT = f"""\
A source generator yields the ints 0 to {{last}} and counts how many it has yielded
("pulled"). The consumer reads the results one at a time and sleeps {SLEEP * 1000:g} ms after
each; when it has read {{consumed}} ("consumed"), the pull-ahead is pulled minus consumed,
and the run is stopped (pipework: `break` out of `async for` inside
`async with pipeline.stream()`; the executors: shut down with their pending work
cancelled; the Pool: terminated). The function is `x + 1`. "Largest seen" is the largest
pull-ahead after any item read, not only the last. Each run is a fresh process. The source
is finite, so that a contender that reads all of it at once still ends, and longer than
the largest documented bound below plus the {{consumed}} read, so that no pipework pipeline
can run out of it within its bound; "(all)" marks a contender that had read the whole
source by then.

pipework runs with every default (`Pipeline(source).map(f, ...)`); then as the issue's
reproducer, a thread stage with `buffer=4`; then with its source's `buffer=4` too, the
example of docs/concepts.md; and once more with `max_in_flight=16`. Its documented bound
is the sum along the path (design, D47): the source's channel (its `buffer=`), the stage's
bound in flight (for a thread or process stage 4 chunks per worker, a chunk at most
{MAX_CHUNK:,} items; for an async stage `2 * concurrency`; or `max_in_flight=`), the
stage's channel (its `buffer=`), and the batch the reader took last (at most that
channel). Here a thread stage has {THREADS} workers and a process stage {WORKERS};
by default a channel holds {{buffer}} and `concurrency=` is {CONCURRENCY}.

`ProcessPoolExecutor.map` (chunksize {CHUNKSIZE}, {WORKERS} workers by {START}) and
`ThreadPoolExecutor.map` ({THREADS} threads) submit every item before they return their
first result. `multiprocessing.Pool.imap` (chunksize {CHUNKSIZE}, {WORKERS} workers) reads
the source in its task-feeder thread as fast as its workers take tasks, and keeps the
results nobody has read yet. The hand-written asyncio version is what a careful user would
write: a producer task puts into an `asyncio.Queue(maxsize={QUEUE})`; {THREADS} worker tasks
each take an item, `await loop.run_in_executor(pool, f, x)` on a
`ThreadPoolExecutor({THREADS})` and put the result into a second
`asyncio.Queue(maxsize={QUEUE})`, which the consumer reads in the order results finish.
Nothing documents its bound, but its code has one: {2 * QUEUE + THREADS + 1} (both queues,
one item per worker, and the one the producer holds while it waits)."""


def default_buffer() -> int:
    """The most items a channel holds when its ``buffer=`` is left out, as pipework says.

    `Pipeline`'s signature shows the default: a count, or None for a channel
    sized by its items' bytes, which holds at most `AUTO_BUFFER` of them.
    """
    import pipework

    default = inspect.signature(pipework.Pipeline).parameters["buffer"].default
    return default if isinstance(default, int) else AUTO_BUFFER


def inc(x: int) -> int:
    return x + 1


async def ainc(x: int) -> int:
    return x + 1


@dataclass
class Meter:
    """The source's count, the consumer's, and the pull-ahead seen after each item read."""

    n: int
    pulled: int = 0
    consumed: int = 0
    gaps: list[int] = field(default_factory=list)

    def source(self) -> Iterator[int]:
        for x in range(self.n):
            self.pulled += 1
            yield x

    def took(self, out: int, *, ordered: bool = True) -> None:
        wrong = out != self.consumed + 1 if ordered else not 0 < out <= self.pulled
        if wrong:
            raise AssertionError(f"item {self.consumed} came out as {out}")
        self.consumed += 1
        self.gaps.append(self.pulled - self.consumed)


# pipework ------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A pipework pipeline: its source's buffer and its one stage's options."""

    label: str
    options: dict[str, Any]
    source_buffer: int | None = None  # None: the default
    fn: Callable[[int], Any] = inc

    def bound(self) -> int:
        """The documented bound: both channels, the stage in flight, and the reader's batch."""
        source_buffer = default_buffer() if self.source_buffer is None else self.source_buffer
        stage_buffer = int(self.options.get("buffer", default_buffer()))
        limit = self.options.get("max_in_flight")
        if limit is not None:
            in_flight = int(limit)
        elif self.options.get("on") == "thread":
            in_flight = 4 * int(self.options.get("workers", THREADS)) * MAX_CHUNK
        elif self.options.get("on") == "process":
            in_flight = 4 * int(self.options.get("workers", WORKERS)) * MAX_CHUNK
        else:
            in_flight = 2 * int(self.options.get("concurrency", CONCURRENCY))
        return source_buffer + in_flight + stage_buffer + stage_buffer


PIPEWORK = {
    "pipework_thread": Variant("pipework .map(f, on='thread')", {"on": "thread"}),
    "pipework_process": Variant("pipework .map(f, on='process')", {"on": "process"}),
    "pipework_async": Variant("pipework .map(async_f)", {}, fn=ainc),
    "pipework_thread_buffer": Variant(
        "pipework .map(f, on='thread', buffer=4)", {"on": "thread", "buffer": 4}
    ),
    "pipework_thread_4": Variant(
        "pipework Pipeline(src, buffer=4).map(f, on='thread', buffer=4)",
        {"on": "thread", "buffer": 4},
        source_buffer=4,
    ),
    "pipework_thread_4_limit": Variant(
        "the same, with max_in_flight=16",
        {"on": "thread", "buffer": 4, "max_in_flight": 16},
        source_buffer=4,
    ),
}


async def _pipework(meter: Meter, consumed: int, key: str) -> None:
    import pipework

    variant = PIPEWORK[key]
    buffer = {} if variant.source_buffer is None else {"buffer": variant.source_buffer}
    pipeline = pipework.Pipeline(meter.source(), **buffer)
    pipeline = pipeline.map(variant.fn, **variant.options)
    async with pipeline.stream() as outputs:
        async for out in outputs:
            meter.took(out)
            if meter.consumed == consumed:
                break
            await asyncio.sleep(SLEEP)


# The standard library -------------------------------------------------------


def _process_map(meter: Meter, consumed: int) -> None:
    context = multiprocessing.get_context(START)
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        try:
            _consume(meter, consumed, pool.map(inc, meter.source(), chunksize=CHUNKSIZE))
        finally:
            pool.shutdown(cancel_futures=True)


def _thread_map(meter: Meter, consumed: int) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        try:
            _consume(meter, consumed, pool.map(inc, meter.source()))
        finally:
            pool.shutdown(cancel_futures=True)


def _pool_imap(meter: Meter, consumed: int) -> None:
    with multiprocessing.get_context(START).Pool(WORKERS) as pool:  # its exit terminates
        _consume(meter, consumed, pool.imap(inc, meter.source(), chunksize=CHUNKSIZE))


def _consume(meter: Meter, consumed: int, outputs: Iterator[int]) -> None:
    for out in outputs:
        meter.took(out)
        if meter.consumed == consumed:
            return
        time.sleep(SLEEP)


_DONE = object()


async def _asyncio(meter: Meter, consumed: int) -> None:
    loop = asyncio.get_running_loop()
    todo: asyncio.Queue[Any] = asyncio.Queue(maxsize=QUEUE)
    done: asyncio.Queue[Any] = asyncio.Queue(maxsize=QUEUE)

    async def produce() -> None:
        for x in meter.source():
            await todo.put(x)
        for _ in range(THREADS):
            await todo.put(_DONE)

    async def work(pool: ThreadPoolExecutor) -> None:
        while (x := await todo.get()) is not _DONE:
            await done.put(await loop.run_in_executor(pool, inc, x))

    with ThreadPoolExecutor(THREADS) as pool:
        tasks = [asyncio.create_task(produce())]
        tasks += [asyncio.create_task(work(pool)) for _ in range(THREADS)]
        try:
            while meter.consumed < consumed:  # as they finish: no order to keep
                meter.took(await done.get(), ordered=False)
                if meter.consumed < consumed:
                    await asyncio.sleep(SLEEP)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


Reader = Callable[[Meter, int], Awaitable[None] | None]

OTHERS: dict[str, tuple[str, str, Reader]] = {  # key: (label, contender key, reader)
    "process_map": (
        f"ProcessPoolExecutor.map(f, src, chunksize={CHUNKSIZE})",
        "executor_map",
        _process_map,
    ),
    "thread_map": ("ThreadPoolExecutor.map(f, src)", "executor_map", _thread_map),
    "pool_imap": (
        f"multiprocessing.Pool.imap(f, src, chunksize={CHUNKSIZE})",
        "pool_imap",
        _pool_imap,
    ),
    "asyncio": (
        f"asyncio: Queue({QUEUE}) -> {THREADS} x run_in_executor -> Queue({QUEUE})",
        "run_in_executor",
        _asyncio,
    ),
}

LABELS = {key: variant.label for key, variant in PIPEWORK.items()}
LABELS.update({key: label for key, (label, _, _) in OTHERS.items()})


async def pull_ahead(variant: str, n: int, consumed: int) -> dict[str, Any]:
    """Read ``consumed`` items of ``variant`` over ``n``, then stop it (in a `cell`)."""
    meter = Meter(n)
    if variant in PIPEWORK:
        await _pipework(meter, consumed, variant)
    else:
        done = OTHERS[variant][2](meter, consumed)
        if done is not None:
            await done
    if meter.consumed != consumed:
        raise AssertionError(f"{meter.consumed} items came out of {n}; {consumed} were wanted")
    return {"pulled": meter.pulled, "gap": meter.gaps[-1], "largest": max(meter.gaps)}


# The section ---------------------------------------------------------------

HEADERS = [
    "contender",
    "pulled when {consumed} were consumed",
    "pull-ahead",
    "largest seen",
    "documented bound",
    "pull-ahead ÷ pipework's default thread stage's",
]

Found = list[dict[str, Any]] | NotAvailable


def source_length() -> int:
    """The largest documented bound plus the items consumed, rounded up to a thousand."""
    most = max(variant.bound() for variant in PIPEWORK.values()) + CONSUMED + 1
    return -(-most // 1_000) * 1_000


def run(session: Session) -> Section:
    settings = session.settings
    n = N or source_length()
    buffer = default_buffer()
    buffer_text = f"{buffer:,} items"
    if buffer == AUTO_BUFFER:
        buffer_text = f"at most {buffer:,} items (fewer, if they are large)"
    about = ABOUT.format(last=f"{n - 1:,}", consumed=f"{CONSUMED:,}", buffer=buffer_text)
    section = Section("k", "Pull-ahead of a slow consumer", about)
    keys = [key for key in LABELS if session.wants(_contender(key))]
    found: dict[str, Found] = {key: [] for key in keys}
    for _ in range(settings.repeat):  # the contenders take turns, one run each
        for key in keys:
            found[key] = _sample(found[key], key, n, settings.timeout)
    section.tables.append(_table(found, n, settings.repeat))
    ours = {key: result for key, result in found.items() if key in PIPEWORK}
    if ours:
        section.targets.append(_target(ours))
    return section


def _contender(key: str) -> str:
    return "pipework" if key in PIPEWORK else OTHERS[key][1]


def _sample(runs: Found, key: str, n: int, timeout: float) -> Found:
    if isinstance(runs, NotAvailable):
        return runs
    target = "benchmarks.workloads.pull_ahead:pull_ahead"
    one = run_probe(target, {"variant": key, "n": n, "consumed": CONSUMED}, timeout=timeout)
    return one if isinstance(one, NotAvailable) else [*runs, one]


def _figures(runs: list[dict[str, Any]]) -> tuple[int, int, int]:
    """The median pulled and pull-ahead at the last item read, and the largest pull-ahead."""
    pulled = round(median([one["pulled"] for one in runs]))
    gap = round(median([one["gap"] for one in runs]))
    return pulled, gap, max(one["largest"] for one in runs)


def _table(found: dict[str, Found], n: int, repeat: int) -> Table:
    mine = found.get("pipework_thread")
    base = None if mine is None or isinstance(mine, NotAvailable) else _figures(mine)[1]
    rows = []
    for key, runs in found.items():
        if isinstance(runs, NotAvailable):
            rows.append([LABELS[key], na(runs), "", "", "", ""])
            continue
        pulled, gap, largest = _figures(runs)
        every = " (all)" if pulled == n else ""
        bound = f"{PIPEWORK[key].bound():,}" if key in PIPEWORK else "none"
        versus = _ratio(gap / base) if base else "-"
        rows.append([LABELS[key], f"{pulled:,}{every}", f"{gap:,}", f"{largest:,}", bound, versus])
    of = f"median of {repeat} runs (largest seen: of all {repeat})" if repeat > 1 else "one run"
    title = f"Items read from a source of {n:,} by a consumer that sleeps {SLEEP * 1000:g} ms"
    title += f" per item, {of}"
    headers = [HEADERS[0], HEADERS[1].format(consumed=f"{CONSUMED:,}"), *HEADERS[2:]]
    return Table(title, headers, rows)


def _ratio(value: float) -> str:
    return ratio(value) if value >= 0.1 else f"{value:.2g}x"


def _target(ours: dict[str, Found]) -> Target:
    measure = "pipework's pull-ahead of a slow consumer, every pipeline of (k)"
    goal = "never above its documented bound"
    largest = {
        key: _figures(runs)[2] for key, runs in ours.items() if not isinstance(runs, NotAvailable)
    }
    if not largest:
        return Target(measure, goal, "not measured", None)
    over = [LABELS[key] for key, seen in largest.items() if seen > PIPEWORK[key].bound()]
    closest = max(largest, key=lambda key: largest[key] / PIPEWORK[key].bound())
    text = f"closest: {largest[closest]:,} of {PIPEWORK[closest].bound():,} ({LABELS[closest]})"
    if over:
        text = f"over for {', '.join(over)}; {text}"
    if len(largest) < len(ours):
        text += f"; {len(ours) - len(largest)} not measured"
    return Target(measure, goal, text, not over)
