"""Decide, per model, what a build must do: skip it, rebuild it, or recompute a slice.

Change is detected from data, not from run history: every raw row carries the global batch id that
loaded it, and each model records the highest batch it has incorporated (its watermark). What a
model must recompute is derived from the raw rows of the batches after its watermark (plus rows
that an as-of change brings in), so a build interrupted anywhere resumes correctly: a model that
did not publish still has its old watermark and simply sees more new rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from profiler.dag import Dag
from profiler.project import Kind, Model
from profiler.sources import BATCH_COLUMN, SOURCES
from profiler.state import (
    SCHEMA,
    Interval,
    ModelState,
    days_to_intervals,
    history_stale_from,
    merge_intervals,
)

SOURCE_BY_TABLE = {s.table: s for s in SOURCES.values()}
MAX_INTERVALS = 32  # beyond this many separate day ranges, one covering range reads faster


@dataclass
class Plan:
    model: str
    action: str  # "skip" | "full" | "slice"
    reason: str
    watermark: int
    intervals: list[Interval] = field(default_factory=list)  # by_time: output days to rewrite
    keys_sql: str | None = None  # by_key: SELECT of the touched keys
    # scd2: history stamped after this time was built ahead of its data; take it back first
    rewind_after: datetime | None = None

    @property
    def does_work(self) -> bool:
        return self.action != "skip"


@dataclass(frozen=True)
class BuildContext:
    as_of: datetime
    max_batch: int
    full_refresh: bool = False
    project_dir: Path = Path(".")
    published: frozenset[str] | None = None  # the tables of `main` when the build started
    # models whose SQL changed since their table was built (a history's stage: its ancestors')
    edited: frozenset[str] = frozenset()
    before_work: Callable[[], None] = lambda: None  # run before a model does any work


def ts_literal(value: datetime | date) -> str:
    return f"CAST('{value.isoformat(sep=' ') if isinstance(value, datetime) else value.isoformat()}' AS TIMESTAMP)"


def as_of_filter(as_of: datetime) -> dict[str, str]:
    """The predicate that hides rows after the as-of time, per raw table with a time column."""
    return {
        s.table: f"{s.time_column} <= {ts_literal(as_of)}"
        for s in SOURCES.values()
        if s.time_column
    }


def _new_rows_predicate(table: str, state: ModelState, ctx: BuildContext) -> str:
    """Rows that entered this model's view of `table` since it was last built."""
    src = SOURCE_BY_TABLE[table]
    batch = f"({BATCH_COLUMN} > {state.watermark} AND {BATCH_COLUMN} <= {ctx.max_batch})"
    if not src.time_column:
        return batch
    tc, new_as_of = src.time_column, ts_literal(ctx.as_of)
    moved = (
        f"({tc} > {ts_literal(state.as_of)} AND {tc} <= {new_as_of})" if state.as_of else "FALSE"
    )
    return f"(({batch} AND {tc} <= {new_as_of}) OR {moved})"


def _has_new_batches(
    con: duckdb.DuckDBPyConnection, tables: set[str], state: ModelState, ctx: BuildContext
) -> set[str]:
    if state.watermark >= ctx.max_batch:
        return set()
    rows = con.execute(
        "SELECT DISTINCT source FROM _profiler.batches WHERE batch_id > ? AND batch_id <= ? AND loaded > 0",
        [state.watermark, ctx.max_batch],
    ).fetchall()
    changed = {f"raw_{r[0]}" for r in rows}
    return changed & tables


