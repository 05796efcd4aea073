"""Crash-state generation: torn writes, subsets, budget, dedup, determinism."""

from __future__ import annotations

import re

import pytest

from strata_testkit import CrashFS, CrashState

SECTOR = 512


def one_pending_write(base: bytes, offset: int, data: bytes) -> CrashFS:
    fs = CrashFS({"f": base})
    fs.open("f").pwrite(data, offset)
    return fs


def many_pending_writes(count: int = 12) -> CrashFS:
    fs = CrashFS({"f": bytes(count * 1024)})
    f = fs.open("f")
    for i in range(count):
        f.pwrite(bytes([65 + i]) * 1024, i * 1024)
    return fs


def padded(image: bytes, length: int) -> bytes:
    return image + bytes(length - len(image))


def sector_slices(offset: int, end: int, size: int) -> list[slice]:
    first, last = offset // size, (end - 1) // size
    return [slice(max(offset, s * size), min(end, (s + 1) * size)) for s in range(first, last + 1)]


@pytest.mark.parametrize("sector_size", [512, 4096, 100])
def test_torn_write_changes_only_whole_sectors_inside_its_range(sector_size: int) -> None:
    offset, data = 1000, bytes(range(256)) * 40  # 10240 bytes, unaligned both ends
    base = b"\xee" * 16384
    fs = one_pending_write(base, offset, data)
    end = offset + len(data)
    post = fs.files()["f"]
    states = list(fs.crash_states(max_states=64, sector_size=sector_size))
    torn = [s for s in states if s.variant == "torn"]
    assert torn, "a write over many sectors must produce torn states"
    for state in torn:
        image = state.files["f"]
        assert image[:offset] == base[:offset]
        assert image[end:] == base[end:]
        kinds = []
        for part in sector_slices(offset, end, sector_size):
            assert image[part] in (base[part], post[part]), state.description
            kinds.append(image[part] == post[part])
        assert any(kinds) and not all(kinds), "torn = non-empty proper subset of sectors"


def test_trashed_write_keeps_bytes_outside_its_range() -> None:
    base = b"\xee" * 4096
    fs = one_pending_write(base, 700, b"\x11" * 1500)
    trashed = [s for s in fs.crash_states(max_states=64) if s.variant == "trashed"]
    assert trashed
    for state in trashed:
        image = state.files["f"]
        assert image[:700] == base[:700]
        assert image[2200:] == base[2200:]
        assert "garbage [" in state.description


def test_every_torn_state_differs_from_drop_and_keep() -> None:
    fs = many_pending_writes()
    states = list(fs.crash_states(max_states=200))
    drop, keep = states[0].files, states[1].files
    torn = [s for s in states if s.variant in ("torn", "trashed")]
    assert len(torn) >= 12
    for state in torn:
        assert state.files not in (drop, keep)


def test_torn_extending_write_leaves_zeros_in_unwritten_sectors() -> None:
    fs = one_pending_write(b"\xee" * 1000, 1500, b"\x77" * 2000)  # gap 1000..1500
    torn = [s for s in fs.crash_states(max_states=64) if s.variant == "torn"]
    assert torn
    for state in torn:
        image = state.files["f"]
        assert len(image) == 3500
        assert image[:1000] == b"\xee" * 1000
        assert image[1000:1500] == bytes(500)
        for part in sector_slices(1500, 3500, SECTOR):
            width = part.stop - part.start
            assert image[part] in (bytes(width), b"\x77" * width)


def test_single_sector_write_is_only_trashed_never_torn() -> None:
    fs = one_pending_write(bytes(512), 0, b"\x01" * 512)
    variants = [s.variant for s in fs.crash_states(max_states=64)]
    assert variants == ["drop", "keep", "trashed"]


