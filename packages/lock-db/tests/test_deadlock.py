"""Deadlock scenarios: each cycle is detected when it forms, exactly one victim per cycle
gets DeadlockError, and every other owner completes once the victim aborts."""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence

import pytest
from conftest import Call, blocked_call

from lock_db import (
    DeadlockError,
    KeyRange,
    LockManager,
    LockMode,
    LockUsageError,
    oldest,
    youngest,
)
from lock_db._invariants import check_invariants

IS, IX, S, SIX, X = LockMode.IS, LockMode.IX, LockMode.S, LockMode.SIX, LockMode.X


def deadlock_of(call: Call) -> DeadlockError:
    call.join()
    assert isinstance(call.error, DeadlockError), f"expected a deadlock, got {call.error!r}"
    return call.error


def test_two_cycle_the_youngest_closer_is_the_victim(manager: LockManager) -> None:
    manager.acquire("a", "r1", X)
    manager.acquire("b", "r2", X)  # b is younger: first seen after a
    a_waits = blocked_call(manager, "a", manager.acquire, "r2", X)
    with pytest.raises(DeadlockError) as caught:
        manager.acquire("b", "r1", X)
    error = caught.value
    assert (error.owner, error.resource, error.mode, error.cycle) == ("b", "r1", X, ("b", "a"))
    assert "'b' -> 'a' -> 'b'" in str(error)
    assert not a_waits.done  # the victim still holds r2 until it aborts
    assert manager.holders("r2") == {"b": X} and manager.stats()["deadlocks"] == 1
    manager.release_all("b")
    a_waits.outcome()
    assert manager.holders("r2") == {"a": X}
    manager.release_all("a")


def test_two_cycle_a_waiting_victim_is_woken_at_once(manager: LockManager) -> None:
    manager.acquire("old", "r1", X)
    manager.acquire("young", "r2", X)
    victim = blocked_call(manager, "young", manager.acquire, "r1", S)
    start = time.perf_counter()
    closer = Call(manager.acquire, "old", "r2", X)
    error = deadlock_of(victim)
    assert victim.finished_at is not None and victim.finished_at - start < 1.0  # 100 ms target
    assert (error.owner, error.resource, error.mode, error.cycle) == (
        "young",
        "r1",
        S,
        ("young", "old"),
    )
    assert not closer.done
    manager.release_all("young")
    closer.outcome()
    assert manager.stats()["deadlocks"] == 1
    manager.release_all("old")


@pytest.mark.parametrize("size", [3, 6, 12])
def test_long_cycle(manager: LockManager, size: int) -> None:
    owners = [f"t{i}" for i in range(size)]
    for i, owner in enumerate(owners):
        manager.acquire(owner, f"r{i}", X)
    calls = [
        blocked_call(manager, owner, manager.acquire, f"r{i + 1}", X)
        for i, owner in enumerate(owners[:-1])
    ]
    with pytest.raises(DeadlockError) as caught:
        manager.acquire(owners[-1], "r0", X)  # closes the ring; the youngest
    assert caught.value.cycle == (owners[-1], *owners[:-1])
    manager.release_all(owners[-1])
    # The ring unwinds from the end: each completes and then commits.
    for i in reversed(range(size - 1)):
        calls[i].outcome()
        manager.release_all(owners[i])
    assert all(call.error is None for call in calls)
    assert manager.stats()["deadlocks"] == 1


def test_long_cycle_victim_in_the_middle(manager: LockManager) -> None:
    # Ages: t2 is the youngest, yet t4 closes the cycle t0 -> t1 -> ... -> t4 -> t0.
    order = ["t0", "t1", "t3", "t4", "t2"]
    for owner in order:
        manager.acquire(owner, f"r{owner[1]}", X)
    calls = {
        owner: blocked_call(manager, owner, manager.acquire, f"r{int(owner[1]) + 1}", X)
        for owner in ["t0", "t1", "t2", "t3"]
    }
    closer = Call(manager.acquire, "t4", "r0", X)
    error = deadlock_of(calls["t2"])
    assert error.cycle == ("t2", "t3", "t4", "t0", "t1")
    manager.release_all("t2")
    for owner in ["t1", "t0", "t4", "t3"]:
        (calls.get(owner) or closer).outcome()
        manager.release_all(owner)
    assert manager.stats()["deadlocks"] == 1


