"""Key and value encoding (strata._codec): round trips, rejections, order, golden vectors."""

from __future__ import annotations

import array
import collections
import enum
import math
import re
import struct
import threading
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strata._codec import (
    MAX_DEPTH,
    MAX_KEY_BYTES,
    MAX_KEYSPACE_BYTES,
    MAX_VALUE_BYTES,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
    keyspace_prefix,
    next_prefix,
    scan_bounds,
    user_key,
    user_keys,
)
from strata.errors import (
    CorruptionError,
    KeyTooLargeError,
    StrataUsageError,
    ValueTooLargeError,
    ValueTypeError,
)

DOCS = Path(__file__).parent.parent / "docs"
USERS = keyspace_prefix("users")

# The golden vectors of the FORMAT document: any change to these bytes is a format change.
VALUE_VECTORS: list[tuple[object, str]] = [
    (None, "c0"),
    (True, "c3"),
    (False, "c2"),
    (0, "00"),
    (127, "7f"),
    (128, "cc80"),
    (-1, "ff"),
    (-32, "e0"),
    (-33, "d0df"),
    (65535, "cdffff"),
    (2**32, "cf0000000100000000"),
    (2**63 - 1, "cf7fffffffffffffff"),
    (-(2**63), "d38000000000000000"),
    (1.5, "cb3ff8000000000000"),
    (-0.0, "cb8000000000000000"),
    (math.inf, "cb7ff0000000000000"),
    ("", "a0"),
    ("é", "a2c3a9"),
    (b"", "c400"),
    (b"\x00\xff", "c40200ff"),
    ([], "90"),
    ([1, "a"], "9201a161"),
    ({}, "80"),
    ({"a": [None, b"x"]}, "81a16192c0c40178"),
    ({"b": 1, "a": 2}, "82a16201a16102"),
]
KEY_VECTORS: list[tuple[str | bytes, str]] = [
    (b"", "05757365727301"),
    (b"\x00\xff", "0575736572730100ff"),
    ("a", "0575736572730261"),
    ("é", "05757365727302c3a9"),
    ("\U0010ffff", "05757365727302f48fbfbf"),
]


def doc_table(title: str) -> list[tuple[str, str]]:
    """Rows (python literal, hex) of the golden table under heading ``title``."""
    for name in ("FORMAT.md",):
        path = DOCS / name
        if path.exists() and title in path.read_text(encoding="utf-8"):
            section = path.read_text(encoding="utf-8").split(title, 1)[1].split("\n#", 1)[0]
            return re.findall(r"^\| `(.+?)` \| `([0-9a-f]+)` \|$", section, flags=re.M)
    raise AssertionError(f"no document under {DOCS} holds {title!r}")


# ---- golden vectors -----------------------------------------------------------------------


def test_golden_values_match_the_format_document() -> None:
    rows = doc_table("### Golden vectors: values")
    assert rows == [(repr(value), hexed) for value, hexed in VALUE_VECTORS]


def test_golden_keys_match_the_format_document() -> None:
    assert USERS.hex() == "057573657273"
    rows = doc_table("### Golden vectors: keys")
    assert rows == [(repr(key), hexed) for key, hexed in KEY_VECTORS]


@pytest.mark.parametrize(("value", "hexed"), VALUE_VECTORS)
def test_golden_value_vector(value: object, hexed: str) -> None:
    assert encode_value(value).hex() == hexed
    decoded = decode_value(bytes.fromhex(hexed))
    assert decoded == value and type(decoded) is type(value)


@pytest.mark.parametrize(("key", "hexed"), KEY_VECTORS)
def test_golden_key_vector(key: str | bytes, hexed: str) -> None:
    assert encode_key(USERS, key).hex() == hexed
    assert decode_key(bytes.fromhex(hexed)) == ("users", key)
    assert user_key(bytes.fromhex(hexed), len(USERS)) == key


# ---- value round trips --------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=6)
    ),
    max_leaves=40,
)


@given(values)
def test_round_trip(value: object) -> None:
    data = encode_value(value)
    assert data == msgpack.packb(value, use_bin_type=True)
    back = decode_value(data)
    assert back == value
    assert repr(back) == repr(value)  # same types and dict order, -0.0 kept


@pytest.mark.parametrize("value", [-(2**63), -(2**63) + 1, -1, 0, 2**63 - 2, 2**63 - 1])
def test_int64_boundaries_round_trip(value: int) -> None:
    assert decode_value(encode_value(value)) == value
    assert decode_value(encode_value([value, {"n": value}])) == [value, {"n": value}]


