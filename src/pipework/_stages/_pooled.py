"""Thread and process stages: chunks of items run on an executor's workers."""

from __future__ import annotations

from concurrent.futures import BrokenExecutor
from typing import Any

from .._batch import Batch
from .._channel import Channel
from .._chunking import ChunkSizer
from .._errors import RemoteTraceback, UnpicklableError, annotate
from .._executors import Backend, open_backend
from .._report import StageStats
from .._serial import NotPicklableError
from .._specs import MapSpec
from ._common import finish
from ._window import Window


async def run_pooled(
    spec: MapSpec, label: str, inp: Channel[Any], out: Channel[Any], stats: StageStats
) -> None:
    """Run the stage's chunks on its backend, and stop the backend however the run ends."""
    assert spec.on is not None  # noqa: S101 - a pooled stage always has somewhere to run
    backend = await open_backend(
        spec.on,
        fn=spec.fn,
        setup=spec.setup,
        workers=spec.workers,
        stage=label,
        payload=spec.payload,
    )
    aborted = True
    try:
        await _run_chunks(spec, label, inp, out, stats=stats, backend=backend)
        aborted = False
    finally:
        await backend.aclose(aborted=aborted)


async def _run_chunks(
    spec: MapSpec,
    label: str,
    inp: Channel[Any],
    out: Channel[Any],
    *,
    stats: StageStats,
    backend: Backend,
) -> None:
    sizer = ChunkSizer(spec.chunksize)
    op = spec.op

    async def job(batch: Batch[Any]) -> Batch[Any]:
        try:
            results, seconds, failure = await backend.run_chunk(op, batch.items)
        except NotPicklableError as bad:
            index = batch.index[bad.position]
            raise UnpicklableError(
                f"stage {label}: item {index} cannot be pickled to reach a worker process: "
                f"{bad.cause}"
            ) from bad.cause
        except BrokenExecutor as exc:
            raise _worker_died(exc, label) from exc.__cause__
        except Exception as exc:  # the executor itself failed, not the user's function
            annotate(exc, label, None)
            raise
        stats.busy += seconds
        sizer.observe(len(batch), seconds)
        if failure is None:
            return finish(op, batch, results, label)
        stats.failed += 1
        position, error, remote_traceback = failure
        if remote_traceback is not None:
            error.__cause__ = RemoteTraceback(remote_traceback)
        if position < 0:
            error.add_note(f"pipework: in the setup of stage {label}, in a worker")
            raise error
        raise annotate(error, label, batch.index[position], batch.items[position])

    # Two chunks per worker keep each worker fed while its last result
    # travels back; the reorder window doubles that when output is ordered.
    running = 2 * backend.capacity
    window = Window(
        inp,
        out,
        job,
        running=running,
        window=2 * running,
        ordered=spec.ordered,
        chunk=sizer.size,
        stats=stats,
    )
    await window.run()


def _worker_died(exc: BrokenExecutor, label: str) -> BrokenExecutor:
    # Every chunk in flight receives the same exception object; say it once.
    note = (
        f"pipework: a worker of stage {label} died. If workers die as soon as they "
        "start, check that the script runs its pipeline under "
        "`if __name__ == '__main__':`, because worker processes import the main module."
    )
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)
    return exc
