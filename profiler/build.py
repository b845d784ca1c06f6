"""`profiler build`: plan each selected model, stage it, gate it, publish it, in DAG order.

This module only sequences; deciding lives in `plan`, SQL rewriting in `lineage`, writing in
`materialize`, and atomic publishing in `publish`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from profiler import lineage
from profiler.dag import Dag, build_dag
from profiler.errors import ProfilerError, SpecError
from profiler.faults import fault_detail, fault_kind
from profiler.macros import drop_gone as drop_macros_gone
from profiler.macros import edited as macros_edited
from profiler.macros import gone_called, load_macros
from profiler.macros import install as install_macros
from profiler.materialize import STAGE_PREFIX, drop_relation, quote, stage
from profiler.materialize.incremental import keys_table
from profiler.plan import (
    SOURCE_BY_TABLE,
    BuildContext,
    Plan,
    as_of_filter,
    interval_predicate,
    plan_model,
    published_tables,
    stale_sql,
    ts_literal,
)
from profiler.project import Kind, Model, load_project
from profiler.publish import Gate, OpenGate, publish
from profiler.runlog import ModelResult, RunResults
from profiler.schedule import NodeFailed, run_in_order
from profiler.shop_time import in_shop_time
from profiler.sources import SOURCES
from profiler.state import (
    SCHEMA,
    ModelState,
    clear_history_mark,
    data_arrived_between,
    ensure_schema,
    forget_model,
    get_setting,
    has_table,
    history_stale_from,
    max_batch,
    newest_data,
    next_version,
    put_setting,
    read_states,
    write_state,
)


@dataclass
class BuildOptions:
    select: str | None = None
    full_refresh: bool = False
    as_of: datetime | None = None
    gate: Gate = field(default_factory=OpenGate)
    on_start: Callable[[Model, Plan], None] | None = None
    on_result: Callable[[ModelResult], None] | None = None
    # Models built at once. One: two at once saved 3% of the 10M profile build (21.7 -> 21.1 s) but
    # made the 100M build 36% slower (609 -> 830 s), as two memory-bound models under one DuckDB
    # memory limit spill each other to disk (benchmarks/RESULTS.md).
    workers: int = 1


def parse_as_of(value: str | None, option: str = "--as-of") -> datetime | None:
    """ISO date or timestamp; one with a zone stays aware, for `resolve_as_of` to state in the
    shop's time (`shop_time.in_shop_time`). `option` names the option in errors."""
    if value is None:
        return None
    if not value.strip():
        raise ProfilerError(f"{option} is empty; give an ISO date or timestamp, e.g. 2017-12-01")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    except ValueError:
        raise ProfilerError(
            f"{option} {value!r} is not an ISO date or timestamp, e.g. 2017-12-01 or "
            "2017-12-01T12:00"
        ) from None
    return parsed


# why a history is left as it is by a look at the past (the summary counts it apart: helper-69)
PAST_AS_OF = "as-of is earlier than the history's newest change"


def _history_plan(
    con: duckdb.DuckDBPyConnection, plan: Plan, state: ModelState, ctx: BuildContext
) -> Plan:
    """When an SCD2 history may merge. It records builds going forward: a look at the past
    (an as-of before its newest change) leaves it as it is. Changes stamped after the newest
    data the history was built from (a build --as-of in the future) were built ahead of their
    data: the next build that merges takes them back first (`Plan.rewind_after`) when they would
    block it (its as-of is the data's) or when data of their own period has arrived since (they
    were built without it); so are changes stamped after a replaced load's data
    (`state.mark_history_stale`). A day's build at its end (`--as-of 2024-03-01T23:59:59`, the
    last event at 23:58) whose next data starts after it is no look ahead: its changes stay
    (helper-37: each such build had taken back the one before it, 6 of 60 days left)."""
    seen = newest_data(con, through_batch=state.watermark)
    ahead = seen is not None and state.as_of is not None and state.as_of > seen
    if state.as_of and ctx.as_of < state.as_of and not (ahead and ctx.as_of >= seen):
        return Plan(plan.model, "skip", PAST_AS_OF, state.watermark)
    missed = ahead and (
        ctx.as_of < state.as_of or data_arrived_between(con, state.watermark, seen, state.as_of)
    )
    # changes stamped from a replaced load's first time on saw its wrong reading (ingest marks it)
    stale = history_stale_from(con, plan.model)
    marks = [t for t in (seen if missed else None, stale) if t is not None]
    if marks and plan.does_work:
        return replace(plan, rewind_after=min(marks))
    return plan


