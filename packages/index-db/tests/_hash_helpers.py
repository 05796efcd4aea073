"""Shared helpers for the hash index tests: stores on crash-simulating files, hash seams."""

from __future__ import annotations

import zlib
from collections.abc import Callable

from index_db.hash import HashIndex, HashVerifyReport
from page_db import PageStore
from strata_testkit import CrashFS

NAME = "index.pages"
HashFn = Callable[[bytes], int]


def weak_hash(key: bytes) -> int:
    """Only four distinct hashes: buckets reach depth 2, then grow overflow chains."""
    return zlib.crc32(key) & 0x3


def colliding_hash(key: bytes) -> int:
    """Every key collides on the full hash."""
    return 0x5A5A_5A5A_5A5A_5A5A


def use_hash(index: HashIndex, hash_fn: HashFn | None) -> HashIndex:
    """Swap the index's hash (the test-only seam); None keeps the real one."""
    if hash_fn is not None:
        index._hash = hash_fn
    return index


def root_meta(index: HashIndex) -> bytes:
    """The checkpoint meta a caller would keep: the root page id."""
    return index.root.to_bytes(4, "little")


def new_crash_store(pool_pages: int = 8) -> tuple[CrashFS, PageStore]:
    """A fresh store on a CrashFS whose file is already durable (one checkpoint taken)."""
    fs = CrashFS()
    store = PageStore.open_file(fs.open(NAME), pool_pages=pool_pages)
    store.checkpoint()
    store.close()
    fs = CrashFS(files=fs.files())
    return fs, PageStore.open_file(fs.open(NAME), pool_pages=pool_pages)


def check_clean(index: HashIndex, store: PageStore, model: dict[bytes, bytes]) -> HashVerifyReport:
    """verify() passes, the index equals the model, and no page leaked."""
    report = index.verify()
    assert report.entries == len(index) == len(model)
    assert store.stats()["pages"] == len(report.pages), "a page leaked"
    return report
