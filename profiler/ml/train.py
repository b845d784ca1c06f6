"""Training with an honest, out-of-time evaluation.

For an as-of time T and horizon H, labels are known up to T, so the latest usable cutoff is
V = T - H. An as-of past the newest event knows labels only up to that event, L: then V = L - H
(a window reaching past L would count its unseen days as "no purchase"). The model is evaluated
the way it will be used: fitted on earlier cutoffs (V - H, V - H - step, ...: their label windows
end by V) and validated on cutoff V, against two baselines fitted on the same training rows. Then it is refitted on the latest cutoffs
(V, V - step, ...) and that refit is what scores users as of T.

Every feature block comes from a point-in-time build of the project's own models
(`profiler.ml.pit`), labels from the raw events after each cutoff (`profiler.ml.targets`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from profiler.errors import NothingToLearn, ProfilerError
from profiler.ml import metrics as m
from profiler.ml.features import Feature, Frame, read_frame, resolve_features, schema_fingerprint
from profiler.ml.pit import point_in_time
from profiler.ml.spec import ModelSpec
from profiler.ml.targets import labels_sql

OTHER = "other"
MIN_ROWS = 20
# validation rows permutation importance shuffles: on CDNOW (23,570 of them) 20,000 took 37 s of
# a 53 s `profiler train`, 5,000 take about 9 s (benchmarks/RESULTS.md, session 9)
IMPORTANCE_ROWS = 5_000


@dataclass(frozen=True)
class Cutoffs:
    as_of: datetime
    validation: datetime
    train: tuple[datetime, ...]  # of the model that is validated
    final: tuple[datetime, ...]  # of the refit that scores
    labels_until: datetime  # the as-of, or the newest event when the as-of is past it

    @property
    def all(self) -> list[datetime]:
        return sorted({*self.train, *self.final})


def plan_cutoffs(spec: ModelSpec, as_of: datetime, newest_event: datetime | None = None) -> Cutoffs:
    """Every label window ends by the as-of, and by the newest event (what is known then)."""
    until = min(as_of, newest_event) if newest_event is not None else as_of
    h, step = timedelta(days=spec.horizon_days), timedelta(days=spec.step)
    v = until - h
    train = tuple(v - h - i * step for i in reversed(range(spec.cutoffs)))
    final = tuple(v - i * step for i in reversed(range(spec.cutoffs)))
    return Cutoffs(as_of, v, train, final, until)


def newest_event(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """Where the data ends: a window past it is unseen, not empty (events after the as-of only
    say that the data reaches the as-of; no feature reads them)."""
    return con.execute("SELECT max(ts) FROM raw_events").fetchone()[0]


@dataclass
class TrainedModel:
    spec: ModelSpec
    version: str
    data_fingerprint: str
    inputs_fingerprint: str
    data_lineage: str | None  # the warehouse data's identity (state.data_lineage)
    cutoffs: Cutoffs
    features: list[Feature]
    pipeline: object
    classes: list[str]
    metrics: dict
    baselines: dict[str, dict]
    calibration: list[dict]
    importances: dict[str, float]
    rows: dict[str, int]
    beats_recency: bool
    beats_base_rate: bool
    recency_baseline: str
    warnings: list[str] = field(default_factory=list)
    roc_curves: dict = field(default_factory=dict)  # model/baseline -> [[fpr, tpr], ...]

    @property
    def name(self) -> str:
        return self.spec.name


def inputs_fingerprint(project_dir: Path, spec: ModelSpec) -> str:
    """The SQL of every model the feature tables are built from: what the features mean."""
    from profiler.dag import build_dag
    from profiler.project import load_project

    dag = build_dag(load_project(Path(project_dir)))
    names = set()
    for table in spec.tables:
        if table in dag.models:
            names |= {table} | {a for a in dag.ancestors(table) if a in dag.models}
    from profiler.macros import fingerprint_parts, load_macros

    sql = [f"{n}:{dag.models[n].data_fingerprint}" for n in sorted(names)]
    labels = fingerprint_parts([spec.label_category], load_macros(Path(project_dir)))
    return hashlib.sha256("\x1f".join([spec.fingerprint, *sql, *labels]).encode()).hexdigest()[:16]


def data_fingerprint(
    con: duckdb.DuckDBPyConnection, project_dir: Path, spec: ModelSpec, as_of: datetime
) -> str:
    """What the training data depends on, computed without reading it: the batches loaded so far,
    the as-of, and the SQL of every model the feature tables are built from."""
    from profiler.state import data_lineage

    batches = con.execute(
        "SELECT coalesce(max(batch_id), 0), count(*), coalesce(sum(loaded), 0) FROM _profiler.batches"
    ).fetchone()
    body = "\x1f".join(
        [
            *map(str, batches),
            str(data_lineage(con)),
            as_of.isoformat(),
            inputs_fingerprint(project_dir, spec),
        ]
    )
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def model_version(spec: ModelSpec, features: list[Feature], data_fp: str) -> str:
    body = "\x1f".join([spec.fingerprint, schema_fingerprint(features), data_fp])
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def collect_frames(
    con: duckdb.DuckDBPyConnection,
    project_dir: Path,
    spec: ModelSpec,
    cutoffs: list[datetime],
    *,
    score_at: datetime | None = None,
    scratch_dir: Path | None = None,
) -> tuple[list[Feature], dict[datetime, Frame], Frame | None]:
    """Labelled frames for each cutoff (and an unlabelled one at `score_at`), one PIT build each."""
    frames: dict[datetime, Frame] = {}
    scoring = None
    features: list[Feature] | None = None
    with point_in_time(con, project_dir, scratch_dir) as pit:
        for cutoff in sorted({*cutoffs, *([score_at] if score_at else [])}):
            pit.build(cutoff, spec.tables)
            found = resolve_features(con, spec)
            if features is not None and found != features:
                raise ProfilerError(f"{spec.name}: the feature schema changed between cutoffs")
            features = found
            if cutoff in cutoffs:
                labels = labels_sql(spec, pit.warehouse, cutoff)
                frames[cutoff] = read_frame(
                    con, spec, features, cutoff, labels, labelled_only=spec.target != "purchase"
                )
            if cutoff == score_at:
                scoring = read_frame(con, spec, features, cutoff)
    assert features is not None
    return features, frames, scoring


def check_history(con: duckdb.DuckDBPyConnection, spec: ModelSpec, cuts: Cutoffs) -> None:
    """Fail before any build when the earliest cutoff has (almost) no users behind it."""
    from profiler.plan import ts_literal

    first = min(cuts.all)
    users = con.execute(
        f"SELECT count(DISTINCT user_id) FROM raw_events WHERE ts <= {ts_literal(first)}"
    ).fetchone()[0]
    if users < MIN_ROWS:
        raise ProfilerError(
            f"{spec.name}: the earliest cutoff {first} has {users} user(s) with history before "
            f"it (horizon {spec.horizon_days}d, {spec.cutoffs} cutoff(s) {spec.step}d apart); "
            f"{_shorter(spec)}"
        )


def _shorter(spec: ModelSpec) -> str:
    """The way out, for `profiler train` and for builds (which have no --horizon-days)."""
    if spec.horizon_days == 1:  # no shorter horizon exists (helper-76: it was advised)
        return (
            f"set fewer cutoffs or a smaller step_days in models/{spec.name}.toml; with a 1-day "
            "horizon, the data is too short for this model until more days arrive"
        )
    return (
        f"set a shorter horizon_days (now {spec.horizon_days}), fewer cutoffs or a smaller "
        f"step_days in models/{spec.name}.toml (that lasts), or run `profiler train {spec.name} "
        "--horizon-days H` after each build with new data (its scores last until the next one)"
    )


def _stack(frames: list[Frame]):
    import numpy as np

    X = np.concatenate([f.X for f in frames])
    y = np.concatenate([f.y for f in frames])
    recency = np.concatenate([f.recency for f in frames])
    candidates = np.concatenate([f.candidates for f in frames])
    return X, y, recency, candidates


def _classes(spec: ModelSpec) -> list:
    """Binary: [0, 1]. Next category: the positions of the user's candidates, then "other"."""
    if spec.target == "purchase":
        return [0, 1]
    return [*(str(i) for i in range(1, len(spec.candidates) + 1)), OTHER]


