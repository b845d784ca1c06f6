"""Engine state in schema `_profiler`: what each model has processed, and the runs.

A model's row says which batches it has incorporated (`watermark`, the highest global batch id),
the as-of time it was built at, its fingerprints, a `version` new on every full rebuild, drawn
from one sequence (so incremental children know they must rebuild too, also after
`ingest --replace` forgot the models), and the parents' versions it last saw.
State rows are written in the same transaction as the data they describe: a killed build can
never leave state that claims work the tables do not hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb

from profiler.errors import ProfilerError
from profiler.sources import SOURCES, engine_columns, raw_table_ddl

SCHEMA = "_profiler"

_DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.models (
        name VARCHAR PRIMARY KEY, kind VARCHAR, data_fingerprint VARCHAR, metadata_fingerprint VARCHAR,
        version BIGINT, watermark BIGINT, as_of TIMESTAMP, parent_versions VARCHAR, rows BIGINT,
        fingerprint_parts VARCHAR)""",
    # processed day intervals, written by earlier versions and read by none (days to rebuild
    # come from the batches): gone, so nobody mistakes it for a record
    f"DROP TABLE IF EXISTS {SCHEMA}.intervals",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.runs (
        run_id VARCHAR PRIMARY KEY, command VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
        as_of TIMESTAMP, status VARCHAR, models_built INTEGER, models_failed INTEGER,
        max_batch BIGINT)""",
    f"CREATE SEQUENCE IF NOT EXISTS {SCHEMA}.batch_seq START 1",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.batches (
        batch_id BIGINT PRIMARY KEY, source VARCHAR, file VARCHAR, content_sha256 VARCHAR,
        lines BIGINT, loaded BIGINT, quarantined BIGINT, min_ts TIMESTAMP, max_ts TIMESTAMP,
        superseded_by BIGINT, file_columns VARCHAR[])""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.settings (name VARCHAR PRIMARY KEY, value VARCHAR)""",
    # content a batch held before `--replace-batch` put another file in its place: sent again,
    # it is refused (helper-53: the wrong file, re-sent by a scheduler, loaded beside its fix)
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.replaced_contents (
        source VARCHAR, content_sha256 VARCHAR, batch_id BIGINT)""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        batch_id BIGINT, source VARCHAR, file VARCHAR, record BIGINT, reason VARCHAR, raw VARCHAR)""",
]


def has_table(con: duckdb.DuckDBPyConnection, name: str, schema: str = "main") -> bool:
    """Does the current database hold table `schema.name`?"""
    (n,) = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return n > 0


# The layout of the engine state. A profiler that changes `_profiler` so that an older one would
# misread it raises this; the older one then refuses the warehouse instead of crashing or writing
# rows a newer reader would misread (helper-62: an extra state column broke every command).
STATE_VERSION = 1
_STATE_VERSION_KEY = "state_version"


def check_state_version(
    con: duckdb.DuckDBPyConnection, warehouse: object = "the warehouse"
) -> None:
    """Refuse a warehouse whose engine state a newer profiler wrote."""
    found = get_setting(con, _STATE_VERSION_KEY)
    if found is None or (found.isdigit() and int(found) <= STATE_VERSION):
        return
    raise ProfilerError(
        f"{warehouse} was written by a newer profiler (engine state version {found}; this one "
        f"knows up to {STATE_VERSION}): upgrade profiler to use it"
    )


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables, quarantine and engine state when missing (idempotent)."""
    for ddl in _DDL + [raw_table_ddl(s) for s in SOURCES.values()]:
        con.execute(ddl)
    check_state_version(con)
    _add_state_columns(con)
    add_missing_columns(con)
    _add_version_seq(con)
    con.execute(
        f"INSERT INTO {SCHEMA}.settings (name, value) SELECT ?, ? "
        f"WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.settings WHERE name = ?)",
        [_STATE_VERSION_KEY, str(STATE_VERSION), _STATE_VERSION_KEY],
    )
    con.execute(
        f"INSERT INTO {SCHEMA}.settings (name, value) SELECT ?, CAST(uuid() AS VARCHAR) "
        f"WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.settings WHERE name = ?)",
        [LINEAGE, LINEAGE],
    )


