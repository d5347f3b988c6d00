"""Where a stage's chunks run: the pools pipework starts, a user's executor, or an engine.

Stages see only the `Backend` protocol of `_base` (capacity, what the
workers can do, run a chunk, close), so no stage has a case for any of them.
Engines such as Dask plug in through the public seam of `_backend`, driven by
`_remote.RemoteRunner`.
"""

from ._base import Backend as Backend
from ._facade import ProcessPool as ProcessPool
from ._open import open_backend as open_backend
from ._processes import THREAD_VARIABLES as THREAD_VARIABLES
from ._processes import default_workers as default_workers
