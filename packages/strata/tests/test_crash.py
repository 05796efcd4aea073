"""Power loss at every sync (and every write, torn): recovery gives a prefix of the commit
order that holds every durable commit, with no partial transaction.

A workload runs on ``strata.open(CrashFS(), durability=...)`` once, with small
``checkpoint_bytes`` (background checkpoints mid-workload) and explicit
``db.checkpoint()`` calls, so the crash points cover the page file (page-db checkpoints)
and the WAL (wal-db appends, syncs, truncation). It records every commit in version
order with its writes, and the trace length at which each commit became *guaranteed*
durable:

- ``always``: when its commit call returned;
- ``standard``: when a later ``db.checkpoint()`` or ``close()`` returned (the background
  interval sync may make commits durable earlier; that is allowed, not required).

For every crash state the database is reopened from the crashed files and its full
content -- every key's history (version, value, deleted) in every keyspace, the live scan,
and scans ``as_of`` every version -- must equal the model after commits ``1..V`` for the
recovered version ``V``, with ``V`` at least the newest guaranteed commit, and
``db.verify()["ok"]`` must hold. Versions are assigned in commit order, so "a prefix of
the commit order" is exactly "versions 1..V". Multi-key transactions are all-or-nothing
because a commit's writes are compared version by version.

STRATA_SLOW=1 runs longer workloads and checks more states per crash point.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

import strata
from strata_testkit import CrashFS, CrashState, Fsync

SLOW = os.environ.get("STRATA_SLOW") == "1"
SPACES = ("default", "meta")
DELETED = object()  # marks a delete in the model
Key = tuple[str, str]  # (keyspace, key)


@dataclass
class Recorder:
    """The commit order and the durability guarantees of one workload run."""

    commits: dict[int, dict[Key, Any]] = field(default_factory=dict)  # version -> writes
    guaranteed: list[tuple[int, int]] = field(default_factory=list)  # (trace length, version)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def committed(self, version: int | None, writes: dict[Key, Any]) -> None:
        assert version is not None
        with self.lock:
            assert version not in self.commits, f"version {version} handed out twice"
            self.commits[version] = dict(writes)

    def durable(self, fs: CrashFS, version: int) -> None:
        """Every commit up to ``version`` is durable from the current trace length on."""
        with self.lock:
            self.guaranteed.append((len(fs.trace), version))

    def must_survive(self, point: int) -> int:
        """The newest version whose durability was guaranteed before crash point ``point``."""
        return max((v for at, v in self.guaranteed if at <= point), default=0)

    def model(self, upto: int) -> dict[Key, list[tuple[int, Any]]]:
        """Each key's versions oldest first after commits ``1..upto``."""
        chains: dict[Key, list[tuple[int, Any]]] = {}
        for version in sorted(self.commits):
            if version > upto:
                break
            for key, value in self.commits[version].items():
                chains.setdefault(key, []).append((version, value))
        return chains


def live_at(chains: dict[Key, list[tuple[int, Any]]], space: str, at: int) -> dict[str, Any]:
    """The live keys of ``space`` as of version ``at``."""
    out: dict[str, Any] = {}
    for (sp, key), chain in chains.items():
        seen = [value for version, value in chain if version <= at]
        if sp == space and seen and seen[-1] is not DELETED:
            out[key] = seen[-1]
    return dict(sorted(out.items()))


def assert_matches_prefix(db: strata.Database, rec: Recorder, need: int, where: str) -> int:
    """Assert ``db`` holds exactly commits ``1..db.version`` and at least ``1..need``."""
    top = db.version
    assert top >= need, f"{where}: recovered version {top} lost durable commit {need}"
    assert top <= max(rec.commits, default=0), f"{where}: version {top} was never committed"
    assert set(range(1, top + 1)) <= set(rec.commits), f"{where}: gap in committed versions"
    chains = rec.model(top)
    all_keys = {key for writes in rec.commits.values() for key in writes}
    for space, key in sorted(all_keys):
        got = [
            (h.version, DELETED if h.deleted else h.value)
            for h in reversed(db.keyspace(space).history(key))
        ]
        want = chains.get((space, key), [])
        assert got == want, f"{where}: history of {space}/{key} is {got}, expected {want}"
    for space in SPACES:
        kv = db.keyspace(space)
        assert dict(kv.scan()) == live_at(chains, space, top), f"{where}: live scan of {space}"
        for at in range(0, top + 1):
            assert dict(kv.scan(as_of=at)) == live_at(chains, space, at), (
                f"{where}: scan of {space} as_of {at}"
            )
    report = db.verify()
    assert report["ok"], f"{where}: verify failed: {report['errors']}"
    return top


