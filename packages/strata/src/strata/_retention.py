"""Retention policies: which old versions garbage collection may remove.

A policy only ever removes a key's *oldest* versions, so what stays is always "every
version newer than some point", and an ``as_of`` read either finds exactly the version it
would have found before or raises :class:`~strata.errors.HistoryUnavailableError`. No
policy removes a version an open snapshot can see: the collector passes each policy only
the versions hidden from every reader (older than the one visible at the horizon).

Policies are stored in the database (a system setting, logged and checkpointed like a
commit) as JSON: ``{"policy": "keep_all"}``, ``{"policy": "keep_last", "n": 3}``,
``{"policy": "keep_for", "seconds": 86400.0}``, ``{"policy": "composite", "default": {...},
"overrides": {"<keyspace>": {...}}}``.
"""

from __future__ import annotations

import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from threading import Lock
from typing import TYPE_CHECKING, Any

from .errors import StrataUsageError

if TYPE_CHECKING:
    from ._mvcc import VersionStore

__all__ = ["RetentionPolicy", "KeepAll", "KeepLast", "KeepFor", "Composite"]

Entry = tuple[int, int, "bytes | None"]


class RetentionPolicy(ABC):
    """Base class of the retention policies (``KeepAll``, ``KeepLast``, ``KeepFor``,
    ``Composite``). Policies are immutable values; compare them with ``==``."""

    @abstractmethod
    def removable(self, keyspace: str, chain: list[Entry], hidden: int, now_ns: int) -> int:
        """How many of ``chain``'s oldest versions may go.

        Args:
            keyspace: the key's keyspace (``Composite`` picks its policy by it).
            chain: the key's versions, oldest first.
            hidden: the versions below this index are hidden from every reader.
            now_ns: the current time in ns.

        Returns:
            A count; ``len(chain)`` means the key may be swept whole (the collector allows
            it only when the newest version is a tombstone every reader sees).
        """

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The policy as a JSON-ready dict (the stored form)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RetentionPolicy) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))


class KeepAll(RetentionPolicy):
    """Keep every version forever (the default); deleted keys keep their history."""

    def removable(self, keyspace: str, chain: list[Entry], hidden: int, now_ns: int) -> int:
        return 0

    def to_json(self) -> dict[str, Any]:
        return {"policy": "keep_all"}

    def __repr__(self) -> str:
        return "KeepAll()"


class KeepLast(RetentionPolicy):
    """Keep the ``n`` newest versions of each key; a deleted key is swept once no open
    snapshot can see it alive.

    Args:
        n: versions to keep per key, ≥ 1.

    Raises:
        StrataUsageError: ``n`` is not a positive int.
    """

    def __init__(self, n: int) -> None:
        if type(n) is not int or n < 1:
            raise StrataUsageError(f"KeepLast needs a positive int, got {n!r}")
        self.n = n

    def removable(self, keyspace: str, chain: list[Entry], hidden: int, now_ns: int) -> int:
        if chain[-1][2] is None:
            return len(chain)
        return max(0, min(hidden, len(chain) - self.n))

    def to_json(self) -> dict[str, Any]:
        return {"policy": "keep_last", "n": self.n}

    def __repr__(self) -> str:
        return f"KeepLast({self.n})"


class KeepFor(RetentionPolicy):
    """Keep every version that was current at some moment in the last ``seconds``; a key
    deleted longer ago than that is swept.

    Args:
        seconds: the window, a finite number ≥ 0.

    Raises:
        StrataUsageError: ``seconds`` is negative, not finite or not a number.
    """

    def __init__(self, seconds: float) -> None:
        if type(seconds) not in (int, float) or not math.isfinite(seconds) or seconds < 0:
            raise StrataUsageError(f"KeepFor needs a finite number of seconds ≥ 0, got {seconds!r}")
        self.seconds = float(seconds)

    def removable(self, keyspace: str, chain: list[Entry], hidden: int, now_ns: int) -> int:
        cutoff = now_ns - int(self.seconds * 1e9)
        if chain[-1][2] is None and chain[-1][1] < cutoff:
            return len(chain)
        # entry i stopped being current when entry i + 1 was written
        n = 0
        while n < hidden and chain[n + 1][1] < cutoff:
            n += 1
        return n

    def to_json(self) -> dict[str, Any]:
        return {"policy": "keep_for", "seconds": self.seconds}

    def __repr__(self) -> str:
        return f"KeepFor({self.seconds!r})"


