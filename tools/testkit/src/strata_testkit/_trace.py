"""The operation records a :class:`~strata_testkit.CrashFS` writes into its trace.

Theory of operation
-------------------
Every state-changing call on a ``CrashFS`` appends one immutable record, in issue order,
to ``fs.trace``; reads are not recorded. The trace is the whole input of crash
simulation: together with the filesystem's initial (durable) files it determines every
state power loss could leave (see :mod:`strata_testkit._crashmodel`).

Files are tracked by *inode*, not by name. ``file`` is the name the file had when the op
was issued (for people reading the trace); ``inode`` is the identity replay uses, so a
write through a handle keeps hitting the same file after a rename or unlink, exactly as
on POSIX, and a name reused by a new file never inherits the old file's writes.

======================  ===========  =================================================
record                  class        made durable by
======================  ===========  =================================================
``Write``               data op      a later successful ``Fsync`` of the same inode
``Truncate``            data op      a later successful ``Fsync`` of the same inode
``Create``              dir op       a later successful ``FsyncDir``
``Rename``              dir op       a later successful ``FsyncDir``
``Unlink``              dir op       a later successful ``FsyncDir``
``Fsync``/``FsyncDir``  barrier      (``ok=False`` records a call that raised)
======================  ===========  =================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

__all__ = [
    "DATA_OPS",
    "DIR_OPS",
    "Create",
    "Fsync",
    "FsyncDir",
    "Rename",
    "TraceOp",
    "Truncate",
    "Unlink",
    "Write",
]

_PREVIEW_BYTES = 16


@dataclass(frozen=True, repr=False)
class Write:
    """``pwrite(data, offset)`` on the file with identity ``inode``."""

    kind: ClassVar[str] = "write"
    file: str
    inode: int
    offset: int
    data: bytes

    @property
    def end(self) -> int:
        """The offset just past the last written byte."""
        return self.offset + len(self.data)

    def __repr__(self) -> str:
        preview = self.data[:_PREVIEW_BYTES]
        more = "..." if len(self.data) > _PREVIEW_BYTES else ""
        return (
            f"Write(file={self.file!r}, inode={self.inode}, offset={self.offset}, "
            f"size={len(self.data)}, data={preview!r}{more})"
        )


@dataclass(frozen=True)
class Truncate:
    """``truncate(length)`` on the file with identity ``inode``."""

    kind: ClassVar[str] = "truncate"
    file: str
    inode: int
    length: int


@dataclass(frozen=True)
class Fsync:
    """``fsync()`` of one file; ``ok`` is False when the call raised."""

    kind: ClassVar[str] = "fsync"
    file: str
    inode: int
    ok: bool = True


@dataclass(frozen=True)
class Create:
    """``open(name, create=True)`` of a name that did not exist."""

    kind: ClassVar[str] = "create"
    file: str
    inode: int


@dataclass(frozen=True)
class Rename:
    """``rename(src, dst)``: moves ``inode`` to ``dst``, replacing what ``dst`` named."""

    kind: ClassVar[str] = "rename"
    src: str
    dst: str
    inode: int


@dataclass(frozen=True)
class Unlink:
    """``unlink(name)`` of the file with identity ``inode``."""

    kind: ClassVar[str] = "unlink"
    file: str
    inode: int


@dataclass(frozen=True)
class FsyncDir:
    """``fsync_dir()``; ``ok`` is False when the call raised."""

    kind: ClassVar[str] = "fsync_dir"
    ok: bool = True


TraceOp: TypeAlias = Write | Truncate | Fsync | Create | Rename | Unlink | FsyncDir
DATA_OPS: tuple[type[Write], type[Truncate]] = (Write, Truncate)
DIR_OPS: tuple[type[Create], type[Rename], type[Unlink]] = (Create, Rename, Unlink)
