"""atheris target: strata's record decoders — WAL commit records, B+tree entries and
checkpoint meta — and recovery of a database whose WAL holds the fuzzed record.

The first input byte chooses the target: 0 a commit record, 1 a B+tree key and entry,
2 checkpoint meta (bit 7 repairs its CRC32C so the field checks are reached), 3 a whole
database opened on a MemoryFS whose WAL's last record carries the fuzzed payload.

Oracle: each decoder returns or raises ``CorruptionError``; a decoded commit re-encodes to
the same bytes; opening a database either succeeds (and ``verify()`` agrees) or raises a
``StrataError`` — never another exception, never a hang.

    python fuzz/fuzz_records.py -max_total_time=60
"""

from __future__ import annotations

import contextlib
import struct
import sys

import atheris

with atheris.instrument_imports():
    from crc32c import crc32c

    import strata
    from strata import _records as R
    from strata_testkit import MemoryFS
    from wal_db import WriteAheadLog


def _database_with(payload: bytes) -> MemoryFS:
    fs = MemoryFS()
    db = strata.open(fs, durability="always")
    db.kv.put("k", 1)
    db.close()
    with WriteAheadLog.open(fs, sync="always") as log:
        log.append(payload)
    return fs


def test_one_input(data: bytes) -> None:
    if not data:
        return
    which, body = data[0], data[1:]
    target = which & 3
    if target == 0:
        try:
            version, ts, ops = R.decode_commit(body)
        except strata.CorruptionError:
            return
        assert R.encode_commit(version, ts, ops) == body
    elif target == 1:
        for decode in (R.split_tree_key, R.decode_entry):
            with contextlib.suppress(strata.CorruptionError):
                decode(body)
    elif target == 2:
        meta = bytearray(body[: R.META_SIZE])
        if which & 0x80 and len(meta) == R.META_SIZE:
            struct.pack_into("<I", meta, R.META_SIZE - 4, crc32c(bytes(meta[:-4])))
        with contextlib.suppress(strata.CorruptionError):
            R.CheckpointMeta.decode(bytes(meta))
    else:
        fs = _database_with(body)
        try:
            db = strata.open(fs, durability="always")
        except strata.StrataError:
            return
        try:
            assert db.verify()["ok"]
        finally:
            db.close()


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
