"""Hypothesis state machine: the log against a list model, with reopen, truncation and
injected fsync failures."""

from __future__ import annotations

import errno

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from strata_testkit import MemoryFS
from wal_db import LogPoisonedError, WriteAheadLog

payloads = st.binary(max_size=700)


class LogMachine(RuleBasedStateMachine):
    """Model: every appended record by LSN, the truncation floor, and a pending failure."""

    def __init__(self) -> None:
        super().__init__()
        self.fs = MemoryFS()
        self.log = WriteAheadLog.open(self.fs, segment_size=4096)
        self.model: dict[int, bytes] = {}
        self.floor = 1  # the highest truncate_before so far
        self.poisoned = False
        self.maybe: bytes | None = None  # a record whose append failed: it may persist

    @precondition(lambda self: not self.poisoned)
    @rule(data=payloads)
    def append(self, data: bytes) -> None:
        lsn = self.log.append(data)
        assert lsn == len(self.model) + 1 and self.log.durable_lsn >= lsn
        self.model[lsn] = data

    @precondition(lambda self: not self.poisoned)
    @rule(batch=st.lists(payloads, max_size=6))
    def append_many(self, batch: list[bytes]) -> None:
        lsns = self.log.append_many(batch)
        assert list(lsns) == list(range(len(self.model) + 1, len(self.model) + 1 + len(batch)))
        self.model.update(zip(lsns, batch, strict=True))

    @precondition(lambda self: not self.poisoned)
    @rule(fraction=st.floats(0, 1.2))
    def truncate_before(self, fraction: float) -> None:
        cut = max(1, int(len(self.model) * fraction))
        self.log.truncate_before(cut)
        self.floor = max(self.floor, cut)

    @precondition(lambda self: not self.poisoned)
    @rule(truncate=st.booleans())
    def roll(self, truncate: bool) -> None:
        self.log.roll()
        assert self.log.roll() is False  # the new active segment holds no record yet
        if truncate:  # a sealed log can drop every record
            self.log.truncate_before(len(self.model) + 1)
            self.floor = len(self.model) + 1
            assert list(self.log.replay()) == []

    @precondition(lambda self: not self.poisoned)
    @rule(data=payloads)
    def fsync_fails(self, data: bytes) -> None:
        self.fs.fail_on("fsync", errno=errno.EIO)
        try:
            self.log.append(data)
        except LogPoisonedError:
            self.poisoned = True
            self.maybe = data
        else:  # the failure hit nothing (cannot happen with sync="always")
            raise AssertionError("append returned after its fsync failed")
        assert self.log.stats().poisoned

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.fs.clear_faults()
        self.log = WriteAheadLog.open(self.fs, segment_size=4096)
        if self.poisoned:
            assert self.log.last_lsn in (len(self.model), len(self.model) + 1)
            if self.log.last_lsn == len(self.model) + 1:
                assert self.maybe is not None
                self.model[self.log.last_lsn] = self.maybe
            self.poisoned, self.maybe = False, None
        assert self.log.recovery.clean

    @invariant()
    def replay_matches_the_model(self) -> None:
        if self.poisoned:
            return
        got = list(self.log.replay())
        end = len(self.model)
        assert self.log.last_lsn == end
        if not got:
            assert end == 0 or self.log.first_lsn == end + 1
            return
        first = got[0][0]
        assert first == self.log.first_lsn and first <= min(self.floor, end)
        assert got == [(lsn, self.model[lsn]) for lsn in range(first, end + 1)]

    def teardown(self) -> None:
        self.log.close()


TestLogMachine = LogMachine.TestCase
TestLogMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
