"""Key and range locks: half-open overlap rules, keys as one-key ranges, FIFO across both."""

from __future__ import annotations

import pytest
from conftest import blocked_call
from hypothesis import given
from hypothesis import strategies as st

from lock_db import (
    InvalidRangeError,
    KeyRange,
    LockManager,
    LockMode,
    LockTimeoutError,
    LockTypeError,
    NotHeldError,
    SpaceLock,
)
from lock_db._invariants import check_invariants

IS, IX, S, SIX, X = LockMode.IS, LockMode.IX, LockMode.S, LockMode.SIX, LockMode.X
NIL = b"\x00"

# (held lo, held hi, requested lo, requested hi, overlapping?); keys are [k, k + NIL).
OVERLAP_CASES = [
    (b"a", b"c", b"c", b"e", False),  # half-open: hi is not in the range
    (b"c", b"e", b"a", b"c", False),
    (b"a", b"c", b"b", b"d", True),
    (b"a", b"z", b"m", b"n", True),  # contained
    (b"a", b"c", b"a", b"a" + NIL, True),  # key a
    (b"a", b"c", b"b", b"b" + NIL, True),  # key b
    (b"a", b"c", b"c", b"c" + NIL, False),  # key c
    (b"a", b"c", b"bzzzz", b"bzzzz" + NIL, True),  # longer key inside
    (b"a", b"c", b"c" + NIL, b"c" + NIL * 2, False),
    (None, b"b", b"", NIL, True),  # lo=None is b"": the empty key is in it
    (None, b"b", b"b", b"b" + NIL, False),
    (b"b", None, b"\xff" * 8, b"\xff" * 8 + NIL, True),  # unbounded above
    (b"b", None, b"a", b"b", False),
    (None, None, b"anything", b"anything" + NIL, True),
    (None, None, None, None, True),
    (b"k", b"k" + NIL, b"k", b"k" + NIL, True),  # the same key
    (b"k", b"k" + NIL, b"k" + NIL, b"k" + NIL * 2, False),  # its successor
    (b"k", b"k" + NIL * 2, b"k" + NIL, b"k" + NIL * 2, True),  # [k, k\0\0) holds k\0
]


@pytest.mark.parametrize(("lo", "hi", "req_lo", "req_hi", "overlap"), OVERLAP_CASES)
def test_overlap_rules(
    lo: bytes | None, hi: bytes | None, req_lo: bytes | None, req_hi: bytes | None, overlap: bool
) -> None:
    locks = LockManager()
    locks.acquire_range("a", "s", lo, hi, X)
    assert locks.try_acquire_range("b", "s", req_lo, req_hi, X) is (not overlap)
    locks.release_all("b")
    assert locks.try_acquire_range("c", "s", req_lo, req_hi, IS) is (not overlap)
    # The same with the roles swapped.
    other = LockManager()
    other.acquire_range("b", "s", req_lo, req_hi, X)
    assert other.try_acquire_range("a", "s", lo, hi, S) is (not overlap)
    check_invariants(locks)
    check_invariants(other)


def test_compatible_modes_share_overlapping_ranges(manager: LockManager) -> None:
    manager.acquire_range("a", "s", b"a", b"m", S)
    manager.acquire_range("b", "s", b"f", b"z", S)
    manager.acquire_key("c", "s", b"g", IS)
    assert manager.try_acquire_key("d", "s", b"g", IX) is False  # IX conflicts with S ranges
    assert manager.space_holders("s") == [
        SpaceLock("a", b"a", b"m", S),
        SpaceLock("b", b"f", b"z", S),
        SpaceLock("c", b"g", b"g" + NIL, IS),
    ]
    for owner in "abc":
        manager.release_all(owner)


def test_a_key_lock_is_the_one_key_range(manager: LockManager) -> None:
    manager.acquire_key("a", "s", b"k", S)
    manager.acquire_range("a", "s", b"k", b"k" + NIL, X)  # the same lock: an upgrade
    assert manager.space_holders("s") == [SpaceLock("a", b"k", b"k" + NIL, X)]
    manager.release_range("a", "s", b"k", b"k" + NIL)
    manager.release_key("a", "s", b"k")
    assert manager.space_holders("s") == []
    assert manager.stats()["spaces"] == 0


def test_each_exact_range_is_its_own_lock(manager: LockManager) -> None:
    manager.acquire_range("a", "s", b"a", b"m", S)
    manager.acquire_range("a", "s", b"a", b"m", S)  # re-entry: count 2
    manager.acquire_range("a", "s", b"c", b"z", X)  # another lock of the same owner
    assert manager.space_holders("s") == [
        SpaceLock("a", b"a", b"m", S),
        SpaceLock("a", b"c", b"z", X),
    ]
    manager.release_range("a", "s", b"a", b"m")
    manager.release_range("a", "s", b"a", b"m")
    with pytest.raises(NotHeldError) as caught:
        manager.release_range("a", "s", b"a", b"m")
    assert caught.value.resource == KeyRange("s", b"a", b"m")
    with pytest.raises(NotHeldError):
        manager.release_range("a", "s", b"c", b"y")  # bounds must match exactly
    manager.release_range("a", "s", b"c", b"z")


