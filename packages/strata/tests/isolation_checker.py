"""An Elle-style list-append checker for strata's isolation levels (a test helper).

Theory of operation
-------------------
Every key holds a list. A transaction is a short sequence of operations, each a read of a
key (``("r", key)``) or an append of a unique int to a key (``("a", key, n)``, done as a
read-modify-write inside the transaction). Every append value is unique across the whole
run, so a value names the one transaction that appended it, and because a key only ever
grows, the final list of a key *is* the version order of that key: the ``i``-th element
was appended by the ``i``-th committed write.

From the committed transactions' reads and writes we infer Adya's dependency edges:

- ``ww``: consecutive elements of a key's final list, writer of ``L[i]`` -> writer of
  ``L[i+1]``;
- ``wr``: a read that returned a non-empty list ``L`` depends on the writer of ``L[-1]``
  (earlier elements are ordered before it by ``ww`` already);
- ``rw``: a read that returned ``L`` (a prefix of the final list of length ``n``) is
  anti-dependent on the writer of ``final[n]``, the append it did not see.

Then, per isolation level:

- serializable (and pessimistic two-phase locking): no cycle at all (G0, G1c, G-single,
  G2 all forbidden);
- snapshot isolation: every cycle must contain two *adjacent* ``rw`` edges (Fekete et al.:
  under SI a walk whose anti-dependencies are never adjacent strictly increases the start
  timestamp, so it cannot close). That forbids cycles of ``ww``/``wr`` only (G0, G1c) and
  cycles with exactly one ``rw`` (G-single), and allows write skew (G2 with adjacent
  ``rw`` edges). We search a product graph whose nodes are ``(txn, entered by rw?)`` and
  which has no ``rw`` edge out of a node entered by ``rw``: a cycle there is a closed walk
  with no adjacent ``rw`` pair.

Independently of the graph: no read and no final list ever holds a value that an aborted
transaction appended (G1a); every read is a prefix of its key's final list (no
intermediate or out-of-order state, G1b); every committed append is in the final list
exactly once (no lost update) and only committed appends are there.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import strata

Op = tuple[Any, ...]


@dataclass
class Txn:
    """One attempted transaction and what it observed."""

    id: int
    ops: list[Op]
    reads: dict[str, list[int]] = field(default_factory=dict)
    appends: dict[str, int] = field(default_factory=dict)
    committed: bool = False


@dataclass
class History:
    """Every attempted transaction of a run plus the final value of every key."""

    txns: list[Txn]
    final: dict[str, list[int]]

    @property
    def committed(self) -> list[Txn]:
        return [t for t in self.txns if t.committed]


# -- generating and running a workload ------------------------------------------------------


def generate(rng: random.Random, keys: list[str], counter: Iterable[int], max_ops: int) -> list[Op]:
    """A random transaction: 1..max_ops operations on distinct keys; a key read and
    appended in one transaction is read first (reads after an own append are not modelled)."""
    chosen = rng.sample(keys, rng.randint(1, min(max_ops, len(keys))))
    ops: list[Op] = []
    it = iter(counter)
    for key in chosen:
        kind = rng.choice(("r", "a", "ra"))
        if "r" in kind:
            ops.append(("r", key))
        if "a" in kind:
            ops.append(("a", key, next(it)))
    return ops


def execute(db: strata.Database, txn: Txn, *, isolation: str, mode: str) -> None:
    """Run ``txn`` once; record its reads and appends and whether it committed."""
    try:
        with db.transaction(isolation=isolation, mode=mode) as tx:
            for op in txn.ops:
                time.sleep(0)  # let other threads interleave between operations
                if op[0] == "r":
                    txn.reads[op[1]] = list(tx.kv.get(op[1], []))
                else:
                    _, key, value = op
                    tx.kv.put(key, [*tx.kv.get(key, []), value])
                    txn.appends[key] = value
        txn.committed = True
    except strata.TransactionAbortedError:
        txn.committed = False


def run_workload(
    db: strata.Database,
    *,
    isolation: str | list[str],
    mode: str | list[str],
    threads: int = 6,
    txns_per_thread: int = 150,
    keys: int = 8,
    max_ops: int = 4,
    seed: int = 0,
) -> History:
    """Run the list-append workload on ``threads`` threads and return its history.

    ``isolation`` and ``mode`` may be lists: thread ``n`` uses item ``n % len``, so one run
    can mix optimistic and pessimistic transactions."""
    isolations = [isolation] if isinstance(isolation, str) else isolation
    modes = [mode] if isinstance(mode, str) else mode
    names = [f"k{i}" for i in range(keys)]
    counter_lock = threading.Lock()
    next_value = [0]

    def values() -> Iterable[int]:
        while True:
            with counter_lock:
                next_value[0] += 1
                yield next_value[0]

    ids = iter(range(1, 1 << 62))
    id_lock = threading.Lock()
    txns: list[Txn] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def worker(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        mine: list[Txn] = []
        try:
            barrier.wait()
            for _ in range(txns_per_thread):
                with id_lock:
                    tid = next(ids)
                txn = Txn(tid, generate(rng, names, values(), max_ops))
                execute(
                    db, txn, isolation=isolations[n % len(isolations)], mode=modes[n % len(modes)]
                )
                mine.append(txn)
        except BaseException as exc:  # surfaced by the caller
            errors.append(exc)
        finally:
            with id_lock:
                txns.extend(mine)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    final = {name: list(db.kv.get(name, [])) for name in names}
    return History(sorted(txns, key=lambda t: t.id), final)


# -- checking ----------------------------------------------------------------------------


Edge = tuple[int, int, str]


def check_values(history: History) -> list[str]:
    """The non-graph checks (G1a, G1b, lost or phantom appends); returns the problems."""
    problems: list[str] = []
    aborted = {v for t in history.txns if not t.committed for v in t.appends.values()}
    committed = {(k, v) for t in history.committed for k, v in t.appends.items()}
    for key, lst in history.final.items():
        if len(set(lst)) != len(lst):
            problems.append(f"duplicate append in final {key}: {lst}")
        present = {(key, v) for v in lst}
        lost = {v for (k, v) in committed if k == key} - {v for _, v in present}
        if lost:
            problems.append(f"lost update: committed appends {sorted(lost)} missing from {key}")
        stray = {v for _, v in present} - {v for (k, v) in committed if k == key}
        if stray:
            problems.append(f"{key} holds appends no committed transaction made: {sorted(stray)}")
    for t in history.committed:
        for key, seen in t.reads.items():
            if aborted.intersection(seen):
                problems.append(f"G1a: txn {t.id} read aborted appends in {key}: {seen}")
            if history.final[key][: len(seen)] != seen:
                problems.append(
                    f"G1b/order: txn {t.id} read {key}={seen}, not a prefix of "
                    f"the final {history.final[key]}"
                )
    return problems


def dependency_edges(history: History) -> list[Edge]:
    """Infer the ww, wr and rw edges between committed transactions."""
    writer = {(k, v): t.id for t in history.committed for k, v in t.appends.items()}
    edges: set[Edge] = set()
    for key, lst in history.final.items():
        for a, b in itertools.pairwise(lst):
            edges.add((writer[(key, a)], writer[(key, b)], "ww"))
    for t in history.committed:
        for key, seen in t.reads.items():
            if seen:
                edges.add((writer[(key, seen[-1])], t.id, "wr"))
            final = history.final[key]
            if len(seen) < len(final):
                edges.add((t.id, writer[(key, final[len(seen)])], "rw"))
    return sorted(e for e in edges if e[0] != e[1])


def find_cycle(nodes: Iterable[Any], succ: Callable[[Any], Iterable[Any]]) -> list[Any] | None:
    """A cycle (list of nodes, first repeated at the end) in a directed graph, or None."""
    color: dict[Any, int] = {}
    for root in nodes:
        if root in color:
            continue
        stack = [(root, iter(succ(root)))]
        path = [root]
        color[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
                path.pop()
                continue
            state = color.get(nxt, 0)
            if state == 1:
                return [*path[path.index(nxt) :], nxt]
            if state == 0:
                color[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(succ(nxt))))
    return None


def check_serializable(edges: list[Edge]) -> list[Any] | None:
    """A dependency cycle (forbidden under serializability), or None."""
    out: dict[int, list[int]] = {}
    for a, b, _ in edges:
        out.setdefault(a, []).append(b)
    return find_cycle(list(out), lambda n: out.get(n, ()))


def check_snapshot(edges: list[Edge]) -> tuple[str, list[Any]] | None:
    """A cycle snapshot isolation forbids, named, or None.

    ``("G0/G1c", cycle)`` for a cycle of ww/wr edges only; ``("G-single", cycle)`` for a
    closed walk whose rw edges are never adjacent (one rw edge, or several apart)."""
    plain: dict[int, list[int]] = {}
    out: dict[int, list[tuple[int, bool]]] = {}
    for a, b, kind in edges:
        rw = kind == "rw"
        out.setdefault(a, []).append((b, rw))
        if not rw:
            plain.setdefault(a, []).append(b)
    cycle = find_cycle(list(plain), lambda n: plain.get(n, ()))
    if cycle is not None:
        return "G0/G1c", cycle

    def succ(state: tuple[int, bool]) -> Iterable[tuple[int, bool]]:
        node, entered_by_rw = state
        return [(b, rw) for b, rw in out.get(node, ()) if not (rw and entered_by_rw)]

    starts = [(n, flag) for n in out for flag in (False, True)]
    cycle = find_cycle(starts, succ)
    if cycle is not None:
        return "G-single", cycle
    return None
