"""pipework.run_main, and pipework on uvloop: the loop is the program's choice, not ours."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import pipework
from helpers import LOOPS, alive, run_script
from pipework import Pipeline


def triple(x):
    return 3 * x


def worker_pid(_):
    return os.getpid()


async def loop_and_outputs(items):
    """Which loop ran, and a pipeline's outputs through an async and a process stage."""

    async def after_a_yield(x):
        await asyncio.sleep(0)
        return x + 1

    outputs = [
        x async for x in Pipeline(items).map(after_a_yield).map(triple, on="process", workers=2)
    ]
    return type(asyncio.get_running_loop()).__module__.partition(".")[0], outputs


async def loop_module():
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


# pipework.run_main -------------------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_run_runs_a_pipeline_on_the_loop_named(loop):
    ran_on, outputs = pipework.run_main(loop_and_outputs, range(30), loop=loop)
    assert ran_on == loop
    assert outputs == [3 * (x + 1) for x in range(30)]


def test_auto_means_uvloop_where_it_is_installed():
    pytest.importorskip("uvloop")
    assert pipework.run_main(loop_module) == "uvloop"
    assert pipework.run_main(loop_module, loop="auto") == "uvloop"


def test_auto_means_asyncio_without_uvloop(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what `import uvloop` sees without it
    assert pipework.run_main(loop_module) == "asyncio"


def test_asking_for_uvloop_without_it_is_a_clear_error_before_main_is_called(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)
    called = []

    async def main():
        called.append(True)

    with pytest.raises(ModuleNotFoundError, match=r"pip install 'pipework\[uvloop\]'") as error:
        pipework.run_main(main, loop="uvloop")
    assert error.value.name == "uvloop"
    assert called == []


@pytest.mark.parametrize("loop", ["trio", "UVLOOP", "", None])
def test_an_unknown_loop_is_a_value_error(loop):
    with pytest.raises(ValueError, match="loop must be one of 'auto', 'uvloop', 'asyncio'"):
        pipework.run_main(loop_module, loop=loop)


def test_a_callable_is_used_as_the_loop_factory():
    made = []

    class CountedLoop(asyncio.SelectorEventLoop):
        pass

    def factory():
        made.append(CountedLoop())
        return made[-1]

    async def main(a, b):
        return asyncio.get_running_loop(), a + b

    running, total = pipework.run_main(main, 2, 3, loop=factory)
    assert total == 5
    assert made == [running]
    assert running.is_closed()


def test_positional_arguments_and_the_result_pass_through():
    async def main(*args):
        return args

    assert pipework.run_main(main) == ()
    assert pipework.run_main(main, 1, "two", [3]) == (1, "two", [3])


def test_an_exception_from_main_propagates_as_itself():
    class BoomError(Exception):
        pass

    async def main():
        await asyncio.sleep(0)
        raise BoomError("inside")

    with pytest.raises(BoomError, match="inside"):
        pipework.run_main(main)


def test_debug_reaches_the_loop():
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert pipework.run_main(main, debug=True) is True
    assert pipework.run_main(main, debug=False) is False


async def test_run_inside_a_running_loop_is_refused_before_main_is_called():
    called = []

    async def main():
        called.append(True)

    with pytest.raises(RuntimeError, match="while an event loop is running"):
        pipework.run_main(main)
    assert called == []


# the loop stays the program's ---------------------------------------------------------------

POLICY_SCRIPT = """
import asyncio, json, warnings

def policy():
    with warnings.catch_warnings():  # get_event_loop_policy is deprecated from Python 3.14
        warnings.simplefilter("ignore", DeprecationWarning)
        return asyncio.get_event_loop_policy()

set_policy_calls = []
real_set_policy = asyncio.events.set_event_loop_policy

def spy(policy):
    set_policy_calls.append(repr(policy))
    real_set_policy(policy)

asyncio.set_event_loop_policy = asyncio.events.set_event_loop_policy = spy
before = policy()

import pipework
from pipework import Pipeline

after_import = policy()

def triple(x):
    return 3 * x

async def main():
    async def plus_one(x):
        return x + 1
    report = await Pipeline(range(20)).map(plus_one).map(triple, on="process", workers=2).run()
    loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
    return loop, report.stages[-1].items_out

if __name__ == "__main__":
    ran_on, items = pipework.run_main(main)
    user_loop, user_items = asyncio.run(main())
    print(json.dumps({
        "import_kept_policy": after_import is before,
        "run_kept_policy": policy() is before,
        "policy": type(before).__module__.partition(".")[0],
        "set_policy_calls": set_policy_calls,
        "pipework_run": [ran_on, items],
        "asyncio_run": [user_loop, user_items],
    }))
"""


@pytest.mark.timeout(90)
def test_importing_pipework_and_running_a_pipeline_leave_the_policy_alone(tmp_path):
    done = run_script(tmp_path, POLICY_SCRIPT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["set_policy_calls"] == []
    assert seen["import_kept_policy"] is True
    assert seen["run_kept_policy"] is True
    assert seen["policy"] == "asyncio"
    # pipework.run_main chose uvloop for its own call; the user's asyncio.run after it still
    # got asyncio's loop, and the pipeline ran the same on both.
    assert seen["pipework_run"] == [LOOPS[-1], 20]
    assert seen["asyncio_run"] == ["asyncio", 20]


LOOP_INSTALLERS = {
    "set_event_loop_policy",  # the global policy
    "EventLoopPolicy",  # uvloop's, or asyncio's Default-, to install it
    "DefaultEventLoopPolicy",
    "set_event_loop",  # the thread's current loop
    "install",  # uvloop.install()
}


def names_used(tree):
    """Every name the code uses: variables, attributes and imports; not docstrings or comments."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.alias):
            yield from node.name.split(".")


def test_no_module_of_pipework_installs_a_loop():
    source = Path(pipework.__file__).parent
    offenders = {
        f"{path.relative_to(source)}: {name}"
        for path in sorted(source.rglob("*.py"))
        for name in names_used(ast.parse(path.read_text()))
        if name in LOOP_INSTALLERS
    }
    assert offenders == set()
    # Guard the guard: the scan does see what it must refuse.
    assert "install" in set(names_used(ast.parse("import uvloop\nuvloop.install()")))
    assert LOOP_INSTALLERS & set(
        names_used(ast.parse("from asyncio import set_event_loop_policy as quiet"))
    )


# the test suite's own loops -----------------------------------------------------------------


def test_uvloop_is_installed_for_the_tests_wherever_it_can_be():
    # Otherwise every "[uvloop]" test would silently vanish from the suite.
    assert sys.platform == "win32" or LOOPS == ("asyncio", "uvloop")


async def test_an_async_test_runs_on_the_loop_its_id_names(request):
    ran_on = await loop_module()
    named = re.search(r"\[(\w+)\]$", request.node.name)
    if len(LOOPS) == 1:
        assert named is None
        assert ran_on == "asyncio"
    else:
        assert named is not None
        assert ran_on == named[1]


# processes, subprocesses and signals on each loop ------------------------------------------


async def echo_double(x):
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"print({x} * 2)", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    assert child.returncode == 0
    return int(out)


async def subprocesses_then_processes():
    # asyncio's subprocesses wait for their children through a child watcher, uvloop's
    # through libuv; neither may reap, or be confused by, the pool's worker processes.
    return [
        x
        async for x in Pipeline(range(6))
        .map(echo_double, concurrency=3)
        .map(triple, on="process", workers=2)
    ]


async def test_subprocesses_and_a_process_stage_share_a_run():
    assert await subprocesses_then_processes() == [6 * x for x in range(6)]


@pytest.mark.parametrize("loop", LOOPS)
def test_subprocesses_and_a_process_stage_share_a_run_under_pipework_run(loop):
    # pipework.run_main makes its loop from a factory and never sets it as the thread's
    # current loop, which is what Python 3.11 attaches child watchers to.
    assert pipework.run_main(subprocesses_then_processes, loop=loop) == [6 * x for x in range(6)]


CTRL_C_SCRIPT = """
import itertools, os, signal, sys, time
import pipework
from pipework import Pipeline

# A child of a background shell job inherits SIGINT ignored; Ctrl-C is what is tested.
signal.signal(signal.SIGINT, signal.default_int_handler)

def slow_pid(_):
    time.sleep(0.05)
    return os.getpid()

async def main():
    pids = set()
    async for pid in Pipeline(itertools.count()).map(slow_pid, on="process", workers=2):
        if pid not in pids:
            pids.add(pid)
            print(pid, flush=True)
        if len(pids) == 2:
            print("ready", flush=True)

if __name__ == "__main__":
    pipework.run_main(main, loop=sys.argv[1])
"""


def read_pids_until_ready(stream):
    pids = []
    for line in stream:
        if line.strip() == "ready":
            return pids
        pids.append(int(line))
    raise AssertionError(f"the script ended before its workers were ready; pids {pids}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("loop", LOOPS)
def test_ctrl_c_stops_a_run_and_its_workers(loop, tmp_path):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(CTRL_C_SCRIPT))
    with subprocess.Popen(
        [sys.executable, "-W", "error", str(script), loop],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            pids = read_pids_until_ready(child.stdout)
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=30)
        finally:
            child.kill()
    assert len(pids) == 2
    assert child.returncode != 0
    assert err.rstrip().endswith("KeyboardInterrupt"), err
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if alive(pid)]
