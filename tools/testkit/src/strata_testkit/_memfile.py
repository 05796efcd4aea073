"""A standalone in-memory file for tests that need one file and no directory.

Theory of operation
-------------------
:class:`MemoryFile` is the file protocol (see :mod:`strata_testkit._protocols`) over one
private ``bytearray``. There is no page cache and no power loss: every write is durable
the moment it returns, so ``fsync`` only checks that the file is open. Use it for codec and
log tests that want a file-shaped object; use :class:`~strata_testkit.MemoryFS` when the
code under test opens files by name, and :class:`~strata_testkit.CrashFS` when it must
survive power loss.

After :meth:`MemoryFile.close` every method except ``close`` and ``getvalue`` raises
``ValueError``, like a closed Python file; ``getvalue`` stays available so a test can
inspect what the code under test left behind.
"""

from __future__ import annotations

from strata_testkit._image import as_bytes, read_at, truncate_to, write_at

__all__ = ["MemoryFile"]


class MemoryFile:
    """An in-memory file implementing the Strata file protocol.

    Args:
        initial: the file's starting content.
    """

    __slots__ = ("_closed", "_image")

    def __init__(self, initial: bytes = b"") -> None:
        self._image = bytearray(as_bytes(initial))
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<MemoryFile {state} size={len(self._image)}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("I/O operation on closed file")

    def pread(self, size: int, offset: int) -> bytes:
        """Read up to ``size`` bytes at ``offset``.

        Returns:
            The bytes; short at EOF and ``b""`` at or beyond it.

        Raises:
            ValueError: the file is closed, or ``size``/``offset`` is negative.
        """
        self._check_open()
        return read_at(self._image, size, offset)

    def pwrite(self, data: bytes | bytearray | memoryview, offset: int) -> int:
        """Write all of ``data`` at ``offset``, zero-filling any gap past EOF.

        Returns:
            ``len(data)`` in bytes.

        Raises:
            ValueError: the file is closed, or ``offset`` is negative.
            TypeError: ``data`` is not bytes-like.
        """
        self._check_open()
        payload = as_bytes(data)
        write_at(self._image, payload, offset)
        return len(payload)

    def fsync(self) -> None:
        """Do nothing but check the file is open: memory is always durable here."""
        self._check_open()

    def size(self) -> int:
        """Return the current length in bytes."""
        self._check_open()
        return len(self._image)

    def truncate(self, length: int) -> None:
        """Shrink to ``length`` bytes, or zero-extend up to it."""
        self._check_open()
        truncate_to(self._image, length)

    def close(self) -> None:
        """Close the file; closing twice is harmless."""
        self._closed = True

    def getvalue(self) -> bytes:
        """Return the whole content (allowed after close)."""
        return bytes(self._image)