@pytest.mark.parametrize(
    ("held", "wanted"), [(S, X), (S, SIX), (IX, S), (IX, SIX), (SIX, X), (IS, X), (IX, X)]
)
def test_two_owners_upgrading_the_same_resource(
    manager: LockManager, held: LockMode, wanted: LockMode
) -> None:
    manager.acquire("a", "r", held)
    manager.acquire("b", "r", held if held is not SIX else IS)
    b_mode = manager.holders("r")["b"]
    first = blocked_call(manager, "a", manager.acquire, "r", wanted)
    with pytest.raises(DeadlockError) as caught:
        manager.acquire("b", "r", wanted)
    assert caught.value.cycle == ("b", "a")
    assert manager.holders("r") == {"a": held, "b": b_mode}  # nobody lost a mode
    manager.release_all("b")
    first.outcome()
    assert manager.holders("r") == {"a": held.supremum(wanted)}
    manager.release_all("a")


def test_three_owners_upgrading_one_victim_per_cycle(manager: LockManager) -> None:
    for owner in "abc":
        manager.acquire(owner, "r", S)
    a_up = blocked_call(manager, "a", manager.acquire, "r", X)
    with pytest.raises(DeadlockError):
        manager.acquire("b", "r", X)  # b <-> a: b (younger) is the victim
    manager.release_all("b")
    with pytest.raises(DeadlockError):
        manager.acquire("c", "r", X)  # c <-> a: c is the victim
    manager.release_all("c")
    a_up.outcome()
    assert manager.holders("r") == {"a": X} and manager.stats()["deadlocks"] == 2
    manager.release_all("a")


def test_cycle_through_a_queue_position(manager: LockManager) -> None:
    # c waits behind b's queued X (strict FIFO), b waits for a's S, a waits for c's X.
    manager.acquire("a", "r", S)  # ages: a < c < b
    manager.acquire("c", "q", X)
    b_waits = blocked_call(manager, "b", manager.acquire, "r", X)
    c_waits = blocked_call(manager, "c", manager.acquire, "r", S)
    assert manager.wait_for_graph() == {"b": frozenset({"a"}), "c": frozenset({"b"})}
    closer = Call(manager.acquire, "a", "q", S)
    error = deadlock_of(b_waits)
    assert error.cycle == ("b", "a", "c")
    manager.release_all("b")
    # With b gone, c (S) joins a (S) on r; a still waits for c's X on q.
    c_waits.outcome()
    assert not closer.done
    manager.release_all("c")
    closer.outcome()
    manager.release_all("a")


def test_range_lock_cycle(manager: LockManager) -> None:
    manager.acquire_range("a", "s", b"a", b"m", X)
    manager.acquire_key("b", "s", b"x", X)
    a_waits = blocked_call(manager, "a", manager.acquire_range, "s", b"w", b"z", S)
    with pytest.raises(DeadlockError) as caught:
        manager.acquire_key("b", "s", b"c", S)
    error = caught.value
    assert error.cycle == ("b", "a") and error.resource == KeyRange("s", b"c", b"c\x00")
    manager.release_all("b")
    a_waits.outcome()
    manager.release_all("a")


def test_range_against_range_cycle_with_unbounded_ends(manager: LockManager) -> None:
    manager.acquire_range("a", "s", None, b"f", X)
    manager.acquire_range("b", "s", b"t", None, X)
    a_waits = blocked_call(manager, "a", manager.acquire_range, "s", b"s", b"u", S)
    with pytest.raises(DeadlockError):
        manager.acquire_range("b", "s", None, b"b", IS)
    manager.release_all("b")
    a_waits.outcome()
    manager.release_all("a")


def test_mixed_cycle_of_resource_key_and_range_locks(manager: LockManager) -> None:
    manager.acquire("a", "table", X)
    manager.acquire_key("b", "s", b"k", X)
    manager.acquire_range("c", "s", b"p", b"q", X)
    a_waits = blocked_call(manager, "a", manager.acquire_key, "s", b"k", S)
    b_waits = blocked_call(manager, "b", manager.acquire_key, "s", b"p1", S)
    with pytest.raises(DeadlockError) as caught:
        manager.acquire("c", "table", IS)
    assert caught.value.cycle == ("c", "a", "b")
    manager.release_all("c")
    b_waits.outcome()
    manager.release_all("b")
    a_waits.outcome()
    manager.release_all("a")


