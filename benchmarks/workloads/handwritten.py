"""(h)'s contender: the demo's pipeline written by hand, with asyncio, aiohttp and executors.

What a competent engineer writes for "fetch over HTTP, preprocess on processes, classify
in dynamic batches on processes" without a pipeline library: plain asyncio tasks joined by
bounded `asyncio.Queue`s, one aiohttp session, two `ProcessPoolExecutor`s reached through
`loop.run_in_executor`, and a batching loop of its own (a size and a maximum wait).

It keeps what the demo's pipeline promises, so that the two compare:

- at most ``concurrency`` fetches are in flight, and every queue is bounded, so a slow
  stage slows the ones before it and memory stays flat;
- every worker has started, and every model is trained (the pool's ``initializer``, as
  ``setup=`` is the demo's), before the first record; the same warm-up records go through
  first, and the records proper are asked for once those have reached the sink;
- results reach the sink in input order, as pipework's ``ordered=True`` default keeps
  them (the demo's checksum is of the digits in order): each stage puts *futures* in the
  next queue, in input order, and the next stage awaits them in that order;
- a batch is formed only when a model worker is free to take it, so that under load the
  records that queue while the workers are busy ride in the next batch, rather than
  waiting in the executor behind batches formed too early.

It shares with the demo only what is not pipeline machinery: the record server, the
user's functions (`_digits.preprocess`, `load_model`, `classify_batch`) and the sink
that measures (`_stats.Collector`), so that only the machinery between them differs.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, TypeVar

import aiohttp

from pipework._demo import DemoOptions, _digits
from pipework._demo._server import serve_elsewhere
from pipework._demo._stats import Collector, Results, results

from ..contenders import START, WORKERS

T = TypeVar("T")

PREPARED = 64
"""Preprocessing calls in flight: a round trip through a pool takes about a millisecond on a
busy machine, so a few dozen keep both workers fed at thousands of records a second."""

# In the classifying workers -----------------------------------------------

_model: _digits.Model | None = None


def _train() -> None:
    """The classify pool's initializer: each worker trains its model once, before any call."""
    global _model  # noqa: PLW0603 - initializer= can only leave its result in the module
    _model = _digits.load_model()


def _classify(samples: list[_digits.Sample]) -> list[_digits.Prediction]:
    if _model is None:
        raise RuntimeError("the classify pool's initializer did not run")
    return _digits.classify_batch(_model, samples)


# In the parent -------------------------------------------------------------


def main(options: DemoOptions) -> tuple[Results, float, str]:
    """Run the job on uvloop when it is installed, as the demo runs (`pipework.run_main`).

    Both then run on the same loop, so the comparison is of the machinery,
    not of the loop. Returns the figures, the warm-up time and the loop's name.
    """
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        found, warmup = runner.run(run_by_hand(options))
        loop = type(runner.get_loop()).__module__.partition(".")[0]
    return found, warmup, loop


async def run_by_hand(options: DemoOptions) -> tuple[Results, float]:
    """Run the demo's job by hand once; return its figures and its warm-up time in seconds."""
    workers = options.workers or WORKERS
    collector = Collector(workers)  # one warm-up record per worker, as the demo sends
    async with serve_elsewhere(options.rate) as server:
        start = time.perf_counter()
        await _run(options, server.base_url, collector, workers)
    warmup = (collector.ready_at or time.perf_counter()) - start
    return results(collector, server.started), warmup


async def _run(options: DemoOptions, base_url: str, collector: Collector, workers: int) -> None:
    context = multiprocessing.get_context(START)
    # A request waits at the server until its record is due: up to as many
    # records ahead as are in flight. The timeout leaves room for that.
    ahead = options.concurrency / options.rate if options.rate else 0.0
    timeout = aiohttp.ClientTimeout(total=30.0 + ahead)
    with (
        ProcessPoolExecutor(workers, mp_context=context) as prepare_pool,
        ProcessPoolExecutor(workers, mp_context=context, initializer=_train) as model_pool,
    ):
        await asyncio.gather(_warm(prepare_pool, workers), _warm(model_pool, workers))
        connector = aiohttp.TCPConnector(limit=options.concurrency)
        async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
            fetched: asyncio.Queue[asyncio.Task[Any] | None] = asyncio.Queue(options.concurrency)
            prepared: asyncio.Queue[asyncio.Future[_digits.Sample] | None] = asyncio.Queue(PREPARED)
            samples: asyncio.Queue[_digits.Sample | None] = asyncio.Queue(options.max_batch)
            classified: asyncio.Queue[asyncio.Future[list[_digits.Prediction]] | None]
            classified = asyncio.Queue(workers)
            free = asyncio.Semaphore(workers)  # model workers not running a call
            urls = _urls(options, workers, collector.ready)
            # A failure in any stage cancels the others and is raised here.
            async with asyncio.TaskGroup() as group:
                group.create_task(_fetch_all(group, session, urls, options.concurrency, fetched))
                group.create_task(_prepare_all(fetched, prepare_pool, prepared))
                group.create_task(_in_order(prepared, samples))
                group.create_task(_batch_all(samples, model_pool, free, options, classified))
                group.create_task(_sink_all(classified, collector))


