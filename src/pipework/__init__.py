"""pipework: streaming pipelines that mix async I/O with CPU-heavy work in process pools.

This module is the whole public API. Everything here is re-exported from a
private module by name (``from ._x import Y as Y``) so that readers, type
checkers and ``pyright --verifytypes`` see one flat, deliberate surface;
anything not listed here is an implementation detail that may change.

One public submodule stands beside it: ``pipework.http``, the HTTP fetch
stage. It is imported on its own (``from pipework import http``), so that
pipelines that make no requests do not pay for importing aiohttp.
"""

import logging as _logging

from ._combine import merge as merge
from ._combine import run_all as run_all
from ._combine import zip as zip  # noqa: A004 - pipework.zip is the name users expect
from ._errors import ItemCancelledError as ItemCancelledError
from ._errors import ItemExitError as ItemExitError
from ._errors import ItemTimeoutError as ItemTimeoutError
from ._errors import PipeworkError as PipeworkError
from ._errors import RemoteError as RemoteError
from ._errors import RemoteTraceback as RemoteTraceback
from ._errors import UnpicklableError as UnpicklableError
from ._errors import WorkerDiedError as WorkerDiedError
from ._errors import WorkerStartError as WorkerStartError
from ._executors import ProcessPool as ProcessPool
from ._executors._backend import Abilities as Abilities
from ._executors._backend import Backend as Backend
from ._executors._backend import StagePlan as StagePlan
from ._executors._backend import Workers as Workers
from ._executors._dask import dask as dask
from ._executors._ray import ray as ray
from ._loop import run_main as run_main
from ._map import map as map  # noqa: A004 - pipework.map is the name users expect
from ._model._failure import Failure as Failure
from ._model._options import Retry as Retry
from ._observe._bottleneck import Bottleneck as Bottleneck
from ._observe._latency import Latency as Latency
from ._observe._prometheus import prometheus_collector as prometheus_collector
from ._observe._report import Report as Report
from ._observe._report import StageReport as StageReport
from ._observe._snapshot import Snapshot as Snapshot
from ._observe._snapshot import StageSnapshot as StageSnapshot
from ._pipeline import Pipeline as Pipeline
from ._sealed import SealedPipeline as SealedPipeline
from ._service import FilteredOutError as FilteredOutError
from ._service import Service as Service
from ._service import ServiceBusyError as ServiceBusyError
from ._service import ServiceClosedError as ServiceClosedError
from ._shutdown import stop_on_signals as stop_on_signals
from ._stream import Stream as Stream
from ._worker._remote import work as work

__version__ = "0.1.0"

# pipework logs under "pipework" (retries, skipped items, dead workers) and
# leaves handlers and levels to the application: this handler only keeps
# Python from printing records to stderr when the app configured nothing.
_logging.getLogger("pipework").addHandler(_logging.NullHandler())

__all__ = [
    "Abilities",
    "Backend",
    "Bottleneck",
    "Failure",
    "FilteredOutError",
    "ItemCancelledError",
    "ItemExitError",
    "ItemTimeoutError",
    "Latency",
    "Pipeline",
    "PipeworkError",
    "ProcessPool",
    "RemoteError",
    "RemoteTraceback",
    "Report",
    "Retry",
    "SealedPipeline",
    "Service",
    "ServiceBusyError",
    "ServiceClosedError",
    "Snapshot",
    "StagePlan",
    "StageReport",
    "StageSnapshot",
    "Stream",
    "UnpicklableError",
    "WorkerDiedError",
    "WorkerStartError",
    "Workers",
    "dask",
    "map",
    "merge",
    "prometheus_collector",
    "ray",
    "run_all",
    "run_main",
    "stop_on_signals",
    "work",
    "zip",
]
