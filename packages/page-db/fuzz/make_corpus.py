"""Write the seed corpus for fuzz_open.py: small valid stores in several shapes.

python fuzz/make_corpus.py    # rewrites fuzz/fuzz_open_corpus/
"""

from __future__ import annotations

from pathlib import Path

from page_db import MemoryFile, PageStore

OUT = Path(__file__).with_name("fuzz_open_corpus")


def image(pages: int, freed: int, checkpoints: int) -> bytes:
    file = MemoryFile()
    store = PageStore.open_file(file, pool_pages=2)
    ids = [store.allocate() for _ in range(pages)]
    for round_ in range(checkpoints):
        for pid in ids:
            with store.write(pid) as page:
                page.payload[:8] = bytes([round_]) * 8
        store.checkpoint(b"m%d" % round_)
    for pid in ids[:freed]:
        store.free(pid)
    store.checkpoint(b"end")
    return file.getvalue()


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    shapes = [(0, 0, 1), (1, 0, 1), (3, 1, 2), (5, 2, 1), (4, 0, 3)]
    for pages, freed, checkpoints in shapes:
        name = f"store-{pages}p-{freed}f-{checkpoints}c"
        # First byte: 0 = open as is (1 would reseal CRCs, needless for valid seeds).
        (OUT / name).write_bytes(b"\0" + image(pages, freed, checkpoints))


if __name__ == "__main__":
    main()
