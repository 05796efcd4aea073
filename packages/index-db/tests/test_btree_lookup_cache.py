"""The lookup cache (adaptive hash index): answers repeated gets, never hides a write."""

from __future__ import annotations

import itertools
import random
import sys
import threading
import time
from typing import Any

import pytest
from test_btree_optimistic import CountingLock

from index_db import BTree, IndexUsageError
from index_db.btree._core import HOT_ENTRY_COST
from page_db import PageStore


def test_a_repeated_get_is_one_dict_lookup_without_the_latch() -> None:
    store = PageStore.memory(pool_pages=256)
    tree = BTree.create(store)
    tree.bulk_load((b"%05d" % n, b"v%d" % n) for n in range(3000))
    lock = CountingLock()
    tree._core.latch = lock  # type: ignore[assignment]
    assert tree.get(b"00042") == b"v42"  # found once: the doorkeeper marks it
    assert lock.taken == 0 and not tree._core.hot
    assert tree.get(b"00042") == b"v42"  # found again: remembered under the latch
    assert lock.taken == 1
    tree._core.branches.clear()  # a descent would now need the latch
    for _ in range(3):
        assert tree.get(b"00042") == b"v42"
    assert lock.taken == 1
    assert tree._core.hot == {b"00042": b"v42"}
    assert tree.get(b"0004") is None  # absent keys are not cached
    assert b"0004" not in tree._core.hot


def test_puts_and_deletes_are_never_hidden_by_a_cached_value() -> None:
    store = PageStore.memory(pool_pages=256)
    tree = BTree.create(store)
    tree.bulk_load((b"%05d" % n, b"v%d" % n) for n in range(3000))
    for _ in range(2):  # the second find caches
        for n in range(0, 3000, 7):
            tree.get(b"%05d" % n)
    assert len(tree._core.hot) == len(range(0, 3000, 7))
    tree.put(b"00007", b"new")  # replaced in place
    tree.put(b"00014", b"a longer value than before")  # cell moved
    tree.put(b"00021", b"x" * 5000)  # spilled to an overflow chain: never cached
    assert tree.delete(b"00028")
    for n in range(3000, 6000):  # splits move cached entries to new leaves
        tree.put(b"%05d" % n, b"w")
    for n in range(35, 2000, 7):  # merges and redistributions move them again
        tree.delete(b"%05d" % n)
    for _ in range(3):  # from the tree, into the cache, from the cache
        assert tree.get(b"00007") == b"new"
        assert tree.get(b"00014") == b"a longer value than before"
        assert tree.get(b"00021") == b"x" * 5000
        assert tree.get(b"00028") is None
        assert tree.get(b"00035") is None
        assert tree.get(b"02002") == b"v2002"
        assert tree.get(b"04000") == b"w"
    assert b"00021" not in tree._core.hot
    tree.verify()
    tree.drop()
    assert not tree._core.hot
    with pytest.raises(IndexUsageError):
        tree.get(b"00007")


def test_the_cache_stays_within_its_byte_budget() -> None:
    store = PageStore.memory(pool_pages=256)
    entry = 5 + 20 + HOT_ENTRY_COST
    tree = BTree.create(store, lookup_cache=10 * entry)
    tree.bulk_load((b"%05d" % n, b"%020d" % n) for n in range(1000))
    for n in range(1000):
        for _ in range(2):
            assert tree.get(b"%05d" % n) == b"%020d" % n
        assert len(tree._core.hot) <= 10
    assert tree._core.hot  # it refills after emptying
    off = BTree.open(store, tree.meta(), lookup_cache=0)
    for _ in range(3):
        assert off.get(b"00001") == b"%020d" % 1
    assert not off._core.hot
    default = BTree.open(store, tree.meta())
    assert default._core.hot_budget == 256 * store.page_size  # the pool's size in bytes
    for bad in (-1, 1.5, "big"):
        with pytest.raises(IndexUsageError, match="lookup_cache"):
            BTree.open(store, tree.meta(), lookup_cache=bad)  # type: ignore[arg-type]


