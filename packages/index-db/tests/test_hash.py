"""HashIndex behaviour a caller relies on: get/put/delete/len, limits, growth and shrinkage,
persistence through checkpoints, and one writer beside reader threads."""

from __future__ import annotations

import random
import threading

import pytest
from _hash_helpers import check_clean, root_meta

from index_db.errors import IndexUsageError, KeyTooLargeError, ValueTooLargeError
from index_db.hash import HashIndex
from page_db import PageStore


@pytest.fixture
def store() -> PageStore:
    return PageStore.memory(pool_pages=64)


def test_put_get_replace_delete_and_len(store: PageStore) -> None:
    index = HashIndex.create(store)
    assert len(index) == 0 and index.get(b"a") is None and index.get(b"a", b"d") == b"d"
    index.put(b"a", b"1")
    index.put(b"", b"empty key")
    index.put(b"b", b"")
    assert (index.get(b"a"), index.get(b""), index.get(b"b")) == (b"1", b"empty key", b"")
    assert index.get(b"b", b"default") == b"", "an empty value is a value, not a miss"
    index.put(b"a", b"2" * 500)
    assert index.get(b"a") == b"2" * 500 and len(index) == 3
    assert index.delete(b"a") is True and index.delete(b"a") is False
    assert index.get(b"a") is None and len(index) == 2
    assert b"b" in index and b"a" not in index
    check_clean(index, store, {b"": b"empty key", b"b": b""})


