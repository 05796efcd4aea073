"""PageStore: the public face of page-db, wiring file, pool, allocator and checkpoints.

Here live the constructors (creating a new file atomically, opening and validating an
existing one), page allocation and freeing, statistics and closing. Shadow paging — where
dirty pages are written, how pages are read back, checkpoints and compaction — is the
layer below, :class:`~page_db._shadow.ShadowPagedPool` in ``_shadow``, which this class
extends; it carries the theory of operation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

from . import _layout as L
from ._fileio import FileIO, MemoryFile, OsFile, fsync_directory
from ._freeids import FreeIds
from ._load import initial_image, load_checkpoint
from ._pagefile import PageFile
from ._replacer import Replacer, make_replacer
from ._shadow import ShadowPagedPool
from ._slots import SlotSpace
from .errors import PageError, PageUsageError, StoreClosedError

__all__ = ["PageStore", "DEFAULT_POOL_PAGES"]

DEFAULT_POOL_PAGES = 2048
ReplacerSpec = Literal["clock", "lru"] | Callable[[int], Replacer]


class PageStore(ShadowPagedPool):
    """Checksummed pages in one file, with a buffer pool and atomic checkpoints.

    Create one with :meth:`open`, :meth:`open_file` or :meth:`memory`. Safe to share
    between threads; see the module docs of ``page_db`` for what guards do and do not latch.
    """

    def __init__(
        self,
        file: FileIO,
        *,
        page_size: int = L.DEFAULT_PAGE_SIZE,
        pool_pages: int = DEFAULT_POOL_PAGES,
        replacer: ReplacerSpec = "clock",
        direct_io: bool = False,
        direct_io_fallback: str | None = None,
        read_only: bool = False,
    ):
        """Prefer :meth:`open`, :meth:`open_file` or :meth:`memory`; arguments as there."""
        _check_page_size(page_size)
        super().__init__(pool_pages, page_size, make_replacer(replacer, pool_pages))
        self._read_only = read_only
        self._pages = PageFile(file, page_size)
        self._page_size = page_size
        self._direct_io = direct_io
        self._direct_io_fallback = direct_io_fallback
        self._checkpoints = 0
        if file.size() == 0:
            if read_only:
                raise PageUsageError("cannot open an empty file read-only: nothing to read")
            self._pages.write(0, initial_image(page_size))
            self._pages.sync()
        loaded = load_checkpoint(self._read_any, file.size(), page_size)
        sb = loaded.superblock
        self._seq = sb.seq
        self._meta = sb.meta
        self._page_table = loaded.page_table
        self._free_ids = FreeIds(loaded.free_ids, loaded.free_list_slots)
        self._slots = SlotSpace(loaded.in_use, sb.slot_count)
        self._zero_page = bytes(page_size)

    # --- constructors ------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        page_size: int = L.DEFAULT_PAGE_SIZE,
        pool_pages: int = DEFAULT_POOL_PAGES,
        direct_io: bool = False,
        replacer: ReplacerSpec = "clock",
        read_only: bool = False,
    ) -> PageStore:
        """Open the store at ``path``, creating it (atomically) if it does not exist.

        Args:
            path: the store's file.
            page_size: a power of two from 4096 to 65536; must match an existing file.
            pool_pages: buffer pool capacity in pages.
            direct_io: use ``O_DIRECT``; where the filesystem refuses it the store falls
                back to buffered I/O, warns nothing, and reports it in :meth:`stats`
                (``direct_io`` False, ``direct_io_fallback`` the reason).
            replacer: ``"clock"`` (default), ``"lru"``, or a factory taking the capacity.
            read_only: open an existing store for inspection, without the writer's lock,
                so it works while another process has the store open for writing. The
                reader sees the checkpoint that was newest when it opened; ``write``,
                ``allocate``, ``free`` and ``checkpoint`` raise :class:`PageUsageError`.
                Once the writer has checkpointed twice more, pages it has since reused
                raise :class:`CorruptPageError` (never newer data): reopen to catch up.

        Returns:
            The open store, at its last durable checkpoint.

        Raises:
            PageSizeMismatchError: the file has another page size.
            CorruptPageError: the file fails validation (no valid superblock, a corrupt
                page table or free list, truncation).
            StoreLockedError: another open store holds the file.
            PageUsageError: an invalid ``page_size`` or ``pool_pages``.
            OSError: the file cannot be opened or read.
        """
        _check_page_size(page_size)
        path = os.fspath(path)
        if not read_only and not os.path.exists(path):
            _create(path, page_size)
        file = OsFile(path, direct=direct_io, read_only=read_only)
        try:
            return cls(
                file,
                page_size=page_size,
                pool_pages=pool_pages,
                replacer=replacer,
                direct_io=file.direct_io,
                direct_io_fallback=file.fallback_reason,
                read_only=read_only,
            )
        except BaseException:
            file.close()
            raise

    @classmethod
    def open_file(
        cls,
        file: FileIO,
        *,
        page_size: int = L.DEFAULT_PAGE_SIZE,
        pool_pages: int = DEFAULT_POOL_PAGES,
        replacer: ReplacerSpec = "clock",
        read_only: bool = False,
    ) -> PageStore:
        """Open a store on any :class:`FileIO` (an empty file is initialised in place).

        Used by tests to run the store on a crash-simulating or fault-injecting file.
        Initialising in place is not atomic — a crash during it leaves a file that fails
        to open — so callers that create files should do as :meth:`open` does (write
        aside, fsync, rename, fsync the directory). Arguments, return value and errors
        as for :meth:`open`.
        """
        return cls(
            file,
            page_size=page_size,
            pool_pages=pool_pages,
            replacer=replacer,
            read_only=read_only,
        )

    @classmethod
    def memory(
        cls, page_size: int = L.DEFAULT_PAGE_SIZE, *, pool_pages: int = DEFAULT_POOL_PAGES
    ) -> PageStore:
        """A store held in memory (for tests and caches); checkpoints work as on disk."""
        return cls(MemoryFile(), page_size=page_size, pool_pages=pool_pages)

    def _read_any(self, slot: int, page_size: int) -> bytes:
        """Read a slot of any page size: opening probes for a page-size mismatch."""
        if page_size == self._page_size:
            return self._pages.read(slot)
        return self._pages.file.pread(page_size, slot * page_size)

    # --- pages ---------------------------------------------------------------------------
    def allocate(self) -> int:
        """Allocate a page id whose payload is all zeros (LSN 0).

        Returns the smallest free id, or a new one past the highest. The page is part of
        the store from now on; it becomes durable with the next checkpoint.

        Raises:
            PoolExhaustedError: every frame is pinned, so the new page has nowhere to go.
            PageError: the store is closed or poisoned, or 2**32 - 1 ids are in use.
        """
        with self._lock:
            self._check_writable()
            fresh = not self._empty and len(self._frames) < self._capacity
            frame = self._take_frame()
            if not fresh:  # a new frame's buffer is zeros already; a reused one is not
                frame.buf[:] = self._zero_page
            if self._free_ids:
                page_id = self._free_ids.pop()
            elif self._page_table.next_page_id > L.MAX_PAGE_ID:
                self._empty.append(frame)
                raise PageError("page ids exhausted (2**32 - 1 pages)")
            else:
                page_id = self._page_table.grow()
            self._install(frame, page_id)
            frame.dirty = True
            return page_id

    def free(self, page_id: int) -> None:
        """Return ``page_id`` to the free list; its contents are discarded.

        Raises:
            InvalidPageIdError: ``page_id`` is not allocated.
            PageUsageError: the page is pinned by an open guard.
        """
        with self._lock:
            self._check_writable()
            self._check_allocated(page_id)
            frame = self._resident.get(page_id)
            if frame is not None:
                if frame.pinned:
                    raise PageUsageError(f"page {page_id} is pinned by an open guard")
                self._uninstall(frame)
            slot = self._page_table.entries[page_id]
            if slot:
                self._page_table.set(page_id, 0)
                self._slots.release(slot)
            self._free_ids.push(page_id)

    # --- information and lifetime --------------------------------------------------------
    @property
    def meta(self) -> bytes:
        """The ``meta`` bytes of the last durable checkpoint (``b""`` for a new store)."""
        return self._meta

    @property
    def page_size(self) -> int:
        """Page size in bytes, header included; payloads are ``page_size - 32`` bytes."""
        return self._page_size

    @property
    def payload_size(self) -> int:
        """Usable bytes per page: ``page_size - PAGE_HEADER_SIZE``."""
        return self._page_size - L.PAGE_HEADER_SIZE

    @property
    def pool_pages(self) -> int:
        """The buffer pool's capacity in frames, as opened (since 1.3); O(1), unlike
        ``stats()["pool_capacity"]``, which also walks the resident frames."""
        return self._capacity

    def stats(self) -> dict[str, Any]:
        """Counters and sizes, for metrics and debugging.

        Returns:
            A dict with ``page_size``, ``pages`` (allocated ids), ``free_ids``,
            ``slots`` (physical slots in the file's high-water), ``free_slots``,
            ``checkpoint_seq``, pool figures ``pool_capacity``, ``pool_resident``,
            ``pool_pinned``, ``pool_dirty``, ``pool_deferred`` (since 1.5: pages
            with a deferred write pending), ``hits``, ``misses``, ``evictions``, I/O
            counts ``page_reads``, ``page_writes``, ``fsyncs``, ``checkpoints``, and
            ``direct_io`` / ``direct_io_fallback`` (why O_DIRECT is off, if asked for).
        """
        with self._lock:
            resident = list(self._resident.values())
            return {
                "page_size": self._page_size,
                "pages": self._page_table.next_page_id - 1 - len(self._free_ids),
                "free_ids": len(self._free_ids),
                "slots": self._slots.slot_count,
                "free_slots": self._slots.free_count,
                "checkpoint_seq": self._seq,
                "pool_capacity": self._capacity,
                "pool_resident": len(resident),
                "pool_pinned": sum(1 for f in resident if f.pinned),
                "pool_dirty": sum(1 for f in resident if f.dirty),
                "pool_deferred": len(self._deferred),
                "hits": self._hits,
                "misses": self._misses,
                "evictions": self._evictions,
                "page_reads": self._pages.pages_read,
                "page_writes": self._pages.pages_written,
                "fsyncs": self._pages.fsyncs,
                "checkpoints": self._checkpoints,
                "read_only": self._read_only,
                "direct_io": self._direct_io,
                "direct_io_fallback": self._direct_io_fallback,
            }

    def close(self) -> None:
        """Close the file and release the buffer pool's memory (since 1.3 at once, even
        while the store object is still referenced). Changes since the last checkpoint
        are discarded. Idempotent."""
        with self._lock:
            if isinstance(self._failure, StoreClosedError):
                return
            self._failure = StoreClosedError("the page store is closed")
            # Release the pool now, not when the store object goes: drop the frames and
            # break each frame <-> guard cycle, so reference counting frees the buffers
            # without waiting for a garbage collection.
            for frame in self._frames:
                frame.extra = frame.settle = None
                del frame.reader, frame.writer
            self._frames = []
            self._deferred.clear()
            self._empty.clear()
            self._resident.clear()
            self._pages.close()

    def __enter__(self) -> PageStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_page_size(page_size: int) -> None:
    if page_size not in L.VALID_PAGE_SIZES:
        raise PageUsageError(
            f"page_size must be a power of two from {L.MIN_PAGE_SIZE} to {L.MAX_PAGE_SIZE}, "
            f"got {page_size!r}"
        )


def _create(path: str, page_size: int) -> None:
    """Create a new store file atomically: write beside it, fsync, rename, fsync the dir."""
    temp = f"{path}.creating"
    file = OsFile(temp)
    try:
        file.truncate(0)
        file.pwrite(initial_image(page_size), 0)
        file.fsync()
    finally:
        file.close()
    os.replace(temp, path)
    fsync_directory(os.path.dirname(os.path.abspath(path)))
