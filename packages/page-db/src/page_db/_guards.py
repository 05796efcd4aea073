"""Page guards: the pinned views of one page that ``store.read`` and ``store.write`` return.

Theory of operation
-------------------
``store.read(pid)`` pins the page and returns its guard; leaving the ``with`` block unpins
it. ``page.payload`` is a read-only ``memoryview`` of the page body. ``store.write(pid)``
does the same with a writable view and marks the frame dirty at once. Views are valid only
inside the ``with`` block: after it the frame may hold another page. Each frame owns one
read guard and one write guard object, handed out again and again, and a read guard's exit
releases its pin without the lock — it only appends to ``frame.unpins`` (see
:class:`~page_db._pool.Frame`) — which keeps a pool hit near one microsecond. A write
guard's exit goes back to the pool (``BufferPool._unpin_writer``), under its lock.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _layout as L
from .errors import PageUsageError

if TYPE_CHECKING:
    from ._pool import BufferPool, Frame

__all__ = ["PageReadGuard", "PageWriteGuard"]


class PageReadGuard:
    """A pinned, read-only view of one page: ``with store.read(pid) as page:``.

    ``store.read`` pins the page and returns its guard; leaving the ``with`` block unpins
    it. Always use it in a ``with`` statement: a guard that is never exited keeps its
    frame pinned. The view is valid only inside the block — afterwards the frame may hold
    another page.

    Attributes:
        payload: read-only ``memoryview`` of the page body (``page_size - 32`` bytes).
    """

    __slots__ = ("_frame", "_pool", "payload")

    def __init__(self, pool: BufferPool, frame: Frame, payload: memoryview):
        self._pool = pool
        self._frame = frame
        self.payload = payload

    def __enter__(self) -> PageReadGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._frame.unpins.append(None)

    @property
    def page_id(self) -> int:
        """The logical page id."""
        return self._frame.page_id

    @property
    def lsn(self) -> int:
        """The page's LSN: an opaque u64 the layer above stamps (0 if never set)."""
        return int(L.LSN_STRUCT.unpack_from(self._frame.buf, L.LSN_OFFSET)[0])

    @property
    def extra(self) -> Any:
        """The layer above's object for this page (its decoded form), or ``None``.

        Kept with the frame across guards; dropped when the page is opened for writing
        or leaves the pool.
        """
        return self._frame.extra

    @extra.setter
    def extra(self, value: Any) -> None:
        self._frame.extra = value


class PageWriteGuard(PageReadGuard):
    """A pinned, writable view of one page: ``with store.write(pid) as page:``.

    ``store.write`` marks the page dirty and drops its ``extra``; the writer may set a new
    ``extra`` that matches the bytes it leaves behind. Otherwise as :class:`PageReadGuard`.
    """

    __slots__ = ()

    def __enter__(self) -> PageWriteGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pool._unpin_writer(self._frame)

    @property
    def lsn(self) -> int:
        """The page's LSN; assign to stamp a new one (0 .. 2**64 - 1)."""
        return int(L.LSN_STRUCT.unpack_from(self._frame.buf, L.LSN_OFFSET)[0])

    @lsn.setter
    def lsn(self, value: int) -> None:
        if not 0 <= value < 1 << 64:
            raise PageUsageError(f"LSN {value} is not a u64")
        L.LSN_STRUCT.pack_into(self._frame.buf, L.LSN_OFFSET, value)
