"""Shared fixtures. Every test is also checked for leaked worker processes."""

from __future__ import annotations

import multiprocessing

import pytest


@pytest.fixture(autouse=True)
def _no_leaked_workers():
    """Fail a test that leaves a worker process of ours alive.

    ``active_children()`` also reaps finished children, so a clean run leaves
    it empty. Pools that pipework starts must be gone when ``run()`` returns.
    """
    yield
    leaked = multiprocessing.active_children()
    assert not leaked, f"worker processes outlived the test: {leaked}"
