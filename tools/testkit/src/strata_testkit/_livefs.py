"""The live, in-memory directory shared by MemoryFS and CrashFS.

Theory of operation
-------------------
The directory maps names to *inodes* (small ints) and each inode owns a ``bytearray``
image. A handle (:class:`FSFile`) holds an inode, not a name, so -- as on POSIX -- it keeps
working on the same file after that file is renamed or unlinked; an unlinked inode's image
is freed when its last handle closes. There are no hard links: an inode has at most one
name, kept in a reverse map so traces and fault rules can use the *current* name.

Every operation runs in the same three steps, which is what makes faults safe:

1. validate arguments (``ValueError``/``TypeError``; a closed handle is ``ValueError``);
2. ask the :class:`~strata_testkit._faults.FaultPlan` whether to fail (``OSError``);
3. mutate, then hand a trace record to :meth:`_LiveFS._record`.

Nothing is mutated before step 3, so a failed call leaves no trace of itself. The base
class drops the records (this is :class:`MemoryFS`, where everything is durable at once);
:class:`~strata_testkit.CrashFS` keeps them. What reads see is always the live state, with
every completed op applied -- the OS page cache view.

Thread safety: one re-entrant lock per filesystem serialises every operation, handles
included, so engines with background threads get a trace whose order is exactly the order
in which the ops took effect.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from errno import EIO, ENOENT

from strata_testkit._faults import FaultOp, FaultPlan
from strata_testkit._image import as_bytes, check_non_negative, read_at, truncate_to, write_at
from strata_testkit._trace import (
    Create,
    Fsync,
    FsyncDir,
    Rename,
    TraceOp,
    Truncate,
    Unlink,
    Write,
)

__all__ = ["FSFile", "MemoryFS"]


def _check_name(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"file name must be str, not {type(name).__name__}")
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"invalid file name {name!r}: the directory is flat")


class FSFile:
    """An open file of a :class:`MemoryFS` or :class:`~strata_testkit.CrashFS`."""

    __slots__ = ("_closed", "_fs", "_inode", "_opened_as")

    def __init__(self, fs: _LiveFS, inode: int, name: str) -> None:
        self._fs = fs
        self._inode = inode
        self._opened_as = name
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<FSFile {self.name!r} inode={self._inode} {state}>"

    @property
    def name(self) -> str:
        """The file's current name (the name it was opened as, once unlinked)."""
        return self._fs._names.get(self._inode, self._opened_as)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"I/O operation on closed file {self.name!r}")

    def pread(self, size: int, offset: int) -> bytes:
        """Read up to ``size`` bytes at ``offset``; short at EOF, ``b""`` beyond it."""
        with self._fs._lock:
            self._check_open()
            check_non_negative(size, "size")
            check_non_negative(offset, "offset")
            self._fs.faults.check("read", (self.name,))
            return read_at(self._fs._images[self._inode], size, offset)

    def pwrite(self, data: bytes | bytearray | memoryview, offset: int) -> int:
        """Write all of ``data`` at ``offset`` (zero-filling a gap) and return its length.

        Raises:
            OSError: an injected fault, or ENOSPC past the capacity; the file is unchanged.
        """
        with self._fs._lock:
            self._check_open()
            payload = as_bytes(data)
            check_non_negative(offset, "offset")
            name = self.name
            self._fs.faults.check("write", (name,))
            image = self._fs._images[self._inode]
            self._fs._check_growth(offset + len(payload) - len(image) if payload else 0, name)
            if payload:
                write_at(image, payload, offset)
                self._fs._record(Write(name, self._inode, offset, payload))
            return len(payload)

    def fsync(self) -> None:
        """Flush this file's data ops; a failed call is still traced (``ok=False``)."""
        with self._fs._lock:
            self._check_open()
            name = self.name
            try:
                self._fs.faults.check("fsync", (name,))
            except OSError:
                self._fs._record(Fsync(name, self._inode, ok=False))
                raise
            self._fs._record(Fsync(name, self._inode))
            self._fs._sync_count += 1

    def size(self) -> int:
        """Return the current length in bytes."""
        with self._fs._lock:
            self._check_open()
            return len(self._fs._images[self._inode])

    def truncate(self, length: int) -> None:
        """Shrink to ``length`` bytes, or zero-extend up to it (subject to capacity)."""
        with self._fs._lock:
            self._check_open()
            check_non_negative(length, "length")
            name = self.name
            self._fs.faults.check("truncate", (name,))
            image = self._fs._images[self._inode]
            self._fs._check_growth(length - len(image), name)
            truncate_to(image, length)
            self._fs._record(Truncate(name, self._inode, length))

    def close(self) -> None:
        """Close the handle (no implicit fsync); closing twice is harmless."""
        with self._fs._lock:
            if not self._closed:
                self._closed = True
                self._fs._release(self._inode)


