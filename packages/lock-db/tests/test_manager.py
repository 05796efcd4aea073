"""LockManager on plain resources: grants, re-entry, queues, timeouts, release, introspection."""

from __future__ import annotations

import math
import time

import pytest
from conftest import PATIENCE, Call, blocked_call, wait_until_waiting

from lock_db import (
    LockCancelledError,
    LockError,
    LockManager,
    LockMode,
    LockTimeoutError,
    LockTypeError,
    LockUsageError,
    NotHeldError,
    OwnerBusyError,
)
from lock_db._invariants import check_invariants

IS, IX, S, SIX, X = LockMode.IS, LockMode.IX, LockMode.S, LockMode.SIX, LockMode.X


def test_acquire_release_leaves_nothing_behind(manager: LockManager) -> None:
    manager.acquire("t1", "r", X)
    assert manager.holders("r") == {"t1": X}
    assert manager.stats()["owners"] == 1
    manager.release("t1", "r")
    assert manager.holders("r") == {}
    stats = manager.stats()
    assert (stats["owners"], stats["resources"], stats["grants"], stats["releases"]) == (0, 0, 1, 1)


def test_reentry_counts_grants_and_release_undoes_one_each(manager: LockManager) -> None:
    manager.acquire("t1", "r", S)
    manager.acquire("t1", "r", IS)  # covered: re-entry
    assert manager.try_acquire("t1", "r", S)
    for _ in range(3):
        assert manager.holders("r") == {"t1": S}
        manager.release("t1", "r")
    assert manager.holders("r") == {}
    with pytest.raises(NotHeldError):
        manager.release("t1", "r")


def test_shared_holders_coexist_and_exclusive_waits(manager: LockManager) -> None:
    for owner in ("a", "b", "c"):
        manager.acquire(owner, "r", S)
    writer = blocked_call(manager, "w", manager.acquire, "r", X)
    assert manager.waiters("r") == [("w", X)]
    assert manager.wait_for_graph() == {"w": frozenset({"a", "b", "c"})}
    manager.release("a", "r")
    manager.release("b", "r")
    assert not writer.done and manager.waiters("r") == [("w", X)]
    manager.release("c", "r")
    writer.outcome()
    assert manager.holders("r") == {"w": X}
    manager.release_all("w")


def test_try_acquire_never_waits_and_changes_nothing_on_failure(manager: LockManager) -> None:
    manager.acquire("a", "r", X)
    assert manager.try_acquire("b", "r", S) is False
    assert manager.waiters("r") == []
    stats = manager.stats()
    assert stats["try_failures"] == 1 and stats["owners"] == 1  # "b" was not kept
    manager.release("a", "r")
    assert manager.try_acquire("b", "r", S) is True
    manager.release_all("b")


def test_fifo_grants_exactly_the_waiters_that_can_proceed(manager: LockManager) -> None:
    manager.acquire("a", "r", X)
    b = blocked_call(manager, "b", manager.acquire, "r", S)
    c = blocked_call(manager, "c", manager.acquire, "r", X)
    d = blocked_call(manager, "d", manager.acquire, "r", S)  # compatible with b, behind c
    assert manager.waiters("r") == [("b", S), ("c", X), ("d", S)]
    manager.release("a", "r")
    b.outcome()
    assert manager.holders("r") == {"b": S}
    assert manager.waiters("r") == [("c", X), ("d", S)]  # d does not overtake c
    assert not c.done and not d.done
    manager.release("b", "r")
    c.outcome()
    assert manager.waiters("r") == [("d", S)] and not d.done
    manager.release("c", "r")
    d.outcome()
    assert manager.holders("r") == {"d": S}
    manager.release("d", "r")


def test_one_release_grants_every_compatible_waiter_at_the_head(manager: LockManager) -> None:
    manager.acquire("w", "r", X)
    readers = [blocked_call(manager, f"r{i}", manager.acquire, "r", S) for i in range(5)]
    last = blocked_call(manager, "x", manager.acquire, "r", X)
    manager.release("w", "r")
    for reader in readers:
        reader.outcome()
    assert set(manager.holders("r")) == {f"r{i}" for i in range(5)}
    assert not last.done and manager.waiters("r") == [("x", X)]
    for i in range(5):
        manager.release_all(f"r{i}")
    last.outcome()
    manager.release_all("x")


