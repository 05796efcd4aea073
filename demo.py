"""What Strata can do so far: the engine first, then each package on its own.

Run with `python3 demo.py` after `python3 -m pip install ./packages/*`. The engine part
shows transactions (a conflict, a retried one), time travel and history, a process that
is killed mid-stream and the database recovering every commit that returned, and an online
backup restored elsewhere. Then the packages: page-db (pages, checkpoints, a simulated
crash, corruption caught), wal-db (group commit across threads, a torn tail cut on
reopen, truncation), lock-db (intention locks, key ranges, a deadlock broken by picking
the youngest transaction), persist-db (an object kept durable by snapshots plus an
operation log, surviving a damaged snapshot by falling back to an older one) and index-db
(B+tree, hash index, vector search).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import numpy as np

import index_db
import lock_db
import page_db
import persist_db
import strata
import wal_db
from index_db import BTree, FlatIndex, HashIndex, HNSWIndex
from lock_db import DeadlockError, LockManager, LockMode
from page_db import CorruptPageError, PageStore
from persist_db import Persisted
from wal_db import WriteAheadLog


def main() -> None:
    strata_demo()
    print()
    page_demo()
    print()
    wal_demo()
    print()
    lock_demo()
    print()
    persist_demo()
    print()
    index_demo()


CHILD = textwrap.dedent("""
    import os, sys, threading, strata
    db = strata.open(sys.argv[1], durability="always")
    def work(t):
        for i in range(10_000):
            with db.transaction() as tx:          # two keys, all or nothing
                tx.kv.put(f"t{t}:n", i)
                tx.kv.put(f"t{t}:log:{i:05}", "x" * 50)
            os.write(1, f"{t} {i}\\n".encode())    # reported only after commit returned
    for t in range(4):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()
