"""kind: table, and the full rebuild of every incremental kind: build aside, then swap by rename."""

from __future__ import annotations

import duckdb

from profiler.materialize import STAGE_PREFIX, Staged, drop_relation, quote
from profiler.plan import Plan
from profiler.project import Model


def stage(con: duckdb.DuckDBPyConnection, model: Model, sql: str, plan: Plan) -> Staged:
    staging = STAGE_PREFIX + model.name
    con.execute(f"CREATE OR REPLACE TABLE {quote(staging)} AS {sql}")
    rows = con.execute(f"SELECT count(*) FROM {quote(staging)}").fetchone()[0]

    def apply(c: duckdb.DuckDBPyConnection) -> None:
        drop_relation(c, model.name)
        c.execute(f"ALTER TABLE {quote(staging)} RENAME TO {quote(model.name)}")

    return Staged(
        model, plan, staging, rows, apply, cleanup=[f"DROP TABLE IF EXISTS {quote(staging)}"]
    )
