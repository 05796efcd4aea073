"""``PageStore.peek_extra`` (1.1): a lock-free, pin-free peek at a resident page's ``extra``."""

from __future__ import annotations

import sys
import threading

import pytest

from page_db import MemoryFile, PageStore, StoreClosedError


def test_returns_extra_of_resident_pages_only() -> None:
    store = PageStore.memory(pool_pages=1)
    other, c = store.allocate(), store.allocate()
    assert store.peek_extra(c) is None
    with store.read(c) as page:
        page.extra = "decoded-c"
    assert store.peek_extra(c) == "decoded-c"
    assert store.stats()["pool_pinned"] == 0
    with store.write(c):
        pass
    assert store.peek_extra(c) is None  # a write guard drops extra
    assert store.peek_extra(10_000) is None
    with store.read(other) as page:  # the one frame now holds the other page
        page.extra = "decoded-other"
    assert store.peek_extra(c) is None
    assert store.peek_extra(other) == "decoded-other"


def test_counts_no_hit_and_does_not_touch_the_policy() -> None:
    store = PageStore.open_file(MemoryFile(), pool_pages=2, replacer="lru")
    first, second = store.allocate(), store.allocate()
    with store.read(first) as page:
        page.extra = "first"
    with store.read(second):
        pass  # `second` is now the most recently used
    hits = store.stats()["hits"]
    assert store.peek_extra(first) == "first"
    assert store.stats()["hits"] == hits
    store.allocate()  # LRU evicts `first`: the peek did not refresh it
    assert store.peek_extra(first) is None


def test_raises_once_closed() -> None:
    store = PageStore.memory()
    store.close()
    with pytest.raises(StoreClosedError):
        store.peek_extra(1)


def test_never_returns_a_stale_object_for_a_page_under_eviction() -> None:
    # Each page's extra names the page; a peek racing with evictions returns that or None
    # (or, in the documented rare race, another page's object — which the caller detects).
    store = PageStore.memory(pool_pages=4)
    pids = [store.allocate() for _ in range(16)]
    stop = threading.Event()
    bad: list[tuple[int, object]] = []

    def churn() -> None:
        while not stop.is_set():
            for pid in pids:
                with store.read(pid) as page:
                    page.extra = ("page", pid)

    def peek() -> None:
        while not stop.is_set():
            for pid in pids:
                got = store.peek_extra(pid)
                if got is not None and not (isinstance(got, tuple) and got[0] == "page"):
                    bad.append((pid, got))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=churn), threading.Thread(target=peek)]
        for thread in threads:
            thread.start()
        threading.Event().wait(0.5)
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(old)
    assert not bad
