"""Latch-free (optimistic) lookups: validated by the tree's version, safe beside writers."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from index_db import BTree, IndexUsageError
from page_db import PageStore


class CountingLock:
    """A lock that counts how often it is taken."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.taken = 0

    def __enter__(self) -> None:
        self.lock.acquire()
        self.taken += 1

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()

    def acquire(self, blocking: bool = True) -> bool:
        taken = self.lock.acquire(blocking)
        self.taken += taken
        return taken

    def release(self) -> None:
        self.lock.release()


@pytest.fixture
def fast_switching() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def test_warm_gets_take_no_latch_and_writes_and_misses_fall_back() -> None:
    store = PageStore.memory(pool_pages=256)
    tree = BTree.create(store, lookup_cache=0)  # the tree's own path; the cache is below
    items = [(b"%06d" % n, b"v%d" % n) for n in range(5000)]
    tree.bulk_load(items)
    tree.put(b"big", b"x" * 5000)  # an overflow value: read under the latch
    for key, _ in items[::50]:
        tree.get(key)  # warm
    lock = CountingLock()
    tree._core.latch = lock  # type: ignore[assignment]
    assert [tree.get(k) for k, _ in items[::50]] == [v for _, v in items[::50]]
    assert tree.get(b"000100x") is None and tree.get(b"000100x", 7) == 7
    assert lock.taken == 0
    assert tree.get(b"big") == b"x" * 5000
    assert lock.taken == 1
    tree._core.branches.clear()  # a cold branch: decoded under the latch
    assert tree.get(b"000123") == b"v123"
    assert lock.taken == 2
    assert tree.get(b"000124") == b"v124"  # the branch is cached again
    assert lock.taken == 2
    tree.put(b"000124", b"w124")
    assert lock.taken == 3
    assert tree.get(b"000124") == b"w124"  # the version is even again after the put
    assert lock.taken == 3


def test_a_broken_tree_refuses_optimistic_gets(monkeypatch: pytest.MonkeyPatch) -> None:
    store = PageStore.memory(pool_pages=256)
    tree = BTree.create(store)
    for n in range(2000):
        tree.put(b"%05d" % n, b"v" * 50)
    assert tree.get(b"00001") == b"v" * 50

    def failing_write(page_id: int, *args: object) -> object:
        raise OSError("disk on fire")

    store.checkpoint(tree.meta())  # every leaf encoded: a put's next change needs page-db
    monkeypatch.setattr(store, "write", failing_write)
    monkeypatch.setattr(store, "defer", failing_write)  # a put's first change to a leaf
    with pytest.raises(OSError):
        tree.put(b"new", b"value")
    monkeypatch.undo()
    assert tree._core.version & 1  # stays odd: every reader takes the latch and fails
    with pytest.raises(IndexUsageError):
        tree.get(b"00001")


@pytest.mark.usefixtures("fast_switching")
def test_optimistic_readers_never_see_a_wrong_value_beside_writers() -> None:
    # Values always start with their key, so a reader can tell a right answer from one
    # read off a node caught mid-change; stable keys are never deleted, so they must
    # always be found. Writers split, merge, redistribute, replace in place and spill
    # values into overflow pages while three readers look up without the latch.
    store = PageStore.memory(pool_pages=4096)
    tree = BTree.create(store)
    rnd = random.Random(5)
    stable = sorted({b"s" + rnd.randbytes(6) for _ in range(3000)})
    tree.bulk_load((k, k + b"/0") for k in stable)
    volatile = [b"v" + rnd.randbytes(5) for _ in range(3000)]
    errors: list[str] = []
    stop = threading.Event()
    seen = [0]

    def reader(seed: int) -> None:
        local = random.Random(seed)
        while not stop.is_set():
            key = local.choice(stable)
            got = tree.get(key)
            if got is None or not got.startswith(key + b"/"):
                errors.append(f"stable {key!r} -> {got!r}")
            key = local.choice(volatile)
            got = tree.get(key, b"")
            if got and not got.startswith(key + b"/"):
                errors.append(f"volatile {key!r} -> {got!r}")
            seen[0] += 1

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        for step in range(20_000):
            key = rnd.choice(stable) if step % 3 == 0 else rnd.choice(volatile)
            if key[:1] == b"v" and rnd.random() < 0.45:
                tree.delete(key)
            else:
                size = rnd.choice((0, 5, 60, 200, 2000))
                tree.put(key, key + b"/" + rnd.randbytes(size))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors[:5]
    assert seen[0] > 1000
    tree.verify()
