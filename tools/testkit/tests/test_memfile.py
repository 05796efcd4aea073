"""MemoryFile: the file protocol over one bytearray."""

from __future__ import annotations

import pytest

from strata_testkit import FileProtocol, MemoryFile


def test_fits_the_file_protocol() -> None:
    assert isinstance(MemoryFile(), FileProtocol)


def test_initial_content_and_getvalue() -> None:
    f = MemoryFile(b"hello")
    assert f.size() == 5
    assert f.getvalue() == b"hello"


@pytest.mark.parametrize(
    ("size", "offset", "expected"),
    [(5, 0, b"hello"), (3, 1, b"ell"), (10, 3, b"lo"), (4, 5, b""), (4, 99, b""), (0, 0, b"")],
)
def test_pread_is_short_at_eof_and_empty_beyond(size: int, offset: int, expected: bytes) -> None:
    assert MemoryFile(b"hello").pread(size, offset) == expected


def test_pwrite_overwrites_extends_and_returns_length() -> None:
    f = MemoryFile(b"hello")
    assert f.pwrite(b"J", 0) == 1
    assert f.pwrite(bytearray(b"LOW"), 3) == 3
    assert f.getvalue() == b"JelLOW"


def test_pwrite_past_eof_zero_fills_the_gap() -> None:
    f = MemoryFile(b"ab")
    f.pwrite(memoryview(b"xy"), 5)
    assert f.getvalue() == b"ab\x00\x00\x00xy"


def test_empty_pwrite_past_eof_does_not_extend() -> None:
    f = MemoryFile(b"ab")
    assert f.pwrite(b"", 10) == 0
    assert f.size() == 2


def test_truncate_shrinks_and_zero_extends() -> None:
    f = MemoryFile(b"abcdef")
    f.truncate(2)
    assert f.getvalue() == b"ab"
    f.truncate(4)
    assert f.getvalue() == b"ab\x00\x00"


@pytest.mark.parametrize(
    "call",
    [
        lambda f: f.pread(1, 0),
        lambda f: f.pwrite(b"x", 0),
        lambda f: f.fsync(),
        lambda f: f.size(),
        lambda f: f.truncate(0),
    ],
)
def test_operations_on_a_closed_file_raise_value_error(call: object) -> None:
    f = MemoryFile(b"data")
    f.close()
    f.close()  # closing twice is harmless
    assert f.closed
    with pytest.raises(ValueError, match="closed"):
        call(f)  # type: ignore[operator]
    assert f.getvalue() == b"data"


def test_bad_arguments_are_rejected_without_change() -> None:
    f = MemoryFile(b"abc")
    with pytest.raises(ValueError):
        f.pread(-1, 0)
    with pytest.raises(ValueError):
        f.pwrite(b"x", -1)
    with pytest.raises(ValueError):
        f.truncate(-1)
    with pytest.raises(TypeError):
        f.pwrite("text", 0)  # type: ignore[arg-type]
    assert f.getvalue() == b"abc"
