"""The model graph: headers, unknown references and cycles (with file:line), selectors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, env_for, sql_project

from profiler.dag import build_dag
from profiler.errors import ProfilerError
from profiler.project import Kind, load_project, parse_model


def write(project: Path, rel: str, text: str) -> Path:
    path = project / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def small_project(tmp_path: Path) -> Path:
    write(
        tmp_path,
        "sql/stg_events.sql",
        "-- kind: incremental_by_time\n-- time_column: ts\n-- tags: clean\nSELECT * FROM raw_events\n",
    )
    write(
        tmp_path,
        "sql/user_day.sql",
        "-- kind: incremental_by_time\n-- time_column: day\nSELECT user_id, CAST(ts AS DATE) AS day FROM stg_events\n",
    )
    write(
        tmp_path,
        "features/totals.sql",
        "-- kind: incremental_by_key\n-- unique_key: user_id\n-- tags: behaviour\nSELECT user_id, count(*) AS n FROM user_day GROUP BY 1\n",
    )
    write(
        tmp_path,
        "features/profile.sql",
        "-- kind: table\n-- tags: behaviour\nSELECT * FROM totals CROSS JOIN as_of_time\n",
    )
    return tmp_path


def test_header_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sql/m.sql",
        "-- kind: incremental_by_key\n-- unique_key: user_id, day\n-- lookback: 2\n-- tags: a, b\n"
        "-- description: Something.\n-- columns:\n--   user_id: the user\n--   n: how many\nSELECT 1 AS user_id\n",
    )
    m = parse_model(path)
    assert m.kind is Kind.INCREMENTAL_BY_KEY
    assert m.unique_key == ("user_id", "day") and m.lookback == 2 and m.tags == ("a", "b")
    assert m.columns == {"user_id": "the user", "n": "how many"}
    assert m.header_lines == 8 and m.sql == "SELECT 1 AS user_id"
    # a model without a kind is a table (as `profiler ls` lists it)
    assert parse_model(write(tmp_path, "sql/plain.sql", "SELECT 1 AS x\n")).kind is Kind.TABLE


def test_header_keys_after_the_columns_are_keys_not_columns(tmp_path: Path) -> None:
    """The `-- columns:` block ends at the next `-- key:` line (one space), whatever its place in
    the header: a key after it is not read as a documented column, nor dropped."""
    path = write(
        tmp_path,
        "sql/m.sql",
        "-- kind: incremental_by_key\n-- columns:\n--   user_id: the user\n--   n: how many\n"
        "-- unique_key: user_id\n-- tags: behaviour\nSELECT 1 AS user_id, 2 AS n\n",
    )
    m = parse_model(path)
    assert m.columns == {"user_id": "the user", "n": "how many"}
    assert m.unique_key == ("user_id",) and m.tags == ("behaviour",)


def test_docs_do_not_change_the_data_fingerprint(tmp_path: Path) -> None:
    a = parse_model(write(tmp_path, "sql/m.sql", "-- description: one\nSELECT 1 AS x\n"))
    b = parse_model(write(tmp_path, "sql/m.sql", "-- description: two\nselect 1   as x -- note\n"))
    c = parse_model(write(tmp_path, "sql/m.sql", "-- description: two\nSELECT 2 AS x\n"))
    assert a.data_fingerprint == b.data_fingerprint != c.data_fingerprint
    assert a.metadata_fingerprint != b.metadata_fingerprint


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("-- kind: snapshot\n", "kind 'snapshot' is not one of"),
        ("-- kind: incremental_by_time\n", "needs a `-- time_column:` header"),
        ("-- kind: incremental_by_key\n", "needs a `-- unique_key:` header"),
        ("-- lookback: soon\n", "lookback must be a whole number"),
        ("-- colour: red\n", "unknown header key"),
        ("-- kind: python\n", "kind python is the model layer's"),
        (
            "-- kind: incremental_by_time\n-- time_column: ts\n-- lookback: -1\n",
            "cannot be negative",
        ),
        ("-- kind: scd2\n-- track_columns: x\n", "kind scd2 needs a `-- unique_key:` header"),
        ("-- kind: scd2\n-- unique_key: x\n", "kind scd2 needs a `-- track_columns:` header"),
    ],
)
def test_bad_headers_name_the_file(tmp_path: Path, header: str, message: str) -> None:
    path = write(tmp_path, "sql/m.sql", header + "SELECT 1 AS x\n")
    with pytest.raises(ProfilerError, match=message) as err:
        parse_model(path)
    assert str(err.value).startswith(f"{path}:1:")


@pytest.mark.parametrize(
    "name", ["quarantine", "raw_events", "raw_users", "raw_items", "raw_feedback", "as_of_time"]
)
def test_a_model_may_not_take_the_name_of_the_warehouses_own_tables(
    tmp_path: Path, name: str
) -> None:
    """helper-60: a model `quarantine` replaced the quarantined lines with its one row."""
    path = write(tmp_path, f"sql/{name}.sql", "SELECT 1 AS x\n")
    with pytest.raises(ProfilerError, match=f"{name!r} is the warehouse's own table or name"):
        parse_model(path)


def test_order_and_lineage(tmp_path: Path) -> None:
    dag = build_dag(load_project(small_project(tmp_path)))
    # no specs: no user_scores
    assert dag.order() == ["stg_events", "user_day", "totals", "profile"]
    assert set(dag.parents["profile"]) == {"totals", "as_of_time"}
    assert dag.raw_sources("profile") == {"raw_events"}


def test_build_order_is_the_same_in_every_process() -> None:
    """Of the models whose parents are built, the first by name goes next: the embedded project's
    order must not follow Python's per-process string hashing (it did: two `profiler ls` runs
    listed different orders)."""
    dag = build_dag(load_project(REPO))
    order = dag.order()
    assert sorted(order) == sorted(dag.models)
    built: set[str] = set()
    for name in order:
        ready = [m for m in dag.models if m not in built and set(dag.model_parents(m)) <= built]
        assert name == min(ready)
        built.add(name)

    seen = set()
    for seed in ("1", "2", "3", "4"):
        proc = subprocess.run(
            [sys.executable, "-m", "profiler", "ls"],
            env={**env_for(REPO / "no-warehouse.duckdb"), "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        seen.add(tuple(line.split("\t")[0] for line in proc.stdout.splitlines()[1:]))
    assert seen == {tuple(order)}


def test_ls_piped_prints_whole_tab_separated_rows() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "profiler", "ls"],
        env={**env_for(REPO / "no-warehouse.duckdb"), "COLUMNS": "60"},
        capture_output=True,
        text=True,
        check=True,
    )
    header, *rows = [line.split("\t") for line in proc.stdout.splitlines()]
    assert header == ["model", "kind", "key / time", "tags", "reads", "description"]
    models = load_project(REPO)
    by_name = {row[0]: row for row in rows}
    assert len(rows) == len(by_name) == len(build_dag(models).models)
    day = by_name["int_user_day"]
    assert day[1:3] == ["incremental_by_time", "@ day"] and "stg_events" in day[4].split(", ")
    # what `--select tag:x` picks (helper-54: only the SQL headers said)
    assert day[3] == ", ".join(models["int_user_day"].tags) and "behaviour" in day[3]
    # the description whole, not cut to the 60-column width
    assert day[5] == models["int_user_day"].description
    assert by_name["int_user_interests"][2] == "user_id"


def test_unknown_table_names_file_and_line(tmp_path: Path) -> None:
    small_project(tmp_path)
    write(
        tmp_path,
        "features/bad.sql",
        "-- kind: table\nSELECT *\nFROM totals\nJOIN totls USING (user_id)\n",
    )
    with pytest.raises(ProfilerError, match=r"bad\.sql:4: bad reads 'totls'"):
        build_dag(load_project(tmp_path))


def test_cycle_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "sql/a.sql", "-- kind: view\nSELECT * FROM c\n")
    write(tmp_path, "sql/b.sql", "-- kind: view\nSELECT *\nFROM a\n")
    write(tmp_path, "sql/c.sql", "-- kind: view\n\nSELECT * FROM b\n")
    with pytest.raises(ProfilerError, match=r"dependency cycle") as err:
        build_dag(load_project(tmp_path))
    message = str(err.value)
    path, line, cycle = re.match(
        r"(.+\.sql):(\d+): dependency cycle: (.+) \(each", message
    ).groups()
    cycle = cycle.split(" -> ")
    assert sorted(set(cycle)) == ["a", "b", "c"]
    # the file and line named are where the cycle's second model reads its first
    assert Path(path).stem == cycle[1]
    assert f"FROM {cycle[0]}" in Path(path).read_text().splitlines()[int(line) - 1]


def test_self_reference_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "sql/a.sql", "-- kind: table\nSELECT * FROM a\n")
    with pytest.raises(ProfilerError, match=r"a\.sql:2: a reads itself"):
        build_dag(load_project(tmp_path))


def test_a_spec_reading_no_model_or_a_model_named_user_scores_is_refused(tmp_path: Path) -> None:
    """The classifier specs name the feature tables user_scores reads; one that names no model
    (a typo) is refused at load, as a SQL model's unknown table is, and a SQL model may not take
    the model layer's table's name. The spec is the shipped one, its table misspelt."""
    project = sql_project(tmp_path)
    (project / "models").mkdir()
    spec = (REPO / "models" / "purchase_propensity.toml").read_text()
    assert spec.count('table = "rfm_features"') == 1
    (project / "models" / "purchase_propensity.toml").write_text(
        spec.replace('table = "rfm_features"', 'table = "rfm_feature"')
    )
    with pytest.raises(
        ProfilerError, match="user_scores reads 'rfm_feature', which is not a model"
    ):
        build_dag(load_project(project))
    (project / "models" / "purchase_propensity.toml").write_text(spec)
    write(project, "features/user_scores.sql", "SELECT 1 AS user_id\n")
    with pytest.raises(
        ProfilerError, match=r"user_scores\.sql:1: user_scores is the model layer's"
    ):
        load_project(project)


def test_duplicate_model_names(tmp_path: Path) -> None:
    write(tmp_path, "sql/a.sql", "SELECT 1 AS x\n")
    write(tmp_path, "features/a.sql", "SELECT 2 AS x\n")
    with pytest.raises(ProfilerError, match="also defined in"):
        load_project(tmp_path)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("user_day", ["user_day"]),
        ("user_day+", ["user_day", "totals", "profile"]),
        ("+totals", ["stg_events", "user_day", "totals"]),
        ("+user_day+", ["stg_events", "user_day", "totals", "profile"]),
        ("tag:behaviour", ["totals", "profile"]),
        ("stg_events profile", ["stg_events", "profile"]),
        # a comma intersects, as in dbt (helper-28: it was a union)
        ("tag:behaviour,+totals", ["totals"]),
        ("user_day+,tag:behaviour stg_events", ["stg_events", "totals", "profile"]),
        ("tag:behaviour, +totals", ["totals"]),  # a space after the comma changes nothing
    ],
)
def test_selectors(tmp_path: Path, selector: str, expected: list[str]) -> None:
    assert build_dag(load_project(small_project(tmp_path))).select(selector) == expected


def test_unknown_selector(tmp_path: Path) -> None:
    dag = build_dag(load_project(small_project(tmp_path)))
    with pytest.raises(ProfilerError, match="no model named 'nope'"):
        dag.select("nope+")
    with pytest.raises(ProfilerError, match="no model has tag"):
        dag.select("tag:nope")
    # a comma intersects, as in dbt: models in no intersection is an error, not an empty build
    with pytest.raises(ProfilerError, match="picks no model: a comma intersects"):
        dag.select("stg_events,profile")
    with pytest.raises(ProfilerError, match="--select is empty"):
        dag.select(" ")


def test_check_takes_raw_tables_comma_separated_and_selectors(tmp_path: Path) -> None:
    """helper-31: after commas became dbt's intersection, `check --select raw_events,raw_users`
    failed with "no model named 'raw_events'"; raw tables are plain names, listed either way."""
    from profiler.check import selected_tables

    dag = build_dag(load_project(small_project(tmp_path)))
    suites = dict.fromkeys(["raw_events", "raw_users", "user_day", "totals"])
    assert selected_tables(dag, suites, "raw_events,raw_users") == ["raw_events", "raw_users"]
    assert selected_tables(dag, suites, "raw_users user_day+") == [
        "raw_users",
        "user_day",
        "totals",
        "profile",
    ]


def test_a_by_key_model_may_aggregate_across_relations_its_slice_reads_whole(
    tmp_path: Path,
) -> None:
    """A slice by user_id filters the sources and models with a user_id column, and the
    ephemeral models reading them (build_model.prepare_sql); the cross-key check follows it. An
    item popularity table (no user_id) is read whole, so a by-key model may rank across it; one
    selecting `*` from raw_events has the key, and so has an ephemeral model over raw_events
    whatever it selects: an aggregate across them is refused."""
    write(
        tmp_path,
        "sql/item_pop.sql",
        "-- kind: table\nSELECT item_id, count(DISTINCT user_id) AS users FROM raw_events GROUP BY 1\n",
    )
    write(tmp_path, "sql/all_events.sql", "-- kind: table\nSELECT * FROM raw_events\n")
    write(
        tmp_path,
        "sql/cat_pop.sql",
        "-- kind: ephemeral\nSELECT category_id, count(*) AS users FROM raw_events GROUP BY 1\n",
    )
    head = "-- kind: incremental_by_key\n-- unique_key: user_id\nSELECT e.user_id,\n"
    reader = tmp_path / "features" / "user_top.sql"
    for share, join, said in (
        # item_pop has no user_id: read whole, its max is all items'
        ("max(users) FROM item_pop", "item_pop AS p USING (item_id)", None),
        ("count(*) FROM all_events", "item_pop AS p USING (item_id)", f"{reader}:4: COUNT()"),
        ("max(users) FROM item_pop", "cat_pop AS p USING (category_id)", "cat_pop.sql:2: COUNT()"),
    ):
        write(
            tmp_path,
            "features/user_top.sql",
            f"{head}    max(p.users) / (SELECT {share}) AS top_share\n"
            f"FROM raw_events AS e JOIN {join} GROUP BY e.user_id\n",
        )
        if said is None:
            build_dag(load_project(tmp_path))
            continue
        with pytest.raises(ProfilerError) as err:
            build_dag(load_project(tmp_path))
        assert f"{said} is computed across user_id values" in str(err.value), err.value
    # an ephemeral model over raw_events runs inside the slice: joined on the item, the touched
    # users' views meet other users' rows
    write(
        tmp_path,
        "sql/views.sql",
        "-- kind: ephemeral\nSELECT user_id, item_id FROM raw_events WHERE event_type = 'view'\n",
    )
    write(
        tmp_path,
        "features/user_top.sql",
        f"{head}    count(*) AS co_views\nFROM raw_events AS e JOIN views AS v USING (item_id) "
        "GROUP BY e.user_id\n",
    )
    with pytest.raises(ProfilerError, match=r"user_top\.sql:5: v is joined to e on other columns"):
        build_dag(load_project(tmp_path))
