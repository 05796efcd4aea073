"""Write the seed corpus for fuzz_snapshot.py: small valid snapshots in several shapes.

python fuzz/make_corpus.py    # rewrites fuzz/fuzz_snapshot_corpus/
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from persist_db import save
from strata_testkit import MemoryFS

OUT = Path(__file__).with_name("fuzz_snapshot_corpus")

# Inputs that once failed, kept as seeds. 1: a zstd frame declaring content size 0 whose
# RLE block lacks its byte; load accepted it, the streaming reader did not.
REGRESSIONS = [
    "07535452534e500d0a01000000500000000000010466757a7a000000000000000000000000030000000000000000000000090000000000000000000000000000005db06578981bea1838df9a8694b71bdc28b52ffd2000fb0000",
]


def snapshot(payload: bytes | list[bytes], compression: str | None, meta: object) -> bytes:
    fs = MemoryFS()
    save("s.snap", payload, kind="fuzz", version=3, compression=compression, meta=meta, fs=fs)
    return fs.files()["s.snap"]


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    text = b"the quick brown fox " * 20
    for compression in (None, "zstd", "lz4"):
        for payload, meta in [
            (b"", None),
            (text, {"n": 1, "tags": ["a", "b"]}),
            ([text[:100], text[100:]], None),  # streamed: a frame without a content size
        ]:
            # flags byte 0x07: repair every checksum, so mutations reach the field checks
            for flags in (b"\x00", b"\x07"):
                data = flags + snapshot(payload, compression, meta)
                (OUT / hashlib.sha1(data).hexdigest()).write_bytes(data)
    for text in REGRESSIONS:
        data = bytes.fromhex(text)
        (OUT / hashlib.sha1(data).hexdigest()).write_bytes(data)


if __name__ == "__main__":
    main()
