"""Multi-thread stress: 16 threads take random sets of locks in random orders and modes.

Every attempt (one owner, one transaction) ends in a grant of all its locks, a timeout or
a deadlock error, and then releases everything. Safety is checked twice, continuously:

- per grant: each thread enters what it was granted in a ledger (after the grant) and
  removes it (before the release), so the ledger is always a subset of what is really
  held; every entry is checked against the other owners' overlapping entries;
- by a checker thread that runs the manager's full consistency check in a loop: no
  incompatible holders, no waiter left parked while nothing blocks it (a lost wake-up),
  no cycle left in the wait-for graph.

The variant without timeouts turns any lost wake-up or undetected deadlock into a hang,
which the bounded joins report as a failure.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from conftest import PATIENCE

from lock_db import DeadlockError, LockManager, LockMode, LockTimeoutError
from lock_db._invariants import check_invariants

THREADS = 16
SECONDS = 2.5
MODES = [LockMode.S] * 4 + [LockMode.X] * 3 + [LockMode.IS, LockMode.IX, LockMode.SIX]
KEYS = [b"k%d" % i for i in range(8)]


def overlap(first: tuple[Any, ...], second: tuple[Any, ...]) -> bool:
    if first[0] != second[0]:
        return False
    if first[0] == "r":
        return bool(first[1] == second[1])
    return (second[2] is None or first[1] < second[2]) and (
        first[2] is None or second[1] < first[2]
    )


class Ledger:
    """What each owner was granted, checked pairwise on every entry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[Any, ...], dict[Any, LockMode]] = {}
        self.violations: list[str] = []
        self.entries = 0

    def enter(self, owner: Any, target: tuple[Any, ...], mode: LockMode) -> None:
        with self._lock:
            self.entries += 1
            for other_target, holders in self._held.items():
                if not overlap(target, other_target):
                    continue
                for other, other_mode in holders.items():
                    if other != owner and not mode.compatible_with(other_mode):
                        self.violations.append(
                            f"{owner} got {mode.name} on {target} while {other} holds "
                            f"{other_mode.name} on {other_target}"
                        )
            self._held.setdefault(target, {})[owner] = mode

    def leave(self, owner: Any, targets: list[tuple[Any, ...]]) -> None:
        with self._lock:
            for target in targets:
                holders = self._held[target]
                del holders[owner]
                if not holders:
                    del self._held[target]


def pick_target(rng: random.Random, hot: bool) -> tuple[Any, ...]:
    roll = rng.random()
    if roll < 0.5:
        return ("r", f"r{rng.randrange(4 if hot else 64)}")
    if roll < 0.85:
        return ("s", *_key_span(rng.choice(KEYS)))
    lo, hi = sorted(rng.sample([None, *KEYS], 2), key=lambda k: (k is not None, k or b""))
    if hi is None:
        lo, hi = hi, lo  # (None, key) sorted puts None first: make it [None -> b"", key)
    return ("s", lo or b"", hi)


def _key_span(key: bytes) -> tuple[bytes, bytes]:
    return key, key + b"\x00"


def acquire(
    manager: LockManager, owner: Any, target: tuple[Any, ...], mode: LockMode, timeout: float | None
) -> None:
    if target[0] == "r":
        manager.acquire(owner, target[1], mode, timeout=timeout)
    elif target[2] == target[1] + b"\x00":
        manager.acquire_key(owner, "space", target[1], mode, timeout=timeout)
    else:
        manager.acquire_range(owner, "space", target[1], target[2], mode, timeout=timeout)


def worker(
    manager: LockManager,
    ledger: Ledger,
    index: int,
    deadline: float,
    hot: bool,
    timeouts: bool,
    outcomes: Counter[str],
    errors: list[BaseException],
) -> None:
    rng = random.Random(index)
    attempt = 0
    try:
        while time.monotonic() < deadline:
            attempt += 1
            owner = (index, attempt)
            plan = [(pick_target(rng, hot), rng.choice(MODES)) for _ in range(rng.randint(1, 4))]
            if rng.random() < 0.3:  # re-request one target in a stronger mode: an upgrade
                target, _ = rng.choice(plan)
                plan.append((target, LockMode.X))
            granted: dict[tuple[Any, ...], LockMode] = {}
            result = "committed"
            for target, mode in plan:
                timeout = rng.uniform(0.005, 0.2) if timeouts else None
                try:
                    acquire(manager, owner, target, mode, timeout)
                except LockTimeoutError:
                    result = "timeout"
                    break
                except DeadlockError:
                    result = "deadlock"
                    break
                outcomes["grants"] += 1
                granted[target] = granted[target].supremum(mode) if target in granted else mode
                ledger.enter(owner, target, granted[target])
            outcomes[result] += 1
            if rng.random() < 0.2:
                time.sleep(0)  # hold the locks across a thread switch
            ledger.leave(owner, list(granted))
            manager.release_all(owner)
    except BaseException as exc:
        errors.append(exc)


def checker(
    manager: LockManager, stop: threading.Event, checks: list[int], errors: list[BaseException]
) -> None:
    try:
        while not stop.is_set():
            check_invariants(manager)
            checks[0] += 1
            time.sleep(0.001)
    except BaseException as exc:
        errors.append(exc)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("hot", "timeouts"),
    [(True, True), (False, True), (True, False)],
    ids=["hot", "spread", "hot-no-timeouts"],
)
def test_sixteen_threads(hot: bool, timeouts: bool) -> None:
    manager = LockManager()
    ledger = Ledger()
    outcomes: Counter[str] = Counter()
    errors: list[BaseException] = []
    checks = [0]
    stop = threading.Event()
    deadline = time.monotonic() + SECONDS
    workers = [
        threading.Thread(
            target=worker,
            args=(manager, ledger, index, deadline, hot, timeouts, outcomes, errors),
        )
        for index in range(THREADS)
    ]
    watcher = threading.Thread(target=checker, args=(manager, stop, checks, errors))
    watcher.start()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(SECONDS + PATIENCE)
    stop.set()
    watcher.join(PATIENCE)
    hung = [thread.name for thread in workers if thread.is_alive()]
    assert not hung, f"threads never finished (lost wake-up or missed deadlock): {hung}"
    assert not errors, errors
    assert not ledger.violations, ledger.violations[:5]
    # Every attempt ended in exactly one of the three ways, and the manager agrees.
    stats = manager.stats()
    attempts = outcomes["committed"] + outcomes["timeout"] + outcomes["deadlock"]
    assert attempts > 100 and outcomes["committed"] > 0 and checks[0] > 10
    assert stats["grants"] == outcomes["grants"]
    assert stats["timeouts"] == outcomes["timeout"]
    assert stats["deadlocks"] == outcomes["deadlock"]
    if not timeouts:
        assert outcomes["timeout"] == 0
    if hot:  # thousands in practice: random orders and upgrades on 4 hot resources
        assert outcomes["deadlock"] > 0
    assert (stats["owners"], stats["resources"], stats["spaces"], stats["waiting"]) == (0, 0, 0, 0)
    check_invariants(manager)
