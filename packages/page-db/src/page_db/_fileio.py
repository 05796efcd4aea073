"""The file I/O seam: the only module in page-db that touches the operating system.

Theory of operation
-------------------
The store reads and writes whole pages at page-aligned offsets through an object that
satisfies :class:`FileIO` — six methods, nothing more. :class:`OsFile` is the real thing;
:class:`MemoryFile` backs :meth:`PageStore.memory`; tests substitute a crash-simulating
file (``strata_testkit.CrashFS``) that records every write and fsync and can rebuild any
state a power loss could leave, the way SQLite's ``test6.c`` does for its VFS.

Direct I/O. With ``direct=True`` the file is opened with ``O_DIRECT`` so page reads and
writes bypass the OS page cache; ``O_DIRECT`` needs buffers aligned to the device's logical
block, so every transfer goes through an anonymous ``mmap`` (page-aligned by construction).
Filesystems that refuse ``O_DIRECT`` (tmpfs, some FUSE mounts) make ``open`` fail with
``EINVAL``; the file then falls back to buffered I/O and says so in
:attr:`OsFile.direct_io` and :attr:`OsFile.fallback_reason`, which the store reports.

Locking. :class:`OsFile` takes an exclusive ``flock`` on open so a second writer (another
process, or a second store in this one) gets :class:`~page_db.errors.StoreLockedError`
instead of silently interleaving checkpoints.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from typing import Protocol, runtime_checkable

from .errors import StoreLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no fcntl; locking is then skipped
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileIO", "OsFile", "MemoryFile", "fsync_directory"]

Buffer = bytes | bytearray | memoryview
_PROBE_SIZE = 4096  # the smallest page size, a multiple of every logical block size


@runtime_checkable
class FileIO(Protocol):
    """What the store needs from a file. Offsets and sizes are in bytes."""

    def pread(self, size: int, offset: int) -> bytes:
        """Read up to ``size`` bytes at ``offset``; fewer at end of file."""
        ...

    def pwrite(self, data: Buffer, offset: int) -> int:
        """Write all of ``data`` at ``offset`` (extending the file), return ``len(data)``."""
        ...

    def fsync(self) -> None:
        """Make every completed write durable, or raise ``OSError``."""
        ...

    def size(self) -> int:
        """Current length of the file in bytes."""
        ...

    def truncate(self, length: int) -> None:
        """Cut or extend the file to ``length`` bytes."""
        ...

    def close(self) -> None:
        """Release the file. Further calls are errors."""
        ...


class OsFile:
    """A real file with positioned I/O, optional ``O_DIRECT`` and an exclusive lock.

    Args:
        path: the file to open or create.
        direct: ask for ``O_DIRECT``; falls back to buffered I/O where refused.
        lock: take an exclusive advisory lock (default True; never for ``read_only``).
        read_only: open an existing file for reading only; writes raise ``OSError``.

    Raises:
        StoreLockedError: another holder has the lock.
        OSError: the file cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        direct: bool = False,
        lock: bool = True,
        read_only: bool = False,
    ):
        self.path = os.fspath(path)
        self.direct_io = False
        self.fallback_reason: str | None = None
        self.read_only = read_only
        access = os.O_RDONLY if read_only else os.O_RDWR | os.O_CREAT
        flags = access | getattr(os, "O_CLOEXEC", 0)
        fd = -1
        if direct:
            o_direct = getattr(os, "O_DIRECT", 0)
            if not o_direct:
                self.fallback_reason = "O_DIRECT is not available on this platform"
            else:
                try:
                    fd = os.open(self.path, flags | o_direct, 0o644)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self.fallback_reason = f"filesystem refused O_DIRECT ({exc.strerror})"
                else:
                    fd = self._probe_direct(fd, flags)
        if fd < 0:
            fd = os.open(self.path, flags, 0o644)
        self._fd = fd
        self._io_lock = threading.Lock()
        self._scratch: mmap.mmap | None = None
        if lock and not read_only and fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StoreLockedError(f"{self.path} is open for writing elsewhere") from None

    def _probe_direct(self, fd: int, flags: int) -> int:
        """Some filesystems accept the flag but fail aligned I/O; try one read to see."""
        probe = mmap.mmap(-1, _PROBE_SIZE)
        try:
            os.preadv(fd, [probe], 0)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                os.close(fd)
                raise
            os.close(fd)
            self.fallback_reason = f"filesystem refused O_DIRECT reads ({exc.strerror})"
            return os.open(self.path, flags, 0o644)
        finally:
            probe.close()
        self.direct_io = True
        return fd

    def _aligned(self, size: int) -> mmap.mmap:
        if self._scratch is None or len(self._scratch) < size:
            if self._scratch is not None:
                self._scratch.close()
            self._scratch = mmap.mmap(-1, max(size, mmap.PAGESIZE))
        return self._scratch

    def pread(self, size: int, offset: int) -> bytes:
        """See :meth:`FileIO.pread`."""
        if not self.direct_io:
            return os.pread(self._fd, size, offset)
        with self._io_lock:
            buf = self._aligned(size)
            got = os.preadv(self._fd, [memoryview(buf)[:size]], offset)
            return bytes(buf[:got])

    def pwrite(self, data: Buffer, offset: int) -> int:
        """See :meth:`FileIO.pwrite`."""
        if self.read_only:
            raise OSError(errno.EBADF, f"{self.path} is open read-only")
        view = memoryview(data).cast("B")
        total = len(view)
        if self.direct_io:
            with self._io_lock:
                buf = self._aligned(total)
                buf[:total] = view
                self._write_all(memoryview(buf)[:total], offset)
        else:
            self._write_all(view, offset)
        return total

    def _write_all(self, view: memoryview, offset: int) -> None:
        done = 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done:], offset + done)

    def fsync(self) -> None:
        """See :meth:`FileIO.fsync`."""
        os.fsync(self._fd)

    def size(self) -> int:
        """See :meth:`FileIO.size`."""
        return os.fstat(self._fd).st_size

    def truncate(self, length: int) -> None:
        """See :meth:`FileIO.truncate`."""
        os.ftruncate(self._fd, length)

    def close(self) -> None:
        """See :meth:`FileIO.close`. Idempotent."""
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = -1
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None


class MemoryFile:
    """A file held in a ``bytearray``; everything is "durable" at once."""

    def __init__(self, initial: bytes = b""):
        self._data = bytearray(initial)

    def pread(self, size: int, offset: int) -> bytes:
        """See :meth:`FileIO.pread`."""
        return bytes(self._data[offset : offset + size])

    def pwrite(self, data: Buffer, offset: int) -> int:
        """See :meth:`FileIO.pwrite`."""
        end = offset + len(data)
        if end > len(self._data):
            self._data.extend(bytes(end - len(self._data)))
        self._data[offset:end] = data
        return len(data)

    def fsync(self) -> None:
        """Nothing to do: memory is as durable as it gets."""

    def size(self) -> int:
        """See :meth:`FileIO.size`."""
        return len(self._data)

    def truncate(self, length: int) -> None:
        """See :meth:`FileIO.truncate`."""
        if length < len(self._data):
            del self._data[length:]
        else:
            self._data.extend(bytes(length - len(self._data)))

    def close(self) -> None:
        """Nothing to release."""

    def getvalue(self) -> bytes:
        """The whole file, for tests and tools."""
        return bytes(self._data)


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """fsync the directory ``path`` so a create, rename or unlink in it is durable."""
    fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
