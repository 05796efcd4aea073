"""strata_testkit: the shared storage test kit of the Strata engines (not published).

Theory of operation
-------------------
Strata engines do all file I/O through one seam, a flat *filesystem* object and the
*files* it opens (:mod:`strata_testkit._protocols`). This kit provides stand-ins for it:

* :class:`MemoryFile` -- one in-memory file, always durable;
* :class:`MemoryFS` -- an in-memory directory, always durable, with fault injection;
* :class:`CrashFS` -- an in-memory directory that traces every op and yields every state
  a power loss could leave (drop, keep, prefixes, torn and trashed writes, reorderings),
  modelled on SQLite's ``test6.c`` crash VFS and ALICE/CrashMonkey;
* :func:`explore_crashes` -- run a workload once and check each crash state at each point.

Layering: ``_image`` (pure byte ops) <- ``_faults`` <- ``_livefs`` (MemoryFS) <-
``_crashmodel`` (durability + replay) <- ``_states`` (variant choice) <- ``_crashfs`` <-
``_explore``. See README.md for the crash model and examples.
"""

from __future__ import annotations

from strata_testkit._crashfs import CrashFS, CrashPointKind
from strata_testkit._explore import CrashCheckError, explore_crashes
from strata_testkit._faults import FaultOp, FaultPlan
from strata_testkit._livefs import FSFile, MemoryFS
from strata_testkit._memfile import MemoryFile
from strata_testkit._protocols import FileProtocol, FileSystemProtocol
from strata_testkit._states import CrashState, Variant
from strata_testkit._trace import (
    Create,
    Fsync,
    FsyncDir,
    Rename,
    TraceOp,
    Truncate,
    Unlink,
    Write,
)

__all__ = [
    # the I/O seam
    "FileProtocol",
    "FileSystemProtocol",
    # always-durable stand-ins
    "MemoryFile",
    "MemoryFS",
    "FSFile",
    # power loss
    "CrashFS",
    "CrashPointKind",
    "CrashState",
    "Variant",
    "explore_crashes",
    "CrashCheckError",
    # trace records
    "TraceOp",
    "Write",
    "Truncate",
    "Fsync",
    "Create",
    "Rename",
    "Unlink",
    "FsyncDir",
    # fault injection
    "FaultOp",
    "FaultPlan",
]
