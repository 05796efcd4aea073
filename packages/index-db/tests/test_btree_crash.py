"""Power loss at every fsync: the reopened tree is exactly a checkpointed tree.

A workload builds a tree over several checkpoints (splits, merges, overflow chains, pages
freed and reused in between) on a CrashFS. For every state a power loss at every fsync
could leave, the store reopens, ``BTree.open(store, store.meta)`` gives a tree that passes
``verify()`` and equals the model saved with that meta — never a mix of two checkpoints.
"""

from __future__ import annotations

import random

from _btree_helpers import NAME, checkpointed_tree, durable_tree

from index_db import BTree
from page_db import PageStore
from strata_testkit import CrashFS, explore_crashes


def test_every_crash_state_is_a_checkpointed_tree() -> None:
    setup_fs, store, tree = durable_tree()
    initial_meta = tree.meta()
    store.close()
    files = setup_fs.files()
    models: dict[bytes, dict[bytes, bytes]] = {initial_meta: {}}

    def workload(fs: CrashFS) -> None:
        store = PageStore.open_file(fs.open(NAME), pool_pages=8)
        tree = BTree.open(store, store.meta)
        rnd = random.Random(3)
        model: dict[bytes, bytes] = {}
        for round_ in range(4):
            for _ in range(60):
                key = rnd.randbytes(rnd.randint(1, 6))
                if rnd.random() < 0.7 or not model:
                    value = rnd.randbytes(rnd.choice((10, 300, 1500, 5000)))
                    tree.put(key, value)
                    model[key] = value
                else:
                    victim = rnd.choice(sorted(model))
                    tree.delete(victim)
                    del model[victim]
            meta = tree.meta() + bytes([round_])  # unique even if root and count repeat
            models[meta] = dict(model)
            store.checkpoint(meta)
        store.close()

    checked = explore_crashes(workload, checkpointed_tree(models), files=files, max_states=6)
    assert checked > 20
