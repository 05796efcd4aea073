"""Keys that collide: full-hash collisions (a test-only hash seam), crafted keys sharing
low hash bits with the real hash, and collisions at the max depth."""

from __future__ import annotations

import zlib

from _hash_helpers import check_clean, colliding_hash, use_hash

from index_db.hash import HashIndex, _hashing
from page_db import PageStore


def test_full_collisions_grow_one_overflow_chain_not_the_directory() -> None:
    store = PageStore.memory(pool_pages=32)
    index = use_hash(HashIndex.create(store), colliding_hash)
    model = {b"key%04d" % i: b"v" * (i % 90) for i in range(600)}
    for key, value in model.items():
        index.put(key, value)
    report = check_clean(index, store, model)
    assert report.global_depth == 0 and report.buckets == 1 and report.overflow_pages >= 5
    assert all(index.get(k) == v for k, v in model.items())
    assert index.get(b"absent") is None
    for i, key in enumerate(list(model)):  # replace some values with bigger ones
        if i % 3 == 0:
            model[key] = b"R" * 200
            index.put(key, model[key])
    check_clean(index, store, model)
    for i, key in enumerate(list(model)):
        if i % 2:
            assert index.delete(key)
            del model[key]
    shrunk = check_clean(index, store, model)
    assert shrunk.overflow_pages < report.overflow_pages + 5
    assert all(index.get(k) == v for k, v in model.items())
    for key in list(model):
        assert index.delete(key)
    assert len(check_clean(index, store, {}).pages) == 3


def test_collision_chain_survives_reopen() -> None:
    store = PageStore.memory(pool_pages=8)
    index = use_hash(HashIndex.create(store), colliding_hash)
    model = {b"c%d" % i: b"x" * 300 for i in range(100)}
    for key, value in model.items():
        index.put(key, value)
    store.checkpoint(index.root.to_bytes(4, "little"))
    reopened = use_hash(HashIndex.open(store, index.root), colliding_hash)
    check_clean(reopened, store, model)
    assert all(reopened.get(k) == v for k, v in model.items())


def crafted_keys(bits: int, count: int) -> list[bytes]:
    """Keys whose real hashes share their low ``bits`` bits."""
    mask = (1 << bits) - 1
    found: list[bytes] = []
    i = 0
    while len(found) < count:
        key = b"crafted-%d" % i
        if _hashing.hash_key(key) & mask == 0:
            found.append(key)
        i += 1
    return found


def test_crafted_keys_sharing_ten_low_bits_split_deep_and_stay_correct() -> None:
    store = PageStore.memory(pool_pages=64)
    index = HashIndex.create(store)
    model = {key: b"v" * 400 for key in crafted_keys(10, 60)}
    model.update({b"plain%d" % i: b"p" * 50 for i in range(300)})
    for key, value in model.items():
        index.put(key, value)
    report = check_clean(index, store, model)
    assert report.global_depth > 10 and report.overflow_pages == 0
    assert all(index.get(k) == v for k, v in model.items())


def test_keys_sharing_bits_up_to_the_max_depth_overflow_instead_of_splitting() -> None:
    store = PageStore.memory(pool_pages=64)
    index = HashIndex.create(store)
    use_hash(index, lambda key: zlib.crc32(key) << 19)  # low 19 bits (max depth) all zero
    model = {b"k%d" % i: b"v" * 500 for i in range(40)}
    for key, value in model.items():
        index.put(key, value)
    report = check_clean(index, store, model)
    assert report.global_depth == 0 and report.overflow_pages >= 4


def test_splits_stop_at_the_max_depth() -> None:
    store = PageStore.memory(pool_pages=256)
    index = HashIndex.create(store)
    use_hash(index, lambda key: zlib.crc32(key) << 18)  # keys differ first at bit 18
    model = {b"k%d" % i: b"v" * 500 for i in range(40)}
    for key, value in model.items():
        index.put(key, value)
    report = check_clean(index, store, model)
    assert report.global_depth == 19 and report.overflow_pages >= 1
    assert all(index.get(k) == v for k, v in model.items())
    for key in model:
        index.delete(key)
    report = check_clean(index, store, {})
    assert (report.global_depth, len(report.pages)) == (0, 3)
