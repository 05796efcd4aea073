"""Splits of packed leaves by moving page bytes (``_split``), as after a bulk load.

A leaf whose cells lie in key order without garbage splits by block copies instead of
encoding both halves again. These tests check that such leaves do take that path, that
the pages it writes decode to exactly the cached leaves (``verify`` compares entries,
sizes, heap top, garbage and slot arrays) with zeroed free gaps, that the tree stays equal
to a model with fixed and with mixed entry sizes, and that power loss at any point keeps
a checkpointed tree.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from _btree_helpers import NAME, check_equal, checkpointed_tree, durable_tree

from index_db import BTree
from index_db.btree import _layout as L
from index_db.btree import _rebalance, _split
from index_db.btree._node import Leaf, decode_leaf, encode_leaf
from page_db import PageStore
from strata_testkit import CrashFS, explore_crashes


def _count_general_splits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the node kind of every split that takes the general path."""
    kinds: list[str] = []
    real: Callable[..., Any] = _rebalance._split

    def split(core: Any, node: Any) -> Any:
        kinds.append(type(node).__name__)
        return real(core, node)

    monkeypatch.setattr(_rebalance, "_split", split)
    return kinds


def _leaf_gaps_are_zero(tree: BTree, store: PageStore) -> bool:
    for leaf in tree._core.leaves():
        with store.read(leaf.pid) as page:
            payload = bytes(page.payload)
        _, _, count, top, _, _, _ = L.NODE_HEADER.unpack_from(payload, 0)
        if any(payload[L.HEADER_SIZE + L.SLOT_SIZE * count : top]):
            return False
    return True


def test_packed_leaves_split_by_moving_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(11)
    store = PageStore.memory(pool_pages=512)
    tree = BTree.create(store)
    model = {rnd.randbytes(16): rnd.randbytes(100) for _ in range(3000)}
    tree.bulk_load(sorted(model.items()))
    leaves = tree.verify()["leaves"]
    general = _count_general_splits(monkeypatch)
    # One new key per leaf at most, spread over the whole range: each one splits a
    # packed leaf, including inserts before the first and after the last key.
    new = [rnd.randbytes(16) for _ in range(leaves // 2)] + [b"\x00", b"\xff" * 17]
    for step, key in enumerate(new):
        model[key] = rnd.randbytes(100)
        tree.put(key, model[key])
        if step % 25 == 0:
            tree.verify()
    stats = tree.verify()
    assert stats["leaves"] > leaves + len(new) // 2  # most inserts split a leaf
    assert "Leaf" not in general  # every one of those splits moved bytes
    assert _leaf_gaps_are_zero(tree, store)
    check_equal(tree, model)


def test_mixed_sizes_take_both_paths_and_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(12)
    store = PageStore.memory(pool_pages=512)
    tree = BTree.create(store)

    def entry() -> tuple[bytes, bytes]:
        return rnd.randbytes(rnd.randint(1, 60)), rnd.randbytes(rnd.choice((0, 7, 90, 300)))

    model = dict(entry() for _ in range(1500))
    tree.bulk_load(sorted(model.items()))
    general = _count_general_splits(monkeypatch)
    splits_before = tree.verify()["leaves"]
    for step in range(1500):
        key, value = entry()
        if step % 7 == 0 and model:
            victim = rnd.choice(sorted(model))
            assert tree.delete(victim)
            del model[victim]
        if step % 5 == 0 and model:
            # A value that grows past its leaf's room leaves its old cell as garbage on
            # the page: that leaf splits the general way.
            key = rnd.choice(sorted(model))
            value = rnd.randbytes(300)
        tree.put(key, value)
        model[key] = value
        if step % 50 == 0:
            tree.verify()
    assert tree.verify()["leaves"] - splits_before > len(general)  # some moved bytes
    assert "Leaf" in general  # and some leaves took the general path
    assert _leaf_gaps_are_zero(tree, store)
    check_equal(tree, model)


def test_power_loss_during_byte_splits_keeps_a_checkpoint() -> None:
    setup_fs, store, tree = durable_tree(pool_pages=64)
    rnd = random.Random(13)
    loaded = {rnd.randbytes(8): rnd.randbytes(150) for _ in range(400)}
    tree.bulk_load(sorted(loaded.items()))
    meta = tree.meta() + b"\x00"
    store.checkpoint(meta)
    store.close()
    files = setup_fs.files()
    models: dict[bytes, dict[bytes, bytes]] = {meta: dict(loaded)}

    def workload(fs: CrashFS) -> None:
        store = PageStore.open_file(fs.open(NAME), pool_pages=8)
        tree = BTree.open(store, store.meta)
        work = random.Random(14)
        model = dict(loaded)
        for round_ in range(1, 4):
            for _ in range(25):
                key = work.randbytes(8)
                model[key] = work.randbytes(150)
                tree.put(key, model[key])
            meta = tree.meta() + bytes([round_])
            models[meta] = dict(model)
            store.checkpoint(meta)
        store.close()

    assert explore_crashes(workload, checkpointed_tree(models), files=files, max_states=6) > 10


@pytest.mark.parametrize("seed", range(6))
def test_split_pages_are_what_a_rewrite_writes(seed: int) -> None:
    """Both pages of a byte split equal ``encode_leaf`` of the two halves, byte for byte."""
    rnd = random.Random(seed)
    cap = 4064 - L.HEADER_SIZE
    entries: list[tuple[bytes, bytes]] = []
    used = 0
    while True:  # fill one leaf of a 4 KiB page (4064-byte payload) to the last entry
        key, value = rnd.randbytes(rnd.randint(1, 40)), rnd.randbytes(rnd.choice((0, 5, 100, 600)))
        size = L.CELL_HEADER_SIZE + L.SLOT_SIZE + len(key) + len(value)
        if used + size > cap:
            break
        entries.append((key, value))
        used += size
    entries = sorted(dict(entries).items())
    leaf = Leaf(7, [k for k, _ in entries], [v for _, v in entries], 99)
    left, right = bytearray(4064), bytearray(4064)
    encode_leaf(memoryview(left), leaf)
    offs = _split._in_order(memoryview(left), leaf)
    assert offs is not None
    new = _split._split_in_order(memoryview(left), memoryview(right), leaf, 8, offs)
    assert leaf.keys + new.keys == [k for k, _ in entries]
    assert (leaf.next, new.next) == (8, 99)
    for page, half in ((left, leaf), (right, new)):
        expected = bytearray(4064)
        encode_leaf(memoryview(expected), Leaf(half.pid, half.keys, half.vals, half.next))
        assert page == expected
        decoded = decode_leaf(bytes(page), half.pid)
        assert (decoded.used, decoded.top, decoded.garbage) == (half.used, half.top, 0)
    # balanced: moving the cut one entry either way would not balance the bytes better
    sizes = [L.CELL_HEADER_SIZE + L.SLOT_SIZE + len(k) + len(v) for k, v in entries]
    m = len(leaf.keys)
    gap = abs(sum(sizes[:m]) - sum(sizes[m:]))
    for other in (m - 1, m + 1):
        if 1 <= other < len(sizes):
            assert gap <= abs(sum(sizes[:other]) - sum(sizes[other:]))
