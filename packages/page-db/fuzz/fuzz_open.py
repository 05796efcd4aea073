"""atheris target: opening a store from arbitrary file bytes.

Exercises superblock selection, page-table loading and free-list loading. Half the inputs
get every page's CRC recomputed first, so the fuzzer reaches the structural checks (slot
bounds, shared slots, cycles, counts) instead of stopping at the checksum.

Oracle: open either succeeds or raises a PageError subclass; when it succeeds, every
allocated page either reads or raises CorruptPageError. No other exception, no hang, no
allocation beyond what the file's size allows.

    python fuzz/fuzz_open.py -max_total_time=60 fuzz/fuzz_open_corpus
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from page_db import CorruptPageError, MemoryFile, PageError, PageStore, _codec
    from page_db import _layout as L

PS = 4096
MAX_SLOTS = 24


def reseal_all(image: bytes) -> bytes:
    out = bytearray(image)
    for start in range(0, len(out) - PS + 1, PS):
        page = out[start : start + PS]
        if page[:4] == L.MAGIC:
            L.CRC_STRUCT.pack_into(page, L.CRC_OFFSET, _codec.page_crc(page))
            out[start : start + PS] = page
    return bytes(out)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    image = data[1 : 1 + MAX_SLOTS * PS]
    if data[0] & 1:
        image = reseal_all(image)
    try:
        store = PageStore.open_file(MemoryFile(image), pool_pages=4)
    except PageError:
        return
    stats = store.stats()
    for page_id in range(1, min(stats["pages"] + stats["free_ids"], 64) + 1):
        try:
            with store.read(page_id) as page:
                bytes(page.payload[:8])
        except CorruptPageError:
            pass
        except PageError as exc:  # freed ids are fine; anything else is a finding
            if type(exc).__name__ != "InvalidPageIdError":
                raise


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
