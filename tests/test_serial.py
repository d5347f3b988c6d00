"""What crosses a process boundary: cloudpickle both ways, and the culprit named."""

from __future__ import annotations

import threading

import pytest

from helpers import run_script
from pipework._worker import _serial as serial

SCRIPT = """
import asyncio, dataclasses, pipework

@dataclasses.dataclass
class Out:
    x: int

class Boom(Exception):
    pass

def make(x):
    if x == 99:
        raise Boom("ninety-nine")
    return Out(x)

async def main():
    outs = await pipework.map(make, [1, 2, 3], workers=2)
    assert all(type(o) is Out for o in outs), [type(o) for o in outs]
    print("results", [o.x for o in outs])
    try:
        await pipework.map(make, [1, 99], workers=2)
    except Boom as exc:
        print("raised", type(exc).__name__, exc)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_classes_and_exceptions_defined_in_a_script_round_trip(tmp_path):
    done = run_script(tmp_path, SCRIPT)
    assert done.returncode == 0, done.stderr
    assert "results [1, 2, 3]" in done.stdout
    assert "raised Boom ninety-nine" in done.stdout


def test_pack_values_names_the_first_value_that_cannot_be_pickled():
    with pytest.raises(serial.NotPicklableError) as caught:
        serial.pack_values([1, "two", threading.Lock(), threading.Lock()])
    assert caught.value.position == 2
    assert isinstance(caught.value.cause, TypeError)


def test_round_trip_of_plain_values_and_lambdas():
    offset = 3
    fn = serial.unpack(serial.pack(lambda x: x + offset), unlink=True)
    assert fn(1) == 4
    packed = serial.pack_values([1, "a", None])
    assert packed[1] == ()  # nothing large: no shared memory
    assert serial.unpack(packed, unlink=True) == [1, "a", None]
