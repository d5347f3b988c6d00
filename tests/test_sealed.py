"""SealedPipeline: what sink() returns can only be run, and says so when asked for more."""

from __future__ import annotations

import asyncio

import pytest

from pipework import Pipeline
from pipework._observe._report import Report
from pipework._sealed import SealedPipeline


def double(x):
    return 2 * x


async def endless():
    i = 0
    while True:
        yield i
        i += 1
        await asyncio.sleep(0)


def test_run_is_its_only_public_attribute():
    assert [name for name in dir(SealedPipeline) if not name.startswith("_")] == ["run"]
    sealed = Pipeline(range(3)).sink(print)
    assert isinstance(sealed, SealedPipeline)
    with pytest.raises(AttributeError):
        sealed.anything = 1  # slots: nothing can be hung on it either


@pytest.mark.parametrize("name", ["map", "sink", "run_all", "whatever"])
def test_a_stage_after_a_sink_says_why_it_is_missing(name):
    sealed = Pipeline(range(3)).map(double).sink(print)
    with pytest.raises(AttributeError) as caught:
        getattr(sealed, name)
    message = str(caught.value)
    assert message.startswith("a pipeline that ends with sink() takes no more stages")
    assert f"has no {name!r}" in message
    assert "add stages before the sink, or start another branch" in message
    assert not hasattr(sealed, name)


def test_a_private_name_gets_a_plain_attribute_error():
    """Protocol probes (copy, pickle, introspection) must not read a user-facing message."""
    sealed = Pipeline(range(3)).sink(print)
    with pytest.raises(AttributeError) as caught:
        sealed._no_such_thing  # noqa: B018 - the lookup is the test
    assert caught.value.args == ("_no_such_thing",)
    assert not hasattr(sealed, "__array__")


def test_repr_lists_the_stages_upstream_first():
    sealed = Pipeline(range(3), name="numbers").map(double).sink(print, name="show")
    assert repr(sealed) == (
        "SealedPipeline(#0 'numbers' (source) -> #1 'double' (inline map) -> #2 'show' (sink))"
    )


async def test_run_runs_every_stage_and_can_run_again():
    seen = []
    sealed = Pipeline(range(5)).map(double).sink(seen.append)
    first = await sealed.run()
    second = await sealed.run()
    assert seen == [0, 2, 4, 6, 8] * 2
    assert isinstance(first, Report)
    assert [s.kind for s in first.stages] == ["source", "inline map", "sink"]
    assert first["append"].items_in == second["append"].items_in == 5


async def test_run_passes_its_stop_signal_to_the_source():
    stop = asyncio.Event()
    seen = []

    def keep(x):
        seen.append(x)
        if x == 5:
            stop.set()

    report = await Pipeline(endless(), buffer=2).sink(keep).run(stop=stop)
    assert seen[:6] == [0, 1, 2, 3, 4, 5]
    assert seen == list(range(len(seen)))  # what was in flight finished, in order
    assert report["keep"].items_in == len(seen)
