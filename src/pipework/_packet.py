"""The unit that moves through channels: a run of items with their source positions.

Channels carry packets rather than single items so that the event loop pays
its per-message cost once per packet. Each item keeps the index it had in the
source, so that a failure deep in the pipeline can still name the item.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Generic, TypeVar

T = TypeVar("T")


class Packet(Generic[T]):
    """Items, and the source index of each.

    ``index`` is a ``range`` when the positions are contiguous, which is the
    common case and costs nothing to build or to slice.
    """

    __slots__ = ("index", "items")

    def __init__(self, index: Sequence[int], items: list[T]) -> None:
        """Pair ``items`` with their source positions; both have the same length."""
        self.index = index
        self.items = items

    def __len__(self) -> int:
        """Return the number of items."""
        return len(self.items)

    def __repr__(self) -> str:
        """Show the size and first position, not the items, which may be large."""
        first = self.index[0] if self.items else None
        return f"Packet(len={len(self.items)}, first={first})"

    def slice(self, start: int, stop: int) -> Packet[T]:
        """Return the items from ``start`` to ``stop`` as a new packet."""
        return Packet(self.index[start:stop], self.items[start:stop])

    @staticmethod
    def concat(parts: list[Packet[T]]) -> Packet[T]:
        """Join packets in order; contiguous ranges of positions stay one range."""
        if len(parts) == 1:
            return parts[0]
        items = [x for part in parts for x in part.items]
        first = parts[0].index
        # Each part must start where the one before ended: after an unordered
        # stage, parts arrive in any order, and matching ends prove nothing.
        if all(isinstance(part.index, range) and part.index for part in parts) and all(
            before.index[-1] + 1 == after.index[0] for before, after in pairwise(parts)
        ):
            return Packet(range(first[0], first[0] + len(items)), items)
        return Packet([i for part in parts for i in part.index], items)
