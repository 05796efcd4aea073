"""The buffer pool: frames, pins, dirty tracking, page guards and the ``extra`` slot.

Theory of operation
-------------------
A frame is a fixed ``bytearray`` of one page (header included) plus bookkeeping: the
logical page it holds, a pin count, a dirty flag and ``extra`` — an object the layer
above may hang on the frame (its decoded node), dropped whenever the page is opened for
writing or leaves the pool. Frames are created lazily up to ``capacity``; after that a
miss evicts the victim the replacement policy picks among unpinned frames, writing it back
first if it is dirty. If every frame is pinned the miss raises
:class:`~page_db.errors.PoolExhaustedError` at once: waiting could deadlock a caller that
holds the pins itself.

Guards. ``store.read(pid)`` and ``store.write(pid)`` pin the page and return one of its
frame's two guards (``_guards``); leaving the ``with`` block unpins it.

Latching. One lock guards the pool's structures (frame table, pins, policy, allocator)
and is held for a miss's I/O, which keeps the code simple and is cheap next to Python's
own costs. Guards do not latch page *contents*: two threads writing one page, or reading a
page another thread is writing, must be ordered by the layer above (index-db latches its
tree). The one content guarantee page-db gives is that a checkpoint waits until no write
guard is open, so it never captures a half-written page.

Deferred writes (since 1.5). A layer above that keeps a decoded form in ``extra`` may
change that object alone and let the page's bytes lag: ``defer(pid, settle)`` marks the
page dirty and records ``settle``, which writes the object's current state into the
payload. The pool calls it, with its lock held, before the bytes are next used: before a
guard or a patch on the page, before an eviction writes the page back, and at a
checkpoint or a compaction; then the page is an ordinary dirty page again. ``settle`` may
decline (return False) while another thread is changing the object; the pool then picks
another victim, or waits a millisecond with its lock released and asks again. So a page is
never written, or read through a guard, with bytes older than its object. This is
WiredTiger's reconciliation in miniature: a B+tree leaf that takes many puts between two
checkpoints is encoded once, not once per put.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from . import _layout as L
from ._fileio import Buffer
from ._guards import PageReadGuard, PageWriteGuard
from ._replacer import Replacer
from .errors import PageError, PageUsageError, PoolExhaustedError

__all__ = ["Frame", "BufferPool"]

_get_ident = threading.get_ident
_COMPACT_AFTER = 64  # pins taken on one frame before released ones are folded in
_SETTLE_WAIT = 0.001  # seconds to wait (pool lock released) after a ``settle`` declines

Settle = Callable[[memoryview], bool]
"""A deferred write's callback (see :meth:`BufferPool.defer`)."""


class Frame:
    """One page-sized buffer of the pool."""

    __slots__ = (
        "buf",
        "dirty",
        "extra",
        "index",
        "page_id",
        "pins",
        "reader",
        "settle",
        "unpins",
        "writer",
    )

    def __init__(self, index: int, page_size: int, pool: BufferPool):
        self.index = index
        self.page_id = 0
        self.buf = bytearray(page_size)
        # Pins taken (counted under the pool lock) and pins released by read guards. A
        # read guard's exit only appends to ``unpins`` — atomic in CPython, so the hot
        # path skips the lock; the frame is pinned while ``pins != len(unpins)``.
        self.pins = 0
        self.unpins: list[None] = []
        self.dirty = False
        self.extra: Any = None
        # A deferred write (``BufferPool.defer``): called before the bytes are used.
        self.settle: Settle | None = None
        body = memoryview(self.buf)[L.PAGE_HEADER_SIZE :]
        # One guard object of each kind per frame: a guard holds no state of its own
        # beyond its frame, so handing the same object out again costs no allocation.
        self.reader = PageReadGuard(pool, self, body.toreadonly())
        self.writer = PageWriteGuard(pool, self, body)

    @property
    def pinned(self) -> bool:
        """Whether any guard holds this frame (call with the pool lock held)."""
        return self.pins != len(self.unpins)

    def compact(self) -> None:
        """Fold released pins into the count (pool lock held) so ``unpins`` stays short."""
        released = len(self.unpins)
        del self.unpins[:released]
        self.pins -= released


