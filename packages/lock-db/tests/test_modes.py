"""The compatibility matrix and the upgrade table, exhaustively: as tables and as behaviour.

The expected tables are written out here by hand, from Gray's multi-granularity locking,
independently of the tables in ``lock_db._modes``.
"""

from __future__ import annotations

import itertools

import pytest

from lock_db import LockManager, LockMode, LockTypeError
from lock_db._invariants import check_invariants

IS, IX, S, SIX, X = LockMode.IS, LockMode.IX, LockMode.S, LockMode.SIX, LockMode.X
MODES = [IS, IX, S, SIX, X]

# fmt: off
MATRIX = {
    #        IS     IX     S      SIX    X
    IS:  {IS: 1, IX: 1, S: 1, SIX: 1, X: 0},
    IX:  {IS: 1, IX: 1, S: 0, SIX: 0, X: 0},
    S:   {IS: 1, IX: 0, S: 1, SIX: 0, X: 0},
    SIX: {IS: 1, IX: 0, S: 0, SIX: 0, X: 0},
    X:   {IS: 0, IX: 0, S: 0, SIX: 0, X: 0},
}
# held -> requested -> mode held afterwards (the supremum)
UPGRADE = {
    IS:  {IS: IS,  IX: IX,  S: S,   SIX: SIX, X: X},
    IX:  {IS: IX,  IX: IX,  S: SIX, SIX: SIX, X: X},
    S:   {IS: S,   IX: SIX, S: S,   SIX: SIX, X: X},
    SIX: {IS: SIX, IX: SIX, S: SIX, SIX: SIX, X: X},
    X:   {IS: X,   IX: X,   S: X,   SIX: X,   X: X},
}
# fmt: on

PAIRS = list(itertools.product(MODES, MODES))


def test_lattice_members() -> None:
    assert [mode.name for mode in LockMode] == ["IS", "IX", "S", "SIX", "X"]


@pytest.mark.parametrize(("held", "requested"), PAIRS)
def test_compatible_with_matches_the_matrix(held: LockMode, requested: LockMode) -> None:
    assert held.compatible_with(requested) is bool(MATRIX[held][requested])
    assert requested.compatible_with(held) is bool(MATRIX[held][requested])  # symmetric


@pytest.mark.parametrize(("held", "requested"), PAIRS)
def test_supremum_and_covers_match_the_upgrade_table(held: LockMode, requested: LockMode) -> None:
    assert held.supremum(requested) is UPGRADE[held][requested]
    assert requested.supremum(held) is UPGRADE[held][requested]  # commutative
    assert held.covers(requested) is (UPGRADE[held][requested] is held)


def test_lattice_laws() -> None:
    for a, b, c in itertools.product(MODES, repeat=3):
        assert a.supremum(a) is a
        assert a.supremum(b).supremum(c) is a.supremum(b.supremum(c))
        # Holding more never conflicts less: an upgrade can only add conflicts.
        if a.covers(b) and not b.compatible_with(c):
            assert not a.compatible_with(c)


@pytest.mark.parametrize("method", ["compatible_with", "supremum", "covers"])
def test_helpers_reject_non_modes(method: str) -> None:
    with pytest.raises(LockTypeError, match=r"LockMode\.S"):
        getattr(LockMode.X, method)("S")


@pytest.mark.parametrize(("held", "requested"), PAIRS)
def test_manager_grants_exactly_by_the_matrix(held: LockMode, requested: LockMode) -> None:
    locks = LockManager()
    locks.acquire("a", "r", held)
    granted = locks.try_acquire("b", "r", requested)
    assert granted is bool(MATRIX[held][requested])
    expected = {"a": held, "b": requested} if granted else {"a": held}
    assert locks.holders("r") == expected
    check_invariants(locks)


@pytest.mark.parametrize(("held", "requested"), PAIRS)
def test_key_and_range_locks_use_the_same_matrix(held: LockMode, requested: LockMode) -> None:
    locks = LockManager()
    locks.acquire_range("a", "space", b"a", b"z", held)
    assert locks.try_acquire_key("b", "space", b"m", requested) is bool(MATRIX[held][requested])
    assert locks.try_acquire_range("c", "space", None, b"b", requested) is bool(
        MATRIX[held][requested]
    )
    check_invariants(locks)


@pytest.mark.parametrize(("held", "requested"), PAIRS)
def test_same_owner_upgrade_is_immediate_and_reaches_the_supremum(
    held: LockMode, requested: LockMode
) -> None:
    locks = LockManager()
    locks.acquire("a", "r", held)
    locks.acquire("a", "r", requested, timeout=0)  # never waits for itself
    assert locks.holders("r") == {"a": UPGRADE[held][requested]}
    assert locks.stats()["upgrades"] == (0 if held.covers(requested) else 1)
    # Two grants, two releases; the mode does not go down in between.
    locks.release("a", "r")
    assert locks.holders("r") == {"a": UPGRADE[held][requested]}
    locks.release("a", "r")
    assert locks.holders("r") == {}
    check_invariants(locks)


@pytest.mark.parametrize(
    ("held", "requested", "other"),
    [
        (held, requested, other)
        for held, requested, other in itertools.product(MODES, repeat=3)
        if MATRIX[held][other]  # "other" can hold beside "held" to begin with
    ],
)
def test_upgrade_beside_another_holder_waits_exactly_when_the_supremum_conflicts(
    held: LockMode, requested: LockMode, other: LockMode
) -> None:
    locks = LockManager()
    locks.acquire("a", "r", held)
    locks.acquire("b", "r", other)
    granted = locks.try_acquire("a", "r", requested)
    assert granted is bool(MATRIX[UPGRADE[held][requested]][other])
    assert locks.holders("r") == {"a": UPGRADE[held][requested] if granted else held, "b": other}
    check_invariants(locks)
