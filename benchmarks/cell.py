"""Run one measurement in a fresh interpreter: ``python -m benchmarks.cell module:function JSON``.

Each measurement runs in a process of its own, so that no contender inherits
another's warm pool or imports, and so that one that hangs can be killed with
its whole process group. The result is printed as one JSON line after
`MARK`; anything else the contender prints is left alone.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sys
from typing import Any

MARK = "BENCH-RESULT "


def call(target: str, kwargs: dict[str, Any]) -> Any:
    """Call ``module:function`` with ``kwargs``, running it to completion if it is async."""
    module_name, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module_name), name)
    result = fn(**kwargs)
    return asyncio.run(result) if inspect.iscoroutine(result) else result


def main() -> None:
    target, arguments = sys.argv[1], sys.argv[2]
    result = call(target, json.loads(arguments))
    sys.stdout.write(MARK + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
