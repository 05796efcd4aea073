"""Corrupt node pages give typed errors, never wrong answers.

Two kinds of damage. Bytes flipped in the file are caught by page-db's page checksum
(``CorruptPageError``). Bytes that pass the checksum but make no sense as a node — what a
bug or a hostile writer could leave — are caught by the node decoder and ``verify()``
(``CorruptIndexError``). Either way every read either raises one of the two or returns
exactly the right answer.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from index_db import BTree, CorruptIndexError
from index_db.btree import _layout as L
from page_db import CorruptPageError, PageStore

TYPED = (CorruptIndexError, CorruptPageError)


def build(path: Path) -> dict[bytes, bytes]:
    rnd = random.Random(5)
    model = {rnd.randbytes(8): rnd.randbytes(rnd.choice([10, 90, 5000])) for _ in range(400)}
    with PageStore.open(path) as store:
        tree = BTree.create(store)
        for key, value in model.items():
            tree.put(key, value)
        store.checkpoint(tree.meta())
    return model


def reads_are_right_or_typed(path: Path, model: dict[bytes, bytes]) -> None:
    try:
        store = PageStore.open(path)
    except CorruptPageError:
        return
    with store:
        try:
            tree = BTree.open(store, store.meta)
        except TYPED:
            return
        checks: list[Callable[[], object]] = [
            tree.verify,
            lambda: list(tree.range()) == sorted(model.items()) or pytest.fail("range"),
            lambda: (
                list(tree.range(reverse=True)) == sorted(model.items(), reverse=True)
                or pytest.fail("reverse")
            ),
        ]
        for key in list(model)[:40]:
            checks.append(lambda key=key: tree.get(key) == model[key] or pytest.fail("get"))
        for check in checks:
            with contextlib.suppress(*TYPED):
                check()


def test_flipped_file_bytes_are_caught(tmp_path: Path) -> None:
    path = tmp_path / "tree.pages"
    model = build(path)
    image = path.read_bytes()
    rnd = random.Random(1)
    for _ in range(25):
        offset = rnd.randrange(2 * 4096, len(image))
        damaged = bytearray(image)
        damaged[offset] ^= 1 << rnd.randrange(8)
        path.write_bytes(bytes(damaged))
        reads_are_right_or_typed(path, model)


def node_pages(store: PageStore, tree: BTree) -> list[int]:
    pids, todo = [], [tree.root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        with store.read(pid) as page:
            raw = bytes(page.payload)
        if raw[0] == L.KIND_BRANCH:
            n = int.from_bytes(raw[2:4], "little")
            todo += [int.from_bytes(raw[16 + 4 * i : 20 + 4 * i], "little") for i in range(n + 1)]
    return pids


@pytest.mark.parametrize(
    "region",
    ["kind", "level", "count", "top", "garbage", "next", "slots", "cell", "child", "tail"],
)
def test_nonsense_behind_a_valid_checksum_is_caught(tmp_path: Path, region: str) -> None:
    path = tmp_path / "tree.pages"
    model = build(path)
    rnd = random.Random(region)
    with PageStore.open(path) as store:
        tree = BTree.open(store, store.meta)
        pids = node_pages(store, tree)
        for pid in rnd.sample(pids, min(6, len(pids))):
            with store.write(pid) as page:
                payload = page.payload
                n = int.from_bytes(payload[2:4], "little")
                offset = {
                    "kind": 0,
                    "level": 1,
                    "count": 2,
                    "top": 4,
                    "garbage": 6,
                    "next": 8,
                    "slots": 16 + rnd.randrange(max(1, 2 * n)),
                    "cell": len(payload) - 1 - rnd.randrange(200),
                    "child": 16 + rnd.randrange(4),
                    "tail": 12,
                }[region]
                payload[offset] ^= 0xFF
        store.checkpoint(store.meta)
    reads_are_right_or_typed(path, model)


def test_structural_damage_raises_corrupt_index_error(tmp_path: Path) -> None:
    path = tmp_path / "tree.pages"
    build(path)
    with PageStore.open(path) as store:
        tree = BTree.open(store, store.meta)
        root = tree.root
        with store.read(root) as page:
            first_child = int.from_bytes(page.payload[16:20], "little")
        with store.write(first_child) as page:  # swap the first two keys' slots
            payload = page.payload
            payload[16:18], payload[18:20] = bytes(payload[18:20]), bytes(payload[16:18])
        store.checkpoint(store.meta)
    with PageStore.open(path) as store:
        tree = BTree.open(store, store.meta)
        with pytest.raises(CorruptIndexError, match="out of order") as info:
            tree.verify()
        assert info.value.page_id == first_child
        with pytest.raises(CorruptIndexError):
            list(tree.range())


def test_dangling_child_pointer(tmp_path: Path) -> None:
    path = tmp_path / "tree.pages"
    build(path)
    with PageStore.open(path) as store:
        tree = BTree.open(store, store.meta)
        with store.write(tree.root) as page:
            page.payload[16:20] = (10**6).to_bytes(4, "little")
        store.checkpoint(store.meta)
    with PageStore.open(path) as store:
        tree = BTree.open(store, store.meta)
        with pytest.raises(CorruptIndexError, match="unallocated"):
            list(tree.range())
        with pytest.raises(CorruptIndexError):
            tree.verify()
