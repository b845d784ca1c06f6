"""`profiler train NAME [--as-of T] [--horizon-days H]`: train, evaluate out of time, score at T.

Features at T come from the published tables when they are published at T, otherwise from a
point-in-time build at T (the published warehouse is left as it is). Until the engine publishes
`user_scores` as a model of the build, this command writes the scores itself: it replaces the
rows of this model and as-of in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from profiler.errors import ProfilerError


@dataclass
class TrainReport:
    lines: list[str] = field(default_factory=list)
    beats_recency: bool = True


def train_command(settings, name: str, as_of: str | None, horizon_days: int | None) -> TrainReport:
    from profiler.build import parse_as_of, resolve_as_of
    from profiler.lock import warehouse_lock
    from profiler.macros import install as install_macros
    from profiler.macros import load_macros
    from profiler.ml.score import score_frame, score_users, write_scores
    from profiler.ml.spec import load_spec
    from profiler.ml.step import describe_training, published_at, train_version
    from profiler.settings import connect
    from profiler.state import ensure_schema

    spec = load_spec(settings.project_dir, name).with_horizon(horizon_days)
    given = parse_as_of(as_of)
    if settings.warehouse_configured and not settings.warehouse.exists():  # helper-62: a typo
        raise ProfilerError(
            f"{settings.warehouse}: no warehouse there (a typo in the path?); ingest and build "
            "before training"
        )
    with warehouse_lock(settings.warehouse, f"train {name}"):
        con = connect(settings)
        try:
            ensure_schema(con)
            install_macros(con, load_macros(settings.project_dir))  # the labels may call one
            t = resolve_as_of(con, given)
            published = published_at(con, settings.project_dir, spec.tables, t)
            trained, artifact, frame = train_version(
                con, settings.project_dir, spec, t, settings.target_dir,
                score_at=None if published else t,
            )  # fmt: skip
            scores = (
                score_users(con, spec, artifact, t)
                if published
                else score_frame(artifact, frame, t)
            )
            rows = write_scores(con, scores)
        finally:
            con.close()
    source = "published tables" if published else "a point-in-time build"
    lines = describe_training(trained)
    lines.append(f"artifact: {artifact.path}")
    lines.append(f"scored {rows:,} users as of {t} (features from {source}) into user_scores")
    return TrainReport(lines, trained.beats_recency)
