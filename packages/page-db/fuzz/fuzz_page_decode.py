"""atheris target: page decoding (header checks and every page-body decoder).

Oracle: decoding arbitrary bytes either succeeds or raises CorruptPageError — nothing
else — and a page that decodes re-encodes to the same bytes.

    python fuzz/fuzz_page_decode.py -max_total_time=60
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from page_db import CorruptPageError, _codec
    from page_db import _layout as L

PS = 4096


def reseal(data: bytes) -> bytes:
    """Give the fuzzer a page with a correct CRC so it can explore past the checksum."""
    page = bytearray(data[:PS].ljust(PS, b"\0"))
    L.CRC_STRUCT.pack_into(page, L.CRC_OFFSET, _codec.page_crc(page))
    return bytes(page)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    page = reseal(data[1:]) if data[0] & 1 else data[1:]
    slot = data[0] >> 1
    try:
        sb = _codec.decode_superblock(page, slot, PS)
    except CorruptPageError:
        pass
    else:
        assert bytes(_codec.encode_superblock(sb, slot)) == page
    try:
        entries = _codec.decode_page_table_page(
            page, page_size=PS, slot=slot, max_epoch=2**64 - 1, level=0
        )
    except CorruptPageError:
        pass
    else:
        (epoch,) = L.LSN_STRUCT.unpack_from(page, 24)
        assert bytes(_codec.encode_page_table_page(PS, slot, epoch, 0, entries)) == page
    try:
        next_slot, ids = _codec.decode_free_list_page(
            page, page_size=PS, slot=slot, max_epoch=2**64 - 1
        )
    except CorruptPageError:
        pass
    else:
        (epoch,) = L.LSN_STRUCT.unpack_from(page, 24)
        assert bytes(_codec.encode_free_list_page(PS, slot, epoch, next_slot, ids)) == page
    with contextlib.suppress(CorruptPageError):
        _codec.check_page(
            page,
            page_size=PS,
            page_type=L.PAGE_TYPE_DATA,
            page_id=slot,
            max_epoch=2**64 - 1,
            slot=slot,
            logical=True,
        )


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
