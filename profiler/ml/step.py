"""The model layer as one step of `profiler build`: retrain what changed, score everything.

After a build has published the feature tables at `as_of`, `scores_for_build` makes sure every
spec has a trained artifact for its current version (spec + feature schema + training data
fingerprint; see `profiler.ml.train.model_version`), training it only when that version has
no artifact yet, then scores all users from the published tables. The engine stages, gates and
publishes the rows as `user_scores`; the step itself writes only engine state
(`_profiler.model_runs`) and artifacts under `target/models/`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from profiler.errors import NothingToLearn, ProfilerError, SpecError
from profiler.ml.spec import ModelSpec, load_specs


def spec_fingerprint(project_dir: Path) -> str:
    """Changes when any spec changes what it computes (comments and layout do not count)."""
    from profiler.macros import fingerprint_parts, load_macros

    specs = load_specs(Path(project_dir))
    body = "\x1f".join(
        [
            *(f"{name}:{spec.fingerprint}" for name, spec in sorted(specs.items())),
            *fingerprint_parts(
                [spec.label_category for spec in specs.values()], load_macros(Path(project_dir))
            ),
        ]
    )
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def feature_tables(project_dir: Path) -> set[str]:
    """The tables the specs read: the parents of `user_scores` in the build graph."""
    return {t for spec in load_specs(Path(project_dir)).values() for t in spec.tables}


def published_at(
    con: duckdb.DuckDBPyConnection, project_dir: Path, tables: tuple[str, ...], as_of: datetime
) -> bool:
    """True when every table is published as of `as_of`, has taken in every batch, and it and
    the models it is built from were built by the project's SQL as it is now (helper-87: after an
    upgrade, `train` fitted the new SQL's features and scored the old SQL's tables)."""
    from profiler.dag import build_dag
    from profiler.plan import stale_sql
    from profiler.project import load_project
    from profiler.state import max_batch, read_states

    states = read_states(con)
    newest = max_batch(con)
    if not all(
        t in states and states[t].as_of == as_of and states[t].watermark >= newest for t in tables
    ):
        return False
    dag = build_dag(load_project(Path(project_dir)))
    lineage = {a for t in tables if t in dag.models for a in [t, *dag.ancestors(t)]}
    return not stale_sql(dag, states, sorted(lineage))


@dataclass
class Scored:
    spec: ModelSpec
    artifact: object  # profiler.ml.artifacts.Artifact
    rows: object  # pyarrow.Table of user_scores rows
    trained: object | None  # profiler.ml.train.TrainedModel when this call trained it


def train_version(
    con, project_dir: Path, spec: ModelSpec, as_of: datetime, target_dir: Path, *, score_at=None
):
    """Train, save the artifact, record the run; returns (trained, artifact, scoring frame)."""
    from profiler.ml.artifacts import read_artifact, save_artifact
    from profiler.ml.runs import record_run
    from profiler.ml.train import train_model

    trained, frame = train_model(
        con, project_dir, spec, as_of, score_at=score_at, scratch_dir=Path(target_dir) / "tmp"
    )
    path = save_artifact(target_dir, trained)
    record_run(con, trained, path)
    return trained, read_artifact(path), frame


def score_published(
    con: duckdb.DuckDBPyConnection,
    project_dir: Path,
    spec: ModelSpec,
    as_of: datetime,
    target_dir: Path,
) -> Scored:
    """Reuse (or train) the spec's current version, then score the published tables at `as_of`."""
    from profiler.ml.artifacts import (
        load_artifact,
        recent_artifact,
        recent_failure,
        remember_failure,
    )
    from profiler.ml.features import resolve_features
    from profiler.ml.score import score_users
    from profiler.ml.train import data_fingerprint, inputs_fingerprint, model_version
    from profiler.state import data_lineage

    features = resolve_features(con, spec)
    version = model_version(spec, features, data_fingerprint(con, project_dir, spec, as_of))
    inputs, lineage, days = (
        inputs_fingerprint(project_dir, spec),
        data_lineage(con),
        spec.retrain_every_days,
    )
    artifact = load_artifact(target_dir, spec.name, version) or recent_artifact(
        target_dir, spec.name, inputs, as_of, days, lineage
    )
    trained = None
    if artifact is None:
        (loaded,) = con.execute(
            "SELECT coalesce(sum(loaded), 0) FROM _profiler.batches WHERE superseded_by IS NULL"
        ).fetchone()
        failed = recent_failure(target_dir, spec.name, inputs, as_of, days, lineage, loaded)
        if failed:
            raise ProfilerError(failed)
        try:
            trained, artifact, _ = train_version(con, project_dir, spec, as_of, target_dir)
        except NothingToLearn as err:
            remember_failure(target_dir, spec.name, inputs, lineage, as_of, loaded, str(err))
            raise
    return Scored(spec, artifact, score_users(con, spec, artifact, as_of), trained)


