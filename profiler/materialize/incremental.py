"""kinds incremental_by_time and incremental_by_key: recompute a slice, then delete + insert it.

The slice is staged in `_profiler`; publishing deletes the rows it replaces (the touched days, or
the touched keys) and inserts the staged rows, in the publish transaction. Delete + insert of the
touched keys is the fastest merge DuckDB offers (see GUIDE's measured facts).
"""

from __future__ import annotations

import duckdb

from profiler.materialize import Staged, quote
from profiler.plan import Plan, interval_predicate
from profiler.project import Model


def _stage_slice(
    con: duckdb.DuckDBPyConnection,
    model: Model,
    sql: str,
    plan: Plan,
    predicate: str,
    extra_cleanup: list[str],
) -> Staged:
    staging = f"_profiler.{quote('stg__' + model.name)}"
    con.execute(
        f"CREATE OR REPLACE TABLE {staging} AS SELECT * FROM ({sql}) AS s WHERE {predicate}"
    )
    rows = con.execute(f"SELECT count(*) FROM {staging}").fetchone()[0]

    def apply(c: duckdb.DuckDBPyConnection) -> None:
        try:
            c.execute(f"DELETE FROM {quote(model.name)} WHERE {predicate}")
            c.execute(f"INSERT INTO {quote(model.name)} BY NAME SELECT * FROM {staging}")
        except (duckdb.BinderException, duckdb.ConversionException) as err:
            # the SQL is the one the table was built by (an edit rebuilds it whole), so the
            # table is what changed: a column renamed, dropped or retyped by hand (helper-118)
            raise type(err)(
                f"{str(err).splitlines()[0]}: the published {model.name} no longer takes the "
                "rows its SQL makes (changed by hand?); `profiler build --full-refresh --select "
                f"{model.name}` rebuilds it"
            ) from None  # still a DuckDB error: this model fails, the build goes on

    return Staged(
        model,
        plan,
        staging,
        rows,
        apply,
        cleanup=[f"DROP TABLE IF EXISTS {staging}", *extra_cleanup],
        slice_predicate=predicate,
    )


def stage_by_time(con: duckdb.DuckDBPyConnection, model: Model, sql: str, plan: Plan) -> Staged:
    predicate = interval_predicate(quote(model.time_column or ""), plan.intervals)
    return _stage_slice(con, model, sql, plan, predicate, [])


def keys_table(model: Model) -> str:
    return f"_profiler.{quote('keys__' + model.name)}"


def stage_by_key(con: duckdb.DuckDBPyConnection, model: Model, sql: str, plan: Plan) -> Staged:
    """The touched-keys table must already exist: the model's SQL was filtered through it."""
    key = quote(model.unique_key[0])
    predicate = f"{key} IN (SELECT {key} FROM {keys_table(model)})"
    return _stage_slice(
        con, model, sql, plan, predicate, [f"DROP TABLE IF EXISTS {keys_table(model)}"]
    )