def check_state(rec: Recorder, state: CrashState, point: int) -> int:
    """Reopen the crashed files, check the content, and check a second recovery too."""
    where = state.description
    fs = state.fs()
    db = strata.open(fs)
    try:
        top = assert_matches_prefix(db, rec, rec.must_survive(point), where)
        after = db.kv.put("after-recovery", top)  # the recovered database takes writes
        assert after == top + 1, f"{where}: the next version after {top} is {after}"
    finally:
        db.close()
    with strata.open(fs) as again:  # the close checkpointed: reopen sees the same
        assert again.version == top + 1
        assert again.kv.get("after-recovery") == top
    return top


# -- workloads -------------------------------------------------------------------------


def value_for(step: int, slot: int) -> Any:
    """Values of several shapes and sizes (some span more than one sector)."""
    shapes: list[Any] = [
        step,
        f"s{step}-{slot}",
        {"step": step, "pad": "x" * (step % 5 * 90)},
        [step, slot, None, True],
        b"\x00\xff" * (step % 7 * 40 + 1),
        step / 4,
    ]
    return shapes[(step + slot) % len(shapes)]


def single_writer(rec: Recorder, durability: str, steps: int) -> Callable[[CrashFS], None]:
    """Transactions of 1-4 keys (puts and deletes, two keyspaces), autocommit puts and
    put_many, explicit checkpoints every 9 steps; ``checkpoint_bytes`` is small so the
    maintenance thread checkpoints mid-workload as well."""
    always = durability == "always"

    def workload(fs: CrashFS) -> None:
        db = strata.open(fs, durability=durability, checkpoint_bytes=1500)
        db.kv.get("nothing")  # a read before any write: nothing to recover but the file
        for step in range(steps):
            writes: dict[Key, Any] = {}
            if step % 4 == 3:
                writes[("default", f"k{step % 6}")] = value_for(step, 0)
                version = db.kv.put(f"k{step % 6}", writes[("default", f"k{step % 6}")])
            elif step % 4 == 2:
                batch = {f"m{(step + i) % 5}": value_for(step, i) for i in range(3)}
                version = db.keyspace("meta").put_many(batch)
                writes.update({("meta", k): v for k, v in batch.items()})
            else:
                with db.transaction() as tx:
                    for i in range(1 + step % 4):
                        key = f"k{(step * 3 + i) % 6}"
                        if (step + i) % 5 == 4 and tx.kv.delete(key):
                            writes[("default", key)] = DELETED
                        elif (step + i) % 5 != 4:
                            writes[("default", key)] = value_for(step, i)
                            tx.kv.put(key, writes[("default", key)])
                    writes[("meta", "step")] = step
                    tx.keyspace("meta").put("step", step)
                version = tx.version
            rec.committed(version, writes)
            if always:
                rec.durable(fs, version)
            if step % 9 == 8:
                db.checkpoint()
                rec.durable(fs, version)
        top = db.version
        db.close()
        rec.durable(fs, top)

    return workload


