"""``PageStore.defer`` (1.5): a page's bytes may lag its ``extra`` until the pool settles them.

Each test's ``settle`` callback is a :class:`Settler`: it writes known bytes into the payload,
counts its calls and can be told to decline ("not now") or to raise, so each test checks
what a layer above relies on: the bytes are settled before anyone sees or writes them,
exactly once, and a declined or failed settle neither loses the bytes nor hangs the store.
"""

from __future__ import annotations

import threading
import time
import weakref
from pathlib import Path
from typing import Literal

import pytest

from page_db import (
    InvalidPageIdError,
    MemoryFile,
    PageStore,
    PageUsageError,
    StoreClosedError,
)
from page_db._load import initial_image
from strata_testkit import CrashFS

PS = 4096
PAYLOAD = PS - 32
NAME = "store.pages"
WAIT = 5.0  # seconds a thread may take before the test calls it hung


class Settler:
    """A ``settle`` callback that writes ``data`` at ``offset`` and records its calls.

    ``ready`` False makes it decline; ``fail`` makes it raise ``RuntimeError``. ``seen``
    holds the payload as each successful call found it, before writing.
    """

    def __init__(self, data: bytes, offset: int = 0, *, ready: bool = True) -> None:
        self.data = data
        self.offset = offset
        self.ready = ready
        self.fail = False
        self.calls = 0
        self.settled = 0
        self.seen: list[bytes] = []
        self.log: list[str] | None = None
        self.name = ""

    def __call__(self, payload: memoryview) -> bool:
        self.calls += 1
        if self.fail:
            raise RuntimeError("settle failed")
        if not self.ready:
            return False
        assert not payload.readonly and len(payload) == PAYLOAD
        self.seen.append(bytes(payload))
        payload[self.offset : self.offset + len(self.data)] = self.data
        self.settled += 1
        if self.log is not None:
            self.log.append(self.name)
        return True


def read_payload(store: PageStore, page_id: int) -> bytes:
    with store.read(page_id) as page:
        return bytes(page.payload)


def deferred(store: PageStore) -> int:
    return int(store.stats()["pool_deferred"])


def in_thread(target: object) -> tuple[threading.Thread, list[object], list[BaseException]]:
    """Start ``target`` in a daemon thread; its result or exception lands in the lists."""
    results: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(target())  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results, errors


def finish(thread: threading.Thread, errors: list[BaseException]) -> None:
    thread.join(WAIT)
    assert not thread.is_alive(), "the operation never completed"
    assert not errors, errors


# --- settle runs before the bytes are used, once --------------------------------------------


def deferred_page(data: bytes) -> tuple[PageStore, int, object, Settler]:
    """A memory store with one page whose ``extra`` is a marker, deferred with a settle
    that writes ``data``: ``(store, page id, marker, settle)``."""
    store = PageStore.memory()
    pid = store.allocate()
    with store.read(pid) as page:
        page.extra = marker = object()
    settle = Settler(data)
    store.defer(pid, settle)
    return store, pid, marker, settle


def test_read_guard_sees_settled_bytes_settle_runs_once_and_extra_is_kept() -> None:
    store, pid, marker, settle = deferred_page(b"settled")
    assert settle.calls == 0  # deferred: nothing written yet
    assert deferred(store) == 1
    assert store.stats()["pool_dirty"] == 1
    assert store.cached_extra(pid) is marker  # defer keeps extra
    with store.read(pid) as page:
        assert bytes(page.payload[:7]) == b"settled"
        assert page.extra is marker
    assert settle.calls == 1
    assert deferred(store) == 0
    assert read_payload(store, pid)[:7] == b"settled"
    store.checkpoint()
    assert settle.calls == 1  # forgotten once it ran


def test_pool_deferred_counts_pending_pages() -> None:
    store = PageStore.memory()
    pids = [store.allocate() for _ in range(3)]
    settlers = [Settler(b"p%d" % pid) for pid in pids]
    for count, (pid, settle) in enumerate(zip(pids, settlers, strict=True), 1):
        store.defer(pid, settle)
        assert deferred(store) == count
    read_payload(store, pids[1])
    assert deferred(store) == 2
    store.checkpoint()
    assert deferred(store) == 0
    assert [s.calls for s in settlers] == [1, 1, 1]


