"""Hypothesis state machine: the store against a dict model, across reopen and crashes.

After any sequence of allocate / write / free / checkpoint / reopen / power loss, the store
holds exactly the model as of the last checkpoint. A 3-frame pool forces dirty pages out
before checkpoints, so un-checkpointed bytes really are on "disk" when a reopen discards
them; the crash rule reopens from a state the test kit says a power loss could leave
(un-fsynced writes dropped, kept, reordered or torn).
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from page_db import InvalidPageIdError, PageStore
from page_db._load import initial_image
from strata_testkit import CrashFS

PAYLOAD = 4096 - 32
NAME = "store.pages"


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.fs = CrashFS(files={NAME: initial_image(4096)})
        self.store = PageStore.open_file(self.fs.open(NAME), pool_pages=3)
        self.model: dict[int, bytes] = {}
        self.committed: dict[int, bytes] = {}
        self.committed_meta = b""

    @rule()
    def allocate(self) -> None:
        pid = self.store.allocate()
        assert pid not in self.model
        self.model[pid] = bytes(PAYLOAD)

    @precondition(lambda self: self.model)
    @rule(
        data=st.data(),
        chunk=st.binary(min_size=1, max_size=64),
        offset=st.integers(0, PAYLOAD - 64),
    )
    def write(self, data: st.DataObject, chunk: bytes, offset: int) -> None:
        pid = data.draw(st.sampled_from(sorted(self.model)))
        with self.store.write(pid) as page:
            page.payload[offset : offset + len(chunk)] = chunk
        old = self.model[pid]
        self.model[pid] = old[:offset] + chunk + old[offset + len(chunk) :]

    @precondition(lambda self: self.model)
    @rule(
        data=st.data(),
        chunk=st.binary(min_size=0, max_size=64),
        offset=st.integers(0, PAYLOAD - 64),
    )
    def patch(self, data: st.DataObject, chunk: bytes, offset: int) -> None:
        pid = data.draw(st.sampled_from(sorted(self.model)))
        self.store.patch(pid, offset, chunk)
        old = self.model[pid]
        self.model[pid] = old[:offset] + chunk + old[offset + len(chunk) :]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def free(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.model)))
        self.store.free(pid)
        del self.model[pid]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.model)))
        with self.store.read(pid) as page:
            assert bytes(page.payload) == self.model[pid]

    @rule(meta=st.binary(max_size=32))
    def checkpoint(self, meta: bytes) -> None:
        self.store.checkpoint(meta)
        self.committed = dict(self.model)
        self.committed_meta = meta

    @rule(meta=st.binary(max_size=32))
    def compact(self, meta: bytes) -> None:
        self.store.compact(meta)
        self.committed = dict(self.model)
        self.committed_meta = meta

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
        self.store = PageStore.open_file(self.fs.open(NAME), pool_pages=3)
        self.model = dict(self.committed)
        assert self.store.meta == self.committed_meta
        for pid, payload in self.model.items():
            with self.store.read(pid) as page:
                assert bytes(page.payload) == payload

    @invariant()
    def page_count_matches(self) -> None:
        assert self.store.stats()["pages"] == len(self.model)

    @invariant()
    def freed_ids_are_not_readable(self) -> None:
        stats = self.store.stats()
        for pid in range(1, stats["pages"] + stats["free_ids"] + 1):
            if pid not in self.model:
                try:
                    self.store.read(pid)
                except InvalidPageIdError:
                    continue
                raise AssertionError(f"freed page {pid} is readable")

    def teardown(self) -> None:
        self.store.close()


StoreMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestStore = StoreMachine.TestCase