def test_bytes_like_keys_and_values_are_accepted_and_other_types_rejected(store: PageStore) -> None:
    index = HashIndex.create(store)
    index.put(bytearray(b"k"), memoryview(b"v"))
    assert index.get(memoryview(b"k")) == b"v" and index.get(bytearray(b"k")) == b"v"
    assert isinstance(index.get(b"k"), bytes)
    for bad in ("k", 1, None):
        with pytest.raises(TypeError):
            index.put(bad, b"v")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            index.get(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            index.delete(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        index.put(b"k", "v")  # type: ignore[arg-type]


def test_maximum_key_and_value_sizes_are_documented_and_enforced(store: PageStore) -> None:
    index = HashIndex.create(store)
    assert (index.max_key_size, index.max_value_size) == (1024, 3012)
    big_key, big_value = b"k" * 1024, b"v" * 3012
    index.put(big_key, big_value)
    with pytest.raises(KeyTooLargeError, match="1025 bytes; the maximum is 1024"):
        index.put(b"k" * 1025, b"")
    with pytest.raises(ValueTooLargeError, match="3013 bytes; the maximum is 3012"):
        index.put(b"x", b"v" * 3013)
    assert issubclass(KeyTooLargeError, IndexUsageError)
    assert index.get(big_key) == big_value and len(index) == 1
    assert HashIndex.create(PageStore.memory(page_size=65536)).max_value_size == 65504 - 1052


def test_large_values_many_keys_one_record_per_page(store: PageStore) -> None:
    index = HashIndex.create(store)
    model = {b"key%d" % i: bytes([i % 256]) * (3012 - i) for i in range(300)}
    for key, value in model.items():
        index.put(key, value)
    report = check_clean(index, store, model)
    assert report.buckets >= 300 and report.overflow_pages == 0
    for key, value in model.items():
        assert index.get(key) == value
    for i, key in enumerate(model):  # grow and shrink values in place and across pages
        model[key] = b"s" * (i % 7) if i % 2 else b"g" * 3012
        index.put(key, model[key])
    check_clean(index, store, model)
    assert all(index.get(k) == v for k, v in model.items())


def test_grows_then_merges_back_to_one_bucket_when_emptied(store: PageStore) -> None:
    index = HashIndex.create(store)
    rng = random.Random(7)
    model = {
        rng.randbytes(rng.randint(1, 24)): rng.randbytes(rng.randint(0, 120)) for _ in range(6000)
    }
    for key, value in model.items():
        index.put(key, value)
    grown = check_clean(index, store, model)
    assert grown.global_depth >= 7 and grown.buckets > 100
    keys = list(model)
    rng.shuffle(keys)
    for n, key in enumerate(keys):
        assert index.delete(key)
        del model[key]
        if n % 1500 == 0:
            check_clean(index, store, model)
            assert all(index.get(k) == v for k, v in model.items())
    report = check_clean(index, store, model)
    assert (report.global_depth, report.buckets, len(report.pages)) == (0, 1, 3)


def test_deleted_space_is_reused(store: PageStore) -> None:
    index = HashIndex.create(store)
    peaks = []
    for _ in range(4):
        for i in range(2000):
            index.put(b"key%d" % i, b"v" * 60)
        peaks.append(store.stats()["pages"])
        for i in range(2000):
            index.delete(b"key%d" % i)
        assert store.stats()["pages"] == 3, "emptied index keeps root, directory, one bucket"
    assert peaks[0] > 50 and len(set(peaks)) == 1, "refilling takes no more pages than before"
    check_clean(index, store, {})


def test_reopen_sees_the_last_checkpoint_and_nothing_after_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "hash.pages"
    model = {b"k%d" % i: b"v%d" % i for i in range(3000)}
    with PageStore.open(path, pool_pages=16) as store:
        index = HashIndex.create(store)
        for key, value in model.items():
            index.put(key, value)
        store.checkpoint(root_meta(index))
        for i in range(1000, 3000):
            index.delete(b"k%d" % i)
        for i in range(3000, 5000):
            index.put(b"k%d" % i, b"lost")
    with PageStore.open(path, pool_pages=16) as store:
        index = HashIndex.open(store, int.from_bytes(store.meta, "little"))
        check_clean(index, store, model)
        assert all(index.get(k) == v for k, v in model.items())
        assert index.get(b"k4000") is None


def test_open_rejects_a_page_that_is_not_a_hash_root(store: PageStore) -> None:
    from index_db.errors import CorruptIndexError

    index = HashIndex.create(store)
    with pytest.raises(CorruptIndexError, match="page kind 2"):
        HashIndex.open(store, index.root + 1)
    other = store.allocate()
    with pytest.raises(CorruptIndexError, match="bad magic"):
        HashIndex.open(store, other)


def test_readers_beside_one_writer_see_whole_operations(store: PageStore) -> None:
    index = HashIndex.create(store)
    stable = {b"stable%d" % i: b"s%d" % i for i in range(500)}
    for key, value in stable.items():
        index.put(key, value)
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                for key, value in stable.items():
                    assert index.get(key) == value
                got = index.get(b"moving")
                assert got in (None, b"m" * 100)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for i in range(4000):  # splits, doublings, merges and halvings while readers run
        index.put(b"churn%d" % (i % 1500), b"c" * (i % 200))
        index.put(b"moving", b"m" * 100)
        if i % 3 == 0:
            index.delete(b"churn%d" % ((i * 7) % 1500))
            index.delete(b"moving")
    done.set()
    for thread in threads:
        thread.join()
    assert errors == []
    index.verify()


def test_warm_lookups_decode_nothing_and_writes_keep_the_decoded_bucket(
    store: PageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from index_db.hash import _codec

    index = HashIndex.create(store)
    model = {b"k%d" % i: b"v%d" % i for i in range(2000)}
    for key, value in model.items():
        index.put(key, value)
    for key in model:  # every bucket decoded (or kept by its last write) once
        index.get(key)
    decodes: list[int] = []
    real = _codec.decode_bucket

    def counting(payload: bytes, page_id: int, max_depth: int) -> _codec.Bucket:
        decodes.append(page_id)
        return real(payload, page_id, max_depth)

    monkeypatch.setattr(_codec, "decode_bucket", counting)
    for key, value in model.items():
        assert index.get(key) == value
    index.put(b"k1", b"new")  # a write re-sets extra: the next lookup still decodes nothing
    index.delete(b"k2")
    assert index.get(b"k1") == b"new" and index.get(b"k2") is None
    assert decodes == []
    small = PageStore.memory(pool_pages=4)
    cold = HashIndex.create(small)
    for key, value in model.items():
        cold.put(key, value)
    decodes.clear()
    assert all(cold.get(key) == value for key, value in model.items())
    assert decodes, "evicted buckets are decoded again from their bytes"
