"""Helper processes for the batch builder's beam searches (``add_batch(workers=N)``).

Theory of operation
-------------------
Threads share a chunk's searches badly: a search is a long run of small numpy calls, each
holding the GIL for its Python part, so two threads mostly wait for each other. Helper
processes do not. For a large batch (at least :data:`WORKERS_MIN` new nodes) the builder
starts ``N`` helpers and splits every chunk's layer searches into ``N + 1`` contiguous
parts: it sends one part to each helper, searches the first itself, then reads the
helpers' results. Every part runs the same :func:`~._lockstep.beam` on the same data, and
a query's result does not depend on the queries searched beside it, so the graph built is
the same for any number of helpers (and the same as without them).

Shared memory: before the first chunk, the vectors, their squared norms and every layer's
adjacency rows and row map are copied into one block -- a ``memfd`` on Linux, elsewhere an
unlinked temporary file -- whose space is allocated up front (``posix_fallocate`` or plain
writes), so a full disk or ``/dev/shm`` fails with ``OSError`` here, never with a ``SIGBUS``
later. The graph's adjacency arrays are then rebound to views of the block: the links the
builder writes between chunks are seen by the helpers with no copying, and the pipe round
trip of the next request orders the writes before the helpers' reads. The layer sizes do
not change during the chunk loop (every new node is attached first), so the views stay
valid. :meth:`Helpers.close` copies the adjacency back into private arrays.

A helper is a fresh interpreter (``sys.executable -c`` running :func:`serve`, with the
caller's ``sys.path`` as ``PYTHONPATH`` and one BLAS thread), not ``multiprocessing``:
nothing of the caller's ``__main__`` is imported again, so scripts without an ``if
__name__ == "__main__"`` guard are safe. Requests and results are pickles on the helper's
stdin and (a duplicate of) its stdout; the helper points its own fd 1 at stderr so a stray
print cannot corrupt the stream. A helper that does not start within
:data:`START_TIMEOUT` seconds, or dies or errs mid-build, is dropped with a
``RuntimeWarning`` and its part is searched in the calling process, so the build still
completes with the same graph. Helpers exit when their stdin closes, which
:meth:`Helpers.close` does (and the operating system does if the caller dies). Helpers are
used on POSIX systems only; elsewhere ``workers`` is accepted and the searches run in the
calling process.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import select
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from typing import IO, Any, TypeVar

import numpy as np
import numpy.typing as npt

from ._common import I32Array
from ._graph import Graph, Layer, heuristic_mask
from ._lockstep import SearchView, beam

WORKERS_MIN = 4096  # new nodes in a batch from which add_batch starts its helpers
START_TIMEOUT = 60.0  # seconds a helper may take to map the block and say it is ready
MIN_PART = 16  # rows a part of a chunk's searches must have to go to a helper
_ALIGN = 64
_READY = "ready"
_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

_T = TypeVar("_T")
Layout = list[tuple[str, str, tuple[int, ...], int]]  # name, dtype, shape, byte offset


class _Helper:
    """One helper process and its pipes."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self.requests: IO[bytes] = process.stdin
        self.results: IO[bytes] = process.stdout

    def send(self, message: object) -> None:
        pickle.dump(message, self.requests, protocol=pickle.HIGHEST_PROTOCOL)
        self.requests.flush()

    def receive(self) -> Any:
        return pickle.load(self.results)

    def wait_ready(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.results], [], [], timeout)
        return bool(ready) and self.receive() == _READY

    def stop(self) -> None:
        """Close both pipes (a helper mid-answer then fails its write at once instead of
        waiting for a reader) and wait for the helper to exit; kill it after 5 s."""
        for pipe in (self.requests, self.results):
            with contextlib.suppress(OSError):
                pipe.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Helpers:
    """Helper processes searching parts of a batch build's chunks (see the module notes)."""

    def __init__(
        self, graph: Graph, helpers: list[_Helper], mapping: mmap.mmap, layout: Layout
    ) -> None:
        self._helpers = helpers
        self._mapping = mapping
        self._shared = _rebind(graph, mapping, layout)

    @classmethod
    def start(cls, graph: Graph, count: int, rows: int) -> Helpers | None:
        """Share ``graph``'s search data and start ``count`` helpers, each with a visited
        bitmap of ``rows`` queries; None when none could be started (a ``RuntimeWarning``
        says why) or on a non-POSIX system."""
        if os.name != "posix" or count < 1:
            return None
        try:
            fd, path, mapping, layout = _share(graph)
        except OSError as exc:
            warnings.warn(
                f"index-db: no shared memory for build helpers ({exc}); the searches run"
                " in this process",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        spec = {
            "path": path,
            "fd": fd if path is None else None,
            "size": len(mapping),
            "layout": layout,
            "euclidean": graph.store.metric == 1,
            "layers": len(graph.layers),
            "rows": rows,
        }
        helpers: list[_Helper] = []
        try:
            for _ in range(count):
                helper = _spawn(fd if path is None else None)
                if helper is None:
                    break
                try:
                    helper.send(spec)
                except OSError:
                    helper.stop()
                    continue
                helpers.append(helper)
            ready = []
            for helper in helpers:
                try:
                    ok = helper.wait_ready(START_TIMEOUT)
                except (OSError, EOFError, pickle.UnpicklingError):
                    ok = False
                if ok:
                    ready.append(helper)
                else:
                    helper.process.kill()
                    helper.stop()
            helpers = ready
        finally:
            if path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            else:
                os.close(fd)
        if len(helpers) < count:
            warnings.warn(
                f"index-db: {count - len(helpers)} of {count} build helpers did not start;"
                " their share of the searches runs in this process",
                RuntimeWarning,
                stacklevel=4,
            )
        if not helpers:
            return None
        return cls(graph, helpers, mapping, layout)

    def split(
        self,
        rows: int,
        request: Callable[[int, int], tuple[object, ...]],
        local: Callable[[int, int], _T],
    ) -> list[_T]:
        """Split ``rows`` into contiguous parts (of at least :data:`MIN_PART`): the first
        for ``local(a, b)``, one for each helper (``request(a, b)`` is what it is sent: a
        beam search or a heuristic, see :func:`serve`); the results in order. A helper
        that fails is dropped and its part run locally."""
        parts = min(len(self._helpers) + 1, rows // MIN_PART)
        if parts <= 1:
            return [local(0, rows)]
        bounds = np.linspace(0, rows, parts + 1).astype(np.int64).tolist()
        sent: list[tuple[_Helper | None, int, int]] = []
        helpers = self._helpers[: parts - 1]
        for helper, a, b in zip(helpers, bounds[1:-1], bounds[2:], strict=True):
            try:
                helper.send(request(a, b))
                sent.append((helper, a, b))
            except OSError:
                self._drop(helper)
                sent.append((None, a, b))
        results = [local(0, bounds[1])]
        for owner, a, b in sent:
            if owner is not None:
                try:
                    results.append(owner.receive())
                    continue
                except (OSError, EOFError, pickle.UnpicklingError):
                    self._drop(owner)
            results.append(local(a, b))
        return results

    def _drop(self, helper: _Helper) -> None:
        warnings.warn(
            "index-db: a build helper stopped; its share of the searches runs in this process",
            RuntimeWarning,
            stacklevel=7,
        )
        self._helpers.remove(helper)
        helper.process.kill()
        helper.stop()

    def close(self) -> None:
        """Stop the helpers and give the graph private copies of its adjacency again."""
        for helper in self._helpers:
            helper.stop()
        self._helpers = []
        for layer, view in self._shared:
            if layer.adj is view:
                layer.adj = view.copy()
        self._shared = []
        with contextlib.suppress(BufferError):  # a caller's frame may still hold a view
            self._mapping.close()


def _arrays(graph: Graph) -> dict[str, npt.NDArray[Any]]:
    arrays: dict[str, npt.NDArray[Any]] = {
        "vectors": graph.store.vectors,
        "sqnorm": graph.store.sqnorm,
    }
    for level, layer in enumerate(graph.layers):
        arrays[f"adj{level}"] = layer.adj
        if layer.row_of is not None:
            arrays[f"row_of{level}"] = layer.row_of
    return arrays


def _share(graph: Graph) -> tuple[int, str | None, mmap.mmap, Layout]:
    """Copy the search data into a fresh shared block: (fd, path or None, mapping, layout)."""
    arrays = _arrays(graph)
    layout: Layout = []
    size = 0
    for name, array in arrays.items():
        layout.append((name, array.dtype.str, array.shape, size))
        size += -(-array.nbytes // _ALIGN) * _ALIGN
    size = max(size, _ALIGN)
    path = None
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("index-db-build", 0)
    else:
        fd, path = tempfile.mkstemp(prefix="index-db-build-")
    try:
        _allocate(fd, size)
        mapping = mmap.mmap(fd, size)
    except OSError:
        os.close(fd)
        if path is not None:
            os.unlink(path)
        raise
    for name, dtype, shape, offset in layout:
        np.ndarray(shape, np.dtype(dtype), buffer=mapping, offset=offset)[...] = arrays[name]
    return fd, path, mapping, layout


def _allocate(fd: int, size: int) -> None:
    """Give the file ``size`` bytes of real space now, so a full file system fails here
    with ``OSError`` instead of a ``SIGBUS`` on a later write through the mapping."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
        return
    block = bytes(1 << 20)
    written = 0
    while written < size:
        written += os.write(fd, block[: min(len(block), size - written)])


def _views(mapping: mmap.mmap, layout: Layout) -> dict[str, npt.NDArray[Any]]:
    return {
        name: np.ndarray(shape, np.dtype(dtype), buffer=mapping, offset=offset)
        for name, dtype, shape, offset in layout
    }


def _rebind(graph: Graph, mapping: mmap.mmap, layout: Layout) -> list[tuple[Layer, I32Array]]:
    """Point every layer's adjacency at its copy in the block; (layer, view) pairs."""
    views = _views(mapping, layout)
    shared = []
    for level, layer in enumerate(graph.layers):
        view: I32Array = views[f"adj{level}"]
        layer.adj = view
        shared.append((layer, view))
    return shared


def _spawn(fd: int | None) -> _Helper | None:
    """Start one helper interpreter; None when that fails."""
    if not sys.executable:
        return None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    for name in _BLAS_ENV:
        env[name] = "1"
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", "from index_db.vector._workers import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            pass_fds=() if fd is None else (fd,),
        )
    except OSError:
        return None
    return _Helper(process)


def serve() -> None:
    """A helper's main loop: map the block the spec names, then answer requests (a beam
    search, or the neighbour heuristic over rows of candidates) until stdin closes."""
    requests = sys.stdin.buffer
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, not into the result stream
    spec = pickle.load(requests)
    if spec["path"] is not None:
        with open(spec["path"], "r+b") as file:
            mapping = mmap.mmap(file.fileno(), spec["size"])
    else:
        mapping = mmap.mmap(spec["fd"], spec["size"])
        os.close(spec["fd"])
    arrays = _views(mapping, spec["layout"])
    layers = range(spec["layers"])
    view = SearchView(
        arrays["vectors"],
        arrays["sqnorm"],
        spec["euclidean"],
        [arrays[f"adj{level}"] for level in layers],
        [arrays.get(f"row_of{level}") for level in layers],
    )
    visited = np.zeros((spec["rows"], arrays["vectors"].shape[0] + 1), dtype=bool)
    visited[:, -1] = True
    pickle.dump(_READY, results)
    results.flush()
    try:
        with contextlib.suppress(BrokenPipeError):  # the builder stopped reading: exit
            _answer(requests, results, view, visited)
    finally:
        with contextlib.suppress(OSError):
            results.close()


def _answer(
    requests: IO[bytes], results: IO[bytes], view: SearchView, visited: npt.NDArray[np.bool_]
) -> None:
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            break
        found: object
        if request[0] == "beam":
            _, level, ef, slots, entries = request
            queries = view.vectors.take(slots, axis=0)
            found = beam(view, queries, np.arange(slots.shape[0]), entries, ef, level, visited)
        elif request[0] == "heuristic":
            _, cand, cand_d, m = request
            found = heuristic_mask(view.vectors, view.sqnorm, view.euclidean, cand, cand_d, m)
        else:
            raise ValueError(f"index-db build helper: unknown request {request[0]!r}")
        pickle.dump(found, results, protocol=pickle.HIGHEST_PROTOCOL)
        results.flush()
