"""The public API: exactly the intended names, each documented, and typed."""

from __future__ import annotations

import importlib
import importlib.resources
import inspect

import pytest

import pipework
import pipework.http

PUBLIC = [
    "Abilities",
    "Backend",
    "Bottleneck",
    "Failure",
    "FilteredOutError",
    "ItemCancelledError",
    "ItemExitError",
    "ItemTimeoutError",
    "Latency",
    "Pipeline",
    "PipeworkError",
    "ProcessPool",
    "RemoteError",
    "RemoteTraceback",
    "Report",
    "Retry",
    "SealedPipeline",
    "Service",
    "ServiceBusyError",
    "ServiceClosedError",
    "Snapshot",
    "StagePlan",
    "StageReport",
    "StageSnapshot",
    "Stream",
    "UnpicklableError",
    "WorkerDiedError",
    "WorkerStartError",
    "Workers",
    "dask",
    "map",
    "merge",
    "prometheus_collector",
    "ray",
    "run_all",
    "run_main",
    "stop_on_signals",
    "work",
    "zip",
]


def test_all_lists_exactly_the_public_names():
    assert sorted(pipework.__all__) == PUBLIC
    assert len(pipework.__all__) == len(set(pipework.__all__))


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_is_importable(name):
    module = importlib.import_module("pipework")
    assert getattr(module, name) is getattr(pipework, name)
    namespace = {}
    exec(f"from pipework import {name}", namespace)  # noqa: S102 - a literal import statement
    assert namespace[name] is getattr(pipework, name)


def test_no_other_public_names_leak():
    public = {
        name
        for name, value in vars(pipework).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(PUBLIC)


HTTP_PUBLIC = [
    "FetchOptions",
    "FetchStats",
    "Fetcher",
    "HTTPError",
    "Request",
    "Retry",
    "StreamedResponse",
    "fetch",
    "source",
]


def test_http_all_lists_exactly_its_public_names():
    # Its namespace also holds what its signatures name (Pipeline, URL...);
    # __all__ is the contract, for star imports and type checkers alike.
    assert sorted(pipework.http.__all__) == sorted(HTTP_PUBLIC)
    for name in HTTP_PUBLIC:
        assert getattr(pipework.http, name).__module__.startswith("pipework.")


@pytest.mark.parametrize("name", HTTP_PUBLIC)
def test_each_http_name_is_documented(name):
    obj = getattr(pipework.http, name)
    assert inspect.getdoc(obj), f"http.{name} has no docstring"
    if inspect.isclass(obj):
        undocumented = [
            member
            for member, fn in own_members(obj)
            if not (fn.__doc__ or "").strip()
            and not (dataclasses_made(obj) and member in GENERATED)
            and not (protocol(obj) and member in PROTOCOL_GENERATED)
        ]
        assert not undocumented, f"http.{name} lacks docstrings on {undocumented}"


def test_http_error_is_a_pipework_error():
    assert issubclass(pipework.http.HTTPError, pipework.PipeworkError)


def test_version_is_a_string():
    assert isinstance(pipework.__version__, str)
    assert pipework.__version__.count(".") >= 2


def own_members(cls):
    """Public methods and properties that the class itself defines."""
    for name, value in vars(cls).items():
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
            continue
        if isinstance(value, property):
            yield name, value.fget
        elif inspect.isfunction(value) or isinstance(value, classmethod | staticmethod):
            yield name, getattr(cls, name)


# Written by typing.Protocol for a protocol class, with no docstring.
PROTOCOL_GENERATED = {"__init__", "__subclasshook__"}


def protocol(cls):
    return bool(getattr(cls, "_is_protocol", False))


# Written by @dataclass, which gives them no docstring.
GENERATED = {"__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__",
             "__getstate__", "__setstate__", "__replace__"}  # fmt: skip


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_object_and_method_has_a_docstring(name):
    obj = getattr(pipework, name)
    assert inspect.getdoc(obj), f"{name} has no docstring"
    if not inspect.isclass(obj):
        return
    undocumented = [
        member
        for member, fn in own_members(obj)
        if not (fn.__doc__ or "").strip()
        and not (dataclasses_made(obj) and member in GENERATED)
        and not (protocol(obj) and member in PROTOCOL_GENERATED)
    ]
    assert not undocumented, f"{name} lacks docstrings on {undocumented}"


def dataclasses_made(cls):
    return hasattr(cls, "__dataclass_fields__")


def test_py_typed_ships_with_the_package():
    marker = importlib.resources.files("pipework").joinpath("py.typed")
    assert marker.is_file()
