"""kind: python. Rows computed by Python (the model layer's scores), published like a slice.

The model's `run` returns an Arrow table of new rows plus messages. The rows replace those with
the same `replace_key` values (for scores: model and as-of), so earlier as-of scores are kept.
"""

from __future__ import annotations

import duckdb

from profiler.materialize import Staged, quote, relation_type
from profiler.plan import BuildContext, Plan
from profiler.project import Model


def stage(con: duckdb.DuckDBPyConnection, model: Model, plan: Plan, ctx: BuildContext) -> Staged:
    from profiler.ml.step import REPLACE_KEY, run_scores

    rows, messages = run_scores(con, ctx.project_dir, ctx.as_of)
    staging = f"_profiler.{quote('stg__' + model.name)}"
    target = quote(model.name)
    con.complete()  # DuckDB 2 refuses register() while an earlier result is still open
    con.register("__profiler_python_rows", rows)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {staging} AS SELECT * FROM __profiler_python_rows")
    finally:
        con.unregister("__profiler_python_rows")

    def replaced(outer: str) -> str:
        match = " AND ".join(f"{outer}.{quote(k)} = s.{quote(k)}" for k in REPLACE_KEY)
        return f"EXISTS (SELECT 1 FROM {staging} AS s WHERE {match})"

    def apply(c: duckdb.DuckDBPyConnection) -> None:
        if relation_type(c, model.name) is None:
            c.execute(f"CREATE TABLE {target} AS SELECT * FROM {staging} WHERE FALSE")
        c.execute(f"DELETE FROM {target} AS t WHERE {replaced('t')}")
        c.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {staging}")

    return Staged(
        model,
        plan,
        staging,
        rows.num_rows,
        apply,
        cleanup=[f"DROP TABLE IF EXISTS {staging}"],
        slice_predicate=replaced(target),
        messages=messages,
    )
