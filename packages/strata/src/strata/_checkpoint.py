"""How a checkpoint brings the page file's B+tree up to date with the in-memory index.

Two ways, chosen per checkpoint by how much changed (docs/architecture.md, D16):

- **incremental**: put the new versions of the changed keys and delete the versions GC
  removed — cost proportional to the change, at B+tree put speed;
- **rewrite**: bulk-load a new tree from every retained version and drop the old one —
  cost proportional to the whole database, at bulk-load speed (about ten times a put).

A rewrite wins once the change is more than about an eighth of the tree. Either way the
page-db checkpoint that follows is the commit point: a crash before it leaves the old tree
exactly as it was (page-db reuses freed slots only after the next checkpoint).
"""

from __future__ import annotations

import struct

from index_db import BTree
from page_db import PageStore

from . import _records as R
from ._gcpause import gc_paused
from ._mvcc import VersionStore

_U64_BE = struct.Struct(">Q")
_ENTRY_HEAD = struct.Struct("<BQ")  # flags, timestamp ns (as _records.encode_entry)
REWRITE_FRACTION = 8  # rewrite when changed entries * this >= entries in the tree


def should_rewrite(tree: BTree, dirty: set[bytes], removed: dict[bytes, list[int]]) -> bool:
    """Whether a rewrite is cheaper than incremental changes for this checkpoint."""
    entries = len(tree)
    changed = len(dirty) + sum(len(gone) for gone in removed.values())
    return entries == 0 or changed * REWRITE_FRACTION >= entries


def write_incremental(
    tree: BTree,
    versions: VersionStore,
    dirty: set[bytes],
    removed: dict[bytes, list[int]],
    settings: dict[bytes, bytes],
    version: int,
    previous: int,
) -> None:
    """Put the versions in ``(previous, version]`` of the ``dirty`` keys, delete the
    ``removed`` versions the tree holds (those at or below ``previous``), re-flag each
    pruned key's oldest version, and store ``settings``."""
    tkey, entry = R.tree_key, R.encode_entry
    for key in sorted(dirty.union(removed)):
        gone = removed.get(key)
        if gone:
            for v in gone:
                if v <= previous:
                    tree.delete(tkey(key, v))
        chain = versions.chains.get(key)
        if not chain:
            continue
        pruned = key in versions.pruned
        first = chain[0]
        for e in chain:
            v = e[0]
            if v > version:
                break
            is_first = e is first
            if v > previous or (is_first and gone):
                tree.put(tkey(key, v), entry(e[1], e[2], pruned and is_first))
    for name, value in settings.items():
        tree.put(R.SYSTEM_PREFIX + name, value)


def rewrite(
    store: PageStore, old: BTree, versions: VersionStore, settings: dict[bytes, bytes], version: int
) -> BTree:
    """Bulk-load a new tree holding every retained version up to ``version`` plus
    ``settings``, drop ``old``, and return the new tree."""
    with gc_paused():
        return _rewrite(store, old, versions, settings, version)


def _rewrite(
    store: PageStore, old: BTree, versions: VersionStore, settings: dict[bytes, bytes], version: int
) -> BTree:
    pruned = versions.pruned
    items = [(R.SYSTEM_PREFIX + name, value) for name, value in settings.items()]
    append = items.append
    inverted = _U64_BE.pack
    head = _ENTRY_HEAD.pack
    top = (1 << 64) - 1
    # the dict in its own order (memory order: fast), then one sort; a snapshot of the
    # items, since commits may add keys meanwhile (theirs are newer than ``version``)
    for key, chain in list(versions.chains.items()):
        flag = R.FLAG_PRUNED if key in pruned else 0
        for v, ts, value in chain:
            if v > version:
                break
            if value is None:
                append((key + inverted(top - v), head(flag | R.FLAG_TOMBSTONE, ts)))
            else:
                append((key + inverted(top - v), head(flag, ts) + value))
            flag = 0  # the pruned flag marks the oldest retained version only
    items.sort()
    new = BTree.create(store)
    new.bulk_load(items)
    old.drop()
    return new
