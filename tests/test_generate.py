"""profiler.generate: synthetic shop batches that ingest as they are and continue one shop."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from profiler.errors import ProfilerError
from profiler.generate import generate
from profiler.sources import EVENT_TYPES, FEEDBACK_KINDS, SOURCES

START = date(2024, 1, 1)
SMALL = {"users": 500, "events": 20_000, "days": 30, "start": START, "seed": 1}
ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
    "DOUBLE": pa.float64(),
    "INTEGER": pa.int32(),
}


def read(out: Path) -> dict[str, pa.Table]:
    return {name: pq.read_table(out / f"{name}.parquet") for name in SOURCES}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, int], dict[str, pa.Table]]:
    out = tmp_path_factory.mktemp("batch")
    return generate(out, **SMALL), read(out)


@pytest.fixture()
def sql(batch: tuple[dict[str, int], dict[str, pa.Table]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, table in batch[1].items():
        con.register(name, table)
    return con


def test_writes_every_source_in_its_canonical_columns_and_types(batch):
    counts, tables = batch
    assert counts == {name: tables[name].num_rows for name in SOURCES}
    assert counts["events"] == SMALL["events"]
    assert counts["users"] == SMALL["users"]
    assert counts["items"] == 200  # the smallest catalogue
    for name, source in SOURCES.items():
        expected = pa.schema([(c.name, ARROW_TYPES[c.type]) for c in source.columns])
        assert tables[name].schema.remove_metadata() == expected, name
        for column in source.required:
            assert tables[name].column(column).null_count == 0, (name, column)


def test_same_arguments_give_the_same_tables(tmp_path, batch):
    again = read(tmp_path) if generate(tmp_path, **SMALL) else {}
    for name in SOURCES:
        assert again[name].equals(batch[1][name]), name


def test_another_seed_and_start_continue_the_same_shop(tmp_path, batch):
    later = {**SMALL, "start": START + timedelta(days=30), "days": 1, "events": 2_000, "seed": 9}
    generate(tmp_path, **later)
    tables = read(tmp_path)
    first = batch[1]
    assert tables["items"].equals(first["items"])
    for column in ("user_id", "gender", "birth_year", "city", "name", "email", "phone"):
        assert tables["users"].column(column).equals(first["users"].column(column)), column
    assert not tables["events"].slice(0, 100).equals(first["events"].slice(0, 100))


def test_user_ids_depend_only_on_the_number_of_users(tmp_path):
    generate(tmp_path, **{**SMALL, "users": 600, "events": 100})
    bigger = pq.read_table(tmp_path / "users.parquet").column("user_id").to_pylist()
    assert bigger[:500] == [str(i) for i in range(1, 501)]


def test_events_and_feedback_refer_to_known_users_and_items(sql):
    for table in ("events", "feedback"):
        unknown = sql.execute(
            f"SELECT count(*) FROM {table} t WHERE t.user_id NOT IN (SELECT user_id FROM users)"
            f" OR t.item_id NOT IN (SELECT item_id FROM items)"
        ).fetchone()[0]
        assert unknown == 0, table


@pytest.mark.parametrize(
    ("start", "days"), [(date(2023, 12, 30), 3), (datetime(2024, 2, 29, 15), 1)]
)
def test_timestamps_stay_inside_the_window(tmp_path, start, days):
    generate(tmp_path, **{**SMALL, "events": 5_000, "start": start, "days": days})
    begin = datetime(start.year, start.month, start.day)
    for name in ("events", "feedback"):
        ts = pq.read_table(tmp_path / f"{name}.parquet").column("ts").to_pylist()
        assert ts and begin <= min(ts) and max(ts) < begin + timedelta(days=days), name
        assert ts == sorted(ts), name


def test_event_type_shares_are_plausible(sql):
    shares = dict(
        sql.execute(
            "SELECT event_type, count(*) / sum(count(*)) OVER () FROM events GROUP BY 1"
        ).fetchall()
    )
    assert set(shares) == set(EVENT_TYPES)
    assert 0.82 <= shares["view"] <= 0.92
    assert 0.04 <= shares["cart"] <= 0.09
    assert 0.01 <= shares["fav"] <= 0.04
    assert 0.007 <= shares["purchase"] <= 0.025
    assert 0.015 <= shares["search"] <= 0.05


def test_funnels_hold_together(sql):
    """Carts and purchases act on an item the session viewed before; searches carry a query and
    no item; quantities and amounts belong to carts and purchases only."""
    unseen = sql.execute(
        "SELECT count(*) FROM events p WHERE p.event_type IN ('cart', 'purchase') AND NOT EXISTS"
        " (SELECT 1 FROM events v WHERE v.session_id = p.session_id AND v.item_id = p.item_id"
        "  AND v.event_type = 'view' AND v.ts <= p.ts)"
    ).fetchone()[0]
    assert unseen == 0
    assert sql.execute(
        "SELECT count(*) FILTER (WHERE (event_type = 'search') <> (query IS NOT NULL)),"
        " count(*) FILTER (WHERE (event_type = 'search') <> (item_id IS NULL)),"
        " count(*) FILTER (WHERE (event_type IN ('cart', 'purchase')) <> (amount IS NOT NULL)),"
        " count(*) FILTER (WHERE abs(amount - round(price * quantity, 2)) > 0.001),"
        " count(*) FILTER (WHERE price < 0 OR amount < 0 OR quantity < 1)"
        " FROM events"
    ).fetchone() == (0, 0, 0, 0, 0)


def test_sessions_group_several_events_of_one_user(sql):
    users_per_session, median_length = sql.execute(
        "SELECT max(users), median(n) FROM"
        " (SELECT session_id, count(DISTINCT user_id) AS users, count(*) AS n"
        "  FROM events GROUP BY 1)"
    ).fetchone()
    assert users_per_session == 1
    assert 3 <= median_length <= 10


def test_activity_is_heavy_tailed(sql):
    top, median = sql.execute(
        "SELECT max(n), median(n) FROM (SELECT user_id, count(*) AS n FROM events GROUP BY 1)"
    ).fetchone()
    assert top > 10 * median


def test_feedback_is_a_few_percent_and_complaints_follow_low_ratings(batch, sql):
    counts = batch[0]
    assert 0.01 <= counts["feedback"] / counts["events"] <= 0.04
    kinds = {k for (k,) in sql.execute("SELECT DISTINCT kind FROM feedback").fetchall()}
    assert kinds <= set(FEEDBACK_KINDS)
    assert sql.execute(
        "SELECT count(*) FROM feedback WHERE (kind IN ('rating', 'review')) <> (rating IS NOT NULL)"
        " OR rating NOT BETWEEN 1 AND 5"
    ).fetchone() == (0,)
    complainers, others = sql.execute(
        "WITH u AS (SELECT user_id, avg(rating) AS stars, bool_or(kind = 'complaint') AS complained"
        "           FROM feedback GROUP BY 1 HAVING count(rating) > 0)"
        " SELECT avg(stars) FILTER (WHERE complained), avg(stars) FILTER (WHERE NOT complained)"
        " FROM u"
    ).fetchone()
    assert complainers < others


def test_csv_has_canonical_headers_and_iso_utc_timestamps(tmp_path):
    counts = generate(tmp_path, **{**SMALL, "events": 3_000}, fmt="csv")
    for name, source in SOURCES.items():
        assert not (tmp_path / f"{name}.parquet").exists()
        table = pacsv.read_csv(
            tmp_path / f"{name}.csv",
            convert_options=pacsv.ConvertOptions(column_types={"ts": pa.string()}),
        )
        assert table.column_names == [c.name for c in source.columns]
        assert table.num_rows == counts[name]
    ts = pacsv.read_csv(
        tmp_path / "events.csv",
        convert_options=pacsv.ConvertOptions(column_types={"ts": pa.string()}),
    ).column("ts")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in ts.to_pylist())


def test_an_unknown_format_is_a_one_line_profiler_error(tmp_path):
    with pytest.raises(ProfilerError, match="unknown format 'jsonl'") as error:
        generate(tmp_path / "out", **SMALL, fmt="jsonl")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_the_cli_summary_is_one_line_whatever_the_path(tmp_path):
    """`profiler generate` ends with one line of counts and the output folder: a log's grep
    for the folder finds it however long its path and narrow the terminal (it wrapped at the
    terminal's width)."""
    from conftest import run_cli

    out = tmp_path / ("a-folder-with-a-long-name-" * 4) / "batch"
    text = run_cli(
        "generate", "--users", "50", "--events", "500", "--days", "3", "--out", str(out),
        warehouse=tmp_path / "unused.duckdb", width=60,
    )  # fmt: skip
    (line,) = [line for line in text.splitlines() if line.startswith("events: ")]
    assert line.endswith(f"-> {out}"), text
    assert (out / "events.parquet").exists()


@pytest.mark.parametrize("bad", [{"users": 0}, {"events": -1}, {"days": 0}, {"seed": -1}])
def test_impossible_sizes_are_profiler_errors(tmp_path, bad):
    with pytest.raises(ProfilerError, match=next(iter(bad))):
        generate(tmp_path, **{**SMALL, **bad})


def test_importing_the_module_loads_neither_numpy_nor_pyarrow():
    code = "import sys, profiler.generate; print(sorted({'numpy', 'pyarrow'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