async def _warm(pool: Executor, workers: int) -> None:
    """Start every worker: a pool started by forkserver starts one per call that finds none idle."""
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(pool, time.sleep, 0.05) for _ in range(workers)))


async def _urls(options: DemoOptions, warmups: int, ready: asyncio.Event) -> AsyncIterator[str]:
    """Warm-up records first; the records proper once those have reached the sink.

    With no count, records are asked for until the run's duration has passed
    since the warm-up ended; those already asked for still finish.
    """
    for k in range(warmups):
        yield f"/warmup/{k}"
    await ready.wait()
    count, seconds = options.records(), options.timer()
    stop_at = None if seconds is None else time.perf_counter() + seconds
    for i in range(count) if count is not None else itertools.count():
        if stop_at is not None and time.perf_counter() >= stop_at:
            return
        yield f"/records/{i}"


async def _fetch(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        response.raise_for_status()
        return await response.json()


async def _fetch_all(
    group: asyncio.TaskGroup,
    session: aiohttp.ClientSession,
    urls: AsyncIterator[str],
    concurrency: int,
    out: asyncio.Queue[asyncio.Task[Any] | None],
) -> None:
    """Start a fetch per URL, ``concurrency`` at most at once; pass each on, in order."""
    slots = asyncio.Semaphore(concurrency)
    async for url in urls:
        await slots.acquire()
        task = group.create_task(_fetch(session, url))
        task.add_done_callback(lambda _: slots.release())
        await out.put(task)
    await out.put(None)


async def _prepare_all(
    fetched: asyncio.Queue[asyncio.Task[Any] | None],
    pool: Executor,
    out: asyncio.Queue[asyncio.Future[_digits.Sample] | None],
) -> None:
    """Send each record, once fetched, to be preprocessed; pass on the call, in order."""
    loop = asyncio.get_running_loop()
    while (fetch := await fetched.get()) is not None:
        record = await fetch
        await out.put(loop.run_in_executor(pool, _digits.preprocess, record))
    await out.put(None)


async def _in_order(
    futures: asyncio.Queue[asyncio.Future[T] | None], out: asyncio.Queue[T | None]
) -> None:
    """Pass on each future's result, in the order the futures came."""
    while (future := await futures.get()) is not None:
        await out.put(await future)
    await out.put(None)


async def _batch_all(
    samples: asyncio.Queue[_digits.Sample | None],
    pool: Executor,
    free: asyncio.Semaphore,
    options: DemoOptions,
    out: asyncio.Queue[asyncio.Future[list[_digits.Prediction]] | None],
) -> None:
    """Classify in batches of up to ``max_batch``, the first of each waiting ``max_wait`` at most.

    A batch starts only once a model worker is free, so whatever queued
    while both were busy goes into it at once.
    """
    loop = asyncio.get_running_loop()
    ended = False
    while not ended:
        await free.acquire()
        first = await samples.get()
        if first is None:
            break
        batch, ended = await _fill([first], samples, options.max_batch, options.max_wait)
        call = loop.run_in_executor(pool, _classify, batch)
        call.add_done_callback(lambda _: free.release())
        await out.put(call)
    await out.put(None)


async def _fill(
    batch: list[_digits.Sample],
    samples: asyncio.Queue[_digits.Sample | None],
    max_size: int,
    max_wait: float,
) -> tuple[list[_digits.Sample], bool]:
    """Add to ``batch`` until it is full or ``max_wait`` has passed; say if the stream ended."""
    deadline = asyncio.get_running_loop().time() + max_wait
    while len(batch) < max_size:
        # What is already queued is taken at once; only an empty queue is waited on.
        if samples.empty():
            try:
                async with asyncio.timeout_at(deadline):
                    sample = await samples.get()
            except TimeoutError:
                break
        else:
            sample = samples.get_nowait()
        if sample is None:
            return batch, True
        batch.append(sample)
    return batch, False


async def _sink_all(
    calls: asyncio.Queue[asyncio.Future[list[_digits.Prediction]] | None], collector: Collector
) -> None:
    while (call := await calls.get()) is not None:
        for prediction in await call:
            collector(prediction)
