"""page-db: checksummed fixed-size pages, a buffer pool, an allocator and atomic checkpoints.

Quick start::

    from page_db import PageStore

    with PageStore.open("data.pages") as store:
        pid = store.allocate()
        with store.write(pid) as page:
            page.payload[:5] = b"hello"
        store.checkpoint(meta=b"root=%d" % pid)   # durable, all or nothing

    with PageStore.open("data.pages") as store:
        with store.read(pid) as page:
            assert bytes(page.payload[:5]) == b"hello"

Layers in this package (each module opens with its theory of operation):
``_layout`` (byte widths), ``_codec`` (pure page encode/decode), ``_fileio`` (the one I/O
seam), ``_replacer`` (clock/LRU), ``_pool`` (frames, pins, deferred writes), ``_guards``
(page guards), ``_pagetable`` and ``_load`` (the persistent page table and validated open),
``_shadow`` (shadow-paged writes and checkpoints), ``_store`` (wiring). The frozen surface
is listed in ``docs/API.md``; bytes in ``docs/FORMAT.md``.
"""

from ._fileio import FileIO, MemoryFile, OsFile
from ._guards import PageReadGuard, PageWriteGuard
from ._layout import (
    DEFAULT_PAGE_SIZE,
    FORMAT_VERSION,
    MAX_PAGE_SIZE,
    MIN_PAGE_SIZE,
    PAGE_HEADER_SIZE,
    PageId,
)
from ._replacer import ClockReplacer, LruReplacer, Replacer
from ._store import DEFAULT_POOL_PAGES, PageStore
from ._version import __version__
from .errors import (
    CorruptPageError,
    InvalidPageIdError,
    PageError,
    PageSizeMismatchError,
    PageUsageError,
    PoolExhaustedError,
    StoreClosedError,
    StoreLockedError,
    StorePoisonedError,
)

__all__ = [
    "__version__",
    # the store and its guards
    "PageStore",
    "PageReadGuard",
    "PageWriteGuard",
    "PageId",
    # files and replacement policies (the seams tests and tuning plug into)
    "FileIO",
    "OsFile",
    "MemoryFile",
    "Replacer",
    "ClockReplacer",
    "LruReplacer",
    # constants
    "FORMAT_VERSION",
    "PAGE_HEADER_SIZE",
    "MIN_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_POOL_PAGES",
    # errors
    "PageError",
    "CorruptPageError",
    "PoolExhaustedError",
    "PageUsageError",
    "InvalidPageIdError",
    "PageSizeMismatchError",
    "StoreClosedError",
    "StorePoisonedError",
    "StoreLockedError",
]
