"""The file-I/O seam: the only module of wal-db that touches ``os``.

Theory of operation
-------------------
The log never calls ``os`` directly. It works on a *filesystem* -- one flat directory --
and the *files* it opens, through the two protocols below, which match the shared test
kit's ``FileSystemProtocol`` structurally. :class:`OsFileSystem` is the real one; tests
pass ``strata_testkit.CrashFS`` to simulate power loss at every write and fsync.

:class:`OsFileSystem` maps the directory contract onto POSIX:

* ``fsync`` of a log file is ``fdatasync`` where the platform has it: for appends it
  flushes the data and the file size (the metadata needed to read the data back), which
  is all the log needs, and skips timestamps;
* ``fsync_dir`` opens the directory and fsyncs it, which makes creates, renames and
  unlinks durable;
* :meth:`OsFileSystem.lock` takes a non-blocking ``flock`` on a lock file for the writer's
  lifetime. ``flock`` locks belong to an open file description, so a second writer in the
  same process is refused too; readers take no lock at all.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Protocol, runtime_checkable

from .errors import LogLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileSystem", "LogFile", "OsFile", "OsFileSystem"]

Buffer = bytes | bytearray | memoryview


@runtime_checkable
class LogFile(Protocol):
    """One open file, addressed by absolute offsets (no cursor)."""

    def pread(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes at ``offset``; short at end of file, ``b""`` beyond it."""
        ...

    def pwrite(self, data: Buffer, offset: int) -> int:
        """Write every byte of ``data`` at ``offset``; return ``len(data)``."""
        ...

    def fsync(self) -> None:
        """Make this file's earlier writes and truncates durable."""
        ...

    def size(self) -> int:
        """The file's current length in bytes."""
        ...

    def truncate(self, length: int) -> None:
        """Shrink (or zero-extend) the file to ``length`` bytes."""
        ...

    def close(self) -> None:
        """Release the handle."""
        ...


@runtime_checkable
class FileSystem(Protocol):
    """One flat directory of files, as the log sees it."""

    def open(self, name: str, *, create: bool = True) -> LogFile:
        """Open ``name`` for reading and writing, creating it if ``create``."""
        ...

    def exists(self, name: str) -> bool:
        """True if ``name`` exists."""
        ...

    def listdir(self) -> list[str]:
        """The names in the directory, sorted."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Atomically rename ``src`` to ``dst``, replacing ``dst``."""
        ...

    def unlink(self, name: str) -> None:
        """Remove ``name``."""
        ...

    def fsync_dir(self) -> None:
        """Make earlier creates, renames and unlinks durable."""
        ...


_sync_data = getattr(os, "fdatasync", os.fsync)


class OsFile:
    """A real file with positioned I/O (see :class:`LogFile`)."""

    __slots__ = ("_fd", "path")

    def __init__(self, path: str, *, create: bool = True, read_only: bool = False):
        self.path = path
        flags = os.O_RDONLY if read_only else os.O_RDWR | (os.O_CREAT if create else 0)
        self._fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)

    def pread(self, size: int, offset: int) -> bytes:
        """See :meth:`LogFile.pread`."""
        return os.pread(self._fd, size, offset)

    def pwrite(self, data: Buffer, offset: int) -> int:
        """See :meth:`LogFile.pwrite`."""
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done:], offset + done)
        return done

    def fsync(self) -> None:
        """See :meth:`LogFile.fsync` (``fdatasync`` where available)."""
        _sync_data(self._fd)

    def size(self) -> int:
        """See :meth:`LogFile.size`."""
        return os.fstat(self._fd).st_size

    def truncate(self, length: int) -> None:
        """See :meth:`LogFile.truncate`."""
        os.ftruncate(self._fd, length)

    def close(self) -> None:
        """See :meth:`LogFile.close`. Idempotent."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class OsFileSystem:
    """A real directory (see :class:`FileSystem`).

    Args:
        path: the directory. It is created (with its parents) unless ``read_only``.
        read_only: open files read-only and never create anything.

    Raises:
        FileNotFoundError: ``read_only`` and the directory does not exist.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False):
        self.path = os.fspath(path)
        self.read_only = read_only
        self._lock_fd = -1
        if read_only:
            if not os.path.isdir(self.path):
                raise FileNotFoundError(errno.ENOENT, "no log directory", self.path)
        elif not os.path.isdir(self.path):
            os.makedirs(self.path, exist_ok=True)
            _fsync_directory(os.path.dirname(os.path.abspath(self.path)))

    def _join(self, name: str) -> str:
        if not name or name in (".", "..") or "/" in name or os.sep in name:
            raise ValueError(f"invalid file name {name!r}: the directory is flat")
        return os.path.join(self.path, name)

    def open(self, name: str, *, create: bool = True) -> OsFile:
        """See :meth:`FileSystem.open`."""
        return OsFile(
            self._join(name), create=create and not self.read_only, read_only=self.read_only
        )

    def exists(self, name: str) -> bool:
        """See :meth:`FileSystem.exists`."""
        return os.path.exists(self._join(name))

    def listdir(self) -> list[str]:
        """See :meth:`FileSystem.listdir`."""
        return sorted(os.listdir(self.path))

    def rename(self, src: str, dst: str) -> None:
        """See :meth:`FileSystem.rename`."""
        os.replace(self._join(src), self._join(dst))

    def unlink(self, name: str) -> None:
        """See :meth:`FileSystem.unlink`."""
        os.unlink(self._join(name))

    def fsync_dir(self) -> None:
        """See :meth:`FileSystem.fsync_dir`."""
        _fsync_directory(self.path)

    def lock(self, name: str) -> None:
        """Take the writer's exclusive advisory lock on file ``name``, without waiting.

        Raises:
            LogLockedError: another writer holds it.
        """
        fd = os.open(self._join(name), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LogLockedError(
                    f"the log in {self.path} is open for writing by another writer"
                ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the lock taken by :meth:`lock` (closing the descriptor drops it)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def _fsync_directory(path: str) -> None:
    if sys.platform == "win32":  # pragma: no cover - directories cannot be fsynced there
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
