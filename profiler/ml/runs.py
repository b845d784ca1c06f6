"""`_profiler.model_runs`: one row per trained model version, with its honest evaluation.

Metrics are measured on the validation cutoff (out of time). Each metric appears three times: for
the model, for the base-rate baseline (`base_rate_*`) and for the heuristic baseline
(`recency_*`: days since the last purchase for purchase models, the user's own top category for
next-category models; `recency_baseline` says which). `beats_recency` is false for a model that
does not beat that baseline on log loss, ROC AUC and (next category: the label it writes)
accuracy; `metrics` holds every number.
"""

from __future__ import annotations

import json

import duckdb

from profiler.ml.metrics import METRICS

TABLE = "_profiler.model_runs"

_COLUMNS = [
    ("model", "VARCHAR"),
    ("model_version", "VARCHAR"),
    ("as_of", "TIMESTAMP"),
    ("target", "VARCHAR"),
    ("estimator", "VARCHAR"),
    ("horizon_days", "INTEGER"),
    ("train_cutoffs", "VARCHAR"),  # JSON list, of the validated model
    ("validation_cutoff", "TIMESTAMP"),
    ("final_cutoffs", "VARCHAR"),  # JSON list, of the refit that scores
    ("training_window_start", "TIMESTAMP"),
    (
        "training_window_end",
        "TIMESTAMP",
    ),  # labels are known up to here (the as-of, or the newest event before it)
    ("rows_train", "BIGINT"),
    ("rows_validation", "BIGINT"),
    ("rows_final", "BIGINT"),
    ("base_rate", "DOUBLE"),
    *[(name, "DOUBLE") for name in METRICS],
    *[(f"base_rate_{name}", "DOUBLE") for name in METRICS],
    *[(f"recency_{name}", "DOUBLE") for name in METRICS],
    ("recency_baseline", "VARCHAR"),
    ("beats_recency", "BOOLEAN"),
    ("beats_base_rate", "BOOLEAN"),
    ("calibration", "JSON"),
    ("importances", "JSON"),
    ("metrics", "JSON"),  # everything above and the extras (e.g. accuracy), per model/baseline;
    # `roc_curves`: [false positive rate, true positive rate] points per model/baseline
    ("artifact", "VARCHAR"),
]


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    cols = ", ".join(f"{n} {t}" for n, t in _COLUMNS)
    con.execute("CREATE SCHEMA IF NOT EXISTS _profiler")
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({cols})")


def record_run(con: duckdb.DuckDBPyConnection, trained, artifact_path) -> None:
    """Insert (or replace) the row of this model version."""
    ensure_table(con)
    cuts = trained.cutoffs
    row = {
        "model": trained.name,
        "model_version": trained.version,
        "as_of": cuts.as_of,
        "target": trained.spec.target,
        "estimator": trained.spec.estimator,
        "horizon_days": trained.spec.horizon_days,
        "train_cutoffs": json.dumps([c.isoformat() for c in cuts.train]),
        "validation_cutoff": cuts.validation,
        "final_cutoffs": json.dumps([c.isoformat() for c in cuts.final]),
        "training_window_start": min(cuts.train),
        "training_window_end": cuts.labels_until,
        "rows_train": trained.rows["train"],
        "rows_validation": trained.rows["validation"],
        "rows_final": trained.rows.get("final"),
        "base_rate": trained.metrics["base_rate"],
        **{name: trained.metrics.get(name) for name in METRICS},
        **{f"base_rate_{n}": trained.baselines["base_rate"].get(n) for n in METRICS},
        **{f"recency_{n}": trained.baselines["recency"].get(n) for n in METRICS},
        "recency_baseline": trained.recency_baseline,
        "beats_recency": trained.beats_recency,
        "beats_base_rate": trained.beats_base_rate,
        "calibration": json.dumps(trained.calibration),
        "importances": json.dumps(trained.importances),
        "metrics": json.dumps(
            {"model": trained.metrics, **trained.baselines, "roc_curves": trained.roc_curves}
        ),
        "artifact": str(artifact_path),
    }
    names = [n for n, _ in _COLUMNS]
    con.execute(
        f"DELETE FROM {TABLE} WHERE model = ? AND model_version = ?",
        [trained.name, trained.version],
    )
    con.execute(
        f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        [row[n] for n in names],
    )