def plan_model(
    con: duckdb.DuckDBPyConnection,
    dag: Dag,
    model: Model,
    state: ModelState | None,
    parent_versions: dict[str, int],
    ctx: BuildContext,
) -> Plan:
    """The one decision per model. Reasons are shown to the user, so they say why."""
    full = _needs_full(con, dag, model, state, parent_versions, ctx)
    if full:
        return Plan(model.name, "full", full, ctx.max_batch)
    assert state is not None
    gone = ctx.published is not None and model.name not in ctx.published
    if model.kind.is_built and gone:
        # dropped by hand (helper-46: "up to date", and the serving copy lost user_profile)
        why = "its table is gone (dropped outside profiler): rebuilt"
        if model.kind.keeps_history:
            why += "; the history starts again at this build"
        return Plan(model.name, "full", why, ctx.max_batch)
    raw = dag.raw_sources(model.name)
    changed = _has_new_batches(con, raw, state, ctx)
    as_of_moved = state.as_of != ctx.as_of
    if model.kind.keeps_history:
        if state.data_fingerprint != model.data_fingerprint:  # kept, as a dbt snapshot is
            return Plan(
                model.name, "slice", f"{sql_changed(state, model)}{IN_HISTORY}", ctx.max_batch
            )
        if state.parent_versions != parent_versions or changed or as_of_moved:
            return Plan(
                model.name, "slice", "merge the current state into the history", ctx.max_batch
            )
        if history_stale_from(con, model.name) is not None:
            # a replaced load it read: no batch is new and no parent moved when it reads raw
            # tables alone (helper-100: "up to date", the wrong reading kept as current)
            return Plan(
                model.name, "slice", "a replaced load took rows out: merged again", ctx.max_batch
            )
        return Plan(model.name, "skip", "up to date", ctx.max_batch)
    if not changed and not as_of_moved:
        return Plan(model.name, "skip", "up to date", ctx.max_batch)
    if model.kind is Kind.VIEW:
        if as_of_moved and raw:
            return Plan(model.name, "full", "as-of moved", ctx.max_batch)
        return Plan(model.name, "skip", "view reads new data live", ctx.max_batch)
    if not model.kind.is_incremental:
        return Plan(model.name, "full", _why(changed, as_of_moved), ctx.max_batch)
    if model.kind is Kind.INCREMENTAL_BY_TIME:
        return _plan_by_time(con, dag, model, state, ctx, raw, changed)
    return _plan_by_key(dag, model, state, ctx, raw, changed)


IN_HISTORY = ": merged into the kept history"  # the end of a history's reason for an edit


def sql_changed(state: ModelState, model: Model) -> str:
    """The reason for a rebuild by an edit: what changed, named (helper-92: an edited macro's
    callers said "SQL or settings changed"), as far as the state written before it says."""
    was, now = state.fingerprint_parts, model.fingerprint_parts
    changed = [label for label in now if was.get(label) != now[label]]
    changed += [f"{label} (no longer)" for label in was if label not in now]
    if not was or not changed:  # written by a profiler that kept no parts
        return "SQL or settings changed"
    return f"changed: {', '.join(changed)}"


def stale_sql(dag: Dag, states: dict[str, ModelState], names=None) -> list[str]:
    """The models (of `names`, else all) whose table was built by other SQL than the project's
    now: edited and not rebuilt since (a `--select` that left them, an upgrade of profiler before
    its first build). A history keeps its rows across an edit, which its next merge takes in; until
    then (a look at the past, a `--select` that left it) its current versions are the old SQL's,
    so it is stale as any other (helper-103: check and export said nothing of it)."""
    return [
        name
        for name in (dag.models if names is None else names)
        if name in states
        and name in dag.models
        and states[name].data_fingerprint != dag.models[name].data_fingerprint
    ]


def behind_parents(dag: Dag, states: dict[str, ModelState]) -> list[str]:
    """The models whose table was built on an earlier version of a parent (a `--select` that
    rebuilt the parent and not them): what they hold is not what their SQL makes of it now."""
    return [
        name
        for name in dag.models
        if name in states
        and any(
            states[name].parent_versions.get(p) != states[p].version
            for p in dag.built_parents(name)
            if p in states
        )
    ]


def edited_since_built(con: duckdb.DuckDBPyConnection, project_dir: Path, names=None) -> list[str]:
    """`stale_sql` of the warehouse `con` holds, against the project's SQL now."""
    from profiler.dag import build_dag
    from profiler.project import load_project
    from profiler.state import has_table, read_states

    if not has_table(con, "models", SCHEMA):
        return []
    return stale_sql(build_dag(load_project(Path(project_dir))), read_states(con), names)


def published_tables(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The tables and views of the warehouse's `main` schema, in one query."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = "
        "current_database() AND table_schema = 'main'"
    ).fetchall()
    return frozenset(r[0] for r in rows)


def _why(changed: set[str], as_of_moved: bool) -> str:
    parts = [f"new data in {', '.join(sorted(changed))}"] if changed else []
    if as_of_moved:
        parts.append("as-of moved")
    return "; ".join(parts)


