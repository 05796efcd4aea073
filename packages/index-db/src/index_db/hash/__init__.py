"""The hash index of index-db: extendible hashing on page-db pages for exact-match lookups.

Quick start::

    from page_db import PageStore
    from index_db import HashIndex

    with PageStore.open("data.pages") as store:
        index = HashIndex.create(store)
        index.put(b"alice", b"42")
        store.checkpoint(meta=index.root.to_bytes(4, "little"))

    with PageStore.open("data.pages") as store:
        index = HashIndex.open(store, int.from_bytes(store.meta, "little"))
        assert index.get(b"alice") == b"42"

Modules: ``_layout`` (byte widths), ``_codec`` (pure page encode/decode), ``_hashing``
(the stable hash), ``_pages`` (the only page-db I/O), ``_index`` (splits, merges, the
public class), ``_verify``. Bytes in ``docs/FORMAT.md``, surface in
``docs/API.md``.
"""

from ._index import HashIndex
from ._verify import HashVerifyReport

__all__ = ["HashIndex", "HashVerifyReport"]
