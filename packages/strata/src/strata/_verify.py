"""``Database.stats()`` and ``Database.verify()``."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from index_db import IndexDbError
from page_db import PageError
from wal_db import WalError

from . import _records as R
from ._durable import PAGE_FILE, WAL_DIR
from .errors import CorruptionError

if TYPE_CHECKING:
    from ._db import Engine


def collect_stats(engine: Engine) -> dict[str, Any]:
    """See ``Database.stats``; the keys are listed in docs/API.md."""
    engine.check_open()
    versions = engine._versions
    disk = engine._disk
    out: dict[str, Any] = {
        "durability": engine.durability,
        "path": engine.path,
        "read_only": engine.read_only,
        "version": engine.published,
        "keys": len(versions.chains),
        "versions": versions.version_count(),
        "open_snapshots": engine.open_snapshots(),
        "retention": repr(engine.retention),
        "transactions": {k: engine.counters[k] for k in ("commits", "conflicts", "aborts")},
        "gc": {
            "runs": engine.counters["gc_runs"],
            "versions_removed": engine.counters["gc_versions_removed"],
            "keys_swept": engine.counters["gc_keys_swept"],
            "last_run": engine.last_gc_time,
            "swept_version": versions.swept_version,
        },
        "bytes": file_sizes(engine),
    }
    if disk is not None:
        page = disk.store.stats()
        lookups = page["hits"] + page["misses"]
        out["pages"] = {
            "page_size": page["page_size"],
            "pages": page["pages"],
            "free_pages": page["free_ids"],
            "cache_pages": page["pool_capacity"],
            "cache_resident": page["pool_resident"],
            "cache_hits": page["hits"],
            "cache_misses": page["misses"],
            "cache_hit_rate": page["hits"] / lookups if lookups else 1.0,
        }
        log = disk.wal.stats()
        out["wal"] = {
            "bytes_since_checkpoint": engine._wal_bytes,
            "segments": log.segments,
            "first_lsn": log.first_lsn,
            "last_lsn": log.last_lsn,
            "durable_lsn": log.durable_lsn,
            "appends": log.appends,
            "fsyncs": log.fsyncs,
        }
        out["checkpoint"] = {
            "version": disk.meta.version,
            "lsn": disk.meta.lsn,
            "time": disk.meta.time_ns / 1e9,
            "count": engine.counters["checkpoints"],
        }
        out["recovery"] = dataclasses.asdict(disk.recovered)
    return out


def verify_all(engine: Engine) -> dict[str, Any]:
    """See ``Database.verify``."""
    engine.check_open()
    errors: list[str] = []
    report: dict[str, Any] = {"ok": True, "errors": errors}
    versions = engine._versions
    with engine._maint_lock:  # no checkpoint or GC while it looks
        _check_memory(engine, errors, report)
        disk = engine._disk
        if disk is not None:
            try:
                report["btree"] = disk.tree.verify(other_pages=0)
            except (IndexDbError, PageError) as exc:
                errors.append(f"page file: {exc}")
            else:
                _check_tree_against_memory(engine, errors, report)
            records = ops = 0
            try:
                for _lsn, payload in disk.wal.replay(disk.wal.first_lsn):
                    ops += len(R.decode_commit(payload)[2])
                    records += 1
            except (WalError, CorruptionError) as exc:
                errors.append(f"WAL: {exc}")
            report["wal_records"] = records
            report["wal_ops"] = ops
    report["keys"] = len(versions.chains)
    report["ok"] = not errors
    return report


def _check_memory(engine: Engine, errors: list[str], report: dict[str, Any]) -> None:
    versions = engine._versions
    count = 0
    for key, chain in list(versions.chains.items()):
        count += len(chain)
        previous = 0
        for version, _ts, _value in chain:
            if version <= previous:
                errors.append(f"memory: versions of key {key!r} are not ascending")
                break
            previous = version
        if previous > engine._last_version:
            errors.append(f"memory: key {key!r} has version {previous} past the last commit")
    listed = len(versions.order)
    missing = [key for key in list(versions.chains) if key not in versions.order]
    if listed != len(versions.chains) or missing:
        errors.append(
            f"memory: the sorted key list holds {listed} keys for {len(versions.chains)} chains"
        )
    report["memory_versions"] = count


def _check_tree_against_memory(engine: Engine, errors: list[str], report: dict[str, Any]) -> None:
    """Every version the last checkpoint wrote must be in memory, and vice versa, for the
    keys no commit or GC has touched since."""
    disk = engine._disk
    assert disk is not None
    versions = engine._versions
    changed = set(versions.dirty) | set(versions.removed)
    cp = disk.meta.version
    on_disk: dict[bytes, int] = {}
    checked = 0
    for tkey, data in disk.tree.items():
        if tkey[:1] == R.SYSTEM_PREFIX:
            continue
        try:
            key, version = R.split_tree_key(tkey)
            ts_ns, value, _pruned = R.decode_entry(data)
        except CorruptionError as exc:
            errors.append(f"page file entry: {exc}")
            continue
        if key in changed:
            continue
        on_disk[key] = on_disk.get(key, 0) + 1
        chain = versions.chains.get(key) or []
        if (version, ts_ns, value) not in chain:
            errors.append(f"key {key!r} version {version} is in the page file but not in memory")
        checked += 1
    for key, chain in list(versions.chains.items()):
        if key in changed:
            continue
        expected = sum(1 for e in chain if e[0] <= cp)
        if on_disk.get(key, 0) != expected:
            errors.append(
                f"key {key!r}: {expected} versions in memory up to the checkpoint, "
                f"{on_disk.get(key, 0)} in the page file"
            )
    report["checked_versions"] = checked


def file_sizes(engine: Engine) -> dict[str, int]:
    """Bytes on disk: the page file and the WAL directory (0 in cache mode)."""
    if engine.path is None:
        return {"page_file": 0, "wal": 0}
    page = os.path.join(engine.path, PAGE_FILE)
    wal_dir = os.path.join(engine.path, WAL_DIR)
    wal = (
        sum(os.path.getsize(os.path.join(wal_dir, n)) for n in os.listdir(wal_dir))
        if os.path.isdir(wal_dir)
        else 0
    )
    return {"page_file": os.path.getsize(page) if os.path.exists(page) else 0, "wal": wal}
