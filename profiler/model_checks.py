"""What a model's staged output must say before its gate runs: the header's columns exist, an
incremental_by_key or scd2 model's key is unique, and the documented columns are the ones made.

Each check reads the staged relation's column names or a single aggregate over it.
"""

from __future__ import annotations

import duckdb

from profiler.materialize import quote
from profiler.project import Kind, Model


def header_columns_missing(model: Model, have: list[str]) -> str | None:
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


def documented_otherwise(model: Model, have: list[str]) -> list[str]:
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


def repeated_key(con: duckdb.DuckDBPyConnection, model: Model, staged) -> str | None:
    """An incremental_by_key model's rows replace the published ones by key: two rows of one key
    would both stay (helper-28: 1,856 rows for 928 users, published). An scd2 model's rows are the
    current state its history merges by key: two rows of one key were both opened, and the next
    build kept one open and closed the other for good (helper-118: 2,299 open versions for 928
    users, then "6,129 changed" of 2,577 rows). None when the key is unique."""
    if model.kind not in (Kind.INCREMENTAL_BY_KEY, Kind.SCD2) or not model.unique_key:
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
        f"e.g. {n} rows have {which}; "
        + (
            "an incremental_by_key model gives one row per key"
            if model.kind is Kind.INCREMENTAL_BY_KEY
            else "an scd2 model's SELECT gives the current state, one row per key"
        )
        + " (nothing was published)"
    )