@pytest.mark.parametrize(
    "bits",
    [
        "7ff8000000000000",
        "fff8000000000000",
        "7ff0000000000001",
        "7ff8dead0000beef",
        "8000000000000000",
        "7ff0000000000000",
        "fff0000000000000",
        "0000000000000001",
    ],
)
def test_float_bit_patterns_preserved(bits: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert struct.pack(">d", decode_value(encode_value(value))).hex() == bits
    back = decode_value(encode_value({"f": [value]}))
    assert isinstance(back, dict) and struct.pack(">d", back["f"][0]).hex() == bits


def test_bytes_like_values_read_back_as_bytes() -> None:
    non_contiguous = memoryview(b"abcdef")[::2]
    assert decode_value(encode_value(bytearray(b"ab"))) == b"ab"
    assert decode_value(encode_value(memoryview(b"ab"))) == b"ab"
    assert decode_value(encode_value(non_contiguous)) == b"ace"
    assert decode_value(encode_value(memoryview(array.array("B", [1, 2])))) == b"\x01\x02"
    assert decode_value(encode_value({"b": [bytearray(b"x"), memoryview(b"y")]})) == {
        "b": [b"x", b"y"]
    }


def test_depth_limit_boundary() -> None:
    def nest(depth: int) -> object:
        value: object = []
        for i in range(depth - 1):
            value = [value] if i % 2 else {"k": value}
        return value

    assert decode_value(encode_value(nest(MAX_DEPTH))) == nest(MAX_DEPTH)
    with pytest.raises(ValueTypeError, match="deeper than 256") as info:
        encode_value(nest(MAX_DEPTH + 1))
    assert info.value.path.count("[") == MAX_DEPTH
    with pytest.raises(ValueTypeError, match="deeper than 256"):
        encode_value(nest(600))  # beyond msgpack's own recursion limit too


def test_value_size_limit_boundary() -> None:
    fits = b"x" * (MAX_VALUE_BYTES - 5)  # bin32: 1 format byte + 4 length bytes
    assert len(encode_value(fits)) == MAX_VALUE_BYTES
    with pytest.raises(ValueTooLargeError, match=str(MAX_VALUE_BYTES)):
        encode_value(fits + b"x")
    with pytest.raises(ValueTooLargeError):
        encode_value({"a": ["x" * (MAX_VALUE_BYTES // 2), b"y" * (MAX_VALUE_BYTES // 2)]})


# ---- value rejections ---------------------------------------------------------------------


class Color(enum.IntEnum):
    RED = 1


class Name(str):
    pass


class Amount(float):
    pass


def cycle_list() -> list[object]:
    items: list[object] = [1]
    items.append({"again": items})
    return items


def cycle_dict() -> dict[str, object]:
    node: dict[str, object] = {}
    node["self"] = node
    return node


@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        ({1, 2}, "$", "unsupported type set"),
        ({"tags": ["a", "b", {"x"}]}, '$["tags"][2]', "unsupported type set"),
        (object(), "$", "unsupported type object"),
        ([1, [2, object()]], "$[1][1]", "unsupported type object"),
        ((1, 2), "$", "tuple"),
        ({"point": (1, 2)}, '$["point"]', "lists only"),
        (Color.RED, "$", "subclass of int"),
        ([Color.RED], "$[0]", "subclass of int"),
        ({"n": Name("x")}, '$["n"]', "subclass of str"),
        ([[Amount(1.0)]], "$[0][0]", "subclass of float"),
        (collections.OrderedDict(a=1), "$", "subclass of dict"),
        ({"a": {1: "x"}}, '$["a"]', "key of type int"),
        ({"a": {b"k": "x"}}, '$["a"]', "key of type bytes"),
        ({"a": {("t",): "x"}}, '$["a"]', "key of type tuple"),
        ({"a": {Name("k"): "x"}}, '$["a"]', "key of type Name"),
        (2**63, "$", "64-bit"),
        (-(2**63) - 1, "$", "64-bit"),
        ([2**64], "$[0]", "64-bit"),
        ({"big": [0, 2**63]}, '$["big"][1]', "64-bit"),
        ({"big": -(2**70)}, '$["big"]', "64-bit"),
        ("\ud800", "$", "lone surrogate"),
        ({"a": ["ok", "x\udc00"]}, '$["a"][1]', "lone surrogate"),
        ({"k\ud800": 1}, "$", "lone surrogate"),
        (cycle_list(), '$[1]["again"]', "cycle"),
        (cycle_dict(), '$["self"]', "cycle"),
        ([memoryview(b"abcd")[::2]], "$[0]", "C-contiguous"),
        (msgpack.Timestamp(1), "$", "unsupported type Timestamp"),
        ([msgpack.Timestamp(1)], "$[0]", "unsupported type Timestamp"),
        ({"e": msgpack.ExtType(5, b"x")}, '$["e"]', "ExtType"),
        (
            {"a": 1, "tags": [1.5, "x", None, True, b"", {"deep": [complex(1)]}]},
            '$["tags"][5]["deep"][0]',
            "unsupported type complex",
        ),
    ],
)
def test_rejected_value_names_its_path(value: object, path: str, words: str) -> None:
    with pytest.raises(ValueTypeError) as info:
        encode_value(value)
    assert info.value.path == path
    assert f"value at {path} " in str(info.value)
    assert words in str(info.value)
    assert isinstance(info.value, TypeError)


def test_unsupported_type_message_lists_what_strata_stores() -> None:
    with pytest.raises(ValueTypeError) as info:
        encode_value({"tags": ["a", "b", {1}]})
    assert str(info.value) == (
        'value at $["tags"][2] has unsupported type set (strata stores None, bool, int, '
        "float, str, bytes, list and dict with str keys)"
    )


def test_large_values_do_not_disturb_later_ones() -> None:
    big_bytes, big_text, big_tree = b"\x9c" * 100_000, "é" * 50_000, {"a": [b"y" * 70_000]}
    for value in (big_bytes, "s", big_text, [1], big_tree, {"k": "v"}, big_tree, b"z"):
        assert encode_value(value) == msgpack.packb(value)


def test_container_encoding_is_thread_safe() -> None:
    good = {"k": list(range(50)), "s": "x" * 50}
    expected = encode_value(good)
    errors: list[BaseException] = []

    def worker(value: object) -> None:
        for _ in range(300):
            try:
                assert encode_value(good) == expected
                encode_value(value)
            except ValueTypeError:
                pass
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(v,)) for v in ([{1}], good, [(1,)])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


# ---- decode_value on bad bytes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("hexed", "why"),
    [
        ("", "empty"),
        ("c1", "never-used format byte"),
        ("c0c0", "trailing bytes"),
        ("92c0", "truncated array"),
        ("a1ff", "str that is not UTF-8"),
        ("d40100", "ext type 1"),
        ("c70100", "ext8"),
        ("d6ff00000001", "timestamp ext"),
        ("91d6ff00000001", "timestamp ext in a list"),
        ("81a161d7ff0000000000000001", "timestamp ext in a map"),
        ("cf8000000000000000", "uint64 above int64"),
        ("92cf800000000000000000", "uint64 above int64 in a list"),
        ("810102", "int map key"),
        ("81c40161c0", "bin map key"),
        ("8190c0", "array map key"),
        ("c6ffffffff", "hostile bin32 length"),
        ("ddffffffff", "hostile array32 length"),
        ("dfffffffff", "hostile map32 length"),
        ("91" * MAX_DEPTH + "90", "257 levels"),
        ("91" * 2000 + "90", "deeper than msgpack's stack"),
    ],
)
def test_decode_rejects(hexed: str, why: str) -> None:
    with pytest.raises(CorruptionError, match="not a valid strata value"):
        decode_value(bytes.fromhex(hexed))


def test_decode_accepts_depth_limit_and_other_spellings() -> None:
    assert decode_value(bytes.fromhex("91" * (MAX_DEPTH - 1) + "90")) is not None
    assert decode_value(bytes.fromhex("d30000000000000001")) == 1  # int64 spelling of 1
    assert decode_value(bytes.fromhex("ca3fc00000")) == 1.5  # float32, never written


@given(values)
def test_every_truncation_is_corruption(value: object) -> None:
    data = encode_value(value)
    for end in range(len(data)):
        with pytest.raises(CorruptionError):
            decode_value(data[:end])


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_random_bytes_raise_only_corruption(data: bytes) -> None:
    try:
        value = decode_value(data)
    except CorruptionError:
        return
    encode_value(value)  # whatever the reader accepts, the writer could have written


# ---- keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name"),
    [
        (1, "int"),
        (None, "NoneType"),
        ((b"a",), "tuple"),
        (True, "bool"),
        (1.5, "float"),
        (Name("x"), "Name"),
    ],
)
def test_key_type_rejected(key: object, name: str) -> None:
    with pytest.raises(ValueTypeError, match=f"key must be str or bytes, not {name}"):
        encode_key(USERS, key)  # type: ignore[arg-type]


