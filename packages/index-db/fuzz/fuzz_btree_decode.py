"""atheris target: B+tree node decoding.

Oracle: decoding arbitrary bytes as a leaf or a branch either succeeds or raises
CorruptIndexError — nothing else — and a node that decodes re-encodes to a page that
decodes to the same entries.

    python fuzz/fuzz_btree_decode.py -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from index_db import CorruptIndexError
    from index_db.btree._node import decode_branch, decode_leaf, encode_branch, encode_leaf

PAYLOAD = 4096 - 32


def test_one_input(data: bytes) -> None:
    if not data:
        return
    page = data[1 : PAYLOAD + 1].ljust(PAYLOAD, b"\0")
    try:
        leaf = decode_leaf(page, 1)
    except CorruptIndexError:
        pass
    else:
        buf = bytearray(PAYLOAD)
        encode_leaf(memoryview(buf), leaf)
        again = decode_leaf(bytes(buf), 1)
        assert (again.keys, again.vals, again.next) == (leaf.keys, leaf.vals, leaf.next)
    try:
        node = decode_branch(page, 1, data[0] % 4 + 1)
    except CorruptIndexError:
        pass
    else:
        buf = bytearray(PAYLOAD)
        encode_branch(memoryview(buf), node)
        again_branch = decode_branch(bytes(buf), 1, node.level)
        assert (again_branch.keys, again_branch.children) == (node.keys, node.children)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
