"""One writer at a time per warehouse (and per --out folder), with a lock the operating system
releases on any death.

`flock` is dropped by the kernel when the holding process exits, even on kill -9, so a stale lock
cannot exist; the file only carries who holds it, for the message the second build prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from profiler.errors import ProfilerError
from profiler.faults import refused_write


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


class Busy(ProfilerError):
    """Another profiler command holds the warehouse (or --out folder): try again once it is done."""


def warehouse_lock(warehouse: Path, command: str) -> contextlib.AbstractContextManager[None]:
    """One writer of the warehouse at a time: `profiler <command>` holds `<warehouse>.lock`."""
    path = lock_path(warehouse)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:  # a read-only folder or lock file: say so, not a traceback
        raise refused_write(warehouse, err) from None
    return _held(fd, str(warehouse), command)


def folder_lock(out: Path, command: str) -> contextlib.AbstractContextManager[None]:
    """One writer of an --out folder at a time (`export`, `docs`): `profiler <command>` holds
    `.<name>.lock` beside it, so two runs never share a temporary name or the manifest. An OSError
    opening it (a read-only parent) is the caller's to word."""
    out = out.resolve()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out.parent / f".{out.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        if not out.is_dir():
            raise
        # a folder one may write in a parent one may not (a mounted volume, `--out .` in a
        # shared folder): its lock goes inside it; every run into it finds the same file
        fd = os.open(out / ".profiler.lock", os.O_RDWR | os.O_CREAT, 0o644)
    return _held(fd, f"--out {out}", command)


@contextlib.contextmanager
def _held(fd: int, what: str, command: str) -> Iterator[None]:
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise Busy(
                f"{what} is busy: {holder} holds it; wait for it to finish or stop it"
            ) from None
        # The holder's name is only for the message: a full disk must not fail the lock here.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"`profiler {command}` (pid {os.getpid()})".encode(), 0)
        yield
    finally:
        os.close(fd)