def test_key_bytes_like_and_surrogates() -> None:
    assert encode_key(USERS, bytearray(b"ab")) == encode_key(USERS, b"ab")
    assert encode_key(USERS, memoryview(b"ab")) == USERS + b"\x01ab"
    with pytest.raises(ValueTypeError, match="surrogate"):
        encode_key(USERS, "a\ud800")


@pytest.mark.parametrize(
    ("fits", "too_long"),
    [
        (b"x" * 512, b"x" * 513),
        ("x" * 512, "x" * 513),
        ("é" * 256, "é" * 256 + "x"),  # 2 bytes of UTF-8 each
        ("\U0010ffff" * 128, "\U0010ffff" * 128 + "x"),  # 4 bytes each
    ],
)
def test_key_size_limit_boundary(fits: str | bytes, too_long: str | bytes) -> None:
    assert MAX_KEY_BYTES == 512
    assert decode_key(encode_key(USERS, fits)) == ("users", fits)
    with pytest.raises(KeyTooLargeError, match="513 bytes; the limit is 512"):
        encode_key(USERS, too_long)


def test_keyspace_name_limits() -> None:
    assert keyspace_prefix("x" * MAX_KEYSPACE_BYTES) == b"\x40" + b"x" * 64
    assert keyspace_prefix("é" * 32)[0] == 64
    for too_long in ("x" * 65, "é" * 33):
        with pytest.raises(KeyTooLargeError, match="bytes; limit 64"):
            keyspace_prefix(too_long)
    with pytest.raises(StrataUsageError, match="empty"):
        keyspace_prefix("")
    with pytest.raises(ValueTypeError, match="must be str"):
        keyspace_prefix(b"users")  # type: ignore[arg-type]
    with pytest.raises(ValueTypeError, match="surrogate"):
        keyspace_prefix("\udfff")


