"""compact(): pages move down into free slots and the file's free tail is cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import fill

from page_db import PageStore

PS = 4096
PAYLOAD = PS - 32


def write(store: PageStore, model: dict[int, bytes], pid: int, version: int) -> None:
    data = fill(pid, version, PAYLOAD)
    with store.write(pid) as page:
        page.payload[:] = data
    model[pid] = data


def check(store: PageStore, model: dict[int, bytes]) -> None:
    assert store.stats()["pages"] == len(model)
    for pid, data in model.items():
        with store.read(pid) as page:
            assert bytes(page.payload) == data, pid


@pytest.mark.parametrize("direct_io", [False, True])
def test_compact_moves_pages_down_and_shrinks_the_file(tmp_path: Path, direct_io: bool) -> None:
    path = tmp_path / "store.pages"
    model: dict[int, bytes] = {}
    with PageStore.open(path, pool_pages=16, direct_io=direct_io) as store:
        pids = [store.allocate() for _ in range(400)]
        for pid in pids:
            write(store, model, pid, 1)
        store.checkpoint(b"full")
        full = path.stat().st_size
        for pid in pids[:300]:  # the low pages go; the high hundred stay
            store.free(pid)
            del model[pid]
        for pid in pids[300::7]:
            write(store, model, pid, 2)  # some dirty, some clean, some only on disk
        store.checkpoint(b"freed")
        grown = path.stat().st_size
        assert grown >= full  # a checkpoint never shrinks the file
        released = store.compact(b"compacted")
        after = path.stat().st_size
        assert released == grown - after > 0
        assert after <= (2 + 100 + 8) * PS  # superblocks, pages, table and free list
        assert store.meta == b"compacted"
        check(store, model)
        for pid in pids[300::5]:  # writes after compaction land inside the file
            write(store, model, pid, 3)
        store.checkpoint(b"after")
        assert path.stat().st_size <= after + 25 * PS
    with PageStore.open(path, pool_pages=16, direct_io=direct_io) as store:
        assert store.meta == b"after"
        check(store, model)
        assert store.compact(b"again") >= 0
        check(store, model)
    with PageStore.open(path, pool_pages=16) as store:
        assert store.meta == b"again"
        check(store, model)


def test_space_freed_since_the_last_checkpoint_is_reclaimed_by_the_next_compact(
    tmp_path: Path,
) -> None:
    """A slot the durable checkpoint references cannot take a page before this checkpoint
    commits: the first compact can only commit the frees, the second moves the pages."""
    path = tmp_path / "store.pages"
    model: dict[int, bytes] = {}
    with PageStore.open(path, pool_pages=16) as store:
        pids = [store.allocate() for _ in range(200)]
        for pid in pids:
            write(store, model, pid, 1)
        store.checkpoint(b"full")
        for pid in pids[:150]:
            store.free(pid)
            del model[pid]
        assert store.compact(b"one") == 0  # the freed slots are still the durable state's
        check(store, model)
        assert store.compact(b"two") > 100 * PS
        assert path.stat().st_size <= (2 + 50 + 6) * PS
        check(store, model)


def test_compact_of_a_compact_file_changes_nothing_but_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "store.pages"
    model: dict[int, bytes] = {}
    with PageStore.open(path, pool_pages=8) as store:
        for _ in range(50):
            write(store, model, store.allocate(), 1)
        store.checkpoint(b"c")
        size = path.stat().st_size
        assert store.compact(b"d") == 0
        assert path.stat().st_size <= size
        assert store.meta == b"d"
        check(store, model)


def test_compact_refuses_bad_meta_like_checkpoint() -> None:
    store = PageStore.memory(pool_pages=8)
    with pytest.raises(TypeError):
        store.compact("text")  # type: ignore[arg-type]
    store.close()
