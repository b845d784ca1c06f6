"""Offline evaluation of `user_recommendations` on a time split, against global popularity.

The recommendations are built by the engine itself as of a cutoff C, in a point-in-time scratch
catalog (`profiler.ml.pit`: the same SQL, with every raw read cut at C), so they cannot have seen
what they are judged on. They are then compared with what each user really bought or carted in
(C, C + horizon]. The baseline is the shop's global popularity at C (`rec_item_popularity`, the
same table the recommendations use), top k for everyone, minus the items the user already bought:
the recommender must beat what a shop without profiles would show.

Metrics, over the users known at C who bought or carted something in the window:

- `hit_rate`: share of users with at least one of their k recommendations bought or carted;
- `recall`: mean over users of (recommended items bought or carted) / (items bought or carted);
- `precision`: mean over users of (recommended items bought or carted) / k.

Results go into `_profiler.model_runs` (one row per version and cutoff, model
`user_recommendations`, the numbers in `metrics` JSON; the classifier columns stay NULL), so the
docs site shows them beside the classifiers.

    with point_in_time(con, project_dir) ...  # done for you:
    result = evaluate_recommendations(con, project_dir, datetime(2017, 12, 2), horizon_days=2)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.sqltext import quote as _q

MODEL = "user_recommendations"
TARGET = "bought_or_carted_next"
LABEL_EVENTS = ("purchase", "cart")


@dataclass
class RecEvaluation:
    cutoff: datetime
    horizon_days: int
    k: int
    version: str
    users_known: int  # users in the profile at the cutoff
    users_evaluated: int  # of those, who bought or carted in the window
    users_unseen: int  # bought or carted in the window, but unknown at the cutoff (left out)
    model: dict[str, float] = field(default_factory=dict)
    popularity: dict[str, float] = field(default_factory=dict)

    @property
    def beats_popularity(self) -> bool:
        return all(self.model[m] > self.popularity[m] for m in ("hit_rate", "recall"))

    def lines(self) -> list[str]:
        end = self.cutoff + timedelta(days=self.horizon_days)
        out = [
            f"{MODEL} {self.version}: built as of {self.cutoff.isoformat(sep=' ')}, judged on "
            f"purchases and carts in ({self.cutoff.isoformat(sep=' ')}, {end.isoformat(sep=' ')}] "
            f"for {self.users_evaluated:,} of {self.users_known:,} users "
            f"({self.users_unseen:,} new users left out)"
        ]
        for label, m in (("recommended", self.model), ("popularity", self.popularity)):
            out.append(
                f"  {label:<12} hit rate@{self.k} {m['hit_rate']:.4f}  recall@{self.k} "
                f"{m['recall']:.4f}  precision@{self.k} {m['precision']:.4f}"
            )
        if not self.beats_popularity:
            out.append(f"WARNING: {MODEL} does not beat global popularity on this split")
        return out


def recommendation_version(project_dir: Path, cutoff: datetime, horizon_days: int, k: int) -> str:
    """Content hash of the SQL that makes the recommendations (and everything upstream) and the split."""
    from profiler.dag import build_dag
    from profiler.project import load_project

    dag = build_dag(load_project(Path(project_dir)))
    names = sorted({MODEL, *(a for a in dag.ancestors(MODEL) if a in dag.models)})
    parts = [f"{n}:{dag.models[n].data_fingerprint}" for n in names]
    parts += [cutoff.isoformat(), str(horizon_days), str(k)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _metrics(con: duckdb.DuckDBPyConnection, recs: str, k: int) -> dict[str, float]:
    """Hit rate, recall and precision of the relation `recs(user_id, item_id)` against `__labels`."""
    row = con.execute(
        f"""
        WITH hits AS (
            SELECT l.user_id, count(r.item_id) AS hits, count(*) AS wanted
            FROM __rec_labels AS l
            LEFT JOIN ({recs}) AS r ON r.user_id = l.user_id AND r.item_id = l.item_id
            GROUP BY l.user_id
        )
        -- to 12 decimals: DuckDB's threads sum the users' shares in any order, so their last
        -- bits differed between two runs of one evaluation (helper-120)
        SELECT round(avg(CASE WHEN hits > 0 THEN 1.0 ELSE 0.0 END), 12),
            round(avg(hits / wanted), 12), round(avg(hits / {k}), 12)
        FROM hits
        """
    ).fetchone()
    return {
        "hit_rate": float(row[0] or 0.0),
        "recall": float(row[1] or 0.0),
        "precision": float(row[2] or 0.0),
    }


def evaluate_recommendations(
    con: duckdb.DuckDBPyConnection,
    project_dir: Path,
    cutoff: datetime,
    horizon_days: int = 2,
    *,
    k: int = 10,
    scratch_dir: Path | None = None,
) -> RecEvaluation:
    """Build the recommendations as of `cutoff` aside, and judge them on the next `horizon_days`."""
    from profiler.ml.pit import point_in_time
    from profiler.plan import ts_literal

    end = cutoff + timedelta(days=horizon_days)
    version = recommendation_version(project_dir, cutoff, horizon_days, k)
    with point_in_time(con, Path(project_dir), scratch_dir) as pit:
        pit.build(cutoff, [MODEL])
        wh = _q(pit.warehouse)
        known = con.execute("SELECT count(*) FROM int_users").fetchone()[0]
        if not known:
            raise ProfilerError(f"no users as of {cutoff}: nothing to recommend to")
        types = ", ".join(f"'{t}'" for t in LABEL_EVENTS)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE __rec_window AS
            SELECT DISTINCT user_id, item_id FROM {wh}.main.raw_events
            WHERE ts > {ts_literal(cutoff)} AND ts <= {ts_literal(end)}
              AND event_type IN ({types}) AND item_id IS NOT NULL"""
        )
        try:
            con.execute(
                """CREATE OR REPLACE TEMP TABLE __rec_labels AS
                SELECT w.* FROM __rec_window AS w
                WHERE w.user_id IN (SELECT user_id FROM int_users)"""
            )
            evaluated, unseen = con.execute(
                "SELECT count(DISTINCT user_id) FILTER (WHERE user_id IN (SELECT user_id FROM int_users)), "
                "count(DISTINCT user_id) FILTER (WHERE user_id NOT IN (SELECT user_id FROM int_users)) "
                "FROM __rec_window"
            ).fetchone()
            if not evaluated:
                raise ProfilerError(
                    f"nobody bought or carted in ({cutoff}, {end}]: choose an earlier cutoff"
                )
            model = _metrics(con, f"SELECT user_id, item_id FROM {MODEL} WHERE rank <= {k}", k)
            popular = f"""
                SELECT u.user_id, p.item_id
                FROM int_users AS u
                CROSS JOIN (SELECT item_id, rank_overall FROM rec_item_popularity
                            WHERE rank_overall <= {k} + (SELECT coalesce(max(n), 0) FROM (
                                SELECT count(DISTINCT item_id) AS n FROM rec_user_item_day
                                WHERE purchases > 0 GROUP BY user_id))) AS p
                WHERE NOT EXISTS (SELECT 1 FROM rec_user_item_day AS b WHERE b.user_id = u.user_id
                                  AND b.item_id = p.item_id AND b.purchases > 0)
                QUALIFY row_number() OVER (PARTITION BY u.user_id ORDER BY p.rank_overall) <= {k}
            """
            baseline = _metrics(con, popular, k)
        finally:
            con.execute("DROP TABLE IF EXISTS __rec_window")
            con.execute("DROP TABLE IF EXISTS __rec_labels")
    return RecEvaluation(
        cutoff, horizon_days, k, version, known, evaluated, unseen, model, baseline
    )


