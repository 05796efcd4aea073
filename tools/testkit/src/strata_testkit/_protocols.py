"""The file-I/O seam every Strata engine talks through, as structural types.

Theory of operation
-------------------
Strata engines never call ``os`` directly: they take a *filesystem* object (one flat
directory) and the *file* objects it opens, and use only the methods below. Anything with
these methods fits -- the engines' real ``os``-backed shim, :class:`~strata_testkit.MemoryFS`
or :class:`~strata_testkit.CrashFS` -- so the kit needs no import of any engine package and
the engines need no import of the kit. The protocols are ``runtime_checkable`` so a test can
assert that a shim fits the seam (which checks method names, not signatures).

File contract (positional I/O, no cursor):

========================  ===============================================================
``pread(size, offset)``   up to ``size`` bytes at ``offset``; short at EOF, ``b""`` beyond it
``pwrite(data, offset)``  writes every byte, zero-fills any gap past EOF, returns ``len``
``fsync()``               makes this file's earlier data ops durable
``size()``                current length in bytes
``truncate(length)``      shrinks, or zero-extends, to ``length``
``close()``               releases the handle; later calls raise ``ValueError``
========================  ===============================================================

Directory contract: ``open`` (creating a file is a directory op), ``exists``, ``listdir``
(sorted), ``rename`` (atomic replace, a directory op), ``unlink`` (a directory op) and
``fsync_dir`` (makes the pending directory ops durable).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["FileProtocol", "FileSystemProtocol"]


@runtime_checkable
class FileProtocol(Protocol):
    """One open file, addressed by absolute offsets."""

    def pread(self, size: int, offset: int) -> bytes: ...

    def pwrite(self, data: bytes | bytearray | memoryview, offset: int) -> int: ...

    def fsync(self) -> None: ...

    def size(self) -> int: ...

    def truncate(self, length: int) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class FileSystemProtocol(Protocol):
    """One flat directory of files."""

    def open(self, name: str, *, create: bool = True) -> FileProtocol: ...

    def exists(self, name: str) -> bool: ...

    def listdir(self) -> list[str]: ...

    def rename(self, src: str, dst: str) -> None: ...

    def unlink(self, name: str) -> None: ...

    def fsync_dir(self) -> None: ...
