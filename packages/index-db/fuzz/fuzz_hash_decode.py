"""atheris target: the hash index's page decoders (bucket, root, directory).

Oracle: decoding arbitrary payload bytes either succeeds or raises CorruptIndexError —
nothing else — and a payload that decodes re-encodes to the same bytes (zero-padded).

    python fuzz/fuzz_hash_decode.py -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from index_db.errors import CorruptIndexError
    from index_db.hash import _codec

PAYLOAD = 4096 - 32
MAX_DEPTH = 19


def padded(data: bytes) -> bytes:
    return data + bytes(PAYLOAD - len(data))


def test_one_input(data: bytes) -> None:
    if not data:
        return
    # The first byte picks where the fuzzer's bytes go, so short inputs reach every field.
    payload = padded(data[1 : PAYLOAD + 1])
    try:
        bucket = _codec.decode_bucket(payload, 7, MAX_DEPTH)
    except CorruptIndexError:
        pass
    else:
        assert padded(_codec.encode_bucket(bucket)) == payload
    try:
        root = _codec.decode_root(payload, 7, MAX_DEPTH)
    except CorruptIndexError:
        pass
    else:
        assert padded(_codec.encode_root(root)) == payload
    first, count = (data[0] >> 4) * 1012, (data[0] & 0xF) + 1
    try:
        slots = _codec.decode_directory(payload, 7, first, count)
    except CorruptIndexError:
        pass
    else:
        assert padded(_codec.encode_directory(first, slots)) == payload


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