def test_write_guard_sees_settled_bytes_and_writes_over_them() -> None:
    store = PageStore.memory()
    pid = store.allocate()
    settle = Settler(b"settled")
    store.defer(pid, settle)
    with store.write(pid) as page:
        assert settle.calls == 1
        assert bytes(page.payload[:7]) == b"settled"
        page.payload[3:5] = b"XY"
    assert read_payload(store, pid)[:7] == b"setXYed"
    assert settle.calls == 1


def test_patch_lands_after_settle_and_keeps_extra() -> None:
    store, pid, marker, settle = deferred_page(b"AAAAAAAA")
    store.patch(pid, 2, b"bb")
    assert settle.calls == 1
    assert deferred(store) == 0
    assert read_payload(store, pid)[:8] == b"AAbbAAAA"
    assert store.cached_extra(pid) is marker


def test_defer_of_a_page_not_in_the_pool_loads_it_and_settles_on_its_bytes() -> None:
    store = PageStore.memory(pool_pages=1)
    a = store.allocate()
    with store.write(a) as page:
        page.payload[:4] = b"aaaa"
    store.allocate()  # evicts a (written back)
    settle = Settler(b"S", offset=1)
    store.defer(a, settle)
    assert read_payload(store, a)[:4] == b"aSaa"
    assert settle.seen[0][:4] == b"aaaa"


# --- eviction -------------------------------------------------------------------------------


@pytest.mark.parametrize("replacer", ["clock", "lru"])
def test_eviction_settles_and_writes_back_deferred_pages(replacer: Literal["clock", "lru"]) -> None:
    store = PageStore.open_file(MemoryFile(), pool_pages=2, replacer=replacer)
    pids = [store.allocate() for _ in range(6)]
    store.checkpoint()
    settlers = {pid: Settler(b"deferred %d" % pid) for pid in pids[:2]}
    for pid, settle in settlers.items():
        store.defer(pid, settle)
    evictions = store.stats()["evictions"]
    for pid in pids[2:]:  # four other pages through a two-frame pool: both deferred go
        read_payload(store, pid)
    assert store.stats()["evictions"] >= evictions + 2
    assert deferred(store) == 0
    assert all(s.calls == 1 for s in settlers.values())
    for pid, settle in settlers.items():  # read back from the file: written, not lost
        assert read_payload(store, pid)[: len(settle.data)] == settle.data
    assert all(s.calls == 1 for s in settlers.values())


def test_allocate_evicts_a_deferred_page_with_its_bytes() -> None:
    store = PageStore.memory(pool_pages=1)
    a = store.allocate()
    settle = Settler(b"kept")
    store.defer(a, settle)
    b = store.allocate()  # the one frame: a is settled and written back
    assert settle.calls == 1
    assert read_payload(store, b) == bytes(PAYLOAD)
    assert read_payload(store, a)[:4] == b"kept"


# --- checkpoints, compaction, reopen and power loss -----------------------------------------


def test_checkpoint_settles_everything_and_reopen_has_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / NAME
    with PageStore.open(path, pool_pages=8) as store:
        pids = [store.allocate() for _ in range(4)]
        settlers = {pid: Settler(b"page %d" % pid, offset=pid) for pid in pids}
        for pid, settle in settlers.items():
            store.defer(pid, settle)
        store.checkpoint(b"one")
        assert deferred(store) == 0
        assert all(s.calls == 1 for s in settlers.values())
    with PageStore.open(path) as store:
        assert store.meta == b"one"
        for pid, settle in settlers.items():
            payload = read_payload(store, pid)
            assert payload[pid : pid + len(settle.data)] == settle.data
    assert all(s.calls == 1 for s in settlers.values())


def test_compact_settles_deferred_pages_it_moves(tmp_path: Path) -> None:
    path = tmp_path / NAME
    with PageStore.open(path, pool_pages=4) as store:
        pids = [store.allocate() for _ in range(8)]
        for pid in pids:
            store.patch(pid, 0, b"old %d" % pid)
        store.checkpoint(b"c1")
        for pid in pids[:5]:
            store.free(pid)
        store.checkpoint(b"c2")  # the freed slots become reusable: compact can move
        settlers = {pid: Settler(b"new %d" % pid) for pid in pids[5:]}
        for pid, settle in settlers.items():
            store.defer(pid, settle)
        assert store.compact(b"c3") > 0
        assert deferred(store) == 0
        assert all(s.calls == 1 for s in settlers.values())
        for pid, settle in settlers.items():
            assert read_payload(store, pid)[: len(settle.data)] == settle.data
    with PageStore.open(path) as store:
        assert store.meta == b"c3"
        for pid, settle in settlers.items():
            assert read_payload(store, pid)[: len(settle.data)] == settle.data