@pytest.mark.parametrize(
    "ekey",
    [
        b"",
        b"\x00",
        b"\x41" + b"x" * 70,
        b"\x05use",
        b"\x05users",
        b"\x05users\x03a",
        b"\x02\xff\xfe\x01a",
        b"\x05users\x02\xff",
        b"\x05users\x01" + b"x" * 513,
    ],
)
def test_decode_key_rejects(ekey: bytes) -> None:
    with pytest.raises(CorruptionError, match="malformed"):
        decode_key(ekey)


def test_user_key_rejects_bad_tag() -> None:
    for ekey in (b"\x05users", b"\x05users\x00a", b"\x05users\x02\xc3"):
        with pytest.raises(CorruptionError):
            user_key(ekey, 6)


def test_user_keys_decodes_many_keyspaces_at_once_and_rejects_as_user_key() -> None:
    ekeys = [
        encode_key(keyspace_prefix(space), key)
        for space in ("default", "users", "x" * 64)
        for key in (b"", b"\x00\xff", "", "é\U0010ffff", "k" * 512)
    ]
    assert user_keys(ekeys) == [user_key(ek, ek[0] + 1) for ek in ekeys]
    for bad in (b"\x05users", b"\x05users\x00a", b"\x05users\x02\xc3"):
        with pytest.raises(CorruptionError):
            user_keys([*ekeys, bad])


small_bytes = st.lists(st.sampled_from([b"\x00", b"a", b"b", b"\xff"]), max_size=4).map(b"".join)
small_text = st.lists(st.sampled_from(["\x00", "a", "é", "\uffff", "\U0010ffff"]), max_size=4).map(
    "".join
)


@given(small_bytes, small_bytes)
def test_bytes_key_order_preserved(a: bytes, b: bytes) -> None:
    assert (a < b) == (encode_key(USERS, a) < encode_key(USERS, b))


@given(st.text(max_size=8) | small_text, st.text(max_size=8) | small_text)
def test_str_key_order_is_code_point_order(a: str, b: str) -> None:
    assert (a.encode() < b.encode()) == (a < b) == (encode_key(USERS, a) < encode_key(USERS, b))


@given(small_bytes, small_text)
def test_bytes_keys_sort_before_str_keys(b: bytes, s: str) -> None:
    assert encode_key(USERS, b) < encode_key(USERS, s)


OTHER_KEYSPACES = [keyspace_prefix(n) for n in ("user", "userr", "usert", "u", "\U0010ffff")]


