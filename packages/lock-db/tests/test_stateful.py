"""Hypothesis state machine: the manager against a simple reference model of grants and queues.

The model is deliberately naive: every hold and every pending request lives in one flat
table, a request's blockers are found by scanning all of it, and a "pass" rescans
everything until nothing more can be granted. Blocking requests run in real threads; after
each step the test waits until the manager is quiescent (the new request parked or
finished, every resolved thread joined) and compares holders, queues, the wait-for graph
and every thread's outcome with the model.

Deadlocks: the model accepts a victim when the ``DeadlockError`` names a real cycle of the
model's wait-for graph through the owner that just blocked and the victim is the youngest
owner of that cycle; when one request closes several cycles, any order of victims that
the model can replay is accepted.
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from conftest import PATIENCE, Call, wait_until_waiting
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lock_db import (
    DeadlockError,
    LockCancelledError,
    LockManager,
    LockMode,
    LockTimeoutError,
    NotHeldError,
    OwnerBusyError,
)
from lock_db._invariants import check_invariants

OWNERS = ["t0", "t1", "t2", "t3"]
NIL = b"\x00"
# ("r", name) is a plain resource; ("s", lo, hi) a key or range of the space "sp".
TARGETS: list[tuple[Any, ...]] = [
    ("r", "r0"),
    ("r", "r1"),
    ("s", b"a", b"a" + NIL),
    ("s", b"b", b"b" + NIL),
    ("s", b"c", b"c" + NIL),
    ("s", b"a", b"c"),
    ("s", b"b", None),
    ("s", b"", b"b"),
    ("s", b"", None),
]
GRANTED = "granted"


def overlap(first: tuple[Any, ...], second: tuple[Any, ...]) -> bool:
    if first[0] != second[0]:
        return False
    if first[0] == "r":
        return bool(first[1] == second[1])
    return (second[2] is None or first[1] < second[2]) and (
        first[2] is None or second[1] < first[2]
    )


@dataclass
class Pending:
    owner: str
    target: tuple[Any, ...]
    requested: LockMode
    mode: LockMode  # what the owner holds once granted
    order: int


@dataclass
class Model:
    holds: dict[tuple[str, tuple[Any, ...]], list[Any]] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)
    ages: dict[str, int] = field(default_factory=dict)
    clock: int = 0

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def forget_if_idle(self, owner: str) -> None:
        if owner not in self.pending and not any(o == owner for o, _ in self.holds):
            self.ages.pop(owner, None)

    def blockers(self, request: Pending) -> set[str]:
        found = {
            owner
            for (owner, target), (mode, _) in self.holds.items()
            if owner != request.owner
            and overlap(target, request.target)
            and not mode.compatible_with(request.mode)
        }
        found |= {
            other.owner
            for other in self.pending.values()
            if other.owner != request.owner
            and other.order < request.order
            and overlap(other.target, request.target)
        }
        return found

    def graph(self) -> dict[str, frozenset[str]]:
        return {owner: frozenset(self.blockers(p)) for owner, p in self.pending.items()}

    def request(self, owner: str, target: tuple[Any, ...], mode: LockMode) -> Pending | str:
        """Grant at once if possible (returns GRANTED), else the would-be pending request."""
        if owner not in self.ages:
            self.ages[owner] = self.tick()
        hold = self.holds.get((owner, target))
        if hold is not None and hold[0].covers(mode):
            hold[1] += 1
            return GRANTED
        wanted = mode if hold is None else hold[0].supremum(mode)
        order = self.tick() - (1 << 40 if hold is not None else 0)
        request = Pending(owner, target, mode, wanted, order)
        if self.blockers(request):
            return request
        self.grant(request)
        return GRANTED

    def grant(self, request: Pending) -> None:
        hold = self.holds.setdefault((request.owner, request.target), [request.mode, 0])
        hold[0] = request.mode
        hold[1] += 1

    def settle(self) -> set[str]:
        """Grant every pending request nothing blocks, until nothing changes."""
        granted: set[str] = set()
        progress = True
        while progress:
            progress = False
            for request in sorted(self.pending.values(), key=lambda p: p.order):
                if not self.blockers(request):
                    del self.pending[request.owner]
                    self.grant(request)
                    granted.add(request.owner)
                    progress = True
                    break
        return granted

    def fail(self, owner: str) -> set[str]:
        del self.pending[owner]
        self.forget_if_idle(owner)
        return self.settle()

    def release(self, owner: str, target: tuple[Any, ...]) -> set[str]:
        hold = self.holds[(owner, target)]
        hold[1] -= 1
        if hold[1]:
            return set()
        del self.holds[(owner, target)]
        self.forget_if_idle(owner)
        return self.settle()

    def release_all(self, owner: str) -> tuple[int, set[str]]:
        self.pending.pop(owner, None)
        mine = [key for key in self.holds if key[0] == owner]
        for key in mine:
            del self.holds[key]
        self.ages.pop(owner, None)
        return len(mine), self.settle()

    def is_cycle(self, cycle: tuple[Any, ...]) -> bool:
        graph = self.graph()
        return all(
            member in graph and cycle[(i + 1) % len(cycle)] in graph[member]
            for i, member in enumerate(cycle)
        )


def acquire(
    manager: LockManager, owner: str, target: tuple[Any, ...], mode: LockMode, **kwargs: Any
) -> None:
    if target[0] == "r":
        manager.acquire(owner, target[1], mode, **kwargs)
    else:
        manager.acquire_range(owner, "sp", target[1], target[2], mode, **kwargs)


def try_acquire(manager: LockManager, owner: str, target: tuple[Any, ...], mode: LockMode) -> bool:
    if target[0] == "r":
        return manager.try_acquire(owner, target[1], mode)
    if target[2] == target[1] + NIL:
        return manager.try_acquire_key(owner, "sp", target[1], mode)
    return manager.try_acquire_range(owner, "sp", target[1], target[2], mode)


def release(manager: LockManager, owner: str, target: tuple[Any, ...]) -> None:
    if target[0] == "r":
        manager.release(owner, target[1])
    elif target[2] == target[1] + NIL:
        manager.release_key(owner, "sp", target[1])
    else:
        manager.release_range(owner, "sp", target[1], target[2])


class LockMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.manager = LockManager()
        self.model = Model()
        self.calls: dict[str, Call] = {}

    # -- rules -------------------------------------------------------------------------

    @rule(
        owner=st.sampled_from(OWNERS),
        what=st.sampled_from(TARGETS),
        mode=st.sampled_from(list(LockMode)),
        style=st.sampled_from(["acquire", "acquire", "try", "timeout0"]),
    )
    def request(self, owner: str, what: tuple[Any, ...], mode: LockMode, style: str) -> None:
        target = what
        if owner in self.model.pending:
            try:
                acquire(self.manager, owner, target, mode)
            except OwnerBusyError:
                return
            raise AssertionError("an owner that waits made a second request")
        outcome = self.model.request(owner, target, mode)
        if outcome == GRANTED:
            if style == "try":
                assert try_acquire(self.manager, owner, target, mode) is True
            else:
                acquire(
                    self.manager, owner, target, mode, timeout=0 if style == "timeout0" else None
                )
            return
        assert isinstance(outcome, Pending)
        if style == "try":
            assert try_acquire(self.manager, owner, target, mode) is False
            self.model.forget_if_idle(owner)
            return
        if style == "timeout0":
            try:
                acquire(self.manager, owner, target, mode, timeout=0)
            except LockTimeoutError:
                self.model.forget_if_idle(owner)
                return
            raise AssertionError("a request that must wait was granted")
        self.model.pending[owner] = outcome
        event("request waits")
        before = dict(self.calls)
        call = self.calls[owner] = Call(acquire, self.manager, owner, target, mode)
        self._quiesce(call, owner)
        self._resolve_deadlocks(owner, before)

    @rule(
        owner=st.sampled_from(OWNERS),
        what=st.sampled_from(TARGETS),
        mode=st.sampled_from([LockMode.S, LockMode.X, LockMode.IX]),
    )
    def request_blocking(self, owner: str, what: tuple[Any, ...], mode: LockMode) -> None:
        """The same as ``request``, drawn more often so queues and cycles form."""
        self.request(owner, what, mode, "acquire")

    @precondition(lambda self: self.model.holds)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        owner, target = data.draw(st.sampled_from(sorted(self.model.holds, key=repr)))
        release(self.manager, owner, target)
        granted = self.model.release(owner, target)
        self._expect_granted(granted)

    @rule(owner=st.sampled_from(OWNERS), what=st.sampled_from(TARGETS))
    def release_not_held(self, owner: str, what: tuple[Any, ...]) -> None:
        target = what
        if (owner, target) in self.model.holds:
            return
        try:
            release(self.manager, owner, target)
        except NotHeldError:
            return
        raise AssertionError("released a lock that was not held")

    @rule(owner=st.sampled_from(OWNERS))
    def release_all(self, owner: str) -> None:
        cancelled = self.calls.pop(owner, None) if owner in self.model.pending else None
        count, granted = self.model.release_all(owner)
        assert self.manager.release_all(owner) == count
        if cancelled is not None:
            cancelled.join()
            assert isinstance(cancelled.error, LockCancelledError), cancelled.error
        self._expect_granted(granted)

    # -- checks ------------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        manager, model = self.manager, self.model
        for name in ("r0", "r1"):
            expected = {o: h[0] for (o, t), h in model.holds.items() if t == ("r", name)}
            assert manager.holders(name) == expected
            queue = sorted(
                (p for p in model.pending.values() if p.target == ("r", name)),
                key=lambda p: p.order,
            )
            assert manager.waiters(name) == [(p.owner, p.mode) for p in queue]
        held = Counter((o, t[1], t[2], h[0]) for (o, t), h in model.holds.items() if t[0] == "s")
        assert Counter(tuple(lock) for lock in manager.space_holders("sp")) == held
        queue = sorted(
            (p for p in model.pending.values() if p.target[0] == "s"), key=lambda p: p.order
        )
        assert [tuple(w) for w in manager.space_waiters("sp")] == [
            (p.owner, p.target[1], p.target[2], p.mode) for p in queue
        ]
        assert manager.wait_for_graph() == model.graph()
        assert manager.stats()["owners"] == len(model.ages)
        check_invariants(manager)

    def teardown(self) -> None:
        for owner in OWNERS:
            self.manager.release_all(owner)
        for call in self.calls.values():
            call.join(PATIENCE)
        check_invariants(self.manager)

    # -- helpers -----------------------------------------------------------------------

    def _quiesce(self, call: Call, owner: str) -> None:
        """Wait until the new request is parked or finished."""
        try:
            wait_until_waiting(self.manager, owner, calls=[call])
        except AssertionError:
            call.join()

    def _expect_granted(self, granted: set[str]) -> None:
        if granted:
            event("a release woke waiters")
        for owner in granted:
            call = self.calls.pop(owner)
            call.join()
            assert call.error is None, f"{owner} should have been granted: {call.error!r}"
        for owner in self.model.pending:
            assert not self.calls[owner].done, f"{owner} finished but should still wait"

    def _resolve_deadlocks(self, closer: str, before: dict[str, Call]) -> None:
        """Check what the new request's deadlock resolution did against the model."""
        still_waiting = set(self.manager.wait_for_graph())
        finished: dict[str, Call] = {}
        for owner, call in {**before, closer: self.calls[closer]}.items():
            if owner not in still_waiting:
                finished[owner] = call.join()
                del self.calls[owner]
        victims = {o: c.error for o, c in finished.items() if isinstance(c.error, DeadlockError)}
        for _ in victims:
            event("deadlock victim")
        if len(victims) > 1:
            event("one request closed several cycles")
        granted = {o for o, c in finished.items() if c.error is None}
        unexpected = {o: c.error for o, c in finished.items() if o not in victims.keys() | granted}
        assert not unexpected, unexpected
        for order in itertools.permutations(victims):
            model = copy.deepcopy(self.model)
            if self._replay(model, closer, [(o, victims[o]) for o in order], granted):
                self.model = model
                return
        raise AssertionError(
            f"no replay of victims {victims} explains the outcome; graph {self.model.graph()}"
        )

    @staticmethod
    def _replay(
        model: Model, closer: str, victims: list[tuple[str, Any]], granted: set[str]
    ) -> bool:
        seen: set[str] = set()
        for victim, error in victims:
            cycle = error.cycle
            if not (model.is_cycle(cycle) and closer in cycle and cycle[0] == victim):
                return False
            if victim != max(cycle, key=lambda o: model.ages[o]):  # not the youngest
                return False
            seen |= model.fail(victim)
        if seen != granted:
            return False
        if closer in model.pending:  # no cycle may be left through the closer
            return not any(
                model.is_cycle(cycle)
                for n in range(2, len(model.pending) + 1)
                for cycle in itertools.permutations(model.pending, n)
                if cycle[0] == closer
            )
        return True


LockMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestLockMachine = LockMachine.TestCase
