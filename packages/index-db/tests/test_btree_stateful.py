"""Hypothesis state machine: the B+tree against a dict model, across checkpoints and crashes.

Every step is followed by ``verify()`` (structure, fill factors, sibling links, no leaked
page) and a comparison with the model. Checkpoint stores ``tree.meta()`` as the store's
checkpoint meta; reopen and power loss reopen the tree from ``store.meta`` and must find
exactly the model as of the last checkpoint. The pool has 16 frames, so dirty pages are
written out before checkpoints and a crash really has un-checkpointed bytes on "disk".
Keys are short and values up to a few KiB (with some past a page, in overflow chains) so
a few dozen steps split, merge and redistribute nodes on three levels.
"""

from __future__ import annotations

from _btree_helpers import check_equal, durable_tree, reopen
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from index_db import BTree

# Short keys, and keys sharing an 800-byte prefix: their suffix-truncated separators are
# long, so branches hold few children and a few dozen keys build a three-level tree.
KEYS = st.one_of(
    st.binary(min_size=0, max_size=12),
    st.builds(lambda tail: b"\x80" * 800 + tail, st.binary(max_size=3)),
)
VALUES = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda n, b: bytes([b]) * n, st.integers(200, 1100), st.integers(0, 255)),
    st.builds(lambda n, b: bytes([b]) * n, st.integers(4000, 10000), st.integers(0, 255)),
)


class TreeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.fs, self.store, self.tree = durable_tree()
        self.model: dict[bytes, bytes] = {}
        self.committed: dict[bytes, bytes] = {}

    @rule(key=KEYS, value=VALUES)
    def put(self, key: bytes, value: bytes) -> None:
        self.tree.put(key, value)
        self.model[key] = value

    @rule(keys=st.lists(KEYS, min_size=1, max_size=30), value=VALUES)
    def put_many(self, keys: list[bytes], value: bytes) -> None:
        for key in keys:
            self.tree.put(key, value)
            self.model[key] = value

    @rule(start=st.integers(0, 200), count=st.integers(1, 60), value=st.binary(max_size=20))
    def put_long_keys(self, start: int, count: int, value: bytes) -> None:
        for n in range(start, start + count):
            key = b"\x80" * 800 + n.to_bytes(2, "big")
            self.tree.put(key, value)
            self.model[key] = value

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_existing(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model)))
        assert self.tree.delete(key) is True
        del self.model[key]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_run(self, data: st.DataObject) -> None:
        keys = sorted(self.model)
        start = data.draw(st.integers(0, len(keys) - 1))
        for key in keys[start : start + data.draw(st.integers(1, 40))]:
            assert self.tree.delete(key) is True
            del self.model[key]

    @rule(key=KEYS)
    def delete_any(self, key: bytes) -> None:
        assert self.tree.delete(key) is (key in self.model)
        self.model.pop(key, None)

    @rule(key=KEYS)
    def get(self, key: bytes) -> None:
        assert self.tree.get(key) == self.model.get(key)

    @rule(lo=st.none() | KEYS, hi=st.none() | KEYS, flags=st.tuples(*[st.booleans()] * 3))
    def scan(self, lo: bytes | None, hi: bytes | None, flags: tuple[bool, bool, bool]) -> None:
        reverse, lo_inc, hi_inc = flags
        got = list(
            self.tree.range(lo, hi, reverse=reverse, lo_inclusive=lo_inc, hi_inclusive=hi_inc)
        )
        want = [
            (k, v)
            for k, v in sorted(self.model.items())
            if (lo is None or k > lo or (lo_inc and k == lo))
            and (hi is None or k < hi or (hi_inc and k == hi))
        ]
        assert got == (want[::-1] if reverse else want)

    @rule(prefix=st.binary(max_size=2))
    def prefix(self, prefix: bytes) -> None:
        want = sorted((k, v) for k, v in self.model.items() if k.startswith(prefix))
        assert list(self.tree.prefix(prefix)) == want

    @precondition(lambda self: not self.model)
    @rule(keys=st.lists(KEYS, max_size=80, unique=True), value=VALUES)
    def bulk_load(self, keys: list[bytes], value: bytes) -> None:
        items = [(key, value) for key in sorted(keys)]
        assert self.tree.bulk_load(items) == len(items)
        self.model = dict(items)

    @rule()
    def checkpoint(self) -> None:
        self.store.checkpoint(self.tree.meta())
        self.committed = dict(self.model)

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self._reopen(self.fs.files())

    @rule(seed=st.integers(0, 2**16))
    def power_loss(self, seed: int) -> None:
        states = list(self.fs.crash_states(seed=seed, max_states=8))
        self.store.close()
        self._reopen(states[seed % len(states)].files)

    def _reopen(self, files: dict[str, bytes]) -> None:
        self.fs, self.store = reopen(files)
        self.tree = BTree.open(self.store, self.store.meta)
        self.model = dict(self.committed)

    @invariant()
    def verified_and_equal(self) -> None:
        self.tree.verify()
        check_equal(self.tree, self.model)

    def teardown(self) -> None:
        self.store.close()


TreeMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
TestTreeMachine = TreeMachine.TestCase
