"""BI-safe publishing: a read-only serving copy of the analyst tables, swapped in atomically.

DuckDB allows one writer per file: a BI tool holding `warehouse.duckdb` open blocks builds, and a
build blocks the BI tool. So after each successful build the analyst-facing tables (see
`catalog.analyst_tables`) are copied into a new DuckDB file, which is checkpointed, closed and then
renamed onto `<stem>.serving.duckdb` with `os.replace`: one atomic step. A reader that opened the
old copy keeps reading the old file (its inode lives until it closes), a reader that opens after
the rename gets the new one whole; nobody ever sees a half-written table. Open it with
`duckdb.connect(path, read_only=True)` (or a BI tool's read-only mode) while builds go on.

The copy carries the tables' descriptions and column docs as DuckDB comments, the engine state
that the docs and the export read (`_profiler.models`, `runs`, `model_runs`, `settings`: the
shop's zone, and of `validations` each table's newest run), the project's macros (so analysts
can apply the profile's rules, `category_levels(path)`, in their own queries), and
`_serving.info`: the run and as-of it holds. A build that changed nothing skips the copy.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from profiler.macros import load_macros
from profiler.schedule import NodeFailed, run_in_order
from profiler.serve.catalog import (
    LATEST_VALIDATIONS,
    ServedTable,
    analyst_tables,
    mixed_as_ofs,
    serving_path,
    table_state,
)
from profiler.settings import ROW_GROUP_SIZE
from profiler.sqltext import literal as _lit
from profiler.sqltext import quote as _q

NEW_CATALOG = "__profiler_serving_new"
ENGINE_TABLES = ("models", "runs", "model_runs", "validations", "settings")  # settings: the zone
# What the copy holds of each: all of it, but of the validations each table's newest run (what
# the docs show): they grow with every build, and were copied whole (helper-88: 3.8M rows, a
# year of hourly builds, doubled a build's time and made a 41 MB copy)
ENGINE_ROWS = {"validations": LATEST_VALIDATIONS}
INFO = "_serving.info"


def _engine_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = '_profiler'"
    ).fetchall()
    present = {r[0] for r in rows}
    return [t for t in ENGINE_TABLES if t in present]


def state_fingerprint(con: duckdb.DuckDBPyConnection, tables: list[ServedTable], macros=()) -> str:
    """Changes whenever anything the serving copy would hold changes (a macro no model calls
    too: helper-92, an analyst's own rule never reached the copy)."""
    parts = [json.dumps({t.name: table_state(con, t) for t in tables}, sort_keys=True, default=str)]
    parts += [f"{m.normal}\n{m.doc}" for m in macros]  # a new description is served too
    for name in _engine_tables(con):
        if name in ("models", "runs", "settings"):
            # models: covered by the table states; runs: a build that changed nothing; settings:
            # the zone never changes, and a build's own bookkeeping there (the batch its
            # address check reached) rewrote the copy in the next idle build (1.65 s, not 0.4)
            continue
        if name == "validations":  # only ever added to: its size and newest time say it all
            # (helper-88: hashing every row cost every idle build more as the builds added up)
            rows, total = con.execute(
                f"SELECT count(*), max(validated_at) FROM _profiler.{name}"
            ).fetchone()
        else:
            rows, total = con.execute(
                f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM _profiler.{name} AS t"
            ).fetchone()
        parts.append(f"{name}:{rows}:{total}")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _published_fingerprint(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        row = con.execute(f"SELECT fingerprint FROM {INFO}").fetchone()
        return row[0] if row else None
    except duckdb.Error:
        return None
    finally:
        con.close()


def _copy_tables(con: duckdb.DuckDBPyConnection, tables: list[ServedTable]) -> dict[str, int]:
    """Copy the tables two at a time, each on its own cursor: their row counts by name.

    Two copies at once keep both cores busy with the many small tables while the widest one
    (`user_profile`) is written; the biggest go first.
    """
    sizes = dict(
        con.execute(
            "SELECT table_name, estimated_size * column_count FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name = 'main'"
        ).fetchall()
    )
    by_name = {t.name: t for t in tables}
    order = sorted(by_name, key=lambda name: -(sizes.get(name) or 0))
    try:
        counts = dict(
            run_in_order(con, order, lambda n: (), lambda c, n: _copy_table(c, by_name[n]))
        )
    except NodeFailed as failed:
        raise failed.cause from None  # the caller reports it (a full disk: in one line)
    return {t.name: counts[t.name] for t in tables}


def _copy_table(con: duckdb.DuckDBPyConnection, table: ServedTable) -> int:
    target = f"{NEW_CATALOG}.main.{_q(table.name)}"
    con.execute(f"CREATE TABLE {target} AS SELECT {table.select} FROM main.{_q(table.name)}")
    if table.description:
        con.execute(f"COMMENT ON TABLE {target} IS {_lit(table.description)}")
    columns = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ?",
            [NEW_CATALOG, table.name],
        ).fetchall()
    }
    for column, doc in table.columns.items():
        if column in columns and doc:
            con.execute(f"COMMENT ON COLUMN {target}.{_q(column)} IS {_lit(doc)}")
    return con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]


