"""I/O faults: a write or fsync that fails, a full disk — typed errors, nothing lost.

SQLite's I/O-error loop: fail the Nth write (or fsync) of a workload, N = 1, 2, ... until
the workload completes; after every failure the store refuses further use (a failed
fsync may have dropped data, so carrying on could report durability that does not exist),
and reopening gives the previous checkpoint — or, if the failure came after the new
superblock reached the disk, possibly the new one; never anything else.
"""

from __future__ import annotations

import errno

import pytest
from conftest import fill

from page_db import PageError, PageStore, StorePoisonedError
from page_db._load import initial_image
from strata_testkit import CrashFS

PS = 4096
PAYLOAD = PS - 32
NAME = "store.pages"


def base() -> tuple[dict[str, bytes], dict[int, bytes]]:
    """A durable store image holding checkpoint b"A", and its model."""
    fs = CrashFS(files={NAME: initial_image(PS)})
    store = PageStore.open_file(fs.open(NAME), pool_pages=4)
    model = {}
    for _ in range(12):
        pid = store.allocate()
        with store.write(pid) as page:
            page.payload[:] = fill(pid, 0, PAYLOAD)
        model[pid] = fill(pid, 0, PAYLOAD)
    store.checkpoint(b"A")
    store.close()
    return fs.durable_files(), model


BASE, MODEL_A = base()


def workload_b(store: PageStore) -> dict[int, bytes]:
    model = dict(MODEL_A)
    for pid in sorted(model)[::2]:
        with store.write(pid) as page:
            page.payload[:] = fill(pid, 1, PAYLOAD)
        model[pid] = fill(pid, 1, PAYLOAD)
    store.free(1)
    del model[1]
    pid = store.allocate()
    with store.write(pid) as page:
        page.payload[:] = fill(pid, 2, PAYLOAD)
    model[pid] = fill(pid, 2, PAYLOAD)
    store.checkpoint(b"B")
    return model


def assert_store_is(files: dict[str, bytes], models: dict[bytes, dict[int, bytes]]) -> bytes:
    fs = CrashFS(files=files)
    store = PageStore.open_file(fs.open(NAME, create=False), pool_pages=4)
    assert store.meta in models
    for pid, payload in models[store.meta].items():
        with store.read(pid) as page:
            assert bytes(page.payload) == payload
    return store.meta


@pytest.mark.parametrize("op", ["write", "fsync"])
def test_io_error_at_every_call(op: str) -> None:
    outcomes = set()
    for nth in range(1, 200):
        fs = CrashFS(files=BASE)
        store = PageStore.open_file(fs.open(NAME), pool_pages=4)
        fs.fail_on(op, nth=nth)  # type: ignore[arg-type]
        try:
            model_b = workload_b(store)
        except StorePoisonedError:
            with pytest.raises(StorePoisonedError):
                store.read(2)
            with pytest.raises(StorePoisonedError):
                store.checkpoint(b"again")
            fs.clear_faults()
            models = {b"A": MODEL_A}
            # Whatever a crash could leave now is A, or B if its superblock got out.
            for state in fs.crash_states(seed=nth, max_states=12):
                outcomes.add(assert_store_is(state.files, {**models, b"B": _model_b()}))
            continue
        assert assert_store_is(fs.files(), {b"B": model_b}) == b"B"
        break
    else:  # pragma: no cover
        raise AssertionError("workload never completed")
    assert nth > 1, "the fault never fired"
    assert b"A" in outcomes


def _model_b() -> dict[int, bytes]:
    store = PageStore.open_file(CrashFS(files=BASE).open(NAME), pool_pages=4)
    return workload_b(store)


def test_disk_full_during_checkpoint_is_typed_and_loses_nothing() -> None:
    fs = CrashFS(files=BASE)
    store = PageStore.open_file(fs.open(NAME), pool_pages=64)
    fs.set_capacity(len(BASE[NAME]) + PS)  # room for one more page only
    with pytest.raises(StorePoisonedError) as info:
        workload_b(store)
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.ENOSPC
    fs.set_capacity(None)
    assert assert_store_is(fs.files(), {b"A": MODEL_A}) == b"A"


def test_failed_eviction_write_poisons() -> None:
    fs = CrashFS(files=BASE)
    store = PageStore.open_file(fs.open(NAME), pool_pages=2)
    with store.write(2) as page:
        page.payload[:4] = b"new!"
    fs.fail_on("write", nth=1)
    with pytest.raises(StorePoisonedError):
        for pid in (3, 4, 5):  # evicts the dirty page 2
            with store.read(pid):
                pass
    with pytest.raises(StorePoisonedError):
        store.allocate()


def test_failed_read_raises_without_poisoning() -> None:
    fs = CrashFS(files=BASE)
    store = PageStore.open_file(fs.open(NAME), pool_pages=4)
    fs.fail_on("read", nth=1)
    with pytest.raises(OSError):
        store.read(2)
    with store.read(2) as page:
        assert bytes(page.payload) == MODEL_A[2]
    store.checkpoint(b"still fine")


def test_poisoned_store_can_still_be_closed_and_reopened() -> None:
    fs = CrashFS(files=BASE)
    store = PageStore.open_file(fs.open(NAME), pool_pages=4)
    fs.fail_on("fsync", nth=1)
    with pytest.raises(PageError):
        workload_b(store)
    store.close()
    fs.clear_faults()
    reopened = PageStore.open_file(fs.open(NAME), pool_pages=4)
    assert reopened.meta in (b"A", b"B")