def test_power_loss_keeps_checkpointed_deferred_pages_and_drops_later_ones() -> None:
    fs = CrashFS(files={NAME: initial_image(PS)})
    store = PageStore.open_file(fs.open(NAME), pool_pages=2)
    a, b, c = store.allocate(), store.allocate(), store.allocate()
    store.checkpoint(b"c0")
    store.defer(a, Settler(b"in checkpoint c1"))
    store.checkpoint(b"c1")
    later = Settler(b"after c1")
    store.defer(b, later)
    for pid in (c, a):  # b is evicted: its settled bytes reach the file, uncommitted
        read_payload(store, pid)
    assert later.calls == 1
    store.defer(a, Settler(b"pending at the crash"))
    states = list(fs.crash_states(seed=7, max_states=12))
    assert {"drop", "keep"} <= {state.variant for state in states}
    store.close()
    for state in states:
        crashed = PageStore.open_file(state.fs().open(NAME, create=False), pool_pages=2)
        assert crashed.meta == b"c1", state.description
        assert read_payload(crashed, a)[:16] == b"in checkpoint c1", state.description
        assert read_payload(crashed, b) == bytes(PAYLOAD), state.description
        crashed.close()


# --- free, close and a second defer ----------------------------------------------------------


def test_free_drops_the_callback_uncalled() -> None:
    store = PageStore.memory()
    pid = store.allocate()
    log: list[str] = []
    settle = Settler(b"never")
    settle.log = log
    store.defer(pid, settle)
    dropped = weakref.ref(settle)
    del settle
    store.free(pid)
    assert dropped() is None  # the store no longer holds it
    assert deferred(store) == 0
    store.checkpoint()
    again = store.allocate()
    assert again == pid
    assert read_payload(store, again) == bytes(PAYLOAD)
    store.checkpoint()
    assert log == []  # never called


def test_close_drops_the_callback_uncalled(tmp_path: Path) -> None:
    path = tmp_path / NAME
    store = PageStore.open(path)
    pid = store.allocate()
    store.checkpoint(b"before")
    settle = Settler(b"never")
    store.defer(pid, settle)
    dropped = weakref.ref(settle)
    del settle
    store.close()
    assert dropped() is None  # released at once, though `store` is still referenced
    assert deferred(store) == 0
    with PageStore.open(path) as store:
        assert store.meta == b"before"
        assert read_payload(store, pid) == bytes(PAYLOAD)


def test_second_defer_settles_the_first_before_registering() -> None:
    store = PageStore.memory()
    pid = store.allocate()
    log: list[str] = []
    first, second = Settler(b"first"), Settler(b"2nd")
    first.log = second.log = log
    first.name, second.name = "first", "second"
    store.defer(pid, first)
    store.defer(pid, second)
    assert log == ["first"]
    assert deferred(store) == 1
    assert read_payload(store, pid)[:5] == b"2ndst"
    assert log == ["first", "second"]
    assert second.seen[0][:5] == b"first"


# --- a settle that declines -------------------------------------------------------------------


def test_eviction_skips_a_declining_page_and_evicts_another() -> None:
    store = PageStore.open_file(MemoryFile(), pool_pages=2, replacer="lru")
    a, b, c = store.allocate(), store.allocate(), store.allocate()
    store.checkpoint()
    for pid in (a, b):
        with store.read(pid) as page:
            page.extra = f"extra {pid}"
    busy = Settler(b"busy", ready=False)
    store.defer(a, busy)
    read_payload(store, b)  # a is now the least recently used: LRU's victim
    evictions = store.stats()["evictions"]
    read_payload(store, c)
    assert busy.calls >= 1 and busy.settled == 0
    assert store.stats()["evictions"] == evictions + 1
    assert store.cached_extra(a) == f"extra {a}"  # still resident, still deferred
    assert store.cached_extra(b) is None  # b went instead
    assert deferred(store) == 1
    busy.ready = True
    assert read_payload(store, a)[:4] == b"busy"
    assert deferred(store) == 0


def flip_after(settle: Settler, seconds: float = 0.02) -> threading.Timer:
    timer = threading.Timer(seconds, lambda: setattr(settle, "ready", True))
    timer.daemon = True
    timer.start()
    return timer