def test_torn_states_keep_earlier_pending_ops_and_drop_later_ones() -> None:
    fs = CrashFS({"f": bytes(2048), "g": b"g0"})
    f, g = fs.open("f"), fs.open("g")
    g.pwrite(b"g1", 0)  # pending op 0
    f.pwrite(b"\x01" * 2048, 0)  # pending op 1: the torn one
    g.pwrite(b"g2", 0)  # pending op 2
    torn = [s for s in fs.crash_states(max_states=64) if s.variant == "torn"]
    assert torn
    for state in torn:
        assert state.description.startswith("torn-1 ")
        assert state.files["g"] == b"g1"


def test_drop_and_keep_come_first() -> None:
    states = list(many_pending_writes().crash_states())
    assert [s.variant for s in states[:2]] == ["drop", "keep"]
    assert states[0].description.startswith("drop: ")
    assert states[1].description.startswith("keep ")


@pytest.mark.parametrize("max_states", [1, 2, 3, 7, 32])
def test_max_states_is_respected_and_reached(max_states: int) -> None:
    states = list(many_pending_writes().crash_states(max_states=max_states))
    assert len(states) == max_states
    if max_states == 1:
        assert states[0].variant == "drop"


def test_no_image_is_yielded_twice() -> None:
    fs = CrashFS({"f": bytes(4096)})
    f = fs.open("f")
    for _ in range(6):
        f.pwrite(b"\x00" * 1024, 1024)  # rewrites that change nothing collapse into drop
        f.pwrite(b"\x01" * 2048, 0)
    states = list(fs.crash_states(max_states=100))
    images = [tuple(s.files.items()) for s in states]
    assert len(images) == len(set(images))


def test_budget_mixes_prefixes_torn_writes_and_subsets() -> None:
    states = list(many_pending_writes(30).crash_states(max_states=32))
    variants = {s.variant for s in states}
    assert {"drop", "keep", "prefix", "subset"} <= variants
    assert variants & {"torn", "trashed"}
    prefixes = [s.description for s in states if s.variant == "prefix"]
    assert prefixes[0].startswith("prefix-1 ")
    assert prefixes[-1].startswith("prefix-29 ")


def test_same_seed_gives_same_states_and_another_seed_differs() -> None:
    def run(seed: int) -> list[tuple[str, dict[str, bytes]]]:
        fs = many_pending_writes()
        return [(s.description, s.files) for s in fs.crash_states(seed=seed, max_states=40)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_subset_states_reorder_writes_but_keep_each_write_whole() -> None:
    fs = many_pending_writes(10)
    subsets = [s for s in fs.crash_states(max_states=64) if s.variant == "subset"]
    assert subsets
    out_of_order = False
    for state in subsets:
        image = state.files["f"]
        survived = [image[i * 1024 : (i + 1) * 1024] != bytes(1024) for i in range(10)]
        for i, kept in enumerate(survived):
            expected = bytes([65 + i]) * 1024 if kept else bytes(1024)
            assert image[i * 1024 : (i + 1) * 1024] == expected
        out_of_order |= survived != sorted(survived, reverse=True)
    assert out_of_order, "random subsets must include non-prefix survivor sets"


def test_directory_ops_survive_as_a_prefix_in_subsets() -> None:
    fs = CrashFS()
    for name in ("a", "b", "c", "d"):
        fs.open(name).pwrite(name.encode(), 0)
    for state in fs.crash_states(max_states=64):
        names = list(state.files)
        assert names == ["a", "b", "c", "d"][: len(names)], state.description


def test_description_names_the_crash_point_and_survivors() -> None:
    fs = CrashFS({"f": bytes(1024)})
    f = fs.open("f")
    f.pwrite(b"\x01" * 1024, 0)  # 0
    f.pwrite(b"\x02" * 1024, 0)  # 1
    f.fsync()  # 2
    states: list[CrashState] = list(fs.crash_states(2, max_states=64))
    texts = {s.variant: s.description for s in states}
    assert all("power lost before trace op 2 Fsync(file='f'" in t for t in texts.values())
    assert texts["prefix"].startswith("prefix-1 (first 1 pending [0] survive)")
    assert re.search(r"trace op \d Write\(file='f'", texts["torn"])
    assert "torn at 512-byte sectors: new [" in texts["torn"]
    assert states[-1].at == 2