# The identity of the data a warehouse holds: made with the warehouse, made anew when
# `ingest --replace` takes data out. A trained model is reused only within one lineage, so never
# on another shop's warehouse (the project folder, where models are kept, may serve several) nor
# on data that has since been replaced.
LINEAGE = "data_lineage"


def data_lineage(con: duckdb.DuckDBPyConnection) -> str | None:
    if not has_table(con, "settings", SCHEMA):
        return None
    row = con.execute(f"SELECT value FROM {SCHEMA}.settings WHERE name = ?", [LINEAGE]).fetchone()
    return row[0] if row else None


def new_lineage(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"UPDATE {SCHEMA}.settings SET value = CAST(uuid() AS VARCHAR) WHERE name = ?", [LINEAGE]
    )


# columns state tables gained after warehouses were made: in `batches`, the batch that took over
# the quarantine rows of a send whose every line was quarantined (the file sent again), and the
# file's header (for telling a renamed column from another feed: `ingest_checks.columns_dropped`);
# in `models`, what each part of the SQL and settings hashed to (`Model.fingerprint_parts`); in
# `runs`, the newest batch a build saw
_STATE_COLUMNS = {
    ("runs", "max_batch"): "BIGINT",
    ("batches", "superseded_by"): "BIGINT",
    ("batches", "file_columns"): "VARCHAR[]",
    ("models", "fingerprint_parts"): "VARCHAR",
}


def _add_state_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Warehouses from before a column of `_STATE_COLUMNS` get it, NULL in their rows."""
    present = set(
        con.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns AS c "
            "JOIN information_schema.tables AS t USING (table_catalog, table_schema, table_name) "
            "WHERE c.table_catalog = current_database() AND c.table_schema = ? "
            "AND t.table_type = 'BASE TABLE'",  # a view of that name is no table
            [SCHEMA],
        ).fetchall()
    )
    tables = {t for t, _ in present}
    for (table, name), kind in _STATE_COLUMNS.items():
        if table in tables and (table, name) not in present:
            con.execute(f"ALTER TABLE {SCHEMA}.{table} ADD COLUMN {name} {kind}")


def add_missing_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Raw tables from before a column (a canonical one, or the engine's `_record` of users and
    items) get it, NULL on their rows, as does `user_scores` (horizon_days); views (a
    point-in-time copy's) are left alone."""
    have = {
        (t, c)
        for t, c in con.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns AS c "
            "JOIN information_schema.tables AS t USING (table_catalog, table_schema, table_name) "
            "WHERE c.table_catalog = current_database() AND c.table_schema = current_schema() "
            "AND t.table_type = 'BASE TABLE' AND starts_with(c.table_name, 'raw_')"
        ).fetchall()
    }
    tables = {t for t, _ in have}
    for source in SOURCES.values():
        if source.table not in tables:
            continue
        wanted = {c.name: c.type for c in source.columns}
        wanted |= {name: kind.split()[0] for name, kind in engine_columns(source).items()}
        for name, kind in wanted.items():
            if (source.table, name) not in have:
                con.execute(f'ALTER TABLE {source.table} ADD COLUMN "{name}" {kind}')
    scores = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = current_schema() AND table_name = 'user_scores' AND table_type = 'BASE TABLE'"
    ).fetchone()[0]
    if scores:  # the model layer's table: its columns are profiler.ml.score's
        from profiler.ml.score import add_missing_columns as add_score_columns

        add_score_columns(con)


