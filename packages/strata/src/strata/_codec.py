"""Key and value encoding: user keys and values to the engine's bytes and back; no I/O.

The normative tables are "Key encoding" and "Value encoding" in ``docs/FORMAT.md``.
**Keys**: ``u8 n | n bytes UTF-8 keyspace name | u8 tag | key``, tag ``0x01`` bytes,
``0x02`` str (UTF-8), no terminator. Byte order is scan order: per keyspace bytes keys,
bytewise, then str keys by code point. The length byte makes a keyspace one range.

**Values**: MessagePack as msgpack-python writes it. ``encode_value`` is on every put:
scalars branch on ``type(value)``; containers go straight to msgpack, then a quick check
covers what msgpack does not (int64 range, str dict keys, depth, msgpack's own ext types),
skipping the walk when no byte of the output could start an inner container, ext or
uint64. Any failure reruns a slow walker that names the culprit's path in a
:class:`ValueTypeError`. ``decode_value`` raises :class:`CorruptionError`, and nothing
else, for whatever ``encode_value`` cannot write.
"""

from __future__ import annotations

import json
import threading
from typing import Any, NoReturn, cast

import msgpack  # type: ignore[import-untyped]

from .errors import (
    CorruptionError,
    KeyTooLargeError,
    StrataUsageError,
    ValueTooLargeError,
    ValueTypeError,
)

MAX_KEY_BYTES = 512
MAX_KEYSPACE_BYTES = 64
MAX_VALUE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 256
TAG_BYTES, TAG_STR = 0x01, 0x02  # the type tags of bytes and str keys

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_SUPPORTED = "strata stores None, bool, int, float, str, bytes, list and dict with str keys"
_LEAVES = frozenset({type(None), bool, int, float, str, bytes, bytearray, memoryview})
_LEAVES_BUT_INT = _LEAVES - {int}
_KEY_TYPES = frozenset({str})
_Bound = str | bytes | None
# Maps to 1 each byte that may start an inner map/array, an ext or a uint64, others to 0.
_NESTED_STARTS = {*range(0x80, 0xA0), *range(0xC7, 0xCA), 0xCF, *range(0xD4, 0xD9)}
_NESTED_STARTS.update(range(0xDC, 0xE0))
_NESTED_TABLE = bytes(b in _NESTED_STARTS for b in range(256))


def _refuse(*_args: object) -> NoReturn:  # msgpack's ``default`` and ``ext_hook``
    raise ValueError("an unsupported object or ext type")


def _new_packer() -> Any:
    return msgpack.Packer(use_bin_type=True, strict_types=True, default=_refuse)


# A Packer reuses one buffer that only grows. The C Packer runs no Python code on a scalar,
# so under the GIL one shared Packer serves small scalars (4x cheaper than packb). It may
# call ``default`` mid-pack on a container: each thread has its own Packer for those.
_SHARED_MAX = 64 * 1024
_C_PACKER = msgpack.Packer.__module__ == "msgpack._cmsgpack"  # not the pure-Python fallback
_pack_scalar = _new_packer().pack if _C_PACKER else (lambda value: _new_packer().pack(value))
_local = threading.local()


def keyspace_prefix(name: str) -> bytes:
    """Encode a keyspace name as the prefix of its encoded keys.

    Args:
        name: the keyspace name, 1..``MAX_KEYSPACE_BYTES`` bytes of UTF-8.

    Returns:
        ``bytes([len(utf8)]) + utf8``.

    Raises:
        ValueTypeError: not a str, or a lone surrogate.
        StrataUsageError: empty.
        KeyTooLargeError: longer than ``MAX_KEYSPACE_BYTES``.
    """
    if not isinstance(name, str):
        raise ValueTypeError(f"keyspace name must be str, not {type(name).__name__}")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueTypeError(f"keyspace name {name!r} holds a lone surrogate") from exc
    if not raw:
        raise StrataUsageError("keyspace name must not be empty")
    if len(raw) > MAX_KEYSPACE_BYTES:
        raise KeyTooLargeError(f"keyspace name is {len(raw)} bytes; limit {MAX_KEYSPACE_BYTES}")
    return bytes((len(raw),)) + raw


def _key_parts(key: object, what: str) -> tuple[bytes, bytes]:
    """(tag byte, key bytes) of a key or bound of any accepted type; no size limit."""
    if type(key) is str:
        try:
            return b"\x02", key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueTypeError(f"{what} {key!r} holds a lone surrogate") from exc
    if type(key) is bytes:
        return b"\x01", key
    if type(key) is bytearray or type(key) is memoryview:
        return b"\x01", bytes(key)
    raise ValueTypeError(f"{what} must be str or bytes, not {type(key).__name__}")