def describe_training(trained) -> list[str]:
    """Two lines per trained version: what it was validated on, and model vs baselines."""
    from profiler.ml.metrics import heuristic_name
    from profiler.ml.train import _fmt

    m, b = trained.metrics, trained.baselines
    cuts = trained.cutoffs
    lines = [
        f"{trained.name} {trained.version}: {trained.spec.estimator}, horizon {trained.spec.horizon_days}d, "
        f"trained on cutoffs {', '.join(c.isoformat(sep=' ') for c in cuts.train)} "
        f"({trained.rows['train']:,} rows), validated on {cuts.validation.isoformat(sep=' ')} "
        f"({trained.rows['validation']:,} rows, base rate {_fmt(m['base_rate'])}), "
        f"refit on {', '.join(c.isoformat(sep=' ') for c in cuts.final)}"
    ]
    heuristic = heuristic_name(trained.spec.target)
    for label, values in (("model", m), ("base rate", b["base_rate"]), (heuristic, b["recency"])):
        lines.append(
            f"  {label:<12} ROC AUC {_fmt(values['roc_auc'])}  PR AUC {_fmt(values['pr_auc'])}  "
            f"log loss {_fmt(values['log_loss'])}  Brier {_fmt(values['brier'])}  "
            f"lift@10% {_fmt(values['lift_top_decile'])}"
            + (f"  accuracy {_fmt(values['accuracy'])}" if "accuracy" in values else "")
        )
    return lines + trained.warnings


def scores_for_build(
    con: duckdb.DuckDBPyConnection, project_dir: Path, as_of: datetime, target_dir: Path
):
    """`user_scores` rows of every spec at `as_of` (None without specs), and lines to print.

    A spec that cannot be trained or scored yet (too little history, a missing table) is reported
    in the messages and left out; the other specs still score. A spec that does not fit the
    tables (`SpecError`: a column it names does not exist) fails the build.
    """
    import pyarrow as pa

    from profiler.ml.metrics import heuristic_name

    specs = load_specs(Path(project_dir))
    if not specs:
        return None, []
    tables, messages = [], []
    for name, spec in specs.items():
        try:
            scored = score_published(con, project_dir, spec, as_of, target_dir)
        except SpecError:
            raise  # the project must change: the build fails, loudly (helper-76)
        except ProfilerError as err:
            why = str(err).removeprefix(f"{name}: ")  # helper-80: the name twice in one line
            kept = _kept_scores(con, project_dir, spec, as_of, target_dir)
            messages.append(f"{name}: not scored: {why}{kept}")
            continue
        if scored.trained is not None:
            messages += describe_training(scored.trained)
        else:
            messages.append(
                f"{name} {scored.artifact.version}: spec and feature SQL unchanged and trained within "
                f"{spec.retrain_every_days} days of as-of time: reused"
            )
        if not scored.artifact.metadata.get("beats_recency", False) and scored.trained is None:
            messages.append(
                f"WARNING: {name} {scored.artifact.version} does not beat the "
                f"{heuristic_name(spec.target)} baseline"
            )
        messages.append(f"{name}: scored {scored.rows.num_rows:,} users as of {as_of}")
        tables.append(scored.rows)
    return (pa.concat_tables(tables) if tables else None), messages


