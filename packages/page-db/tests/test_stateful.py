"""Hypothesis state machine: the store against a dict model, across reopen and crashes.

After any sequence of allocate / write / patch / defer / free / checkpoint / reopen / power
loss, the store holds exactly the model as of the last checkpoint. A ``defer`` is modelled
as a write at the moment of the call: its ``settle`` writes the bytes whenever the pool
asks (declining the first few times it is asked), and no later read, eviction, checkpoint
or crash may tell the difference. A 3-frame pool forces dirty pages out
before checkpoints, so un-checkpointed bytes really are on "disk" when a reopen discards
them; the crash rule reopens from a state the test kit says a power loss could leave
(un-fsynced writes dropped, kept, reordered or torn).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from page_db import InvalidPageIdError, PageStore
from page_db._load import initial_image
from strata_testkit import CrashFS

PAYLOAD = 4096 - 32
NAME = "store.pages"


@dataclass(eq=False)
class Deferred:
    """One ``defer`` call's settle: writes ``chunk`` at ``offset`` after ``declines`` refusals."""

    pid: int
    chunk: bytes
    offset: int
    declines: int
    pending: set[Deferred]
    dropped: bool = False  # freed or closed: must never be called again
    settled: bool = False

    def __call__(self, payload: memoryview) -> bool:
        assert not self.dropped, f"settle of page {self.pid} called after free or close"
        assert not self.settled, f"settle of page {self.pid} called after it succeeded"
        if self.declines:
            self.declines -= 1
            return False
        payload[self.offset : self.offset + len(self.chunk)] = self.chunk
        self.settled = True
        self.pending.discard(self)
        return True


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.fs = CrashFS(files={NAME: initial_image(4096)})
        self.store = PageStore.open_file(self.fs.open(NAME), pool_pages=3)
        self.model: dict[int, bytes] = {}
        self.committed: dict[int, bytes] = {}
        self.committed_meta = b""
        self.pending: set[Deferred] = set()  # deferred writes not settled yet

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
    @rule(
        data=st.data(),
        chunk=st.binary(min_size=1, max_size=64),
        offset=st.integers(0, PAYLOAD - 64),
        declines=st.integers(0, 2),
    )
    def defer(self, data: st.DataObject, chunk: bytes, offset: int, declines: int) -> None:
        pid = data.draw(st.sampled_from(sorted(self.model)))
        settle = Deferred(pid, chunk, offset, declines, self.pending)
        self.store.defer(pid, settle)
        assert not any(d.pid == pid for d in self.pending)  # an older one was settled first
        self.pending.add(settle)
        old = self.model[pid]
        self.model[pid] = old[:offset] + chunk + old[offset + len(chunk) :]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def free(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.model)))
        self.store.free(pid)
        del self.model[pid]
        self._drop(lambda d: d.pid == pid)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.model)))
        with self.store.read(pid) as page:
            assert bytes(page.payload) == self.model[pid]

    @rule(meta=st.binary(max_size=32))
    def checkpoint(self, meta: bytes) -> None:
        self.store.checkpoint(meta)
        assert not self.pending
        self.committed = dict(self.model)
        self.committed_meta = meta

    @rule(meta=st.binary(max_size=32))
    def compact(self, meta: bytes) -> None:
        self.store.compact(meta)
        assert not self.pending
        self.committed = dict(self.model)
        self.committed_meta = meta

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self._drop(lambda d: True)
        self._reopen(self.fs.files())

    @rule(seed=st.integers(0, 2**16))
    def power_loss(self, seed: int) -> None:
        states = list(self.fs.crash_states(seed=seed, max_states=8))
        self.store.close()
        self._drop(lambda d: True)
        self._reopen(states[seed % len(states)].files)

    def _drop(self, which: Callable[[Deferred], bool]) -> None:
        """Forget pending deferred writes the store dropped (free, close): never called."""
        for settle in [d for d in self.pending if which(d)]:
            settle.dropped = True
            self.pending.discard(settle)

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
    def pool_deferred_counts_pending_writes(self) -> None:
        assert self.store.stats()["pool_deferred"] == len(self.pending)

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
