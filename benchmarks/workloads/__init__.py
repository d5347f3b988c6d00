"""The six workloads of issue 3, one module each; `WORKLOADS` maps a letter to its ``run``."""

from __future__ import annotations

from collections.abc import Callable

from ..report import Section
from ..session import Session
from . import arrays, latency, memory, overhead, pipeline, scaling

WORKLOADS: dict[str, Callable[[Session], Section]] = {
    "a": overhead.run,
    "b": scaling.run,
    "c": arrays.run,
    "d": pipeline.run,
    "e": memory.run,
    "f": latency.run,
}
