"""One model in a build: why it is built or left as it is, its SQL as this build runs it, and
staging, checking, gating and publishing it.

`build.run_build` calls `build_one` for each selected model in DAG order; deciding what a model
needs lives in `plan`, writing in `materialize`, the atomic swap in `publish`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import duckdb

from profiler import lineage, model_checks
from profiler.dag import Dag
from profiler.errors import SpecError
from profiler.faults import fault_kind
from profiler.macros import gone_called
from profiler.materialize import drop_relation, quote, stage
from profiler.materialize.incremental import keys_table
from profiler.plan import (
    SOURCE_BY_TABLE,
    BuildContext,
    Plan,
    as_of_filter,
    interval_predicate,
    plan_model,
    stale_sql,
    ts_literal,
)
from profiler.project import Kind, Model
from profiler.publish import publish
from profiler.runlog import ModelResult
from profiler.state import (
    SCHEMA,
    ModelState,
    data_arrived_between,
    forget_model,
    history_stale_from,
    newest_data,
    next_version,
    write_state,
)

if TYPE_CHECKING:
    from profiler.build import BuildOptions


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
    blocked_by = refused + [p for p in dag.built_parents(model.name) if p in failed]
    if blocked_by:
        why = "failed its suite" if refused else "failed or was blocked"
        return ModelResult(
            model.name, model.kind.value, "skipped", "skip", f"upstream {blocked_by[0]} {why}"
        )
    # a parent with no table, left out of the selection: an error of the selection, not a skip
    # behind a failure (helper-104: `--select M` exited 0, "1 not built (upstream failed)")
    unbuilt = [p for p in dag.built_parents(model.name) if p not in states]
    if unbuilt:
        return ModelResult(
            model.name,
            model.kind.value,
            "error",
            "skip",
            "upstream never built",
            message=(
                f"upstream {unbuilt[0]} has never been built: select it too (+{model.name}); "
                "nothing was published"
            ),
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


def build_one(
    con,
    dag: Dag,
    model: Model,
    ctx: BuildContext,
    states: dict[str, ModelState],
    failed: set[str],
    options: BuildOptions,
) -> ModelResult:
    """Plan one model, then stage, check, gate and publish it, or say why it is left as it is
    (blocked upstream, nothing new, an edited suite that refuses the published table)."""
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
        repeated = model_checks.header_columns_missing(model, have) or model_checks.repeated_key(
            con, model, staged
        )
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
        + model_checks.documented_otherwise(model, have)
        + ([changed] if changed else [])
    )
    states[model.name] = new_state
    return result
