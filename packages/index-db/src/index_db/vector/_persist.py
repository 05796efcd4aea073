"""persist-db support for the vector indexes: snapshots, operations, save and load.

Theory of operation
-------------------
Both indexes implement ``persist_db.Persistable``: :meth:`PersistMixin.to_snapshot`
returns the payload of ``_snapshot`` as a list of chunks (live vectors renumbered
0..n-1 in slot order), :meth:`PersistMixin.load_snapshot` replaces the whole state of
the index (dimension, metric and HNSW parameters included) with a decoded payload, and
:meth:`PersistMixin.apply` replays one operation made by :meth:`PersistMixin.op_add`
(an upsert) or :meth:`PersistMixin.op_remove` (a remove; removing an absent id is a
no-op), so replay is idempotent for the last operation of each id. HNSW node levels are
derived from a hash of the id and the index's seed, not from a random stream, so the same
operations on the same snapshot give the same graph. :meth:`PersistMixin.save` and
:meth:`PersistMixin.load` wrap ``persist_db.save`` and ``persist_db.load``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np

import persist_db

from ..errors import CorruptIndexError
from . import _layout as L
from ._common import F32Array, VectorId, as_vector, check_id
from ._snapshot import Decoded, decode, encode

T = TypeVar("T", bound="PersistMixin")
INDEX_TYPES = {"index-db.flat": L.TYPE_FLAT, "index-db.hnsw": L.TYPE_HNSW}


def encode_id(vector_id: VectorId) -> bytes:
    """The operation encoding of one (checked) id."""
    if isinstance(vector_id, str):
        raw = vector_id.encode("utf-8")
        return bytes([L.ID_STR]) + L.OP_STR_LEN.pack(len(raw)) + raw
    return L.OP_ID_INT.pack(L.ID_INT, vector_id)


def decode_op(op: bytes, dim: int) -> tuple[int, VectorId, F32Array | None]:
    """Split an operation into (code, id, vector or None). Raises CorruptIndexError."""
    op = bytes(op)
    if len(op) < 2 or op[0] not in (L.OP_ADD, L.OP_REMOVE):
        raise CorruptIndexError("operation has an unknown code or is empty")
    code, offset = op[0], 1
    vector_id: VectorId
    try:
        if op[offset] == L.ID_INT:
            vector_id = L.OP_ID_INT.unpack_from(op, offset)[1]
            offset += L.OP_ID_INT.size
        elif op[offset] == L.ID_STR:
            (size,) = L.OP_STR_LEN.unpack_from(op, offset + 1)
            start = offset + 1 + L.OP_STR_LEN.size
            if size > len(op) - start:
                raise CorruptIndexError("operation's str id runs past its end")
            vector_id = check_id(op[start : start + size].decode("utf-8"))
            offset = start + size
        else:
            raise CorruptIndexError("operation has a bad id type byte")
        if code == L.OP_REMOVE:
            vector = None
        else:
            (op_dim,) = L.OP_DIM.unpack_from(op, offset)
            offset += L.OP_DIM.size
            if op_dim != dim or len(op) - offset != 4 * dim:
                raise CorruptIndexError(f"operation's vector is not {dim} float32 values")
            vector = np.frombuffer(op, dtype="<f4", count=dim, offset=offset).astype(np.float32)
            offset += 4 * dim
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise CorruptIndexError(f"malformed operation: {exc}") from None
    if offset != len(op):
        raise CorruptIndexError("operation has trailing bytes")
    return code, vector_id, vector


class PersistMixin:
    """Persistable implementation shared by FlatIndex and HNSWIndex."""

    kind: str
    format_version: int
    _dim: int

    def _snapshot_parts(self) -> tuple[list[VectorId], F32Array, Any]:
        raise TypeError("not a vector index")  # overridden by both indexes

    def _restore(self, decoded: Decoded) -> None:
        raise TypeError("not a vector index")  # overridden by both indexes

    def to_snapshot(self) -> list[bytes]:
        """The whole index as snapshot payload chunks (format in docs/FORMAT.md)."""
        ids, vectors, graph = self._snapshot_parts()
        return encode(INDEX_TYPES[self.kind], self._metric_code(), ids, vectors, graph)

    def _metric_code(self) -> int:
        return int(self._metric)  # type: ignore[attr-defined]

    def load_snapshot(self, payload: bytes, version: int) -> None:
        """Replace the state of this index with a snapshot payload.

        The snapshot's dimension, metric and (HNSW) parameters replace this index's.

        Raises:
            persist_db.UnsupportedFormatError: ``version`` is not a payload version this
                reader knows (only 1 exists).
            CorruptIndexError: the payload does not make sense; the index is unchanged.
        """
        if version != L.FORMAT_VERSION:
            raise persist_db.UnsupportedFormatError(
                f"{self.kind} payload version {version} is not supported (only 1)"
            )
        self._restore(decode(payload, INDEX_TYPES[self.kind]))

    def apply(self, op: bytes) -> None:
        """Apply one operation made by :meth:`op_add` (an upsert) or :meth:`op_remove`.

        Raises:
            CorruptIndexError: the operation bytes are malformed or of another dimension.
        """
        code, vector_id, vector = decode_op(op, self._dim)
        if code == L.OP_REMOVE:
            self.remove(vector_id)  # type: ignore[attr-defined]
            return
        try:
            self.upsert(vector_id, vector)  # type: ignore[attr-defined]
        except ValueError as exc:
            raise CorruptIndexError(f"operation's vector is unusable: {exc}") from None

    def op_add(self, vector_id: VectorId, vector: object) -> bytes:
        """The operation bytes that upsert ``vector`` under ``vector_id`` when applied.

        The vector is checked (dimension, dtype, finite) but the index is not changed.

        Raises:
            DimensionMismatchError, TypeError, IndexUsageError: as for ``upsert``.
        """
        row = as_vector(vector, self._dim).astype("<f4")
        head = bytes([L.OP_ADD]) + encode_id(check_id(vector_id))
        return head + L.OP_DIM.pack(self._dim) + row.tobytes()

    def op_remove(self, vector_id: VectorId) -> bytes:
        """The operation bytes that remove ``vector_id`` when applied.

        Raises:
            TypeError, IndexUsageError: a bad id.
        """
        return bytes([L.OP_REMOVE]) + encode_id(check_id(vector_id))

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        compression: str | None = None,
        level: int | None = None,
        meta: Any = None,
    ) -> persist_db.SnapshotInfo:
        """Write the index to a persist-db snapshot file (atomic: temp file and rename).

        Args:
            path: the file to write.
            compression: None, ``"zstd"`` or ``"lz4"`` (see ``persist_db.save``).
            level: the codec's level.
            meta: a JSON-compatible value stored beside the payload.

        Returns:
            persist-db's ``SnapshotInfo`` of the file written.

        Raises:
            OSError, ValueError: as ``persist_db.save``.
        """
        chunks: Iterable[bytes] = self.to_snapshot()
        return persist_db.save(
            path,
            chunks,
            kind=self.kind,
            version=self.format_version,
            compression=compression,
            level=level,
            meta=meta,
        )

    @classmethod
    def load(cls: type[T], path: str | os.PathLike[str]) -> T:
        """Read an index saved by :meth:`save`; no rebuild (the graph is stored).

        Raises:
            persist_db.CorruptSnapshotError: the file fails persist-db's checks.
            persist_db.WrongKindError: the file holds another kind of snapshot.
            persist_db.UnsupportedFormatError: an unknown payload or file version.
            CorruptIndexError: the payload does not make sense.
            OSError: the file cannot be read.
        """
        snapshot = persist_db.load(path, kind=cls.kind)
        index = cls.__new__(cls)
        index.load_snapshot(snapshot.payload, snapshot.version)
        return index
