"""Online backup to one persist-db snapshot file, and restore into a new directory.

The backup payload (docs/FORMAT.md, "Backup payload") is a sequence of frames
``[u32 length][bytes]``: first a JSON header, then one frame per key holding every
retained version up to the backup's version. persist-db adds the file header, CRC32C and
compression; ``restore`` verifies the whole file before it writes anything.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import persist_db
from index_db import BTree
from page_db import PageStore
from wal_db import WriteAheadLog

from . import _records as R
from ._durable import PAGE_FILE, WAL_DIR
from .errors import CorruptionError, StrataUsageError

if TYPE_CHECKING:
    from ._db import Engine

KIND = "strata-backup"
PAYLOAD_VERSION = 1
_FRAME = struct.Struct("<I")
_KEY_HEAD = struct.Struct("<HI")  # key length, version count
_VERSION = struct.Struct("<QQBI")  # version, ts ns, flags, value length


def backup(engine: Engine, dest: str, compression: str | None) -> dict[str, Any]:
    """See ``Database.backup``."""
    engine.check_open()
    if compression not in (None, "zstd", "lz4"):
        raise StrataUsageError(f"compression must be 'zstd', 'lz4' or None, got {compression!r}")
    versions = engine._versions
    counts = {"keys": 0, "versions": 0}
    with engine._maint_lock, engine.snapshot() as snap:  # no GC while it copies
        header = {
            "format": PAYLOAD_VERSION,
            "version": snap,
            "ts_ns": engine._last_ts,
            "swept_version": versions.swept_version,
            "swept_ts_ns": versions.swept_ts,
            "settings": {k.hex(): v.hex() for k, v in engine._settings.items()},
            "created_ns": time.time_ns(),
        }

        def frames() -> Iterator[bytes]:
            data = json.dumps(header, sort_keys=True).encode()
            yield _FRAME.pack(len(data)) + data
            chains = versions.chains
            for key in versions.iter_keys(b"", None):
                chain = chains.get(key)
                if not chain:
                    continue
                kept = [e for e in chain if e[0] <= snap]
                if not kept:
                    continue
                pruned = key in versions.pruned
                parts = [_KEY_HEAD.pack(len(key), len(kept)), key]
                for i, (v, ts, value) in enumerate(kept):
                    flags = (R.FLAG_TOMBSTONE if value is None else 0) | (
                        R.FLAG_PRUNED if pruned and i == 0 else 0
                    )
                    parts.append(_VERSION.pack(v, ts, flags, 0 if value is None else len(value)))
                    if value is not None:
                        parts.append(value)
                body = b"".join(parts)
                counts["keys"] += 1
                counts["versions"] += len(kept)
                yield _FRAME.pack(len(body)) + body

        persist_db.save(
            dest,
            frames(),
            kind=KIND,
            version=PAYLOAD_VERSION,
            compression=compression,
            meta={"version": snap},
        )
    return {
        "version": snap,
        "keys": counts["keys"],
        "versions": counts["versions"],
        "bytes": os.path.getsize(dest),
    }


def _frames(chunks: Iterator[bytes]) -> Iterator[bytes]:
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _FRAME.unpack_from(buf, pos)
            if len(buf) - pos - 4 < n:
                break
            yield bytes(buf[pos + 4 : pos + 4 + n])
            pos += 4 + n
        del buf[:pos]
    if buf:
        raise CorruptionError(f"backup payload ends inside a frame ({len(buf)} bytes left)")


def _parse_key(frame: bytes, out: list[tuple[bytes, bytes]]) -> int:
    if len(frame) < _KEY_HEAD.size:
        raise CorruptionError("backup key frame is too short")
    klen, count = _KEY_HEAD.unpack_from(frame, 0)
    pos = _KEY_HEAD.size
    key = frame[pos : pos + klen]
    pos += klen
    if len(key) != klen or klen < 2 or key[0] == 0:
        raise CorruptionError("backup key frame holds a malformed key")
    for _ in range(count):
        if pos + _VERSION.size > len(frame):
            raise CorruptionError("backup key frame ends inside a version")
        v, ts, flags, vlen = _VERSION.unpack_from(frame, pos)
        pos += _VERSION.size
        value = None if flags & R.FLAG_TOMBSTONE else frame[pos : pos + vlen]
        if value is not None and len(value) != vlen:
            raise CorruptionError("backup key frame ends inside a value")
        pos += 0 if value is None else vlen
        out.append((R.tree_key(key, v), R.encode_entry(ts, value, bool(flags & R.FLAG_PRUNED))))
    if pos != len(frame):
        raise CorruptionError("backup key frame has trailing bytes")
    return int(count)


def restore(
    src: str | os.PathLike[str], dest: str | os.PathLike[str], *, page_size: int = 4096
) -> dict[str, Any]:
    """Restore the backup file ``src`` into the new database directory ``dest``.

    The whole file is verified (persist-db's CRC32C over the payload) before anything is
    written; the database is built in ``<dest>.restoring`` and renamed into place, so a
    failed or interrupted restore leaves no half-built ``dest``.

    Args:
        src: a file written by ``Database.backup``.
        dest: a directory that must not exist yet (or be empty).
        page_size: the new database's page size.

    Returns:
        ``{"version", "keys", "versions"}``.

    Raises:
        CorruptionError: the file fails its checksums or does not parse.
        StrataUsageError: ``dest`` exists and is not empty.
    """
    src, dest = os.fspath(src), os.fspath(dest)
    if os.path.exists(dest) and (not os.path.isdir(dest) or os.listdir(dest)):
        raise StrataUsageError(f"restore target {dest!r} exists and is not an empty directory")
    work = dest + ".restoring"
    shutil.rmtree(work, ignore_errors=True)
    items: list[tuple[bytes, bytes]] = []
    keys = 0
    try:
        with persist_db.open_snapshot(src, kind=KIND) as reader:
            frames = _frames(reader.chunks())
            try:
                header = json.loads(next(frames))
                if not isinstance(header, dict) or header.get("format") != PAYLOAD_VERSION:
                    raise CorruptionError(f"backup header {header!r} is not format 1")
                settings = {
                    bytes.fromhex(k): bytes.fromhex(v) for k, v in header["settings"].items()
                }
                count = 0
                for frame in frames:
                    count += _parse_key(frame, items)
                    keys += 1
            except (StopIteration, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise CorruptionError(f"backup {src!r} does not parse: {exc!r}", path=src) from exc
    except persist_db.PersistError as exc:
        raise CorruptionError(f"backup {src!r} failed verification: {exc}", path=src) from exc
    items.extend((R.SYSTEM_PREFIX + k, v) for k, v in settings.items())
    items.sort()
    os.makedirs(work)
    try:
        with PageStore.open(os.path.join(work, PAGE_FILE), page_size=page_size) as store:
            tree = BTree.create(store)
            tree.bulk_load(items)
            meta = R.CheckpointMeta(
                uuid.uuid4().bytes,
                tree.meta(),
                0,
                int(header["version"]),
                int(header["ts_ns"]),
                int(header["swept_version"]),
                int(header["swept_ts_ns"]),
                time.time_ns(),
            )
            store.checkpoint(meta.encode())
        WriteAheadLog.open(os.path.join(work, WAL_DIR)).close()  # empty, so read-only opens work
        if os.path.isdir(dest):
            os.rmdir(dest)
        os.rename(work, dest)
        fd = os.open(os.path.dirname(os.path.abspath(dest)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {"version": int(header["version"]), "keys": keys, "versions": count}