def probabilities(pipeline, X, classes: list, candidates=None):
    """predict_proba as columns in `classes` order; a class the fit never saw gets 0.

    For next-category models a position without a candidate (the user has fewer top categories)
    is impossible: its mass goes to the others, which is known at the cutoff, so it is fair.
    """
    import numpy as np

    raw = pipeline.predict_proba(X)
    out = np.zeros((len(X), len(classes)))
    index = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(pipeline.classes_):
        out[:, index[c]] = raw[:, j]
    if candidates is not None and candidates.shape[1]:
        out[:, : candidates.shape[1]] *= candidates.astype(bool)  # None: no such candidate
        total = out.sum(axis=1, keepdims=True)
        out = np.where(total > 0, out / np.where(total > 0, total, 1), 0)
        out[total[:, 0] == 0, -1] = 1
    return out


def written_pick(P):
    """The class scoring writes for each row: the most likely of the user's own categories (every
    position but the last, "other"; a position without a candidate has probability 0)."""
    return P[:, :-1].argmax(axis=1)


def _candidate_count(candidates):
    import numpy as np

    return np.array([sum(c is not None for c in row) for row in candidates], dtype=int)


def _check(spec: ModelSpec, what: str, y, classes_needed: int = 2) -> None:
    import numpy as np

    if len(y) < MIN_ROWS:
        raise NothingToLearn(
            f"{spec.name}: only {len(y)} {what} row(s); the cutoffs need more history before "
            f"them: {_shorter(spec)}"
        )
    if len(np.unique(y)) < classes_needed:
        label = y[0].item() if hasattr(y[0], "item") else y[0]
        why, advice = "", "try a longer horizon or more cutoffs"
        if spec.target == "purchase":
            why = (
                " (nobody bought in these rows' label windows)"
                if label == 0
                else " (everybody bought)"
            )
        elif label == OTHER:  # helper-83: 20,000 categories, the advice named the wrong cause
            why = " (no next purchase or cart fell in the user's own top categories)"
            advice = "the categories are too fine for this spec's candidates and label_category"
        raise NothingToLearn(
            f"{spec.name}: every {what} row has the same label, {label}{why}; nothing to learn: "
            f"{advice}"
        )


