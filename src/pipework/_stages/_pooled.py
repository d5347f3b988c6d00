"""Thread and process stages: chunks of items run on a runner's workers.

A chunk's try (`_Chunks.attempt`) turns everything that can go wrong into
"the items before position p have results, and item p failed with this",
which the stage's policy then settles (`_common.run_with_policy`):

- the function raised: the worker says where;
- an item cannot be pickled: the parent knows which;
- the worker died or overran a timeout: the items that were running are
  sent again. A death in an untracked chunk is not pinned on any item; the
  chunk is sent again, tracked, and the next death is pinned on the item
  that was running. An item pinned ``MAX_DEATHS`` times fails with
  `WorkerDiedError`; the items before and after it go on. A runner that
  cannot track (an engine) has its lost chunks halved instead, and an
  engine that reruns lost work itself fails the item at its first loss.
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor
from typing import Any

from .._channel import Channel, Sender
from .._errors import (
    MAIN_GUARD_NOTE,
    ItemTimeoutError,
    RemoteTraceback,
    UnpicklableError,
    WorkerDiedError,
    WorkerStartError,
    annotate,
)
from .._executors import Runner, open_runner
from .._model._specs import MapSpec
from .._observe._report import StageStats
from .._packet import Packet
from .._sizes import approx_size
from .._worker._serial import NotPicklableError
from ._chunking import DEFAULT_TARGET, ChunkSizer
from ._common import Step, policy_of, run_whole_with_policy, run_with_policy
from ._window import Window

MAX_DEATHS = 3
"""How many worker deaths one item may cause before it fails for good."""


async def run_pooled(
    spec: MapSpec, label: str, inp: Channel[Any], out: Sender, stats: StageStats
) -> None:
    """Run the stage's chunks on its runner, and stop the runner however the run ends."""
    assert spec.on is not None  # noqa: S101 - a pooled stage always has somewhere to run
    runner = await open_runner(
        spec.on,
        fn=spec.fn,
        setup=spec.setup,
        workers=spec.workers,
        stage=label,
        payload=spec.payload,
    )
    stats.capacity = runner.capacity  # for snapshots: its utilisation is a share of this
    aborted = True
    try:
        await _run_chunks(spec, label, inp, out, stats=stats, runner=runner)
        aborted = False
    finally:
        await runner.aclose(aborted=aborted)


async def _run_chunks(
    spec: MapSpec,
    label: str,
    inp: Channel[Any],
    out: Sender,
    *,
    stats: StageStats,
    runner: Runner,
) -> None:
    # A timeout per item needs a worker that reports its progress; any other
    # can only time a whole chunk, so it gets one item at a time.
    # A batch function's batch is its chunk.
    one_at_a_time = spec.timeout is not None and not runner.supervised and spec.op != "map_batches"
    sizer = ChunkSizer(
        1 if one_at_a_time else spec.max_size or spec.chunksize,
        target=spec.chunk_time or runner.chunk_time or DEFAULT_TARGET,
    )
    chunks = _Chunks(spec, label, runner, sizer, stats)
    policy = policy_of(spec, label, stats)

    async def job(packet: Packet[Any]) -> Packet[Any]:
        if spec.op == "map_batches":
            return await run_whole_with_policy(packet, chunks.attempt, policy, label)
        return await run_with_policy(spec.op, packet, chunks.attempt, policy, label)

    # Two chunks per worker keep each worker fed while its last result
    # travels back; the reorder window doubles that when output is ordered.
    # A batch function gets one batch per worker: a second would only wait
    # in the worker's queue for a whole call, when it could be filling.
    # A timeout that a worker cannot start counting when the item starts
    # counts from when the chunk is sent: then no chunk may wait for a worker.
    queued = one_at_a_time and runner.remote
    running = (1 if spec.op == "map_batches" or queued else 2) * runner.capacity
    window = Window(
        inp,
        out,
        job,
        running=running,
        window=2 * running,
        ordered=spec.ordered,
        chunk=sizer.size,
        stats=stats,
        max_wait=spec.max_wait,
        limit=spec.max_in_flight,
        # Adaptive chunks only: a fixed chunksize, and a batch, are what the user asked for.
        share_tail=sizer.adaptive,
    )
    await window.run()


