"""Hypothesis state machine: the hash index against a dict model, across checkpoints and crashes.

Steps are put / delete / get / checkpoint / reopen / power loss; ``verify()`` runs after
every step, with the model compared in full and every page accounted for. A small pool
(8 frames) forces dirty bucket pages out before checkpoints (and drops their decoded
``extra``), so un-checkpointed bytes really are in the file when a reopen or a power loss
discards them. The power-loss step reopens from a state the test kit says a crash could
leave (un-fsynced writes dropped, kept, reordered or torn): the index must equal the model
as of the last checkpoint. Values of up to 3012 bytes make buckets split after a handful of
keys; the second machine swaps in a four-valued hash so that chains of overflow pages form.
"""

from __future__ import annotations

from _hash_helpers import NAME, check_clean, new_crash_store, root_meta, use_hash, weak_hash
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from index_db.hash import HashIndex
from page_db import PageStore
from strata_testkit import CrashFS

KEYS = st.sampled_from(
    [b"", b"a", b"b", b"key-1", b"key-2", b"x" * 40] + [b"k%d" % i for i in range(30)]
)
SMALL_VALUES = st.binary(max_size=16)
LARGE_VALUES = st.one_of(
    st.integers(300, 1500).map(lambda n: b"v" * n),
    st.integers(1, 9).map(lambda n: b"%d" % n * 100 * n),
    st.sampled_from([b"L" * 3012, b"M" * 2000]),
)


class HashMachine(RuleBasedStateMachine):
    hash_fn = None

    def __init__(self) -> None:
        super().__init__()
        self.fs, self.store = new_crash_store()
        self.index = use_hash(HashIndex.create(self.store), self.hash_fn)
        self.store.checkpoint(root_meta(self.index))
        self.model: dict[bytes, bytes] = {}
        self.committed: dict[bytes, bytes] = {}

    @rule(key=KEYS, value=SMALL_VALUES)
    def put_small(self, key: bytes, value: bytes) -> None:
        self.index.put(key, value)
        self.model[key] = value

    @rule(key=KEYS, value=LARGE_VALUES)
    def put_large(self, key: bytes, value: bytes) -> None:
        self.index.put(key, value)
        self.model[key] = value

    @rule(key=KEYS, value=LARGE_VALUES)
    def put_large_again(self, key: bytes, value: bytes) -> None:
        self.put_large(key, value)

    @rule(key=KEYS)
    def delete(self, key: bytes) -> None:
        assert self.index.delete(key) == (key in self.model)
        self.model.pop(key, None)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_present(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model)))
        assert self.index.delete(key)
        del self.model[key]

    @rule(key=KEYS)
    def get(self, key: bytes) -> None:
        assert self.index.get(key) == self.model.get(key)

    @rule()
    def checkpoint(self) -> None:
        self.store.checkpoint(root_meta(self.index))
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
        self.fs = CrashFS(files=files)
        self.store = PageStore.open_file(self.fs.open(NAME), pool_pages=8)
        root = int.from_bytes(self.store.meta, "little")
        self.index = use_hash(HashIndex.open(self.store, root), self.hash_fn)
        self.model = dict(self.committed)

    @invariant()
    def index_equals_model(self) -> None:
        check_clean(self.index, self.store, self.model)
        for key, value in self.model.items():
            assert self.index.get(key) == value

    def teardown(self) -> None:
        self.store.close()


class WeakHashMachine(HashMachine):
    hash_fn = staticmethod(weak_hash)


SETTINGS = settings(
    max_examples=100, stateful_step_count=50, deadline=None, derandomize=True, print_blob=True
)
HashMachine.TestCase.settings = SETTINGS
WeakHashMachine.TestCase.settings = SETTINGS
TestHashIndexStateful = HashMachine.TestCase
TestHashIndexWeakHashStateful = WeakHashMachine.TestCase
