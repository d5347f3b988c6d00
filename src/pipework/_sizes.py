"""About how many bytes items hold: measured cheaply, on a sample, and followed over a stream.

Two bounds count bytes as well as items: a process stage's chunks (`_chunking`)
and, by default, a channel (`_channel`). Neither can afford to measure every
item, so each measures one item per batch and keeps a running estimate.
"""

from __future__ import annotations

import sys
from itertools import islice

# How many elements of a container `approx_size` looks at, and how deep.
_SAMPLE = 8
_DEPTH = 3


class SizeEstimate:
    """The bytes per item of a stream, from one item measured now and then.

    A larger item counts at once, so one large item is enough to shrink what
    is held next; smaller ones bring the estimate down gradually, so a run of
    small items earns its large batches back within a few measurements.
    """

    __slots__ = ("per_item",)

    def __init__(self) -> None:
        """Start with nothing measured: ``per_item`` is None until the first `observe`."""
        self.per_item: float | None = None

    def observe(self, item_bytes: int) -> None:
        """Fold in the size of one item (`approx_size`)."""
        if self.per_item is None or item_bytes >= self.per_item:
            self.per_item = float(item_bytes)
        else:
            self.per_item += 0.3 * (item_bytes - self.per_item)

    def items_in(self, budget: int, most: int) -> int:
        """Return how many items fit in ``budget`` bytes: at least one, at most ``most``."""
        if not self.per_item:  # nothing measured, or items that measure as nothing
            return most
        return max(1, min(most, int(budget / self.per_item)))


def approx_size(value: object) -> int:
    """Return about how many bytes ``value`` holds, cheaply: a sample, not a walk.

    Buffers count their data (bytes, str, arrays through ``nbytes``);
    containers count a few elements and scale by their length. It never
    raises: a user's object whose ``nbytes`` or ``__len__`` fails counts as 0,
    and then only its count bounds it.
    """
    try:
        return _approx(value, _DEPTH)
    except Exception:  # noqa: BLE001 - a measurement, never a reason to fail a stage
        return 0


def _approx(value: object, depth: int) -> int:
    if isinstance(value, bytes | bytearray | str):
        return len(value)
    nbytes = getattr(value, "nbytes", None)  # numpy arrays, memoryviews, buffers
    if isinstance(nbytes, int):
        return nbytes
    size = sys.getsizeof(value, 64)
    if depth and isinstance(value, list | tuple | set | frozenset | dict) and value:
        elements = value.items() if isinstance(value, dict) else value
        sample = list(islice(elements, _SAMPLE))
        sampled = sum(_approx(element, depth - 1) for element in sample)
        size += sampled * len(value) // len(sample)
    return size
