"""`profiler check`: run the suites on the published tables, without building anything.

Statuses follow dbt's tests: `pass`, `warn` (only warn-severity expectations failed), `fail` (an
error-severity one failed) and `error` (an expectation raised, or the table could not be checked).
Results go to `_profiler.validations` and `target/run_results.json`, like a build's; a read-only
warehouse is checked all the same, its results in `run_results.json` only.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import UTC, datetime

import duckdb

from profiler.dag import Dag, build_dag
from profiler.errors import ProfilerError
from profiler.faults import (
    fault_kind,
    raise_if_storage_fault,
    read_only_refusal,
    refused_write,
    write_refused,
)
from profiler.gate import (
    Suite,
    describe,
    gate_error,
    load_suites,
    outcome,
    parameter_names,
    published_query,
    record,
    supply_parameters,
    validate,
)
from profiler.materialize import relation_type
from profiler.plan import SOURCE_BY_TABLE, edited_since_built
from profiler.project import load_project
from profiler.runlog import ModelResult, RunResults
from profiler.state import SCHEMA, ensure_schema

_STYLE = {"pass": "green", "warn": "yellow", "fail": "red", "error": "red", "skipped": "yellow"}


def selected_tables(dag: Dag, suites: dict[str, Suite], select: str | None) -> list[str]:
    """Raw tables first, then models in build order; `--select` takes raw table names too."""
    raw = [t for t in SOURCE_BY_TABLE if t in suites]
    if not select:
        models = [m for m in dag.order() if m in suites]
        unknown = sorted(set(suites) - set(raw) - set(models))
        return raw + models + unknown
    # raw tables are plain names, also comma-separated (no dbt selector picks them)
    plain = [p for p in select.split() if all(n in SOURCE_BY_TABLE for n in p.split(","))]
    named = {n for p in plain for n in p.split(",")}
    raw_chosen = [t for t in SOURCE_BY_TABLE if t in named]
    rest = " ".join(p for p in select.split() if p not in plain)
    return raw_chosen + (dag.select(rest) if rest else [])


def _as_of(con: duckdb.DuckDBPyConnection, table: str) -> datetime | None:
    """The model's own as-of (from its state); for a raw table, its newest event."""
    if table in SOURCE_BY_TABLE:
        column = SOURCE_BY_TABLE[table].time_column
        return con.execute(f"SELECT max({column}) FROM {table}").fetchone()[0] if column else None
    row = con.execute(f"SELECT as_of FROM {SCHEMA}.models WHERE name = ?", [table]).fetchone()
    return row[0] if row else None


