"""Shadow paging: where dirty pages are written, how pages are read back, and checkpoints.

:class:`ShadowPagedPool` supplies the buffer pool's page loading and write-back
(:class:`~page_db._pool.BufferPool`) and commits checkpoints; :class:`~page_db.PageStore`
extends it with the constructors, allocation and lifetime.

Theory of operation (shadow paging)
-----------------------------------
The layer above addresses *logical* page ids and updates pages in place through guards.
Underneath, a page table maps each id to a physical *slot*, and a page is never written
over the copy the last durable checkpoint references:

* A dirty page leaving the pool (eviction, or a checkpoint) goes to its current slot if
  that slot was written after the last checkpoint (no durable state points there), and
  otherwise to a fresh slot; the old slot is *released*, but stays untouchable until the
  next checkpoint is durable, because the durable superblock still references it.
* ``checkpoint(meta)`` settles every deferred write (see ``_pool``), then writes every
  dirty page, the changed page-table pages and the free list (each to fresh slots),
  fsyncs, then writes the superblock slot ``seq % 2`` with the new roots and ``meta`` and
  fsyncs again. The second fsync is the commit point; before it, the previous checkpoint
  is intact, after it, the new one is.
* Every page written between checkpoints ``S`` and ``S+1`` carries epoch ``S+1`` in its
  header. Reading a slot the durable checkpoint references demands ``epoch <= S``.

A write or fsync that fails poisons the store (:class:`StorePoisonedError`): the kernel
may have dropped the data, and only a reopen — back to the last durable checkpoint — tells
the truth. Reads that fail just raise.

Physical free space is not stored: on open every slot the checkpoint does not reference
is free. The file grows as needed and never shrinks in format 1.
"""

from __future__ import annotations

from . import _codec
from . import _layout as L
from ._compact import move_pages_down
from ._freeids import FreeIds
from ._pagefile import PageFile
from ._pagetable import PageTable
from ._pool import BufferPool, Frame
from ._slots import SlotSpace
from .errors import CorruptPageError, InvalidPageIdError, PageUsageError, StorePoisonedError

__all__ = ["ShadowPagedPool"]

_RUN_PAGES = 256  # contiguous pages written with one pwrite during a checkpoint


class ShadowPagedPool(BufferPool):
    """A buffer pool over shadow-paged slots, with atomic checkpoints.

    The store's constructor sets the attributes declared here from the loaded checkpoint.
    """

    _pages: PageFile
    _seq: int  # sequence of the last durable checkpoint
    _meta: bytes
    _page_table: PageTable
    _free_ids: FreeIds
    _slots: SlotSpace
    _checkpoints: int  # checkpoints committed since opening

    # --- checkpoints ---------------------------------------------------------------------
    def checkpoint(self, meta: bytes = b"") -> None:
        """Make every change since the last checkpoint durable, all or nothing, with ``meta``.

        Settles every deferred write (:meth:`defer`) and waits for write guards other
        threads hold to close. After a crash at any moment the store reopens at either
        the previous checkpoint or this one, never a mix.

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
            self._quiesce()
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
            self._quiesce()
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

    def _quiesce(self) -> None:
        """With the lock held: settle every deferred write and wait for other threads'
        write guards, until both hold at once (each wait releases the lock, and another
        thread may defer a page or open a guard meanwhile)."""
        while True:
            self._settle_all()
            self._wait_for_writers()
            self._check_open()
            if not self._deferred:
                return

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
