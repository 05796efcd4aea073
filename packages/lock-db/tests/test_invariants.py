"""The consistency checker the other tests lean on really catches broken states."""

from __future__ import annotations

import pytest
from conftest import blocked_call

from lock_db import LockManager, LockMode
from lock_db._invariants import check_invariants
from lock_db._modes import BITS

S, X = LockMode.S, LockMode.X


def test_a_healthy_manager_passes(manager: LockManager) -> None:
    manager.acquire("a", "r", S)
    manager.acquire_range("a", "s", b"a", b"z", S)
    waiting = blocked_call(manager, "b", manager.acquire_key, "s", b"k", X)
    check_invariants(manager)
    manager.release_all("a")
    waiting.outcome()
    manager.release_all("b")


def test_incompatible_holders_are_caught() -> None:
    locks = LockManager()
    locks.acquire("a", "r", X)
    cell = locks._resources["r"]
    cell.holders["b"] = [X._value_, 1]  # forged: a second exclusive holder
    cell.counts[X._value_] += 1
    locks._new_record("b").resources["r"] = cell
    with pytest.raises(AssertionError, match="incompatible"):
        check_invariants(locks)


def test_overlapping_incompatible_ranges_are_caught() -> None:
    locks = LockManager()
    locks.acquire_range("a", "s", b"a", b"m", X)
    locks.acquire_range("b", "s", b"n", b"z", X)
    space = locks._spaces["s"]
    cell = space.ranges.pop((b"n", b"z"))
    space.ranges[(b"c", b"z")] = cell  # forged: b's range now overlaps a's
    record = locks._owners["b"]
    record.ranges = {("s", b"c", b"z"): cell}
    with pytest.raises(AssertionError, match="incompatible overlapping locks"):
        check_invariants(locks)


def test_a_lost_wake_up_is_caught() -> None:
    locks = LockManager()
    locks.acquire("a", "r", X)
    waiting = blocked_call(locks, "b", locks.acquire, "r", X)
    cell = locks._resources["r"]
    del cell.holders["a"]  # forged: the holder vanished without a grant pass
    cell.counts[X._value_] = 0
    cell.present = 0
    del locks._owners["a"]
    with pytest.raises(AssertionError, match="lost wake-up"):
        check_invariants(locks)
    locks._resource_pass("r", cell)  # repair, so the parked thread finishes
    waiting.outcome()


def test_stale_counts_are_caught() -> None:
    locks = LockManager()
    locks.acquire("a", "r", S)
    locks._resources["r"].present |= BITS[X._value_]
    with pytest.raises(AssertionError, match="present mask"):
        check_invariants(locks)
