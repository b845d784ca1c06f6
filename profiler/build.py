"""`profiler build`: plan each selected model, stage it, gate it, publish it, in DAG order.

This module only sequences: a source's suite gates its new batches first (`source_gate`), then
each model is built by `build_model.build_one`; deciding lives in `plan`, SQL rewriting in
`lineage`, writing in `materialize`, and atomic publishing in `publish`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from profiler.build_model import build_one
from profiler.dag import build_dag
from profiler.errors import ProfilerError
from profiler.faults import fault_detail, fault_kind
from profiler.macros import drop_gone as drop_macros_gone
from profiler.macros import edited as macros_edited
from profiler.macros import install as install_macros
from profiler.macros import load_macros
from profiler.materialize import STAGE_PREFIX, quote
from profiler.plan import BuildContext, Plan, published_tables, stale_sql
from profiler.project import Model, load_project
from profiler.publish import Gate, OpenGate
from profiler.runlog import ModelResult, RunResults
from profiler.schedule import NodeFailed, run_in_order
from profiler.shop_time import in_shop_time
from profiler.source_gate import gate_sources, refused_batches
from profiler.state import SCHEMA, ensure_schema, max_batch, newest_data, read_states


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
        for result, batches in gate_sources(con, dag, list(selected), options.gate, as_of):
            if batches:
                failed.add(result.model)  # its readers are blocked as by a failed model
            results.append(result)
            if options.on_result:
                options.on_result(result)
        held = refused_batches(con, options.gate)  # by this build or one before it
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
            return build_one(cursor, dag, dag.models[name], ctx, states, failed, options)

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
