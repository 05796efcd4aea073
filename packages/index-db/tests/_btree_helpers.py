"""Shared helpers of the B+tree tests: stores on crash-simulating files, models, checks."""

from __future__ import annotations

from collections.abc import Callable

from index_db import BTree
from page_db import PageStore
from strata_testkit import CrashFS, CrashState

NAME = "tree.pages"


def durable_tree(pool_pages: int = 16) -> tuple[CrashFS, PageStore, BTree]:
    """An empty tree in a store on a CrashFS whose every byte is already durable."""
    fs = CrashFS()
    store = PageStore.open_file(fs.open(NAME), pool_pages=pool_pages)
    store.checkpoint(BTree.create(store).meta())
    store.close()
    fs, store = reopen(fs.files(), pool_pages)
    return fs, store, BTree.open(store, store.meta)


def reopen(files: dict[str, bytes], pool_pages: int = 16) -> tuple[CrashFS, PageStore]:
    """Open the store held in ``files`` (a snapshot or a crash state)."""
    fs = CrashFS(files=files)
    return fs, PageStore.open_file(fs.open(NAME), pool_pages=pool_pages)


def check_equal(tree: BTree, model: dict[bytes, bytes]) -> None:
    """The tree holds exactly ``model``: length, order both ways, and point lookups."""
    expected = sorted(model.items())
    assert len(tree) == len(model)
    assert list(tree.range()) == expected
    assert list(tree.range(reverse=True)) == expected[::-1]
    for key, value in expected[:50]:
        assert tree.get(key) == value


def checkpointed_tree(
    models: dict[bytes, dict[bytes, bytes]], pool_pages: int = 8
) -> Callable[[CrashState, int], None]:
    """A check for ``explore_crashes``: the crash state reopens to the tree saved with one
    of the metas in ``models`` (checkpoint meta -> the model saved with it), verified and
    equal to that model."""

    def check(state: CrashState, point: int) -> None:
        fs = CrashFS(files=state.files)
        with PageStore.open_file(fs.open(NAME), pool_pages=pool_pages) as store:
            meta = store.meta
            assert meta in models, f"unknown meta {meta!r} at point {point}"
            tree = BTree.open(store, meta)
            tree.verify()
            check_equal(tree, models[meta])

    return check
