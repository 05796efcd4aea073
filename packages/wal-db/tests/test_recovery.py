"""Open-time recovery: torn tails cut at every offset, corruption raised, lossy mode."""

from __future__ import annotations

import pytest
from conftest import payload, records

from strata_testkit import MemoryFS
from wal_db import CorruptLogError, WriteAheadLog
from wal_db._layout import SEGMENT_HEADER_SIZE, segment_name

FRAME = 24


def build(segment_size: int = 4096, count: int = 120, size: int = 50) -> dict[str, bytes]:
    fs = MemoryFS()
    with WriteAheadLog.open(fs, segment_size=segment_size) as log:
        for lsn in range(1, count + 1):
            log.append(payload(lsn, size))
    return fs.files()


def last_segment(files: dict[str, bytes]) -> str:
    return max(name for name in files if name.endswith(".wal"))


def test_cut_the_last_segment_at_every_byte_offset() -> None:
    files = build()
    last = last_segment(files)
    data = files[last]
    # LSN and end offset of every frame in the last segment.
    first_lsn = int.from_bytes(data[24:32], "little")
    ends, offset = [], SEGMENT_HEADER_SIZE
    while offset < len(data):
        offset += FRAME + int.from_bytes(data[offset : offset + 4], "little")
        ends.append(offset)
    assert len(ends) > 10
    for cut in range(len(data) + 1):
        damaged = dict(files)
        damaged[last] = data[:cut]
        fs = MemoryFS(damaged)
        if cut < SEGMENT_HEADER_SIZE:
            # A crash cannot leave a short header (segments are renamed into place).
            with pytest.raises(CorruptLogError, match="header") as info:
                WriteAheadLog.open(fs)
            assert info.value.segment is not None
            continue
        with WriteAheadLog.open(fs) as log:
            whole = sum(1 for end in ends if end <= cut)
            last_lsn = first_lsn + whole - 1
            end = ends[whole - 1] if whole else SEGMENT_HEADER_SIZE
            assert log.last_lsn == last_lsn
            report = log.recovery
            assert report.truncated_bytes == cut - end
            if cut != end:
                assert (report.first_lost_lsn, report.segment, report.offset) == (
                    last_lsn + 1,
                    int(last[:-4]),
                    end,
                )
            got = records(log)
            assert got == [(lsn, payload(lsn, 50)) for lsn in range(1, last_lsn + 1)]
            assert log.append(b"new") == last_lsn + 1
        with WriteAheadLog.open(fs) as log:  # the cut was made durable; reopen is clean
            assert log.recovery.clean and log.last_lsn == last_lsn + 1


def flip(files: dict[str, bytes], name: str, offset: int) -> dict[str, bytes]:
    data = bytearray(files[name])
    data[offset] ^= 0x40
    return {**files, name: bytes(data)}


def test_damage_in_an_earlier_segment_raises_on_replay_with_segment_and_offset() -> None:
    files = build()
    damaged = flip(files, segment_name(2), SEGMENT_HEADER_SIZE + FRAME + 3)
    with WriteAheadLog.open(MemoryFS(damaged)) as log:
        with pytest.raises(CorruptLogError, match="checksum") as info:
            records(log)
        assert (info.value.segment, info.value.offset) == (2, SEGMENT_HEADER_SIZE)


def test_damage_to_synced_frames_of_the_last_segment_raises_on_open() -> None:
    files = build()
    last = last_segment(files)
    with pytest.raises(CorruptLogError, match="durable") as info:
        WriteAheadLog.open(MemoryFS(flip(files, last, SEGMENT_HEADER_SIZE + 30)))
    assert info.value.offset == SEGMENT_HEADER_SIZE
    with pytest.raises(CorruptLogError):  # a reader refuses it too
        WriteAheadLog.open(
            MemoryFS(flip(files, last, SEGMENT_HEADER_SIZE + 30)), read_only=True
        ).close()


def test_lossy_recovery_cuts_at_the_first_bad_frame_and_reports_everything() -> None:
    files = build()
    segments = sorted(name for name in files if name.endswith(".wal"))
    damaged = flip(files, segments[1], SEGMENT_HEADER_SIZE + FRAME + 3)
    fs = MemoryFS(damaged)
    with WriteAheadLog.open(fs, recovery="truncate") as log:
        report = log.recovery
        first_of_2 = int.from_bytes(files[segments[1]][24:32], "little")
        assert report.lossy and report.segment == 2 and report.offset == SEGMENT_HEADER_SIZE
        assert report.first_lost_lsn == first_of_2
        assert report.removed_segments == tuple(range(3, len(segments) + 1))
        lost = sum(len(files[name]) for name in segments[2:])
        assert report.truncated_bytes == lost + len(files[segments[1]]) - SEGMENT_HEADER_SIZE
        assert records(log) == [(lsn, payload(lsn, 50)) for lsn in range(1, first_of_2)]
        assert log.append(b"next") == first_of_2
    assert sorted(n for n in fs.files() if n.endswith(".wal")) == segments[:2]


def test_lossy_recovery_of_a_clean_log_reports_nothing() -> None:
    with WriteAheadLog.open(MemoryFS(build()), recovery="truncate") as log:
        assert log.recovery.clean and log.last_lsn == 120


def test_lossy_recovery_drops_segments_from_a_bad_header_on() -> None:
    files = build()
    segments = sorted(name for name in files if name.endswith(".wal"))
    damaged = flip(files, segments[-2], 20)
    with pytest.raises(CorruptLogError, match="header checksum"):
        WriteAheadLog.open(MemoryFS(damaged))
    with WriteAheadLog.open(MemoryFS(damaged), recovery="truncate") as log:
        assert log.recovery.lossy
        assert log.recovery.removed_segments == (len(segments) - 1, len(segments))
        first_bad = int.from_bytes(files[segments[-2]][24:32], "little")
        assert log.last_lsn == first_bad - 1


def test_a_missing_middle_segment_or_a_foreign_segment_is_corruption() -> None:
    files = build(count=300)
    segments = sorted(name for name in files if name.endswith(".wal"))
    holed = {k: v for k, v in files.items() if k != segments[2]}
    with pytest.raises(CorruptLogError, match="segment 3 is missing"):
        WriteAheadLog.open(MemoryFS(holed))
    other = build(count=300)
    mixed = {**files, segments[-1]: other[segments[-1]]}
    with pytest.raises(CorruptLogError, match="another log"):
        WriteAheadLog.open(MemoryFS(mixed))


def test_leftover_temporary_segment_is_removed_and_a_new_log_has_one_segment() -> None:
    files = build()
    files["00000000000000000099.wal.tmp"] = b"half a header"
    fs = MemoryFS(files)
    with WriteAheadLog.open(fs) as log:
        assert log.last_lsn == 120
    assert not any(name.endswith(".tmp") for name in fs.files())
    empty = MemoryFS()
    with WriteAheadLog.open(empty) as log:
        assert log.first_lsn == 1
    assert sorted(empty.files()) == [segment_name(1)]


def test_read_only_open_reports_a_torn_tail_without_cutting_it() -> None:
    files = build()
    last = last_segment(files)
    torn = {**files, last: files[last] + b"\x07" * 10}
    fs = MemoryFS(torn)
    with WriteAheadLog.open(fs, read_only=True) as reader:
        assert reader.recovery.truncated_bytes == 10 and reader.last_lsn == 120
        assert len(records(reader)) == 120
    assert fs.files()[last] == torn[last]