""")


def strata_demo() -> None:
    print("== strata: the engine ==")
    root = tempfile.mkdtemp(prefix="strata-demo-")
    path = os.path.join(root, "app.db")
    with strata.open(path) as db:  # durability="standard"
        v1 = db.kv.put("user:ada", {"name": "Ada", "visits": 0})
        with db.transaction() as tx:  # snapshot isolation, optimistic
            user = tx.kv.get("user:ada")
            tx.kv.put("user:ada", {**user, "visits": user["visits"] + 1})
        slow = db.transaction()
        slow.kv.put("user:ada", {"name": "Ada", "visits": 100})
        db.kv.put("user:ada", {"name": "Ada Lovelace", "visits": 2})  # commits first
        try:
            slow.commit()
        except strata.ConflictError as exc:
            print(f"first committer wins: {type(exc).__name__} ({exc.reason})")

        def bump(tx: strata.Transaction) -> int:
            user = tx.kv.get("user:ada")
            tx.kv.put("user:ada", {**user, "visits": user["visits"] + 1})
            return int(user["visits"]) + 1

        print("run_transaction (retries conflicts):", db.run_transaction(bump), "visits")
        print("now:", db.kv.get("user:ada"))
        print(f"as of version {v1}:", db.kv.get("user:ada", as_of=v1))
        print("history:", [(h.version, h.value["visits"]) for h in db.kv.history("user:ada")])
        try:
            db.kv.put("bad", {"tags": {"a", "b"}})
        except strata.ValueTypeError as exc:
            print("typed error:", exc)
    # a writer process is SIGKILLed while four threads commit in "always" mode
    child = subprocess.Popen([sys.executable, "-c", CHILD, path], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    reported: dict[int, int] = {}
    for line in child.stdout:
        t, i = map(int, line.split())
        reported[t] = i
        if sum(reported.values()) >= 400:
            child.kill()
            break
    child.wait()
    with strata.open(path, durability="always") as db:
        recovery = db.stats()["recovery"]
        kept = all(
            db.kv.get(f"t{t}:n") >= i and db.kv.exists(f"t{t}:log:{i:05}")
            for t, i in reported.items()
        )
        print(
            f"killed mid-stream; reopened: replayed {recovery['replayed_records']} commits "
            f"in {recovery['seconds'] * 1000:.0f} ms; every reported commit present: {kept}"
        )
        print("verify:", "ok" if db.verify()["ok"] else db.verify()["errors"])
        backup = os.path.join(root, "app.backup")
        figures = db.backup(backup)
        print(
            f"online backup: {figures['keys']} keys, {figures['versions']} versions, "
            f"{figures['bytes']} bytes (zstd)"
        )
    restored = os.path.join(root, "restored.db")
    strata.restore(backup, restored)
    with strata.open(restored, read_only=True) as copy:
        print("restored copy sees", copy.kv.get("user:ada"))
    shutil.rmtree(root)


def index_demo() -> None:
    print(f"index-db {index_db.__version__}")
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "index.pages")
        with PageStore.open(path, pool_pages=4096) as store:
            tree = BTree.create(store)
            start = time.perf_counter()
            tree.bulk_load((b"user:%06d" % i, b"name %d" % i) for i in range(100_000))
            elapsed = time.perf_counter() - start
            print(f"bulk-loaded {len(tree):,} keys in {elapsed * 1000:.0f} ms")
            first = [key.decode() for key, _ in tree.prefix(b"user:04200")][:3]
            last = [key.decode() for key, _ in tree.range(b"user:099998", reverse=True)][:2]
            print(f"prefix scan: {first} ...; reverse from the end: {last}")
            store.checkpoint(tree.meta())
            for i in range(0, 100_000, 2):
                tree.delete(b"user:%06d" % i)  # not checkpointed: lost at the "crash"
            print(f"deleted half the keys ({len(tree):,} left), then the process 'crashed'")
        with PageStore.open(path) as store:
            tree = BTree.open(store, store.meta)
            pages = tree.verify()["pages"]
            print(f"reopened at the last checkpoint: {len(tree):,} keys, {pages} pages verified")
            hashed = HashIndex.create(store)
            for i in range(10_000):
                hashed.put(b"session-%d" % i, b"%d" % (i * i))
            print(f"hash index: {len(hashed):,} keys, session-77 -> {hashed.get(b'session-77')!r}")

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((5_000, 64)).astype(np.float32)
    exact, approx = FlatIndex(64, "cosine"), HNSWIndex(64, "cosine")
    exact.add_batch(range(5_000), vectors)
    approx.add_batch(range(5_000), vectors)
    queries = rng.standard_normal((50, 64)).astype(np.float32)
    hits = sum(
        len({i for i, _ in approx.search(q, 10)} & {i for i, _ in exact.search(q, 10)})
        for q in queries
    )
    print(f"HNSW over 5,000 vectors: recall@10 {hits / 500:.2f} against exact search")
    evens = approx.search(queries[0], 3, filter=lambda i: i % 2 == 0)
    print(f"filtered to even ids: {[(i, round(score, 3)) for i, score in evens]}")
    with tempfile.TemporaryDirectory() as directory:
        approx.save(os.path.join(directory, "vectors.snap"))
        again = HNSWIndex.load(os.path.join(directory, "vectors.snap"))
        same = again.search(queries[0], 10) == approx.search(queries[0], 10)
        print(f"saved and reloaded without a rebuild: same results {same}")


class WordCounts:
    """A Persistable object: word counts, changed only by logged operations."""

    kind = "demo.counts"
    format_version = 1

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def to_snapshot(self) -> bytes:
        return json.dumps(self.counts, sort_keys=True).encode()

    def load_snapshot(self, payload: bytes, version: int) -> None:
        self.counts = json.loads(payload)

    def apply(self, op: bytes) -> None:
        word = op.decode()
        self.counts[word] = self.counts.get(word, 0) + 1


def persist_demo() -> None:
    print(f"persist-db {persist_db.__version__} (snapshot format {persist_db.FORMAT_MAJOR}.0)")
    text = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "the", "end"]
    with tempfile.TemporaryDirectory() as directory:
        with Persisted.open(directory, WordCounts, compression="zstd") as kept:
            for word in text[:6]:
                kept.apply(word.encode())
            kept.checkpoint()
            for word in text[6:]:
                kept.apply(word.encode())  # each durable before apply returns
            kept.checkpoint()
            print(f"applied {len(text)} operations, 2 checkpoints: {kept.snapshots()}")
        newest = os.path.join(
            directory, sorted(n for n in os.listdir(directory) if n.endswith(".snap"))[-1]
        )
        with open(newest, "r+b") as snapshot:
            snapshot.seek(100)
            snapshot.write(b"\xff")  # a damaged sector in the newest snapshot
        with Persisted.open(directory, WordCounts) as kept:
            report = kept.recovery
            print(f"newest snapshot damaged: {report.fallbacks[0].reason}")
            print(
                f"fell back to {report.snapshot} and replayed {report.replayed} logged "
                f"operations: 'the' x{kept.obj.counts['the']}, {len(kept.obj.counts)} words"
            )


def lock_demo() -> None:
    print(f"lock-db {lock_db.__version__}")
    locks = LockManager(default_timeout=5.0)
    locks.acquire("tx1", "table:users", LockMode.IX)
    locks.acquire_range("tx1", "users", b"a", b"m", LockMode.S)  # phantom protection
    locks.acquire("tx2", "table:users", LockMode.IX)  # intention locks are compatible
    print("tx1 and tx2 both hold IX on the table; tx1 holds S on keys [a, m)")
    print("tx2 may take key 'zed':", locks.try_acquire_key("tx2", "users", b"zed", LockMode.X))
    print("tx2 may take key 'bob':", locks.try_acquire_key("tx2", "users", b"bob", LockMode.X))
    outcome: list[str] = []

    def tx1_wants_zed() -> None:
        try:
            locks.acquire_key("tx1", "users", b"zed", LockMode.S)
            outcome.append("tx1 got 'zed'")
        except DeadlockError as exc:
            outcome.append(f"tx1: {exc}")

    waiter = threading.Thread(target=tx1_wants_zed)
    waiter.start()
    while not locks.space_waiters("users") and waiter.is_alive():
        time.sleep(0.001)
    try:  # tx2 now waits for tx1 while tx1 waits for tx2: a cycle
        locks.acquire_key("tx2", "users", b"bob", LockMode.X)
    except DeadlockError as exc:
        print(f"deadlock detected, youngest victim tx2: {exc}")
        locks.release_all("tx2")
    waiter.join()
    print(outcome[0])
    print("stats:", locks.stats())


def wal_demo() -> None:
    print(f"wal-db {wal_db.__version__} (format {wal_db.FORMAT_VERSION})")
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "wal")
        with WriteAheadLog.open(path, sync="always", segment_size=64 * 1024) as log:
            start = time.perf_counter()

            def commit(worker: int) -> None:
                for i in range(50):
                    log.append(f"worker {worker} commit {i}".encode())

            threads = [threading.Thread(target=commit, args=(w,)) for w in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - start
            stats = log.stats()
            print(
                f"8 threads made {stats.appends} durable commits in {elapsed * 1000:.0f} ms "
                f"with {stats.fsyncs} fsyncs (group commit)"
            )
            log.append_many(b"bulk %d" % i for i in range(3000))
            print(f"then 3000 records in one write; segments: {log.stats().segments}")
        last = sorted(n for n in os.listdir(path) if n.endswith(".wal"))[-1]
        with open(os.path.join(path, last), "ab") as segment:
            segment.write(b"\x2a\x00\x00\x00half a frame")  # a write torn by a crash
        with WriteAheadLog.open(path) as log:
            report = log.recovery
            print(
                f"reopened after a torn write: cut {report.truncated_bytes} bytes at segment "
                f"{report.segment} offset {report.offset}; last LSN {log.last_lsn}"
            )
            removed = log.truncate_before(log.last_lsn - 100)
            first = next(iter(log.replay()))
            print(f"truncate_before removed {removed} segments; replay starts at {first[0]}")


def page_demo() -> None:
    print(f"page-db {page_db.__version__} (format {page_db.FORMAT_VERSION})")
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "demo.pages")
        with PageStore.open(path, pool_pages=64) as store:
            start = time.perf_counter()
            ids = [store.allocate() for _ in range(1000)]
            for pid in ids:
                with store.write(pid) as page:
                    page.payload[:16] = f"page {pid:>11}".encode()
                    page.lsn = pid
            store.checkpoint(meta=b"checkpoint-1")
            elapsed = time.perf_counter() - start
            print(
                f"wrote and checkpointed {len(ids)} pages in {elapsed * 1000:.1f} ms "
                f"through a {store.stats()['pool_capacity']}-frame pool"
            )

            for pid in ids[:500]:  # changes that will be "lost in a crash"
                with store.write(pid) as page:
                    page.payload[:16] = b"NOT CHECKPOINTED"
            crash_copy = os.path.join(directory, "crashed.pages")
            shutil.copyfile(path, crash_copy)  # the disk as a power cut would leave it
            print(
                "changed 500 pages without a checkpoint, then copied the file "
                "as a power cut would leave it"
            )

        with PageStore.open(crash_copy) as recovered:
            with recovered.read(ids[0]) as page:
                first = bytes(page.payload[:16]).decode()
            print(
                f"after the 'crash': meta={recovered.meta!r}, page {ids[0]} says {first!r}"
                " — exactly checkpoint 1, nothing half-applied"
            )

        with open(crash_copy, "r+b") as raw:  # flip one byte inside a data page
            raw.seek(10 * 4096 + 100)
            byte = raw.read(1)
            raw.seek(10 * 4096 + 100)
            raw.write(bytes([byte[0] ^ 0xFF]))
        with PageStore.open(crash_copy) as damaged:
            caught = 0
            for pid in ids:
                try:
                    with damaged.read(pid):
                        pass
                except CorruptPageError as exc:
                    caught += 1
                    print(f"flipped one byte on disk -> {type(exc).__name__}: {exc}")
            print(f"{len(ids) - caught} pages verified by CRC32C, {caught} refused")
            print(
                "stats:",
                {
                    k: v
                    for k, v in damaged.stats().items()
                    if k in ("pages", "slots", "checkpoint_seq", "misses", "page_reads")
                },
            )


if __name__ == "__main__":
    main()