def concurrent_writers(rec: Recorder, threads: int, per_thread: int) -> Callable[[CrashFS], None]:
    """``threads`` committers in ``always`` mode, each transaction writing its own key and
    two shared ones with the same tag (write-write conflicts are retried)."""

    def workload(fs: CrashFS) -> None:
        db = strata.open(fs, durability="always", checkpoint_bytes=2500)

        def committer(t: int) -> None:
            for i in range(per_thread):
                tag = f"t{t}-{i}"
                while True:
                    writes: dict[Key, Any] = {
                        ("default", f"own{t}"): tag,
                        ("default", f"shared{i % 2}"): tag,
                        ("meta", "last"): tag,
                    }
                    try:
                        with db.transaction() as tx:
                            for (space, key), value in writes.items():
                                tx.keyspace(space).put(key, value)
                    except strata.ConflictError:
                        continue
                    rec.committed(tx.version, writes)
                    assert tx.version is not None
                    rec.durable(fs, tx.version)
                    break
                if t == 0 and i == per_thread // 2:
                    before = db.version
                    db.checkpoint()
                    rec.durable(fs, before)

        workers = [threading.Thread(target=committer, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        top = db.version
        db.close()
        rec.durable(fs, top)

    return workload


def run_and_explore(
    workload: Callable[[CrashFS], None],
    rec: Recorder,
    *,
    kind: str,
    max_states: int,
    stride: int = 1,
    sector_size: int = 512,
) -> dict[str, int]:
    """Run ``workload`` once, then check the states at every ``stride``-th crash point of
    ``kind`` (the last point always). Returns what was covered, for sanity asserts."""
    fs = CrashFS()
    workload(fs)
    fsynced = {op.file for op in fs.trace if isinstance(op, Fsync)}
    assert "data.strata" in fsynced, "no page-db checkpoint reached the page file"
    assert any(name.endswith(".wal") for name in fsynced), f"no WAL segment synced: {fsynced}"
    points = fs.crash_points(kind)  # type: ignore[arg-type]
    chosen = sorted(set(points[::stride]) | {points[-1]})
    covered = {"states": 0, "torn": 0, "recovered_partly": 0, "points": len(chosen)}
    for point in chosen:
        for state in fs.crash_states(point, max_states=max_states, sector_size=sector_size):
            try:
                top = check_state(rec, state, point)
            except Exception as exc:
                raise AssertionError(f"crash point {point}: {state.description}: {exc}") from exc
            covered["states"] += 1
            covered["torn"] += state.variant in ("torn", "trashed")
            covered["recovered_partly"] += 0 < top < max(rec.commits)
    return covered


# -- tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("durability", ["standard", "always"])
def test_power_loss_at_every_sync_recovers_a_durable_prefix(durability: str) -> None:
    rec = Recorder()
    covered = run_and_explore(
        single_writer(rec, durability, steps=60 if SLOW else 36),
        rec,
        kind="sync",
        max_states=32 if SLOW else 8,
        sector_size=128,
    )
    assert len(rec.commits) == (60 if SLOW else 36)
    assert covered["points"] > 5 and covered["recovered_partly"] > 0, covered
    assert covered["torn"] > 5, covered  # the write before each sync torn and trashed


@pytest.mark.parametrize("durability", ["standard", "always"])
def test_torn_writes_at_every_write_recover_a_durable_prefix(durability: str) -> None:
    rec = Recorder()
    covered = run_and_explore(
        single_writer(rec, durability, steps=22),
        rec,
        kind="write",
        max_states=16 if SLOW else 8,
        sector_size=128,
    )
    assert covered["torn"] > 5, covered  # torn and trashed writes were really tried


def test_power_loss_with_concurrent_committers_in_always_mode() -> None:
    rec = Recorder()
    covered = run_and_explore(
        concurrent_writers(rec, threads=3, per_thread=10 if SLOW else 6),
        rec,
        kind="sync",
        max_states=16 if SLOW else 5,
    )
    assert len(rec.commits) == 3 * (10 if SLOW else 6)
    assert covered["recovered_partly"] > 0, covered


def test_a_crash_during_recovery_is_recovered_too() -> None:
    """Power lost while the reopened database replays and checkpoints (SQLite's compound
    failures): the second crash's states recover the same prefix or more."""
    rec = Recorder()
    fs = CrashFS()
    single_writer(rec, "standard", steps=20)(fs)
    first_point = fs.crash_points("sync")[len(fs.crash_points("sync")) // 2]
    crashed = list(fs.crash_states(first_point, max_states=2))[-1]  # ``keep`` if it differs
    need = rec.must_survive(first_point)
    second = CrashFS(crashed.files)
    with strata.open(second) as db:  # recovery, then a checkpoint at close
        top = assert_matches_prefix(db, rec, need, crashed.description)
    for point in second.crash_points("sync"):
        for state in second.crash_states(point, max_states=6):
            with strata.open(state.fs()) as again:
                assert_matches_prefix(again, rec, need, f"second crash: {state.description}")
                assert again.version == top, state.description
