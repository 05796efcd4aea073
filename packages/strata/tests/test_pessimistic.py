"""Pessimistic transactions: lock waits, deadlocks, lock timeouts, range locks, and how
autocommit and optimistic commits respect pessimistic locks.

Ordering, not timing: a test that needs "B is blocked" waits until lock-db reports B in
its wait-for graph (or among a resource's waiters), then acts and checks the order of
events.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import strata

PESSIMISTIC = {"mode": "pessimistic"}


@pytest.fixture(params=["cache", "standard"])
def anydb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[strata.Database]:
    database = strata.open_memory() if request.param == "cache" else strata.open(tmp_path / "db")
    try:
        yield database
    finally:
        database.close()


def wait_until(predicate: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail (not hang) after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.001)


def someone_waits(db: strata.Database) -> bool:
    """Whether any lock request is queued behind a holder."""
    return any(db._engine.locks.wait_for_graph().values())


class Runner(threading.Thread):
    """Run ``fn`` in a thread; keep its result or exception."""

    def __init__(self, fn: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:
            self.error = exc

    def finish(self) -> object:
        self.join(10)
        assert not self.is_alive(), "thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


# -- waits ------------------------------------------------------------------------------


def test_second_writer_waits_for_first_commit(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    events: list[str] = []
    t1 = anydb.transaction(**PESSIMISTIC)
    t1.kv.put("x", "t1")

    def second() -> None:
        with anydb.transaction(**PESSIMISTIC) as t2:
            t2.kv.put("x", "t2")  # a blind write: blocks on t1's X lock all the same
            events.append("t2 locked")

    b = Runner(second)
    b.start()
    wait_until(lambda: someone_waits(anydb), "t2 waits for t1's lock")
    assert events == []
    events.append("t1 committed")
    t1.commit()
    b.finish()
    assert events == ["t1 committed", "t2 locked"]
    assert [v.value for v in anydb.kv.history("x")] == ["t2", "t1", 0]


def test_pessimistic_increments_are_serial(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    order: list[str] = []
    t1 = anydb.transaction(**PESSIMISTIC)
    t1.kv.put("x", t1.kv.get("x") + 1)

    def second() -> None:
        with anydb.transaction(**PESSIMISTIC) as t2:
            seen = t2.kv.get("x")  # S waits behind t1's X
            order.append(f"t2 read {seen}")
            t2.kv.put("x", seen + 1)

    b = Runner(second)
    b.start()
    wait_until(lambda: someone_waits(anydb), "t2 waits")
    order.append("t1 commit")
    t1.commit()
    b.finish()
    assert order == ["t1 commit", "t2 read 1"]
    assert anydb.kv.get("x") == 2


def test_readers_share_and_writer_waits_for_all(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    r1 = anydb.transaction(**PESSIMISTIC, lock_timeout=0)
    r2 = anydb.transaction(**PESSIMISTIC, lock_timeout=0)
    assert r1.kv.get("x") == 0 and r2.kv.get("x") == 0  # S + S: no wait (timeout 0)
    done: list[str] = []

    def writer() -> None:
        with anydb.transaction(**PESSIMISTIC) as w:
            w.kv.put("x", 5)
            done.append("w locked")

    b = Runner(writer)
    b.start()
    wait_until(lambda: someone_waits(anydb), "the writer waits")
    r1.commit()
    done.append("r1 ended")
    assert someone_waits(anydb)  # still behind r2
    done.append("r2 ended")
    r2.commit()
    b.finish()
    assert done == ["r1 ended", "r2 ended", "w locked"]
    assert anydb.kv.get("x") == 5


# -- deadlocks and timeouts ---------------------------------------------------------------


def test_two_transaction_deadlock_has_one_victim(anydb: strata.Database) -> None:
    anydb.kv.put_many({"a": 0, "b": 0})
    t1 = anydb.transaction(**PESSIMISTIC)
    t2 = anydb.transaction(**PESSIMISTIC)
    t1.kv.put("a", "t1")
    t2.kv.put("b", "t2")

    def finish(tx: strata.Transaction, key: str) -> str:
        try:
            tx.kv.put(key, tx.kv.get(key))
            tx.kv.put(key + "-done", True)
            tx.commit()
            return "committed"
        except strata.DeadlockError:
            assert tx.closed
            return "victim"

    b = Runner(lambda: finish(t1, "b"))
    b.start()
    wait_until(lambda: someone_waits(anydb), "t1 waits for b")
    mine = finish(t2, "a")
    theirs = b.finish()
    assert sorted([mine, str(theirs)]) == ["committed", "victim"]
    winner = "t1" if theirs == "committed" else "t2"
    state = {k: anydb.kv.get(k) for k in ("a", "b", "a-done", "b-done")}
    if winner == "t1":
        assert state == {"a": "t1", "b": 0, "a-done": None, "b-done": True}
    else:
        assert state == {"a": 0, "b": "t2", "a-done": True, "b-done": None}


def test_deadlock_error_is_a_transaction_aborted_error() -> None:
    assert issubclass(strata.DeadlockError, strata.TransactionAbortedError)
    assert issubclass(strata.LockTimeoutError, strata.TransactionAbortedError)


def test_lock_timeout_aborts_and_hides_writes(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    holder = anydb.transaction(**PESSIMISTIC)
    holder.kv.put("x", 1)
    waiter = anydb.transaction(**PESSIMISTIC, lock_timeout=0.05)
    waiter.kv.put("other", "from waiter")
    with pytest.raises(strata.LockTimeoutError):
        waiter.kv.get("x")
    assert waiter.closed
    with pytest.raises(strata.TransactionClosedError):
        waiter.kv.put("more", 1)
    holder.commit()
    assert anydb.kv.get("x") == 1
    assert anydb.kv.get("other") is None
    # The waiter's locks were released: a new transaction takes "other" at once.
    with anydb.transaction(**PESSIMISTIC, lock_timeout=0) as tx:
        tx.kv.put("other", "ok")
    assert anydb.kv.get("other") == "ok"


def test_with_block_swallows_nothing_on_lock_timeout(anydb: strata.Database) -> None:
    holder = anydb.transaction(**PESSIMISTIC)
    holder.kv.put("x", 1)
    with (
        pytest.raises(strata.LockTimeoutError),
        anydb.transaction(**PESSIMISTIC, lock_timeout=0) as tx,
    ):
        tx.kv.put("y", 1)
        tx.kv.put("x", 2)
    holder.rollback()
    assert anydb.kv.get("x") is None and anydb.kv.get("y") is None


def test_run_transaction_retries_deadlocks(anydb: strata.Database) -> None:
    anydb.kv.put_many({"a": 0, "b": 0})
    barrier = threading.Barrier(2, timeout=10)
    attempts = {"ab": 0, "ba": 0}

    def work(first: str, second: str) -> Callable[[strata.Transaction], str]:
        name = first + second

        def fn(tx: strata.Transaction) -> str:
            attempts[name] += 1
            tx.kv.put(first, tx.kv.get(first) + 1)
            if attempts[name] == 1:
                barrier.wait()  # both hold their first key: the second requests cycle
            tx.kv.put(second, tx.kv.get(second) + 1)
            return name

        return fn

    runners = [
        Runner(functools.partial(anydb.run_transaction, work(f, s), mode="pessimistic", retries=5))
        for f, s in (("a", "b"), ("b", "a"))
    ]
    for r in runners:
        r.start()
    assert sorted(str(r.finish()) for r in runners) == ["ab", "ba"]
    assert sum(attempts.values()) >= 3  # the victim ran again
    assert anydb.kv.get_many(["a", "b"]) == [2, 2]


def test_run_transaction_lock_timeout_exhausts_retries() -> None:
    with strata.open_memory(lock_timeout=0) as db:
        holder = db.transaction(**PESSIMISTIC)
        holder.kv.put("x", 1)
        calls: list[int] = []

        def fn(tx: strata.Transaction) -> None:
            calls.append(1)
            tx.kv.get("x")

        with pytest.raises(strata.LockTimeoutError):
            db.run_transaction(fn, mode="pessimistic", retries=2, backoff=0)
        assert len(calls) == 3
        holder.commit()
        assert db.run_transaction(lambda tx: tx.kv.get("x"), mode="pessimistic") == 1


# -- range locks --------------------------------------------------------------------------


def test_scan_takes_a_range_lock(anydb: strata.Database) -> None:
    anydb.kv.put_many({"emp/a": 1, "emp/b": 2})
    t1 = anydb.transaction(**PESSIMISTIC)
    assert sum(v for _, v in t1.kv.scan(prefix="emp/")) == 3
    # Outside the range: no wait.
    with anydb.transaction(**PESSIMISTIC, lock_timeout=0) as other:
        other.kv.put("zzz", 1)
    order: list[str] = []

    def insert() -> None:
        with anydb.transaction(**PESSIMISTIC) as t2:
            t2.kv.put("emp/c", 3)  # a phantom for t1: must wait
            order.append("inserted")

    b = Runner(insert)
    b.start()
    wait_until(lambda: someone_waits(anydb), "the insert waits for the range lock")
    assert sum(v for _, v in t1.kv.scan(prefix="emp/")) == 3  # still no phantom
    order.append("t1 commit")
    t1.commit()
    b.finish()
    assert order == ["t1 commit", "inserted"]
    assert anydb.kv.count(prefix="emp/") == 3


def test_scan_range_lock_times_out_insert(anydb: strata.Database) -> None:
    anydb.kv.put("emp/a", 1)
    t1 = anydb.transaction(**PESSIMISTIC)
    assert list(t1.kv.scan(start="emp/", end="emp/z")) == [("emp/a", 1)]
    t2 = anydb.transaction(**PESSIMISTIC, lock_timeout=0)
    with pytest.raises(strata.LockTimeoutError):
        t2.kv.delete("emp/a")
    t1.commit()
    assert anydb.kv.get("emp/a") == 1


def test_empty_range_scan_is_not_an_error(anydb: strata.Database) -> None:
    anydb.kv.put("a", 1)
    with anydb.transaction(**PESSIMISTIC) as tx:
        assert list(tx.kv.scan(start="b", end="a")) == []
        assert list(tx.kv.scan(start="a", end="a")) == []
        tx.kv.put("c", 3)
    assert anydb.kv.get("c") == 3
    with anydb.transaction(isolation="serializable") as tx:
        assert list(tx.kv.scan(start="z", end="b")) == []
        tx.kv.put("d", 4)
    assert anydb.kv.get("d") == 4


# -- autocommit and optimistic commits against pessimistic locks ----------------------------


def test_autocommit_put_times_out_on_x_lock() -> None:
    with strata.open_memory(lock_timeout=0.05) as db:
        db.kv.put("x", 0)
        tx = db.transaction(**PESSIMISTIC)
        tx.kv.put("x", 1)
        with pytest.raises(strata.LockTimeoutError):
            db.kv.put("x", 99)
        with pytest.raises(strata.LockTimeoutError):
            db.kv.delete("x")
        db.kv.put("y", 1)  # another key: no wait
        tx.commit()
        assert db.kv.get("x") == 1
        assert [v.value for v in db.kv.history("x")] == [1, 0]


def test_autocommit_put_waits_for_x_lock(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    tx = anydb.transaction(**PESSIMISTIC)
    tx.kv.put("x", 1)
    order: list[str] = []

    def autocommit() -> None:
        anydb.kv.put("x", 2)
        order.append("autocommit")

    b = Runner(autocommit)
    b.start()
    wait_until(lambda: someone_waits(anydb), "the autocommit put waits")
    order.append("tx commit")
    tx.commit()
    b.finish()
    assert order == ["tx commit", "autocommit"]
    assert anydb.kv.get("x") == 2  # the later commit wins; nothing lost or reordered


def test_optimistic_commit_waits_for_s_lock_then_conflicts(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    p = anydb.transaction(**PESSIMISTIC)
    assert p.kv.get("x") == 0  # S lock
    order: list[str] = []

    def optimistic() -> str:
        tx = anydb.transaction()
        tx.kv.put("x", tx.kv.get("x") + 10)
        try:
            tx.commit()  # needs X on x: waits for p
            return "committed"
        except strata.ConflictError:
            return "conflict"
        finally:
            order.append("optimistic done")

    b = Runner(optimistic)
    b.start()
    wait_until(lambda: someone_waits(anydb), "the optimistic commit waits for the S lock")
    # p saw x=0 and is guaranteed it stays 0 while it holds S; now it writes it.
    assert p.kv.get("x") == 0
    order.append("p commit")
    p.kv.put("x", 1)
    p.commit()
    assert b.finish() == "conflict"  # its snapshot predates p's write: first committer won
    assert order == ["p commit", "optimistic done"]
    assert anydb.kv.get("x") == 1


def test_optimistic_commit_after_pessimistic_reader_ends(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    p = anydb.transaction(**PESSIMISTIC)
    assert p.kv.get("x") == 0

    def optimistic() -> int | None:
        with anydb.transaction() as tx:
            tx.kv.put("x", 10)
        return tx.version

    b = Runner(optimistic)
    b.start()
    wait_until(lambda: someone_waits(anydb), "the optimistic commit waits")
    assert p.kv.get("x") == 0  # repeatable while S is held
    p.commit()  # read-only: releases S
    assert isinstance(b.finish(), int)
    assert anydb.kv.get("x") == 10


def test_optimistic_commit_racing_pessimistic_begin_loses_no_update() -> None:
    with strata.open_memory() as db:
        db.kv.put("c", 0)
        engine = db._engine
        real_commit = engine.commit
        entered, go = threading.Event(), threading.Event()
        holder: list[threading.Thread] = []

        def paused_commit(*args: object, **kwargs: object) -> int:
            if holder and threading.current_thread() is holder[0]:
                entered.set()
                go.wait(10)
            return real_commit(*args, **kwargs)  # type: ignore[arg-type]

        engine.commit = paused_commit  # type: ignore[method-assign]

        def optimistic() -> None:
            with db.transaction() as tx:
                tx.kv.put("c", tx.kv.get("c") + 1)

        b = Runner(optimistic)
        holder.append(b)
        b.start()
        assert entered.wait(10)  # passed the "no pessimistic transaction" check
        p = db.transaction(**PESSIMISTIC)
        p.kv.put("c", p.kv.get("c") + 1)  # X lock held
        go.set()
        outcomes = []
        try:
            b.finish()
            outcomes.append("optimistic")
        except strata.TransactionAbortedError:
            pass
        try:
            p.commit()
            outcomes.append("pessimistic")
        except strata.TransactionAbortedError:
            pass
        assert db.kv.get("c") == len(outcomes)


# -- behaviour inside a pessimistic transaction ------------------------------------------------


def test_pessimistic_read_your_writes_and_abort_visibility(anydb: strata.Database) -> None:
    anydb.kv.put_many({"a": 1, "b": 2})
    with pytest.raises(KeyError), anydb.transaction(**PESSIMISTIC) as tx:
        tx.kv.put("c", 3)
        assert tx.kv.delete("a")
        assert tx.kv.get("a") is None
        assert list(tx.kv.scan()) == [("b", 2), ("c", 3)]
        assert tx.kv.count() == 2
        raise KeyError("abort")
    assert list(anydb.kv.scan()) == [("a", 1), ("b", 2)]
    # The aborted transaction's locks are gone.
    with anydb.transaction(**PESSIMISTIC, lock_timeout=0) as tx:
        tx.kv.put("a", 10)
        tx.kv.put("c", 30)
    assert anydb.kv.get_many(["a", "c"]) == [10, 30]


def test_pessimistic_reads_latest_commit(anydb: strata.Database) -> None:
    anydb.kv.put("x", 0)
    tx = anydb.transaction(**PESSIMISTIC)
    anydb.kv.put("x", 1)  # committed after begin, before tx first touches x
    assert tx.kv.get("x") == 1
    assert tx.kv.cas("x", anydb.kv.history("x")[0].version, 2)
    tx.commit()
    assert anydb.kv.get("x") == 2


def test_pessimistic_bank_threads(anydb: strata.Database) -> None:
    accounts = 5
    anydb.kv.put_many({f"acct/{i}": 100 for i in range(accounts)})
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(40):
                a, b = (n + i) % accounts, (n + 2 * i + 1) % accounts
                if a == b:
                    continue

                def fn(tx: strata.Transaction, a: int = a, b: int = b) -> None:
                    x = tx.kv.get(f"acct/{a}")
                    time.sleep(0)
                    tx.kv.put(f"acct/{a}", x - 1)
                    tx.kv.put(f"acct/{b}", tx.kv.get(f"acct/{b}") + 1)

                anydb.run_transaction(
                    fn, mode="pessimistic", retries=1000, backoff=0.0005, max_backoff=0.01
                )
        except BaseException as exc:
            errors.append(exc)

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    assert sum(v for _, v in anydb.kv.scan(prefix="acct/")) == accounts * 100
