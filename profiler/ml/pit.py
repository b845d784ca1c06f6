"""Point-in-time feature builds: the project's own models, built as of a cutoff, aside.

A training set needs the features exactly as a build `--as-of C` would have published them. Rather
than a second feature path, the engine itself builds them into a scratch catalog attached next to
the warehouse: the raw tables there are views over the warehouse's raw tables, the engine injects
`ts <= C` into every read of them (so no model can see past the cutoff), and the published
warehouse is never touched. Several cutoffs reuse the one scratch catalog.

Usage:

    with point_in_time(con, project_dir, scratch) as pit:
        pit.build(cutoff, ["user_profile"])
        ...read features from `con` (the scratch catalog is the current one)...
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.sources import SOURCES
from profiler.sqltext import quote as _q

PIT_CATALOG = "__profiler_pit"


def current_catalog(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_database()").fetchone()[0]


@dataclass
class PointInTime:
    con: duckdb.DuckDBPyConnection
    project_dir: Path
    warehouse: str  # the warehouse catalog, where labels and published tables live

    def build(self, cutoff: datetime, tables: list[str] | tuple[str, ...]) -> None:
        """Build `tables` and their ancestors as of `cutoff`, from scratch; fail loudly."""
        from profiler.build import BuildOptions, run_build

        run = run_build(
            self.con,
            self.project_dir,
            BuildOptions(select=" ".join(f"+{t}" for t in tables), as_of=cutoff, full_refresh=True),
        )
        bad = [r for r in run.results if r.status != "success"]
        if bad:
            raise ProfilerError(
                f"point-in-time build as of {cutoff} failed: {bad[0].model}: "
                f"{bad[0].message or bad[0].reason}"
            )
        leaks = future_values(self.con, tables, cutoff)
        if leaks:
            raise ProfilerError(
                f"leakage: features built as of {cutoff} hold later times ({'; '.join(leaks)}); "
                "a model reads data past the as-of (the wall clock: now(), current_date?)"
            )


def future_values(
    con: duckdb.DuckDBPyConnection, tables: list[str] | tuple[str, ...], cutoff: datetime
) -> list[str]:
    """TIMESTAMP/DATE columns of `tables` (in the current catalog) holding values after `cutoff`.

    A feature built as of C can only have seen times up to C; a later time in a feature table
    means some model read past the as-of. Dates are compared with the cutoff's day.
    """
    from profiler.plan import ts_literal

    found = []
    for table in tables:
        cols = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = "
            "current_database() AND table_schema = 'main' AND table_name = ? "
            "AND (data_type LIKE 'TIMESTAMP%' OR data_type = 'DATE')",
            [table],
        ).fetchall()
        for column, dtype in cols:
            bound = ts_literal(cutoff) if dtype != "DATE" else f"CAST({ts_literal(cutoff)} AS DATE)"
            later = con.execute(
                f"SELECT max({_q(column)}) FROM {_q(table)} WHERE {_q(column)} > {bound}"
            ).fetchone()[0]
            if later is not None:
                found.append(f"{table}.{column} = {later}")
    return found


@contextlib.contextmanager
def point_in_time(
    con: duckdb.DuckDBPyConnection, project_dir: Path, scratch_dir: Path | None = None
) -> Iterator[PointInTime]:
    """Attach a scratch catalog over the warehouse's raw data, make it current, clean up after.

    `scratch_dir` holds the scratch database file (so big builds can spill to disk); without it
    the scratch catalog lives in memory.
    """
    from profiler.state import ensure_schema

    warehouse = current_catalog(con)
    if warehouse == PIT_CATALOG:
        raise ProfilerError("a point-in-time build is already running on this connection")
    path = ":memory:"
    if scratch_dir is not None:
        scratch_dir.mkdir(parents=True, exist_ok=True)
        _remove_dead_scratch(scratch_dir)
        path = str(scratch_dir / f"pit-{os.getpid()}.duckdb")
        for leftover in (Path(path), Path(path + ".wal")):
            leftover.unlink(missing_ok=True)
    con.execute(f"ATTACH '{path}' AS {PIT_CATALOG}")
    failed = True
    try:
        con.execute(f"USE {PIT_CATALOG}")
        wh = _q(warehouse)
        for source in SOURCES.values():
            con.execute(f"CREATE VIEW {source.table} AS SELECT * FROM {wh}.main.{source.table}")
        con.execute("CREATE SCHEMA _profiler")
        con.execute(f"CREATE VIEW _profiler.batches AS SELECT * FROM {wh}._profiler.batches")
        ensure_schema(con)  # the rest of the engine state; existing views are left alone
        yield PointInTime(con, Path(project_dir), warehouse)
        failed = False
    finally:
        try:
            con.execute(f"USE {_q(warehouse)}")
            con.execute(f"DETACH {PIT_CATALOG}")
        except duckdb.Error:
            # After a failure (a full disk, say) the clean-up may fail too: the first error is
            # the one to report (helper-62: the DETACH's own error hid it)
            if not failed:
                raise
        if path != ":memory:":
            for leftover in (Path(path), Path(path + ".wal")):
                leftover.unlink(missing_ok=True)


def _remove_dead_scratch(scratch_dir: Path) -> None:
    """Remove the scratch files of point-in-time builds whose process is gone (killed, say):
    each is named after its process, and nothing else would ever remove it (helper-62: 133 MB
    after 39 killed trainings)."""
    for leftover in scratch_dir.glob("pit-*.duckdb*"):
        pid = leftover.name.removeprefix("pit-").split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
