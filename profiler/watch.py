"""`profiler watch DIR`: ingest files landing in DIR/<source>/ (or folders under it) and build after
each arrival window.

A file is taken once its size has stopped changing for one scan (so half-copied files wait), is
ingested once (ingest itself refuses content it has seen), then moved to a `_loaded/` folder beside
it; a file ingest refuses, or of which no line loaded (all in `quarantine`: send it again read
another way), goes to a `_rejected/` folder beside it with a `.reason.txt`. Ctrl-C and
SIGTERM stop the loop between steps, never inside an ingest or a build.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.faults import StorageFault
from profiler.lock import Busy
from profiler.project import require_models
from profiler.settings import Settings
from profiler.sources import SOURCES


class _Stop:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:
        self.requested = True


def landed_files(directory: Path, sizes: dict[Path, int]) -> list[tuple[str, Path]]:
    """Files whose size did not change since the last scan, oldest first, per source."""
    ready: list[tuple[str, Path]] = []
    for source in SOURCES:
        folder = directory / source
        if not folder.is_dir():
            continue
        for path in _arrived(folder):
            size = path.stat().st_size
            if sizes.get(path) == size:
                ready.append((source, path))
            sizes[path] = size
    return ready


# what download and sync tools call a file they are still writing
PARTIAL = (".part", ".partial", ".tmp", ".crdownload", ".download", ".filepart")
ARCHIVES = ("_loaded", "_rejected")


def _landed(path: Path) -> bool:
    """A file to take: any name but a hidden one or one a writer is still writing under
    (`.part`, `~$x.xlsx`...): write elsewhere or under such a name, then rename into the folder.
    A type ingest cannot read is taken too, to be rejected with the reason rather than left lying
    there unsaid."""
    name = path.name
    return (
        path.is_file()
        and not name.startswith((".", "~$"))
        and not name.lower().endswith(PARTIAL)
        and name not in ARCHIVES
    )


def _replaced(path: Path, inode: int) -> bool:
    """True when another file was renamed onto `path` since it was opened (or it is gone)."""
    try:
        return path.stat().st_ino != inode
    except FileNotFoundError:
        return True


def _move(path: Path, folder: str, reason: str | None = None) -> None:
    """Into `folder` beside it; a name already there gets a number, so nothing is overwritten."""
    target = path.parent / folder
    target.mkdir(exist_ok=True)
    name, n = path.name, 1
    while (target / name).exists():
        n += 1
        name = f"{path.stem}.{n}{path.suffix}" if path.suffix else f"{path.name}.{n}"
    path.replace(target / name)
    if reason:
        (target / (name + ".reason.txt")).write_text(reason + "\n")
    rejected = path.parent / "_rejected"
    if folder == "_loaded" and not (rejected / path.name).exists():  # moved back, then loaded:
        (rejected / (path.name + ".reason.txt")).unlink(missing_ok=True)  # its old reason goes


def watch_folder(
    settings: Settings,
    directory: Path,
    every: float,
    console,
    *,
    once: bool = False,
    readings: dict | None = None,
) -> bool:
    """`readings`: source -> (mapping, `Reading`), from `commands.landing_readings`; None reads
    every file as sent. False when the last build did not publish everything, or with `once` when
    a file was rejected (`--once` then exits 1, as `profiler build` and `profiler ingest` do)."""
    from rich.markup import escape

    from profiler.commands import build_project, ingest_file
    from profiler.ingest_summary import describe_ingest

    if not directory.is_dir():
        raise ProfilerError(
            f"{directory}: not a folder; create it with one subfolder per source ({', '.join(SOURCES)})"
        )
    require_models(settings.project_dir)  # the project's warehouse and PII key, as ingest
    _check_zone(settings, readings or {})
    for source in SOURCES:
        (directory / source).mkdir(exist_ok=True)
    stop = _Stop()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    sizes: dict[Path, int] = {}
    console.print(f"watching {directory} every {every:g}s (Ctrl-C to stop)", soft_wrap=True)
    loose = sorted(
        p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")
    )
    if loose:  # helper-54: `generate --out data/` then `watch data/` read nothing, unsaid
        shown = ", ".join(loose[:3]) + (f" and {len(loose) - 3} more" if len(loose) > 3 else "")
        console.print(
            f"note: files in {directory} itself are not read ({shown}): move each into the "
            f"subfolder of its source ({', '.join(f'{s}/' for s in SOURCES)})",
            soft_wrap=True,
            markup=False,
        )
    # data a watch stopped before building (or a busy warehouse kept from building) is built on
    # the first scan; a build with nothing new costs well under a second
    pending = settings.warehouse.exists()
    ok = True  # the last build published everything (helper-81: --once said 0 after a refusal)
    rejected = False  # a file went to _rejected: --once exits 1, as `profiler ingest` does
    try:
        while not stop.requested:
            arrived = 0
            for source, path in (
                landed_files(directory, sizes)
                if not once
                else _settled(directory, every, stop, console)
            ):
                if stop.requested:
                    break
                try:
                    inode = path.stat().st_ino
                except FileNotFoundError:
                    continue  # taken away since the scan
                try:
                    mapping, reading = (readings or {}).get(source, ({}, None))
                    result = ingest_file(settings, source, path, mapping, reading)
                except StorageFault:
                    raise  # the warehouse's fault, not the file's: keep it for the next run
                except Busy as err:  # a passing lock is not a bad file: the next scan takes it
                    sizes.pop(path, None)
                    console.print(
                        f"{escape(path.name)}: {escape(str(err))}; left for the next scan",
                        soft_wrap=True,
                    )
                    continue
                except ProfilerError as err:
                    if _replaced(path, inode):
                        continue  # what is there now is another file: the next scan takes it
                    _move(path, "_rejected", str(err))
                    console.print(
                        f"[red]rejected[/red] {escape(path.name)}: {escape(str(err))}",
                        soft_wrap=True,
                    )
                    rejected = True
                    continue
                summary = describe_ingest(result)
                console.print(
                    summary, markup=False, soft_wrap=True
                )  # it quotes the file; lines whole (helper-53: grep)
                sizes.pop(path, None)
                arrived += result.loaded > 0  # something for the build to do
                if _replaced(path, inode):
                    # renamed over while it was read: what is there now waits for the next scan
                    console.print(
                        f"{escape(path.name)} was replaced while read; left for the next scan",
                        soft_wrap=True,
                    )
                    continue
                failure = result.failure()  # as `profiler ingest` exits 1 (helper-84: a file
                if failure:  # cut short went to _loaded, was built on, and --once said 0)
                    _move(path, "_rejected", f"{failure}\n{summary}")
                    console.print(
                        f"[red]rejected[/red] {escape(path.name)}: {escape(failure)}",
                        soft_wrap=True,
                    )
                    rejected = True
                    continue
                _move(path, "_loaded")
            pending = pending or arrived > 0
            if pending and arrived and not _has_events(settings):  # said once per arrival
                console.print("no events yet: the profile is built once events arrive in events/")
            if pending and not stop.requested and _has_events(settings):
                try:
                    ok = build_project(settings, None, False, None, console)
                    pending = False
                except Busy as err:
                    console.print(
                        f"build: {escape(str(err))}; built at the next scan", soft_wrap=True
                    )
            if once:
                break
            _sleep(every, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("stopped")
    return ok and not (once and rejected)


def _has_events(settings: Settings) -> bool:
    """Builds start from events: users or items alone wait for them (no error, no example)."""
    from profiler.settings import connect
    from profiler.state import has_table

    if not settings.warehouse.exists():
        return False
    try:
        con = connect(settings, read_only=True)
    except (duckdb.Error, Busy):  # held by a writer now: the build says so
        return True
    try:
        return has_table(con, "raw_events") and bool(
            con.execute("SELECT count(*) FROM (SELECT 1 FROM raw_events LIMIT 1)").fetchone()[0]
        )
    finally:
        con.close()


def _check_zone(settings: Settings, readings: dict) -> None:
    """A `--time-zone` the warehouse cannot take stops the command now, instead of rejecting
    every file that lands."""
    from profiler.settings import connect
    from profiler.shop_time import zone_for_ingest

    zones = {r.time_zone for _, r in readings.values() if r is not None and r.time_zone}
    if not zones or not settings.warehouse.exists():
        return
    try:
        con = connect(settings, read_only=True)
    except (duckdb.Error, Busy):  # held by a writer now: each ingest still checks
        return
    try:
        for zone in zones:
            zone_for_ingest(con, zone)
    finally:
        con.close()


# `--once` looks at each file twice, this far apart (at most `--every`): a file still growing is
# being copied in under its final name (cp, scp) and waits for the next run; taken, it loaded half
# and the copier finished it inside `_loaded/` (helper-108)
ONCE_SETTLE = 1.0


def _settled(directory: Path, every: float, stop: _Stop, console) -> list[tuple[str, Path]]:
    """`--once`'s files: those whose size did not change over `ONCE_SETTLE` seconds."""
    from rich.markup import escape

    sizes: dict[Path, int] = {}
    landed_files(directory, sizes)  # the first look: takes nothing
    if not sizes:
        return []  # nothing landed: no pause
    _sleep(min(every, ONCE_SETTLE), stop)
    ready = landed_files(directory, sizes)
    taken = {p for _, p in ready}
    for path in sorted(set(sizes) - taken):
        if path.exists():
            console.print(
                f"{escape(path.name)} is still arriving (its size changed during the scan); "
                "left for the next run",
                soft_wrap=True,
            )
    return ready


def _arrived(folder: Path) -> list[Path]:
    """The files to take from one source's folder and the folders under it (a partitioned
    export's `dt=2019-10-17/part-0.parquet`: helper-61, skipped unsaid), in the order they
    landed (then by path): the newer users or items file must load later to win (`--once` took
    them by name: `export_10` before `export_9`). Files named `_...`, and folders below the
    source's named `_...` or `.…`, are not read nor walked: the archives, and what Spark and
    Hadoop write beside their output (`_temporary/` attempts, `_SUCCESS`, `_delta_log/`:
    helpers 65, 67)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        found += [
            p for name in files if _landed(p := Path(root) / name) and not name.startswith("_")
        ]
    return sorted(found, key=lambda p: (p.stat().st_mtime, str(p.relative_to(folder))))


def _sleep(seconds: float, stop: _Stop) -> None:
    end = time.monotonic() + seconds
    while not stop.requested and time.monotonic() < end:
        time.sleep(min(0.2, max(0.0, end - time.monotonic())))