def encode_key(prefix: bytes, key: str | bytes) -> bytes:
    """Encode a user key in the keyspace whose prefix is ``prefix``.

    Args:
        prefix: from :func:`keyspace_prefix`.
        key: bytes (bytearray and memoryview too) or str; subclasses are refused.

    Returns:
        ``prefix + b"\\x01" + key`` for bytes, ``prefix + b"\\x02" + utf8`` for str.

    Raises:
        ValueTypeError: another type, or a str with a lone surrogate.
        KeyTooLargeError: more than ``MAX_KEY_BYTES`` bytes (UTF-8 bytes for a str).
    """
    tag, raw = (b"\x01", key) if type(key) is bytes else _key_parts(key, "key")
    if len(raw) > MAX_KEY_BYTES:
        raise KeyTooLargeError(f"key is {len(raw)} bytes; the limit is {MAX_KEY_BYTES}")
    return prefix + tag + raw


def _corrupt_key(ekey: bytes, why: str) -> CorruptionError:
    return CorruptionError(f"encoded key {bytes(ekey[:80]).hex()} is malformed: {why}")


def user_key(ekey: bytes, prefix_len: int) -> str | bytes:
    """Fast inverse of :func:`encode_key` when the prefix length is known.

    Args:
        ekey: an encoded key.
        prefix_len: the length of its keyspace prefix.

    Returns:
        The user key: bytes or str, as its tag says.

    Raises:
        CorruptionError: no tag, an unknown tag, or a str key that is not UTF-8.
    """
    try:
        tag = ekey[prefix_len]
        if tag == TAG_BYTES:
            return ekey[prefix_len + 1 :]
        if tag == TAG_STR:
            return ekey[prefix_len + 1 :].decode("utf-8")
    except (IndexError, UnicodeDecodeError) as exc:
        raise _corrupt_key(ekey, f"no type tag or a str key that is not UTF-8 ({exc})") from exc
    raise _corrupt_key(ekey, f"unknown type tag 0x{tag:02x}")


def user_keys(ekeys: list[bytes]) -> list[str | bytes]:
    """:func:`user_key` of many encoded keys, each with its own keyspace prefix, in one
    pass (a scan view's rebuild runs this over every key).

    Raises:
        CorruptionError: as :func:`user_key`.
    """
    try:
        return [
            ek[n + 1 :]
            if (tag := ek[(n := ek[0] + 1)]) == TAG_BYTES
            else ek[n + 1 :].decode("utf-8")
            if tag == TAG_STR
            else user_key(ek, n)  # an unknown tag: raises
            for ek in ekeys
        ]
    except (IndexError, UnicodeDecodeError):
        pass
    return [user_key(ek, ek[0] + 1) for ek in ekeys]  # raises on the bad key


def decode_key(ekey: bytes) -> tuple[str, str | bytes]:
    """Inverse of :func:`encode_key` for any keyspace.

    Args:
        ekey: an encoded key.

    Returns:
        ``(keyspace name, user key)``.

    Raises:
        CorruptionError: a name length outside 1..64 or past the end, a name or str key
            that is not UTF-8, a missing or unknown tag, a key over ``MAX_KEY_BYTES``.
    """
    ekey = bytes(ekey)
    size = ekey[0] if ekey else 0
    if not 1 <= size <= MAX_KEYSPACE_BYTES or not size + 2 <= len(ekey) <= size + 514:
        raise _corrupt_key(ekey, "bad keyspace name length or key longer than 512 bytes")
    try:
        name = ekey[1 : 1 + size].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _corrupt_key(ekey, "keyspace name is not UTF-8") from exc
    return name, user_key(ekey, size + 1)


def next_prefix(p: bytes) -> bytes | None:
    """Smallest bytes greater than every bytes that starts with ``p``.

    Args:
        p: any bytes.

    Returns:
        ``p`` without trailing ``0xff`` bytes and its last byte plus one; ``None`` when
        ``p`` is empty or all ``0xff`` (no upper bound exists).
    """
    stripped = p.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes((stripped[-1] + 1,))


