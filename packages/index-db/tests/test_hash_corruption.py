"""Corrupt hash index pages give typed errors, never wrong results.

Two kinds of damage: bytes changed on disk (page-db's checksum turns them into
``CorruptPageError``), and pages whose checksum is fine but whose content is not a valid
part of this index — a misdirected directory slot, a looping overflow chain, a page of the
wrong kind, stale counts — which the hash index itself catches as ``CorruptIndexError``.
"""

from __future__ import annotations

import random
import struct

import pytest
from _hash_helpers import colliding_hash, root_meta, use_hash

from index_db.errors import CorruptIndexError, IndexDbError
from index_db.hash import HashIndex
from index_db.hash import _layout as L
from page_db import MemoryFile, PageError, PageStore

MODEL = {b"key%d" % i: b"value%d" % i * 5 for i in range(1500)}


def build(pool_pages: int = 64) -> tuple[PageStore, HashIndex]:
    store = PageStore.memory(pool_pages=pool_pages)
    index = HashIndex.create(store)
    for key, value in MODEL.items():
        index.put(key, value)
    store.checkpoint(root_meta(index))
    return store, index


def patch_page(store: PageStore, page_id: int, offset: int, fmt: str, value: int) -> None:
    with store.write(page_id) as page:
        struct.pack_into(fmt, page.payload, offset, value)


def gets_are_right_or_typed(
    index: HashIndex, typed: tuple[type[Exception], ...] = (CorruptIndexError,)
) -> int:
    """Every lookup returns the model's value or raises a typed error; count the errors."""
    errors = 0
    for key, value in MODEL.items():
        try:
            got = index.get(key)
        except typed:
            errors += 1
            continue
        assert got == value, f"wrong result for {key!r}"
    return errors


def test_bucket_page_of_the_wrong_kind() -> None:
    store, index = build()
    page_id = index._dir[0]
    patch_page(store, page_id, 2, "<B", L.KIND_DIRECTORY)
    assert gets_are_right_or_typed(index) > 0
    with pytest.raises(CorruptIndexError, match="page kind 2") as info:
        index.verify()
    assert info.value.page_id == page_id
    with pytest.raises(CorruptIndexError):
        index.put(next(k for k in MODEL if index._hash(k) & index._mask == 0), b"x")


def test_directory_slot_pointing_at_another_bucket_on_disk() -> None:
    store, index = build()
    slot_a, slot_b = 0, next(s for s, p in enumerate(index._dir) if p != index._dir[0])
    directory_page = index._dir_pages[0]
    patch_page(store, directory_page, 16 + 4 * slot_a, "<I", index._dir[slot_b])
    store.checkpoint(root_meta(index))
    reopened = HashIndex.open(store, index.root)
    assert gets_are_right_or_typed(reopened) > 0
    with pytest.raises(CorruptIndexError):
        reopened.verify()


def test_looping_overflow_chain_raises_instead_of_hanging() -> None:
    store = PageStore.memory()
    index = use_hash(HashIndex.create(store), colliding_hash)
    for i in range(200):
        index.put(b"c%d" % i, b"v" * 100)
    chain = index.chain(0)
    assert len(chain) >= 3
    last_id = chain[-1][0]
    patch_page(store, last_id, 12, "<I", chain[0][0])  # last page's next -> the head
    with pytest.raises(CorruptIndexError, match="position"):
        index.get(b"absent")
    with pytest.raises(CorruptIndexError):
        index.verify()


def test_stale_counts_on_the_root_are_caught_by_verify() -> None:
    store, index = build()
    patch_page(store, index.root, L.COUNT_OFFSET, "<Q", len(MODEL) + 1)
    store.checkpoint(root_meta(index))
    reopened = HashIndex.open(store, index.root)
    assert len(reopened) == len(MODEL) + 1
    with pytest.raises(CorruptIndexError, match="root counts 1501 keys, buckets hold 1500"):
        reopened.verify()


def test_wrong_directory_page_count_fails_open() -> None:
    store, index = build()
    patch_page(store, index.root, 20, "<I", 7)
    with pytest.raises(CorruptIndexError, match="7 directory pages"):
        HashIndex.open(store, index.root)


def test_decoded_bucket_that_disagrees_with_its_bytes_fails_verify() -> None:
    _store, index = build()
    page_id = index._dir[0]
    bucket = index.bucket(page_id)
    bucket.entries[b"phantom"] = b"not on the page"
    with pytest.raises(CorruptIndexError, match="disagrees with its bytes"):
        index.verify()


def test_flipped_bytes_in_the_file_never_give_wrong_results() -> None:
    file = MemoryFile()
    store = PageStore.open_file(file, pool_pages=64)
    index = HashIndex.create(store)
    for key, value in MODEL.items():
        index.put(key, value)
    store.checkpoint(root_meta(index))
    store.close()
    image = file.getvalue()
    rng = random.Random(3)
    caught = 0
    for _ in range(120):
        damaged = bytearray(image)
        offset = rng.randrange(4096, len(damaged))  # past the superblocks
        damaged[offset] ^= 1 << rng.randrange(8)
        try:
            store = PageStore.open_file(MemoryFile(bytes(damaged)), pool_pages=64)
            reopened = HashIndex.open(store, int.from_bytes(store.meta, "little"))
        except (PageError, IndexDbError):
            caught += 1
            continue
        errors = gets_are_right_or_typed(reopened, (PageError, IndexDbError))
        try:
            reopened.verify()
        except (PageError, IndexDbError):
            errors += 1
        caught += errors > 0
        store.close()
    assert caught > 0


def test_slot_naming_another_structures_page_raises_typed_error() -> None:
    store, index = build()
    foreign = store.allocate()
    with store.write(foreign) as page:
        page.payload[:4] = b"BT\x01\x01"
        page.extra = {"a": "decoded node of another index"}
    index._dir[0] = foreign  # as if the directory page said so
    key = next(k for k in MODEL if index._hash(k) & index._mask == 0)
    with pytest.raises(CorruptIndexError, match="bad magic"):
        index.get(key)
    with pytest.raises(CorruptIndexError, match="bad magic"):
        index.put(key, b"x")
