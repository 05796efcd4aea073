"""``PageStore.cached_extra`` (1.1): a pin-free peek at a resident page's ``extra``."""

from __future__ import annotations

import threading

import pytest

from page_db import MemoryFile, PageStore, StoreClosedError


def test_returns_extra_of_resident_pages_only() -> None:
    store = PageStore.memory(pool_pages=1)
    other, c = store.allocate(), store.allocate()  # c evicts the other page's frame
    assert store.cached_extra(c) is None  # resident, nothing stored yet
    with store.read(c) as page:
        page.extra = "decoded-c"
    assert store.cached_extra(c) == "decoded-c"
    assert store.stats()["pool_pinned"] == 0  # the peek took no pin
    with store.write(c):
        pass
    assert store.cached_extra(c) is None  # a write guard drops extra, as documented
    assert store.cached_extra(10_000) is None  # not allocated: just not cached
    with store.read(c) as page:
        page.extra = "decoded-c2"
    with store.read(other) as page:  # the one frame now holds the other page
        page.extra = "decoded-other"
    assert store.cached_extra(c) is None  # evicted with its frame
    assert store.cached_extra(other) == "decoded-other"


def test_counts_as_a_hit_and_keeps_the_page_warm() -> None:
    store = PageStore.open_file(MemoryFile(), pool_pages=2, replacer="lru")
    first, second = store.allocate(), store.allocate()
    with store.read(first) as page:
        page.extra = "first"
    hits = store.stats()["hits"]
    assert store.cached_extra(first) == "first"
    assert store.stats()["hits"] == hits + 1
    store.allocate()  # LRU evicts `second`: the peek made `first` the most recent
    assert store.cached_extra(first) == "first"
    assert store.cached_extra(second) is None


def test_raises_once_closed() -> None:
    store = PageStore.memory()
    store.close()
    with pytest.raises(StoreClosedError):
        store.cached_extra(1)


def test_checkpoint_still_waits_for_write_guards() -> None:
    # Write guards notify a waiting checkpoint only when one waits (1.1); make sure the
    # checkpoint is still woken when the last guard closes.
    store = PageStore.memory()
    pid = store.allocate()
    guard = store.write(pid)
    guard.__enter__()
    done = threading.Event()

    def checkpoint() -> None:
        store.checkpoint(b"m")
        done.set()

    thread = threading.Thread(target=checkpoint)
    thread.start()
    assert not done.wait(0.05)
    guard.__exit__(None, None, None)
    assert done.wait(5)
    thread.join()
    assert store.meta == b"m"