def resolve_as_of(con: duckdb.DuckDBPyConnection, given: datetime | None) -> datetime:
    """The as-of time comes from the data (or --as-of), never from the wall clock."""
    newest = in_shop_time(con, given) if given else newest_data(con)
    if newest is None:
        raise ProfilerError(
            "nothing to build: no events ingested yet; run `profiler ingest events FILE` first"
        )
    return newest


def clean_leftovers(con: duckdb.DuckDBPyConnection) -> None:
    """Staging relations of a build that was killed; published relations are never touched."""
    rows = con.execute(
        "SELECT table_schema, table_name, table_type FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND ((table_schema = 'main' AND starts_with(table_name, ?)) "
        "OR (table_schema = ? AND (starts_with(table_name, 'stg__') OR starts_with(table_name, 'keys__'))))",
        [STAGE_PREFIX, SCHEMA],
    ).fetchall()
    for schema, name, kind in rows:
        con.execute(
            f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} IF EXISTS {quote(schema)}.{quote(name)}"
        )


def relation_columns(con: duckdb.DuckDBPyConnection, name: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = ?",
        [name],
    ).fetchall()
    return {r[0].lower() for r in rows}


def prepare_sql(
    con: duckdb.DuckDBPyConnection, dag: Dag, model: Model, plan: Plan, ctx: BuildContext
) -> str:
    """The model's SQL as this build runs it: as-of applied, and restricted to the slice."""
    parents = dag.run_parents(model.name)
    predicates: dict[str, list[str]] = {p: [] for p in parents if p != "as_of_time"}
    for table, pred in as_of_filter(ctx.as_of).items():
        if table in predicates:
            predicates[table].append(pred)
    if plan.action == "slice" and model.kind is Kind.INCREMENTAL_BY_TIME:
        for p in predicates:
            column = (
                SOURCE_BY_TABLE[p].time_column
                if p in SOURCE_BY_TABLE
                else dag.models[p].time_column
            )
            if column:
                predicates[p].append(
                    interval_predicate(quote(column), plan.intervals, widen_days=model.lookback)
                )
    if plan.action == "slice" and model.kind is Kind.INCREMENTAL_BY_KEY:
        key = model.unique_key[0].lower()
        con.execute(f"CREATE OR REPLACE TABLE {keys_table(model)} AS {plan.keys_sql}")
        for p in predicates:
            cols = (
                SOURCE_BY_TABLE[p].column_names_lower()
                if p in SOURCE_BY_TABLE
                else relation_columns(con, p)
            )
            if key in cols:
                predicates[p].append(
                    f"{quote(key)} IN (SELECT {quote(key)} FROM {keys_table(model)})"
                )
    replace = {}
    if "as_of_time" in parents:
        replace["as_of_time"] = f"SELECT {ts_literal(ctx.as_of)} AS as_of"
    return lineage.rewrite(
        model.sql, inline=dict(model.inlined), predicates=predicates, replace=replace
    )


def _rows_in(
    con: duckdb.DuckDBPyConnection, dag: Dag, model: Model, plan: Plan, state: ModelState | None
) -> int:
    """Raw rows that fed this model's work: all of them for a rebuild, the new batches for a slice."""
    sources = [t.removeprefix("raw_") for t in dag.raw_sources(model.name)]
    if not sources:
        return 0
    low = state.watermark if (plan.action == "slice" and state) else 0
    return con.execute(
        f"SELECT coalesce(sum(loaded), 0) FROM {SCHEMA}.batches WHERE batch_id > ? AND batch_id <= ? "
        f"AND superseded_by IS NULL AND source IN ({', '.join('?' for _ in sources)})",
        [low, plan.watermark, *sources],
    ).fetchone()[0]