def scan_bounds(
    prefix: bytes, *, key_prefix: _Bound = None, start: _Bound = None, end: _Bound = None
) -> tuple[bytes, bytes | None]:
    """Encoded half-open range ``[lo, hi)`` of a scan inside one keyspace.

    With no ``key_prefix``, ``start`` or ``end``: the whole keyspace, bytes keys then str
    keys. Otherwise only keys of the bounds' type (all str, or all bytes), intersecting:
    keys starting with ``key_prefix``, keys ``>= start``, keys ``< end`` (bytewise for
    bytes, by code point for str). Bounds may exceed ``MAX_KEY_BYTES``. ``lo >= hi`` is an
    empty scan, not an error. ``hi`` is never ``None``: every range here has an end.

    Args:
        prefix: from :func:`keyspace_prefix`.
        key_prefix: keep only keys that start with it.
        start: inclusive lower bound.
        end: exclusive upper bound.

    Returns:
        ``(lo, hi)``: lo inclusive, hi exclusive.

    Raises:
        StrataUsageError: the bounds given mix str and bytes.
        ValueTypeError: a bound that is neither str nor bytes.
    """
    named = (("key_prefix", key_prefix), ("start", start), ("end", end))
    parts = {name: _key_parts(bound, name) for name, bound in named if bound is not None}
    if not parts:
        return prefix, next_prefix(prefix)
    tags = {tag for tag, _ in parts.values()}
    if len(tags) > 1:
        both = "both" if len(parts) == 2 else "all"
        raise StrataUsageError(f"{' and '.join(parts)} must {both} be str or {both} be bytes")
    tag = tags.pop()
    section = prefix + tag
    lo, hi = section, prefix + bytes((tag[0] + 1,))  # tags are below 0xff: a bound exists
    if "key_prefix" in parts:
        wanted = section + parts["key_prefix"][1]
        lo, hi = max(lo, wanted), min(hi, next_prefix(wanted) or hi)
    if "start" in parts:
        lo = max(lo, section + parts["start"][1])
    if "end" in parts:
        hi = min(hi, section + parts["end"][1])
    return lo, hi


def encode_value(value: object) -> bytes:
    """Encode a value as MessagePack.

    Args:
        value: None, bool, int (int64), float, str, bytes (bytearray and memoryview read
            back as bytes), list, dict with str keys, at most ``MAX_DEPTH`` levels deep.
            Exact types (an ``IntEnum`` would read back as an int).

    Returns:
        The encoded bytes; :func:`decode_value` gives back an equal value.

    Raises:
        ValueTypeError: anything else (a tuple, a subclass, an int outside int64, a
            non-str dict key, a lone surrogate, a cycle, too deep...); ``.path``
            (``$``, ``$["a"][3]``) says where it sits.
        ValueTooLargeError: the encoding is longer than ``MAX_VALUE_BYTES``.
    """
    kind = type(value)
    if kind is bytes or kind is str:
        pack = _pack_scalar if len(cast(bytes, value)) <= _SHARED_MAX else _new_packer().pack
        try:
            data: bytes = pack(value)
        except UnicodeEncodeError as exc:  # a lone surrogate
            _explain(value, exc)
    elif kind is float or kind is bool or value is None:
        data = _pack_scalar(value)
    elif kind is list or kind is dict:
        try:
            pack = _local.pack
        except AttributeError:  # this thread's first container (or the last was big)
            pack = _local.pack = _new_packer().pack
        try:
            data = pack(value)
        except Exception as exc:  # any refusal by msgpack: find and name the culprit
            _explain(value, exc)
        if len(data) > _SHARED_MAX:  # a Packer never shrinks its buffer: drop this one
            del _local.pack
        if not _tree_ok(value, data):
            _explain(value, None)
    elif kind is int and _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
        data = _pack_scalar(value)
    elif kind is bytearray or kind is memoryview:
        return encode_value(bytes(value))  # type: ignore[call-overload]
    else:
        _explain(value, None)
    if len(data) > MAX_VALUE_BYTES:
        raise ValueTooLargeError(f"encoded value is {len(data)} bytes; limit {MAX_VALUE_BYTES}")
    return data


def _tree_ok(root: Any, data: bytes) -> bool:
    """Checks msgpack leaves to us, for a list/dict ``root`` that packed to ``data``."""
    skip = 1 if data[0] < 0xDC else 3 if data[0] in (0xDC, 0xDE) else 5  # root's header
    # A byte scan costs ~1/10 of a walk step: worth it when the items are small.
    if len(data) < 10 * len(root) and 1 not in data[skip:].translate(_NESTED_TABLE):
        return type(root) is list or _KEY_TYPES.issuperset(map(type, root))
    leaves = _LEAVES_BUT_INT if 0xCF in data else _LEAVES  # uint64: ints need a look
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if type(node) is dict:
            if not _KEY_TYPES.issuperset(map(type, node)):
                return False
            node = node.values()
        if leaves.issuperset(map(type, node)):
            continue
        for item in node:
            kind = type(item)
            if kind is list or kind is dict:
                stack.append((item, depth + 1))
            elif kind is int:
                if not _INT64_MIN <= item <= _INT64_MAX:
                    return False
            elif kind not in _LEAVES:  # msgpack's Timestamp and ExtType
                return False
    return True


