"""Deferred leaf writes: puts and deletes change the decoded leaf, page-db encodes it later.

A put or delete that fits its leaf changes only the decoded leaf and registers a page-db
deferred write (``PageStore.defer``). These tests pin down what a user relies on: every
read sees the change at once; a checkpoint, an eviction or a guard encodes the leaf first,
so nothing reaches the file older than the tree; a leaf taking many puts is encoded once;
power loss still reopens to the last checkpoint; and a thread evicting or checkpointing
never encodes a leaf another thread is changing (the settle waits for the tree latch).
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _btree_helpers import check_equal

from index_db import BTree
from index_db.btree import _node, _write
from index_db.btree._node import Leaf
from page_db import PageStore


def _fill(tree: BTree, rnd: random.Random, model: dict[bytes, bytes], n: int) -> None:
    for _ in range(n):
        key = rnd.randbytes(rnd.randint(1, 12))
        if model and rnd.random() < 0.25:
            victim = rnd.choice(sorted(model))
            assert tree.delete(victim)
            del model[victim]
        else:
            value = rnd.randbytes(rnd.choice((0, 20, 100, 700, 3000)))
            tree.put(key, value)
            model[key] = value


def test_changes_are_read_at_once_and_reach_the_file_at_the_checkpoint(tmp_path: Path) -> None:
    path = str(tmp_path / "t.pages")
    rnd = random.Random(1)
    model = {b"%06d" % n: b"x" * 40 for n in range(3000)}
    with PageStore.open(path, pool_pages=1024) as store:
        tree = BTree.create(store)
        tree.bulk_load(sorted(model.items()))
        store.checkpoint(tree.meta())
        assert store.stats()["pool_deferred"] == 0
        _fill(tree, rnd, model, 800)
        assert store.stats()["pool_deferred"] > 0  # leaves changed in memory only
        check_equal(tree, model)  # gets and scans see every change
        tree.verify()  # reads pages through guards, which settle what they read
        _fill(tree, rnd, model, 800)
        store.checkpoint(tree.meta())
        assert store.stats()["pool_deferred"] == 0
        saved = dict(model)
        _fill(tree, rnd, model, 300)  # after the checkpoint: dropped by close
        assert model != saved
    with PageStore.open(path, pool_pages=16) as store:
        tree = BTree.open(store, store.meta)
        tree.verify()
        check_equal(tree, saved)


def test_evictions_write_deferred_leaves_back_first() -> None:
    """With 8 frames, nearly every put evicts a leaf changed in memory only."""
    rnd = random.Random(3)
    model: dict[bytes, bytes] = {}
    store = PageStore.memory(pool_pages=8)
    tree = BTree.create(store)
    _fill(tree, rnd, model, 4000)
    assert store.stats()["evictions"] > 1000
    tree.verify()
    check_equal(tree, model)
    store.checkpoint(tree.meta())
    check_equal(BTree.open(store, store.meta), model)


def test_a_leaf_taking_many_puts_is_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    store = PageStore.memory(pool_pages=256)
    tree = BTree.create(store)
    tree.bulk_load((b"%06d" % n, b"v" * 20) for n in range(0, 20_000, 2))
    store.checkpoint(tree.meta())
    leaves = tree.verify()["leaves"]
    encoded: list[int] = []
    real = _node.encode_leaf

    def counting(payload: memoryview, leaf: Leaf) -> None:
        encoded.append(leaf.pid)
        real(payload, leaf)

    monkeypatch.setattr(_node, "encode_leaf", counting)
    for n in range(0, 20_000, 2):  # every key overwritten, each leaf ~40 times
        tree.put(b"%06d" % n, b"w" * 20)
    assert encoded == []  # nothing encoded while the puts run
    store.checkpoint(tree.meta())
    assert sorted(encoded) == sorted(set(encoded))  # each leaf once
    assert len(encoded) == leaves
    assert all(value == b"w" * 20 for _, value in tree.range())


def test_a_checkpoint_waits_while_another_thread_holds_the_tree() -> None:
    """The settle page-db calls takes the tree latch without waiting: while another thread
    holds it (mid-write), the leaf is not encoded and the checkpoint waits."""
    store = PageStore.memory(pool_pages=256)
    tree = BTree.create(store)
    for n in range(500):
        tree.put(b"%04d" % n, b"v" * 30)
    assert store.stats()["pool_deferred"] > 0
    meta = tree.meta()  # (meta() takes the latch too)
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with tree._core.latch:
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(5)
    timer = threading.Timer(0.1, release.set)
    timer.start()
    start = time.perf_counter()
    store.checkpoint(meta)
    waited = time.perf_counter() - start
    thread.join(5)
    assert not thread.is_alive()
    assert waited >= 0.05
    assert store.stats()["pool_deferred"] == 0
    check_equal(BTree.open(store, store.meta), {b"%04d" % n: b"v" * 30 for n in range(500)})


def test_threads_evicting_and_checkpointing_while_a_tree_is_written() -> None:
    """One thread writes tree A; another writes tree B on the same 24-frame store, evicting
    A's deferred leaves; the main thread checkpoints meanwhile. Nothing deadlocks, and both
    trees end equal to their models."""
    store = PageStore.memory(pool_pages=24)
    trees = [BTree.create(store), BTree.create(store)]
    models: list[dict[bytes, bytes]] = [{}, {}]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            _fill(trees[n], random.Random(10 + n), models[n], 3000)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        store.checkpoint(b"")  # the trees' metas are not saved: this only must not hang
        time.sleep(0.002)
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    assert errors == []
    pages = [tree.verify(other_pages=None)["pages"] for tree in trees]
    assert sum(pages) == store.stats()["pages"]  # no page leaked or shared
    for tree, model in zip(trees, models, strict=True):
        check_equal(tree, model)
    store.checkpoint(trees[0].meta())
    check_equal(BTree.open(store, store.meta), models[0])


def test_a_deferred_leaf_that_overflows_splits_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leaf whose page lags splits without touching a page byte: both halves deferred,
    encoded by the checkpoint, and the reopened tree equals the model."""
    splits: list[int] = []
    real = _write.split_deferred

    def counting(core: Any, leaf: Leaf, *args: Any) -> Any:
        assert leaf.pending
        splits.append(leaf.pid)
        return real(core, leaf, *args)

    monkeypatch.setattr(_write, "split_deferred", counting)
    path = str(tmp_path / "t.pages")
    rnd = random.Random(5)
    model: dict[bytes, bytes] = {}
    with PageStore.open(path, pool_pages=4096) as store:
        tree = BTree.create(store)
        for _ in range(6000):
            key = rnd.randbytes(8)
            model[key] = rnd.randbytes(rnd.choice((10, 60, 200)))
            tree.put(key, model[key])
        assert len(splits) > 50
        assert store.stats()["pool_deferred"] > 50
        check_equal(tree, model)
        store.checkpoint(tree.meta())
    with PageStore.open(path, pool_pages=64) as store:
        tree = BTree.open(store, store.meta)
        tree.verify()
        check_equal(tree, model)
