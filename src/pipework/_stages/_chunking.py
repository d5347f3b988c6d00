"""How many items a pooled stage sends to a worker at once.

One call into a process pool costs a fraction of a millisecond, so sending
one item per call caps a stage at a few thousand items a second. Sending
chunks amortises that cost; sizing each chunk to take about ``target``
seconds of work keeps latency and load balance good as well.

Time alone is not enough: cheap items that are large (a megabyte of bytes
whose length is taken) would make chunks of thousands of megabytes, and a
stage holds several chunks at once. So a chunk is also held to
`CHUNK_BYTES`, by the measured size (`_sizes`) of its items and of their results,
whichever is larger: large items travel in small chunks, small ones in large.
"""

from __future__ import annotations

from .._sizes import SizeEstimate

DEFAULT_TARGET = 0.02
"""Seconds of work per chunk.

A call into a process pool costs the parent 0.3 to 0.6 ms of CPU, and on a
small machine that CPU is taken from the workers; 20 ms chunks keep it to a
few percent. Measured on 2 cores, 1 ms tasks: 1.71x over serial with 5 ms
chunks, 1.89x with 20 ms. A lone item is never held back to fill a chunk,
so this bounds only how work is divided when there is a backlog.
"""

MAX_CHUNK = 4096
"""The most items in one chunk, however cheap and small they are."""

CHUNK_BYTES = 4 * 1024 * 1024
"""The most bytes of items (or of results) in one chunk, as `approx_size` measures them.

A stage holds a few chunks per worker, so this keeps a stage's memory to
tens of megabytes whatever its items, while a chunk of small items still
reaches `MAX_CHUNK`.
"""


class ChunkSizer:
    """Sizes chunks from the measured time per item, or keeps a fixed size."""

    __slots__ = ("_bytes", "_fixed", "_per_item", "_target")

    def __init__(self, fixed: int | None = None, target: float = DEFAULT_TARGET) -> None:
        """Use ``fixed`` items per chunk, or adapt toward ``target`` seconds per chunk."""
        self._fixed = fixed
        self._target = target
        self._per_item: float | None = None
        self._bytes = SizeEstimate()

    @property
    def adaptive(self) -> bool:
        """Whether chunks follow the measured time per item, rather than a fixed size."""
        return self._fixed is None

    def size(self) -> int:
        """Return the number of items for the next chunk."""
        if self._fixed is not None:
            return self._fixed
        if self._per_item is None:
            # Nothing measured yet: start small so the first results come
            # back soon and the first measurement is cheap.
            return 1
        by_time = int(self._target / self._per_item)
        return max(1, min(by_time, self._bytes.items_in(CHUNK_BYTES, MAX_CHUNK)))

    def observe(self, items: int, seconds: float, item_bytes: int = 0) -> None:
        """Record that ``items`` items took ``seconds`` of work in a worker.

        ``item_bytes`` is the size of one item or of its result, whichever
        is larger (`approx_size`). Larger items count at once, so the next
        chunk is already small; smaller ones bring the estimate down gradually.
        """
        if items <= 0:
            return
        self._bytes.observe(item_bytes)
        # A no-op item measures as zero; a floor keeps the division finite.
        per_item = max(seconds / items, 1e-8)
        if self._per_item is None:
            self._per_item = per_item
        else:
            # Smooth over noisy timings while following a real change in the
            # work within a few chunks.
            self._per_item += 0.3 * (per_item - self._per_item)