def _explain(root: object, cause: BaseException | None) -> NoReturn:
    """Walk ``root`` depth first; raise a ValueTypeError naming the first offender."""
    stack: list[tuple[object, tuple[object, ...], frozenset[int]]] = [(root, (), frozenset())]
    while stack:
        obj, path, above = stack.pop()  # ``above``: ids of the containers holding obj
        problem = _problem(obj, len(path), above)
        if problem is not None:
            where = "$" + "".join(f"[{json.dumps(step, ensure_ascii=False)}]" for step in path)
            shown = where if len(where) <= 120 else f"{where[:60]}...{where[-40:]}"
            raise ValueTypeError(f"value at {shown} {problem}", path=where) from cause
        if type(obj) is list or type(obj) is dict:
            inner = above | {id(obj)}
            pairs = enumerate(obj) if type(obj) is list else obj.items()  # type: ignore[union-attr]
            stack.extend(reversed([(item, (*path, step), inner) for step, item in pairs]))
    raise ValueTypeError(f"value at $ cannot be encoded: {cause}", path="$") from cause


def _problem(obj: object, depth: int, above: frozenset[int]) -> str | None:
    """Why ``obj``, ``depth`` containers down, cannot be stored; None if it can."""
    kind = type(obj)
    if kind is list or kind is dict:
        if id(obj) in above:
            return f"is a {kind.__name__} that contains itself (a cycle); strata stores trees"
        if depth >= MAX_DEPTH:
            return f"nests lists/dicts deeper than {MAX_DEPTH} levels"
        for key in obj if kind is dict else ():  # type: ignore[attr-defined]
            if type(key) is not str or _problem(key, depth, above) is not None:
                bad = f"a key of type {type(key).__name__} ({key!r:.40})"
                return f"is a dict with {bad}: keys must be str, without lone surrogates"
        return None
    if kind is int and not _INT64_MIN <= cast(int, obj) <= _INT64_MAX:
        return "is an int outside the signed 64-bit range (-2**63 .. 2**63-1)"
    if kind is str:
        try:
            cast(str, obj).encode("utf-8")
        except UnicodeEncodeError:
            return "is a str holding a lone surrogate (not UTF-8)"
    if kind is memoryview and not cast(memoryview, obj).c_contiguous:
        return "is a memoryview that is not C-contiguous; pass bytes(view)"
    if kind in _LEAVES:
        return None
    if kind is tuple:
        return "is a tuple: strata stores lists only, so reads give back what was written"
    for base in (bool, int, float, str, bytes, bytearray, list, dict):
        if isinstance(obj, base):
            sub = f"a subclass of {base.__name__} that would read back as {base.__name__}"
            return f"has type {kind.__name__}, {sub} ({_SUPPORTED})"
    return f"has unsupported type {kind.__name__} ({_SUPPORTED})"


def decode_value(data: bytes) -> object:
    """Decode bytes made by :func:`encode_value`; never raises anything else than below.

    Args:
        data: the encoded value.

    Returns:
        The value (bytes-like values come back as ``bytes``).

    Raises:
        CorruptionError: bytes ``encode_value`` cannot write: malformed or truncated
            MessagePack, trailing bytes, any ext type (timestamps too), a non-str map key,
            an int outside int64, nesting deeper than ``MAX_DEPTH``.
    """
    # the commonest value, bytes of up to 255 (bin 8: 0xc4, length, bytes), without a call
    if len(data) > 1 and data[0] == 0xC4 and len(data) == data[1] + 2:
        return data[2:]
    # msgpack >= 1.0 defaults: lists, every max_*_len capped at len(data) (so no huge alloc).
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_refuse)
    except Exception as exc:  # untrusted bytes: every refusal is corruption
        why = f"{type(exc).__name__}: {exc}"
        raise CorruptionError(f"value bytes are not a valid strata value: {why}") from exc
    kind = type(value)
    if kind in _LEAVES and (kind is not int or value <= _INT64_MAX):
        return value
    if (kind is list or kind is dict) and _tree_ok(value, bytes(data)):
        return value
    why = f"an ext type, an int above int64, a non-str map key or nesting over {MAX_DEPTH}"
    raise CorruptionError(f"value bytes are not a valid strata value: {why}")
