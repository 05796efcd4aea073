"""Injected I/O errors and a disk-capacity limit for the in-memory filesystems.

Theory of operation
-------------------
A :class:`FaultPlan` holds *rules*; each rule names an operation kind, an optional file
name, and which matching call should fail. Every filesystem operation asks the plan
(:meth:`FaultPlan.check`) *before* it changes anything, so an injected fault leaves files,
directory and trace exactly as they were -- with one deliberate exception, owned by the
filesystem: a failed ``fsync``/``fsync_dir`` is still recorded in a crash trace, because
a real device may have written part of the data before reporting the error.

Counting: a rule counts the matching calls made *after* it was installed. The ``nth``
such call raises ``OSError(errno, ...)``; a one-shot rule is then removed, a persistent one
keeps failing every later matching call. All rules that match a call count it, so two rules
never disturb each other's numbering; if several fire at once the oldest one's errno wins.

Operation kinds and what ``name`` is matched against:

=============  ======================================================
``open``       the name being opened
``read``       ``pread`` on a file, its current name
``write``      ``pwrite`` on a file, its current name
``truncate``   ``truncate`` on a file, its current name
``fsync``      ``fsync`` on a file, its current name
``fsync_dir``  has no name: a rule with ``name`` is rejected
``rename``     either the source or the destination name
``unlink``     the name being removed
=============  ======================================================

Capacity: with :meth:`FaultPlan.set_capacity`, an operation that would grow the sum of
file sizes past the limit raises ``OSError(ENOSPC)`` and writes nothing (no partial write).
Overwrites inside a file and shrinking truncates always fit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from errno import EIO, ENOSPC
from typing import Literal, get_args

__all__ = ["FAULT_OPS", "FaultOp", "FaultPlan"]

FaultOp = Literal["write", "fsync", "fsync_dir", "open", "rename", "unlink", "truncate", "read"]
FAULT_OPS: frozenset[str] = frozenset(get_args(FaultOp))


@dataclass
class _Rule:
    op: str
    nth: int
    errno: int
    persistent: bool
    name: str | None
    seen: int = 0

    def matches(self, op: str, names: Sequence[str]) -> bool:
        return self.op == op and (self.name is None or self.name in names)


class FaultPlan:
    """The injected faults and capacity limit of one filesystem.

    Filesystems expose it as ``fs.faults`` and forward ``fail_on``, ``set_capacity`` and
    ``clear_faults`` to it.
    """

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._capacity: int | None = None
        self._injected = 0

    @property
    def capacity(self) -> int | None:
        """The byte limit on the sum of file sizes, or None for unlimited."""
        return self._capacity

    @property
    def injected(self) -> int:
        """How many errors (including ENOSPC) have been raised so far."""
        return self._injected

    def fail_on(
        self,
        op: FaultOp,
        nth: int = 1,
        *,
        errno: int = EIO,
        persistent: bool = False,
        name: str | None = None,
    ) -> None:
        """Make the ``nth`` matching ``op`` call from now on raise ``OSError(errno)``.

        Args:
            op: the operation kind (see the module docstring for the list).
            nth: 1 for the very next matching call, 2 for the one after, ...
            errno: the error number of the raised ``OSError``.
            persistent: also fail every matching call after the ``nth``.
            name: only count calls on this file name (rename: source or destination).

        Raises:
            ValueError: unknown ``op``, ``nth`` < 1, or a ``name`` for ``fsync_dir``.
        """
        if op not in FAULT_OPS:
            raise ValueError(f"unknown fault op {op!r}; expected one of {sorted(FAULT_OPS)}")
        if not isinstance(nth, int) or nth < 1:
            raise ValueError(f"nth must be an int >= 1, got {nth!r}")
        if op == "fsync_dir" and name is not None:
            raise ValueError("fsync_dir has no file name; fail_on('fsync_dir') takes no name")
        self._rules.append(_Rule(op, nth, errno, persistent, name))

    def set_capacity(self, total_bytes: int | None) -> None:
        """Limit the sum of all file sizes to ``total_bytes`` (None removes the limit).

        Raises:
            ValueError: ``total_bytes`` is negative.
        """
        if total_bytes is not None and total_bytes < 0:
            raise ValueError(f"capacity must be >= 0, got {total_bytes}")
        self._capacity = total_bytes

    def clear_faults(self) -> None:
        """Remove every rule and the capacity limit."""
        self._rules.clear()
        self._capacity = None

    def check(self, op: FaultOp, names: Sequence[str] = ()) -> None:
        """Count one ``op`` call on ``names`` and raise if a rule fires for it.

        Raises:
            OSError: an installed rule fired for this call.
        """
        fired: _Rule | None = None
        for rule in list(self._rules):
            if not rule.matches(op, names):
                continue
            rule.seen += 1
            if rule.seen < rule.nth:
                continue
            if not rule.persistent:
                self._rules.remove(rule)
            if fired is None:
                fired = rule
        if fired is not None:
            self._injected += 1
            message = f"{os.strerror(fired.errno)} [injected: {op} call #{fired.seen}]"
            raise OSError(fired.errno, message, names[0] if names else None)

    def check_capacity(self, used: int, growth: int, name: str) -> None:
        """Raise ``OSError(ENOSPC)`` if growing ``used`` bytes by ``growth`` exceeds capacity."""
        if self._capacity is None or growth <= 0 or used + growth <= self._capacity:
            return
        self._injected += 1
        message = (
            f"{os.strerror(ENOSPC)} [capacity {self._capacity} bytes, "
            f"{used} used, {growth} more requested]"
        )
        raise OSError(ENOSPC, message, name)
