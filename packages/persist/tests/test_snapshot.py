"""save / load / open_snapshot: round trips, arguments, atomicity and typed errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import COMPRESSIONS, load_bytes, reseal, snapshot_bytes

import persist_db
from persist_db import (
    CompressionUnavailableError,
    CorruptSnapshotError,
    PayloadTooLargeError,
    UnsupportedFormatError,
    WrongKindError,
    _compress,
    load,
    open_snapshot,
    save,
)
from strata_testkit import CrashFS, Fsync, FsyncDir, MemoryFS, Rename

PAYLOADS = [b"", b"x", bytes(range(256)) * 40, os.urandom(5000) + b"z" * 300_000]


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: f"{len(p)}B")
def test_round_trip_whole_chunked_and_streamed(
    tmp_path: Path, compression: str | None, payload: bytes
) -> None:
    path = tmp_path / "a.snap"
    meta = {"rows": 3, "name": "ünï", "f": 1.5, "l": [None, True]}
    info = save(path, payload, kind="vec", version=7, compression=compression, meta=meta)
    assert (info.kind, info.version, info.payload_length) == ("vec", 7, len(payload))
    snap = load(path, kind="vec")
    assert (snap.payload, snap.version, snap.meta, snap.kind) == (payload, 7, meta, "vec")
    assert snap.info.compression == compression and snap.info.format_version == "1.0"
    assert snap.created == info.created
    chunks = [payload[i : i + 70_001] for i in range(0, len(payload), 70_001)]
    save(path, iter(chunks), kind="vec", compression=compression)
    assert load(path).payload == payload
    with open_snapshot(path, kind="vec") as reader:
        assert reader.info.payload_length == len(payload)
        assert b"".join(reader.chunks()) == payload
    assert sorted(os.listdir(tmp_path)) == ["a.snap"]  # no temporary file left


def test_payload_may_be_bytearray_memoryview_or_typed_buffer(tmp_path: Path) -> None:
    path = tmp_path / "b.snap"
    wide = memoryview(bytearray(range(16))).cast("I")  # 4 items of 4 bytes
    for payload in (bytearray(b"abc"), memoryview(b"abcdef")[1:4], wide):
        save(path, payload, kind="k")
        assert load(path).payload == bytes(payload)
    save(path, [bytearray(b"ab"), memoryview(b"cd"), wide], kind="k")
    assert load(path).payload == b"abcd" + bytes(wide)


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "c.snap"
    save(path, b"old", kind="k")

    def chunks() -> Iterator[bytes]:
        yield b"new"
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError):
        save(path, chunks(), kind="k")
    with pytest.raises(TypeError, match="chunk"):
        save(path, [b"a", "text"], kind="k")  # type: ignore[list-item]
    assert load(path).payload == b"old"
    assert os.listdir(tmp_path) == ["c.snap"]


def test_save_goes_through_the_fs_seam_and_fsyncs_before_renaming() -> None:
    fs = CrashFS()
    save("x.snap", b"payload", kind="k", fs=fs)
    kinds = [type(op) for op in fs.trace]
    assert kinds.index(Fsync) < kinds.index(Rename) < kinds.index(FsyncDir)
    assert fs.durable_files(len(fs.trace)).keys() == {"x.snap"}
    assert load("x.snap", fs=fs).payload == b"payload"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"kind": ""}, ValueError),
        ({"kind": "k" * 17}, ValueError),
        ({"kind": "tab\t"}, ValueError),
        ({"kind": "é"}, ValueError),
        ({"kind": 5}, TypeError),
        ({"kind": "k", "version": 0}, ValueError),
        ({"kind": "k", "version": 65536}, ValueError),
        ({"kind": "k", "version": True}, TypeError),
        ({"kind": "k", "compression": "gzip"}, ValueError),
        ({"kind": "k", "level": 3}, ValueError),
        ({"kind": "k", "compression": "zstd", "level": 23}, ValueError),
        ({"kind": "k", "compression": "lz4", "level": "9"}, TypeError),
        ({"kind": "k", "meta": {"x": float("nan")}}, ValueError),
        ({"kind": "k", "meta": {"x": object()}}, TypeError),
        ({"kind": "k", "meta": "m" * (1 << 20)}, ValueError),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        save(tmp_path / "d.snap", b"p", **kwargs)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_a_str_payload_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="payload"):
        save(tmp_path / "e.snap", "text", kind="k")


def test_kind_and_max_payload_checks(tmp_path: Path) -> None:
    path = tmp_path / "f.snap"
    save(path, b"x" * 100, kind="hnsw")
    with pytest.raises(WrongKindError, match="hnsw"):
        load(path, kind="flat")
    with pytest.raises(PayloadTooLargeError):
        load(path, max_payload=99)
    with pytest.raises(PayloadTooLargeError):
        open_snapshot(path, max_payload=99)
    assert load(path, max_payload=100).payload == b"x" * 100


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.snap")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "no-dir" / "nope.snap")


def test_lz4_missing_gives_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    data = snapshot_bytes(b"abc" * 100, compression="lz4")
    monkeypatch.setattr(_compress, "lz4_frame", None)
    with pytest.raises(CompressionUnavailableError, match=r"persist-db\[lz4\]"):
        save("x", b"p", kind="k", compression="lz4", fs=MemoryFS())
    with pytest.raises(CompressionUnavailableError):
        load_bytes(data)
    assert issubclass(CompressionUnavailableError, persist_db.PersistError)


def test_newer_format_versions_are_unsupported_not_corrupt() -> None:
    data = snapshot_bytes(b"payload")
    assert load_bytes(reseal(data, minor=0)).payload == b"payload"
    for fields in ({"major": 2}, {"major": 0}, {"minor": 1}):
        with pytest.raises(UnsupportedFormatError, match="format"):
            load_bytes(reseal(data, **fields))


def test_stream_reader_reports_corruption_before_handing_out_data() -> None:
    data = bytearray(snapshot_bytes(os.urandom(3 << 20)))
    data[len(data) // 2] ^= 1
    fs = MemoryFS({"s.snap": bytes(data)})
    with pytest.raises(CorruptSnapshotError, match="payload CRC32C"):
        open_snapshot("s.snap", fs=fs)
    with open_snapshot("s.snap", fs=fs, verify=False) as reader:
        with pytest.raises(CorruptSnapshotError, match="payload CRC32C"):
            for _ in reader.chunks():
                pass
        with pytest.raises(ValueError, match="once"):
            next(reader.chunks())


def test_errors_say_what_failed_and_where() -> None:
    data = bytearray(snapshot_bytes(b"abcdef", meta={"a": 1}))
    data[-1] ^= 0xFF
    with pytest.raises(CorruptSnapshotError) as caught:
        load_bytes(bytes(data))
    err = caught.value
    assert err.reason == "payload CRC32C mismatch" and err.offset == 80 + len(b'{"a":1}')
    assert "s.snap" in str(err) and "offset" in str(err)
