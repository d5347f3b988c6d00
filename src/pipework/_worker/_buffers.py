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

``/dev/shm`` is shared by every user of the machine, and anyone may create
a file there with any name. A sweep therefore removes only what is provably
ours: a regular file (not a link), owned by our user, whose name has our
exact form; an orphan sweep also needs its owner's pid to be dead. Anything
else is left alone, so no other user can make our runs fail by planting a
file, and a run as root never deletes another user's files.

Receivers map segments copy-on-write, so a worker that writes to an array
it received does not touch the sender's copy. Anything that pickles its data
as a ``pickle.PickleBuffer`` travels this way: numpy arrays, Arrow buffers,
or a ``PickleBuffer`` wrapped around any buffer, so numpy is not needed. A
bare ``bytes`` or ``bytearray`` is pickled in band: the C pickler gives no
hook for them.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import pickle
import re
import secrets
import stat
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = [
    "THRESHOLD",
    "Packed",
    "Segment",
    "alive",
    "forget_inbound",
    "map_segments",
    "new_key",
    "out_of_band",
    "prefix_for",
    "segments_of",
    "sweep",
    "sweep_orphans",
    "unlink",
]

THRESHOLD = 1 << 20
"""Buffers of at least this many bytes travel through shared memory."""

SHM_DIR = Path("/dev/shm")  # noqa: S108 - the Linux shared-memory file system, not a temp dir
_ENABLED = SHM_DIR.is_dir()

# What `new_key` and `_write` name a segment: the parent's pid, the key's
# random part, and the segment's own.
_SEGMENT_NAME = re.compile(r"pipework-(\d+)-[0-9a-f]{16}-[0-9a-f]{16}")

# A large buffer's place: the segment's name, and the offset and size within it.
Segment = tuple[str, int, int]
# What crosses the pipe: the pickle stream, and the places of its large
# buffers, in the order the unpickler wants them.
Packed = tuple[bytes, tuple[Segment, ...]]


class _Inbound(threading.local):
    """The segments a worker mapped for the chunk it is running: (address, size, name)."""

    def __init__(self) -> None:
        self.mapped: list[tuple[int, int, str]] = []


_inbound = _Inbound()


def new_key() -> str:
    """Return a key for one stage of one run: this process's pid and a random part.

    The pid in the key is what lets `sweep_orphans` tell whose segments are
    left over, and a worker names its segments from the key alone.
    """
    return f"{os.getpid()}-{secrets.token_hex(8)}"


def prefix_for(key: str) -> str:
    """Return the prefix of the names of the segments made under ``key``."""
    return f"pipework-{key}-"


def out_of_band(
    prefix: str | None, segments: list[Segment]
) -> Callable[[pickle.PickleBuffer], bool] | None:
    """Return a pickler's ``buffer_callback`` that puts large buffers in segments.

    The places it uses are appended to ``segments``. A buffer that lies in a
    segment this thread received for its current chunk (a function that
    returns its input, or changes it in place) is sent back as a reference
    to that segment rather than copied. With no ``prefix``, or where there
    is no shared memory, it returns ``None``: all in band.
    """
    if prefix is None or not _ENABLED:
        return None

    def callback(buffer: pickle.PickleBuffer) -> bool:
        view = buffer.raw()
        if view.nbytes < THRESHOLD:
            return True  # in band: small buffers cost less in the stream
        segments.append(_within_inbound(view) or (_write(prefix, view), 0, view.nbytes))
        return False

    return callback


def map_segments(
    segments: tuple[Segment, ...], *, unlink: bool, track: bool = False
) -> list[memoryview]:
    """Map the places of a packed value's buffers, for its unpickler.

    ``unlink`` removes the names once mapped: the memory lives on until the
    last object using it is gone, so pass it when this side is the last
    reader. ``track`` records the mappings as this thread's current inbound
    segments (see `out_of_band`), replacing the previous chunk's.
    """
    maps = {name: _map(name) for name in {name for name, _, _ in segments}}
    if track:
        _inbound.mapped = [(_address(m), len(m), name) for name, m in maps.items()]
    if unlink:
        _unlink_all(maps)
    return [memoryview(maps[name])[offset : offset + size] for name, offset, size in segments]


def forget_inbound() -> None:
    """Drop this thread's record of its inbound segments, once its chunk is sent back."""
    _inbound.mapped = []


def segments_of(packed: Packed) -> list[str]:
    """Return the names of the segments a packed value refers to."""
    return [name for name, _, _ in packed[1]]


def sweep(prefix: str) -> int:
    """Remove every segment of ours whose name starts with ``prefix``; return how many."""
    if not _ENABLED:
        return 0
    return _unlink_all(
        entry.name
        for entry in _segments()
        if entry.name.startswith(prefix) and _SEGMENT_NAME.fullmatch(entry.name) and _ours(entry)
    )


def sweep_orphans() -> int:
    """Remove our user's segments left by pipework processes that no longer exist.

    Files of other users, files named otherwise, and links are left alone,
    whatever their names say (see the module docstring).
    """
    if not _ENABLED:
        return 0
    orphans = []
    for entry in _segments():
        name = _SEGMENT_NAME.fullmatch(entry.name)
        if name is not None and _ours(entry) and not alive(int(name[1])):
            orphans.append(entry.name)
    return _unlink_all(orphans)


def _segments() -> list[os.DirEntry[str]]:
    try:
        with os.scandir(SHM_DIR) as entries:
            return [entry for entry in entries if entry.name.startswith("pipework-")]
    except OSError:  # unreadable: there is nothing we can sweep
        return []


def _ours(entry: os.DirEntry[str]) -> bool:
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()


def unlink(names: list[str]) -> None:
    """Remove the named segments, ignoring those already gone."""
    _unlink_all(names)


def _write(prefix: str, view: memoryview) -> str:
    name = prefix + secrets.token_hex(8)
    fd = os.open(SHM_DIR / name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        # One write() lets the kernel fill the pages: about twice as fast as
        # copying through a mapping, which faults each page in turn.
        data = view.cast("B") if view.format != "B" or view.ndim != 1 else view
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
    except BaseException:
        _unlink_all([name])
        raise
    finally:
        os.close(fd)
    return name


def _map(name: str) -> mmap.mmap:
    fd = os.open(SHM_DIR / name, os.O_RDWR)
    try:
        # Shared and writable: a segment is a private copy made for one chunk,
        # so a worker may change its arrays in place, and a result that is
        # its own input can go back as a reference instead of a second copy.
        return mmap.mmap(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _address(mapping: mmap.mmap) -> int:
    anchor = ctypes.c_char.from_buffer(mapping)
    try:
        return ctypes.addressof(anchor)
    finally:
        del anchor  # release the export, or the mapping could never close


def _within_inbound(view: memoryview) -> Segment | None:
    if not _inbound.mapped or view.readonly:
        return None
    anchor = ctypes.c_char.from_buffer(view)
    start = ctypes.addressof(anchor)
    del anchor
    for base, size, name in _inbound.mapped:
        if base <= start and start + view.nbytes <= base + size:
            return name, start - base, view.nbytes
    return None


def _unlink_all(names: Iterable[str]) -> int:
    count = 0
    for name in names:
        # Gone already, or (in a sticky /dev/shm) another user's: not ours to remove.
        with contextlib.suppress(FileNotFoundError, PermissionError):
            (SHM_DIR / name).unlink()
            count += 1
    return count


def alive(pid: int) -> bool:
    """Whether a process with this id exists (ours to signal or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
