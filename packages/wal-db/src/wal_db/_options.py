"""Validated open options and the counters behind ``WriteAheadLog.stats()``."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ._layout import MAX_LENGTH_FIELD, MIN_SEGMENT_SIZE
from .errors import RecordTooLargeError

__all__ = ["LogOptions", "LogStats", "check_payload"]

Payload = bytes | bytearray | memoryview

_SYNC_POLICIES = ("always", "interval", "never")
_RECOVERY_MODES = ("strict", "truncate")


def _int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


@dataclass(frozen=True)
class LogOptions:
    """The options :meth:`WriteAheadLog.open` validated."""

    segment_size: int
    sync: str
    sync_interval: float
    sync_every: int
    max_record_size: int
    read_only: bool
    lossy: bool

    @classmethod
    def make(
        cls,
        *,
        segment_size: object,
        sync: object,
        sync_interval: object,
        sync_every: object,
        max_record_size: object,
        read_only: object,
        recovery: object,
    ) -> LogOptions:
        """Validate every option.

        Raises:
            TypeError: an option of the wrong type.
            ValueError: an option out of range or not one of the allowed words.
        """
        if sync not in _SYNC_POLICIES:
            raise ValueError(f"sync must be one of {_SYNC_POLICIES}, got {sync!r}")
        if recovery not in _RECOVERY_MODES:
            raise ValueError(f"recovery must be one of {_RECOVERY_MODES}, got {recovery!r}")
        if isinstance(sync_interval, bool) or not isinstance(sync_interval, (int, float)):
            raise TypeError(f"sync_interval must be a number, not {type(sync_interval).__name__}")
        if not (sync_interval > 0 and math.isfinite(sync_interval)):
            raise ValueError(f"sync_interval must be a positive number, got {sync_interval}")
        if not isinstance(read_only, bool):
            raise TypeError(f"read_only must be bool, not {type(read_only).__name__}")
        return cls(
            segment_size=_int("segment_size", segment_size, MIN_SEGMENT_SIZE),
            sync=str(sync),
            sync_interval=float(sync_interval),
            sync_every=_int("sync_every", sync_every, 1),
            max_record_size=_int("max_record_size", max_record_size, 1, MAX_LENGTH_FIELD),
            read_only=read_only,
            lossy=recovery == "truncate",
        )


@dataclass
class LogStats:
    """Counters and positions of one open log (a snapshot from ``stats()``).

    Attributes:
        appends: records appended since open.
        payload_bytes: payload bytes appended since open.
        fsyncs: fsyncs of segment files since open (group commit makes this much smaller
            than ``appends`` under concurrency).
        segments_created: segments created since open.
        segments_deleted: segments deleted by ``truncate_before`` since open.
        segments: segments in the log now.
        first_lsn: the first LSN still in the log.
        last_lsn: the last LSN appended (0 for an empty log).
        durable_lsn: the highest LSN known durable.
        poisoned: True once a write or fsync has failed.
    """

    appends: int = 0
    payload_bytes: int = 0
    fsyncs: int = 0
    segments_created: int = 0
    segments_deleted: int = 0
    segments: int = 0
    first_lsn: int = 0
    last_lsn: int = 0
    durable_lsn: int = 0
    poisoned: bool = False

    def snapshot(self, **positions: int | bool) -> LogStats:
        """A copy with the position fields filled in."""
        return replace(self, **positions)  # type: ignore[arg-type]


def check_payload(payload: Payload, limit: int) -> Payload:
    """The payload as a flat byte buffer, after the type and size checks.

    Raises:
        TypeError: not bytes, bytearray or memoryview.
        RecordTooLargeError: longer than ``limit`` bytes.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be bytes-like, not {type(payload).__name__}")
    if isinstance(payload, memoryview) and (payload.format != "B" or payload.ndim != 1):
        payload = payload.cast("B")  # so len() counts bytes, not elements
    if len(payload) > limit:
        raise RecordTooLargeError(len(payload), limit)
    return payload