def test_no_writer_starvation_new_readers_queue_behind_a_waiting_writer(
    manager: LockManager,
) -> None:
    manager.acquire("r0", "r", S)
    writer = blocked_call(manager, "w", manager.acquire, "r", X)
    assert manager.try_acquire("r1", "r", S) is False  # would overtake the writer
    late = [blocked_call(manager, f"late{i}", manager.acquire, "r", S) for i in range(3)]
    manager.release("r0", "r")
    writer.outcome()
    assert all(not call.done for call in late)
    manager.release("w", "r")
    for call in late:
        call.outcome()
    for i in range(3):
        manager.release_all(f"late{i}")


def test_a_grant_wakes_one_exclusive_waiter_not_all(manager: LockManager) -> None:
    manager.acquire("h", "r", X)
    waiters = [blocked_call(manager, f"w{i}", manager.acquire, "r", X) for i in range(8)]
    manager.release("h", "r")
    waiters[0].outcome()
    assert [call.done for call in waiters[1:]] == [False] * 7
    assert [owner for owner, _ in manager.waiters("r")] == [f"w{i}" for i in range(1, 8)]
    for i in range(8):
        manager.release_all(f"w{i}")
        if i < 7:
            waiters[i + 1].outcome()


def test_conversion_queues_ahead_of_new_requests(manager: LockManager) -> None:
    manager.acquire("a", "r", S)
    manager.acquire("b", "r", S)
    newcomer = blocked_call(manager, "c", manager.acquire, "r", X)
    upgrade = blocked_call(manager, "a", manager.acquire, "r", X)
    assert manager.waiters("r") == [("a", X), ("c", X)]
    assert manager.holders("r") == {"a": S, "b": S}  # still S while waiting
    manager.release("b", "r")
    upgrade.outcome()
    assert manager.holders("r") == {"a": X} and not newcomer.done
    manager.release_all("a")
    newcomer.outcome()
    manager.release_all("c")


def test_upgrade_to_the_supremum_waits_for_the_conflicting_holder(manager: LockManager) -> None:
    manager.acquire("a", "r", IX)
    manager.acquire("b", "r", IS)
    manager.acquire("c", "r", IX)
    upgrade = blocked_call(manager, "a", manager.acquire, "r", S)  # IX + S = SIX
    assert manager.waiters("r") == [("a", SIX)]
    assert manager.wait_for_graph() == {"a": frozenset({"c"})}  # IS is compatible with SIX
    manager.release("c", "r")
    upgrade.outcome()
    assert manager.holders("r") == {"a": SIX, "b": IS}
    manager.release_all("a")
    manager.release_all("b")


def test_timeout_raises_after_the_timeout_and_changes_nothing(manager: LockManager) -> None:
    manager.acquire("a", "r", X)
    start = time.monotonic()
    with pytest.raises(LockTimeoutError) as caught:
        manager.acquire("b", "r", S, timeout=0.05)
    assert time.monotonic() - start >= 0.045
    error = caught.value
    assert (error.owner, error.resource, error.mode, error.timeout) == ("b", "r", S, 0.05)
    assert "'b'" in str(error) and "'r'" in str(error)
    assert manager.waiters("r") == [] and manager.holders("r") == {"a": X}
    assert manager.stats()["timeouts"] == 1 and manager.stats()["owners"] == 1
    manager.release("a", "r")


def test_timeout_zero_never_waits(manager: LockManager) -> None:
    manager.acquire("a", "r", S)
    with pytest.raises(LockTimeoutError) as caught:
        manager.acquire("b", "r", X, timeout=0)
    assert caught.value.timeout == 0
    manager.acquire("b", "r", S, timeout=0)  # grantable: fine
    manager.release_all("a")
    manager.release_all("b")


