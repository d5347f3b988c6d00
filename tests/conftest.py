"""Shared fixtures and hooks.

Every async test runs once per event loop, with ids ending ``[asyncio]`` and
``[uvloop]``, and every test is checked for leaked worker processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest

from helpers import LOOPS


def pytest_asyncio_loop_factories(config, item):
    """Run each async test on asyncio's loop and on uvloop's, where uvloop is installed.

    This hook (pytest-asyncio 1.4+) gives each test a loop from a factory and
    installs no policy. It replaces overriding the ``event_loop_policy``
    fixture, which pytest-asyncio now deprecates (an error here, since
    warnings are errors).
    """
    factories = {"asyncio": asyncio.new_event_loop}
    if "uvloop" in LOOPS:
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture(autouse=True)
def _no_leaked_workers():
    """Fail a test that leaves a worker process of ours alive.

    ``active_children()`` also reaps finished children, so a clean run leaves
    it empty. Pools that pipework starts must be gone when ``run()`` returns.
    """
    yield
    leaked = multiprocessing.active_children()
    assert not leaked, f"worker processes outlived the test: {leaked}"