def test_range_upgrade_deadlock(manager: LockManager) -> None:
    manager.acquire_range("a", "s", b"a", b"z", S)
    manager.acquire_range("b", "s", b"a", b"z", S)
    a_up = blocked_call(manager, "a", manager.acquire_range, "s", b"a", b"z", X)
    with pytest.raises(DeadlockError):
        manager.acquire_range("b", "s", b"a", b"z", X)
    manager.release_all("b")
    a_up.outcome()
    manager.release_all("a")


def test_custom_policy_sees_the_cycle_oldest_first() -> None:
    seen: list[tuple[Hashable, ...]] = []

    def policy(owners: Sequence[Hashable]) -> Hashable:
        seen.append(tuple(owners))
        return oldest(owners)

    locks = LockManager(victim_policy=policy)
    for i, owner in enumerate(["t1", "t2", "t3"]):
        locks.acquire(owner, f"r{i}", X)
    t1 = blocked_call(locks, "t1", locks.acquire, "r1", X)
    t2 = blocked_call(locks, "t2", locks.acquire, "r2", X)
    closer = Call(locks.acquire, "t3", "r0", X)
    assert deadlock_of(t1).owner == "t1"
    assert seen == [("t1", "t2", "t3")]
    locks.release_all("t1")
    closer.outcome()
    locks.release_all("t3")
    t2.outcome()
    locks.release_all("t2")
    check_invariants(locks)


def test_youngest_and_oldest_policies() -> None:
    assert youngest(["a", "b", "c"]) == "c"
    assert oldest(["a", "b", "c"]) == "a"


def test_the_closer_on_two_cycles_meets_one_victim_per_cycle() -> None:
    locks = LockManager(victim_policy=oldest)
    locks.acquire("a", "r", S)
    locks.acquire("b", "r", S)
    locks.acquire("o", "ra", X)
    locks.acquire("o", "rb", X)
    a_waits = blocked_call(locks, "a", locks.acquire, "ra", X)
    b_waits = blocked_call(locks, "b", locks.acquire, "rb", X)
    closer = Call(locks.acquire, "o", "r", X)  # o -> a -> o and o -> b -> o
    assert deadlock_of(a_waits).cycle == ("a", "o")
    assert deadlock_of(b_waits).cycle == ("b", "o")
    assert locks.stats()["deadlocks"] == 2 and not closer.done
    locks.release_all("a")
    locks.release_all("b")
    closer.outcome()
    locks.release_all("o")
    check_invariants(locks)


def test_a_policy_naming_a_stranger_is_a_usage_error() -> None:
    locks = LockManager(victim_policy=lambda owners: "stranger")
    locks.acquire("a", "r1", X)
    locks.acquire("b", "r2", X)
    a_waits = blocked_call(locks, "a", locks.acquire, "r2", X)
    with pytest.raises(LockUsageError, match="not an owner of the cycle"):
        locks.acquire("b", "r1", X)
    assert locks.waiters("r1") == [] and locks.wait_for_graph() == {"a": frozenset({"b"})}
    locks.release_all("b")
    a_waits.outcome()
    locks.release_all("a")
    check_invariants(locks)


def test_a_failing_policy_withdraws_the_closing_request() -> None:
    def policy(owners: Sequence[Hashable]) -> Hashable:
        raise RuntimeError("policy broke")

    locks = LockManager(victim_policy=policy)
    locks.acquire("a", "r1", X)
    locks.acquire("b", "r2", X)
    a_waits = blocked_call(locks, "a", locks.acquire, "r2", X)
    with pytest.raises(RuntimeError, match="policy broke"):
        locks.acquire("b", "r1", X)
    check_invariants(locks)
    locks.release_all("b")
    a_waits.outcome()
    locks.release_all("a")


def test_an_owner_that_left_and_came_back_is_young_again(manager: LockManager) -> None:
    manager.acquire("a", "r1", X)
    manager.acquire("b", "r2", X)
    manager.release_all("a")  # a is forgotten ...
    manager.acquire("a", "r1", X)  # ... and first seen again, after b
    b_waits = blocked_call(manager, "b", manager.acquire, "r1", X)
    with pytest.raises(DeadlockError):
        manager.acquire("a", "r2", X)
    manager.release_all("a")
    b_waits.outcome()
    manager.release_all("b")
