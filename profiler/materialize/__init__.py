"""Materialisations: one module per model kind.

Each kind stages the model's new output (a whole table, or the slice being recomputed) without
touching the published relation, and returns a `Staged` whose `apply` publishes it. `apply` runs
inside the publish transaction (see `profiler.publish`), so a kind never commits on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from profiler.plan import BuildContext, Plan
from profiler.project import Kind, Model
from profiler.sqltext import quote

STAGE_PREFIX = "__profiler_stg_"


@dataclass
class Staged:
    model: Model
    plan: Plan
    relation: str  # what the gate validates: the new table, or the new slice
    rows: int
    apply: Callable[[duckdb.DuckDBPyConnection], None]
    cleanup: list[str] = field(default_factory=list)  # DROP statements once published or refused
    slice_predicate: str | None = None  # rows of the published table the slice replaces
    messages: list[str] = field(default_factory=list)  # what the step has to say (python models)

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        for stmt in self.cleanup:
            con.execute(stmt)


def relation_type(con: duckdb.DuckDBPyConnection, name: str, schema: str = "main") -> str | None:
    """'BASE TABLE', 'VIEW' or None, so replacing one with the other drops the right thing."""
    row = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return row[0] if row else None


def drop_relation(con: duckdb.DuckDBPyConnection, name: str) -> None:
    kind = relation_type(con, name)
    if kind == "VIEW":
        con.execute(f"DROP VIEW {quote(name)}")
    elif kind:
        con.execute(f"DROP TABLE {quote(name)}")


def stage(
    con: duckdb.DuckDBPyConnection, model: Model, sql: str, plan: Plan, ctx: BuildContext
) -> Staged:
    from profiler.materialize import incremental, python, scd2, table, view

    if model.kind is Kind.PYTHON:
        return python.stage(con, model, plan, ctx)
    if model.kind is Kind.VIEW:
        return view.stage(con, model, sql, plan)
    if model.kind is Kind.SCD2:
        return scd2.stage(con, model, sql, plan, ctx)
    if plan.action == "full":
        return table.stage(con, model, sql, plan)
    if model.kind is Kind.INCREMENTAL_BY_TIME:
        return incremental.stage_by_time(con, model, sql, plan)
    if model.kind is Kind.INCREMENTAL_BY_KEY:
        return incremental.stage_by_key(con, model, sql, plan)
    raise ValueError(f"{model.kind} cannot build a slice")
