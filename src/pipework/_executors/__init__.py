"""Where a stage's chunks run: the pools pipework starts, a user's executor, or an engine.

Stages see only the `Runner` protocol of `_base` (capacity, what the
workers can do, run a chunk, close), so no stage has a case for any of them.
Engines such as Dask plug in through the public seam of `_backend`, driven by
`_remote.RemoteRunner`.
"""

from ._base import Runner as Runner
from ._facade import ProcessPool as ProcessPool
from ._open import open_runner as open_runner
from ._processes import THREAD_VARIABLES as THREAD_VARIABLES
from ._processes import default_workers as default_workers
