"""atheris target: vector snapshot payloads and vector operations.

Oracle: loading arbitrary bytes as a FlatIndex or HNSWIndex payload, or applying them as an
operation, either succeeds or raises CorruptIndexError -- nothing else; an HNSW payload
that loads passes verify(), and every loaded payload re-encodes to the same bytes.
The first input byte picks the target; the seed corpus is the golden payloads of
docs/FORMAT.md, so mutations start from well-formed bytes.

    python fuzz/fuzz_vector.py -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from index_db import CorruptIndexError, FlatIndex, HNSWIndex

GOLDEN_HNSW = bytes.fromhex(
    "495856530201000002000000020000000100000000000000"
    "020004000800000004000000010000000100000005000000000000000001"
    "07000000000000000100000000000000610000803f000000400000003f000080bf0001"
    "01000000ffffffffffffffffffffffff00000000ffffffffffffffffffffffff"
    "0000803e0000807f0000807f0000807f0000803e0000807f0000807f0000807f"
    "ffffffffffffffff0000807f0000807f"
)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    selector, body = data[0] % 4, data[1:]
    if selector == 3:  # splice into the golden payload, to reach the graph checks
        body = GOLDEN_HNSW[: len(GOLDEN_HNSW) - len(body)] + body
    if selector in (0, 1, 3):
        index = FlatIndex(2, "dot") if selector == 0 else HNSWIndex(2, "dot")
        try:
            index.load_snapshot(body, 1)
        except CorruptIndexError:
            return
        if isinstance(index, HNSWIndex):
            index.verify()
        assert b"".join(index.to_snapshot()) == body
        return
    flat = FlatIndex(2, "euclidean")
    try:
        flat.apply(body)
    except CorruptIndexError:
        assert len(flat) == 0


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
