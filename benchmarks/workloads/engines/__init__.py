"""(l) Engines: pipework's process stages on a cluster engine, against the engine's own idioms.

Two engines, Dask and Ray. An engine is an `Engine`: how its cluster is started
(once for the workload, in a process of its own), the `Variant` s that run on
it, which of them is pipework and which are the engine's own idioms. Another
engine is one more `Engine` in `ENGINES`, with a ``serve`` function and its
variants; the tables, the ratios and the targets follow from it.

The modules, by job: `_common` (the settings, the work the workers run, the
job a probe times, and what names a variant or an engine), `_dask` and `_ray`
(each engine's variants, and its cluster's process), `_cluster` (starting
and stopping that process), `_registry` (every engine and variant by key,
and the probe that times one), `_workload` (the run) and `_report` (the
tables and the targets).
"""

from ._common import Engine as Engine
from ._common import Variant as Variant
from ._dask import DASK as DASK
from ._ray import RAY as RAY
from ._registry import ENGINES as ENGINES
from ._registry import VARIANTS as VARIANTS
from ._report import targets as targets
from ._workload import run as run
