"""docs/FORMAT.md's golden vectors, and the record decoders' answers to damaged bytes."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strata import CorruptionError
from strata import _records as R
from strata._codec import encode_key, encode_value, keyspace_prefix

FORMAT_MD = Path(__file__).parent.parent / "docs" / "FORMAT.md"
TS = 1_700_000_000_000_000_000


def vector(name: str) -> bytes:
    text = FORMAT_MD.read_text()
    match = re.search(rf"### Vector {name}:[^\n]*\n\n```hex\n(.*?)```", text, flags=re.S)
    assert match, f"vector {name} missing from FORMAT.md"
    return bytes.fromhex(match.group(1))


KEY_A = encode_key(keyspace_prefix("default"), "a")
KEY_NUL = encode_key(keyspace_prefix("default"), b"\x00")
VALUE = encode_value({"n": 1})
RETENTION = b'{"n":2,"policy":"keep_last"}'


def test_commit_record_vector() -> None:
    ops = [(R.OP_PUT, KEY_A, VALUE), (R.OP_DELETE, KEY_NUL, None)]
    assert R.encode_commit(7, TS, ops) == vector("W1")
    assert R.decode_commit(vector("W1")) == (7, TS, ops)


def test_system_record_vector() -> None:
    ops = [(R.OP_SYSTEM, b"retention", RETENTION)]
    assert R.encode_commit(8, TS + 1, ops) == vector("W2")
    assert R.decode_commit(vector("W2")) == (8, TS + 1, ops)


def test_tree_entry_vectors() -> None:
    assert R.tree_key(KEY_A, 7) == vector("T1")
    assert R.split_tree_key(vector("T1")) == (KEY_A, 7)
    assert R.encode_entry(TS, VALUE) == vector("T2")
    assert R.decode_entry(vector("T2")) == (TS, VALUE, False)
    assert R.encode_entry(TS, None, pruned=True) == vector("T3")
    assert R.decode_entry(vector("T3")) == (TS, None, True)


def test_tree_keys_put_newer_versions_first() -> None:
    assert R.tree_key(KEY_A, 8) < R.tree_key(KEY_A, 7) < R.tree_key(KEY_A, 1)


def test_checkpoint_meta_vector() -> None:
    meta = R.CheckpointMeta(bytes(range(16)), bytes(20), 42, 7, TS, 0, 0, TS + 500_000_000)
    assert meta.encode() == vector("M1")
    assert R.CheckpointMeta.decode(vector("M1")) == meta


def test_every_truncation_of_a_commit_record_is_rejected() -> None:
    record = vector("W1")
    for cut in range(len(record)):
        with pytest.raises(CorruptionError):
            R.decode_commit(record[:cut])


def test_trailing_bytes_and_bad_fields_are_rejected() -> None:
    record = vector("W1")
    with pytest.raises(CorruptionError, match="after its last op"):
        R.decode_commit(record + b"\x00")
    with pytest.raises(CorruptionError, match="not a commit"):
        R.decode_commit(b"\x02" + record[1:])
    with pytest.raises(CorruptionError, match="version 0"):
        R.decode_commit(record[:1] + bytes(8) + record[9:])
    bad_op = bytearray(record)
    bad_op[21] = 9
    with pytest.raises(CorruptionError, match="unknown op"):
        R.decode_commit(bytes(bad_op))


def test_a_huge_op_count_is_rejected_before_any_allocation() -> None:
    record = bytearray(vector("W1"))
    record[17:21] = (2**32 - 1).to_bytes(4, "little")
    with pytest.raises(CorruptionError, match="claims"):
        R.decode_commit(bytes(record))


def test_meta_damage_is_rejected() -> None:
    good = vector("M1")
    for i in range(len(good)):
        damaged = bytearray(good)
        damaged[i] ^= 0x40
        with pytest.raises(CorruptionError):
            R.CheckpointMeta.decode(bytes(damaged))
    with pytest.raises(CorruptionError, match="expected 96"):
        R.CheckpointMeta.decode(good[:-1])


def test_entry_damage_is_rejected() -> None:
    with pytest.raises(CorruptionError, match="shorter"):
        R.decode_entry(b"\x00" * 8)
    with pytest.raises(CorruptionError, match="unknown flags"):
        R.decode_entry(b"\x80" + bytes(8))
    with pytest.raises(CorruptionError, match="carries a value"):
        R.decode_entry(b"\x01" + bytes(8) + b"x")
    with pytest.raises(CorruptionError, match="too short"):
        R.split_tree_key(b"12345678")


@given(st.binary(max_size=200))
def test_decoders_raise_only_corruption_errors(data: bytes) -> None:
    for decode in (R.decode_commit, R.decode_entry, R.CheckpointMeta.decode, R.split_tree_key):
        with contextlib.suppress(CorruptionError):
            decode(data)


def test_a_malformed_key_is_rejected() -> None:
    record = R.encode_commit(1, TS, [(R.OP_PUT, b"\x07default\x09a", VALUE)])
    with pytest.raises(CorruptionError, match="malformed encoded key"):
        R.decode_commit(record)


_KEYS = st.builds(
    lambda space, tag, rest: bytes([len(space)]) + space + bytes([tag]) + rest,
    st.binary(min_size=1, max_size=8),
    st.sampled_from([1, 2]),
    st.binary(max_size=30),
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([R.OP_PUT, R.OP_DELETE, R.OP_SYSTEM]), _KEYS, st.binary(max_size=60)
        ),
        max_size=20,
    ),
    st.integers(1, 2**64 - 1),
    st.integers(0, 2**64 - 1),
)
def test_commit_records_round_trip(
    ops: list[tuple[int, bytes, bytes]], version: int, ts: int
) -> None:
    shaped = [(op, key, None if op == R.OP_DELETE else value) for op, key, value in ops]
    assert R.decode_commit(R.encode_commit(version, ts, shaped)) == (version, ts, shaped)
