"""PageFile: whole-page positioned I/O over a :class:`~page_db.FileIO`.

The store never computes a byte offset itself: it reads and writes *slots* through this
class, which checks that every transfer is a whole number of pages at a page boundary (what
``O_DIRECT`` demands anyway) and counts the I/O for :meth:`PageStore.stats`.
"""

from __future__ import annotations

from ._fileio import Buffer, FileIO

__all__ = ["PageFile"]


class PageFile:
    """Slots of ``page_size`` bytes in one file.

    Args:
        file: the underlying file (real, in memory, or crash-simulating).
        page_size: bytes per slot.
    """

    def __init__(self, file: FileIO, page_size: int):
        self.file = file
        self.page_size = page_size
        self.pages_read = 0
        self.pages_written = 0
        self.fsyncs = 0

    def read(self, slot: int) -> bytes:
        """Read one slot; fewer than ``page_size`` bytes means the file ends inside it."""
        self.pages_read += 1
        return self.file.pread(self.page_size, slot * self.page_size)

    def write(self, slot: int, pages: Buffer) -> None:
        """Write one or more whole pages starting at ``slot``."""
        count, remainder = divmod(len(pages), self.page_size)
        if remainder or not count:
            raise ValueError(f"{len(pages)} bytes is not whole {self.page_size}-byte pages")
        self.file.pwrite(pages, slot * self.page_size)
        self.pages_written += count

    def sync(self) -> None:
        """fsync the file; raises ``OSError`` if the data may not be durable."""
        self.file.fsync()
        self.fsyncs += 1

    def slot_count(self) -> int:
        """Whole slots the file currently holds."""
        return self.file.size() // self.page_size

    def close(self) -> None:
        """Close the underlying file."""
        self.file.close()
