"""Isolation: the anomalies snapshot isolation and serializability forbid (Adya's G0, G1a,
G1b, G1c, G-single, G2), each as a hand-interleaved history of transactions in one thread;
then randomized multi-thread checkers (bank transfers, Elle-style list append).

Heavier randomized runs: ``STRATA_SLOW=1``.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import isolation_checker as ic
import pytest

import strata

SLOW = bool(os.environ.get("STRATA_SLOW"))


@pytest.fixture(params=["cache", "standard"])
def anydb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[strata.Database]:
    """The same history in both durability modes the anomaly tests cover."""
    database = strata.open_memory() if request.param == "cache" else strata.open(tmp_path / "db")
    try:
        yield database
    finally:
        database.close()


# -- G0: dirty writes (write cycles) ---------------------------------------------------------


def test_g0_write_cycle_second_writer_aborts(anydb: strata.Database) -> None:
    anydb.kv.put_many({"x": 0, "y": 0})
    t1 = anydb.transaction()
    t2 = anydb.transaction()
    t1.kv.put("x", 1)
    t2.kv.put("x", 2)
    t2.kv.put("y", 2)
    t1.kv.put("y", 1)
    t1.commit()
    with pytest.raises(strata.ConflictError) as info:
        t2.commit()
    assert info.value.reason == "write-write"
    assert info.value.key in ("x", "y")
    assert t2.closed
    # Both keys come from the same transaction: no interleaved write order.
    assert (anydb.kv.get("x"), anydb.kv.get("y")) == (1, 1)


def test_g0_uncommitted_write_is_invisible_to_other_writers(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    t1 = anydb.transaction()
    t1.kv.put("x", 1)
    t2 = anydb.transaction()
    assert t2.kv.get("x") == 0
    t2.rollback()
    t1.commit()
    assert anydb.kv.get("x") == 1


# -- G1a: aborted reads ------------------------------------------------------------------


def test_g1a_rolled_back_write_never_read(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    t1 = anydb.transaction()
    t1.kv.put("x", 99)
    t1.kv.put("new", "ghost")
    t2 = anydb.transaction()
    assert t2.kv.get("x") == 0
    t1.rollback()
    t3 = anydb.transaction()
    assert t2.kv.get("x") == 0 and t3.kv.get("x") == 0
    assert not t3.kv.exists("new")
    assert list(t3.kv.scan()) == [("x", 0)]
    t2.commit()
    t3.commit()
    assert anydb.kv.get("x") == 0 and anydb.kv.get("new") is None
    assert len(anydb.kv.history("x")) == 1


def test_g1a_conflict_aborted_write_never_read(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    t1 = anydb.transaction()
    t2 = anydb.transaction()
    t1.kv.put("x", 1)
    t2.kv.put("x", 2)
    t2.kv.put("side", "from t2")
    t1.commit()
    with pytest.raises(strata.ConflictError):
        t2.commit()
    with anydb.transaction(read_only=True) as t3:
        assert t3.kv.get("x") == 1
        assert t3.kv.get("side") is None
    assert [v.value for v in anydb.kv.history("x")] == [1, 0]


def test_g1a_exception_in_block_rolls_back(anydb: strata.Database) -> None:
    with pytest.raises(RuntimeError), anydb.transaction() as tx:
        tx.kv.put("x", "doomed")
        raise RuntimeError("boom")
    assert anydb.kv.get("x") is None
    assert anydb.version == 0


# -- G1b: intermediate reads ------------------------------------------------------------


def test_g1b_intermediate_value_never_read(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    t1 = anydb.transaction()
    t1.kv.put("x", 1)  # intermediate
    t2 = anydb.transaction()
    assert t2.kv.get("x") == 0
    t1.kv.put("x", 2)  # final
    assert t2.kv.get("x") == 0
    t1.commit()
    assert t2.kv.get("x") == 0  # still its snapshot
    t2.commit()
    with anydb.transaction() as t3:
        assert t3.kv.get("x") == 2
    # One version per commit: the intermediate value is not even in the history.
    assert [v.value for v in anydb.kv.history("x")] == [2, 0]


# -- G1c: circular information flow ---------------------------------------------------------


def test_g1c_no_circular_information_flow(anydb: strata.Database) -> None:
    anydb.kv.put_many({"x": 0, "y": 0})
    t1 = anydb.transaction()
    t2 = anydb.transaction()
    t1.kv.put("x", 1)
    t2.kv.put("y", 1)
    # Each reads the other's key: neither may see the other's uncommitted write, or
    # each would depend (wr) on the other.
    assert t1.kv.get("y") == 0
    assert t2.kv.get("x") == 0
    t1.commit()
    assert t2.kv.get("x") == 0  # and not after t1 committed either
    t2.commit()
    assert (anydb.kv.get("x"), anydb.kv.get("y")) == (1, 1)


def test_g1c_three_transactions(anydb: strata.Database) -> None:
    anydb.kv.put_many({"a": 0, "b": 0, "c": 0})
    ts = [anydb.transaction() for _ in range(3)]
    keys = ["a", "b", "c"]
    for i, tx in enumerate(ts):
        tx.kv.put(keys[i], i + 1)
    for i, tx in enumerate(ts):
        assert tx.kv.get(keys[(i + 1) % 3]) == 0
    for tx in ts:
        tx.commit()
    assert [anydb.kv.get(k) for k in keys] == [1, 2, 3]


# -- G-single: read skew, non-repeatable reads, lost update ---------------------------------


@pytest.mark.parametrize("isolation", ["snapshot", "serializable"])
def test_gsingle_read_skew(anydb: strata.Database, isolation: str) -> None:
    anydb.kv.put_many({"x": 50, "y": 50})
    t1 = anydb.transaction(isolation=isolation)
    assert t1.kv.get("x") == 50
    with anydb.transaction() as t2:
        t2.kv.put("x", t2.kv.get("x") - 50)
        t2.kv.put("y", t2.kv.get("y") + 50)
    assert t1.kv.get("y") == 50  # not 100: that would be read skew
    assert t1.kv.get("x") == 50  # repeatable
    assert sum(v for _, v in t1.kv.scan()) == 100
    assert t1.kv.get_many(["x", "y"]) == [50, 50]
    if isolation == "snapshot":
        t1.commit()
    else:  # its reads of x and y are stale by commit time: validation refuses it
        with pytest.raises(strata.ConflictError) as info:
            t1.commit()
        assert info.value.reason in ("read", "range")


@pytest.mark.parametrize("isolation", ["snapshot", "serializable"])
def test_gsingle_lost_update(anydb: strata.Database, isolation: str) -> None:
    anydb.kv.put("counter", 0)
    t1 = anydb.transaction(isolation=isolation)
    t2 = anydb.transaction(isolation=isolation)
    t1.kv.put("counter", t1.kv.get("counter") + 1)
    t2.kv.put("counter", t2.kv.get("counter") + 1)
    t1.commit()
    with pytest.raises(strata.ConflictError) as info:
        t2.commit()
    assert isinstance(info.value, strata.TransactionAbortedError)
    assert info.value.key == "counter"
    assert anydb.kv.get("counter") == 1
    # Retrying the loser through run_transaction gives both increments.
    anydb.run_transaction(
        lambda tx: tx.kv.put("counter", tx.kv.get("counter") + 1), isolation=isolation
    )
    assert anydb.kv.get("counter") == 2


def test_gsingle_cas_in_transaction_lost_update(anydb: strata.Database) -> None:
    v = anydb.kv.put("k", "a")
    t1 = anydb.transaction()
    t2 = anydb.transaction()
    assert t1.kv.cas("k", v, "t1")
    assert t2.kv.cas("k", v, "t2")
    t2.commit()
    with pytest.raises(strata.ConflictError):
        t1.commit()
    assert anydb.kv.get("k") == "t2"


# -- G2: write skew, phantoms ---------------------------------------------------------------


def _doctors(db: strata.Database) -> None:
    db.kv.put_many({"oncall/alice": True, "oncall/bob": True})


def _go_off_call(tx: strata.Transaction, me: str) -> None:
    on = [tx.kv.get("oncall/alice"), tx.kv.get("oncall/bob")]
    assert sum(on) == 2
    tx.kv.put(f"oncall/{me}", False)


def test_g2_write_skew_prevented_by_serializable(anydb: strata.Database) -> None:
    _doctors(anydb)
    t1 = anydb.transaction(isolation="serializable")
    t2 = anydb.transaction(isolation="serializable")
    _go_off_call(t1, "alice")
    _go_off_call(t2, "bob")
    t1.commit()
    with pytest.raises(strata.ConflictError) as info:
        t2.commit()
    assert info.value.reason in ("read", "range")
    assert info.value.key == "oncall/alice"
    assert anydb.kv.get("oncall/bob") is True  # someone is still on call


def test_g2_write_skew_allowed_by_snapshot(anydb: strata.Database) -> None:
    """Documented behaviour: snapshot isolation permits write skew (disjoint write sets)."""
    _doctors(anydb)
    t1 = anydb.transaction(isolation="snapshot")
    t2 = anydb.transaction(isolation="snapshot")
    _go_off_call(t1, "alice")
    _go_off_call(t2, "bob")
    t1.commit()
    t2.commit()
    assert not anydb.kv.get("oncall/alice") and not anydb.kv.get("oncall/bob")


def test_g2_write_skew_through_scans_is_a_range_conflict(anydb: strata.Database) -> None:
    _doctors(anydb)
    t1 = anydb.transaction(isolation="serializable")
    t2 = anydb.transaction(isolation="serializable")
    for tx, me in ((t1, "alice"), (t2, "bob")):
        assert tx.kv.count(prefix="oncall/") == 2
        assert sum(v for _, v in tx.kv.scan(prefix="oncall/")) == 2
        tx.kv.put(f"oncall/{me}", False)
    t1.commit()
    with pytest.raises(strata.ConflictError) as info:
        t2.commit()
    assert info.value.reason == "range"
    assert anydb.kv.get("oncall/bob") is True


def test_g2_mixed_serializable_and_snapshot_writer(anydb: strata.Database) -> None:
    """A serializable reader is protected even when the other writer is snapshot-only."""
    _doctors(anydb)
    t1 = anydb.transaction(isolation="serializable")
    t2 = anydb.transaction(isolation="snapshot")
    _go_off_call(t1, "alice")
    _go_off_call(t2, "bob")
    t2.commit()
    with pytest.raises(strata.ConflictError):
        t1.commit()


@pytest.mark.parametrize("change", ["insert", "delete", "update"])
def test_phantom_in_scanned_range(anydb: strata.Database, change: str) -> None:
    anydb.kv.put_many({"emp/a": 10, "emp/b": 20, "other": 0})
    t1 = anydb.transaction(isolation="serializable")
    total = sum(v for _, v in t1.kv.scan(prefix="emp/"))
    assert total == 30
    with anydb.transaction() as t2:
        if change == "insert":
            t2.kv.put("emp/c", 5)
        elif change == "delete":
            assert t2.kv.delete("emp/a")
        else:
            t2.kv.put("emp/b", 21)
    t1.kv.put("payroll", total)
    with pytest.raises(strata.ConflictError) as info:
        t1.commit()
    assert info.value.reason == "range"
    assert anydb.kv.get("payroll") is None


def test_phantom_outside_scanned_range_is_no_conflict(anydb: strata.Database) -> None:
    anydb.kv.put_many({"emp/a": 10, "emp/b": 20})
    t1 = anydb.transaction(isolation="serializable")
    assert [k for k, _ in t1.kv.scan(start="emp/a", end="emp/b")] == ["emp/a"]
    anydb.kv.put("emp/b", 99)  # end is exclusive
    anydb.kv.put("zzz", 1)
    t1.kv.put("payroll", 10)
    t1.commit()
    assert anydb.kv.get("payroll") == 10


def test_phantom_snapshot_isolation_allows_it(anydb: strata.Database) -> None:
    anydb.kv.put_many({"emp/a": 10})
    t1 = anydb.transaction(isolation="snapshot")
    assert t1.kv.count(prefix="emp/") == 1
    anydb.kv.put("emp/b", 1)
    assert t1.kv.count(prefix="emp/") == 1  # stable snapshot: no phantom *read*
    t1.kv.put("payroll", 10)
    t1.commit()


def test_serializable_own_writes_in_scanned_range_do_not_conflict(anydb: strata.Database) -> None:
    anydb.kv.put("emp/a", 1)
    with anydb.transaction(isolation="serializable") as tx:
        assert tx.kv.count(prefix="emp/") == 1
        tx.kv.put("emp/b", 2)
        assert tx.kv.count(prefix="emp/") == 2
    assert anydb.kv.count(prefix="emp/") == 2


def test_fekete_read_only_anomaly(anydb: strata.Database) -> None:
    """Fekete, O'Neil and O'Neil's read-only anomaly: under SI a read-only transaction can
    observe a state no serial order produces; serializable aborts a participant."""
    anydb.kv.put_many({"checking": 0, "savings": 0})

    def history(isolation: str) -> tuple[list[int], list[str]]:
        outcome: list[str] = []
        withdraw = anydb.transaction(isolation=isolation)  # T2
        x, y = withdraw.kv.get("checking"), withdraw.kv.get("savings")
        with anydb.transaction(isolation=isolation) as deposit:  # T1
            deposit.kv.put("savings", deposit.kv.get("savings") + 20)
        report = anydb.transaction(isolation=isolation, read_only=True)  # T3
        seen = [report.kv.get("checking"), report.kv.get("savings")]
        try:
            report.commit()
            outcome.append("report")
        except strata.ConflictError:
            pass
        overdraft_fee = 1 if x + y - 10 < 0 else 0
        withdraw.kv.put("checking", x - 10 - overdraft_fee)
        try:
            withdraw.commit()
            outcome.append("withdraw")
        except strata.ConflictError as exc:
            assert exc.reason == "read"
        return seen, outcome

    seen, outcome = history("snapshot")
    # SI: the report saw savings=20, checking=0, yet the withdrawal then charged the fee as
    # if the deposit had not happened: no serial order explains both.
    assert seen == [0, 20] and outcome == ["report", "withdraw"]
    assert anydb.kv.get("checking") == -11

    anydb.kv.put_many({"checking": 0, "savings": 0})
    seen, outcome = history("serializable")
    assert seen == [0, 20]
    assert outcome == ["report"]  # the withdrawal read savings, which changed: aborted
    assert anydb.kv.get("checking") == 0


def test_read_only_serializable_validates_its_reads(anydb: strata.Database) -> None:
    anydb.kv.put_many({"x": 0, "y": 0})
    reader = anydb.transaction(isolation="serializable", read_only=True)
    assert reader.kv.get("x") == 0
    anydb.kv.put("x", 1)
    with pytest.raises(strata.ConflictError) as info:
        reader.commit()
    assert info.value.reason == "read"


# -- randomized: bank ---------------------------------------------------------------------

BANK_CASES = [
    ("snapshot", "optimistic"),
    ("serializable", "optimistic"),
    ("snapshot", "pessimistic"),
]


@pytest.mark.parametrize("durability", ["cache", "standard"])
@pytest.mark.parametrize(("isolation", "mode"), BANK_CASES)
def test_bank_total_is_constant(tmp_path: Path, durability: str, isolation: str, mode: str) -> None:
    accounts, initial, threads = 8, 100, 4
    transfers = 400 if SLOW else 60
    db = strata.open_memory() if durability == "cache" else strata.open(tmp_path / "db")
    try:
        db.kv.put_many({f"acct/{i}": initial for i in range(accounts)})
        total = accounts * initial
        sums: list[int] = []
        errors: list[BaseException] = []

        def transfer(rng: random.Random) -> None:
            a, b = rng.sample(range(accounts), 2)
            amount = rng.randint(1, 30)

            def fn(tx: strata.Transaction) -> None:
                src, dst = tx.kv.get(f"acct/{a}"), tx.kv.get(f"acct/{b}")
                time.sleep(0)  # let other threads in between the reads and the writes
                tx.kv.put(f"acct/{a}", src - amount)
                tx.kv.put(f"acct/{b}", dst + amount)

            db.run_transaction(
                fn, isolation=isolation, mode=mode, retries=10_000, backoff=0.0005, max_backoff=0.01
            )

        def audit() -> None:
            def fn(tx: strata.Transaction) -> int:
                if mode == "pessimistic":
                    return sum(tx.kv.get(f"acct/{i}") for i in range(accounts))
                return sum(v for _, v in tx.kv.scan(prefix="acct/"))

            sums.append(
                db.run_transaction(
                    fn,
                    isolation=isolation,
                    mode=mode,
                    retries=10_000,
                    backoff=0.0005,
                    max_backoff=0.01,
                )
            )

        def worker(n: int) -> None:
            rng = random.Random(n)
            try:
                for i in range(transfers):
                    transfer(rng)
                    if n == 0 and i % 5 == 0:
                        audit()
            except BaseException as exc:
                errors.append(exc)

        ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors
        assert sums and all(s == total for s in sums), sums
        assert sum(v for _, v in db.kv.scan(prefix="acct/")) == total
        # Every transfer committed once: two writes each, on top of the initial put_many.
        assert db.version == 1 + threads * transfers
    finally:
        db.close()


# -- randomized: list append ------------------------------------------------------------

APPEND_CASES = [
    ("snapshot", "optimistic"),
    ("serializable", "optimistic"),
    ("serializable", "pessimistic"),
]


@pytest.mark.parametrize(("isolation", "mode"), APPEND_CASES)
def test_list_append_history_has_no_forbidden_cycle(
    db: strata.Database, isolation: str, mode: str
) -> None:
    history = ic.run_workload(
        db,
        isolation=isolation,
        mode=mode,
        threads=6,
        txns_per_thread=600 if SLOW else 150,
        keys=6,
        seed=7,
    )
    committed = history.committed
    # The run did real work, under contention (some transactions were aborted).
    assert len(history.txns) // 4 < len(committed) < len(history.txns)
    assert any(t.reads for t in committed) and any(t.appends for t in committed)
    assert ic.check_values(history) == []
    edges = ic.dependency_edges(history)
    assert edges
    if isolation == "serializable" or mode == "pessimistic":
        assert ic.check_serializable(edges) is None
    else:
        assert ic.check_snapshot(edges) is None


@pytest.mark.parametrize("durability", ["cache", "always"])
def test_list_append_mixed_optimistic_and_pessimistic(tmp_path: Path, durability: str) -> None:
    """Serializable optimistic and pessimistic transactions side by side stay serializable:
    optimistic commits take X locks while pessimistic transactions run."""
    db = (
        strata.open_memory()
        if durability == "cache"
        else strata.open(tmp_path / "db", durability="always")
    )
    try:
        history = ic.run_workload(
            db,
            isolation="serializable",
            mode=["optimistic", "pessimistic"],
            threads=6,
            txns_per_thread=300 if SLOW else 80,
            keys=5,
            seed=11,
        )
        assert ic.check_values(history) == []
        assert ic.check_serializable(ic.dependency_edges(history)) is None
    finally:
        db.close()


def test_list_append_on_disk(disk_db: strata.Database) -> None:
    history = ic.run_workload(
        disk_db,
        isolation="snapshot",
        mode="optimistic",
        threads=4,
        txns_per_thread=40,
        keys=4,
        seed=3,
    )
    assert ic.check_values(history) == []
    assert ic.check_snapshot(ic.dependency_edges(history)) is None


# -- the checker itself catches anomalies -----------------------------------------------------


def _history(
    txns: list[tuple[dict[str, list[int]], dict[str, int], bool]], final: dict[str, list[int]]
) -> ic.History:
    return ic.History(
        [ic.Txn(i + 1, [], dict(r), dict(a), c) for i, (r, a, c) in enumerate(txns)], final
    )


def test_checker_flags_lost_update() -> None:
    h = _history([({"x": []}, {"x": 1}, True), ({"x": []}, {"x": 2}, True)], {"x": [2]})
    assert any("lost update" in p for p in ic.check_values(h))


def test_checker_flags_aborted_and_intermediate_reads() -> None:
    h = _history(
        [
            ({}, {"x": 1}, False),
            ({"x": [1]}, {}, True),
            ({}, {"x": 2}, True),
            ({"x": [3]}, {}, True),
            ({}, {"x": 3}, True),
        ],
        {"x": [2, 3]},
    )
    problems = ic.check_values(h)
    assert any(p.startswith("G1a") for p in problems)
    assert any(p.startswith("G1b") for p in problems)


def test_checker_write_skew_is_snapshot_legal_but_not_serializable() -> None:
    # T1 read y=[] and appended x; T2 read x=[] and appended y: rw both ways, adjacent.
    h = _history([({"y": []}, {"x": 1}, True), ({"x": []}, {"y": 2}, True)], {"x": [1], "y": [2]})
    edges = ic.dependency_edges(h)
    assert {e[2] for e in edges} == {"rw"}
    assert ic.check_serializable(edges) is not None
    assert ic.check_snapshot(edges) is None


def test_checker_flags_read_skew_as_g_single() -> None:
    # T1 appends x and y; T2 saw T1's x but not T1's y: wr + rw, a single rw edge.
    h = _history(
        [({}, {"x": 1, "y": 2}, True), ({"x": [1], "y": []}, {}, True)], {"x": [1], "y": [2]}
    )
    found = ic.check_snapshot(ic.dependency_edges(h))
    assert found is not None and found[0] == "G-single"


def test_checker_flags_write_cycle_as_g0() -> None:
    h = _history(
        [({}, {"x": 1, "y": 4}, True), ({}, {"x": 2, "y": 3}, True)], {"x": [1, 2], "y": [3, 4]}
    )
    found = ic.check_snapshot(ic.dependency_edges(h))
    assert found is not None and found[0] == "G0/G1c"


# -- transaction API behaviour --------------------------------------------------------------


def test_with_block_commits_and_sets_version(anydb: strata.Database) -> None:
    before = anydb.version
    with anydb.transaction() as tx:
        assert tx.version is None
        assert tx.kv.put("a", 1) is None
        tx.kv.put_many({"b": 2, "c": 3})
    assert tx.closed
    assert tx.version == before + 1 == anydb.version
    assert {v.version for k in "abc" for v in anydb.kv.history(k)} == {tx.version}
    with anydb.transaction() as empty:
        assert empty.kv.get("a") == 1
    assert empty.version is None and anydb.version == before + 1


def test_explicit_commit_returns_version_and_closes(anydb: strata.Database) -> None:
    tx = anydb.transaction()
    tx.kv.put("a", 1)
    version = tx.commit()
    assert version == tx.version == anydb.version
    for call in (
        lambda: tx.kv.get("a"),
        lambda: tx.kv.put("a", 2),
        tx.commit,
        lambda: list(tx.kv.scan()),
        tx.kv.count,
        lambda: tx.kv.delete("a"),
    ):
        with pytest.raises(strata.TransactionClosedError):
            call()
    tx.rollback()  # idempotent, no error
    assert anydb.kv.get("a") == 1


def test_rollback_then_use_is_closed(anydb: strata.Database) -> None:
    tx = anydb.transaction()
    tx.kv.put("a", 1)
    tx.rollback()
    tx.rollback()
    with pytest.raises(strata.TransactionClosedError):
        tx.kv.get("a")
    with pytest.raises(strata.TransactionClosedError):
        tx.commit()
    assert anydb.kv.get("a") is None


def test_exception_rolls_back_and_propagates(anydb: strata.Database) -> None:
    anydb.kv.put("a", 1)
    with pytest.raises(ZeroDivisionError), anydb.transaction() as tx:
        tx.kv.put("a", 2)
        tx.kv.delete("a")
        1 / 0  # noqa: B018
    assert tx.closed and tx.version is None
    assert anydb.kv.get("a") == 1


@pytest.mark.parametrize("isolation", ["snapshot", "serializable"])
def test_read_your_writes(anydb: strata.Database, isolation: str) -> None:
    anydb.kv.put_many({"a": 1, "b": 2, "c": 3, "d": 4})
    with anydb.transaction(isolation=isolation) as tx:
        tx.kv.put("b", 20)
        tx.kv.put("bb", 22)
        assert tx.kv.delete("c")
        assert not tx.kv.delete("nope")
        tx.kv.put("e", 5)
        assert tx.kv.get("b") == 20 and tx.kv.get("c", "gone") == "gone"
        assert tx.kv.exists("bb") and not tx.kv.exists("c")
        assert tx.kv.get_many(["a", "b", "c"], default=0) == [1, 20, 0]
        assert list(tx.kv.scan()) == [("a", 1), ("b", 20), ("bb", 22), ("d", 4), ("e", 5)]
        assert list(tx.kv.scan(reverse=True, limit=3)) == [("e", 5), ("d", 4), ("bb", 22)]
        assert list(tx.kv.scan(prefix="b")) == [("b", 20), ("bb", 22)]
        assert list(tx.kv.scan(start="b", end="d")) == [("b", 20), ("bb", 22)]
        assert tx.kv.count() == 5 and tx.kv.count(prefix="b") == 2
        # Others see none of it yet.
        assert anydb.kv.get("b") == 2 and anydb.kv.count() == 4
        tx.kv.put("c", 33)  # re-create after delete
        assert tx.kv.get("c") == 33
        assert tx.kv.delete("e") and tx.kv.count() == 5
    assert list(anydb.kv.scan()) == [("a", 1), ("b", 20), ("bb", 22), ("c", 33), ("d", 4)]


def test_snapshot_reads_and_history_inside_transaction(anydb: strata.Database) -> None:
    v1 = anydb.kv.put("a", 1)
    tx = anydb.transaction()
    v2 = anydb.kv.put("a", 2)
    assert tx.snapshot == v1
    assert tx.kv.get("a") == 1
    assert [v.value for v in tx.kv.history("a")] == [1]
    tx.kv.put("a", 10)
    assert tx.kv.get("a", as_of=v1) == 1  # as_of reads committed history, not own writes
    assert [v.version for v in anydb.kv.history("a")] == [v2, v1]
    tx.rollback()


def test_read_only_transaction_refuses_writes(anydb: strata.Database) -> None:
    anydb.kv.put("a", 1)
    with anydb.transaction(read_only=True) as tx:
        assert tx.kv.get("a") == 1
        for call in (
            lambda: tx.kv.put("a", 2),
            lambda: tx.kv.delete("a"),
            lambda: tx.kv.cas("a", None, 1),
            lambda: tx.kv.put_many({"b": 1}),
            lambda: tx.keyspace("other").put("x", 1),
        ):
            with pytest.raises(strata.ReadOnlyError):
                call()
        assert tx.kv.get("a") == 1  # still usable after a refused write
    assert tx.version is None and anydb.kv.get("a") == 1
    assert issubclass(strata.ReadOnlyError, strata.StrataUsageError)


def test_cas_inside_transaction(anydb: strata.Database) -> None:
    v = anydb.kv.put("a", 1)
    with anydb.transaction() as tx:
        assert not tx.kv.cas("a", v + 100, "wrong")
        assert not tx.kv.cas("a", None, "must not exist")
        assert tx.kv.cas("a", v, "right")
        assert tx.kv.cas("new", None, "created")
        assert tx.kv.get("a") == "right"
        with pytest.raises(strata.StrataUsageError):
            tx.kv.cas("a", v, "again")  # already written here: its version is unknown
        with pytest.raises(strata.StrataUsageError):
            tx.kv.cas("b", "1", 1)  # type: ignore[arg-type]
    assert anydb.kv.get_many(["a", "new"]) == ["right", "created"]
    assert anydb.kv.history("a")[0].version == tx.version


def test_keyspaces_inside_transaction(anydb: strata.Database) -> None:
    anydb.keyspace("users").put("u1", "ann")
    anydb.kv.put("u1", "default-space")
    with anydb.transaction() as tx:
        users = tx.keyspace("users")
        assert users.name == "users"
        assert users.get("u1") == "ann"
        users.put("u2", "bob")
        assert users.count() == 2 and tx.kv.count() == 1
        assert [k for k, _ in users.scan()] == ["u1", "u2"]
    assert anydb.keyspace("users").get("u2") == "bob"
    assert anydb.kv.get("u2") is None
    # A conflict in another keyspace is reported with that keyspace.
    t1, t2 = anydb.transaction(), anydb.transaction()
    t1.keyspace("users").put("u1", "x")
    t2.keyspace("users").put("u1", "y")
    t1.commit()
    with pytest.raises(strata.ConflictError) as info:
        t2.commit()
    assert (info.value.keyspace, info.value.key) == ("users", "u1")


def test_bad_arguments() -> None:
    with strata.open_memory() as db:
        with pytest.raises(strata.StrataUsageError):
            db.transaction(isolation="read-committed")
        with pytest.raises(strata.StrataUsageError):
            db.transaction(mode="mvcc")
        with pytest.raises(strata.StrataUsageError):
            db.run_transaction(lambda tx: None, retries=-1)


def test_run_transaction_returns_result_and_retries_conflicts(anydb: strata.Database) -> None:
    anydb.kv.put("n", 0)
    attempts: list[int] = []

    def fn(tx: strata.Transaction) -> str:
        attempts.append(tx.kv.get("n"))
        if len(attempts) < 3:  # a concurrent writer sneaks in: this attempt conflicts
            anydb.kv.put("n", tx.kv.get("n") + 100)
        tx.kv.put("n", tx.kv.get("n") + 1)
        return f"attempt {len(attempts)}"

    assert anydb.run_transaction(fn, retries=5, backoff=0) == "attempt 3"
    assert attempts == [0, 100, 200]
    assert anydb.kv.get("n") == 201


def test_run_transaction_raises_when_retries_exhausted(anydb: strata.Database) -> None:
    anydb.kv.put("n", 0)
    calls: list[int] = []

    def always_conflicts(tx: strata.Transaction) -> None:
        calls.append(1)
        tx.kv.put("n", tx.kv.get("n") + 1)
        anydb.kv.put("n", -1)

    with pytest.raises(strata.ConflictError):
        anydb.run_transaction(always_conflicts, retries=2, backoff=0)
    assert len(calls) == 3
    assert anydb.kv.get("n") == -1


def test_run_transaction_does_not_retry_other_errors(anydb: strata.Database) -> None:
    calls: list[int] = []

    def fails(tx: strata.Transaction) -> None:
        calls.append(1)
        tx.kv.put("x", 1)
        raise ValueError("not a conflict")

    with pytest.raises(ValueError, match="not a conflict"):
        anydb.run_transaction(fails, retries=5)
    assert calls == [1] and anydb.kv.get("x") is None


def test_transaction_after_close_is_refused(tmp_path: Path) -> None:
    db = strata.open(tmp_path / "db")
    tx = db.transaction()
    tx.kv.put("a", 1)
    db.close()
    with pytest.raises(strata.DatabaseClosedError):
        tx.commit()
    with pytest.raises(strata.DatabaseClosedError):
        db.transaction()
    with strata.open(tmp_path / "db") as again:
        assert again.kv.get("a") is None


def test_scan_iterator_outliving_its_transaction_is_closed(anydb: strata.Database) -> None:
    anydb.kv.put_many({"a": 1, "b": 2})
    with anydb.transaction() as tx:
        rows = tx.kv.scan()
        assert next(rows) == ("a", 1)
    with pytest.raises(strata.TransactionClosedError):
        next(rows)
