"""Thread and process stages: chunks of items run on an executor's workers."""

from __future__ import annotations

import pickle
from concurrent.futures import BrokenExecutor
from typing import Any

from .._batch import Batch
from .._channel import Channel
from .._chunking import ChunkSizer
from .._errors import RemoteTraceback, UnpicklableError, annotate
from .._executors import Backend, open_backend
from .._report import StageStats
from .._specs import MapSpec
from ._common import finish
from ._window import Window

# Errors that pickling raises: pickle's own, and the TypeError or
# AttributeError that objects raise when they refuse to be pickled.
_PICKLING_ERRORS = (pickle.PicklingError, TypeError, AttributeError)


async def run_pooled(
    spec: MapSpec, label: str, inp: Channel[Any], out: Channel[Any], stats: StageStats
) -> None:
    """Run the stage's chunks on its backend, and stop the backend however the run ends."""
    assert spec.on is not None  # noqa: S101 - a pooled stage always has somewhere to run
    backend = open_backend(
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
        except Exception as exc:  # noqa: BLE001 - explained and re-raised
            raise _chunk_error(exc, label, batch, remote=backend.remote) from exc.__cause__
        stats.busy += seconds
        sizer.observe(len(batch), seconds)
        if failure is not None:
            stats.failed += 1
            position, error, remote_traceback = failure
            if remote_traceback is not None:
                error.__cause__ = RemoteTraceback(remote_traceback)
            if position < 0:
                error.add_note(f"pipework: in the setup of stage {label}, in a worker")
                raise error
            raise annotate(error, label, batch.index[position], batch.items[position])
        return finish(op, batch, results, label)

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


def _chunk_error(exc: Exception, label: str, batch: Batch[Any], *, remote: bool) -> Exception:
    """Explain a failure of the executor itself, which no user function raised."""
    span = (
        f"items {batch.index[0]} to {batch.index[-1]}"
        if len(batch) > 1
        else f"item {batch.index[0]}"
    )
    if isinstance(exc, BrokenExecutor):
        exc.add_note(
            f"pipework: a worker of stage {label} died while running {span}. If workers die "
            "as soon as they start, check that the script runs its pipeline under "
            "`if __name__ == '__main__':`, because worker processes import the main module."
        )
        return exc
    if remote and isinstance(exc, _PICKLING_ERRORS):
        for position, item in enumerate(batch.items):
            try:
                pickle.dumps(item)
            except Exception as item_exc:  # noqa: BLE001 - any failure to pickle is the answer
                error = UnpicklableError(
                    f"stage {label}: item {batch.index[position]} cannot be pickled "
                    f"to reach a worker process: {item_exc}"
                )
                error.__cause__ = item_exc
                return error
        error = UnpicklableError(
            f"stage {label}: a result for {span} cannot be pickled to return from "
            f"a worker process: {exc}"
        )
        error.__cause__ = exc
        return error
    annotate(exc, label, None)
    return exc
