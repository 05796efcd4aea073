"""Soak: long runs of random puts and deletes against a dict, with checkpoints and reopens.

The default lane runs a small configuration; the slow lane (``-m slow``) a larger one. The
one-million-key soak is in ``bench/bench_btree.py``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from _btree_helpers import check_equal

from index_db import BTree
from page_db import PageStore


def soak(path: Path, steps: int, seed: int) -> None:
    rnd = random.Random(seed)
    model: dict[bytes, bytes] = {}
    committed: dict[bytes, bytes] = {}
    store = PageStore.open(path, pool_pages=64)
    tree = BTree.create(store)
    keys: list[bytes] = []
    for step in range(steps):
        roll = rnd.random()
        if roll < 0.55 or not keys:
            key = rnd.randbytes(rnd.randint(1, 24))
            value = rnd.randbytes(rnd.choice((0, 16, 100, 400, 1500, 9000)))
            tree.put(key, value)
            if key not in model:
                keys.append(key)
            model[key] = value
        else:
            index = rnd.randrange(len(keys))
            key = keys[index]
            keys[index] = keys[-1]
            keys.pop()
            assert tree.delete(key)
            del model[key]
        if step % (steps // 8) == 0:
            tree.verify()
            store.checkpoint(tree.meta())
            committed = dict(model)
        if step % (steps // 5) == 0 and step:
            store.close()  # drop everything since the checkpoint
            store = PageStore.open(path, pool_pages=64)
            tree = BTree.open(store, store.meta)
            model = dict(committed)
            keys = list(model)
    tree.verify()
    check_equal(tree, model)
    store.close()


def test_soak_small(tmp_path: Path) -> None:
    soak(tmp_path / "soak.pages", 8_000, seed=1)


@pytest.mark.slow
def test_soak_large(tmp_path: Path) -> None:
    soak(tmp_path / "soak.pages", 200_000, seed=2)
