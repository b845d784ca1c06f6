"""The feature columns a spec reads, their schema, and the one SELECT that reads them.

Features are read from the feature tables of the current DuckDB catalog: the published warehouse
when scoring at its as-of, or a point-in-time build (see `profiler.ml.pit`) for a cutoff. Either
way the values come from the project's SQL models; this module only picks columns and joins the
tables on `user_id`, with the spec's first table as the population.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import duckdb

from profiler.errors import ProfilerError, SpecError
from profiler.ml.spec import ModelSpec
from profiler.sqltext import quote as _q

KEY = "user_id"
_NUMERIC = (
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "BOOLEAN", "DECIMAL",
)  # fmt: skip


@dataclass(frozen=True)
class Feature:
    table: str
    column: str
    dtype: str
    categorical: bool = False

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    def as_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "categorical": self.categorical}


@dataclass
class Frame:
    """One block of rows: the users, their features (numeric first, then categorical), a label."""

    cutoff: datetime
    user_ids: list[str]
    X: object  # numpy array: float64, or object when there are categorical features
    y: object | None  # numpy array of 0/1, or of category ids; None when scoring
    recency: object  # float64 days since the last purchase, NaN for never
    candidates: object  # object array (users x candidates): the user's own top categories


def is_numeric(dtype: str) -> bool:
    return dtype.upper().split("(")[0] in _NUMERIC


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = "
        "current_database() AND table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def resolve_features(con: duckdb.DuckDBPyConnection, spec: ModelSpec) -> list[Feature]:
    """The spec's features as the tables now define them: numeric first, then categorical."""
    numeric: list[Feature] = []
    categorical: list[Feature] = []
    for source in spec.features:
        cols = dict(table_columns(con, source.table))
        if not cols:
            raise ProfilerError(
                f"{spec.path}: feature table {source.table!r} is not built; run `profiler build`"
            )
        if KEY not in {c.lower() for c in cols}:
            raise SpecError(f"{spec.path}: feature table {source.table!r} has no {KEY} column")
        wanted = (
            [c for c, t in cols.items() if is_numeric(t) and c.lower() != KEY]
            if source.columns == "numeric"
            else list(source.columns)
        )
        for column in [*wanted, *source.categorical]:
            if column not in cols:
                raise SpecError(
                    f"{spec.path}: {source.table} has no column {column!r} (it has: {', '.join(cols)})"
                )
        for column in wanted:
            if column in source.exclude or column in source.categorical:
                continue
            if not is_numeric(cols[column]):
                raise SpecError(
                    f"{spec.path}: {source.table}.{column} is {cols[column]}, not numeric; "
                    "list it under categorical = [...] instead"
                )
            numeric.append(Feature(source.table, column, cols[column]))
        categorical += [Feature(source.table, c, cols[c], True) for c in source.categorical]
    if not numeric and not categorical:
        raise SpecError(f"{spec.path}: the spec selects no feature columns")
    return numeric + categorical


def schema_fingerprint(features: list[Feature]) -> str:
    body = json.dumps([f.as_dict() for f in features])
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def features_sql(spec: ModelSpec, features: list[Feature]) -> str:
    """One row per user of the population table, with every feature, the baselines' inputs."""
    spine, *others = spec.tables
    cols = [f"CAST({_q(spine)}.{KEY} AS VARCHAR) AS __user_id"]
    for f in features:
        cast = "VARCHAR" if f.categorical else "DOUBLE"
        cols.append(f"CAST({_q(f.table)}.{_q(f.column)} AS {cast}) AS {_q(f.name)}")
    cols.append(
        f"CAST(({spec.recency}) AS DOUBLE) AS __recency"
        if spec.recency
        else "CAST(NULL AS DOUBLE) AS __recency"
    )
    cols += [f"CAST(({c}) AS VARCHAR) AS __cand_{i}" for i, c in enumerate(spec.candidates, 1)]
    joins = "".join(f" LEFT JOIN {_q(t)} USING ({KEY})" for t in others)
    return f"SELECT {', '.join(cols)} FROM {_q(spine)}{joins}"


def _label_expr(spec: ModelSpec) -> str:
    """Purchases: the 0/1 label. Next category: the position of the next category among the
    user's own candidates ('1' = their top category), or 'other'."""
    if spec.target == "purchase":
        return "l.__label"
    whens = " ".join(
        f"WHEN l.__label = f.__cand_{i} THEN '{i}'" for i in range(1, len(spec.candidates) + 1)
    )
    return f"CASE {whens} ELSE 'other' END"


def read_frame(
    con: duckdb.DuckDBPyConnection,
    spec: ModelSpec,
    features: list[Feature],
    cutoff: datetime,
    labels_sql: str | None = None,
    *,
    labelled_only: bool = False,
) -> Frame:
    """Features (and labels, when given) of every user of the population, ordered by user.

    A next-category model's population is the users with at least one candidate: for a user
    without one the answer is "other" by construction, which would flatter every metric
    (helper-76: 92 of 1,640 validation rows) and write "other" at probability 1."""
    import numpy as np

    sql = features_sql(spec, features)
    if spec.target != "purchase" and spec.candidates:  # nothing to choose among: no row
        cands = ", ".join(f"__cand_{i}" for i in range(1, len(spec.candidates) + 1))
        sql = f"SELECT * FROM ({sql}) WHERE coalesce({cands}) IS NOT NULL"
    if labels_sql:
        join = "JOIN" if labelled_only else "LEFT JOIN"
        sql = (
            f"SELECT f.*, {_label_expr(spec)} AS __label FROM ({sql}) AS f {join} ({labels_sql}) AS l "
            "ON l.user_id = f.__user_id"
        )
    try:
        table = con.sql(sql + " ORDER BY __user_id").to_arrow_table()
    except duckdb.InterruptException:
        raise  # Ctrl-C: no "not scored" (helper-46: scores published without this model)
    except (duckdb.BinderException, duckdb.ParserException) as err:
        # the spec's own SQL (candidates, recency, the label's category) names what is not
        # there: the project must change, so a build fails on it (helper-77)
        raise SpecError(
            f"{spec.path}: cannot read the features: {str(err).splitlines()[0]}"
        ) from None
    except duckdb.Error as err:
        raise ProfilerError(
            f"{spec.path}: cannot read the features: {str(err).splitlines()[0]}"
        ) from None
    n = table.num_rows

    def column(name: str, dtype=None):
        values = table.column(name).to_numpy(zero_copy_only=False)
        return values.astype(dtype) if dtype else values

    numeric = [f for f in features if not f.categorical]
    cats = [f for f in features if f.categorical]
    if cats:
        X = np.empty((n, len(features)), dtype=object)
        for i, f in enumerate(features):
            X[:, i] = column(f.name, float if not f.categorical else object)
    else:
        X = (
            np.column_stack([column(f.name, float) for f in numeric])
            if n
            else np.empty((0, len(numeric)))
        )
    y = None
    if labels_sql:
        y = (
            np.nan_to_num(column("__label", float)).astype(int)
            if spec.target == "purchase"
            else column("__label", object)
        )
    return Frame(
        cutoff,
        [str(u) for u in column("__user_id", object)],
        X,
        y,
        column("__recency", float),
        np.column_stack([column(f"__cand_{i}", object) for i in range(1, len(spec.candidates) + 1)])
        if spec.candidates
        else np.empty((n, 0), dtype=object),
    )