def _kept_scores(
    con: duckdb.DuckDBPyConnection, project_dir: Path, spec, as_of: datetime, target_dir: Path
) -> str:
    """Scores `profiler train` wrote at this as-of stay what the profile shows: say so, since
    "not scored" reads as none (helper-32: 928 scores stayed, made before the latest data), and
    say when their model read features of SQL edited since (helper-87: an upgrade's)."""
    from profiler.ml.artifacts import load_artifact
    from profiler.ml.score import TABLE
    from profiler.ml.train import inputs_fingerprint
    from profiler.state import has_table

    name = spec.name

    if not has_table(con, TABLE):
        return ""
    rows = con.execute(
        f"SELECT count(*), max(model_version) FROM {TABLE} WHERE model = ? AND as_of = ?",
        [name, as_of],
    ).fetchone()
    if not rows[0]:
        return ""
    artifact = load_artifact(target_dir, name, rows[1])
    edited = artifact is not None and artifact.metadata.get("inputs_fingerprint") != (
        inputs_fingerprint(project_dir, spec.with_horizon(artifact.metadata.get("horizon_days")))
    )  # `train --horizon-days` is no edit
    then = "the data then, by a spec or feature SQL edited since" if edited else "the data then"
    return (
        f"; the {rows[0]:,} scores of model version {rows[1]} written earlier at this as-of stay "
        f"in user_scores and the profile (made from {then}: `profiler train {name}` scores the "
        "data now)"
    )


REPLACE_KEY = ("model", "as_of")  # new scores replace the ones of the same model and as-of


def scores_model(project_dir: Path):
    """The build graph's node for the model layer: `user_scores`, reading the specs' tables."""
    from profiler.ml.score import COLUMNS
    from profiler.project import Kind, Model

    folder = Path(project_dir) / "models"
    return Model(
        name="user_scores",
        path=folder,
        # its columns count: a new one (horizon_days) rescores, so the profile can read it
        sql=f"-- model layer: {spec_fingerprint(project_dir)} ({', '.join(n for n, _ in COLUMNS)})",
        kind=Kind.PYTHON,
        header_lines=0,
        description="Scores of every classifier spec in models/, one row per user, model and as-of.",
        unique_key=("user_id", "model", "as_of"),
        tags=("scores",),
        depends_on=tuple(sorted(feature_tables(project_dir))),
        columns={
            "user_id": "the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)",
            "model": "the spec's name in models/",
            "score": "the model's probability (next_category: of the most likely category)",
            "as_of": "the as-of time the features were read at",
            "model_version": "hash of the spec, the feature schema and what the training data depends on (the batches loaded, the as-of, the feature SQL, and the warehouse: two warehouses of the same data train versions of their own)",
            "label": "next_category: the most likely category; NULL otherwise",
            "decile": "1 = the 10% highest scores of this model and as-of",
            "horizon_days": "the days after as-of the model predicts for (its spec's horizon_days, or train --horizon-days)",
        },
    )


def run_scores(con: duckdb.DuckDBPyConnection, project_dir: Path, as_of: datetime):
    """Rows for `user_scores` at `as_of` (empty with the right columns when nothing scored)."""
    import pyarrow as pa

    from profiler.ml.score import COLUMNS

    rows, messages = scores_for_build(con, project_dir, as_of, Path(project_dir) / "target")
    if rows is None:
        types = {
            "VARCHAR": pa.string(),
            "DOUBLE": pa.float64(),
            "TIMESTAMP": pa.timestamp("us"),
            "INTEGER": pa.int32(),
            "BIGINT": pa.int64(),
        }
        # from typed empty arrays: pa.array([]) and schema.empty_table() import pandas (0.5 s)
        rows = pa.Table.from_arrays(
            [pa.nulls(0, types.get(t, pa.string())) for _, t in COLUMNS],
            names=[n for n, _ in COLUMNS],
        )
    return rows, messages