def record_evaluation(con: duckdb.DuckDBPyConnection, result: RecEvaluation) -> None:
    """One row in `_profiler.model_runs` per version (which includes the split); replaced on rerun."""
    from profiler.ml.runs import TABLE, ensure_table

    ensure_table(con)
    end = result.cutoff + timedelta(days=result.horizon_days)
    metrics = {
        "k": result.k,
        "model": {f"{m}_at_{result.k}": v for m, v in result.model.items()},
        "popularity": {f"{m}_at_{result.k}": v for m, v in result.popularity.items()},
        "users_known": result.users_known,
        "users_evaluated": result.users_evaluated,
        "users_unseen": result.users_unseen,
        "label_events": list(LABEL_EVENTS),
        "baseline": "global popularity at the cutoff (rec_item_popularity), minus items bought",
    }
    row = {
        "model": MODEL,
        "model_version": result.version,
        "as_of": end,
        "target": TARGET,
        "estimator": "sql: features/serving/user_recommendations.sql",
        "horizon_days": result.horizon_days,
        "train_cutoffs": "[]",
        "validation_cutoff": result.cutoff,
        "final_cutoffs": "[]",
        "training_window_start": None,
        "training_window_end": result.cutoff,
        "rows_validation": result.users_evaluated,
        "base_rate": result.users_evaluated / result.users_known if result.users_known else None,
        "recency_baseline": "global popularity",
        "beats_base_rate": result.beats_popularity,
        "metrics": json.dumps(metrics),
    }
    con.execute(
        f"DELETE FROM {TABLE} WHERE model = ? AND model_version = ?", [MODEL, result.version]
    )
    names = list(row)
    con.execute(
        f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        [row[n] for n in names],
    )


def latest_evaluations(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Recorded recommendation evaluations, newest cutoff first (for the docs and `show`)."""
    try:
        rows = con.execute(
            "SELECT model_version, validation_cutoff, horizon_days, metrics, beats_base_rate "
            "FROM _profiler.model_runs WHERE model = ? ORDER BY validation_cutoff DESC, as_of DESC",
            [MODEL],
        ).fetchall()
    except duckdb.Error:
        return []
    return [
        {
            "version": r[0],
            "cutoff": r[1],
            "horizon_days": r[2],
            **json.loads(r[3]),
            "beats_popularity": r[4],
        }
        for r in rows
    ]


def evaluate_command(settings, cutoff: str, horizon_days: int) -> RecEvaluation:
    """`profiler docs --evaluate-recommendations C`: evaluate under the build lock, record the run."""
    from profiler.build import parse_as_of
    from profiler.lock import warehouse_lock
    from profiler.settings import connect
    from profiler.shop_time import in_shop_time
    from profiler.state import ensure_schema

    when = parse_as_of(cutoff, "--evaluate-recommendations")  # helper-80: it said --as-of
    if when is None:
        raise ProfilerError("give the evaluation cutoff as an ISO date, e.g. 2017-12-02")
    if horizon_days < 1:
        raise ProfilerError("--horizon-days must be at least 1")
    with warehouse_lock(settings.warehouse, "evaluate recommendations"):
        con = connect(settings)
        try:
            ensure_schema(con)  # a warehouse of an older profiler gets the columns it lacks
            result = evaluate_recommendations(
                con,
                settings.project_dir,
                in_shop_time(con, when),
                horizon_days,
                scratch_dir=settings.target_dir / "tmp",
            )
            record_evaluation(con, result)
        finally:
            con.close()
    return result