def _fit(spec: ModelSpec, features: list[Feature], X, y):
    from profiler.ml.estimators import fit_pipeline

    n_cat = sum(f.categorical for f in features)
    return fit_pipeline(spec, len(features) - n_cat, n_cat, X, y)


def _importances(pipeline, X, y, features: list[Feature], classes: list) -> dict[str, float]:
    """Permutation importance on the validation rows: the loss increase when a column is shuffled.

    scikit-learn's numbers (`metrics.permutation_importance` says how they are reproduced), scored
    in a few predict calls: the example shop's first build trains in 12 s instead of 26 s.
    """

    def neg_loss(y_true, proba):
        import numpy as np
        from sklearn.metrics import log_loss

        if proba.ndim == 1:  # binary scorers hand over P(class 1) only
            proba = np.column_stack([1 - proba, proba])
        proba = np.clip(proba, m.EPS, 1)
        return -log_loss(
            y_true, proba / proba.sum(axis=1, keepdims=True), labels=list(pipeline.classes_)
        )

    def predict(rows):  # what a predict_proba scorer hands over: P(class 1) for two classes
        proba = pipeline.predict_proba(rows)
        return proba[:, 1] if len(pipeline.classes_) == 2 else proba

    if len(y) > IMPORTANCE_ROWS:  # a fixed sample keeps this cheap on millions of users
        import numpy as np

        keep = np.sort(np.random.RandomState(0).choice(len(y), IMPORTANCE_ROWS, replace=False))
        X, y = X[keep], y[keep]
    drops = m.permutation_importance(predict, neg_loss, X, y, n_repeats=3, random_state=0)
    pairs = sorted(
        zip((f.name for f in features), drops, strict=True),
        key=lambda kv: -kv[1],
    )
    return {name: round(float(v), 6) for name, v in pairs}


