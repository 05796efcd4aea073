"""PageStore: the public face of page-db, wiring file, pool, allocator and checkpoints.

Theory of operation (shadow paging)
-----------------------------------
The layer above addresses *logical* page ids and updates pages in place through guards.
Underneath, a page table maps each id to a physical *slot*, and a page is never written
over the copy the last durable checkpoint references:

* A dirty page leaving the pool (eviction, or a checkpoint) goes to its current slot if
  that slot was written after the last checkpoint (no durable state points there), and
  otherwise to a fresh slot; the old slot is *released*, but stays untouchable until the
  next checkpoint is durable, because the durable superblock still references it.
* ``checkpoint(meta)`` writes every dirty page, the changed page-table pages and the
  free list (each to fresh slots), fsyncs, then writes the superblock slot
  ``seq % 2`` with the new roots and ``meta`` and fsyncs again. The second fsync is the
  commit point; before it, the previous checkpoint is intact, after it, the new one is.
* Every page written between checkpoints ``S`` and ``S+1`` carries epoch ``S+1`` in its
  header. Reading a slot the durable checkpoint references demands ``epoch <= S``.

A write or fsync that fails poisons the store (:class:`StorePoisonedError`): the kernel
may have dropped the data, and only a reopen — back to the last durable checkpoint — tells
the truth. Reads that fail just raise.

Physical free space is not stored: on open every slot the checkpoint does not reference
is free. The file grows as needed and never shrinks in format 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

from . import _codec
from . import _layout as L
from ._compact import move_pages_down
from ._fileio import FileIO, MemoryFile, OsFile, fsync_directory
from ._freeids import FreeIds
from ._load import initial_image, load_checkpoint
from ._pagefile import PageFile
from ._pool import BufferPool, Frame
from ._replacer import Replacer, make_replacer
from ._slots import SlotSpace
from .errors import (
    CorruptPageError,
    InvalidPageIdError,
    PageError,
    PageUsageError,
    StoreClosedError,
    StorePoisonedError,
)

__all__ = ["PageStore", "DEFAULT_POOL_PAGES"]

DEFAULT_POOL_PAGES = 2048
_RUN_PAGES = 256  # contiguous pages written with one pwrite during a checkpoint
ReplacerSpec = Literal["clock", "lru"] | Callable[[int], Replacer]


class PageStore(BufferPool):
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

    # --- checkpoints ---------------------------------------------------------------------
    def checkpoint(self, meta: bytes = b"") -> None:
        """Make every change since the last checkpoint durable, all or nothing, with ``meta``.

        Waits for write guards other threads hold to close. After a crash at any moment
        the store reopens at either the previous checkpoint or this one, never a mix.

        Args:
            meta: caller bytes stored in the superblock (at most ``page_size - 64``
                bytes), returned by :attr:`meta` after reopening.

        Raises:
            PageUsageError: ``meta`` is too large, or this thread holds a write guard.
            TypeError: ``meta`` is not bytes-like.
            StorePoisonedError: a write or fsync failed; the store must be reopened.
        """
        meta = self._checked_meta(meta)
        with self._lock:
            self._check_writable()
            self._wait_for_writers()
            self._check_open()
            try:
                self._checkpoint_locked(meta)
            except OSError as exc:
                raise self._poison("checkpoint", exc) from exc

    def compact(self, meta: bytes = b"") -> int:
        """A checkpoint that also moves pages down into free slots and cuts the file's
        free tail; returns the bytes the file shrank by.

        Pages are copied (copy on write, like every checkpoint) from the end of the file
        into the lowest free slots while a lower one is free; the superblock then records
        the new end, and once it is durable the file is truncated there. A slot the last
        checkpoint still references cannot take a page until this checkpoint commits, so
        space freed since that checkpoint is reclaimed by the next ``compact`` (strata's
        ``Database.compact`` checkpoints first). After a crash the store reopens at the
        previous checkpoint or this one, as with :meth:`checkpoint`; a crash after the
        commit but before the truncation leaves a longer file, which opens the same.

        Args:
            meta: as for :meth:`checkpoint`.

        Returns:
            File bytes released (0 when nothing could move).

        Raises:
            Same as :meth:`checkpoint`.
        """
        meta = self._checked_meta(meta)
        with self._lock:
            self._check_writable()
            self._wait_for_writers()
            self._check_open()
            before = self._pages.file.size()
            try:
                self._checkpoint_locked(meta, compact=True)
                end = self._slots.slot_count * self._page_size
                if end < before:
                    self._pages.file.truncate(end)
                    self._pages.sync()
            except OSError as exc:
                raise self._poison("compacting", exc) from exc
            return max(0, before - self._pages.file.size())

    def _checked_meta(self, meta: object) -> bytes:
        """``meta`` as bytes, or TypeError / PageUsageError (too large)."""
        if not isinstance(meta, bytes | bytearray | memoryview):
            raise TypeError(f"meta must be bytes, not {type(meta).__name__}")
        meta = bytes(meta)
        if len(meta) > L.max_meta_size(self._page_size):
            raise PageUsageError(
                f"meta is {len(meta)} bytes; at most {L.max_meta_size(self._page_size)} fit"
            )
        return meta

    def _checkpoint_locked(self, meta: bytes, *, compact: bool = False) -> None:
        self._flush_dirty_frames()
        above = (
            move_pages_down(
                self._slots,
                self._page_table,
                self._read_page,
                self._pages.write,
                self._page_size,
                self._seq + 1,
            )
            if compact
            else None
        )
        free_head = self._free_ids.persist(
            self._page_size,
            self._seq + 1,
            self._slots.allocate,
            self._slots.release,
            self._pages.write,
            above=above,
        )
        root, depth = self._page_table.persist(self._write_table_page, above=above)
        self._pages.sync()
        seq = self._seq + 1
        slot_count = self._slots.high_water() if compact else self._slots.slot_count
        sb = _codec.Superblock(
            seq,
            self._page_size,
            slot_count,
            self._page_table.next_page_id,
            root,
            depth,
            free_head,
            len(self._free_ids),
            meta,
        )
        slot = seq % 2
        self._pages.write(slot, _codec.encode_superblock(sb, slot))
        self._pages.sync()
        # Committed: the new checkpoint is durable. Publish it in memory.
        self._slots.commit()
        if compact:
            self._slots.shrink(slot_count)
        self._seq = seq
        self._meta = meta
        self._checkpoints += 1

    def _flush_dirty_frames(self) -> None:
        dirty = sorted((frame for frame in self._frames if frame.dirty), key=lambda f: f.page_id)
        placed = sorted(zip(map(self._place, [f.page_id for f in dirty]), dirty, strict=True))
        run: list[bytearray] = []
        run_start = 0
        seal, data_type, epoch = _codec.seal_page, L.PAGE_TYPE_DATA, self._seq + 1
        for slot, frame in placed:
            seal(frame.buf, data_type, frame.page_id, epoch)
            if run and (slot != run_start + len(run) or len(run) == _RUN_PAGES):
                self._write_run(run_start, run)
                run = []
            if not run:
                run_start = slot
            run.append(frame.buf)
            frame.dirty = False
        if run:
            self._write_run(run_start, run)

    def _write_run(self, first_slot: int, pages: list[bytearray]) -> None:
        self._pages.write(first_slot, pages[0] if len(pages) == 1 else b"".join(pages))

    def _write_table_page(self, level: int, entries: list[int], old_slot: int) -> int:
        if old_slot:
            self._slots.release(old_slot)
        slot = self._slots.allocate()
        page = _codec.encode_page_table_page(self._page_size, slot, self._seq + 1, level, entries)
        self._pages.write(slot, page)
        return slot

    # --- slots and pages -----------------------------------------------------------------
    def _place(self, page_id: int) -> int:
        """The slot a dirty page is written to: in place if not durable, else a fresh one."""
        slot = self._page_table.entries[page_id]
        if slot and not self._slots.is_durable(slot):
            return slot
        new_slot = self._slots.allocate()
        if slot:
            self._slots.release(slot)
        self._page_table.set(page_id, new_slot)
        return new_slot

    def _read_any(self, slot: int, page_size: int) -> bytes:
        """Read a slot of any page size: opening probes for a page-size mismatch."""
        if page_size == self._page_size:
            return self._pages.read(slot)
        return self._pages.file.pread(page_size, slot * page_size)

    def _read_page(self, page_id: int, buf: bytearray) -> None:
        self._check_allocated(page_id)
        slot = self._page_table.entries[page_id]
        if not slot:  # an allocated page is resident until written, so this is a bug
            raise CorruptPageError("allocated page has no slot", page_id=page_id)
        data = self._pages.read(slot)
        max_epoch = self._seq if self._slots.is_durable(slot) else self._seq + 1
        _codec.check_page(
            data,
            page_size=self._page_size,
            page_type=L.PAGE_TYPE_DATA,
            page_id=page_id,
            max_epoch=max_epoch,
            slot=slot,
            logical=True,
        )
        buf[:] = data

    def _write_back(self, frame: Frame) -> None:
        try:
            slot = self._place(frame.page_id)
            _codec.seal_page(frame.buf, L.PAGE_TYPE_DATA, frame.page_id, self._seq + 1)
            self._pages.write(slot, frame.buf)
        except OSError as exc:
            raise self._poison("evicting a dirty page", exc) from exc
        frame.dirty = False

    def _check_allocated(self, page_id: int) -> None:
        if type(page_id) is not int:
            raise TypeError(f"page id must be an int, not {type(page_id).__name__}")
        if not 0 < page_id < self._page_table.next_page_id or page_id in self._free_ids:
            raise InvalidPageIdError(f"page {page_id} is not allocated")

    def _poison(self, during: str, exc: OSError) -> StorePoisonedError:
        error = StorePoisonedError(
            f"I/O failed while {during} ({exc}); reopen the store to return to its last "
            "durable checkpoint"
        )
        self._failure = error
        return error

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
            ``pool_pinned``, ``pool_dirty``, ``hits``, ``misses``, ``evictions``, I/O
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
                frame.extra = None
                del frame.reader, frame.writer
            self._frames = []
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
