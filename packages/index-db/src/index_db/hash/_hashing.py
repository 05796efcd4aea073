"""The index's hash function: part of the on-disk format, so it must never change.

``hash_key(key)`` is the first 8 bytes of BLAKE2b (``digest_size=8``, no key, no salt, no
person) read as a little-endian u64. Unlike Python's ``hash()`` it is the same in every
process and on every machine. The directory uses the low ``global depth`` bits; a bucket's
keys share its low ``local depth`` bits.

``HashIndex`` reads this module's ``hash_key`` once per instance, when it is constructed,
so a test can swap in a degenerate hash (every key colliding) by patching
``index_db.hash._hashing.hash_key`` before creating or opening an index.
"""

from __future__ import annotations

from hashlib import blake2b

__all__ = ["hash_key"]


def hash_key(key: bytes) -> int:
    """The stable 64-bit hash of ``key``."""
    return int.from_bytes(blake2b(key, digest_size=8).digest(), "little")