def _add_version_seq(con: duckdb.DuckDBPyConnection) -> None:
    """Model versions come from one sequence, so a version is never handed out twice, also
    after `ingest --replace` forgot the models; a warehouse from before it starts it above every
    version its states hold or have seen."""
    ((exists,),) = con.execute(
        "SELECT count(*) FROM duckdb_sequences() WHERE database_name = current_database() "
        "AND schema_name = ? AND sequence_name = 'version_seq'",
        [SCHEMA],
    ).fetchall()
    if exists:
        return
    states = read_states(con).values()
    seen = [s.version for s in states] + [v for s in states for v in s.parent_versions.values()]
    con.execute(f"CREATE SEQUENCE {SCHEMA}.version_seq START {max(seen, default=0) + 1}")


def next_version(con: duckdb.DuckDBPyConnection) -> int:
    """A model version no state holds or has seen."""
    ((version,),) = con.execute(f"SELECT nextval('{SCHEMA}.version_seq')").fetchall()
    return version


@dataclass
class ModelState:
    name: str
    kind: str
    data_fingerprint: str
    metadata_fingerprint: str
    version: int
    watermark: int
    as_of: datetime | None
    parent_versions: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    # part of the SQL and settings -> its hash (`Model.fingerprint_parts`); empty when written by
    # a profiler from before it
    fingerprint_parts: dict[str, str] = field(default_factory=dict)


def read_states(con: duckdb.DuckDBPyConnection) -> dict[str, ModelState]:
    """Every model's state; a warehouse that `ensure_schema` has not brought up to date yet (an
    older profiler's, the embedded example) reads with its columns' defaults."""
    cur = con.execute(f"SELECT * FROM {SCHEMA}.models")
    names = [d[0] for d in cur.description]
    states = {}
    for row in cur.fetchall():
        r = dict(zip(names, row, strict=True))
        states[r["name"]] = ModelState(
            r["name"], r["kind"], r["data_fingerprint"], r["metadata_fingerprint"], r["version"],
            r["watermark"], r["as_of"], json.loads(r["parent_versions"] or "{}"), r["rows"] or 0,
            json.loads(r.get("fingerprint_parts") or "{}"),
        )  # fmt: skip
    return states


def write_state(con: duckdb.DuckDBPyConnection, s: ModelState) -> None:
    """Upsert one model's state; call inside the publish transaction."""
    con.execute(f"DELETE FROM {SCHEMA}.models WHERE name = ?", [s.name])
    con.execute(
        f"INSERT INTO {SCHEMA}.models (name, kind, data_fingerprint, metadata_fingerprint, version, "
        "watermark, as_of, parent_versions, rows, fingerprint_parts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            s.name,
            s.kind,
            s.data_fingerprint,
            s.metadata_fingerprint,
            s.version,
            s.watermark,
            s.as_of,
            json.dumps(s.parent_versions, sort_keys=True),
            s.rows,
            json.dumps(s.fingerprint_parts, sort_keys=True),
        ],
    )