def test_range_upgrade_waits_for_a_conflicting_key(manager: LockManager) -> None:
    manager.acquire_range("a", "s", b"a", b"m", S)
    manager.acquire_key("b", "s", b"c", S)
    upgrade = blocked_call(manager, "a", manager.acquire_range, "s", b"a", b"m", X)
    assert manager.space_waiters("s") == [SpaceLock("a", b"a", b"m", X)]
    manager.release_key("b", "s", b"c")
    upgrade.outcome()
    assert manager.space_holders("s") == [SpaceLock("a", b"a", b"m", X)]
    manager.release_all("a")


def test_own_locks_never_conflict(manager: LockManager) -> None:
    manager.acquire_range("a", "s", None, None, X)
    manager.acquire_key("a", "s", b"k", X)
    manager.acquire_range("a", "s", b"b", b"c", S)
    assert manager.release_all("a") == 3


def test_phantom_protection(manager: LockManager) -> None:
    # t1 scans every user (including ones that do not exist yet); t2 inserts a new one.
    manager.acquire_range("t1", "users", b"user:", b"user;", S)
    insert = blocked_call(manager, "t2", manager.acquire_key, "users", b"user:zed", X)
    assert manager.try_acquire_key("t3", "users", b"userz", X) is True  # outside the scan
    manager.release_all("t1")
    insert.outcome()
    manager.release_all("t2")
    manager.release_all("t3")


def test_keys_queue_behind_an_overlapping_range_waiter(manager: LockManager) -> None:
    manager.acquire_key("t1", "s", b"m", S)
    writer = blocked_call(manager, "t2", manager.acquire_range, "s", b"a", b"z", X)
    # "n" is free, but the waiting range writer covers it: no overtaking.
    assert manager.try_acquire_key("t3", "s", b"n", S) is False
    reader = blocked_call(manager, "t3", manager.acquire_key, "s", b"n", S)
    assert manager.wait_for_graph() == {"t2": frozenset({"t1"}), "t3": frozenset({"t2"})}
    # A key the waiting range does not cover is not held up.
    assert manager.try_acquire_key("t4", "s", b"zz", X) is True
    manager.release_all("t1")
    writer.outcome()
    assert not reader.done
    manager.release_all("t2")
    reader.outcome()
    for owner in ("t3", "t4"):
        manager.release_all(owner)


def test_releasing_a_range_wakes_waiters_on_many_keys(manager: LockManager) -> None:
    manager.acquire_range("w", "s", None, None, X)
    calls = [
        blocked_call(manager, f"r{i}", manager.acquire_key, "s", bytes([97 + i]), S)
        for i in range(4)
    ]
    ranged = blocked_call(manager, "q", manager.acquire_range, "s", b"b", b"c", S)
    manager.release_range("w", "s", None, None)
    for call in [*calls, ranged]:
        call.outcome()
    assert len(manager.space_holders("s")) == 5
    for owner in ["r0", "r1", "r2", "r3", "q"]:
        manager.release_all(owner)


def test_range_waiter_wakes_when_the_last_conflicting_key_goes(manager: LockManager) -> None:
    for i, key in enumerate([b"b", b"c", b"d"]):
        manager.acquire_key(f"k{i}", "s", key, X)
    scan = blocked_call(manager, "scan", manager.acquire_range, "s", b"a", b"e", S)
    manager.release_key("k0", "s", b"b")
    manager.release_key("k1", "s", b"c")
    assert not scan.done
    manager.release_key("k2", "s", b"d")
    scan.outcome()
    manager.release_all("scan")


def test_spaces_are_separate_namespaces(manager: LockManager) -> None:
    manager.acquire("a", "users", X)  # a plain resource named like the space
    manager.acquire_range("a", "users", None, None, X)
    assert manager.try_acquire_key("b", "orders", b"k", X) is True
    assert manager.try_acquire("b", ("users", b"k"), X) is True
    assert manager.try_acquire_key("b", "users", b"k", S) is False
    manager.release_all("a")
    manager.release_all("b")