def _recorded_as_built(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """The model's state says it was published: its table missing is no "not built yet"."""
    if relation_type(con, "models", SCHEMA) is None:  # a warehouse never built (read-only)
        return False
    row = con.execute(f"SELECT 1 FROM {SCHEMA}.models WHERE name = ?", [table]).fetchone()
    return row is not None


def check_table(
    con: duckdb.DuckDBPyConnection,
    dag: Dag,
    suite: Suite | None,
    table: str,
    run_id: str,
    recorded: bool = True,
) -> ModelResult:
    t0 = time.perf_counter()
    model = dag.models.get(table)
    kind = model.kind.value if model else ("source" if table in SOURCE_BY_TABLE else "unknown")
    if suite is None:
        return ModelResult(table, kind, "skipped", "check", "no suite in expectations/")
    if model is None and table not in SOURCE_BY_TABLE:
        return ModelResult(
            table, kind, "skipped", "check", f"{suite.path.name}: no model or source table {table}"
        )
    query = published_query(con, table, model.kind if model else None)
    if query is None and model and model.kind.is_built and _recorded_as_built(con, table):
        why = (
            f"no table {table} in the warehouse, though {SCHEMA}.models records it as built; "
            "`profiler build` rebuilds it"
        )
        return ModelResult(table, kind, "error", "check", why, message=f"{table}: {why}")
    if query is None:
        return ModelResult(table, kind, "skipped", "check", "not built yet")
    as_of = _as_of(con, table)
    try:
        params = supply_parameters(con, parameter_names(suite.expectations), query, as_of)
        keys = list(suite.key_columns or (model.unique_key if model else ()))
        keys = keys or ([SOURCE_BY_TABLE[table].key] if table in SOURCE_BY_TABLE else ["user_id"])
        out = outcome(table, validate(con, suite, query, query, params, keys))
    except Exception as err:
        if fault_kind(err):
            raise  # a full disk or no memory is no verdict on this table: stop, say what to do
        out = gate_error(table, err)
    if recorded:
        record(con, run_id, "check", table, table, out.results, as_of)
    status = "error" if out.raised else "fail" if out.errors else "warn" if out.warnings else "pass"
    failed = sum(not v.success for v in out.results)
    return ModelResult(
        table,
        kind,
        status,
        "check",
        f"{len(out.results) - failed}/{len(out.results)} expectations passed",
        execution_time=round(time.perf_counter() - t0, 3),
        message="; ".join(out.raised + out.errors + out.warnings),
        validations=out.results,
    )


def run_check(
    con: duckdb.DuckDBPyConnection,
    project_dir,
    select: str | None,
    on_result=None,
    recorded: bool = True,
):
    """Validate the selected published tables; returns the run, one result per table.
    `recorded`: the results go to `_profiler.validations` too (not in a read-only warehouse)."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    if recorded:
        ensure_schema(con)
    suites = load_suites(project_dir)
    dag = build_dag(load_project(project_dir))
    run_id = str(uuid.uuid4())
    results = []
    for table in selected_tables(dag, suites, select):
        result = check_table(con, dag, suites.get(table), table, run_id, recorded)
        results.append(result)
        if on_result:
            on_result(result)
    bad = any(r.status in ("fail", "error") for r in results)
    return RunResults(
        run_id=run_id,
        command="check",
        as_of=None,
        started_at=started.isoformat(),
        elapsed_time=round(time.perf_counter() - t0, 3),
        status="error" if bad else "success",
        results=results,
    )


def check_project(settings, select: str | None, console) -> bool:
    """`profiler check`: print one line per table; True when no error-severity expectation failed."""
    from rich.markup import escape

    from profiler.lock import warehouse_lock
    from profiler.runlog import write_run_results
    from profiler.settings import connect

    if not settings.warehouse.exists():
        from profiler.settings import no_warehouse

        raise ProfilerError(no_warehouse(settings))

    def show(r: ModelResult) -> None:
        style = _STYLE.get(r.status, "white")
        console.print(
            f"[{style}]{r.status:<8}[/{style}] {r.model:<28} {r.kind:<20} {r.execution_time:7.2f}s  {r.reason}",
            soft_wrap=True,
        )
        for v in r.validations:
            if not v.success:
                console.print(
                    f"         {escape(describe(r.model, v))}", soft_wrap=True, style=style
                )

    # A read-only warehouse (a mount of production, a file shared to read) is checked all the
    # same; only the record in _profiler.validations is left out (helper-62: it was refused)
    refused = write_refused(settings.warehouse)
    if refused is not None and not read_only_refusal(refused):
        raise refused_write(settings.warehouse, refused)  # a full disk: as for any command
    read_only = refused is not None
    with contextlib.nullcontext() if read_only else warehouse_lock(settings.warehouse, "check"):
        con = connect(settings, read_only=read_only)
        try:
            run = run_check(con, settings.project_dir, select, show, recorded=not read_only)
            checked = [r.model for r in run.results]
            edited = edited_since_built(con, settings.project_dir, checked)
        except duckdb.Error as err:
            raise_if_storage_fault(err, settings)  # one clear line, as for build and ingest
            raise
        finally:
            con.close()
    write_run_results(settings.target_dir, run)
    if read_only:
        console.print(
            f"note: {settings.warehouse} is read-only ({refused.strerror}): the results are in "
            f"{settings.target_dir / 'run_results.json'}, not in _profiler.validations",
            soft_wrap=True,
        )
    if edited:  # helper-87: after an upgrade, "edit the suite" for a table the old SQL built
        console.print(
            f"note: {', '.join(edited)} were built by SQL edited since (a model file changed, "
            "profiler upgraded): these checks read the tables as that SQL made them; "
            "`profiler build` first",
            soft_wrap=True,
        )
    counts = {s: sum(r.status == s for r in run.results) for s in ("pass", "warn", "fail", "error")}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()) + f" in {run.elapsed_time:.2f}s")
    return run.status == "success"