def test_a_timed_out_waiter_lets_the_ones_behind_it_through(manager: LockManager) -> None:
    manager.acquire("a", "r", S)
    # Long enough for the reader to queue behind the writer even on a loaded machine.
    writer = Call(manager.acquire, "w", "r", X, timeout=1.0)
    wait_until_waiting(manager, "w", calls=[writer])
    reader = blocked_call(manager, "b", manager.acquire, "r", S)  # queued behind the writer
    with pytest.raises(LockTimeoutError):
        writer.outcome()
    reader.outcome()  # granted when the writer gave up, beside "a"
    assert manager.holders("r") == {"a": S, "b": S}
    manager.release_all("a")
    manager.release_all("b")


def test_upgrade_timeout_keeps_the_old_mode(manager: LockManager) -> None:
    manager.acquire("a", "r", S)
    manager.acquire("b", "r", S)
    with pytest.raises(LockTimeoutError):
        manager.acquire("a", "r", X, timeout=0.02)
    assert manager.holders("r") == {"a": S, "b": S}
    manager.release("a", "r")
    assert manager.holders("r") == {"b": S}
    manager.release("b", "r")


def test_default_timeout_applies_and_inf_waits_forever() -> None:
    locks = LockManager(default_timeout=0.02)
    locks.acquire("a", "r", X)
    with pytest.raises(LockTimeoutError) as caught:
        locks.acquire("b", "r", X)
    assert caught.value.timeout == 0.02
    forever = blocked_call(locks, "b", locks.acquire, "r", X, timeout=math.inf)
    time.sleep(0.05)  # longer than the default timeout: still waiting
    assert not forever.done
    locks.release("a", "r")
    forever.outcome()
    locks.release("b", "r")
    check_invariants(locks)


def test_release_all_frees_everything_whatever_the_counts(manager: LockManager) -> None:
    manager.acquire("t", "r1", S)
    manager.acquire("t", "r1", S)
    manager.acquire("t", "r2", X)
    manager.acquire_key("t", "space", b"k", X)
    manager.acquire_range("t", "space", b"a", b"f", S)
    waiter = blocked_call(manager, "u", manager.acquire, "r2", S)
    assert manager.release_all("t") == 4
    waiter.outcome()
    assert manager.holders("r1") == {} and manager.space_holders("space") == []
    assert manager.release_all("t") == 0  # unknown owner: not an error
    assert manager.release_all("nobody") == 0
    manager.release_all("u")
    assert manager.stats()["owners"] == 0


def test_release_all_cancels_the_owners_wait_in_another_thread(manager: LockManager) -> None:
    manager.acquire("a", "r", X)
    manager.acquire("b", "other", X)
    waiting = blocked_call(manager, "b", manager.acquire, "r", S)
    assert manager.release_all("b") == 1
    with pytest.raises(LockCancelledError) as caught:
        waiting.outcome()
    assert (caught.value.owner, caught.value.resource, caught.value.mode) == ("b", "r", S)
    assert manager.waiters("r") == [] and manager.stats()["cancelled"] == 1
    assert manager.holders("other") == {}
    manager.release_all("a")


def test_an_owner_makes_one_request_at_a_time(manager: LockManager) -> None:
    manager.acquire("a", "r", X)
    waiting = blocked_call(manager, "b", manager.acquire, "r", X)
    with pytest.raises(OwnerBusyError) as caught:
        manager.acquire("b", "elsewhere", S)
    assert caught.value.waiting_for == "r"
    with pytest.raises(OwnerBusyError):
        manager.try_acquire("b", "elsewhere", S)
    with pytest.raises(OwnerBusyError):
        manager.acquire_key("b", "space", b"k", S)
    with pytest.raises(OwnerBusyError):
        manager.acquire_range("b", "space", None, None, S)
    manager.release("a", "r")
    waiting.outcome()
    manager.release_all("b")


@pytest.mark.parametrize("owner", [7, ("tx", 7), frozenset({1}), None, b"id", 2.5])
def test_owners_and_resources_are_opaque_hashables(manager: LockManager, owner: object) -> None:
    manager.acquire(owner, owner, X)
    assert manager.holders(owner) == {owner: X}
    manager.release(owner, owner)