def test_miss_waits_when_the_only_victim_declines_then_completes() -> None:
    store = PageStore.memory(pool_pages=1)
    a, b = store.allocate(), store.allocate()  # the one frame holds b
    store.checkpoint()
    busy = Settler(b"busy", ready=False)
    store.defer(b, busy)
    started = time.monotonic()
    flip_after(busy)
    thread, results, errors = in_thread(lambda: read_payload(store, a))
    finish(thread, errors)
    assert time.monotonic() - started >= 0.015  # it waited for the flip
    assert results == [bytes(PAYLOAD)]
    assert busy.calls > 1 and busy.settled == 1  # asked again after declining
    assert read_payload(store, b)[:4] == b"busy"  # written back when evicted


def test_checkpoint_waits_for_a_declining_settle_then_commits(tmp_path: Path) -> None:
    path = tmp_path / NAME
    with PageStore.open(path) as store:
        pid = store.allocate()
        busy = Settler(b"busy", ready=False)
        store.defer(pid, busy)
        thread, _, errors = in_thread(lambda: store.checkpoint(b"done"))
        time.sleep(0.02)
        assert thread.is_alive()  # blocked on the declining settle
        assert store.meta == b""
        busy.ready = True
        finish(thread, errors)
        assert store.meta == b"done"
        assert busy.settled == 1
    with PageStore.open(path) as store:
        assert read_payload(store, pid)[:4] == b"busy"


def test_read_guard_on_a_declining_page_waits_until_it_settles() -> None:
    store = PageStore.memory()
    pid = store.allocate()
    busy = Settler(b"busy", ready=False)
    store.defer(pid, busy)
    thread, results, errors = in_thread(lambda: read_payload(store, pid))
    time.sleep(0.02)
    assert thread.is_alive()
    assert not results
    busy.ready = True
    finish(thread, errors)
    assert results == [b"busy" + bytes(PAYLOAD - 4)]
    assert busy.settled == 1


def test_a_waiting_operation_ends_when_the_store_closes() -> None:
    store = PageStore.memory()
    pid = store.allocate()
    store.defer(pid, Settler(b"never", ready=False))
    thread, _, errors = in_thread(lambda: read_payload(store, pid))
    time.sleep(0.02)
    store.close()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], StoreClosedError)


# --- a settle that raises -------------------------------------------------------------------


def test_exception_from_settle_propagates_and_the_page_stays_deferred() -> None:
    store = PageStore.memory()
    pid = store.allocate()
    store.checkpoint(b"c0")
    settle = Settler(b"finally")
    settle.fail = True
    store.defer(pid, settle)
    with pytest.raises(RuntimeError, match="settle failed"):
        store.read(pid)
    assert deferred(store) == 1
    assert store.stats()["pool_pinned"] == 0  # the failed read left no pin behind
    with pytest.raises(RuntimeError, match="settle failed"):
        store.checkpoint(b"c1")
    assert store.meta == b"c0"
    assert deferred(store) == 1
    settle.fail = False
    assert read_payload(store, pid)[:7] == b"finally"
    assert deferred(store) == 0
    store.checkpoint(b"c1")
    assert store.meta == b"c1"


def test_exception_from_settle_during_eviction_propagates_and_loses_nothing() -> None:
    store = PageStore.memory(pool_pages=1)
    a, b = store.allocate(), store.allocate()
    settle = Settler(b"b's bytes")
    settle.fail = True
    store.defer(b, settle)
    with pytest.raises(RuntimeError):
        store.read(a)  # needs b's frame
    assert deferred(store) == 1
    settle.fail = False
    assert read_payload(store, a) == bytes(PAYLOAD)
    assert deferred(store) == 0
    assert read_payload(store, b)[:9] == b"b's bytes"


# --- errors ---------------------------------------------------------------------------------


def test_defer_errors(tmp_path: Path) -> None:
    path = tmp_path / NAME
    settle = Settler(b"x")
    with PageStore.open(path) as store:
        pid = store.allocate()
        with pytest.raises(TypeError):
            store.defer(pid, b"not callable")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            store.defer("1", settle)  # type: ignore[arg-type]
        for bad in (0, pid + 1, 2**40):
            with pytest.raises(InvalidPageIdError):
                store.defer(bad, settle)
        freed = store.allocate()
        store.free(freed)
        with pytest.raises(InvalidPageIdError):
            store.defer(freed, settle)
        assert deferred(store) == 0
        store.checkpoint()
    with PageStore.open(path, read_only=True) as reader, pytest.raises(PageUsageError):
        reader.defer(pid, settle)
    store.close()
    with pytest.raises(StoreClosedError):
        store.defer(pid, settle)
    assert settle.calls == 0
