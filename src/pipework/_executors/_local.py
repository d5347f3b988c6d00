"""The runner of process stages: a supervised pool that the run starts and stops."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio

from .._worker import _buffers as buffers
from .._worker import _serial as serial
from .._worker._ops import Op
from .._worker._trampoline import Outcome, run_chunk
from ._supervisor import SupervisedPool
from ._transfer import Courier
from ._worker_process import PoolOptions


class ProcessRunner:
    """Runs a process stage's chunks on a `SupervisedPool` of its own.

    The pool survives its workers: a chunk whose worker died raises
    `WorkerDiedError` and the stage decides what to send again. Chunks can
    be tracked item by item, and can have a timeout per item.
    """

    supervised = True
    remote = True
    chunk_time: float | None = None
    reruns_lost_work = False

    def __init__(self, pool: SupervisedPool, *, key: str, payload: bytes) -> None:
        """Drive ``pool``, whose workers were started with the stage under ``key``."""
        self._pool = pool
        self._key = key
        self._payload = payload
        self._prefix = buffers.prefix_for(key)
        self._courier = Courier(self._prefix)

    @classmethod
    async def start(cls, options: PoolOptions, *, key: str, payload: bytes) -> ProcessRunner:
        """Start a pool for one stage; its workers load the stage as they start."""
        pool = SupervisedPool(options)
        await pool.start()
        return cls(pool, key=key, payload=payload)

    @property
    def capacity(self) -> int:
        """How many chunks run at once: the number of workers."""
        return self._pool.capacity

    async def run_chunk(
        self, op: Op, items: list[Any], *, tracked: bool = False, item_timeout: float | None = None
    ) -> Outcome:
        """Run one chunk on a worker; see `pipework._executors.Runner`.

        :raises NotPicklableError: if an item cannot be pickled
        :raises WorkerDiedError: if the worker died; ``position`` says at which item, if tracked
        :raises ItemTimeoutError: if an item overran ``item_timeout``; its worker was killed
        """
        send = partial(self._send, op, tracked=tracked, item_timeout=item_timeout)
        return await self._courier.round_trip(items, send)

    async def _send(
        self, op: Op, sent: serial.Packed, *, tracked: bool, item_timeout: float | None
    ) -> Any:
        call = partial(self._pool.call, run_chunk, tracked=tracked, item_timeout=item_timeout)
        packed = await call(self._key, None, op, sent)
        if packed is None:
            # The worker's setup failed when it started; this runs it again,
            # so that its error is reported as the stage's.
            packed = await call(self._key, self._payload, op, sent)
        return packed

    async def aclose(self, *, aborted: bool) -> None:
        """Stop the workers, killing them if the run was aborted; remove leftover segments."""
        with anyio.CancelScope(shield=True):
            await self._pool.aclose(kill=aborted)
            buffers.sweep(self._prefix)