class _LiveFS:
    """Directory, images, handles and faults; subclasses decide what records mean."""

    def __init__(self, files: Mapping[str, bytes] | None = None) -> None:
        self._entries: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._images: dict[int, bytearray] = {}
        self._open_handles: dict[int, int] = {}
        self._next_inode = 1
        self._sync_count = 0
        self._lock = threading.RLock()
        self.faults = FaultPlan()
        for name, content in (files or {}).items():
            _check_name(name)
            self._link(name, self._new_inode(as_bytes(content)))

    # -- the trace hook ------------------------------------------------------------
    def _record(self, op: TraceOp) -> None:
        """Receive the record of a completed op; the live base class keeps none."""

    # -- fault injection -------------------------------------------------------------
    def fail_on(
        self,
        op: FaultOp,
        nth: int = 1,
        *,
        errno: int = EIO,
        persistent: bool = False,
        name: str | None = None,
    ) -> None:
        """Fail the ``nth`` matching call from now on; see :meth:`FaultPlan.fail_on`."""
        with self._lock:
            self.faults.fail_on(op, nth, errno=errno, persistent=persistent, name=name)

    def set_capacity(self, total_bytes: int | None) -> None:
        """Limit the sum of file sizes (None = unlimited); see :class:`FaultPlan`."""
        with self._lock:
            self.faults.set_capacity(total_bytes)

    def clear_faults(self) -> None:
        """Remove every injected fault and the capacity limit."""
        with self._lock:
            self.faults.clear_faults()

    # -- the filesystem protocol -----------------------------------------------------
    def open(self, name: str, *, create: bool = True) -> FSFile:
        """Open ``name``, creating it empty if missing and ``create`` is true.

        Raises:
            FileNotFoundError: ``name`` is missing and ``create`` is false.
            OSError: an injected ``open`` fault (nothing is created).
            ValueError: ``name`` is empty, ``.``/``..`` or contains ``/``.
        """
        with self._lock:
            _check_name(name)
            self.faults.check("open", (name,))
            inode = self._entries.get(name)
            if inode is None:
                if not create:
                    raise FileNotFoundError(ENOENT, "No such file", name)
                inode = self._new_inode(b"")
                self._link(name, inode)
                self._record(Create(name, inode))
            self._open_handles[inode] = self._open_handles.get(inode, 0) + 1
            return FSFile(self, inode, name)

    def exists(self, name: str) -> bool:
        """Whether ``name`` is in the directory."""
        with self._lock:
            return name in self._entries

    def listdir(self) -> list[str]:
        """All names in the directory, sorted."""
        with self._lock:
            return sorted(self._entries)

    def rename(self, src: str, dst: str) -> None:
        """Atomically move ``src`` to ``dst``, replacing any file named ``dst``.

        Raises:
            FileNotFoundError: ``src`` does not exist.
            OSError: an injected ``rename`` fault (nothing moves).
        """
        with self._lock:
            _check_name(src)
            _check_name(dst)
            self.faults.check("rename", (src, dst))
            inode = self._entries.get(src)
            if inode is None:
                raise FileNotFoundError(ENOENT, "No such file", src)
            if src == dst:
                return
            replaced = self._entries.get(dst)
            del self._entries[src]
            self._link(dst, inode)
            if replaced is not None:
                del self._names[replaced]
                self._release(replaced, closing=False)
            self._record(Rename(src, dst, inode))

    def unlink(self, name: str) -> None:
        """Remove ``name``; open handles keep working on the orphaned file.

        Raises:
            FileNotFoundError: ``name`` does not exist.
            OSError: an injected ``unlink`` fault (nothing is removed).
        """
        with self._lock:
            _check_name(name)
            self.faults.check("unlink", (name,))
            inode = self._entries.pop(name, None)
            if inode is None:
                raise FileNotFoundError(ENOENT, "No such file", name)
            del self._names[inode]
            self._release(inode, closing=False)
            self._record(Unlink(name, inode))

    def fsync_dir(self) -> None:
        """Make pending directory ops durable; a failed call is still traced."""
        with self._lock:
            try:
                self.faults.check("fsync_dir")
            except OSError:
                self._record(FsyncDir(ok=False))
                raise
            self._record(FsyncDir())
            self._sync_count += 1

    # -- inspection ------------------------------------------------------------------
    @property
    def sync_count(self) -> int:
        """How many ``fsync``/``fsync_dir`` calls have returned successfully."""
        return self._sync_count

    def files(self) -> dict[str, bytes]:
        """Snapshot of the live directory: name -> content, in name order."""
        with self._lock:
            return {name: bytes(self._images[self._entries[name]]) for name in self.listdir()}

    # -- internals -------------------------------------------------------------------
    def _new_inode(self, content: bytes) -> int:
        inode = self._next_inode
        self._next_inode += 1
        self._images[inode] = bytearray(content)
        return inode

    def _link(self, name: str, inode: int) -> None:
        self._entries[name] = inode
        self._names[inode] = name

    def _release(self, inode: int, *, closing: bool = True) -> None:
        """Drop one handle (if ``closing``); free the image once unlinked and unopened."""
        if closing:
            self._open_handles[inode] -= 1
        if inode not in self._names and self._open_handles.get(inode, 0) == 0:
            self._images.pop(inode, None)
            self._open_handles.pop(inode, None)

    def _check_growth(self, growth: int, name: str) -> None:
        if growth > 0:
            used = sum(len(image) for image in self._images.values())
            self.faults.check_capacity(used, growth, name)


class MemoryFS(_LiveFS):
    """An in-memory flat directory with no crash semantics: every op is durable at once.

    Args:
        files: initial content, name -> bytes.

    Supports fault injection via :meth:`fail_on`, :meth:`set_capacity` and
    :meth:`clear_faults` (also reachable as ``fs.faults``).
    """

    def __repr__(self) -> str:
        return f"<MemoryFS {len(self._entries)} files>"