class _Chunks:
    """Tries runs of items on the runner; see the module docstring."""

    def __init__(
        self,
        spec: MapSpec,
        label: str,
        runner: Runner,
        sizer: ChunkSizer,
        stats: StageStats,
    ) -> None:
        self._op = spec.op
        self._timeout = spec.timeout
        self._label = label
        self._runner = runner
        self._sizer = sizer
        self._stats = stats
        # Deaths pinned on each item, for the items of the chunks in flight.
        self._deaths: dict[int, int] = {}

    async def attempt(self, packet: Packet[Any], *, tracked: bool = False) -> Step:
        """Try ``packet`` once, resending what a dead worker lost; see `_common.Step`."""
        try:
            results, seconds, failure = await self._runner.run_chunk(
                self._op, packet.items, tracked=tracked, item_timeout=self._timeout
            )
        except NotPicklableError as bad:
            unpicklable = UnpicklableError(
                f"stage {self._label}: item {packet.index[bad.position]} cannot be pickled "
                f"to reach a worker process: {bad.cause}"
            )
            unpicklable.__cause__ = bad.cause
            return await self._before(packet, bad.position, unpicklable)
        except WorkerStartError as exc:
            raise _worker_died(exc, self._label) from exc.__cause__
        except (WorkerDiedError, ItemTimeoutError) as lost:
            return await self._lost(packet, lost, tracked=tracked)
        except BrokenExecutor as exc:  # a user's executor: it cannot be recovered here
            raise _worker_died(exc, self._label) from exc.__cause__
        except Exception as exc:  # the executor itself failed, not the user's function
            annotate(exc, self._label, None)
            raise
        self._stats.busy += seconds
        # One item and its result stand for the chunk's: cheap, and enough
        # to keep large items in small chunks (see _chunking).
        item_bytes = approx_size(packet.items[0]) if packet.items else 0
        if results:
            item_bytes = max(item_bytes, approx_size(results[0]))
        self._sizer.observe(len(packet), seconds, item_bytes)
        if failure is None:
            return results, None
        position, error, remote_traceback = failure
        if remote_traceback is not None:
            error.__cause__ = RemoteTraceback(remote_traceback)
        if position < 0:
            raise self._setup_failed(error)
        assert isinstance(error, Exception)  # noqa: S101 - apply() catches only Exception
        return results, (position, error)

    def _setup_failed(self, error: BaseException) -> BaseException:
        """Count and annotate a failure of the stage's setup, which fails the stage."""
        self._stats.failed += 1
        error.add_note(f"pipework: in the setup of stage {self._label}, in a worker")
        if isinstance(error, ModuleNotFoundError) and self._runner.remote:
            error.add_note(
                f"pipework: the workers cannot import {error.name!r}, which the stage's "
                "function or setup needs: install it where they run, or send it with "
                "cloudpickle.register_pickle_by_value(module)"
            )
        return error

    async def _lost(
        self, packet: Packet[Any], lost: WorkerDiedError | ItemTimeoutError, *, tracked: bool
    ) -> Step:
        if self._op == "map_batches":
            return await self._lost_batch(packet, lost)
        position = (
            lost.position if lost.position is not None and lost.position < len(packet) else None
        )
        if position is None:
            if len(packet) == 1:
                position = 0
            elif not tracked and self._runner.supervised:
                return await self.attempt(packet, tracked=True)  # to learn which item it is
            else:  # it died between items, or cannot say: halve the chunk until it is pinned
                return await self._halves(packet)
        if isinstance(lost, ItemTimeoutError):
            return await self._before(packet, position, lost)
        # An engine that reran the chunk itself has seen its workers die already.
        deaths = (
            self._one_more_death(packet.index[position])
            if not self._runner.reruns_lost_work
            else MAX_DEATHS
        )
        if deaths < MAX_DEATHS:
            return await self._resume(packet, position)
        error = WorkerDiedError(
            f"the item killed {deaths} worker processes in a row; the last {lost}"
            if not self._runner.reruns_lost_work
            else f"the item, alone in its chunk, killed workers until the engine gave up: {lost}",
            exitcode=lost.exitcode,
        )
        return await self._before(packet, position, error)

    async def _lost_batch(
        self, packet: Packet[Any], lost: WorkerDiedError | ItemTimeoutError
    ) -> Step:
        """Send a batch function's lost call again, whole, up to the same bound of deaths."""
        if isinstance(lost, ItemTimeoutError):
            return [], (0, lost)
        if self._runner.reruns_lost_work or self._one_more_death(packet.index[0]) >= MAX_DEATHS:
            return [], (0, lost)
        step = await self.attempt(packet)
        if step[1] is None:
            self._deaths.pop(packet.index[0], None)  # it got through after all
        return step

    def _one_more_death(self, index: int) -> int:
        """Count a death against the item at ``index``; forget it once the bound is reached."""
        deaths = self._deaths[index] = self._deaths.get(index, 0) + 1
        if deaths >= MAX_DEATHS:
            del self._deaths[index]
        return deaths

    async def _before(self, packet: Packet[Any], position: int, error: Exception) -> Step:
        """Get results for the items before ``position``, then report ``error`` for it."""
        if position == 0:
            return [], (0, error)
        results, fault = await self.attempt(packet.slice(0, position))
        return results, fault or (position, error)

    async def _resume(self, packet: Packet[Any], position: int) -> Step:
        """Try the items before ``position``, then the rest from it, tracked."""
        step = await self._in_two(packet, position, tracked_from=position)
        if step[1] is None or step[1][0] > position:
            self._deaths.pop(packet.index[position], None)  # it got through after all
        return step

    async def _halves(self, packet: Packet[Any]) -> Step:
        return await self._in_two(packet, len(packet) // 2, tracked_from=0)

    async def _in_two(self, packet: Packet[Any], middle: int, *, tracked_from: int) -> Step:
        results: list[Any] = []
        if middle:
            results, fault = await self.attempt(packet.slice(0, middle), tracked=tracked_from == 0)
            if fault is not None:
                return results, fault
        rest, fault = await self.attempt(packet.slice(middle, len(packet)), tracked=True)
        return results + rest, None if fault is None else (middle + fault[0], fault[1])


def _worker_died(exc: BrokenExecutor, label: str) -> BrokenExecutor:
    # Every chunk in flight may receive the same exception object; say it once.
    notes = getattr(exc, "__notes__", ())
    note = f"pipework: a worker of stage {label} died."
    if MAIN_GUARD_NOTE not in notes:  # else the pool has said it
        note += MAIN_GUARD_NOTE.removeprefix("pipework:")
    if note not in notes:
        exc.add_note(note)
    return exc