def forget_model(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute(f"DELETE FROM {SCHEMA}.models WHERE name = ?", [name])


# the sources whose times make the data's as-of, in order: the newest event, else feedback
AS_OF_SOURCES = ("events", "feedback")


def newest_data(
    con: duckdb.DuckDBPyConnection,
    through_batch: int | None = None,
    *,
    leaving_out: dict[str, tuple[int, int]] | None = None,
) -> datetime | None:
    """The newest event time ingested, else the newest feedback time: the data's as-of (the one
    place this rule lives); with `through_batch`, as it was once that batch had been ingested;
    with `leaving_out` ({raw table: (first, last) batch}), without those batches (a source suite
    did not pass them). Both read the batches' own time ranges, not the raw rows."""
    for source in AS_OF_SOURCES:
        if through_batch is None and not leaving_out:
            if not has_table(con, f"raw_{source}"):  # `check` on a warehouse without it
                continue
            sql, params = f"SELECT max(ts) FROM raw_{source}", []
        else:
            first, last = (leaving_out or {}).get(f"raw_{source}", (0, -1))
            sql = (
                f"SELECT max(max_ts) FROM {SCHEMA}.batches WHERE source = ? AND loaded > 0 "
                "AND batch_id <= ? AND superseded_by IS NULL AND batch_id NOT BETWEEN ? AND ?"
            )
            params = [source, 2**62 if through_batch is None else through_batch, first, last]
        newest = con.execute(sql, params).fetchone()[0]
        if newest:
            return newest
    return None


def data_arrived_between(
    con: duckdb.DuckDBPyConnection, after_batch: int | None, start: datetime, end: datetime
) -> bool:
    """Has a batch ingested after `after_batch` brought events or feedback timed in (start, end]?
    The batches' time ranges rule most out; the raw rows of the rest say for sure."""
    for source in ("events", "feedback"):
        ids = [
            b
            for (b,) in con.execute(
                f"SELECT batch_id FROM {SCHEMA}.batches WHERE source = ? AND loaded > 0 "
                "AND superseded_by IS NULL AND batch_id > ? AND min_ts <= ? AND max_ts > ?",
                [source, after_batch or 0, end, start],
            ).fetchall()
        ]
        if (
            ids
            and con.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM raw_{source} WHERE _batch_id IN "
                f"({', '.join(map(str, ids))}) AND ts > ? AND ts <= ? LIMIT 1)",
                [start, end],
            ).fetchone()[0]
        ):
            return True
    return False


# A load taken out by `ingest --replace` fed every history change stamped from its first time on
# (or, for users and items, since the data before it): the next build that merges a history
# takes those back (`build_model._history_plan`), then forgets the mark.
_STALE = "history_stale_from:"


def get_setting(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """A value of `_profiler.settings`, None when unset (or before the table exists)."""
    if not has_table(con, "settings", SCHEMA):
        return None
    rows = con.execute(f"SELECT value FROM {SCHEMA}.settings WHERE name = ?", [name]).fetchall()
    return rows[0][0] if rows else None


def put_setting(con: duckdb.DuckDBPyConnection, name: str, value: str) -> None:
    """Set a value of `_profiler.settings`, in the caller's transaction."""
    con.execute(f"DELETE FROM {SCHEMA}.settings WHERE name = ?", [name])
    con.execute(f"INSERT INTO {SCHEMA}.settings (name, value) VALUES (?, ?)", [name, value])


def mark_history_stale(con: duckdb.DuckDBPyConnection, model: str, since: datetime) -> None:
    """Changes of `model` stamped at or after `since` saw data since replaced (the earliest
    mark wins)."""
    old = history_stale_from(con, model)
    if old is not None and old <= since:
        return
    put_setting(con, _STALE + model, since.isoformat(sep=" "))


def history_stale_from(con: duckdb.DuckDBPyConnection, model: str) -> datetime | None:
    """The rewind point of a marked history: changes stamped after it go (a microsecond before
    the mark, so a change stamped at it goes too)."""
    value = get_setting(con, _STALE + model)
    return datetime.fromisoformat(value) - timedelta(microseconds=1) if value else None


def clear_history_mark(con: duckdb.DuckDBPyConnection, model: str) -> None:
    con.execute(f"DELETE FROM {SCHEMA}.settings WHERE name = ?", [_STALE + model])


def max_batch(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(f"SELECT coalesce(max(batch_id), 0) FROM {SCHEMA}.batches").fetchone()[0]


# Intervals: [start, end) pairs of days, merged and removed by small pure functions.

Interval = tuple[date, date]


def merge_intervals(intervals: list[Interval]) -> list[Interval]:
    """Sort and merge overlapping or touching intervals.

    >>> merge_intervals([(date(2020, 1, 3), date(2020, 1, 4)), (date(2020, 1, 1), date(2020, 1, 3))])
    [(datetime.date(2020, 1, 1), datetime.date(2020, 1, 4))]
    """
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def days_to_intervals(days: list[date]) -> list[Interval]:
    return merge_intervals([(d, d + timedelta(days=1)) for d in days])
