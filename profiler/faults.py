"""Storage faults: a full disk, a read-only warehouse or too little memory, told in one line.

DuckDB reports these as `IOException`, `TransactionException` ("Failed to commit: Could not write
file ...") or `OutOfMemoryException`, with the operating system's words inside the message and no
errno. A user cannot act on "TransactionContext Error"; they can free space, fix permissions or
move the warehouse. So every command that writes turns such an error into a `ProfilerError` that
names the warehouse and says what to do, and a build stops at the first one instead of failing
model after model on the same full disk.

Usage::

    try:
        ...
    except duckdb.Error as err:
        raise_if_storage_fault(err, settings)
        raise
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from profiler.errors import ProfilerError

if TYPE_CHECKING:
    from profiler.settings import Settings

_FULL = ("no space left on device", "file too large", "disk quota exceeded")
_READ_ONLY = ("permission denied", "read-only file system", "operation not permitted")
# a warehouse file shorter than its own blocks say (cut short by a copy, a crash of the disk):
# DuckDB finds it only when it reads a lost block (helper-62: a traceback at a build's COMMIT)
_DAMAGED = ("could not read enough bytes",)
# a block whose checksum fails arrives as a bare duckdb.Error whose message starts so
_BAD_BLOCK = "Corrupt database file:"
_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_READ_ONLY_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
_QUOTED_PATH = re.compile(r'"(/[^"]+)"')
# The DuckDB errors a refused write or allocation arrives as (a failed COMMIT is a
# TransactionException, a failed checkpoint a FatalException). Only their messages are read: a
# ConversionException or a BinderException quotes data and SQL, which may say anything.
_STORAGE_ERRORS = (duckdb.IOException, duckdb.TransactionException, duckdb.FatalException)


class StorageFault(ProfilerError):
    """A write the disk refused; nothing half-written was published (see `profiler.publish`)."""


def fault_kind(err: BaseException) -> str | None:
    """Which fault: "disk full", "not writable", "out of memory", "damaged"; None when not
    about storage."""
    if isinstance(err, duckdb.OutOfMemoryException):
        return "out of memory"
    if isinstance(err, OSError):
        if err.errno in _FULL_ERRNOS:
            return "disk full"
        return "not writable" if err.errno in _READ_ONLY_ERRNOS else None
    if isinstance(err, duckdb.Error) and str(err).startswith(_BAD_BLOCK):
        return "damaged"
    if not isinstance(err, _STORAGE_ERRORS) or isinstance(err, duckdb.HTTPException):
        return None
    lowered = str(err).lower()
    if any(word in lowered for word in _FULL):
        return "disk full"
    if "out of memory" in lowered:
        return "out of memory"
    if any(word in lowered for word in _READ_ONLY):
        return "not writable"
    if "could not write" in lowered or "could not truncate" in lowered:
        return "disk full"
    if any(word in lowered for word in _DAMAGED):
        return "damaged"
    return None


def fault_detail(err: BaseException) -> str:
    """The operating system's words and the file, without DuckDB's prefixes: for one line."""
    if isinstance(err, OSError):
        return f"{os.strerror(err.errno or 0)}: {err.filename}" if err.filename else str(err)
    text = str(err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    path = _QUOTED_PATH.search(first)
    reason = first.rsplit(": ", 1)[-1]
    return f"{reason}: {path.group(1)}" if path else reason


def storage_fault(err: BaseException, settings: Settings) -> StorageFault | None:
    """The one-line error for a storage fault, or None when `err` is some other problem.

    "Permission denied" counts only for the warehouse's own files (the file, its WAL, its lock):
    an unreadable input file is a different problem with a different fix.
    """
    kind = fault_kind(err)
    detail = fault_detail(err)
    if kind == "disk full":
        return StorageFault(_disk_full(settings.warehouse, detail))
    if kind == "out of memory":
        return StorageFault(_out_of_memory(settings))
    if kind == "not writable" and str(settings.warehouse) in detail:
        return StorageFault(_read_only(settings.warehouse, detail))
    spill = settings.temp_dir or Path(f"{settings.warehouse}.tmp")
    if kind == "not writable" and str(spill) in detail:
        return StorageFault(_no_spill(settings, detail))
    # a bad checksum names no file: the commands read no other DuckDB file than the warehouse
    if kind == "damaged" and (str(settings.warehouse) in detail or "/" not in detail):
        return StorageFault(_damaged(settings.warehouse, detail))
    return None


def raise_if_storage_fault(err: BaseException, settings: Settings) -> None:
    """Re-raise `err` as a clear `StorageFault` when it is one; otherwise return."""
    fault = storage_fault(err, settings)
    if fault is not None:
        raise fault from None


def check_writable(settings: Settings) -> None:
    """Refuse at once a warehouse DuckDB could open but never commit to.

    DuckDB opens a writable file in a read-only folder without complaint; its first COMMIT then
    fails creating `<file>.wal`, after a build did all its work, once per model. Trying the two
    writes DuckDB needs (the file, a new file beside it) refuses that at once, whatever the reason:
    permissions, a read-only mount, ACLs.
    """
    refused = write_refused(settings.warehouse)
    if refused is not None:
        raise refused_write(settings.warehouse, refused) from None


def write_refused(warehouse: Path) -> OSError | None:
    """The error of the first write DuckDB would need that the system refuses, else None."""
    try:
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        if warehouse.exists():
            os.close(os.open(warehouse, os.O_WRONLY))
        with tempfile.TemporaryFile(dir=warehouse.parent, prefix=f".{warehouse.name}.probe"):
            pass
    except OSError as err:
        return err
    return None


def read_only_refusal(err: OSError) -> bool:
    """Is this refused write a read-only file, folder or mount (not a full disk)?"""
    return err.errno in _READ_ONLY_ERRNOS


def refused_write(warehouse: Path, err: OSError) -> StorageFault:
    """The error for an OS write refused next to the warehouse (the probe, the lock file)."""
    detail = f"{os.strerror(err.errno or 0)}: {err.filename or warehouse.parent}"
    if err.errno in _FULL_ERRNOS:
        return StorageFault(_disk_full(warehouse, detail))
    return StorageFault(_read_only(warehouse, detail))


def _disk_full(warehouse: Path, detail: str) -> str:
    return (
        f"disk full: could not write ({detail}); warehouse {warehouse} holds no half-written "
        "table. Free space on that disk (or set PROFILER_TEMP_DIR to a disk with room, where "
        "DuckDB spills) and run the command again: an ingest loaded none of the file, a build "
        "carries on where it stopped"
    )


def _damaged(warehouse: Path, detail: str) -> str:
    return (
        f"warehouse {warehouse} is damaged: part of the file cannot be read ({detail}); cut short "
        "by a copy, or a disk error? Restore the file from a backup, or start a new warehouse and "
        "ingest the raw files again"
    )


def _read_only(warehouse: Path, detail: str) -> str:
    return (
        f"warehouse {warehouse} is not writable ({detail}); nothing was changed. Make the file and "
        "its folder writable (DuckDB writes <warehouse>.wal beside it), or point --warehouse / "
        "PROFILER_WAREHOUSE at a writable place"
    )


def _no_spill(settings: Settings, detail: str) -> str:
    return (
        f"cannot spill to disk ({detail}): DuckDB needed more than PROFILER_MEMORY_LIMIT="
        f"{settings.memory_limit} and may not write where it spills; published tables are as they "
        "were. Make that folder writable, or set PROFILER_TEMP_DIR to a writable folder with room, "
        "and run again"
    )


def _out_of_memory(settings: Settings) -> str:
    return (
        f"out of memory: DuckDB needed more than PROFILER_MEMORY_LIMIT={settings.memory_limit} "
        f"for warehouse {settings.warehouse}; published tables are as they were. Raise "
        "PROFILER_MEMORY_LIMIT, lower PROFILER_THREADS, or set PROFILER_TEMP_DIR to a disk with "
        "room to spill, and run again"
    )
