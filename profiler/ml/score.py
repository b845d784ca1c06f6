"""Scores for every user as of a time, and the `user_scores` table they go into.

`user_scores` holds one row per user, model and as-of: `score` is P(purchase within the horizon)
for purchase models, and the probability of the predicted category for next-category models,
whose `label` column names that category. `decile` ranks users within the model and as-of
(1 = the highest tenth of scores). A newer training replaces the rows of the same model and as-of.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from profiler.ml.artifacts import Artifact
from profiler.ml.features import Frame
from profiler.state import SCHEMA

TABLE = "user_scores"
COLUMNS = (
    ("user_id", "VARCHAR"),
    ("model", "VARCHAR"),
    ("score", "DOUBLE"),
    ("as_of", "TIMESTAMP"),
    ("model_version", "VARCHAR"),
    ("label", "VARCHAR"),
    ("decile", "INTEGER"),
    ("horizon_days", "INTEGER"),
)


def _schema():
    import pyarrow as pa

    types = {
        "VARCHAR": pa.string(),
        "DOUBLE": pa.float64(),
        "TIMESTAMP": pa.timestamp("us"),
        "INTEGER": pa.int32(),
    }
    return pa.schema([(name, types[t]) for name, t in COLUMNS])


def empty_scores():
    return _schema().empty_table()


def deciles(scores, user_ids):
    """1..10 by descending score; ties broken by user id so the split is reproducible."""
    import numpy as np

    n = len(scores)
    out = np.zeros(n, dtype=np.int32)
    if n:
        order = np.lexsort((np.asarray(user_ids, dtype=object).astype(str), -np.asarray(scores)))
        out[order] = (np.arange(n) * 10 // n) + 1
    return out


def score_frame(artifact: Artifact, frame: Frame, as_of: datetime):
    """A pyarrow table of `user_scores` rows for every user in the frame."""
    import numpy as np
    import pyarrow as pa

    from profiler.ml.train import probabilities, written_pick

    n = len(frame.user_ids)
    if n == 0:
        return empty_scores()
    from profiler.ml.estimators import one_thread

    classes = artifact.classes
    with one_thread():
        P = probabilities(artifact.pipeline, frame.X, classes, frame.candidates)
    if artifact.metadata["target"] == "purchase":
        score, label = P[:, 1], pa.nulls(n, pa.string())
    else:
        # the most likely of the user's own categories (a user without any is not in the frame)
        best = written_pick(P)
        score = P[np.arange(n), best]
        # a position names the user's own candidate category; the last class is "other"
        padded = np.column_stack([frame.candidates, np.full(n, classes[-1], dtype=object)])
        label = pa.array(padded[np.arange(n), best].tolist(), pa.string())
    return pa.table(
        {
            "user_id": pa.array(frame.user_ids, pa.string()),
            "model": pa.array([artifact.name] * n, pa.string()),
            "score": pa.array(score, pa.float64()),
            "as_of": pa.array([as_of] * n, pa.timestamp("us")),
            "model_version": pa.array([artifact.version] * n, pa.string()),
            "label": label,
            "decile": pa.array(deciles(score, frame.user_ids), pa.int32()),
            "horizon_days": pa.array([artifact.metadata.get("horizon_days")] * n, pa.int32()),
        },
        schema=_schema(),
    )


def score_users(con: duckdb.DuckDBPyConnection, spec, artifact: Artifact, as_of: datetime):
    """Score every user of the spec's population in the current catalog's feature tables."""
    from profiler.ml.features import read_frame, resolve_features

    features = resolve_features(con, spec)
    artifact.check_features(features)
    return score_frame(artifact, read_frame(con, spec, features, as_of), as_of)


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    cols = ", ".join(f"{n} {t}" for n, t in COLUMNS)
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({cols})")
    add_missing_columns(con)


def add_missing_columns(con: duckdb.DuckDBPyConnection) -> None:
    """A `user_scores` from before a column (horizon_days) gets it, NULL on its rows."""
    for name, kind in COLUMNS:
        con.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {name} {kind}")


def write_scores(con: duckdb.DuckDBPyConnection, rows) -> int:
    """Replace the scores of each (model, as-of) in `rows` with `rows`, in one transaction."""
    ensure_table(con)
    con.register("__profiler_new_scores", rows)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f"DELETE FROM {TABLE} AS s WHERE EXISTS (SELECT 1 FROM __profiler_new_scores AS n "
                "WHERE n.model = s.model AND n.as_of = s.as_of)"
            )
            names = ", ".join(n for n, _ in COLUMNS)
            con.execute(f"INSERT INTO {TABLE} ({names}) SELECT {names} FROM __profiler_new_scores")
            # the build's own user_scores node did not write these rows: a new version makes
            # the next build rebuild what reads them (user_profile, the audiences)
            con.execute(f"UPDATE {SCHEMA}.models SET version = version + 1 WHERE name = ?", [TABLE])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister("__profiler_new_scores")
    return rows.num_rows