class BufferPool(ABC):
    """Frame table and pinning; the store supplies page loading and write-back."""

    def __init__(self, capacity: int, page_size: int, replacer: Replacer):
        if capacity < 1:
            raise PageUsageError(f"pool_pages must be at least 1, got {capacity}")
        self._capacity = capacity
        self._page_size = page_size
        self._replacer = replacer
        self._touch = replacer.touch
        self._frames: list[Frame] = []
        self._empty: list[Frame] = []
        self._resident: dict[int, Frame] = {}
        self._deferred: set[Frame] = set()  # frames with a pending ``settle``
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._active_writers = 0
        self._checkpoint_waiters = 0  # threads in _wait_for_writers: only they need a notify
        self._writer_threads: dict[int, int] = {}
        self._failure: PageError | None = None  # set when closed or poisoned
        self._read_only = False
        self._hits = self._misses = self._evictions = 0

    # --- supplied by the store -------------------------------------------------------
    @abstractmethod
    def _read_page(self, page_id: int, buf: bytearray) -> None:
        """Fill ``buf`` with the validated page ``page_id`` (lock held)."""

    @abstractmethod
    def _write_back(self, frame: Frame) -> None:
        """Write the dirty ``frame`` to a slot the durable checkpoint does not use."""

    # --- frames ----------------------------------------------------------------------
    def read(self, page_id: int) -> PageReadGuard:
        """Pin a page for reading: ``with store.read(pid) as page:``.

        Args:
            page_id: an allocated page id.

        Returns:
            The page's read guard; ``page.payload`` is a read-only ``memoryview`` valid
            until the ``with`` block ends, which unpins the page.

        Raises:
            InvalidPageIdError: ``page_id`` is not allocated.
            TypeError: ``page_id`` is not an int.
            CorruptPageError: the page's bytes fail validation when read from the file.
            PoolExhaustedError: the page is not cached and every frame is pinned.
            StoreClosedError, StorePoisonedError: the store is closed or poisoned.
        """
        with self._lock:
            if self._failure is not None:
                raise self._failure
            frame = self._resident.get(page_id)
            if frame is None or frame.settle is not None:
                frame = self._frame(page_id)
            else:
                self._touch(frame.index)
                self._hits += 1
            frame.pins += 1
            if frame.pins > _COMPACT_AFTER:
                frame.compact()
            return frame.reader

    def cached_extra(self, page_id: int) -> Any:
        """The ``extra`` of ``page_id`` if the page is in the pool, else ``None``; no pin.

        A hot-path peek for the layer above: one lock round trip instead of a read guard's
        pin and unpin. It counts as a pool hit and refreshes the page for the replacement
        policy. Nothing stays pinned, so the page may leave the pool right after; the
        object returned is the caller's own, valid as the caller keeps it, but gives no
        access to the page's bytes (take a guard for those).

        Args:
            page_id: a page id; one not in the pool (or not allocated) gives ``None``.

        Returns:
            The object last stored in ``extra`` for this page, or ``None``.

        Raises:
            StoreClosedError, StorePoisonedError: the store is closed or poisoned.
        """
        with self._lock:
            if self._failure is not None:
                raise self._failure
            frame = self._resident.get(page_id)
            if frame is None:
                return None
            self._touch(frame.index)
            self._hits += 1
            return frame.extra

    def peek_extra(self, page_id: int) -> Any:
        """As :meth:`cached_extra` but lock-free: no lock, no pin, no policy touch, no hit.

        For a reader that validates what it gets (index-db's optimistic B+tree lookups).
        Under the GIL a dict lookup and two attribute reads are each atomic, but another
        thread may evict or reload pages between them, so in a rare race (the frame handed
        to another page and back between two bytecodes) the object returned may belong to
        another page: the caller must check it is the one for ``page_id`` (index-db's nodes
        record their page id). The use is invisible to the replacement policy; a caller
        that peeks at hot pages should take :meth:`cached_extra` or a guard now and then.

        Args:
            page_id: a page id; one not in the pool (or not allocated) gives ``None``.

        Returns:
            The object stored in ``extra`` for this page, or ``None``.

        Raises:
            StoreClosedError, StorePoisonedError: the store is closed or poisoned.
        """
        if self._failure is not None:
            raise self._failure
        frame = self._resident.get(page_id)
        if frame is None:
            return None
        extra = frame.extra
        if frame.page_id != page_id:
            return None
        return extra

    def write(self, page_id: int) -> PageWriteGuard:
        """Pin a page for writing: ``with store.write(pid) as page:``.

        Marks the page dirty and drops its ``extra`` at once; ``page.payload`` is a
        writable ``memoryview`` and ``page.lsn`` may be assigned. Args, Returns and
        Raises as for :meth:`read`.
        """
        with self._lock:
            frame = self._writable_frame(page_id)
            frame.dirty = True
            frame.extra = None
            frame.pins += 1
            self._active_writers += 1
            ident = _get_ident()
            writers = self._writer_threads
            writers[ident] = writers.get(ident, 0) + 1
            return frame.writer

    def patch(self, page_id: int, offset: int, data: Buffer) -> None:
        """Write ``data`` into the page's payload at ``offset`` (since 1.4): a small
        in-place change in one call, without a guard.

        The bytes are copied under the pool lock (no pin is needed: nothing can evict the
        page meanwhile, and a checkpoint sees the page before or after, never half), the
        page is marked dirty, and its LSN is kept. Unlike :meth:`write`, ``extra`` is
        *kept*: the caller changes its object to match the new bytes (index-db updates the
        decoded leaf whose value it overwrote). As with guards, page contents are not
        latched: the caller keeps other writers of the page away.

        Args:
            page_id: an allocated page id.
            offset: where in the payload the bytes go (0 is the payload's first byte).
            data: bytes-like; ``offset + len(data)`` must not pass the payload's end.

        Raises:
            PageUsageError: the range is outside the payload, or the store is read-only.
            TypeError: ``page_id`` or ``offset`` is not an int, or ``data`` not bytes-like.
            InvalidPageIdError, CorruptPageError, PoolExhaustedError, StoreClosedError,
            StorePoisonedError: as for :meth:`write`.
        """
        size = len(data) if type(data) is bytes else memoryview(data).nbytes
        if type(offset) is not int:
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        if offset < 0 or offset + size > self._page_size - L.PAGE_HEADER_SIZE:
            raise PageUsageError(
                f"patch of {size} bytes at offset {offset} is outside the "
                f"{self._page_size - L.PAGE_HEADER_SIZE}-byte payload"
            )
        with self._lock:
            frame = self._writable_frame(page_id)
            start = L.PAGE_HEADER_SIZE + offset
            frame.buf[start : start + size] = data
            frame.dirty = True

    def defer(self, page_id: int, settle: Settle) -> None:
        """Mark the page dirty now and have ``settle`` write its bytes later (since 1.5).

        For a layer above that keeps the page's decoded form in ``extra`` and changes that
        object alone (index-db's B+tree leaves take puts this way): the page's bytes may lag
        the object until ``settle(payload)`` writes them. The pool calls it with its lock
        held, and the page's writable payload, before the bytes are next used — a read or
        write guard on the page, a :meth:`patch`, a write-back on eviction, a checkpoint or
        a compaction — and then forgets it. ``settle`` returns True once the payload
        matches the object, or False to say "not now" (another thread is changing the
        object): the pool then picks another victim, or releases its lock for a
        millisecond and asks again. It must not call the store; an exception from it
        propagates to the caller of the operation that needed the page, and the page stays
        deferred. ``extra`` is kept. A page already deferred is settled first, so the newer
        callback replaces it only once the older one has run. Freeing the page, or closing
        the store, drops the callback uncalled.

        Args:
            page_id: an allocated page id.
            settle: ``settle(payload: memoryview) -> bool``, as above.

        Raises:
            TypeError: ``settle`` is not callable, or ``page_id`` is not an int.
            PageUsageError: the store is read-only.
            InvalidPageIdError, CorruptPageError, PoolExhaustedError, StoreClosedError,
            StorePoisonedError: as for :meth:`write`.
        """
        if not callable(settle):
            raise TypeError(f"settle must be callable, not {type(settle).__name__}")
        with self._lock:
            frame = self._writable_frame(page_id)
            frame.dirty = True
            frame.settle = settle
            self._deferred.add(frame)

    def _writable_frame(self, page_id: int) -> Frame:
        """The frame of ``page_id`` for a change, loaded on a miss (pool lock held)."""
        if self._failure is not None or self._read_only:
            self._check_writable()
        frame = self._resident.get(page_id)
        if frame is None or frame.settle is not None:
            return self._frame(page_id)
        self._touch(frame.index)
        self._hits += 1
        return frame

    def _frame(self, page_id: int) -> Frame:
        """The frame of ``page_id`` with its bytes current: loaded on a miss, its deferred
        write settled (waiting, lock released, while the settle declines). Lock held."""
        while True:
            frame = self._resident.get(page_id)
            if frame is None:
                frame = self._load(page_id)
                if frame.settle is None:
                    return frame
            if frame.settle is None or self._settle(frame):
                self._touch(frame.index)
                self._hits += 1
                return frame
            self._cond.wait(_SETTLE_WAIT)
            self._check_open()

    def _settle(self, frame: Frame) -> bool:
        """Run ``frame``'s deferred write (lock held); False if it declined for now."""
        settle = frame.settle
        if settle is None:
            return True
        if not settle(frame.writer.payload):
            return False
        frame.settle = None
        self._deferred.discard(frame)
        return True

    def _settle_all(self) -> None:
        """Settle every deferred page, waiting (lock released) while one declines."""
        while self._deferred:
            for frame in list(self._deferred):
                self._settle(frame)
            if self._deferred:
                self._cond.wait(_SETTLE_WAIT)
                self._check_open()

    def _load(self, page_id: int) -> Frame:
        frame = self._take_frame()
        other = self._resident.get(page_id)
        if other is not None:  # loaded by another thread while _take_frame waited
            self._empty.append(frame)
            return other
        try:
            self._read_page(page_id, frame.buf)
        except BaseException:
            self._empty.append(frame)
            raise
        self._install(frame, page_id)
        self._misses += 1
        return frame

    def _unpin_writer(self, frame: Frame) -> None:
        with self._lock:
            frame.pins -= 1
            self._active_writers -= 1
            ident = _get_ident()
            writers = self._writer_threads
            left = writers[ident] - 1
            if left:
                writers[ident] = left
            else:
                del writers[ident]
            if not self._active_writers and self._checkpoint_waiters:
                self._cond.notify_all()

    def _take_frame(self) -> Frame:
        """An empty frame: a never-used one, a released one, or an evicted victim."""
        if self._empty:
            return self._empty.pop()
        if len(self._frames) < self._capacity:
            frame = Frame(len(self._frames), self._page_size, self)
            self._frames.append(frame)
            return frame
        frames = self._frames
        declined: set[int] = set()  # frames whose deferred write said "not now"
        while True:
            index = self._replacer.victim(lambda i: not frames[i].pinned and i not in declined)
            if index is None:
                if not declined:
                    raise PoolExhaustedError(
                        f"all {self._capacity} buffer pool frames are pinned; "
                        "release page guards or open the store with a larger pool_pages"
                    )
                # Only pages another thread is changing (deferred writes that declined)
                # are left: give that thread a moment, then look again.
                self._cond.wait(_SETTLE_WAIT)
                self._check_open()
                if self._empty:
                    return self._empty.pop()
                declined.clear()
                continue
            victim = frames[index]
            if self._settle(victim):
                break
            declined.add(index)
        if victim.dirty:
            self._write_back(victim)
        self._evictions += 1
        self._uninstall(victim)
        return self._empty.pop()

    def _install(self, frame: Frame, page_id: int) -> None:
        frame.page_id = page_id
        frame.dirty = False
        frame.extra = None
        self._resident[page_id] = frame
        self._replacer.touch(frame.index)

    def _uninstall(self, frame: Frame) -> None:
        if frame.settle is not None:  # freed: the deferred bytes are not wanted
            frame.settle = None
            self._deferred.discard(frame)
        frame.compact()
        del self._resident[frame.page_id]
        self._replacer.remove(frame.index)
        frame.page_id = 0
        frame.dirty = False
        frame.extra = None
        self._empty.append(frame)

    def _wait_for_writers(self) -> None:
        """With the lock held: wait until no write guard is open (not one of ours)."""
        if threading.get_ident() in self._writer_threads:
            raise PageUsageError("checkpoint() called while this thread holds a write guard")
        self._checkpoint_waiters += 1
        try:
            self._cond.wait_for(lambda: self._active_writers == 0)
        finally:
            self._checkpoint_waiters -= 1

    def _check_open(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _check_writable(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._read_only:
            raise PageUsageError("the store was opened read-only")