def test_unhashable_owner_or_resource_is_a_type_error(manager: LockManager) -> None:
    with pytest.raises(TypeError):
        manager.acquire([], "r", X)
    with pytest.raises(TypeError):
        manager.acquire("a", [], X)
    assert manager.stats()["owners"] == 0


@pytest.mark.parametrize("mode", ["X", 4, None, LockMode])
def test_a_mode_that_is_not_a_lockmode_is_rejected(manager: LockManager, mode: object) -> None:
    for call in (
        lambda: manager.acquire("a", "r", mode),  # type: ignore[arg-type]
        lambda: manager.try_acquire("a", "r", mode),  # type: ignore[arg-type]
        lambda: manager.acquire_key("a", "s", b"k", mode),  # type: ignore[arg-type]
        lambda: manager.acquire_range("a", "s", None, None, mode),  # type: ignore[arg-type]
    ):
        with pytest.raises(LockTypeError, match="mode must be a LockMode") as caught:
            call()
        assert isinstance(caught.value, TypeError) and isinstance(caught.value, LockError)
    assert manager.stats()["owners"] == 0


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (-1, LockUsageError),
        (-0.001, LockUsageError),
        (math.nan, LockUsageError),
        ("1", LockTypeError),
        (True, LockTypeError),
        ([1], LockTypeError),
    ],
)
def test_bad_timeouts_are_rejected(manager: LockManager, timeout: object, error: type) -> None:
    with pytest.raises(error, match="timeout") as caught:
        manager.acquire("a", "r", X, timeout=timeout)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    with pytest.raises(error):
        manager.acquire_key("a", "s", b"k", X, timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(error):
        LockManager(default_timeout=timeout)  # type: ignore[arg-type]
    assert manager.holders("r") == {}


def test_victim_policy_must_be_callable() -> None:
    with pytest.raises(LockTypeError, match="victim_policy"):
        LockManager(victim_policy="youngest")  # type: ignore[arg-type]


def test_releasing_what_is_not_held_is_a_typed_error(manager: LockManager) -> None:
    with pytest.raises(NotHeldError, match="does not hold") as caught:
        manager.release("a", "r")
    assert (caught.value.owner, caught.value.resource) == ("a", "r")
    manager.acquire("a", "r", S)
    with pytest.raises(NotHeldError):
        manager.release("b", "r")  # someone else's lock
    manager.release("a", "r")


def test_introspection_returns_copies(manager: LockManager) -> None:
    manager.acquire("a", "r", S)
    holders = manager.holders("r")
    holders["intruder"] = X
    assert manager.holders("r") == {"a": S}
    assert manager.waiters("nothing") == [] and manager.holders("nothing") == {}
    assert manager.wait_for_graph() == {}
    assert set(manager.stats()) == {
        "grants",
        "upgrades",
        "waits",
        "timeouts",
        "deadlocks",
        "cancelled",
        "try_failures",
        "releases",
        "owners",
        "resources",
        "spaces",
        "waiting",
    }
    assert "owners=1" in repr(manager)
    manager.release("a", "r")


def test_counters_follow_the_story(manager: LockManager) -> None:
    manager.acquire("a", "r", S)
    manager.acquire("a", "r", X)  # upgrade, no wait
    waiter = blocked_call(manager, "b", manager.acquire, "r", S)
    assert manager.stats()["waiting"] == 1
    manager.release_all("a")
    waiter.outcome()
    stats = manager.stats()
    assert (stats["grants"], stats["upgrades"], stats["waits"], stats["waiting"]) == (3, 1, 1, 0)
    manager.release_all("b")


def test_waiters_park_without_spinning(manager: LockManager) -> None:
    manager.acquire("a", "r", X)
    waiting = blocked_call(manager, "b", manager.acquire, "r", X)
    before = time.process_time()  # CPU of this process, all threads; the sleeper uses none
    time.sleep(0.1)
    assert time.process_time() - before < 0.05  # a polling waiter would burn the whole 0.1 s
    assert not waiting.done
    manager.release("a", "r")
    assert waiting.join(PATIENCE).error is None
    manager.release("b", "r")
