"""kind: view. Staged as a view beside the published one so the gate can read it first."""

from __future__ import annotations

import duckdb

from profiler.materialize import STAGE_PREFIX, Staged, drop_relation, quote
from profiler.plan import Plan
from profiler.project import Model


def stage(con: duckdb.DuckDBPyConnection, model: Model, sql: str, plan: Plan) -> Staged:
    staging = STAGE_PREFIX + model.name
    con.execute(f"CREATE OR REPLACE VIEW {quote(staging)} AS {sql}")

    def apply(c: duckdb.DuckDBPyConnection) -> None:
        drop_relation(c, model.name)
        c.execute(f"CREATE VIEW {quote(model.name)} AS {sql}")

    return Staged(
        model, plan, staging, rows=0, apply=apply, cleanup=[f"DROP VIEW IF EXISTS {quote(staging)}"]
    )
