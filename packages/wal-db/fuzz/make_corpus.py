"""Write the seed corpus for fuzz_segments.py: small valid logs in several shapes.

python fuzz/make_corpus.py    # rewrites fuzz/fuzz_segments_corpus/
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from strata_testkit import MemoryFS
from wal_db import WriteAheadLog

OUT = Path(__file__).with_name("fuzz_segments_corpus")


def log_bytes(records: int, size: int, *, torn: bool) -> bytes:
    fs = MemoryFS()
    with WriteAheadLog.open(fs, segment_size=4096, sync="never") as log:
        for lsn in range(records):
            log.append(bytes([lsn % 251]) * (size + lsn % 7))
    segments = [data for name, data in sorted(fs.files().items()) if name.endswith(".wal")]
    if torn:
        segments[-1] = segments[-1][:-5]
    # flags byte 0: keep headers and CRCs as they are; pieces split by the separator
    return b"\x00" + b"\xf0\x0d".join(segments[:3])


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    for records, size, torn in [
        (0, 0, False),
        (3, 10, False),
        (20, 30, True),
        (90, 60, False),
        (200, 40, True),
    ]:
        data = log_bytes(records, size, torn=torn)
        (OUT / hashlib.sha1(data).hexdigest()).write_bytes(data)


if __name__ == "__main__":
    main()
