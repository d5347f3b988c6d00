"""Large buffers through shared memory: pickle protocol 5, out of band.

A 64 MB array pickled through a pipe is copied four or more times and read
by the receiving process a piece at a time. Pickle protocol 5 lets the
pickler hand large buffers to a callback instead of writing them in the
stream. Each such buffer goes into a file in ``/dev/shm``, written once; the
receiver maps the file and hands the mapping back to the unpickler, so a
numpy array is rebuilt on that memory without another copy.

Segments are named ``pipework-<parent pid>-<key>-<token>``, where the key
belongs to one stage of one run. So whoever owns a run can remove every
segment it made or received with one sweep of the prefix, whatever
happened to the workers, and a later run can remove the leftovers of a
parent that was killed.

Receivers map segments copy-on-write, so a worker that writes to an array
it received does not touch the sender's copy. Anything that pickles its data
as a ``pickle.PickleBuffer`` travels this way: numpy arrays, Arrow buffers,
or a ``PickleBuffer`` wrapped around any buffer, so numpy is not needed. A
bare ``bytes`` or ``bytearray`` is pickled in band: the C pickler gives no
hook for them.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import pickle
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

__all__ = ["THRESHOLD", "Packed", "dumps", "loads", "prefix_for", "sweep", "sweep_orphans"]

THRESHOLD = 1 << 20
"""Buffers of at least this many bytes travel through shared memory."""

SHM_DIR = Path("/dev/shm")  # noqa: S108 - the Linux shared-memory file system, not a temp dir
_ENABLED = SHM_DIR.is_dir()

# What crosses the pipe: the pickle stream, and the segments holding its
# large buffers (name and size), in the order the unpickler wants them.
Packed = tuple[bytes, tuple[tuple[str, int], ...]]


def prefix_for(key: str, pid: int | None = None) -> str:
    """Return the segment-name prefix of one stage's run in the process ``pid``."""
    return f"pipework-{os.getpid() if pid is None else pid}-{key}-"


def dumps(obj: Any, prefix: str | None) -> Packed:
    """Pickle ``obj``, putting buffers of at least `THRESHOLD` bytes in shared memory.

    With no ``prefix``, or where there is no ``/dev/shm``, everything goes in band.
    """
    segments: list[tuple[str, int]] = []
    stream = io.BytesIO()
    callback = _out_of_band(prefix, segments) if prefix is not None and _ENABLED else None
    try:
        cloudpickle.Pickler(stream, protocol=5, buffer_callback=callback).dump(obj)
    except BaseException:
        _unlink_all(name for name, _ in segments)
        raise
    return stream.getvalue(), tuple(segments)


def loads(packed: Packed, *, unlink: bool) -> Any:
    """Unpickle what `dumps` made, mapping its segments.

    ``unlink`` removes the segments' names once they are mapped: the memory
    lives on until the last object using it is gone. Pass it when this side
    is the last reader.
    """
    data, segments = packed
    buffers = [_map(name, size) for name, size in segments]
    if unlink:
        _unlink_all(name for name, _ in segments)
    return pickle.loads(data, buffers=buffers)


def segments_of(packed: Packed) -> list[str]:
    """Return the names of the segments a packed value refers to."""
    return [name for name, _ in packed[1]]


def sweep(prefix: str) -> int:
    """Remove every segment whose name starts with ``prefix``; return how many."""
    if not _ENABLED:
        return 0
    return _unlink_all(path.name for path in SHM_DIR.iterdir() if path.name.startswith(prefix))


def sweep_orphans() -> int:
    """Remove segments left by pipework processes that no longer exist."""
    if not _ENABLED:
        return 0
    orphans = []
    for path in SHM_DIR.iterdir():
        tag, _, rest = path.name.partition("-")
        pid = rest.partition("-")[0]
        if tag == "pipework" and pid.isdigit() and not _alive(int(pid)):
            orphans.append(path.name)
    return _unlink_all(orphans)


def unlink(names: list[str]) -> None:
    """Remove the named segments, ignoring those already gone."""
    _unlink_all(names)


def _out_of_band(
    prefix: str, segments: list[tuple[str, int]]
) -> Callable[[pickle.PickleBuffer], bool]:
    def callback(buffer: pickle.PickleBuffer) -> bool:
        view = buffer.raw()
        if view.nbytes < THRESHOLD:
            return True  # in band: small buffers cost less in the stream
        segments.append((_write(prefix, view), view.nbytes))
        return False

    return callback


def _write(prefix: str, view: memoryview) -> str:
    name = prefix + secrets.token_hex(8)
    fd = os.open(SHM_DIR / name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, view.nbytes)
        with mmap.mmap(fd, view.nbytes) as target:
            target[:] = view
    except BaseException:
        _unlink_all([name])
        raise
    finally:
        os.close(fd)
    return name


def _map(name: str, size: int) -> mmap.mmap:
    fd = os.open(SHM_DIR / name, os.O_RDONLY)
    try:
        # Private and writable: the receiver may change its array freely,
        # and the sender's copy stays as it was.
        return mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


def _unlink_all(names: Iterable[str]) -> int:
    count = 0
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (SHM_DIR / name).unlink()
            count += 1
    return count


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