class Composite(RetentionPolicy):
    """A default policy plus per-keyspace overrides.

    Args:
        default: the policy of every keyspace not overridden.
        overrides: keyspace name → policy.

    Raises:
        StrataUsageError: a policy is not a ``RetentionPolicy`` (or is itself a
            ``Composite``), or a keyspace name is not a str.
    """

    def __init__(
        self, default: RetentionPolicy, overrides: Mapping[str, RetentionPolicy] | None = None
    ) -> None:
        overrides = dict(overrides or {})
        for name, policy in [("default", default), *overrides.items()]:
            if not isinstance(name, str):
                raise StrataUsageError(f"Composite override keys are keyspace names, got {name!r}")
            if not isinstance(policy, RetentionPolicy) or isinstance(policy, Composite):
                raise StrataUsageError(
                    f"Composite needs KeepAll, KeepLast or KeepFor for {name!r}, got {policy!r}"
                )
        self.default = default
        self.overrides = overrides

    def policy_for(self, keyspace: str) -> RetentionPolicy:
        """The policy that governs ``keyspace``."""
        return self.overrides.get(keyspace, self.default)

    def removable(self, keyspace: str, chain: list[Entry], hidden: int, now_ns: int) -> int:
        return self.policy_for(keyspace).removable(keyspace, chain, hidden, now_ns)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": "composite",
            "default": self.default.to_json(),
            "overrides": {k: v.to_json() for k, v in sorted(self.overrides.items())},
        }

    def __repr__(self) -> str:
        return f"Composite({self.default!r}, {self.overrides!r})"


def policy_from_json(data: Any) -> RetentionPolicy:
    """Rebuild a policy from :meth:`RetentionPolicy.to_json` output.

    Raises:
        StrataUsageError: not a policy this version knows.
    """
    if not isinstance(data, dict):
        raise StrataUsageError(f"a stored retention policy is a JSON object, got {data!r}")
    kind = data.get("policy")
    if kind == "keep_all":
        return KeepAll()
    if kind == "keep_last":
        return KeepLast(data.get("n"))  # type: ignore[arg-type]
    if kind == "keep_for":
        return KeepFor(data.get("seconds"))  # type: ignore[arg-type]
    if kind == "composite":
        overrides = data.get("overrides", {})
        if not isinstance(overrides, dict):
            raise StrataUsageError("a stored Composite policy's overrides are not an object")
        return Composite(
            policy_from_json(data.get("default")),
            {k: policy_from_json(v) for k, v in overrides.items()},
        )
    raise StrataUsageError(f"unknown retention policy {kind!r}")


def encode_policy(policy: RetentionPolicy) -> bytes:
    """The stored form: compact JSON, keys sorted."""
    return json.dumps(policy.to_json(), sort_keys=True, separators=(",", ":")).encode()


def decode_policy(data: bytes) -> RetentionPolicy:
    """Inverse of :func:`encode_policy`. Raises StrataUsageError on bad input."""
    try:
        return policy_from_json(json.loads(data))
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, StrataUsageError):
            raise
        raise StrataUsageError(f"stored retention policy is not valid JSON: {exc}") from None


_GC_BATCH = 1024  # keys per hold of the commit lock


def collect_garbage(
    versions: VersionStore, policy: RetentionPolicy, horizon: int, commit_lock: Lock
) -> tuple[int, int]:
    """One garbage-collection pass over every key (``Database.gc``).

    Args:
        versions: the version store.
        policy: the retention policy.
        horizon: the oldest version an open reader may read at.
        commit_lock: held for each batch of keys, so commits never interleave with a
            chain being replaced.

    Returns:
        ``(versions removed, keys swept)``.
    """
    if policy == KeepAll():
        return 0, 0
    now = time.time_ns()
    names: dict[bytes, str] = {}

    def removable(key: bytes, chain: list[Entry], hidden: int) -> int:
        head = key[: key[0] + 1]
        name = names.get(head)
        if name is None:
            name = names[head] = head[1:].decode("utf-8")
        return policy.removable(name, chain, hidden, now)

    removed = swept = 0
    keys = list(versions.chains)
    for start in range(0, len(keys), _GC_BATCH):
        with commit_lock:
            r, s = versions.collect(keys[start : start + _GC_BATCH], horizon, removable)
        removed += r
        swept += s
    return removed, swept
