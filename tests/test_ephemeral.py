"""kind: ephemeral: no table, inlined into its readers, and its edits reach them.

Data: the shared Taobao sample, as in test_engine; models: the project's sql/ and features/,
whose rollups (int_user_day, int_user_interests, rec_user_item_day) read the ephemeral
stg_events.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import TAOBAO, model_tables, run_cli, sql_project

from profiler.dag import build_dag
from profiler.errors import ProfilerError
from profiler.project import load_project


def _results(project: Path) -> dict[str, dict]:
    data = json.loads((project / "target" / "run_results.json").read_text())
    return {r["model"]: r for r in data["results"]}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    project = sql_project(tmp_path_factory.mktemp("project"))
    wh = project / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=project)
    run_cli("build", warehouse=wh, project=project)
    return project, wh


def _copy(built: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A fresh copy of the project and of its built warehouse, to change one of them."""
    project, wh = sql_project(tmp_path / "project"), tmp_path / "wh.duckdb"
    shutil.copy(built[1], wh)
    return project, wh


def test_no_table_and_readers_see_its_rows(built: tuple[Path, Path]) -> None:
    project, wh = built
    assert "stg_events" not in model_tables(wh)
    assert _results(project)["stg_events"]["action"] == "skip"
    con = duckdb.connect(str(wh), read_only=True)
    # every raw event is either in a user-day of the rollup or accounted for as a repeat/bot day
    events, repeats_dropped, bot_events = con.execute(
        """
        SELECT
            (SELECT sum(events) FROM int_user_day),
            (SELECT coalesce(sum(copies - events), 0) FROM stg_event_repeats),
            (SELECT coalesce(sum(events), 0) FROM stg_bot_bursts)
        """
    ).fetchone()
    raw = con.execute("SELECT count(*) FROM raw_events").fetchone()[0]
    assert events > 0 and events + repeats_dropped + bot_events == raw


def test_editing_it_rebuilds_its_readers_and_their_descendants(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    project, wh = _copy(built, tmp_path)
    dag = build_dag(load_project(project))
    readers = {m for m in dag.models if "stg_events" in dag.parents[m]}
    assert {"int_user_day", "int_user_interests", "rec_user_item_day"} <= readers

    path = project / "sql" / "stg_events.sql"
    path.write_text(path.read_text() + "\n-- a comment changes nothing\n")
    run_cli("build", warehouse=wh, project=project)
    assert all(r["action"] == "skip" for r in _results(project).values())

    # drop searches from the cleaned stream: every reader must rebuild and lose them
    path.write_text(
        path.read_text().replace(
            "WHERE b.user_id IS NULL", "WHERE b.user_id IS NULL AND o.event_type <> 'search'"
        )
    )
    run_cli("build", warehouse=wh, project=project)
    results = _results(project)
    rebuilt = {m for m, r in results.items() if r["action"] == "full"}
    assert readers <= rebuilt <= readers | {d for r in readers for d in dag.descendants(r)}
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT sum(searches) FROM int_user_day").fetchone()[0] == 0


def test_a_table_that_becomes_ephemeral_is_dropped(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    project, wh = _copy(built, tmp_path)
    path = project / "sql" / "stg_events.sql"
    path.write_text(path.read_text().replace("-- kind: ephemeral", "-- kind: view"))
    run_cli("build", warehouse=wh, project=project)
    assert "stg_events" in model_tables(wh)
    path.write_text(path.read_text().replace("-- kind: view", "-- kind: ephemeral"))
    run_cli("build", warehouse=wh, project=project)
    con = duckdb.connect(str(wh), read_only=True)
    assert "stg_events" not in model_tables(wh)
    assert not con.execute(
        "SELECT count(*) FROM _profiler.models WHERE name = 'stg_events'"
    ).fetchone()[0]


def test_one_that_reads_only_models_is_inlined_too(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    """An ephemeral model over other models (no raw table, so no as-of filter to apply) is still
    inlined into its readers, not left as a name no table answers to."""
    project, wh = _copy(built, tmp_path)
    (project / "sql" / "user_active_days.sql").write_text(
        "-- kind: ephemeral\n"
        "SELECT user_id, count(*) AS active_days FROM int_user_day GROUP BY user_id\n"
    )
    (project / "sql" / "user_activity.sql").write_text(
        "-- kind: table\nSELECT user_id, active_days FROM user_active_days\n"
    )
    run_cli("build", "--select", "user_activity", warehouse=wh, project=project)
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT count(*), sum(active_days) FROM user_activity").fetchone() == (
        con.execute("SELECT count(DISTINCT user_id), count(*) FROM int_user_day").fetchone()
    )


def test_one_that_reads_another_ephemeral_model_is_inlined_with_it(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    """An ephemeral model over the ephemeral stg_events: its reader gets both inlined (the
    inner one was left as a table name no relation answers to), and an edit of the inner one
    rebuilds the reader."""
    project, wh = _copy(built, tmp_path)
    (project / "sql" / "stg_purchases.sql").write_text(
        "-- kind: ephemeral\nSELECT user_id, ts FROM stg_events WHERE event_type = 'purchase'\n"
    )
    (project / "sql" / "user_purchases.sql").write_text(
        "-- kind: table\nSELECT user_id, count(*) AS purchases FROM stg_purchases GROUP BY 1\n"
    )
    assert [e for e, _ in build_dag(load_project(project)).models["user_purchases"].inlined] == [
        "stg_events",
        "stg_purchases",
    ]
    run_cli("build", "--select", "user_purchases", warehouse=wh, project=project)
    con = duckdb.connect(str(wh), read_only=True)
    made = con.execute("SELECT count(*), sum(purchases) FROM user_purchases").fetchone()
    assert (
        made[0] > 0
        and made
        == con.execute(
            "SELECT count(DISTINCT user_id), sum(purchases) FROM int_user_day WHERE purchases > 0"
        ).fetchone()
    )
    con.close()
    path = project / "sql" / "stg_events.sql"
    path.write_text(
        path.read_text().replace(
            "WHERE b.user_id IS NULL", "WHERE b.user_id IS NULL AND o.event_type <> 'search'"
        )
    )
    out = run_cli("build", "--select", "user_purchases", warehouse=wh, project=project)
    assert "changed: ephemeral stg_events" in out, out


def test_a_python_model_cannot_read_one(tmp_path: Path) -> None:
    project = sql_project(tmp_path / "project")
    (project / "models").mkdir()
    shutil.copy(
        Path(__file__).parents[1] / "models" / "purchase_propensity.toml", project / "models"
    )
    models = load_project(project)
    scores = models["user_scores"]
    from dataclasses import replace

    models["user_scores"] = replace(scores, depends_on=(*scores.depends_on, "stg_events"))
    with pytest.raises(ProfilerError, match="ephemeral"):
        build_dag(models)
