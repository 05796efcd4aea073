"""Behaviour of PageStore a user relies on: pages, guards, the pool, checkpoints, errors."""

from __future__ import annotations

import gc
import os
import threading
import tracemalloc
from pathlib import Path

import pytest
from conftest import fill

from page_db import (
    PAGE_HEADER_SIZE,
    CorruptPageError,
    InvalidPageIdError,
    MemoryFile,
    PageSizeMismatchError,
    PageStore,
    PageUsageError,
    PoolExhaustedError,
    StoreClosedError,
    StoreLockedError,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.pages"


def write_payload(store: PageStore, page_id: int, data: bytes) -> None:
    with store.write(page_id) as page:
        page.payload[: len(data)] = data


def read_payload(store: PageStore, page_id: int) -> bytes:
    with store.read(page_id) as page:
        return bytes(page.payload)


def test_new_page_is_zero_and_payload_size(path: Path) -> None:
    with PageStore.open(path) as store:
        pid = store.allocate()
        assert pid == 1
        assert read_payload(store, pid) == bytes(4096 - PAGE_HEADER_SIZE)
        assert store.payload_size == 4096 - PAGE_HEADER_SIZE
        with store.read(pid) as page:
            assert page.lsn == 0
            assert page.page_id == pid


def test_allocated_page_is_zero_in_a_reused_or_evicted_frame(path: Path) -> None:
    # A new frame's buffer starts zeroed and allocate() skips the copy for it; a frame
    # handed back by free() or taken from an evicted page still holds the old bytes.
    with PageStore.open(path, pool_pages=2) as store:
        junk = b"\xa5" * store.payload_size
        a, b = store.allocate(), store.allocate()
        for pid in (a, b):
            with store.write(pid) as page:
                page.payload[:] = junk
                page.lsn = 77
        store.free(b)
        reused = store.allocate()  # takes the frame free() released
        c = store.allocate()  # the pool is full: evicts a, a dirty page
        for pid in (reused, c):
            assert read_payload(store, pid) == bytes(store.payload_size)
            with store.read(pid) as page:
                assert page.lsn == 0
        assert read_payload(store, a) == junk


def test_patch_changes_bytes_in_place_keeps_extra_and_lsn(path: Path) -> None:
    with PageStore.open(path, pool_pages=2) as store:
        a, b, c = store.allocate(), store.allocate(), store.allocate()  # c evicted a dirty page
        with store.write(a) as page:
            page.payload[:5] = b"hello"
            page.lsn = 9
            page.extra = marker = object()
        store.patch(a, 1, b"ELL")
        store.patch(a, store.payload_size - 2, bytearray(b"zz"))
        store.patch(a, 0, b"")
        assert store.cached_extra(a) is marker  # kept: the caller keeps it in step
        for pid in (b, c):  # one of them is not resident: patch loads it
            store.patch(pid, 10, memoryview(b"xy"))
        store.checkpoint(b"m")
    with PageStore.open(path) as store:
        payload = read_payload(store, a)
        assert payload[:5] == b"hELLo" and payload[-2:] == b"zz"
        with store.read(a) as page:
            assert page.lsn == 9
        for pid in (b, c):
            assert read_payload(store, pid)[8:14] == b"\0\0xy\0\0"


def test_patch_refuses_bad_ranges_types_and_states(path: Path) -> None:
    with PageStore.open(path) as store:
        pid = store.allocate()
        size = store.payload_size
        for offset, data in ((-1, b"x"), (size, b"x"), (size - 1, b"xy")):
            with pytest.raises(PageUsageError, match="outside"):
                store.patch(pid, offset, data)
        with pytest.raises(TypeError):
            store.patch(pid, 0, 5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            store.patch(pid, 1.0, b"x")  # type: ignore[arg-type]
        with pytest.raises(InvalidPageIdError):
            store.patch(pid + 1, 0, b"x")
        assert read_payload(store, pid) == bytes(size)
        store.checkpoint()
    with PageStore.open(path, read_only=True) as store, pytest.raises(PageUsageError):
        store.patch(pid, 0, b"x")
    store.close()
    with pytest.raises(StoreClosedError):
        store.patch(pid, 0, b"x")


def test_checkpoint_survives_reopen_and_uncheckpointed_changes_do_not(path: Path) -> None:
    with PageStore.open(path) as store:
        a, b = store.allocate(), store.allocate()
        write_payload(store, a, b"first")
        write_payload(store, b, b"second")
        store.checkpoint(meta=b"v1")
        write_payload(store, a, b"changed")
        store.free(b)
        store.allocate()
    with PageStore.open(path) as store:
        assert store.meta == b"v1"
        assert read_payload(store, a).startswith(b"first")
        assert read_payload(store, b).startswith(b"second")
        assert store.stats()["pages"] == 2


def test_lsn_round_trips_and_is_range_checked(path: Path) -> None:
    with PageStore.open(path) as store:
        pid = store.allocate()
        with store.write(pid) as page:
            page.lsn = 2**64 - 1
            with pytest.raises(PageUsageError):
                page.lsn = 2**64
        store.checkpoint()
    with PageStore.open(path) as store, store.read(pid) as page:
        assert page.lsn == 2**64 - 1


def test_read_view_is_read_only(path: Path) -> None:
    with PageStore.open(path) as store:
        pid = store.allocate()
        with store.read(pid) as page, pytest.raises(TypeError):
            page.payload[0] = 1


def test_change_set_larger_than_pool_is_checkpointed_atomically(path: Path) -> None:
    with PageStore.open(path, pool_pages=8) as store:
        ids = [store.allocate() for _ in range(200)]
        for pid in ids:
            write_payload(store, pid, fill(pid, 1, 64))
        assert store.stats()["evictions"] > 0
        store.checkpoint(b"one")
        for pid in ids[::2]:
            write_payload(store, pid, fill(pid, 2, 64))
        # evicted dirty pages were written to disk, but not checkpointed
    with PageStore.open(path, pool_pages=8) as store:
        assert store.meta == b"one"
        for pid in ids:
            assert read_payload(store, pid)[:64] == fill(pid, 1, 64)


def test_freed_ids_are_reused_smallest_first(path: Path) -> None:
    with PageStore.open(path) as store:
        ids = [store.allocate() for _ in range(5)]
        store.free(ids[3])
        store.free(ids[1])
        assert store.allocate() == ids[1]
        store.checkpoint()
    with PageStore.open(path) as store:
        assert store.allocate() == ids[3]
        assert store.allocate() == 6


def test_freed_and_unknown_ids_raise(path: Path) -> None:
    with PageStore.open(path) as store:
        pid = store.allocate()
        store.free(pid)
        for bad in (pid, 0, -1, 99, 2**40):
            with pytest.raises(InvalidPageIdError):
                store.read(bad)
            with pytest.raises(InvalidPageIdError):
                store.write(bad)
        with pytest.raises(InvalidPageIdError):
            store.free(pid)
        with pytest.raises(TypeError):
            store.read("1")  # type: ignore[arg-type]


def test_free_of_pinned_page_is_refused(path: Path) -> None:
    with PageStore.open(path) as store:
        pid = store.allocate()
        with store.read(pid), pytest.raises(PageUsageError):
            store.free(pid)
        store.free(pid)


def test_every_frame_pinned_raises_instead_of_hanging(path: Path) -> None:
    with PageStore.open(path, pool_pages=2) as store:
        ids = [store.allocate() for _ in range(3)]
        store.checkpoint()
        with store.read(ids[0]), store.read(ids[1]):
            with pytest.raises(PoolExhaustedError):
                store.read(ids[2])
            with pytest.raises(PoolExhaustedError):
                store.allocate()
        assert read_payload(store, ids[2]) == bytes(store.payload_size)


def test_extra_slot_kept_across_reads_dropped_on_write_and_eviction(path: Path) -> None:
    with PageStore.open(path, pool_pages=2) as store:
        a, b, c = store.allocate(), store.allocate(), store.allocate()
        store.checkpoint()
        with store.read(a) as page:
            assert page.extra is None
            page.extra = "decoded-a"
        with store.read(a) as page:
            assert page.extra == "decoded-a"
        with store.write(a) as page:
            assert page.extra is None
            page.extra = "decoded-a2"
        with store.read(a) as page:
            assert page.extra == "decoded-a2"
        for pid in (b, c, b, c):  # push a out of a 2-frame pool
            with store.read(pid):
                pass
        with store.read(a) as page:
            assert page.extra is None


def test_page_size_is_recorded_and_mismatch_is_typed(path: Path) -> None:
    with PageStore.open(path, page_size=16384) as store:
        assert store.page_size == 16384
        store.allocate()
        store.checkpoint()
    with pytest.raises(PageSizeMismatchError) as info:
        PageStore.open(path, page_size=4096)
    assert info.value.actual == 16384
    with pytest.raises(PageSizeMismatchError):
        PageStore.open(path, page_size=65536)


@pytest.mark.parametrize("size", [0, 1000, 2048, 3 * 4096, 2**17, 4097])
def test_invalid_page_sizes_are_refused(path: Path, size: int) -> None:
    with pytest.raises(PageUsageError):
        PageStore.open(path, page_size=size)
    assert not path.exists()


@pytest.mark.parametrize("size", [4096, 8192, 32768, 65536])
def test_every_page_size_works(path: Path, size: int) -> None:
    with PageStore.open(path, page_size=size, pool_pages=4) as store:
        ids = [store.allocate() for _ in range(20)]
        for pid in ids:
            write_payload(store, pid, fill(pid, 0, size - PAGE_HEADER_SIZE))
        store.checkpoint(b"m" * (size - 64))
    with PageStore.open(path, page_size=size, pool_pages=4) as store:
        assert store.meta == b"m" * (size - 64)
        for pid in ids:
            assert read_payload(store, pid) == fill(pid, 0, size - PAGE_HEADER_SIZE)


def test_meta_limits_and_types(path: Path) -> None:
    with PageStore.open(path) as store:
        with pytest.raises(PageUsageError):
            store.checkpoint(b"x" * (4096 - 63))
        with pytest.raises(TypeError):
            store.checkpoint("text")  # type: ignore[arg-type]
        store.checkpoint(bytearray(b"ok"))
        assert store.meta == b"ok"


def test_second_open_is_locked_out(path: Path) -> None:
    with PageStore.open(path), pytest.raises(StoreLockedError):
        PageStore.open(path)
    PageStore.open(path).close()


def test_closed_store_raises(path: Path) -> None:
    store = PageStore.open(path)
    pid = store.allocate()
    store.close()
    store.close()
    for call in (lambda: store.read(pid), store.allocate, store.checkpoint):
        with pytest.raises(StoreClosedError):
            call()


def test_pool_pages_is_the_capacity_asked_for(path: Path) -> None:
    with PageStore.open(path, pool_pages=37) as store:
        assert store.pool_pages == 37 == store.stats()["pool_capacity"]
    assert PageStore.memory().pool_pages == 2048  # the documented default


def test_close_releases_the_pool_memory_at_once(path: Path) -> None:
    # Even while the store object is still referenced (as after a `with` block), and
    # without a garbage collection: the frames' buffers are freed by reference counting.
    collecting = gc.isenabled()
    gc.disable()
    tracemalloc.start()
    try:
        store = PageStore.open(path, pool_pages=600)
        for _ in range(500):
            store.allocate()
        with store.read(1) as page:
            page.extra = ["decoded"]
        before = tracemalloc.get_traced_memory()[0]
        store.close()
        released = before - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        if collecting:
            gc.enable()
    assert released >= 500 * 4096
    with pytest.raises(StoreClosedError):
        store.read(1)
    store.close()


def test_creation_leaves_no_temp_file(path: Path) -> None:
    PageStore.open(path).close()
    assert sorted(os.listdir(path.parent)) == [path.name]


def test_garbage_file_is_a_typed_error(path: Path) -> None:
    path.write_bytes(os.urandom(3 * 4096))
    with pytest.raises(CorruptPageError):
        PageStore.open(path)


def test_memory_store_checkpoints_like_a_file() -> None:
    store = PageStore.memory()
    pid = store.allocate()
    write_payload(store, pid, b"mem")
    store.checkpoint(b"m")
    assert store.meta == b"m"
    assert read_payload(store, pid).startswith(b"mem")


def test_open_file_on_memory_file_reopens() -> None:
    file = MemoryFile()
    store = PageStore.open_file(file)
    pid = store.allocate()
    write_payload(store, pid, b"kept")
    store.checkpoint(b"k")
    image = file.getvalue()
    reopened = PageStore.open_file(MemoryFile(image))
    assert reopened.meta == b"k"
    assert read_payload(reopened, pid).startswith(b"kept")


def test_direct_io_on_a_real_filesystem(path: Path) -> None:
    with PageStore.open(path, direct_io=True) as store:
        pid = store.allocate()
        write_payload(store, pid, b"direct")
        store.checkpoint()
        stats = store.stats()
    assert stats["direct_io"] or stats["direct_io_fallback"]
    with PageStore.open(path, direct_io=True) as store:
        assert read_payload(store, pid).startswith(b"direct")


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs tmpfs at /dev/shm")
def test_direct_io_on_tmpfs_works_or_falls_back_and_says_so() -> None:
    # Linux >= 6.6 supports O_DIRECT on tmpfs; older kernels refuse it with EINVAL.
    import tempfile

    with tempfile.TemporaryDirectory(dir="/dev/shm") as directory:
        with PageStore.open(os.path.join(directory, "s.pages"), direct_io=True) as store:
            pid = store.allocate()
            write_payload(store, pid, b"tmpfs")
            store.checkpoint()
            assert read_payload(store, pid).startswith(b"tmpfs")
            stats = store.stats()
        assert stats["direct_io"] != bool(stats["direct_io_fallback"])


@pytest.mark.parametrize("refused_at", ["open", "first read"])
def test_direct_io_refusal_falls_back_to_buffered_io(
    path: Path, monkeypatch: pytest.MonkeyPatch, refused_at: str
) -> None:
    import errno

    real_open, real_preadv = os.open, os.preadv

    def refusing_open(name: str, flags: int, mode: int = 0o777) -> int:
        if refused_at == "open" and flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(name, flags, mode)

    def refusing_preadv(fd: int, buffers: list[memoryview], offset: int) -> int:
        if refused_at == "first read":
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr(os, "open", refusing_open)
    monkeypatch.setattr(os, "preadv", refusing_preadv)
    with PageStore.open(path, direct_io=True) as store:
        pid = store.allocate()
        write_payload(store, pid, b"buffered")
        store.checkpoint()
        stats = store.stats()
    assert stats["direct_io"] is False
    assert "refused O_DIRECT" in stats["direct_io_fallback"]
    monkeypatch.undo()
    with PageStore.open(path) as store:
        assert read_payload(store, pid).startswith(b"buffered")


def test_lru_policy_and_custom_factory(path: Path) -> None:
    from page_db import LruReplacer

    made: list[int] = []

    def factory(capacity: int) -> LruReplacer:
        made.append(capacity)
        return LruReplacer(capacity)

    for policy in ("lru", factory):
        with PageStore.open(path, pool_pages=3, replacer=policy) as store:
            ids = [store.allocate() for _ in range(10)]
            for pid in ids:
                write_payload(store, pid, fill(pid, 3, 32))
            store.checkpoint()
            for pid in ids:
                assert read_payload(store, pid)[:32] == fill(pid, 3, 32)
    assert made == [3]
    with pytest.raises(ValueError):
        PageStore.open(path, replacer="fifo")  # type: ignore[arg-type]


def test_checkpoint_waits_for_write_guards_of_other_threads(path: Path) -> None:
    with PageStore.open(path) as store:
        pid = store.allocate()
        store.checkpoint(b"0")
        entered, release = threading.Event(), threading.Event()

        def writer() -> None:
            with store.write(pid) as page:
                page.payload[:4] = b"half"
                entered.set()
                release.wait(5)
                page.payload[4:8] = b"done"

        thread = threading.Thread(target=writer)
        thread.start()
        entered.wait(5)
        checkpointer = threading.Thread(target=store.checkpoint, args=(b"1",))
        checkpointer.start()
        checkpointer.join(0.2)
        assert checkpointer.is_alive(), "checkpoint must wait for the open write guard"
        release.set()
        thread.join(5)
        checkpointer.join(5)
        assert store.meta == b"1"
    with PageStore.open(path) as store:
        assert read_payload(store, pid)[:8] == b"halfdone"


def test_checkpoint_inside_own_write_guard_is_refused_not_a_hang(path: Path) -> None:
    with PageStore.open(path) as store:
        pid = store.allocate()
        with store.write(pid), pytest.raises(PageUsageError):
            store.checkpoint()
        store.checkpoint()


def test_many_threads_share_one_store(path: Path) -> None:
    with PageStore.open(path, pool_pages=16) as store:
        per_thread = 50
        results: dict[int, list[int]] = {}
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                mine = []
                for i in range(per_thread):
                    pid = store.allocate()
                    write_payload(store, pid, fill(pid, n, 40))
                    mine.append(pid)
                    if i % 10 == 0:
                        store.checkpoint()
                for pid in mine:
                    assert read_payload(store, pid)[:40] == fill(pid, n, 40)
                results[n] = mine
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        all_ids = [pid for ids in results.values() for pid in ids]
        assert len(set(all_ids)) == 8 * per_thread
        store.checkpoint(b"end")
    with PageStore.open(path) as store:
        for n, ids in results.items():
            for pid in ids:
                assert read_payload(store, pid)[:40] == fill(pid, n, 40)


def test_read_only_open_beside_a_live_writer(path: Path) -> None:
    with PageStore.open(path) as writer:
        ids = [writer.allocate() for _ in range(4)]
        for pid in ids:
            write_payload(writer, pid, fill(pid, 1, 16))
        writer.checkpoint(b"one")
        with PageStore.open(path, read_only=True) as reader:
            assert reader.meta == b"one"
            assert read_payload(reader, ids[0])[:16] == fill(ids[0], 1, 16)
            for mutate in (
                reader.allocate,
                lambda: reader.write(ids[0]),
                lambda: reader.free(ids[0]),
                lambda: reader.checkpoint(b"no"),
            ):
                with pytest.raises(PageUsageError, match="read-only"):
                    mutate()
            assert reader.stats()["read_only"] is True
            # The writer moves on twice; the reader keeps its snapshot or refuses a page.
            for version in (2, 3):
                for pid in ids:
                    write_payload(writer, pid, fill(pid, version, 16))
                writer.checkpoint(b"v%d" % version)
            for pid in ids[1:]:
                try:
                    assert read_payload(reader, pid)[:16] == fill(pid, 1, 16)
                except CorruptPageError as exc:
                    assert "newer than its checkpoint" in str(exc)
        with PageStore.open(path, read_only=True) as reader:
            assert reader.meta == b"v3"
            assert read_payload(reader, ids[3])[:16] == fill(ids[3], 3, 16)


def test_read_only_open_of_missing_or_empty_file(path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        PageStore.open(path, read_only=True)
    path.write_bytes(b"")
    with pytest.raises(PageUsageError):
        PageStore.open(path, read_only=True)