def evaluate(spec: ModelSpec, features: list[Feature], train: list[Frame], valid: Frame) -> dict:
    """Fit on the training cutoffs, measure on the validation cutoff, with both baselines."""
    import numpy as np

    X, y, rec, cands = _stack(train)
    if spec.target != "purchase" and not len(y):  # helper-77: advised a shorter horizon
        raise NothingToLearn(
            f"{spec.name}: no training row: no user with one of the candidates "
            f"({', '.join(spec.candidates)}) has a {' or '.join(spec.label_events)} in a label "
            "window after the training cutoffs (a shop without categories cannot train it)"
        )
    _check(spec, "training", y)
    _check(spec, "validation", valid.y, 1)
    classes, yv = _classes(spec), valid.y
    pipeline = _fit(spec, features, X, y)
    P = probabilities(pipeline, valid.X, classes, valid.candidates)
    if spec.target == "purchase":
        p = P[:, 1]
        result = m.binary_metrics(yv, p)
        prior, recency = m.prior_binary(y, len(yv)), m.recency_binary(rec, y, valid.recency)
        baselines = {
            "base_rate": m.binary_metrics(yv, prior),
            "recency": m.binary_metrics(yv, recency),
        }
        scored = {"model": p, "base_rate": prior, "recency": recency}
        roc = {name: m.roc_points(yv, q) for name, q in scored.items()}
        calibration = m.calibration_table(yv, p)
        described = "days since the last purchase, isotonic fit on the training rows"
    else:
        # every number is of the label scoring writes: the most likely of the user's own
        # categories, never "other" (helper-76: an argmax that could say "other" was measured)
        pick = written_pick
        result = m.multiclass_metrics(yv, P, classes, pick(P))
        prior = m.prior_multiclass(y, classes, len(yv))
        top = m.top_candidate_multiclass(
            _candidate_count(cands), y, _candidate_count(valid.candidates), classes
        )
        baselines = {
            "base_rate": m.multiclass_metrics(yv, prior, classes, pick(prior)),
            "recency": m.multiclass_metrics(yv, top, classes, pick(top)),
        }
        scored = {"model": P, "base_rate": prior, "recency": top}
        roc = {name: m.roc_points_multiclass(yv, Q, classes) for name, Q in scored.items()}
        chosen = pick(P)
        correct = (np.asarray(classes, dtype=object)[chosen] == yv).astype(float)
        calibration = m.calibration_table(correct, P[np.arange(len(yv)), chosen])
        described = (
            "the user's own top categories, each as often as it came next on the training rows "
            "(by position, among users with as many top categories)"
        )
    return {
        "metrics": result,
        "baselines": baselines,
        "calibration": calibration,
        "importances": _importances(pipeline, valid.X, yv, features, classes),
        "rows": {"train": int(len(y)), "validation": int(len(yv))},
        "recency_baseline": described,
        "roc_curves": roc,  # [fpr, tpr] points per model and baseline, for the docs site
    }


def train_model(
    con: duckdb.DuckDBPyConnection,
    project_dir: Path,
    spec: ModelSpec,
    as_of: datetime,
    *,
    score_at: datetime | None = None,
    scratch_dir: Path | None = None,
) -> tuple[TrainedModel, Frame | None]:
    """Evaluate out of time, refit on the latest cutoffs; optionally read features to score at T."""
    from profiler.ml.estimators import one_thread
    from profiler.state import data_lineage

    data_fp = data_fingerprint(con, project_dir, spec, as_of)
    cuts = plan_cutoffs(spec, as_of, newest_event(con))
    check_history(con, spec, cuts)
    features, frames, scoring = collect_frames(
        con, project_dir, spec, cuts.all, score_at=score_at, scratch_dir=scratch_dir
    )
    with one_thread():
        report = evaluate(spec, features, [frames[c] for c in cuts.train], frames[cuts.validation])
        X, y, _, _ = _stack([frames[c] for c in cuts.final])
        # the refit is a training too: on one label it learns nothing and writes it for every user
        # (helper-106: nobody bought after the validation cutoff, 928 scores of 0.0, deciles by id)
        _check(spec, "final training", y)
        pipeline = _fit(spec, features, X, y)
    report["rows"]["final"] = int(len(y))
    trained = TrainedModel(
        spec=spec,
        version=model_version(spec, features, data_fp),
        data_fingerprint=data_fp,
        inputs_fingerprint=inputs_fingerprint(project_dir, spec),
        data_lineage=data_lineage(con),
        cutoffs=cuts,
        features=features,
        pipeline=pipeline,
        classes=_classes(spec),
        metrics=report["metrics"],
        baselines=report["baselines"],
        calibration=report["calibration"],
        importances=report["importances"],
        rows=report["rows"],
        beats_recency=m.beats(report["metrics"], report["baselines"]["recency"]),
        beats_base_rate=m.beats(report["metrics"], report["baselines"]["base_rate"]),
        recency_baseline=report["recency_baseline"],
        roc_curves=report.get("roc_curves", {}),
    )
    if cuts.labels_until < as_of:
        trained.warnings.append(
            f"note: the as-of {as_of} is past the newest event ({cuts.labels_until}): label "
            f"windows end there, so the validation cutoff is {cuts.validation}"
        )
    if not trained.beats_recency:
        short = m.shortfalls(trained.metrics, trained.baselines["recency"])
        trained.warnings.append(
            f"WARNING: {spec.name} does not beat the {m.heuristic_name(spec.target)} baseline on "
            f"the validation cutoff {cuts.validation} ({', '.join(short)}); {m.what_it_means(short)}"
        )
    return trained, scoring


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