def _needs_full(
    con: duckdb.DuckDBPyConnection,
    dag: Dag,
    model: Model,
    state: ModelState | None,
    parent_versions: dict[str, int],
    ctx: BuildContext,
) -> str | None:
    if state is None:  # published without a state: `ingest --replace` took rows out (helper-53:
        # every model said "first build", as after a reset), or `profiler train` wrote the scores
        # before any build (helper-75: that was called a replaced load too)
        published = ctx.published is not None and model.name in ctx.published
        if not published:
            return "first build"
        replaced = con.execute(f"SELECT count(*) FROM {SCHEMA}.replaced_contents").fetchone()[0]
        if replaced:
            return "a replaced load took rows out"
        return "first build (its table was written by `profiler train`)"
    if ctx.full_refresh and not model.kind.keeps_history:
        return "--full-refresh"
    if state.data_fingerprint != model.data_fingerprint and not model.kind.keeps_history:
        return sql_changed(state, model)
    if state.kind != model.kind.value:
        return "kind changed"
    if state.parent_versions != parent_versions and not model.kind.keeps_history:
        stale = sorted(
            p for p in parent_versions if state.parent_versions.get(p) != parent_versions[p]
        )
        return f"upstream rebuilt: {', '.join(stale) or 'parents changed'}"
    if model.kind.is_incremental and state.as_of and ctx.as_of < state.as_of:
        return "as-of moved back"
    if (
        model.kind.is_incremental
        and "as_of_time" in dag.run_parents(model.name)
        and state.as_of != ctx.as_of
    ):
        return "reads as_of_time and the as-of moved"
    return None


def _plan_by_time(
    con,
    dag: Dag,
    model: Model,
    state: ModelState,
    ctx: BuildContext,
    raw: set[str],
    changed: set[str],
) -> Plan:
    untimed = {t for t in changed if not SOURCE_BY_TABLE[t].time_column}
    if untimed:
        return Plan(
            model.name,
            "full",
            f"new data in {', '.join(sorted(untimed))} (no time column)",
            ctx.max_batch,
        )
    timed = sorted(t for t in raw if SOURCE_BY_TABLE[t].time_column)
    if not timed:
        return Plan(model.name, "skip", "no timed input", ctx.max_batch)
    union = " UNION ".join(
        f"SELECT DISTINCT CAST({SOURCE_BY_TABLE[t].time_column} AS DATE) AS d FROM {t} "
        f"WHERE {_new_rows_predicate(t, state, ctx)}"
        for t in timed
    )
    days: list[date] = [
        r[0]
        for r in con.execute(f"SELECT d FROM ({union}) WHERE d IS NOT NULL ORDER BY d").fetchall()
    ]
    if not days:
        return Plan(model.name, "skip", "no new rows for this model", ctx.max_batch)
    spread = {d + timedelta(days=i) for d in days for i in range(model.lookback + 1)}
    intervals = days_to_intervals(sorted(spread))
    if len(intervals) > MAX_INTERVALS:
        intervals = [(intervals[0][0], intervals[-1][1])]
    n = sum((e - s).days for s, e in intervals)
    return Plan(
        model.name,
        "slice",
        f"{n} day(s) touched",
        ctx.max_batch,
        intervals=merge_intervals(intervals),
    )


def _plan_by_key(
    dag: Dag, model: Model, state: ModelState, ctx: BuildContext, raw: set[str], changed: set[str]
) -> Plan:
    key = model.unique_key[0]
    keyless = {t for t in changed if SOURCE_BY_TABLE[t].column_names_lower().isdisjoint({key})}
    if keyless:
        return Plan(
            model.name,
            "full",
            f"new data in {', '.join(sorted(keyless))} (no {key} column)",
            ctx.max_batch,
        )
    keyed = sorted(t for t in raw if key in SOURCE_BY_TABLE[t].column_names_lower())
    if not keyed:
        return Plan(model.name, "skip", f"no input with {key}", ctx.max_batch)
    keys_sql = " UNION ".join(
        f"SELECT DISTINCT {key} FROM {t} WHERE {_new_rows_predicate(t, state, ctx)}" for t in keyed
    )
    return Plan(
        model.name,
        "slice",
        f"keys touched by {_why(changed, state.as_of != ctx.as_of)}",
        ctx.max_batch,
        keys_sql=keys_sql,
    )


def interval_predicate(column: str, intervals: list[Interval], *, widen_days: int = 0) -> str:
    """`column` within any of the day intervals, optionally widened back by a lookback."""
    ranges = merge_intervals([(s - timedelta(days=widen_days), e) for s, e in intervals])
    return " OR ".join(
        f"({column} >= {ts_literal(s)} AND {column} < {ts_literal(e)})" for s, e in ranges
    )
