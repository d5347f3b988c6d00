"""The worker's side of the supervised pool: what a call may do to the worker that runs it."""

from __future__ import annotations

import os
import sys

import pytest

import pipework
from helpers import run_script

pytestmark = pytest.mark.timeout(60)


def call_exits(code):
    sys.exit(code)


FORKING = """
import asyncio
import os
import pipework

def fork_at_one(x):
    if x == 1:
        os.fork()  # the abuse under test: the child returns from the call too
    return x

async def main():
    print("map", await pipework.map(fork_at_one, range(6), workers=1))
    with pipework.ProcessPool(1) as pool:
        print("pool", [pool.submit(fork_at_one, i).result(timeout=30) for i in range(4)])

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_a_child_forked_by_a_call_is_stopped_before_it_answers_for_the_worker(tmp_path):
    # Before: outputs like 0 0 2 2 4 3, and an AssertionError in
    # buffer_updated, as both processes answered on the worker's socket.
    # A script of its own: its fork server writes to its stderr, not ours.
    done = run_script(tmp_path, FORKING)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["map [0, 1, 2, 3, 4, 5]", "pool [0, 1, 2, 3]"]
    assert done.stderr.count("returned from it into the worker's loop; it was stopped") == 2
    assert "AssertionError" not in done.stderr


def test_sys_exit_in_a_pool_call_comes_back_as_system_exit_and_the_worker_stays():
    with pipework.ProcessPool(1) as pool:
        first = pool.submit(os.getpid).result(timeout=30)
        with pytest.raises(SystemExit) as caught:
            pool.submit(call_exits, 3).result(timeout=30)
        assert caught.value.code == 3
        assert "call_exits" in str(caught.value.__cause__)  # the worker's traceback
        assert pool.submit(os.getpid).result(timeout=30) == first


def test_a_worker_that_dies_starting_in_a_script_without_a_main_guard_says_so(tmp_path):
    done = run_script(
        tmp_path,
        """
        import pipework
        pool = pipework.ProcessPool(1)
        print("result", pool.submit(abs, -3).result(timeout=30))
        """,
    )
    assert done.returncode != 0
    assert "result" not in done.stdout
    assert "WorkerStartError" in done.stderr
    assert "if __name__ == '__main__':" in done.stderr