class BuildStopped(ProfilerError):
    """A storage fault (full disk, read-only warehouse, no memory) stopped the build midway.

    Carries the run as far as it got, so `target/run_results.json` can still say what happened:
    models published before the fault stay published (each one atomically), the failing one is an
    error, the rest are skipped.
    """

    def __init__(self, run: RunResults, cause: BaseException) -> None:
        super().__init__(fault_detail(cause))
        self.run, self.cause = run, cause


def _installer(con: duckdb.DuckDBPyConnection, macros) -> Callable[[], None]:
    """Installs the macros the first time it is called, from whichever model's thread: a build
    with nothing to do installs none (checking them against the catalog costs 20 ms)."""
    lock, done = threading.Lock(), []

    def ready() -> None:
        with lock:
            if not done:
                install_macros(con, macros)
                done.append(True)

    return ready


def run_build(con: duckdb.DuckDBPyConnection, project_dir, options: BuildOptions) -> RunResults:
    """Build the selected models into the open warehouse; returns what happened, per model."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    run_id = str(uuid.uuid4())
    results: list[ModelResult] = []
    selected: dict[str, str] = {}  # name -> kind, in build order
    as_of: datetime | None = None
    try:
        ensure_schema(con)
        clean_leftovers(con)
        dag = build_dag(load_project(project_dir))
        macros = load_macros(Path(project_dir))
        macros_ready = _installer(con, macros)
        if macros_edited(con, macros):  # a new or edited one is installed by any build
            macros_ready()
        selected = {name: dag.models[name].kind.value for name in dag.select(options.select)}
        as_of = resolve_as_of(con, options.as_of)
        options.gate.start_run(run_id, as_of)
        failed: set[str] = set()
        for result, batches in _gate_sources(con, dag, list(selected), options, as_of):
            if batches:
                failed.add(result.model)  # its readers are blocked as by a failed model
            results.append(result)
            if options.on_result:
                options.on_result(result)
        held = _refused_batches(con, options)  # by this build or one before it
        if held and options.as_of is None:  # the data's as-of, without the refused rows
            # (helper-81: a refused row's time moved the as-of of what did publish)
            as_of = newest_data(con, leaving_out=held) or as_of
            options.gate.start_run(run_id, as_of)
        states = read_states(con)
        ctx = BuildContext(
            as_of,
            max_batch(con),
            options.full_refresh,
            Path(project_dir),
            published_tables(con),
            frozenset(stale_sql(dag, states)),
            macros_ready,
        )

        def build(cursor: duckdb.DuckDBPyConnection, name: str) -> ModelResult:
            return _build_one(cursor, dag, dag.models[name], ctx, states, failed, options)

        models = list(selected)
        for _, result in run_in_order(con, models, dag.ancestors, build, workers=options.workers):
            results.append(result)
            if options.on_result:
                options.on_result(result)
        order = [*(r.model for r in results if r.model not in selected), *models]
        results.sort(key=lambda r: order.index(r.model))
        status = "error" if any(r.status in ("error", "blocked") for r in results) else "success"
        if status == "success":
            drop_macros_gone(con, macros)
        run = _run(run_id, ctx.as_of, started, t0, status, results)
        con.execute(
            f"INSERT INTO {SCHEMA}.runs (run_id, command, started_at, finished_at, as_of, status, "
            "models_built, models_failed, max_batch) VALUES (?, 'build', ?, ?, ?, ?, ?, ?, ?)",
            [
                run.run_id,
                started.replace(tzinfo=None),
                datetime.now(UTC).replace(tzinfo=None),
                ctx.as_of,
                status,
                sum(r.action != "skip" and r.status == "success" for r in results),
                len(failed),
                ctx.max_batch,  # the newest batch it saw (`ingest_resend.take_out` reads it)
            ],
        )
    except NodeFailed as stopped:
        # a storage fault stops the build in one line; anything else is raised as it was
        faults = [e for _, e in stopped.failures if isinstance(e, duckdb.Error) and fault_kind(e)]
        if not faults:
            raise stopped.cause from None
        err = faults[0]
        _stop(results, selected, stopped.failures, options)
        raise BuildStopped(_run(run_id, as_of, started, t0, "error", results), err) from None
    except duckdb.Error as err:
        if fault_kind(err) is None:
            raise
        _stop(results, selected, [(None, err)], options)
        raise BuildStopped(_run(run_id, as_of, started, t0, "error", results), err) from None
    return run


def _gate_sources(
    con: duckdb.DuckDBPyConnection,
    dag: Dag,
    selected: list[str],
    options: BuildOptions,
    as_of: datetime,
) -> list[tuple[ModelResult, tuple[int, int] | None]]:
    """A source's suite (`expectations/raw_events.json`) gates the batches a build's models read
    straight from it, before they run (helper-78: a rule added to a source's suite ran in
    `profiler check` only, and the build published the row it refused).

    What is validated: the batches loaded since the suite last passed (every batch after an edit
    of the suite or a replaced batch; `_profiler.settings` `gated:<table>`), up to the as-of. A
    refusal sticks to its batches (`refused:<table>`) until one is replaced or the suite edited:
    batches loaded later are judged on their own, never with it (helper-81: a `mostly` refusal
    passed once a clean batch joined it). A failure blocks the source's readers, which keep their
    tables; the raw rows stay as ingest loaded them. Returns, per source that failed or warned,
    its result and its refused batches (first, last), None when it passed."""
    read = {p for name in selected for p in dag.run_parents(name) if p not in dag.models}
    said = []
    for source in (s for s in SOURCES.values() if s.table in read):
        table = source.table
        fingerprint = options.gate.suite_fingerprint(table)
        if not fingerprint or not has_table(con, table):
            continue
        (newest,) = con.execute(
            f"SELECT max(batch_id) FROM {SCHEMA}.batches WHERE source = ?", [source.name]
        ).fetchone()
        after, stuck = _gate_marks(con, table, fingerprint)
        last = stuck or newest
        if newest is None or newest <= after:
            continue
        # a look at the past reads its rows up to the as-of: those are checked, and nothing is
        # recorded as passed (helper-81: batches it never reads refused it)
        (latest,) = con.execute(
            f"SELECT max(max_ts) FROM {SCHEMA}.batches WHERE source = ? AND batch_id > ? "
            "AND batch_id <= ?",
            [source.name, after, last],
        ).fetchone()
        before = as_of if source.time_column and latest is not None and latest > as_of else None
        t0 = time.perf_counter()
        out = options.gate.check_source(con, table, after, last, before)
        if out.passed and before is None:
            put_setting(con, f"gated:{table}", f"{last} {fingerprint}")
        elif not out.passed:
            put_setting(con, f"refused:{table}", f"{last} {fingerprint}")
        batches = (
            "every batch (its suite is new or changed, or a batch was replaced)"
            if after == 0
            else f"batch(es) {after + 1}..{last}, loaded since its suite last passed"
        )
        fix = (
            f"correct the batch (`profiler ingest {source.name} FILE --replace-batch N`, N the "
            f"_batch_id of the rows above) or "
            if out.errors
            else ""
        )
        result = ModelResult(
            table,
            "source",
            "success" if out.passed else "error",
            "skip" if out.passed else "gate",
            batches,
            message="\n".join(
                [*out.warnings, *out.errors, *out.raised]
                + (
                    []
                    if out.passed
                    else [
                        f"the rows stay as loaded, and every model reading {table} keeps its last "
                        f"table: {fix}fix expectations/{table}.json, then build"
                    ]
                )
            ),
            execution_time=round(time.perf_counter() - t0, 3),
            validations=out.results,
            gate_time=round(out.seconds, 3),
        )
        if not out.passed or out.warnings:  # a pass says nothing unless it warns
            said.append((result, None if out.passed else (after + 1, last)))
    return said


def _gate_marks(con: duckdb.DuckDBPyConnection, table: str, fingerprint: str) -> tuple[int, int]:
    """What a source's suite (at this fingerprint) passed and refused: (the last batch it
    passed, 0 for none; the last batch of its standing refusal, 0 for none)."""
    marks = []
    for key in ("gated", "refused"):
        batch, _, suite = (get_setting(con, f"{key}:{table}") or "").partition(" ")
        marks.append(int(batch) if batch and suite == fingerprint else 0)
    after, stuck = marks
    return after, stuck if stuck > after else 0


def _refused_batches(con: duckdb.DuckDBPyConnection, options: BuildOptions) -> dict[str, tuple]:
    """Per source whose suite refused batches that nothing has replaced since: the batches not
    passed, (first, last): the refused ones and any loaded after them, not validated yet."""
    held = {}
    for table in ("raw_events", "raw_feedback"):
        fingerprint = options.gate.suite_fingerprint(table)
        after, stuck = _gate_marks(con, table, fingerprint) if fingerprint else (0, 0)
        if stuck:
            held[table] = (after + 1, 2**62)
    return held


def _run(
    run_id: str,
    as_of: datetime | None,
    started: datetime,
    t0: float,
    status: str,
    results: list[ModelResult],
) -> RunResults:
    return RunResults(
        run_id=run_id,
        command="build",
        as_of=as_of.isoformat() if as_of else None,
        started_at=started.isoformat(),
        elapsed_time=round(time.perf_counter() - t0, 3),
        status=status,
        results=results,
    )


def _stop(
    results: list[ModelResult],
    selected: dict[str, str],
    failures: list[tuple[str | None, BaseException]],
    options: BuildOptions,
) -> None:
    """The models a fault hit are errors, the ones not reached are skipped; nothing else runs.

    `failures` pairs each model that raised with its error; `None` stands for "the first model
    not done" (a fault outside any model, e.g. while reading the state).
    """
    done = {r.model for r in results}
    rest = [name for name in selected if name not in done]
    hit = {(name if name in rest else (rest[0] if rest else None)): err for name, err in failures}
    kind = next(k for k in (fault_kind(e) for _, e in failures) if k)
    for name in rest:
        if name in hit:
            err = hit[name]
            why = fault_kind(err)
            detail = fault_detail(err) if why else (str(err).strip().splitlines() or [repr(err)])[0]
            result = ModelResult(
                name, selected[name], "error", "skip", why or "error", message=detail
            )
        else:
            result = ModelResult(name, selected[name], "skipped", "skip", f"build stopped: {kind}")
        results.append(result)
        if options.on_result and name in hit:  # the skipped rest is in run_results.json only
            options.on_result(result)
    results.sort(key=lambda r: list(selected).index(r.model))


def _error(model: Model, plan, message: str, t0: float) -> ModelResult:
    """A model that failed: what it said, at its file."""
    return ModelResult(
        model.name,
        model.kind.value,
        "error",
        plan.action,
        plan.reason,
        message=f"{model.path}: {message}",
        execution_time=round(time.perf_counter() - t0, 3),
    )


def _regate(con, model: Model, plan, state: ModelState, gate, t0: float) -> ModelResult | None:
    """A suite edited since the table was published validates the published table (helper-28: a
    stricter or renamed suite never looked at it); None when it passes. The table stays either way:
    its readers are skipped until the data or the suite is fixed. A pass is returned too, as a
    skip with its validations and warnings (helper-60: a failing `warn` went unsaid)."""
    from profiler.gate import published_query
    from profiler.materialize import Staged

    query = published_query(con, model.name, model.kind)  # a history: its current rows
    if query is None:
        return None
    staged = Staged(model, plan, f"({query})", state.rows, lambda c: None)
    outcome = gate.check(con, staged)
    result = ModelResult(
        model.name,
        model.kind.value,
        "success" if outcome.passed else "blocked",
        "skip",
        "suite changed: published table checked",
        execution_time=round(time.perf_counter() - t0, 3),
    )
    result.validations, result.gate_time = outcome.results, round(outcome.seconds, 3)
    if outcome.passed:
        result.message = "\n".join(outcome.warnings)
        return result
    result.message = "; ".join(outcome.errors + outcome.raised) + (
        "; the published table fails its changed suite and stays as it is (its readers are "
        "skipped): fix the data or the suite"
    )
    return result


def _header_columns_missing(model: Model, have: list[str]) -> str | None:
    """The header's time_column, unique_key and track_columns name columns of the model's
    output (helper-60: a misspelt time_column passed every full build and failed the first
    batch, days later)."""
    named = {
        "time_column": [model.time_column] if model.kind is Kind.INCREMENTAL_BY_TIME else [],
        "unique_key": model.unique_key
        if model.kind.is_incremental or model.kind is Kind.SCD2
        else [],
        "track_columns": model.track_columns if model.kind is Kind.SCD2 else [],
    }
    for key, columns in named.items():
        missing = [c for c in columns if c and c not in have]
        if missing:
            return (
                f"-- {key}: {', '.join(missing)} is no column of the model's output "
                f"(it has {', '.join(sorted(have)[:12])}{', ...' if len(have) > 12 else ''}); "
                "nothing was published"
            )
    return None


def _parents_changed(dag: Dag, model: Model, states: dict[str, ModelState]) -> str:
    """A note when a parent's SQL changed since its table was built and this build did not
    build it (not selected): the model reads the table as it was (helper-60: `--select M` said
    M was up to date, with M's upstream edited)."""
    stale = stale_sql(dag, states, dag.built_parents(model.name))
    if not stale:
        return ""
    return (
        f"note: the SQL of {', '.join(stale)} changed since {'it was' if len(stale) == 1 else 'they were'} "
        f"built, and this build left {'it' if len(stale) == 1 else 'them'} as {'it was' if len(stale) == 1 else 'they were'}: "
        f"select {'it' if len(stale) == 1 else 'them'} too (+{model.name})"
    )


def _documented_otherwise(model: Model, have: list[str]) -> list[str]:
    """The header's `-- columns:` against the output's columns, when it documents any: a column
    documented but gone, or made but undocumented, leaves the docs site and the export's
    descriptions wrong, unsaid (helper-60)."""
    if not model.columns:
        return []
    if model.kind is Kind.SCD2:  # the engine's stamps: in the table, not in the staged rows
        from profiler.materialize.scd2 import STAMPS

        have = [*have, *STAMPS]
    gone = [c for c in model.columns if c not in have]
    new = [c for c in have if c not in model.columns and not c.startswith("_")]
    notes = []
    if gone:
        notes.append(f"note: the header documents {', '.join(gone)}, which the model does not make")
    if new:
        notes.append(f"note: the header's columns do not document {', '.join(new)}")
    return notes


def _repeated_key(con: duckdb.DuckDBPyConnection, model: Model, staged) -> str | None:
    """An incremental_by_key model's rows replace the published ones by key: two rows of one key
    would both stay (helper-28: 1,856 rows for 928 users, published). None when the key is unique."""
    if model.kind is not Kind.INCREMENTAL_BY_KEY or not model.unique_key:
        return None
    keys = ", ".join(quote(k) for k in model.unique_key)
    row = con.execute(
        f"SELECT count(*), count(*) OVER (), {keys} FROM {staged.relation} GROUP BY ALL "
        f"HAVING count(*) > 1 ORDER BY count(*) DESC, {keys} LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    n, repeated, *values = row
    which = ", ".join(f"{k}={v!r}" for k, v in zip(model.unique_key, values, strict=True))
    return (
        f"unique_key {', '.join(model.unique_key)} is not unique: {repeated:,} key(s) repeat, "
        f"e.g. {n} rows have {which}; an incremental_by_key model gives one row per key "
        "(nothing was published)"
    )


def _retire_ephemeral(con, model: Model, states: dict[str, ModelState]) -> ModelResult:
    """An ephemeral model is never built; one built before it became ephemeral loses its table
    and state, which would go stale."""
    if model.name in states:
        con.execute("BEGIN TRANSACTION")
        try:
            drop_relation(con, model.name)
            forget_model(con, model.name)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        del states[model.name]
    return ModelResult(
        model.name, model.kind.value, "success", "skip", "ephemeral: inlined into its readers"
    )


def _unbuildable(
    dag: Dag, model: Model, ctx: BuildContext, states: dict[str, ModelState], failed: set[str]
) -> ModelResult | None:
    """Why the model cannot be built in this build (a parent failed, was refused by its source
    suite, was never built, or is stated at another as-of), or None."""
    refused = [p for p in dag.run_parents(model.name) if p in failed and p not in dag.models]
    blocked_by = refused + [
        p for p in dag.built_parents(model.name) if p in failed or p not in states
    ]
    if blocked_by:
        why = (
            "failed its suite"
            if refused
            else "failed or was blocked"
            if blocked_by[0] in failed
            else "has never been built (select it too: +" + model.name + ")"
        )
        return ModelResult(
            model.name, model.kind.value, "skipped", "skip", f"upstream {blocked_by[0]} {why}"
        )
    # a model is stated as of the build: parents left at another as-of (not selected) would give
    # it their data after that as-of (helper-28: `--select M --as-of T` published M built on
    # tables of a later as-of) or miss data before it
    elsewhen = [
        p
        for p in dag.built_parents(model.name)
        if not dag.models[p].kind.keeps_history
        and states[p].as_of is not None
        and states[p].as_of != ctx.as_of
    ]
    if elsewhen:
        p = elsewhen[0]
        return ModelResult(
            model.name,
            model.kind.value,
            "error",
            "skip",
            "upstream at another as-of",
            message=(
                f"upstream {p} is built as of {states[p].as_of}, this build's as-of is "
                f"{ctx.as_of}: select it too (+{model.name}); nothing was published"
            ),
        )
    return None


def _build_one(
    con,
    dag: Dag,
    model: Model,
    ctx: BuildContext,
    states: dict[str, ModelState],
    failed: set[str],
    options: BuildOptions,
) -> ModelResult:
    t0 = time.perf_counter()
    if not model.kind.is_built:
        return _retire_ephemeral(con, model, states)
    unbuildable = _unbuildable(dag, model, ctx, states, failed)
    if unbuildable is not None:
        failed.add(model.name)
        return unbuildable
    parent_versions = {p: states[p].version for p in dag.built_parents(model.name)}
    state = states.get(model.name)
    plan = plan_model(con, dag, model, state, parent_versions, ctx)
    if model.kind is Kind.SCD2 and state and plan.action != "full":
        plan = _history_plan(con, plan, state, ctx)
    # the suite's fingerprint rides with the docs' (`+-`: none); a state from before this records
    # it without a check. A changed suite checks the whole table: a model with nothing to do
    # checks its published table, an incremental slice becomes a full rebuild (a slice's gate
    # reads its own rows only); a full build and a history's merge check everything anyway
    suite = options.gate.suite_fingerprint(model.name)
    metadata = f"{model.metadata_fingerprint}+{suite or '-'}"
    suite_changed = bool(
        state and suite and "+" in state.metadata_fingerprint
        and state.metadata_fingerprint.rsplit("+", 1)[1] != suite
    )  # fmt: skip
    if suite_changed and plan.action == "slice" and not model.kind.keeps_history:
        plan = Plan(model.name, "full", "its suite changed: rebuilt, checked whole", ctx.max_batch)
    kept = state and model.kind.keeps_history and plan.action == "skip"
    new_state = ModelState(
        model.name,
        model.kind.value,
        # a history that skipped (a look at the past) has not taken in an edit of its SQL yet
        state.data_fingerprint if kept else model.data_fingerprint,
        metadata,
        next_version(con)
        if plan.action == "full" or (plan.action == "slice" and model.kind is Kind.SCD2)
        else state.version,
        plan.watermark,
        state.as_of
        if (state and model.kind.keeps_history and plan.action == "skip")
        else ctx.as_of,
        parent_versions,
        state.rows if state else 0,
        state.fingerprint_parts if kept else model.fingerprint_parts,
    )
    regated = None
    if suite_changed and not plan.does_work:
        regated = _regate(con, model, plan, state, options.gate, t0)
        if regated is not None and regated.status == "blocked":  # stays as it is
            failed.add(model.name)
            return regated
    if not plan.does_work:
        if state and (state.watermark, state.as_of, state.metadata_fingerprint) != (
            new_state.watermark,
            new_state.as_of,
            new_state.metadata_fingerprint,
        ):
            write_state(con, new_state)
        states[model.name] = new_state
        return regated or ModelResult(
            model.name,
            model.kind.value,
            "success",
            "skip",
            plan.reason,
            execution_time=round(time.perf_counter() - t0, 3),
            message=_parents_changed(dag, model, states),
        )
    ctx.before_work()  # the project's macros, installed once a model has work to do
    gone = gone_called(con, model.macros, lineage.normalized_sql(model.sql))
    if gone:  # helper-92: it ran on the deleted macro, and the drop then broke it
        failed.add(model.name)
        return _error(
            model, plan, f"calls {', '.join(gone)}, which no file in macros/ defines any more", t0
        )
    if options.on_start:
        options.on_start(model, plan)
    try:
        sql = prepare_sql(con, dag, model, plan, ctx)
        # a history hears which of its upstream models' SQL changed since it was built
        # (helper-87: an upgrade's new rules were recorded as the users' changes, unsaid)
        if model.kind.keeps_history:  # (helper-91: not the edited models that read it)
            ctx = replace(ctx, edited=ctx.edited & dag.ancestors(model.name))
        staged = stage(con, model, sql, plan, ctx)
        new_state.rows = staged.rows
        have = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {staged.relation}").fetchall()]
        repeated = _header_columns_missing(model, have) or _repeated_key(con, model, staged)
        if repeated:
            staged.drop(con)
            failed.add(model.name)
            return _error(model, plan, repeated, t0)
        outcome = publish(con, staged, options.gate, new_state)
    except duckdb.Error as err:
        if fault_kind(err):
            raise  # the whole build stops: the next model would hit the same full disk
        failed.add(model.name)
        # helper-87: after an upgrade, `--select M` failed on a parent built by the old SQL
        # (a column it lacks), and said nothing of that parent
        changed = _parents_changed(dag, model, states)
        why = str(err).strip().splitlines()[0]
        return _error(model, plan, why + (f" ({changed})" if changed else ""), t0)
    except SpecError as err:  # a model spec that does not fit the tables: this model fails
        failed.add(model.name)
        result = _error(model, plan, str(err), t0)
        result.message = str(err)  # it names the spec's file already
        return result
    rows_in = _rows_in(con, dag, model, plan, state)
    result = ModelResult(
        model.name,
        model.kind.value,
        "success",
        plan.action,
        plan.reason,
        rows_in,
        staged.rows,
        round(time.perf_counter() - t0, 3),
    )
    result.validations, result.gate_time = outcome.results, round(outcome.seconds, 3)
    if not outcome.passed:
        failed.add(model.name)
        result.status = "blocked"
        # what to do next (helper-78: the failure was named, the way out was not)
        fix = (
            "the data (a wrong batch: `profiler ingest SOURCE FILE --replace-batch N`) or "
            if outcome.errors
            else ""
        )
        result.message = "; ".join(outcome.errors + outcome.raised) + (
            f"\nnot published: {model.name} keeps its last table and its readers are skipped; "
            f"fix {fix}expectations/{model.name}.json, then build"
        )
        return result
    changed = _parents_changed(dag, model, states)
    result.message = "\n".join(
        staged.messages
        + outcome.warnings
        + _documented_otherwise(model, have)
        + ([changed] if changed else [])
    )
    if model.kind.keeps_history:  # rewound past a replaced load: done (again would be harmless)
        clear_history_mark(con, model.name)
    states[model.name] = new_state
    return result
