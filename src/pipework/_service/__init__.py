"""Service mode: a pipeline fed one item at a time, each item's result returned to its caller.

`_service` runs the pipeline and serves ``submit``; `_ledger` keeps track of
the items in flight and of their futures.
"""

from ._ledger import FilteredOutError as FilteredOutError
from ._ledger import ServiceBusyError as ServiceBusyError
from ._ledger import ServiceClosedError as ServiceClosedError
from ._service import DEFAULT_MAX_IN_FLIGHT as DEFAULT_MAX_IN_FLIGHT
from ._service import Service as Service
from ._service import service_outlet as service_outlet