def test_timeouts_name_the_key_range(manager: LockManager) -> None:
    manager.acquire_range("a", "s", b"a", b"z", X)
    with pytest.raises(LockTimeoutError) as caught:
        manager.acquire_key("b", "s", b"k", S, timeout=0.01)
    assert caught.value.resource == KeyRange("s", b"k", b"k" + NIL)
    with pytest.raises(LockTimeoutError) as caught:
        manager.acquire_range("b", "s", None, b"b", S, timeout=0)
    assert caught.value.resource == KeyRange("s", b"", b"b")
    assert manager.space_waiters("s") == [] and manager.stats()["owners"] == 1
    manager.release_all("a")


@pytest.mark.parametrize("key", ["k", 1, bytearray(b"k"), memoryview(b"k"), None])
def test_keys_must_be_bytes(manager: LockManager, key: object) -> None:
    with pytest.raises(LockTypeError, match="key must be bytes") as caught:
        manager.acquire_key("a", "s", key, X)  # type: ignore[arg-type]
    assert isinstance(caught.value, TypeError)
    with pytest.raises(LockTypeError):
        manager.try_acquire_key("a", "s", key, X)  # type: ignore[arg-type]
    with pytest.raises(LockTypeError):
        manager.release_key("a", "s", key)  # type: ignore[arg-type]
    if key is not None:
        with pytest.raises(LockTypeError, match="lo must be bytes"):
            manager.acquire_range("a", "s", key, b"z", X)  # type: ignore[arg-type]
        with pytest.raises(LockTypeError, match="hi must be bytes"):
            manager.acquire_range("a", "s", b"a", key, X)  # type: ignore[arg-type]
    assert manager.stats()["owners"] == 0


@pytest.mark.parametrize(("lo", "hi"), [(b"b", b"a"), (b"a", b"a"), (b"a", b""), (None, b"")])
def test_empty_or_inverted_ranges_are_rejected(
    manager: LockManager, lo: bytes | None, hi: bytes
) -> None:
    with pytest.raises(InvalidRangeError, match="non-empty") as caught:
        manager.acquire_range("a", "s", lo, hi, X)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(InvalidRangeError):
        manager.try_acquire_range("a", "s", lo, hi, X)
    with pytest.raises(InvalidRangeError):
        manager.release_range("a", "s", lo, hi)


def test_release_key_of_a_key_not_held(manager: LockManager) -> None:
    manager.acquire_key("a", "s", b"k", S)
    with pytest.raises(NotHeldError) as caught:
        manager.release_key("b", "s", b"k")
    assert caught.value.resource == KeyRange("s", b"k", b"k" + NIL)
    with pytest.raises(NotHeldError):
        manager.release_key("a", "other", b"k")
    manager.release_key("a", "s", b"k")


# -- property: grants agree with a brute-force overlap oracle --------------------------

ALPHABET = [b"", b"a", b"a\x00", b"ab", b"b", b"b\x00", b"c"]
BOUNDS = st.sampled_from([None, *ALPHABET])
MODES = st.sampled_from(list(LockMode))


def _shares_a_key(first: tuple[bytes, bytes | None], second: tuple[bytes, bytes | None]) -> bool:
    """Brute force over the keys that matter: every lower bound is a candidate witness."""
    witnesses = {first[0], second[0]}
    return any(
        all(lo <= key and (hi is None or key < hi) for lo, hi in (first, second))
        for key in witnesses
    )


@given(
    st.lists(
        st.tuples(st.sampled_from("abcd"), BOUNDS, BOUNDS, MODES, st.booleans()),
        max_size=25,
    )
)
def test_try_grants_agree_with_a_brute_force_oracle(
    requests: list[tuple[str, bytes | None, bytes | None, LockMode, bool]],
) -> None:
    locks = LockManager()
    held: dict[tuple[str, bytes, bytes | None], LockMode] = {}
    for owner, lo, hi, mode, as_key in requests:
        low = b"" if lo is None else lo
        if as_key:
            span: tuple[bytes, bytes | None] = (low, low + NIL)
        elif hi is not None and low >= hi:
            with pytest.raises(InvalidRangeError):
                locks.try_acquire_range(owner, "s", lo, hi, mode)
            continue
        else:
            span = (low, hi)
        mine = held.get((owner, *span))
        wanted = mode if mine is None else mine.supremum(mode)
        expected = all(
            other_owner == owner
            or not _shares_a_key(span, (other_lo, other_hi))
            or wanted.compatible_with(other_mode)
            for (other_owner, other_lo, other_hi), other_mode in held.items()
        )
        if as_key:
            granted = locks.try_acquire_key(owner, "s", low, mode)
        else:
            granted = locks.try_acquire_range(owner, "s", lo, hi, mode)
        assert granted is expected
        if granted:
            held[(owner, *span)] = wanted
        reported = locks.space_holders("s")
        assert len(reported) == len(held)
        assert set(reported) == {SpaceLock(o, lo_, hi_, m) for (o, lo_, hi_), m in held.items()}
    check_invariants(locks)
