"""Damaged files: any flipped byte, any truncation, arbitrary bytes.

The promise: a typed error when the damaged page is read (or the other superblock is
used when a superblock was hit) — never wrong data, never an unhandled exception.
"""

from __future__ import annotations

import pytest
from conftest import fill
from hypothesis import given, settings
from hypothesis import strategies as st

from page_db import InvalidPageIdError, MemoryFile, PageError, PageStore

PS = 4096
PAYLOAD = PS - 32


def build() -> tuple[bytes, dict[bytes, dict[int, bytes]]]:
    """A store with two checkpoints and uncommitted evictions since; models by meta."""
    file = MemoryFile()
    store = PageStore.open_file(file, pool_pages=2)
    ids = [store.allocate() for _ in range(6)]
    for pid in ids:
        with store.write(pid) as page:
            page.payload[:] = fill(pid, 1, PAYLOAD)
    store.free(ids[5])
    store.checkpoint(b"A")
    model_a = {pid: fill(pid, 1, PAYLOAD) for pid in ids[:5]}
    for pid in ids[:3]:
        with store.write(pid) as page:
            page.payload[:] = fill(pid, 2, PAYLOAD)
    store.free(ids[4])
    store.checkpoint(b"B")
    model_b = {pid: fill(pid, 2 if pid in ids[:3] else 1, PAYLOAD) for pid in ids[:4]}
    # Epoch 3, never checkpointed: these evictions reuse slots only checkpoint A used.
    for pid in ids[:4]:
        with store.write(pid) as page:
            page.payload[:] = fill(pid, 3, PAYLOAD)
    for pid in ids[:4]:
        with store.read(pid):
            pass
    image = file.getvalue()
    store.close()
    return image, {b"A": model_a, b"B": model_b}


IMAGE, MODELS = build()


def check_image(image: bytes) -> str:
    """Open and read everything; return what happened, failing on wrong data."""
    try:
        store = PageStore.open_file(MemoryFile(image), pool_pages=2)
    except PageError:
        return "open refused"
    assert store.meta in MODELS, f"unknown checkpoint {store.meta!r}"
    model = MODELS[store.meta]
    outcome = "clean"
    for pid, payload in model.items():
        try:
            with store.read(pid) as page:
                assert bytes(page.payload) == payload, f"wrong data for page {pid}"
        except InvalidPageIdError:
            raise
        except PageError:
            outcome = "read refused"
    return outcome


def test_intact_image_reads_checkpoint_b() -> None:
    assert check_image(IMAGE) == "clean"
    assert PageStore.open_file(MemoryFile(IMAGE)).meta == b"B"


@pytest.mark.slow
def test_every_single_flipped_byte_is_caught() -> None:
    outcomes: dict[str, int] = {}
    for offset in range(len(IMAGE)):
        damaged = bytearray(IMAGE)
        damaged[offset] ^= 0xFF
        outcome = check_image(bytes(damaged))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("open refused", 0) > 0
    assert outcomes.get("read refused", 0) > 0


def test_flip_in_newest_superblock_falls_back_and_never_shows_newer_pages() -> None:
    newest = 1  # checkpoints: 1 (creation, slot 1), A = 2 (slot 0), B = 3 (slot 1)
    assert IMAGE[newest * PS + 24] == 3
    damaged = bytearray(IMAGE)
    damaged[newest * PS + 40] ^= 0x01
    store = PageStore.open_file(MemoryFile(bytes(damaged)))
    assert store.meta == b"A"
    assert check_image(bytes(damaged)) == "read refused"  # A's slots reused since


@pytest.mark.slow
def test_truncation_at_every_boundary_and_mid_page() -> None:
    cuts = sorted(
        {
            c
            for k in range(len(IMAGE) // PS + 1)
            for c in (k * PS, k * PS + 1, k * PS + PS // 2, k * PS - 1)
            if 0 <= c < len(IMAGE)
        }
    )
    for cut in cuts:
        image = IMAGE[:cut]
        if cut == 0:
            # An empty file is a new store, by definition.
            assert PageStore.open_file(MemoryFile(image)).stats()["pages"] == 0
            continue
        check_image(image)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=6 * PS))
def test_arbitrary_files_give_typed_errors(raw: bytes) -> None:
    try:
        store = PageStore.open_file(MemoryFile(raw))
    except PageError:
        return
    stats = store.stats()  # pragma: no cover - random bytes never hold a valid superblock
    assert stats["pages"] >= 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(IMAGE) - 1), st.integers(1, 255)), min_size=1, max_size=8)
)
def test_random_multi_byte_damage(flips: list[tuple[int, int]]) -> None:
    damaged = bytearray(IMAGE)
    for offset, mask in flips:
        damaged[offset] ^= mask
    check_image(bytes(damaged))
