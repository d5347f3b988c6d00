"""Logging under the "pipework" logger: retries at INFO, skipped items and dead workers at WARNING.

pipework configures nothing: no level, and no handler but a `NullHandler`.
Nothing it logs reaches stdout. The stages are real, and the dead workers
are real processes that exit in the middle of a call.
"""

from __future__ import annotations

import logging
import os

import pytest

import pipework
from pipework import Pipeline, Retry

pytestmark = pytest.mark.timeout(60)


def _records(caplog, level: int, logger: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == level and r.name.startswith(logger)
    ]


def test_pipework_configures_no_logging_of_its_own():
    logger = logging.getLogger("pipework")
    assert logger.level == logging.NOTSET
    assert all(isinstance(h, logging.NullHandler) for h in logger.handlers)
    assert logger.propagate


async def test_a_retry_is_logged_at_info_and_a_skip_at_warning(caplog, capsys):
    caplog.set_level(logging.INFO, logger="pipework")
    tries: dict[int, int] = {}

    def flaky(x: int) -> int:
        tries[x] = tries.get(x, 0) + 1
        if x == 3:
            raise ValueError("three is bad")
        return x

    report = (
        await Pipeline(range(5))
        .map(flaky, retry=Retry(attempts=2, base_delay=0), errors="skip")
        .run()
    )
    assert report.stages[1].items_failed == 1
    (retried,) = _records(caplog, logging.INFO, "pipework.stages")
    assert retried.startswith("stage #1 'flaky' (inline map): item 3 failed on try 1 of 2")
    assert "ValueError: three is bad" in retried
    (skipped,) = _records(caplog, logging.WARNING, "pipework.stages")
    assert skipped == (
        "stage #1 'flaky' (inline map): item 3 skipped after 2 tries: ValueError: three is bad"
    )
    assert capsys.readouterr().out == ""


async def test_a_batch_function_that_fails_is_logged_as_its_batch(caplog):
    caplog.set_level(logging.INFO, logger="pipework")

    def bad(items: list[int]) -> list[int]:
        raise KeyError("nope")

    await Pipeline(range(4)).map_batches(bad, max_size=4, errors="skip").run()
    (skipped,) = _records(caplog, logging.WARNING, "pipework.stages")
    assert "the batch of 4 from item 0 skipped after try" in skipped


async def test_in_a_service_an_item_failure_is_its_callers_and_only_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="pipework")

    def bad(x: int) -> int:
        raise ValueError(x)

    async with Pipeline.service(int).map(bad).open() as service:
        with pytest.raises(ValueError):
            await service.submit(1)
    assert _records(caplog, logging.WARNING, "pipework") == []
    (told,) = _records(caplog, logging.DEBUG, "pipework.stages")
    assert "item 0 skipped" in told


def die_on_three(x: int) -> int:
    if x == 3:
        os._exit(7)
    return x


@pytest.mark.slow
async def test_a_dead_worker_is_a_warning_and_so_is_the_item_it_skips(caplog):
    caplog.set_level(logging.INFO, logger="pipework")
    report = (
        await Pipeline(range(6)).map(die_on_three, on="process", workers=1, errors="skip").run()
    )
    assert report.stages[1].items_out == 5
    deaths = [r.getMessage() for r in caplog.records if r.name == "pipework"]
    # One death before the chunk is tracked, then MAX_DEATHS pinned on the item.
    assert len(deaths) >= 3
    assert all("exited with code 7 while it ran a call" in m for m in deaths)
    (skipped,) = _records(caplog, logging.WARNING, "pipework.stages")
    assert "item 3 skipped" in skipped
    assert "WorkerDiedError" in skipped


async def test_a_run_without_failures_logs_nothing(caplog):
    caplog.set_level(logging.DEBUG, logger="pipework")
    await pipework.map(abs, range(10), on="thread")
    assert [r for r in caplog.records if r.name.startswith("pipework")] == []
