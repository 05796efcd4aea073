"""Keys, values and request distributions shared by every workload.

Record ``i`` has key ``b"user" + 12 decimal digits`` (16 bytes, so key order is index
order) and a 100-byte value cut from one seeded random buffer, so values are
incompressible and cost nothing to generate. A workload draws record indexes from a
uniform or a scrambled Zipfian distribution (YCSB's default: theta 0.99, hot records
spread over the key space by hashing rather than clustered at the low keys).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

KEY_SIZE = 16
VALUE_SIZE = 100
RECORD_BYTES = KEY_SIZE + VALUE_SIZE
ZIPF_THETA = 0.99
_POOL = np.random.default_rng(20261121).bytes(1 << 20)
_POOL_SPAN = len(_POOL) - VALUE_SIZE


def key(index: int) -> bytes:
    """The key of record ``index``."""
    return b"user%012d" % index


def value(index: int, generation: int = 0) -> bytes:
    """A 100-byte value for record ``index`` (``generation`` varies it for updates)."""
    start = (index * 7919 + generation * 104_729) % _POOL_SPAN
    return _POOL[start : start + VALUE_SIZE]


def batches(first: int, stop: int, size: int) -> Iterator[list[tuple[bytes, bytes]]]:
    """Records ``first..stop-1`` in key order, in lists of ``size`` pairs."""
    for low in range(first, stop, size):
        yield [(key(i), value(i)) for i in range(low, min(low + size, stop))]


def uniform(rng: np.random.Generator, records: int, count: int) -> list[int]:
    """``count`` record indexes drawn uniformly from ``0..records-1``."""
    return [int(i) for i in rng.integers(0, records, size=count)]


def zipfian(rng: np.random.Generator, records: int, count: int) -> list[int]:
    """``count`` record indexes from YCSB's scrambled Zipfian over ``0..records-1``."""
    ranks = np.arange(1, records + 1, dtype=np.float64)
    weights = ranks**-ZIPF_THETA
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    drawn = np.searchsorted(cdf, rng.random(count), side="left")
    # Scramble: rank r (0 = hottest) maps to a pseudo-random record via a multiplicative
    # hash, so the hot set is spread over the key space (YCSB's ScrambledZipfian).
    scrambled = (drawn.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)
    return [int(i) for i in scrambled % np.uint64(records)]