def in_range(ekey: bytes, bounds: tuple[bytes, bytes | None]) -> bool:
    lo, hi = bounds
    return lo <= ekey and (hi is None or ekey < hi)


@given(st.lists(small_bytes | small_text, max_size=12), small_bytes | small_text)
def test_prefix_scan_holds_exactly_the_keys_with_that_prefix(
    keys: list[str | bytes], prefix: str | bytes
) -> None:
    bounds = scan_bounds(USERS, key_prefix=prefix)
    for key in keys:
        expected = type(key) is type(prefix) and key.startswith(prefix)  # type: ignore[arg-type]
        assert in_range(encode_key(USERS, key), bounds) == expected
        for other in OTHER_KEYSPACES:
            assert not in_range(encode_key(other, key), bounds)


@given(
    st.lists(small_bytes, max_size=12),
    small_bytes | st.none(),
    small_bytes | st.none(),
    small_bytes | st.none(),
)
def test_bounds_intersect(
    keys: list[bytes], prefix: bytes | None, start: bytes | None, end: bytes | None
) -> None:
    bounds = scan_bounds(USERS, key_prefix=prefix, start=start, end=end)
    for key in [*keys, "a"]:
        if type(key) is str:  # a str key is in a bytes scan only if nothing narrows to bytes
            assert in_range(encode_key(USERS, key), bounds) == (prefix is start is end is None)
            continue
        expected = (
            (prefix is None or key.startswith(prefix))
            and (start is None or key >= start)
            and (end is None or key < end)
        )
        assert in_range(encode_key(USERS, key), bounds) == expected


@given(st.lists(small_text, max_size=12), small_text, small_text)
def test_str_start_end_bounds(keys: list[str], start: str, end: str) -> None:
    bounds = scan_bounds(USERS, start=start, end=end)
    for key in [*keys, b"a", b"\xff"]:
        expected = type(key) is str and start <= key < end
        assert in_range(encode_key(USERS, key), bounds) == expected


def test_scan_bounds_shapes() -> None:
    assert scan_bounds(USERS) == (USERS, b"\x05usert")
    assert scan_bounds(USERS, key_prefix=b"") == (USERS + b"\x01", USERS + b"\x02")
    assert scan_bounds(USERS, key_prefix="ab") == (USERS + b"\x02ab", USERS + b"\x02ac")
    assert scan_bounds(USERS, key_prefix=b"a\xff") == (USERS + b"\x01a\xff", USERS + b"\x01b")
    assert scan_bounds(USERS, start=b"x") == (USERS + b"\x01x", USERS + b"\x02")
    assert scan_bounds(USERS, end="m") == (USERS + b"\x02", USERS + b"\x02m")
    lo, hi = scan_bounds(USERS, start=b"z", end=b"a")  # inverted: empty, not an error
    assert hi is not None and lo >= hi
    lo, hi = scan_bounds(USERS, key_prefix=b"b", start=b"c")
    assert hi is not None and lo >= hi
    assert scan_bounds(USERS, start=bytearray(b"a")) == scan_bounds(USERS, start=b"a")
    assert scan_bounds(USERS, start=b"x" * 600)[0] == USERS + b"\x01" + b"x" * 600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "a", "end": b"b"}, "start and end must both be str or both be bytes"),
        ({"key_prefix": b"a", "end": "b"}, "key_prefix and end must both"),
        ({"key_prefix": "a", "start": "a", "end": b"b"}, "must all be str or all be bytes"),
    ],
)
def test_scan_bounds_mixed_types(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(StrataUsageError, match=message):
        scan_bounds(USERS, **kwargs)  # type: ignore[arg-type]


def test_scan_bounds_bad_type() -> None:
    with pytest.raises(ValueTypeError, match="start must be str or bytes, not int"):
        scan_bounds(USERS, start=1)  # type: ignore[arg-type]


def test_next_prefix_examples() -> None:
    assert next_prefix(b"") is None
    assert next_prefix(b"\xff\xff") is None
    assert next_prefix(b"a") == b"b"
    assert next_prefix(b"a\xff\xff") == b"b"
    assert next_prefix(b"\x00\xfe") == b"\x00\xff"


@given(st.binary(max_size=4), st.binary(max_size=4))
def test_next_prefix_bounds_every_extension(p: bytes, tail: bytes) -> None:
    upper = next_prefix(p)
    if upper is None:
        assert p.strip(b"\xff") == b""
        return
    assert p + tail < upper and not upper.startswith(p)
