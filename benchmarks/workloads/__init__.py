"""The workloads, one module each; `WORKLOADS` maps a letter to its ``run``.

(a) to (f) are the workloads of issue 3; (g) kills workers while a stage runs (issue 4);
(h) runs the demo under load, batched and not (the main job), and against the same
pipeline written by hand (`handwritten`, compared in `versus_hand`); (i) holds large
items (issue 12); (j) fans each item out to a process stage and a thread stage and joins
them; (k) counts how far each contender reads its source ahead of a slow consumer; (l)
runs pipework's process stages on a cluster engine (Dask) against the engine's own
idioms; (m) times a run with progress= on against the same run with it off.
"""

from __future__ import annotations

from collections.abc import Callable

from ..report import Section
from ..session import Session
from . import (
    arrays,
    chaos,
    engines,
    fan_out,
    large_items,
    latency,
    memory,
    overhead,
    pipeline,
    progress,
    pull_ahead,
    scaling,
    serving,
)

WORKLOADS: dict[str, Callable[[Session], Section]] = {
    "a": overhead.run,
    "b": scaling.run,
    "c": arrays.run,
    "d": pipeline.run,
    "e": memory.run,
    "f": latency.run,
    "g": chaos.run,
    "h": serving.run,
    "i": large_items.run,
    "j": fan_out.run,
    "k": pull_ahead.run,
    "l": engines.run,
    "m": progress.run,
}
