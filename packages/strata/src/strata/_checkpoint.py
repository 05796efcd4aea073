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

from index_db import BTree
from page_db import PageStore

from . import _records as R
from ._gcpause import gc_paused
from ._mvcc import VersionStore

REWRITE_FRACTION = 8  # rewrite when changed entries * this >= entries in the tree


def should_rewrite(tree: BTree, dirty: set[bytes], removed: dict[bytes, list[int]]) -> bool:
    """Whether a rewrite is cheaper than incremental changes for this checkpoint."""
    entries = len(tree)
    changed = len(dirty) + sum(len(gone) for gone in removed.values())
    return entries == 0 or changed * REWRITE_FRACTION >= entries


def write_incremental(tree: BTree, versions: VersionStore, dirty: set[bytes],
                      removed: dict[bytes, list[int]], settings: dict[bytes, bytes],
                      version: int, previous: int) -> None:
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


def rewrite(store: PageStore, old: BTree, versions: VersionStore,
            settings: dict[bytes, bytes], version: int) -> BTree:
    """Bulk-load a new tree holding every retained version up to ``version`` plus
    ``settings``, drop ``old``, and return the new tree."""
    with gc_paused():
        return _rewrite(store, old, versions, settings, version)


def _rewrite(store: PageStore, old: BTree, versions: VersionStore,
             settings: dict[bytes, bytes], version: int) -> BTree:
    tkey, entry = R.tree_key, R.encode_entry
    chains = versions.chains
    pruned = versions.pruned
    items = [(R.SYSTEM_PREFIX + name, value) for name, value in settings.items()]
    append = items.append
    for key in list(chains):  # commits may add keys meanwhile; theirs are newer
        chain = chains.get(key)
        if not chain:
            continue
        first = chain[0]
        flag = key in pruned
        for e in chain:
            if e[0] > version:
                break
            append((tkey(key, e[0]), entry(e[1], e[2], flag and e is first)))
    items.sort()
    new = BTree.create(store)
    new.bulk_load(items)
    old.drop()
    return new
