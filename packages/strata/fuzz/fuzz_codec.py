"""atheris target: strata's key and value decoders (``strata._codec``).

The first input byte chooses what the rest is fed to: bit 0 clear, ``decode_value``;
bit 0 set, ``decode_key`` and, split in two at the second byte, the key order and scan
bounds of two bytes keys.

Oracle: ``decode_value`` returns or raises ``CorruptionError``, nothing else; whatever it
returns, ``encode_value`` accepts, and encoding is then stable (encode, decode, encode gives
the same bytes). ``decode_key`` returns or raises ``CorruptionError``; what it returns
encodes back to the same bytes. Encoded bytes keys order as their keys do, and the prefix
scan bounds hold a key exactly when it starts with the prefix. No other exception, no hang,
no allocation beyond a small multiple of the input (libFuzzer's ``-rss_limit_mb``).

    python fuzz/fuzz_codec.py -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from strata._codec import (
        decode_key,
        decode_value,
        encode_key,
        encode_value,
        keyspace_prefix,
        scan_bounds,
    )
    from strata.errors import CorruptionError


def check_value(data: bytes) -> None:
    try:
        value = decode_value(data)
    except CorruptionError:
        return
    encoded = encode_value(value)
    assert encode_value(decode_value(encoded)) == encoded, "encoding is not stable"


def check_key(data: bytes) -> None:
    try:
        name, key = decode_key(data)
    except CorruptionError:
        return
    assert encode_key(keyspace_prefix(name), key) == data, "decode_key does not invert"


def check_order(data: bytes) -> None:
    cut = data[0] % (len(data) + 1) if data else 0
    a, b = data[1 : 1 + cut][:512], data[1 + cut :][:512]
    prefix = keyspace_prefix("fuzz")
    ea, eb = encode_key(prefix, a), encode_key(prefix, b)
    assert (a < b) == (ea < eb), "bytes key order not kept"
    lo, hi = scan_bounds(prefix, key_prefix=a)
    assert hi is not None
    assert (lo <= eb < hi) == b.startswith(a), "prefix bounds disagree with startswith"
    lo, hi = scan_bounds(prefix, start=a)
    assert (lo <= eb and (hi is None or eb < hi)) == (b >= a), "start bound disagrees"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    if data[0] & 1 == 0:
        check_value(data[1:])
    else:
        check_key(data[1:])
        check_order(data[1:])


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