class SlowToCacheLock:
    """The tree latch, but a reader about to cache a value first lets other threads run.

    That widens the window between a reader's lock-free read and its caching to the
    length of whole writes, so a cache that took a value older than a write would show.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __enter__(self) -> None:
        self.lock.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()

    def acquire(self, blocking: bool = True) -> bool:
        if not blocking:
            time.sleep(0.00005)
        return self.lock.acquire(blocking)

    def release(self) -> None:
        self.lock.release()


def test_a_writer_always_reads_its_own_write_beside_caching_readers() -> None:
    # Readers fill the cache from the tree without the latch; an entry they read before
    # a write must never land in the cache after that write's invalidation.
    store = PageStore.memory(pool_pages=1024)
    tree = BTree.create(store)
    tree._core.latch = SlowToCacheLock()  # type: ignore[assignment]
    keys = [b"k%04d" % n for n in range(8)]  # few keys: readers and the writer collide
    tree.bulk_load((k, b"0") for k in keys)
    stop = threading.Event()
    errors: list[str] = []
    last = dict.fromkeys(keys, 0)

    def reader(seed: int) -> None:
        local = random.Random(seed)
        seen: dict[bytes, int] = {}
        while not stop.is_set():
            key = local.choice(keys)
            got = int(tree.get(key))
            if got < seen.get(key, 0):
                errors.append(f"{key!r} went back from {seen[key]} to {got}")
            seen[key] = got

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threads = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        rnd = random.Random(9)
        for _ in range(4000):
            key = rnd.choice(keys)
            last[key] += 1
            tree.put(key, b"%d" % last[key])
            got = tree.get(key)
            if got != b"%d" % last[key]:
                errors.append(f"writer put {last[key]} under {key!r}, then read {got!r}")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        sys.setswitchinterval(old)
    assert not errors, errors[:5]
    assert all(tree.get(k) == b"%d" % last[k] for k in keys)


def test_gets_under_the_latch_use_the_cache_too() -> None:
    # As on a free-threaded build, where every get takes the latch.
    store = PageStore.memory(pool_pages=256)
    tree = BTree.create(store)
    tree._core.peek_unlocked = None
    tree.bulk_load((b"%05d" % n, b"v%d" % n) for n in range(3000))
    assert tree.get(b"00500") == b"v500"
    assert not tree._core.hot  # the doorkeeper's first find
    assert tree.get(b"00500") == b"v500"
    assert tree._core.hot == {b"00500": b"v500"}
    tree._core.branches.clear()

    def no_descent(pid: int, level: int) -> None:
        raise AssertionError("a cached key descended the tree")

    tree._core.branch = no_descent  # type: ignore[method-assign,assignment]
    assert tree.get(b"00500") == b"v500"
    del tree._core.branch
    tree.put(b"00500", b"new")
    assert tree.get(b"00500") == b"new"
    assert tree._core.hot == {b"00500": b"new"}  # its doorkeeper bucket is still marked


def test_keys_found_once_are_not_cached_and_the_doorkeeper_starts_over() -> None:
    store = PageStore.memory(pool_pages=256)
    tree = BTree.create(store, lookup_cache=1000 * (HOT_ENTRY_COST + 10))
    core = tree._core
    buckets = 8 * len(core.seen)  # one bit each

    def marked() -> int:
        return sum(bin(byte).count("1") for byte in core.seen)

    assert buckets == 1 << max(
        10, (2 * 1000 * (HOT_ENTRY_COST + 10) // HOT_ENTRY_COST).bit_length()
    )
    keys = [b"%06d" % n for n in range(4 * buckets)]
    tree.bulk_load((k, b"v") for k in keys)
    for key in keys[: buckets // 4]:  # one find each: marks, no entries
        assert tree.get(key) == b"v"
    assert len(core.hot) < buckets // 4 // 5  # only keys whose bucket another key marked
    assert buckets // 5 < marked() <= buckets // 4
    for key in keys[: buckets // 4]:  # a second find each: cached
        tree.get(key)
    assert len(core.hot) == buckets // 4
    counts = []
    for n, key in enumerate(keys[buckets // 4 :]):  # many more: wiped at half marked
        tree.get(key)
        if n % 64 == 0:
            counts.append(marked())
    assert max(counts) <= buckets // 2
    assert any(b < a for a, b in itertools.pairwise(counts))  # it started over