@dataclass(frozen=True)
class Held:
    """The serving copy stayed at its last whole build, and why."""

    why: str


def _not_whole(con: duckdb.DuckDBPyConnection, settings, names: list[str]) -> Held | None:
    """Why the analyst tables are not one whole build of the project's SQL, if they are not."""
    from profiler.dag import build_dag
    from profiler.plan import behind_parents, stale_sql
    from profiler.project import load_project
    from profiler.state import read_states

    mixed = mixed_as_ofs(con, names)
    if mixed:
        builds: dict[str, list[str]] = {}  # ordered by as-of, then batch
        for name, state in mixed.items():
            builds.setdefault(state, []).append(name)
        listed = "; ".join(f"{', '.join(n)} as of {state}" for state, n in builds.items())
        return Held(f"the analyst tables are of more than one build ({listed})")
    # helper-87: after an upgrade, `--select M` served M's new SQL beside its parents' old one
    dag, states = build_dag(load_project(settings.project_dir)), read_states(con)
    stale = stale_sql(dag, states)
    if stale:
        return Held(f"{', '.join(stale)} were built by SQL edited since")
    # helper-90: `--select M` after an edit of M served the new M beside readers built on the old
    behind = behind_parents(dag, states)
    if behind:
        return Held(f"{', '.join(behind)} were built on an earlier version of a parent")
    return None


def publish_serving_copy(settings, con: duckdb.DuckDBPyConnection, run=None) -> Path | Held | None:
    """Copy the analyst tables into a new file and swap it in; None when nothing changed.

    `con` is the build's connection to the warehouse, still under the build lock, so the tables
    copied are exactly the state the build just published. The copy holds one whole build of
    the project's SQL: when the analyst tables are of more than one build (a `--select` that
    built some of them, a look at the past that left the history; helper-70: the copy mixed two
    builds under one as-of) or a model was built by SQL edited since, the last copy stays, and
    why is returned instead.
    """
    path = serving_path(settings.warehouse)
    # copies (and their WALs) of builds killed while copying: this build holds the lock, so no
    # other copy is being written
    for leftover in path.parent.glob(f"{glob.escape(path.name)}.tmp-*"):
        leftover.unlink(missing_ok=True)
    tables = analyst_tables(con, settings.project_dir)
    held = _not_whole(con, settings, [t.name for t in tables])
    if held:
        return held
    macros = load_macros(settings.project_dir)
    fingerprint = state_fingerprint(con, tables, macros)
    if _published_fingerprint(path) == fingerprint:
        return None
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    # the warehouse's row groups (see settings.ROW_GROUP_SIZE): the copy of the profile's tables
    # takes 0.75 s instead of 2.1 s at DuckDB's default for 100k users
    con.execute(f"ATTACH {_lit(str(tmp))} AS {NEW_CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
    attached = True
    try:
        counts = _copy_tables(con, tables)
        for macro in macros:  # the rules, for analysts' own queries, with their descriptions
            for statement in macro.create_in(NEW_CATALOG):
                con.execute(statement)
        con.execute(f"CREATE SCHEMA {NEW_CATALOG}._profiler")
        for name in _engine_tables(con):
            rows = ENGINE_ROWS.get(name, f"SELECT * FROM _profiler.{name}")
            con.execute(f"CREATE TABLE {NEW_CATALOG}._profiler.{name} AS {rows}")
        as_of = con.execute("SELECT max(as_of) FROM _profiler.models").fetchone()[0]
        con.execute(f"CREATE SCHEMA {NEW_CATALOG}._serving")
        con.execute(
            f"CREATE TABLE {NEW_CATALOG}.{INFO} AS SELECT ? AS fingerprint, ? AS run_id, "
            "CAST(? AS TIMESTAMP) AS as_of, ? AS tables",
            [fingerprint, getattr(run, "run_id", None), as_of, json.dumps(counts)],
        )
        con.execute(f"CHECKPOINT {NEW_CATALOG}")
        con.execute(f"DETACH {NEW_CATALOG}")
        attached = False
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # the atomic swap
    finally:
        if attached:
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DETACH {NEW_CATALOG}")
        for leftover in (tmp, Path(f"{tmp}.wal")):
            leftover.unlink(missing_ok=True)
    return path
