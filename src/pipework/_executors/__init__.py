"""Backends that run a stage's chunks: the pools pipework starts, or an executor the user passes.

Stages see only the `Backend` protocol, so that a distributed engine can
later serve process stages without a special case in any stage.
"""

from ._base import Backend as Backend
from ._facade import ProcessPool as ProcessPool
from ._open import open_backend as open_backend
from ._processes import THREAD_VARIABLES as THREAD_VARIABLES
from ._processes import default_workers as default_workers
