"""The engine on real data: batches equal a full build, idle builds do nothing, kills lose nothing.

Data: the shared Taobao sample (928 users' complete history), cut into time batches. Models: the
project's own sql/ and features/ (without the gate and the model layer, tested on their own).
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import duckdb
import pytest
from conftest import (
    REES46,
    REPO,
    TAOBAO,
    env_for,
    model_tables,
    run_cli,
    split_csv_by_time,
    sql_project,
    table_diff,
)

PERSONAL = REPO / "tests" / "fixtures" / "users_personal.csv"
CUTS = [1511700000, 1511900000, 1512100000, 1512250000]  # 2017-11-26 .. 2017-12-02, Unix seconds
SCD2 = ("user_profile_history",)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sql_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="module")
def full_build(tmp_path_factory: pytest.TempPathFactory, project: Path) -> Path:
    """One ingest of all the data, one build: the reference every other way must equal."""
    wh = tmp_path_factory.mktemp("full") / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=project)
    run_cli("build", warehouse=wh, project=project)
    return wh


def compare_all(a: Path, b: Path) -> dict[str, int]:
    diffs = {}
    for table in model_tables(a):
        if table in SCD2:
            continue  # history records builds; its current rows are compared below
        diffs[table] = table_diff(a, b, table)
    return {t: n for t, n in diffs.items() if n}


def current_history_diff(a: Path, b: Path) -> int:
    if "user_profile_history" not in model_tables(a):
        return 0
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    q = "SELECT * EXCLUDE (valid_from, valid_to) FROM {}.user_profile_history WHERE is_current"
    a_only = f"({q.format('a')}) EXCEPT ALL ({q.format('b')})"
    b_only = f"({q.format('b')}) EXCEPT ALL ({q.format('a')})"
    return con.execute(
        f"SELECT (SELECT count(*) FROM ({a_only})) + (SELECT count(*) FROM ({b_only}))"
    ).fetchone()[0]


def test_batches_equal_one_full_build(full_build: Path, project: Path, tmp_path: Path) -> None:
    wh = tmp_path / "wh.duckdb"
    for batch in split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS):
        run_cli("ingest", "events", str(batch), warehouse=wh, project=project)
        run_cli("build", warehouse=wh, project=project)
    assert model_tables(wh) == model_tables(full_build)
    assert compare_all(full_build, wh) == {}
    assert current_history_diff(full_build, wh) == 0


def test_late_data_lands_in_its_own_day(full_build: Path, project: Path, tmp_path: Path) -> None:
    """Ingest the newest days first and the oldest last: late rows must be placed correctly."""
    wh = tmp_path / "wh.duckdb"
    for batch in reversed(split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS)):
        run_cli("ingest", "events", str(batch), warehouse=wh, project=project)
        run_cli("build", warehouse=wh, project=project)
    assert compare_all(full_build, wh) == {}
    # every build had the same as-of (the newest batch came first): each one replaced that
    # as-of's state, so the history is one build's, with no zero-length rows
    assert table_diff(full_build, wh, "user_profile_history") == 0


def test_nothing_new_does_no_work(full_build: Path, project: Path, tmp_path: Path) -> None:
    wh = tmp_path / "wh.duckdb"
    shutil.copy(full_build, wh)
    out = " ".join(run_cli("build", warehouse=wh, project=project).split())
    data = json.loads((project / "target" / "run_results.json").read_text())
    results = data["results"]
    assert results and all(r["action"] == "skip" for r in results)
    assert all(r["status"] == "success" for r in results)
    # the file says which profiler wrote it, and does not claim to be one of dbt's schemas
    assert data["metadata"] == {"schema_version": 1, "profiler_version": version("profiler")}
    # stg_events is inlined, never built: not counted as "up to date" (helper-75)
    stored = sum(r["kind"] != "ephemeral" for r in results)
    assert stored < len(results) and f"0 model(s) built, {stored} up to date" in out, out


def test_each_model_built_whole_says_the_rows_it_published(project: Path, tmp_path: Path) -> None:
    """A first build's `rows_out` (run_results.json, and "N out" on the build line) is the row
    count of each table it published; of the history, its versions (one per user). Taobao, all of
    it in one batch."""
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=project)
    out = run_cli("build", warehouse=wh, project=project)
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    said = {r["model"]: r["rows_out"] for r in results if r["action"] == "full"}
    with duckdb.connect(str(wh), read_only=True) as con:
        rows = {m: con.execute(f"SELECT count(*) FROM {m}").fetchone()[0] for m in said}
    assert said == rows and set(said) == set(model_tables(wh)), out
    assert rows["user_profile"] > 900 and rows["int_user_day"] > rows["user_profile"]
    for model, n in rows.items():
        assert re.search(rf"{model} +\S+ +full +[\d,]+ raw in +{n:,} out", out), (model, out)


def test_same_file_twice_changes_nothing(full_build: Path, project: Path, tmp_path: Path) -> None:
    wh = tmp_path / "wh.duckdb"
    shutil.copy(full_build, wh)
    out = run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=project)
    assert "already ingested" in out
    assert compare_all(full_build, wh) == {}


def test_a_file_that_loaded_nothing_is_no_new_data(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """A file whose every line is quarantined still takes a batch id (its lines are listed by
    it); it brings no row, so the next build does no work (counted as new data, it rebuilt 15 of
    the project's 24 tables and merged the history, every model a new version: the export and the
    serving copy written again for the same numbers)."""
    wh = tmp_path / "wh.duckdb"
    shutil.copy(full_build, wh)
    bad = tmp_path / "bad_times.csv"
    bad.write_text("user_id,item_id,category_id,behavior_type,ts\n1,2268318,2520377,pv,soon\n")
    out = run_cli("ingest", "events", str(bad), warehouse=wh, project=project, ok=False)
    assert "0 loaded, 1 quarantined" in out, out
    run_cli("build", warehouse=wh, project=project)
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    assert [r["model"] for r in results if r["action"] != "skip"] == []


def test_a_file_read_wrongly_is_replaced_and_the_build_equals_one_good_load(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """A batch ingested with the wrong user column (its item ids as users) and built: sending it
    again is refused as the same content, with the way out; `--replace` takes the wrong load out
    and loads the file as read now, and the next build equals a build that never saw the
    mistake, bogus users gone."""
    wh = tmp_path / "wh.duckdb"
    batches = split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS)
    for batch in batches[:2]:
        run_cli("ingest", "events", str(batch), warehouse=wh, project=project)
    wrong = ("--map", "user_id=item_id")
    run_cli("ingest", "events", str(batches[2]), *wrong, warehouse=wh, project=project)
    run_cli("build", warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        wrong_users = con.execute("SELECT count(*) FROM user_profile").fetchone()[0]

    again = run_cli("ingest", "events", str(batches[2]), warehouse=wh, project=project)
    assert "already ingested (same content, batch 3)" in again and "--replace" in again
    both = run_cli("ingest", "events", str(batches[2]), "--replace", "--replace-batch", "3",
                   warehouse=wh, project=project, ok=False)  # fmt: skip
    assert both == "error: --replace and --replace-batch: give one\n"
    out = run_cli("ingest", "events", str(batches[2]), "--replace", warehouse=wh, project=project)
    assert "replaced: batch 3: its earlier rows left raw_events" in out
    for batch in batches[3:]:
        run_cli("ingest", "events", str(batch), warehouse=wh, project=project)
    built = run_cli("build", warehouse=wh, project=project)
    # the reason names the replace, never a first build (helper-53: read as a reset)
    assert "a replaced load took rows out" in built and "first build" not in built

    assert compare_all(full_build, wh) == {}
    assert current_history_diff(full_build, wh) == 0
    with duckdb.connect(str(wh), read_only=True) as con:
        users = con.execute("SELECT count(*) FROM user_profile").fetchone()[0]
        sends = con.execute("SELECT batch_id FROM _profiler.batches ORDER BY 1").fetchall()
    assert wrong_users > users == 928
    assert sends == [(1,), (2,), (3,), (4,), (5,)]  # the file kept its batch


def test_a_replace_of_the_newest_batch_leaves_no_stale_history(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """The newest batch read wrongly (its item ids as users), built, then replaced: the as-of
    stays where it was and no batch is new, yet every model ran again, the history too (it had
    seen the first rebuild's version numbers before: helper-20 found it `up to date`, still
    holding the wrong reading's users and categories)."""
    wh = tmp_path / "wh.duckdb"
    batches = split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS)
    for batch in batches[:-1]:
        run_cli("ingest", "events", str(batch), warehouse=wh, project=project)
    wrong = ("--map", "user_id=item_id")
    run_cli("ingest", "events", str(batches[-1]), *wrong, warehouse=wh, project=project)
    run_cli("build", warehouse=wh, project=project)
    export = ("export", "--out", str(tmp_path / "bi"), "--select", "user_profile")
    run_cli(*export, warehouse=wh, project=project)
    run_cli("ingest", "events", str(batches[-1]), "--replace", warehouse=wh, project=project)
    out = run_cli("build", warehouse=wh, project=project)
    (line,) = [line for line in out.splitlines() if " user_profile_history " in line]
    assert "merge the current state" in line, line
    assert "unchanged since the last export" not in run_cli(*export, warehouse=wh, project=project)
    assert compare_all(full_build, wh) == {}
    assert current_history_diff(full_build, wh) == 0


def test_a_replace_of_a_middle_day_takes_back_the_history_built_on_it(
    project: Path, tmp_path: Path
) -> None:
    """Daily builds, then day 3 replaced by a corrected export (its buys were not real): every
    history change stamped from day 3's first time on saw the wrong day, so the next build
    takes them back and records the corrected state at its as-of (helper-23: 1,988 rows built on
    the wrong day stayed). The result equals daily builds up to day 2, then one build of the
    corrected rest."""
    days = split_csv_by_time(TAOBAO, tmp_path / "days", CUTS)
    corrected = tmp_path / "day3_fixed.csv"
    lines = days[2].read_text().splitlines(keepends=True)
    corrected.write_text("".join(line for line in lines if ",buy," not in line))
    assert len(lines) - len(corrected.read_text().splitlines()) > 50
    daily, reference = tmp_path / "daily.duckdb", tmp_path / "reference.duckdb"
    for n, day in enumerate(days):
        run_cli("ingest", "events", str(day), warehouse=daily, project=project)
        run_cli("build", warehouse=daily, project=project)
        if n < 2:
            run_cli("ingest", "events", str(day), warehouse=reference, project=project)
            run_cli("build", warehouse=reference, project=project)
    for day in (corrected, *days[3:]):
        run_cli("ingest", "events", str(day), warehouse=reference, project=project)
    run_cli("build", warehouse=reference, project=project)
    run_cli(
        "ingest", "events", str(corrected), "--replace-batch", "3", warehouse=daily, project=project
    )
    run_cli("build", warehouse=daily, project=project)
    assert compare_all(reference, daily) == {}
    assert table_diff(reference, daily, "user_profile_history") == 0
    again = run_cli("build", warehouse=daily, project=project)  # the mark is gone: nothing to do
    assert table_diff(reference, daily, "user_profile_history") == 0 and "0 model(s) built" in again


def test_a_model_version_is_never_handed_out_twice(tmp_path: Path) -> None:
    """Export and the serving copy skip a table whose (fingerprints, version, watermark, as-of,
    rows) they saw before, so a version must never come back: not after `ingest --replace`
    forgot the model that held the highest one (helper-22: rfm_features rebuilt as version 40
    again, and export kept its stale rows), nor in a warehouse from before the sequence."""
    from profiler.state import ModelState, ensure_schema, forget_model, next_version, write_state

    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_schema(con)
    con.execute("DROP SEQUENCE _profiler.version_seq")  # as an older profiler left it
    write_state(con, ModelState("rfm_features", "table", "d", "m", 40, 3, None))
    write_state(
        con, ModelState("user_profile", "table", "d", "m", 7, 3, None, {"rfm_features": 41})
    )
    ensure_schema(con)  # the upgrade starts above every version held or seen
    forget_model(con, "rfm_features")  # what a replace does
    assert [next_version(con) for _ in range(3)] == [42, 43, 44]
    ensure_schema(con)  # idempotent: the sequence goes on
    assert next_version(con) == 45
    con.close()


def _orders(path: Path, lines: list[tuple[str, str, str, float]]) -> Path:
    path.write_text(
        "CustomerID,InvoiceDate,StockCode,UnitPrice\n"
        + "".join(f"{u},{t},{i},{p}\n" for u, t, i, p in lines)
    )
    return path


def test_a_replace_that_moves_the_data_back_takes_back_the_history(tmp_path: Path) -> None:
    """REES46's purchases as a January 2020 orders export (1/2/2020 ...) read day-first: every
    time parses, in February to October, so the first build's as-of and history are months
    ahead. After `--replace` with the right format the next build equals a clean load, the
    history included: nothing stays stamped after the corrected data."""
    from conftest import rees46_purchases

    lines = [
        (u, f"1/{2 + n % 9}/2020 {t.hour}:{t.minute:02d}", i, p)
        for n, (u, t, i, p) in enumerate(rees46_purchases())
    ]
    path = _orders(tmp_path / "orders.csv", lines)
    project = sql_project(tmp_path / "project")
    ok, fixed = tmp_path / "ok.duckdb", tmp_path / "fixed.duckdb"
    right = ("--event-type", "purchase", "--ts-format", "%m/%d/%Y %H:%M")
    run_cli("ingest", "events", str(path), *right, warehouse=ok, project=project)
    run_cli("build", "--select", "+user_profile_history", warehouse=ok, project=project)

    wrong = ("--event-type", "purchase", "--ts-format", "%d/%m/%Y %H:%M")
    run_cli("ingest", "events", str(path), *wrong, warehouse=fixed, project=project)
    first = run_cli("build", "--select", "+user_profile_history", warehouse=fixed, project=project)
    assert "as of 2020-10-" in first
    run_cli("ingest", "events", str(path), *right, "--replace", warehouse=fixed, project=project)
    run_cli("build", "--select", "+user_profile_history", warehouse=fixed, project=project)

    assert compare_all(ok, fixed) == {}
    assert table_diff(ok, fixed, "user_profile_history") == 0


def test_a_replaced_users_file_does_not_win_over_a_newer_one(tmp_path: Path) -> None:
    """A users file read wrongly, then a newer users file moving u1, then the first file again
    read the right way: it keeps its place, so the newer file's city still wins."""
    project = sql_project(tmp_path / "project")
    wh = tmp_path / "wh.duckdb"
    events = tmp_path / "events.csv"
    events.write_text(
        "user_id,event_type,ts,item_id\nu1,view,2020-01-01 10:00:00,i\nu2,view,2020-01-01 10:00:00,i\n"
    )
    old = tmp_path / "users_old.csv"
    old.write_text("user_id,town,county\nu1,Oldtown,North\nu2,Elsewhere,South\n")
    new = tmp_path / "users_new.csv"
    new.write_text("user_id,city,region\nu1,Newtown,North\n")
    run_cli("ingest", "events", str(events), warehouse=wh, project=project)

    def users(*args: str) -> None:
        run_cli("ingest", "users", *args, warehouse=wh, project=project)

    users(str(old), "--map", "city=county", "--map", "region=town")  # read wrongly
    users(str(new))
    run_cli("build", warehouse=wh, project=project)
    users(str(old), "--map", "city=town", "--map", "region=county", "--replace")
    run_cli("build", warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        got = con.execute("SELECT user_id, city, region FROM int_users ORDER BY 1").fetchall()
    assert got == [("u1", "Newtown", "North"), ("u2", "Elsewhere", "South")]


def test_a_replaced_items_file_takes_back_only_the_history_that_saw_it(tmp_path: Path) -> None:
    """helper-94: an items file read wrongly, loaded after the build of 11-28 and built on at
    12-01 and 12-02, then sent again read the right way: the history's versions of 11-28, made
    before the file came, are kept (all of them went, and the history began at the replace);
    every version that saw the wrong reading goes. Taobao in time-cut batches."""
    project = sql_project(tmp_path / "project")
    wh = tmp_path / "wh.duckdb"
    b0, b1, b2, b3, _ = split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS)
    wrong, right = tmp_path / "items_wrong.csv", tmp_path / "items_right.csv"
    with duckdb.connect() as con:
        for path, prefix in ((wrong, "wrong.c"), (right, "taobao.c")):
            con.execute(
                f"COPY (SELECT item_id, any_value('{prefix}' || category_id) AS category_path "
                f"FROM read_csv('{TAOBAO}', all_varchar=true) GROUP BY item_id) TO '{path}' (HEADER)"
            )

    def ingest(source: str, path: Path, *options: str) -> None:
        run_cli("ingest", source, str(path), *options, warehouse=wh, project=project)

    def history() -> list[tuple]:
        with duckdb.connect(str(wh), read_only=True) as con:
            return con.execute(
                "SELECT user_id, valid_from, rfm_segment, lifecycle_stage, top_category, "
                "loyalty_band FROM user_profile_history ORDER BY ALL"
            ).fetchall()

    ingest("events", b0)
    ingest("events", b1)
    run_cli("build", warehouse=wh, project=project)
    first = history()
    start = first[0][1]
    assert len(first) > 800 and {r[1] for r in first} == {start}
    ingest("items", wrong)
    for batch in (b2, b3):
        ingest("events", batch)
        run_cli("build", warehouse=wh, project=project)
    assert any((r[4] or "").startswith("wrong.c") for r in history())
    ingest("items", right, "--replace-batch", "3")
    run_cli("build", warehouse=wh, project=project)
    after = history()
    assert [r for r in after if r[1] == start] == first  # the build before the load stays
    assert not any((r[4] or "").startswith("wrong.c") for r in after)
    assert any((r[4] or "").startswith("taobao.c") for r in after)
    # loaded before that build instead, it was seen there too: those versions go as well, though
    # builds came after it (helper-95: 60 made-up users kept at the day that saw them)
    wh.unlink()
    ingest("events", b0)
    ingest("events", b1)
    ingest("items", wrong)
    run_cli("build", warehouse=wh, project=project)
    assert all((r[4] or "").startswith("wrong.c") for r in history() if r[4])
    for batch in (b2, b3):
        ingest("events", batch)
        run_cli("build", warehouse=wh, project=project)
    ingest("items", right, "--replace-batch", "3")
    run_cli("build", warehouse=wh, project=project)
    assert not any((r[4] or "").startswith("wrong.c") for r in history())
    # builds at each day's end (`--as-of ...T23:59:59`, after the data's newest time), on files
    # of whole days: the one before the load stays too (helper-96: it went, its as-of was not
    # the data's)
    wh.unlink()
    midnights = [1511740800, 1511913600, 1512086400, 1512172800]  # 11-27 .. 12-02, UTC
    d0, d1, d2, d3, _ = split_csv_by_time(TAOBAO, tmp_path / "days", midnights)
    ingest("events", d0)
    ingest("events", d1)
    run_cli("build", "--as-of", "2017-11-28T23:59:59", warehouse=wh, project=project)
    first = history()
    ingest("items", wrong)
    for batch, day in ((d2, "2017-11-30"), (d3, "2017-12-01")):
        ingest("events", batch)
        run_cli("build", "--as-of", f"{day}T23:59:59", warehouse=wh, project=project)
    ingest("items", right, "--replace-batch", "3")
    run_cli("build", "--as-of", "2017-12-01T23:59:59", warehouse=wh, project=project)
    after = history()
    assert len(first) > 800 and [r for r in after if r[1] == first[0][1]] == first
    assert not any((r[4] or "").startswith("wrong.c") for r in after)


def test_users_and_items_keep_each_columns_newest_value(tmp_path: Path) -> None:
    """A users or items file that sends some columns changes those and keeps the rest; within a
    file the later line wins. REES46's catalogue (the slice's items with a category and a
    brand), then a price list of their ids and new prices; the personal users fixture, then a
    file moving user 1 twice, and a file of ids ingested as items and as users too (helper-21:
    rows of ids alone had emptied 1,234 users' gender)."""
    import csv

    project = sql_project(tmp_path / "project")
    wh = tmp_path / "wh.duckdb"
    cli = {"warehouse": wh, "project": project}
    with REES46.open() as f:
        rows = [r for r in csv.DictReader(f) if r["category_code"] and r["brand"]]
    catalogue = {r["product_id"]: r for r in rows}
    items = tmp_path / "items.csv"
    items.write_text("product_id,category_code,brand,price\n" + "".join(
        f"{i},{r['category_code']},{r['brand']},{r['price']}\n" for i, r in catalogue.items()
    ))  # fmt: skip
    prices = tmp_path / "prices.csv"  # each item twice: the later line's price wins
    prices.write_text("product_id,price\n" + "".join(f"{i},1\n{i},2\n" for i in catalogue))
    events = tmp_path / "events.csv"
    events.write_text("user_id,event_type,ts\n1,view,2017-12-01 10:00:00\n")
    moves = tmp_path / "moves.csv"
    moves.write_text("customer_id,city\n1,Ningbo\n1,Suzhou\n")  # the later line wins
    feedback = tmp_path / "feedback.csv"
    feedback.write_text("user_id,ts,kind,rating\n1,2017-12-01 11:00:00,rating,5\n")
    for source, path in (("events", events), ("items", items), ("users", PERSONAL)):
        run_cli("ingest", source, str(path), **cli)
    run_cli("build", "--select", "+int_users", **cli)  # then the changes, built incrementally
    for source, path in (("items", prices), ("users", moves), ("feedback", feedback)):
        run_cli("ingest", source, str(path), **cli)
    # helper-80: loaded as users, its ids would all have become registered users, unsaid
    out = run_cli("ingest", "users", str(feedback), **cli, ok=False)
    assert "are those of feedback (`profiler ingest feedback " in " ".join(out.split())
    ids = tmp_path / "ids.csv"  # the same content as users and as items: said
    ids.write_text(f"customer_id,product_id\n1,{next(iter(catalogue))}\n")
    run_cli("ingest", "items", str(ids), **cli)
    out = " ".join(run_cli("ingest", "users", str(ids), **cli).split())
    assert "the same content is loaded as items too (batch 7)" in out, out
    assert "Its ids alone are now users of the shop, with no other value" in out
    run_cli("build", "--select", "+int_users", **cli)
    full = tmp_path / "full.duckdb"
    shutil.copy(wh, full)
    run_cli("build", "--select", "+int_users", "--full-refresh", warehouse=full, project=project)
    assert table_diff(wh, full, "stg_users") == table_diff(wh, full, "stg_items") == 0
    with duckdb.connect(str(wh), read_only=True) as con:
        got = con.execute("SELECT item_id, category_path, brand, price FROM stg_items").fetchall()
        user = con.execute(
            "SELECT gender, birth_year, city, region FROM stg_users WHERE user_id = '1'"
        ).fetchone()
    assert len(got) == len(catalogue) > 50
    assert {(i, c, b) for i, c, b, _ in got} == {
        (i, r["category_code"], r["brand"]) for i, r in catalogue.items()
    }
    assert {p for *_, p in got} == {2.0}
    assert user == ("f", 1990, "Suzhou", "Zhejiang")


def test_a_table_dropped_by_hand_is_rebuilt(
    tmp_path: Path, project: Path, full_build: Path
) -> None:
    """helper-46: with user_profile dropped by hand, a build said "up to date" and wrote a
    serving copy without it; with an incremental table dropped, each build failed on it. The
    build rebuilds each from its parents, and the tables end as the reference."""
    wh = tmp_path / "wh.duckdb"
    shutil.copy(full_build, wh)
    with duckdb.connect(str(wh)) as con:
        for table in ("user_profile", "int_user_day", "user_profile_history"):
            con.execute(f"DROP TABLE {table}")
    out = " ".join(run_cli("build", warehouse=wh, project=project).split())
    gone = (
        "full [0-9,]+ raw in [0-9,]+ out [0-9.]+s its table is gone \\(dropped outside profiler\\)"
    )
    assert re.search(f"int_user_day incremental_by_time {gone}: rebuilt success", out), out
    assert re.search(f"user_profile_history scd2 {gone}: rebuilt; the history starts again", out)
    assert re.search(r"user_profile table full .* upstream rebuilt", out), out
    with duckdb.connect(str(wh)) as con:
        con.execute("DROP TABLE user_profile")  # alone: nothing upstream moved
    out = " ".join(run_cli("build", warehouse=wh, project=project).split())
    assert re.search(f"user_profile table {gone}: rebuilt success", out), out
    assert compare_all(full_build, wh) == {} and current_history_diff(full_build, wh) == 0
    from profiler.serve.catalog import serving_path

    with duckdb.connect(str(serving_path(wh)), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM user_profile").fetchone()[0] > 0


def test_the_build_says_when_its_profile_is_not_the_new_one(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """A failed model holds back only what reads it, so the profile can be the last build's
    while other tables moved on: the summary says so (helper-21). An --as-of long after the data
    is allowed and noted; an empty one is refused."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    refused = run_cli("build", "--as-of", "", warehouse=wh, project=edited, ok=False)
    assert refused == "error: --as-of is empty; give an ISO date or timestamp, e.g. 2017-12-01\n"
    ahead = run_cli("build", "--as-of", "2018-03-01", warehouse=wh, project=edited)
    assert (
        "note: the as-of is 88 calendar day(s) after the newest data (2017-12-03 15:59:28)" in ahead
    )
    ahead = run_cli("build", "--as-of", "2017-12-04", warehouse=wh, project=edited)
    assert "note: the as-of is 1 calendar day(s) after the newest data" in ahead, ahead
    assert "note: the as-of" not in run_cli("build", warehouse=wh, project=edited)
    model = edited / "features" / "behaviour_features.sql"
    # (a column DuckDB quotes back in its error: text, never rich markup)
    model.write_text(model.read_text().replace("AS searches_1d", 'AS searches_1d, "[/nope]"', 1))
    out = " ".join(run_cli("build", warehouse=wh, project=edited, ok=False).split())
    assert '"[/nope]" not found' in out, out
    assert (
        "WARNING: user_profile was not rebuilt (skipped: see above); it still holds the build as "
        "of 2017-12-03 15:59:28; nothing was published" in out
    ), out
    # the models behind the failed one are counted apart from the ones up to date (helper-28)
    results = json.loads((edited / "target" / "run_results.json").read_text())["results"]
    stored = [r for r in results if r["kind"] not in ("source", "ephemeral")]
    held = sum(r["status"] == "skipped" for r in stored)
    assert held > 0 and (
        f"0 model(s) built, {len(stored) - 1 - held} up to date, 1 failed, {held} not built "
        "(upstream failed)" in out
    ), out


def test_a_model_whose_file_left_is_named(full_build: Path, project: Path, tmp_path: Path) -> None:
    """Its table stays as last built, as in dbt; the build says so instead of leaving it to go
    stale unsaid (helper-21)."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    assert "note:" not in run_cli("build", warehouse=wh, project=edited)
    (edited / "features" / "user_profile_history.sql").unlink()
    out = " ".join(run_cli("build", warehouse=wh, project=edited).split())
    assert "note: user_profile_history: built before, no model file now; its table stays" in out
    with duckdb.connect(str(wh)) as con:  # as the note says, to remove it
        con.execute("DROP TABLE user_profile_history")
    assert "no model file now" not in run_cli("build", warehouse=wh, project=edited)


def test_as_of_equals_a_build_of_the_data_before_it(project: Path, tmp_path: Path) -> None:
    """--as-of T on all the data equals a build of only the rows with ts <= T."""
    cut = 1512000000  # 2017-11-30 00:00:00 UTC
    past = tmp_path / "past.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=past, project=project)
    run_cli("build", "--as-of", "2017-11-30T00:00:00", warehouse=past, project=project)
    only = tmp_path / "only.duckdb"
    before = split_csv_by_time(TAOBAO, tmp_path / "b", [cut + 1])[0]
    run_cli("ingest", "events", str(before), warehouse=only, project=project)
    run_cli("build", "--as-of", "2017-11-30T00:00:00", warehouse=only, project=project)
    assert compare_all(only, past) == {}


def test_a_look_at_the_past_keeps_the_history(full_build: Path, project: Path, tmp_path: Path):
    """`--as-of` before the last build rebuilds the profile as of then, but never writes history
    that ends before it began; building at the newest as-of again gives back the same history."""
    wh = tmp_path / "wh.duckdb"
    shutil.copy(full_build, wh)
    out = " ".join(
        run_cli("build", "--as-of", "2017-11-30T00:00:00", warehouse=wh, project=project).split()
    )
    assert "show the profile as of then until a build without --as-of" in out  # helper-37
    # the serving copy holds one whole build, and the history stays newer (helper-70: mixed)
    assert "note: wh.serving.duckdb not written: the analyst tables are of more than one" in out
    # each build by its as-of, the tables just built first (helper-71: they read "behind")
    assert (
        "user_scores as of 2017-11-30 00:00:00 (batch 1); user_profile_history as of 2017-12-03"
        in out
    )
    assert not (tmp_path / "wh.serving.duckdb").exists()
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    (history,) = [r for r in results if r["model"] == "user_profile_history"]
    assert history["action"] == "skip" and "history's newest change" in history["reason"], history
    with duckdb.connect(str(wh), read_only=True) as con:
        (as_of,) = con.execute("SELECT DISTINCT as_of FROM user_profile").fetchone()
    assert str(as_of) == "2017-11-30 00:00:00"
    assert table_diff(full_build, wh, "user_profile_history") == 0
    out = run_cli("build", "--as-of", "2001-01-01", warehouse=wh, project=project)
    assert "(0 users)" in out and "an --as-of before the data gives an empty profile" in out
    assert table_diff(full_build, wh, "user_profile_history") == 0
    run_cli("build", warehouse=wh, project=project)
    assert compare_all(full_build, wh) == {}
    assert table_diff(full_build, wh, "user_profile_history") == 0


def test_a_build_in_the_future_does_not_block_the_history(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """`--as-of` after the newest event stamps history rows in the future (users churn); the
    next build at the data's as-of takes them back instead of skipping the history forever."""
    wh = tmp_path / "wh.duckdb"
    shutil.copy(full_build, wh)
    run_cli("build", "--as-of", "2030-01-01", warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        (future,) = con.execute(
            "SELECT count(*) FROM user_profile_history WHERE valid_from = '2030-01-01'"
        ).fetchone()
    assert future > 0  # the look ahead did change the history
    run_cli("build", warehouse=wh, project=project)
    assert compare_all(full_build, wh) == {}
    assert table_diff(full_build, wh, "user_profile_history") == 0


def test_history_built_ahead_of_its_data_is_taken_back(project: Path, tmp_path: Path) -> None:
    """A build --as-of after the newest event, then newer data and a build beyond that as-of:
    the rows stamped ahead of their data are gone, as if that build had never run."""
    batches = split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS)
    ahead, plain = tmp_path / "ahead.duckdb", tmp_path / "plain.duckdb"
    for wh in (ahead, plain):
        for batch in batches[:3]:
            run_cli("ingest", "events", str(batch), warehouse=wh, project=project)
        run_cli("build", warehouse=wh, project=project)
    run_cli("build", "--as-of", "2017-12-02T21:00:00", warehouse=ahead, project=project)
    for wh in (ahead, plain):
        for batch in batches[3:]:  # up to 2017-12-03, after that as-of
            run_cli("ingest", "events", str(batch), warehouse=wh, project=project)
        run_cli("build", warehouse=wh, project=project)
    with duckdb.connect(str(ahead), read_only=True) as con:
        stamps = con.execute("SELECT DISTINCT valid_from FROM user_profile_history").fetchall()
    assert ("2017-12-02 21:00:00",) not in [(str(v),) for (v,) in stamps]
    assert table_diff(plain, ahead, "user_profile_history") == 0


def test_daily_builds_at_the_end_of_each_day_keep_each_days_history(
    project: Path, tmp_path: Path
) -> None:
    """helper-37: builds --as-of each day's 23:59:59, the day's last event a little earlier: each
    build took back the one before it as "built ahead of its data", so the history kept only its
    newest day (6 of 60 days in a two-month run). Taobao by UTC day, one build per day."""
    days = ["2017-11-25", "2017-11-26", "2017-11-27"]
    midnights = [1511654400, 1511740800, 1511827200]  # 2017-11-26, -27, -28 00:00 UTC
    batches = split_csv_by_time(TAOBAO, tmp_path / "days", midnights)[:3]
    wh = tmp_path / "wh.duckdb"
    for day, batch in zip(days, batches, strict=True):
        run_cli("ingest", "events", str(batch), warehouse=wh, project=project)
        out = run_cli("build", "--as-of", f"{day}T23:59:59", warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        stamps = con.execute(
            "SELECT strftime(valid_from, '%Y-%m-%d %H:%M:%S'), count(*) FROM user_profile_history "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        (first,) = con.execute(
            "SELECT count(DISTINCT user_id) FROM raw_events WHERE ts < '2017-11-26'"
        ).fetchone()
        (closed,) = con.execute(
            "SELECT count(*) FROM user_profile_history WHERE valid_to = '2017-11-27 23:59:59'"
        ).fetchone()
    assert [s for s, _ in stamps] == [f"{d} 23:59:59" for d in days], stamps
    assert stamps[0][1] == first  # day one's users keep the version they were first seen with
    # the last build says what it moved ("out" is the current state's rows, every user)
    opened = stamps[-1][1]
    assert 0 < closed < opened  # users who changed, and users seen for the first time
    said = f"user_profile_history: {closed:,} changed, {opened - closed:,} new, 0 gone since"
    assert said in out, out


def test_changed_model_rebuilds_it_and_its_descendants_only(
    full_build: Path, tmp_path: Path
) -> None:
    project = sql_project(tmp_path / "project")
    wh = tmp_path / "wh.duckdb"
    shutil.copy(full_build, wh)
    from profiler.dag import build_dag
    from profiler.project import load_project

    dag = build_dag(load_project(project))
    leafish = next(m for m in dag.order() if dag.children(m) and not dag.model_parents(m))
    path = dag.models[leafish].path
    path.write_text(path.read_text().rstrip().rstrip(";") + "\n-- a comment changes nothing\n")
    run_cli("build", warehouse=wh, project=project)
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    assert all(r["action"] == "skip" for r in results), "a comment must not force a rebuild"
    lines = path.read_text().splitlines()
    n = dag.models[leafish].header_lines
    body = "\n".join(lines[n:]).strip().rstrip(";")
    path.write_text("\n".join(lines[:n]) + f"\nSELECT * FROM (\n{body}\n) AS changed\n")
    run_cli("build", warehouse=wh, project=project)
    results = {
        r["model"]: r
        for r in json.loads((project / "target" / "run_results.json").read_text())["results"]
    }
    rebuilt = {m for m, r in results.items() if r["action"] == "full"}
    assert leafish in rebuilt
    assert rebuilt <= {leafish} | dag.descendants(leafish)
    # and every table that reads it is made again on the edit (a history merges it): with the
    # rebuilt model's version kept, its readers were "up to date" on the old SQL's rows
    made = {m for m, r in results.items() if r["action"] != "skip"}
    assert made == {leafish} | {d for d in dag.descendants(leafish) if dag.models[d].kind.is_built}


def _build_proc(wh: Path, project: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "profiler", "build"],
        env=env_for(wh, project),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_build_then_build_equals_uninterrupted(
    full_build: Path, project: Path, tmp_path: Path, seed: int
) -> None:
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=project)
    proc = _build_proc(wh, project)
    time.sleep(random.Random(seed).uniform(1.0, 4.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_cli("build", warehouse=wh, project=project)
    assert compare_all(full_build, wh) == {}


HOLD_LOCK = """
import sys, time
from datetime import datetime
from pathlib import Path
from profiler.lock import warehouse_lock
with warehouse_lock(Path(sys.argv[1]), "build"):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_second_build_exits_at_once_naming_the_first(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """A build holding the warehouse (here: a process holding its lock, so the overlap is certain)
    makes a second build exit at once, naming it; once the holder is killed -9, builds work."""
    wh = tmp_path / "wh.duckdb"
    shutil.copy(full_build, wh)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(wh)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.perf_counter()
        second = subprocess.run(
            [sys.executable, "-m", "profiler", "build"],
            env=env_for(wh, project),
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.perf_counter() - t0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert second.returncode == 1
    assert "is busy" in second.stdout and f"pid {holder.pid}" in second.stdout
    assert "Traceback" not in second.stdout + second.stderr
    assert elapsed < 10
    third = subprocess.run(
        [sys.executable, "-m", "profiler", "build"],
        env=env_for(wh, project),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert third.returncode == 0, third.stdout + third.stderr  # the dead holder's lock is gone
    assert compare_all(full_build, wh) == {}


def test_build_in_a_folder_without_models_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    """A build run from the wrong folder would otherwise do nothing and report success."""
    wh = tmp_path / "wh.duckdb"
    (tmp_path / "sql").mkdir()  # a folder named like a project's, with no model in it
    out = run_cli("build", warehouse=wh, project=tmp_path, ok=False)
    assert "no models" in out and "PROFILER_PROJECT_DIR" in out and out.count("\n") == 1
    assert not wh.exists()


def test_first_build_starts_from_the_example_only_when_it_can_run(tmp_path: Path) -> None:
    """The README's first command: no warehouse configured, the embedded example is copied; a
    build refused for its options copies nothing."""
    project = sql_project(tmp_path / "project")
    shutil.copy(REPO / "warehouse.duckdb.example", project / "warehouse.duckdb.example")
    env = env_for(project / "warehouse.duckdb", project)
    del env["PROFILER_WAREHOUSE"]  # not configured: the default path, where the example may go
    cli = [sys.executable, "-m", "profiler", "build"]
    bad = subprocess.run([*cli, "--as-of", "someday"], cwd=project, env=env, capture_output=True)
    assert bad.returncode != 0 and not (project / "warehouse.duckdb").exists()
    # a narrow terminal: the line stays whole, for a log's grep
    ok = subprocess.run(
        [*cli, "-s", "stg_users"], cwd=project, env={**env, "COLUMNS": "40"}, capture_output=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert (
        b"no warehouse yet: starting from the example data in warehouse.duckdb.example\n"
        in ok.stdout
    )
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM stg_users").fetchone()[0] > 0
    assert sorted(p.name for p in project.iterdir() if p.name.startswith(".warehouse")) == []
    # the example's copy is a made-up shop: a real shop's file is refused, and nothing lands
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        before = con.execute("SELECT count(*) FROM raw_events").fetchone()[0]
    ingest = [sys.executable, "-m", "profiler", "ingest", "events", str(TAOBAO)]
    refused = subprocess.run(ingest, cwd=project, env=env, capture_output=True, text=True)
    assert refused.returncode == 1
    assert "holds the example shop" in refused.stderr + refused.stdout
    assert "PROFILER_WAREHOUSE" in refused.stderr + refused.stdout
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone()[0] == before
    # the same file into a warehouse of its own loads
    own = subprocess.run(
        ingest, cwd=project, env={**env, "PROFILER_WAREHOUSE": str(tmp_path / "shop.duckdb")},
        capture_output=True, text=True,
    )  # fmt: skip
    assert own.returncode == 0, own.stdout + own.stderr


PRICE_RULE = {  # a source suite's rule: no price above 100,000
    "type": "expect_column_values_to_be_between",
    "kwargs": {"column": "price", "max_value": 1e5},
}


def _raw_events_suite(project: Path, *rules: dict) -> None:
    """expectations/raw_events.json of these rules, in the project folder."""
    (project / "expectations").mkdir(exist_ok=True)
    (project / "expectations" / "raw_events.json").write_text(
        json.dumps({"name": "raw_events", "expectations": list(rules)})
    )


def _price_gated_copy(
    project: Path, full_build: Path, tmp_path: Path, purchases: str
) -> tuple[Path, Path]:
    """An edited copy whose raw_events suite is PRICE_RULE, built (the suite is new: every batch
    passes it), then these lines (user_id,event_type,ts,item_id,price) ingested."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    _raw_events_suite(edited, PRICE_RULE)
    run_cli("build", warehouse=wh, project=edited)
    batch = tmp_path / "batch.csv"
    batch.write_text("user_id,event_type,ts,item_id,price\n" + purchases)
    run_cli("ingest", "events", str(batch), warehouse=wh, project=edited)
    return edited, wh


def edited_copy(project: Path, full_build: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the project to edit, and of its built warehouse to build it on."""
    edited, wh = tmp_path / "project", tmp_path / "wh.duckdb"
    shutil.copytree(project, edited)
    shutil.copy(full_build, wh)
    return edited, wh


def test_a_history_merge_at_the_same_as_of_is_a_new_version_for_its_readers(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """An upstream edit merged into the history at the same as-of and batch: the history is a new
    version, so an export writes it again (helper-94: with the version kept, the export skipped
    it and its Parquet kept the versions the build had just replaced)."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    out = tmp_path / "out"
    run_cli("export", "--out", str(out), warehouse=wh, project=edited)
    stages = "SELECT lifecycle_stage, count(*) FROM user_profile_history GROUP BY 1 ORDER BY 1"
    with duckdb.connect(str(wh), read_only=True) as con:
        before = con.execute(stages).fetchall()
    model = edited / "features" / "sentiment_features.sql"
    text = model.read_text()
    assert text.count("1.5 AS active_within_cycles") == 1
    model.write_text(text.replace("1.5 AS active_within_cycles", "0.5 AS active_within_cycles"))
    assert "changed" in run_cli("build", warehouse=wh, project=edited)
    run_cli("export", "--out", str(out), warehouse=wh, project=edited)
    with duckdb.connect(str(wh), read_only=True) as con:
        parquet = (
            f"read_parquet('{out}/user_profile_history/**/*.parquet', hive_partitioning=false)"
        )
        cols = "user_id, valid_from, valid_to, lifecycle_stage"
        differ = con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {cols} FROM {parquet} EXCEPT ALL "
            f"SELECT {cols} FROM user_profile_history)), (SELECT count(*) FROM (SELECT {cols} "
            f"FROM user_profile_history EXCEPT ALL SELECT {cols} FROM {parquet}))"
        ).fetchone()
        assert con.execute(stages).fetchall() != before  # the edit moved some users' stage
    assert differ == (0, 0)


def test_an_incremental_by_key_model_with_a_repeated_key_is_not_published(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """helper-28: grouping int_user_interests by one more column published 1,856 rows for 928
    users; delete + insert by key would keep both rows of a key forever. Its table stays as it
    was and the build says which key repeats."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    model = edited / "sql" / "int_user_interests.sql"
    text = model.read_text()
    assert text.rstrip().endswith("GROUP BY v.user_id")
    model.write_text(text.rstrip() + ", v.dimension = 'user'\n")
    out = " ".join(run_cli("build", warehouse=wh, project=edited, ok=False).split())
    assert (
        "unique_key user_id is not unique: 928 key(s) repeat, e.g. 2 rows have user_id=" in out
    ), out
    assert "nothing was published" in out
    assert table_diff(full_build, wh, "int_user_interests") == 0


def test_a_target_folder_it_cannot_write_leaves_the_build_published_and_served(
    full_build: Path, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """helper-62: with target/ not writable, every model was published, then a traceback, and
    the serving copy stayed stale. run_results.json cannot be written here (a folder holds its
    name); the build says so and is served, and leaves no temporary file. A full disk there is
    no such warning: the build fails in one line, as on the warehouse's disk."""
    from profiler.serve.catalog import serving_path

    edited, wh = edited_copy(project, full_build, tmp_path)
    serving_path(wh).unlink(missing_ok=True)
    (edited / "target" / "run_results.json").unlink(missing_ok=True)
    (edited / "target" / "run_results.json").mkdir(parents=True)
    out = " ".join(run_cli("build", "--full-refresh", warehouse=wh, project=edited).split())
    assert "run_results.json not written" in out and "the build itself is published" in out, out
    assert not [p for p in (edited / "target").iterdir() if p.name.endswith(".tmp")]
    with duckdb.connect(str(serving_path(wh)), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM user_profile").fetchone()[0] > 0

    def full(target: Path, run) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target / "run_results.json"))

    monkeypatch.setattr("profiler.runlog.write_run_results", full)
    out = run_cli("build", warehouse=wh, project=edited, ok=False)
    last = out.splitlines()[-1]
    assert last.startswith("error: disk full: could not write (No space left on device: "), out
    assert out.count("error:") == 1 and "warning" not in out, out


def test_a_misspelt_time_column_fails_the_first_build_not_a_later_batch(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """helper-60: `-- time_column: dayz` passed every full build and failed the first
    incremental one, days later. Now the full build that meets it says so and publishes nothing."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    model = edited / "sql" / "int_user_feedback_day.sql"
    model.write_text(
        model.read_text().replace("-- time_column: day\n", "-- time_column: dayz\n", 1)
    )
    out = " ".join(
        run_cli("build", "--full-refresh", warehouse=wh, project=edited, ok=False).split()
    )
    assert "-- time_column: dayz is no column of the model's output" in out, out
    assert table_diff(full_build, wh, "int_user_feedback_day") == 0


@pytest.mark.parametrize(
    ("header", "misspelt"),
    [
        ("-- unique_key: user_id\n", "-- unique_key: user_idd\n"),
        ("-- track_columns: rfm_segment,", "-- track_columns: rfm_segmnt,"),
    ],
)
def test_a_misspelt_history_key_or_tracked_column_is_refused_and_the_history_kept(
    full_build: Path, project: Path, tmp_path: Path, header: str, misspelt: str
) -> None:
    """As a misspelt time_column (helper-60): an scd2 header naming no column of the output is
    said and publishes nothing. Without the check (a mutant of model_checks) the example shop's
    first build published user_profile_history keyed by a column it lacks, exit 0."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    model = edited / "features" / "user_profile_history.sql"
    assert model.read_text().count(header) == 1
    model.write_text(model.read_text().replace(header, misspelt))
    out = " ".join(run_cli("build", warehouse=wh, project=edited, ok=False).split())
    said = misspelt.split(",")[0].strip()
    assert f"{said} is no column of the model's output" in out, out
    assert table_diff(full_build, wh, "user_profile_history") == 0


def test_a_header_that_documents_other_columns_than_the_model_makes_is_said(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """helper-60: a documented column the model no longer made vanished from the docs site, and
    a new one went undocumented, both unsaid. A new model of the analyst's over the profile."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    (edited / "features" / "big_buyers.sql").write_text(
        "-- kind: table\n-- columns:\n--   user_id: the user\n--   ghost: gone\n"
        "SELECT user_id, total_spend > 100 AS big_spender FROM user_profile\n"
    )
    out = " ".join(run_cli("build", "--select", "big_buyers", warehouse=wh, project=edited).split())
    assert "note: the header documents ghost, which the model does not make" in out, out
    assert "note: the header's columns do not document big_spender" in out


def test_the_shipped_headers_document_the_columns_their_models_make(
    full_build: Path, project: Path
) -> None:
    """What a build compares for its notes (model_checks.documented_otherwise): each shipped
    model's staged columns, as published on the Taobao build, against its `-- columns:`. The
    history's engine stamps (valid_from, valid_to, is_current) are no fault: counting them (a
    mutant) gave every build of the history a note that its header documents them wrongly."""
    from profiler.materialize.scd2 import STAMPS
    from profiler.model_checks import documented_otherwise
    from profiler.project import Kind, load_project

    notes = {}
    with duckdb.connect(str(full_build), read_only=True) as con:
        for name, model in load_project(project).items():
            have = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [name]
                ).fetchall()
                if not (model.kind is Kind.SCD2 and c in STAMPS)
            ]
            if have and model.columns:
                notes[name] = documented_otherwise(model, have)
    assert {"user_profile_history", "stg_users", "stg_items"} <= set(notes), sorted(notes)
    assert {m: n for m, n in notes.items() if n} == {}


def test_a_selected_model_whose_upstream_sql_changed_unbuilt_says_so(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """helper-60: `--select M` said M was up to date while M's upstream SQL had been edited and
    not built; dbt would have built M, SQLMesh shown the change."""
    from profiler.serve.catalog import serving_path

    edited, wh = edited_copy(project, full_build, tmp_path)
    shutil.copy(serving_path(full_build), serving_path(wh))
    model = edited / "features" / "sentiment_features.sql"
    text = model.read_text()
    assert text.count("m.tenure_days,") == 1
    model.write_text(text.replace("m.tenure_days,", "m.tenure_days + 0 AS tenure_days,"))
    out = " ".join(
        run_cli("build", "--select", "user_profile", warehouse=wh, project=edited).split()
    )
    assert "note: the SQL of sentiment_features changed since it was built" in out, out
    assert "select it too (+user_profile)" in out
    # the serving copy holds one whole build of the project's SQL (helper-87: after an upgrade,
    # `--select M` served M's new SQL beside its parents' old)
    assert (
        "note: wh.serving.duckdb stays at its last whole build: sentiment_features were built "
        "by SQL edited since; a build of them all (`profiler build`) replaces it" in out
    ), out
    served = serving_path(wh).stat().st_ino
    # check and export read the tables as the old SQL made them: said (helper-87: `check` told
    # to edit the suites, `export` wrote the old tables under the new docs, unsaid)
    note = "sentiment_features were built by SQL edited since"
    checked = " ".join(
        run_cli("check", "--select", "sentiment_features", warehouse=wh, project=edited).split()
    )
    assert f"note: {note}" in checked and "`profiler build` first" in checked, checked
    exported = " ".join(
        run_cli("export", "--out", str(tmp_path / "out"), warehouse=wh, project=edited).split()
    )
    assert f"warning: {note}" in exported, exported
    # a state written before the parts of its SQL were kept (an upgrade) gives the general reason
    with duckdb.connect(str(wh)) as con:
        con.execute("UPDATE _profiler.models SET fingerprint_parts = NULL")
    out = " ".join(
        run_cli("build", "--select", "+user_profile", warehouse=wh, project=edited).split()
    )
    assert re.search(r"sentiment_features table full .{0,40}SQL or settings changed", out), out
    again = " ".join(
        run_cli("build", "--select", "user_profile", warehouse=wh, project=edited).split()
    )
    assert "changed since" not in again
    # the profile's readers (the history, the audiences) were built on its earlier version
    # (helper-90: the copy served them beside the new profile)
    assert "were built on an earlier version of a parent" in again, again
    assert serving_path(wh).stat().st_ino == served
    run_cli("build", warehouse=wh, project=edited)
    assert serving_path(wh).stat().st_ino != served  # a whole build again: served


def test_a_model_failing_on_a_parent_of_older_sql_names_it(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """helper-87: after an upgrade, `--select user_profile` failed on a column the old SQL's
    int_users lacks, with DuckDB's words alone."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    model = edited / "features" / "sentiment_features.sql"
    text = model.read_text()
    model.write_text(text.replace("m.tenure_days,", "m.tenure_days, 1 AS novel,"))
    profile = edited / "features" / "user_profile.sql"
    profile.write_text(profile.read_text().replace("s.loyalty_score,", "s.loyalty_score, s.novel,"))
    out = " ".join(
        run_cli("build", "--select", "user_profile", warehouse=wh, project=edited, ok=False).split()
    )
    assert "novel" in out and "(note: the SQL of sentiment_features changed since it was" in out, (
        out
    )


def test_a_history_built_on_edited_sql_says_its_changes_may_be_the_sqls(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """helper-87: an upgrade's new rules moved users' top categories, and the history recorded
    it as the users' changes, unsaid. An edit of the lifecycle rule here."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    model = edited / "features" / "sentiment_features.sql"
    text = model.read_text().replace("m.tenure_days,", "m.tenure_days + 0 AS tenure_days,")
    model.write_text(text)  # an edit that changes no value: no note (helper-90)
    out = " ".join(run_cli("build", warehouse=wh, project=edited).split())
    assert "user_profile_history: 0 changed, 0 new, 0 gone" in out and "may be the new" not in out
    assert text.count("1.5 AS active_within_cycles") == 1, "the rule moved: edit the test"
    model.write_text(text.replace("1.5 AS active_within_cycles", "0.5 AS active_within_cycles"))
    # an audience, which reads the profile and does not feed the history, edited too: not named
    # (helper-91: every edited model was)
    audience = edited / "features" / "serving" / "audiences" / "audience_at_risk_loyal.sql"
    assert "WHERE (" in audience.read_text()
    audience.write_text(audience.read_text().replace("WHERE (", "WHERE TRUE AND (", 1))
    feedback = tmp_path / "feedback.csv"  # a later as-of: a new version
    feedback.write_text("user_id,ts,kind,rating\n1,2017-12-04 11:00:00,rating,5\n")
    run_cli("ingest", "feedback", str(feedback), warehouse=wh, project=edited)
    out = " ".join(run_cli("build", warehouse=wh, project=edited).split())
    assert re.search(r"user_profile_history: [1-9][\d,]* changed", out), out
    assert (
        "note: the SQL of sentiment_features changed since the last version: a change recorded "
        "now may be the new SQL's, not the user's" in out
    ), out
    feedback.write_text("user_id,ts,kind,rating\n1,2017-12-05 11:00:00,rating,4\n")
    run_cli("ingest", "feedback", str(feedback), warehouse=wh, project=edited)
    assert "may be the new SQL's" not in run_cli("build", warehouse=wh, project=edited)


def test_a_selected_model_is_not_built_on_parents_of_another_as_of(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """helper-28: `--select M --as-of T` built M as of T on parents built as of a later time,
    so it published their later data (and a history version of 12-01 that held 12-03's state).
    The model is refused, its table unchanged, and `+M` builds the parents too."""
    wh = tmp_path / "wh.duckdb"
    shutil.copy(full_build, wh)
    before = _profile_rows(wh)
    feedback = tmp_path / "feedback.csv"  # after the refused as-of, before the profile's
    feedback.write_text("user_id,ts,kind,rating\n1,2017-12-02 11:00:00,rating,5\n")
    run_cli("ingest", "feedback", str(feedback), warehouse=wh, project=project)
    out = " ".join(
        run_cli("build", "--select", "user_profile", "--as-of", "2017-12-01",
                warehouse=wh, project=project, ok=False).split()
    )  # fmt: skip
    assert "upstream" in out and "select it too (+user_profile)" in out, out
    assert _profile_rows(wh) == before
    # nothing was built: no word of tables that published or of a profile shown as of then
    assert "nothing was published" in out and "did publish" not in out, out
    assert "the tables built" not in out, out
    assert "feedback row(s) are newer than the as-of" not in out, out
    assert "not selected in this build" not in out, out  # it was: refused
    run_cli(
        "build", "--select", "+user_profile", "--as-of", "2017-12-01", warehouse=wh, project=project
    )
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT DISTINCT as_of FROM user_profile").fetchall() == [
        (datetime(2017, 12, 1),)
    ]
    con.close()
    # a build of other models at the data's as-of says the profile is still that of 12-01
    out = run_cli("build", "--select", "+behaviour_features", warehouse=wh, project=project)
    assert "users, as of 2017-12-01 00:00:00: not selected in this build)" in " ".join(out.split())


def test_a_model_left_as_it_is_at_a_moved_as_of_is_stated_at_it(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """`--as-of` after the newest event: the day models have no row between the two as-ofs and
    are left as they are, but they are stated at the new as-of, so a reader of one selected
    alone at it is up to date (with their old as-of kept, it was refused as built on a parent
    of another as-of)."""
    wh = tmp_path / "wh.duckdb"
    shutil.copy(full_build, wh)
    out = run_cli("build", "--as-of", "2030-01-01", warehouse=wh, project=project)
    assert re.search(r"rec_item_day +incremental_by_time +skip .*no new rows", out), out
    out = run_cli(
        "build", "--select", "rec_item_popularity", "--as-of", "2030-01-01",
        warehouse=wh, project=project,
    )  # fmt: skip
    assert re.search(r"rec_item_popularity +table +skip .*up to date", out), out


def test_a_selected_model_whose_parent_was_never_built_is_not_built(tmp_path: Path) -> None:
    """`--select M` on a warehouse where M's parent has no table yet: M is left unbuilt with
    the way out, not a traceback, no table of it appears, and the build fails (exit 1), as a
    parent at another as-of does: a scheduled job that selected too little must not see
    success (helper-104: exit 0, "1 not built (upstream failed)")."""
    root = sql_project(tmp_path / "p")
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=root)
    out = run_cli("build", "--select", "rec_item_popularity", warehouse=wh, project=root, ok=False)
    out = " ".join(out.split())
    assert re.search(r"error rec_item_popularity table skip .* upstream never built", out), out
    assert (
        "upstream rec_item_day has never been built: select it too (+rec_item_popularity)" in out
    ), out
    assert "0 model(s) built, 0 up to date, 1 failed" in out
    assert "upstream failed" not in out
    with duckdb.connect(str(wh), read_only=True) as con:
        assert not con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'rec_item_popularity'"
        ).fetchone()[0]


def test_a_sources_suite_gates_the_batches_a_build_reads(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """helper-78: a rule added to expectations/raw_events.json ran in `profiler check` only; the
    build published the purchase it refused, exit 0. The new batches now pass the source's suite
    before any model reads them: a failure blocks the source's readers (their tables stay), names
    the batch, and a corrected batch builds. Batches that passed are not validated again."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    warn = {**PRICE_RULE, "kwargs": {"column": "price", "max_value": 50}}
    _raw_events_suite(edited, PRICE_RULE, {**warn, "meta": {"severity": "warn"}})
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text("user_id,event_type,ts,item_id,price\n1,purchase,2017-12-03 20:00:00,7,999999\n")
    good.write_text("user_id,event_type,ts,item_id,price\n1,purchase,2017-12-03 20:00:00,7,99.5\n")
    assert "gate " not in run_cli("build", warehouse=wh, project=edited)  # the edit: all pass
    before = _profile_rows(wh)
    out = run_cli("ingest", "events", str(bad), warehouse=wh, project=edited)
    batch = re.search(r"batch (\d+)", out).group(1)
    out = " ".join(run_cli("build", warehouse=wh, project=edited, ok=False).split())
    assert (
        "raw_events: expect_column_values_to_be_between(column='price', max_value=100000.0) "
        f"failed on the new slice: 1 unexpected of 1 rows, e.g. 999999.0; keys user_id='1' "
        f"ts='2017-12-03 20:00:00' _batch_id={batch}" in out
    ), out
    assert "--replace-batch N" in out and "upstream raw_events failed its suite" in out
    assert "new batches of raw_events refused by its suite" in out
    # the refused row does not move the as-of of what did build (helper-81)
    assert "as of 2017-12-03T15:59:28:" in out, out
    assert _profile_rows(wh) == before
    # a refusal sticks to its batch: a good batch after it is no way round it (helper-81: a
    # `mostly` rule passed the two together), and a selection reading no raw table builds
    later = tmp_path / "later.csv"
    later.write_text("user_id,event_type,ts,item_id,price\n2,purchase,2017-12-03 21:00:00,7,9\n")
    run_cli("ingest", "events", str(later), warehouse=wh, project=edited)
    out = " ".join(run_cli("build", warehouse=wh, project=edited, ok=False).split())
    assert f"_batch_id={batch}" in out and "refused by its suite" in out, out
    assert _profile_rows(wh) == before
    out = run_cli("build", "--select", "user_profile", warehouse=wh, project=edited)
    assert "refused" not in out and _profile_rows(wh) == before, out
    run_cli("ingest", "events", str(good), "--replace-batch", batch, warehouse=wh, project=edited)
    out = " ".join(run_cli("build", warehouse=wh, project=edited).split())
    assert _profile_rows(wh) != before
    # a warning publishes and is said, and no source is counted among the models
    assert (
        "raw_events: expect_column_values_to_be_between(column='price', max_value=50) "
        "failed (warn)" in out
    ), out
    assert "0 failed" in out and re.search(r"\d+ model\(s\) built, 0 up to date", out), out
    assert "as of 2017-12-03T21:00:00:" in out, out
    with duckdb.connect(str(wh), read_only=True) as con:
        gated = "SELECT count(*) FROM _profiler.validations WHERE table_name = 'raw_events'"
        runs = con.execute(gated).fetchone()[0]
    run_cli("build", warehouse=wh, project=edited)
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute(gated).fetchone()[0] == runs


def test_a_look_at_the_past_records_no_source_batch_as_passed(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """A build `--as-of` before a new batch's last rows validates its rows up to the as-of only,
    so it records nothing as passed (helper-81): the next build validates the whole batch and
    refuses its bad row. Recording that pass (a mutant of source_gate) let the next build publish
    a purchase at a price of 999999, exit 0. Data: the Taobao build and two purchases after it."""
    edited, wh = _price_gated_copy(
        project, full_build, tmp_path,
        "1,purchase,2017-12-03 20:00:00,7,99.5\n2,purchase,2017-12-03 22:00:00,7,999999\n",
    )  # fmt: skip
    out = run_cli("build", "--as-of", "2017-12-03T21:00:00", warehouse=wh, project=edited)
    assert "refused" not in out, out  # the row it reads passes
    before = _profile_rows(wh)
    out = " ".join(run_cli("build", warehouse=wh, project=edited, ok=False).split())
    assert "1 unexpected" in out and "999999.0" in out and "refused by its suite" in out, out
    assert _profile_rows(wh) == before


def test_a_mostly_refusal_sticks_to_its_batch_when_clean_batches_follow(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """helper-81: a `mostly` rule refusing a batch (1 bad price of 2) passed once a clean batch
    joined it (1 of 22). The refused batch is judged alone until it is replaced; validating up to
    the newest batch (a mutant of source_gate) published the bad purchase, exit 0."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    _raw_events_suite(edited, {**PRICE_RULE, "kwargs": {**PRICE_RULE["kwargs"], "mostly": 0.9}})
    run_cli("build", warehouse=wh, project=edited)  # the suite is new: every batch passes it
    before = _profile_rows(wh)
    head = "user_id,event_type,ts,item_id,price\n"
    bad, clean = tmp_path / "bad.csv", tmp_path / "clean.csv"
    bad.write_text(
        f"{head}1,purchase,2017-12-03 20:00:00,7,99.5\n2,purchase,2017-12-03 20:00:00,7,999999\n"
    )
    clean.write_text(
        head + "".join(f"{u},purchase,2017-12-03 21:00:00,7,9\n" for u in range(3, 23))
    )
    run_cli("ingest", "events", str(bad), warehouse=wh, project=edited)
    assert "refused by its suite" in run_cli("build", warehouse=wh, project=edited, ok=False)
    run_cli("ingest", "events", str(clean), warehouse=wh, project=edited)
    out = " ".join(run_cli("build", warehouse=wh, project=edited, ok=False).split())
    assert "1 unexpected of 2 rows" in out and "refused by its suite" in out, out
    assert _profile_rows(wh) == before


def test_an_edited_source_suite_validates_the_batches_it_passed_before(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """A source's suite edited: every batch is validated again, so the new rule sees the rows the
    old suite passed. A mutant of source_gate keeping the old suite's pass let a rule refusing
    Taobao's purchases pass the build, unvalidated, exit 0."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    (edited / "expectations").mkdir(exist_ok=True)
    suite = edited / "expectations" / "raw_events.json"
    not_null = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "user_id"}}
    suite.write_text(json.dumps({"name": "raw_events", "expectations": [not_null]}))
    run_cli("build", warehouse=wh, project=edited)
    no_purchases = {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "event_type", "value_set": ["view", "cart", "fav"]},
    }
    suite.write_text(json.dumps({"name": "raw_events", "expectations": [not_null, no_purchases]}))
    out = " ".join(run_cli("build", warehouse=wh, project=edited, ok=False).split())
    assert "every batch (its suite is new or changed" in out and "refused by its suite" in out, out
    with duckdb.connect(str(wh), read_only=True) as con:
        (purchases,) = con.execute(
            "SELECT count(*) FROM raw_events WHERE event_type = 'purchase'"
        ).fetchone()
    assert purchases > 0 and f"{purchases} unexpected" in out.replace(",", ""), out


def test_a_refused_feedback_batch_leaves_the_as_of_of_a_shop_without_events(
    tmp_path: Path,
) -> None:
    """A shop that sends only feedback builds as of its newest feedback time; a feedback batch
    its suite refuses is left out of that, as a refused events batch is (helper-81). Without
    raw_feedback among the held batches (a mutant of source_gate) the build was stated as of the
    refused complaint, four days after the feedback it published. Lines: the contract's feedback
    columns, two reviews and a complaint."""
    root, wh = sql_project(tmp_path / "p"), tmp_path / "wh.duckdb"
    (root / "expectations").mkdir()
    (root / "expectations" / "raw_feedback.json").write_text(
        json.dumps({
            "name": "raw_feedback",
            "expectations": [{
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "kind", "value_set": ["rating", "review"]},
            }],
        })
    )  # fmt: skip
    head = "user_id,ts,kind,item_id,rating,text\n"
    first, late = tmp_path / "first.csv", tmp_path / "late.csv"
    first.write_text(
        f"{head}1,2024-03-01 10:00:00,rating,7,4,\n2,2024-03-01 11:00:00,review,8,5,ok\n"
    )
    late.write_text(f"{head}3,2024-03-05 09:00:00,complaint,9,,late delivery\n")
    run_cli("ingest", "feedback", str(first), "--time-zone", "UTC", warehouse=wh, project=root)
    assert "as of 2024-03-01T11:00:00:" in run_cli("build", warehouse=wh, project=root)
    run_cli("ingest", "feedback", str(late), warehouse=wh, project=root)
    out = " ".join(run_cli("build", warehouse=wh, project=root, ok=False).split())
    assert "raw_feedback refused by its suite" in out, out
    assert "as of 2024-03-01T11:00:00:" in out, out


def test_a_source_read_only_inside_an_ephemeral_model_is_gated(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """int_user_day names no raw table: it reads raw_events inside the ephemeral stg_events.
    Selected alone, at its parents' as-of, it still waits for the source's suite to pass the
    batch it would read. Gating only the raw tables a model names (a mutant of source_gate) put
    a late purchase at 999999 into int_user_day's slice, exit 0."""
    edited, wh = _price_gated_copy(
        project, full_build, tmp_path, "1,purchase,2017-12-02 10:00:00,7,999999\n"
    )
    out = run_cli(
        "build", "--select", "int_user_day", "--as-of", "2017-12-03T15:59:28",
        warehouse=wh, project=edited, ok=False,
    )  # fmt: skip
    out = " ".join(out.split())
    assert "999999.0" in out and "upstream raw_events failed its suite" in out, out
    assert table_diff(full_build, wh, "int_user_day") == 0


def test_a_refusal_that_passes_later_gates_the_batches_loaded_after_it_in_that_build(
    tmp_path: Path,
) -> None:
    """A table-level rule (more rows than Taobao's first time batch holds) refuses that batch
    alone; the rest of Taobao and a purchase at 999999 arrive, and the next build passes the
    refused batch, the table having its rows now. The batches after it were then read
    unvalidated: int_user_day took the 999999 purchase and the as-of moved to it, exit 0. They
    are judged in that build now, and refused."""
    root, wh = sql_project(tmp_path / "p"), tmp_path / "wh.duckdb"
    first, rest = split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS[-1:])
    with duckdb.connect() as con:
        (rows,) = con.execute(f"SELECT count(*) FROM read_csv('{first}')").fetchone()
    more = {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": rows + 1}}
    _raw_events_suite(root, more, PRICE_RULE)
    run_cli("ingest", "events", str(first), warehouse=wh, project=root)
    assert "refused by its suite" in run_cli("build", warehouse=wh, project=root, ok=False)
    run_cli("ingest", "events", str(rest), warehouse=wh, project=root)
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,event_type,ts,item_id,price\n1,purchase,2017-12-03 20:00:00,7,999999\n")
    out = run_cli("ingest", "events", str(bad), warehouse=wh, project=root)
    batch = re.search(r"batch (\d+)", out).group(1)
    out = " ".join(run_cli("build", warehouse=wh, project=root, ok=False).split())
    assert f"999999.0; keys user_id='1' ts='2017-12-03 20:00:00' _batch_id={batch}" in out, out
    assert "refused by its suite" in out and "as of 2017-12-03T20:00:00" not in out, out
    assert "int_user_day" not in model_tables(wh)  # blocked twice: it keeps no table


def test_a_full_refresh_of_the_same_data_writes_the_same_values(tmp_path: Path) -> None:
    """helper-78: `--full-refresh` with nothing new changed int_user_lifetime.price_sum in the last
    digit for 129 of the example shop's 532 users (doubles summed in another order). Sums of
    prices are kept to the millionth, as money is, so a rebuild compares equal, exactly."""
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    shutil.copy(REPO / "warehouse.duckdb.example", a)
    run_cli("build", "--select", "+int_user_lifetime", warehouse=a, project=REPO)
    shutil.copy(a, b)
    run_cli("build", "--select", "+int_user_lifetime", "--full-refresh", warehouse=b, project=REPO)
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY); ATTACH '{b}' AS b (READ_ONLY)")
        for table in ("int_user_day", "int_user_lifetime"):
            differ = f"SELECT * FROM a.{table} EXCEPT SELECT * FROM b.{table}"
            assert con.execute(f"SELECT count(*) FROM ({differ})").fetchone() == (0,), table


def _profile_rows(wh: Path) -> list[tuple]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return sorted(
            con.execute("SELECT user_id, as_of, views_lifetime FROM user_profile").fetchall()
        )
    finally:
        con.close()


def _history_of_two_builds(project: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the project and a Taobao warehouse built as of 11-30, then of the newest data."""
    edited = tmp_path / "project"
    shutil.copytree(project, edited)
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=edited)
    run_cli("build", "--as-of", "2017-11-30", warehouse=wh, project=edited)
    run_cli("build", warehouse=wh, project=edited)
    return edited, wh


def test_an_edited_history_model_keeps_its_versions(project: Path, tmp_path: Path) -> None:
    """helper-28: any edit of user_profile_history.sql erased the history (1,685 rows and two
    as-ofs became 928 rows and one), for good. As a dbt snapshot does, it now keeps its versions;
    a new tracked column is NULL on the earlier ones."""
    edited, wh = _history_of_two_builds(project, tmp_path)
    q = "SELECT user_id, rfm_segment, lifecycle_stage, top_category, loyalty_band, valid_from, valid_to FROM user_profile_history"

    def history(where: str = "") -> list[tuple]:
        con = duckdb.connect(str(wh), read_only=True)
        try:
            return sorted(con.execute(q + where).fetchall(), key=repr)
        finally:
            con.close()

    before = history()
    assert len({r[5] for r in before}) == 2
    model = edited / "features" / "user_profile_history.sql"
    text = model.read_text()
    model.write_text(text.replace("FROM user_profile", "FROM user_profile WHERE TRUE"))
    out = run_cli("build", warehouse=wh, project=edited)
    assert re.search(r"user_profile_history +scd2 +slice .*changed: its SQL: merged", out), out
    out = " ".join(out.split())
    assert "changed: its SQL; earlier versions kept" in out, out
    assert history() == before
    tracked = text.replace("loyalty_band\n", "loyalty_band, top_hour\n", 1).replace(
        "    loyalty_band\nFROM", "    loyalty_band,\n    top_hour\nFROM"
    )
    model.write_text(tracked)
    out = " ".join(run_cli("build", warehouse=wh, project=edited).split())
    assert "new column(s) top_hour NULL on them" in out, out
    first = " WHERE valid_from = TIMESTAMP '2017-11-30'"
    # the versions of 11-30 stay, closed now at the as-of that first saw top_hour
    assert [r[:6] for r in history(first)] == [
        r[:6] for r in before if r[5] == datetime(2017, 11, 30)
    ]
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute(
        "SELECT count(*) FILTER (WHERE top_hour IS NOT NULL) FROM user_profile_history" + first
    ).fetchone() == (0,)
    con.close()


def test_a_build_of_a_warehouse_path_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    """helper-29: a typo in PROFILER_WAREHOUSE made its folders and an empty 800 KB warehouse,
    then said there was nothing to build."""
    wh = tmp_path / "nope" / "sub" / "wh.duckdb"
    out = run_cli("build", warehouse=wh, project=sql_project(tmp_path / "project"), ok=False)
    assert "no warehouse there (a typo in the path?)" in out and out.count("\n") == 1, out
    assert not (tmp_path / "nope").exists()
    # nor does a training (helper-62: it made the folders and a warehouse)
    out = run_cli("train", "purchase_propensity", warehouse=wh, ok=False)
    assert "no warehouse there (a typo in the path?)" in out, out
    assert not (tmp_path / "nope").exists()
    # nor do the readers send you to `profiler build`, which refuses it (helper-80)
    for command in (("show", "1"), ("check",), ("export", "--out", str(tmp_path / "bi"))):
        out = run_cli(*command, warehouse=wh, ok=False)
        assert (
            "no warehouse there (a typo in the path?); `profiler ingest events FILE` creates "
            "one, then `profiler build`" in " ".join(out.split())
        ), out


def test_an_edited_history_looked_at_in_the_past_stays_and_takes_the_edit_later(
    project: Path, tmp_path: Path
) -> None:
    """helper-31: an edit made the history plan "full", which skipped its rules: a build --as-of
    in the past deleted every later version (a look at the past must leave it), and replace marks
    were ignored. The edit is now merged like new data, by the same rules."""
    edited, wh = _history_of_two_builds(project, tmp_path)

    def history() -> list[tuple]:
        with duckdb.connect(str(wh), read_only=True) as con:
            return sorted(map(repr, con.execute("SELECT * FROM user_profile_history").fetchall()))

    before = history()
    model = edited / "features" / "user_profile_history.sql"
    model.write_text(model.read_text().replace("FROM user_profile", "FROM user_profile WHERE TRUE"))
    past = " ".join(run_cli("build", "--as-of", "2017-11-29", warehouse=wh, project=edited).split())
    assert history() == before  # a look at the past
    # and said so: not counted up to date (helper-69)
    assert ", 0 failed, 1 history left as it is (an as-of in its past)" in past, past
    # its current versions are the old SQL's until a build merges the edit: check says so, as
    # for any table built by SQL edited since (helper-103: said of every kind but a history)
    pending = "note: user_profile_history were built by SQL edited since"
    check = ("check", "--select", "user_profile_history")
    assert pending in " ".join(run_cli(*check, warehouse=wh, project=edited).split())
    out = " ".join(run_cli("build", warehouse=wh, project=edited).split())
    assert "changed: its SQL; earlier versions kept" in out, out  # not lost while skipped
    assert history() == before
    assert pending not in " ".join(run_cli(*check, warehouse=wh, project=edited).split())


def test_an_edited_history_fills_an_untracked_column_and_widens_a_type(
    project: Path, tmp_path: Path
) -> None:
    """helper-31: a new untracked column stayed NULL on the current versions forever, and any
    type change (INTEGER -> BIGINT) erased the history."""
    edited, wh = _history_of_two_builds(project, tmp_path)
    model = edited / "features" / "user_profile_history.sql"
    text = model.read_text()
    model.write_text(
        text.replace("    loyalty_band\nFROM", "    loyalty_band,\n    top_hour\nFROM")
    )
    run_cli("build", warehouse=wh, project=edited)

    def counts() -> tuple:
        with duckdb.connect(str(wh), read_only=True) as con:
            return con.execute(
                "SELECT count(*), count(DISTINCT valid_from), count(*) FILTER (WHERE is_current "
                "AND top_hour IS NULL), (SELECT count(*) FROM user_profile WHERE top_hour IS NULL), "
                "any_value(typeof(top_hour)) FROM user_profile_history"
            ).fetchone()

    rows_, stamps, open_nulls, profile_nulls, kind = counts()
    assert stamps == 2 and open_nulls == profile_nulls and kind == "INTEGER"
    model.write_text(
        text.replace(
            "    loyalty_band\nFROM",
            "    loyalty_band,\n    CAST(top_hour AS BIGINT) AS top_hour\nFROM",
        )
    )
    out = " ".join(run_cli("build", warehouse=wh, project=edited).split())
    assert "top_hour is BIGINT now (earlier versions' values cast)" in out, out
    assert counts() == (rows_, 2, open_nulls, profile_nulls, "BIGINT")


def test_an_edited_history_whose_text_column_turns_numeric_keeps_its_type(
    project: Path, tmp_path: Path
) -> None:
    """helper-33: loyalty_band edited from 'high'/'low' to numbers failed every build with a
    conversion error (the check of old values cast them plainly). The numbers fit the text type:
    the history keeps it, and every version stays."""
    edited, wh = _history_of_two_builds(project, tmp_path)
    with duckdb.connect(str(wh), read_only=True) as con:
        (before,) = con.execute("SELECT count(*) FROM user_profile_history").fetchone()
    model = edited / "features" / "user_profile_history.sql"
    model.write_text(model.read_text().replace(
        "    loyalty_band\nFROM",
        "    CASE loyalty_band WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END AS loyalty_band\nFROM",
    ))  # fmt: skip
    out = " ".join(run_cli("build", warehouse=wh, project=edited).split())
    assert "earlier versions kept" in out, out
    with duckdb.connect(str(wh), read_only=True) as con:
        after, kind, bands = con.execute(
            "SELECT count(*), any_value(typeof(loyalty_band)), "
            "list(DISTINCT loyalty_band ORDER BY loyalty_band) FILTER (WHERE is_current) "
            "FROM user_profile_history"
        ).fetchone()
    assert kind == "VARCHAR" and after > before and set(bands) <= {"1", "2", "3"}


def test_an_edited_history_whose_fractions_turn_whole_keeps_their_values(tmp_path: Path) -> None:
    """A tracked rate (a DOUBLE, most users' values fractions) edited to whole numbers: the
    earlier versions keep their fractions and the column stays DOUBLE, since the new values fit it
    and the old ones do not fit an INTEGER (a cast rounds them without failing). Taobao in two
    time batches: purchases per active day, first as a fraction, then rounded to an INTEGER."""
    rate = "count(*) FILTER (WHERE event_type = 'purchase') / count(DISTINCT CAST(ts AS DATE))"
    head = "-- kind: scd2\n-- unique_key: user_id\n-- track_columns: buys_per_day\n"
    body = "SELECT user_id, {} AS buys_per_day FROM raw_events GROUP BY ALL\n"
    root = _models_project(tmp_path, rate_history=head + body.format(rate))
    wh = tmp_path / "wh.duckdb"
    for batch in split_csv_by_time(TAOBAO, tmp_path / "batches", [1512100000]):
        run_cli("ingest", "events", str(batch), warehouse=wh, project=root)
        run_cli("build", warehouse=wh, project=root)
    first = "FROM rate_history WHERE valid_from < (SELECT max(valid_from) FROM rate_history)"
    with duckdb.connect(str(wh), read_only=True) as con:
        before = sorted(con.execute(f"SELECT user_id, buys_per_day {first}").fetchall())
    assert sum(v != int(v) for _, v in before) > 50  # fractions a rounding would change
    (root / "sql" / "rate_history.sql").write_text(
        head + body.format(f"CAST(round({rate}) AS INTEGER)")
    )
    out = " ".join(run_cli("build", warehouse=wh, project=root).split())
    assert "earlier versions kept" in out, out
    with duckdb.connect(str(wh), read_only=True) as con:
        after = sorted(con.execute(f"SELECT user_id, buys_per_day {first}").fetchall())
        kinds = con.execute("SELECT DISTINCT typeof(buys_per_day) FROM rate_history").fetchall()
    assert after == before and kinds == [("DOUBLE",)]


def _taobao_split(tmp_path: Path, late_where: str) -> tuple[Path, Path]:
    """Taobao cut in two files: the rows `late_where` picks (a late batch), and the rest."""
    con = duckdb.connect()
    src = f"read_csv('{TAOBAO}', all_varchar=true)"
    on_time, late = tmp_path / "on_time.csv", tmp_path / "late.csv"
    con.execute(f"COPY (SELECT * FROM {src} WHERE NOT ({late_where})) TO '{on_time}' (HEADER)")
    con.execute(f"COPY (SELECT * FROM {src} WHERE {late_where}) TO '{late}' (HEADER)")
    con.close()
    return on_time, late


def test_a_late_batch_of_two_separate_days_equals_one_full_build(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """A late file holding part of two days three days apart (a shop's corrected export): every
    day model recomputes both days, each replacing its rows once, as one build of all the data."""
    day = "CAST(to_timestamp(CAST(ts AS BIGINT)) AT TIME ZONE 'UTC' AS DATE)"
    late_where = (
        f"{day} IN (DATE '2017-11-27', DATE '2017-11-30') AND CAST(item_id AS BIGINT) % 2 = 0"
    )
    on_time, late = _taobao_split(tmp_path, late_where)
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(on_time), warehouse=wh, project=project)
    run_cli("build", warehouse=wh, project=project)
    run_cli("ingest", "events", str(late), warehouse=wh, project=project)
    run_cli("build", warehouse=wh, project=project)
    assert compare_all(full_build, wh) == {}


LOOKBACK_MODEL = """-- kind: incremental_by_time
-- time_column: day
-- lookback: 2
-- description: a user's views over the three days up to each day they were active
SELECT user_id, day, sum(views) OVER (
    PARTITION BY user_id ORDER BY day RANGE BETWEEN INTERVAL 2 DAY PRECEDING AND CURRENT ROW
) AS views_3d
FROM int_user_day
"""


@pytest.mark.parametrize("order", ["in time", "late first"])
def test_a_lookback_model_built_by_batches_equals_one_build(tmp_path: Path, order: str) -> None:
    """`lookback: 2` on a 3-day window: a batch recomputes the two days after the days it
    touched (late data changes them) and reads two days before them (the window's first days
    need them); batches in time and the newest first both equal one build."""
    root = sql_project(tmp_path / "p")
    (root / "features" / "user_views_3d.sql").write_text(LOOKBACK_MODEL)
    select = ("--select", "+user_views_3d")
    full = tmp_path / "full.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=full, project=root)
    run_cli("build", *select, warehouse=full, project=root)
    wh = tmp_path / "wh.duckdb"
    batches = split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS)
    for batch in batches if order == "in time" else reversed(batches):
        run_cli("ingest", "events", str(batch), warehouse=wh, project=root)
        run_cli("build", *select, warehouse=wh, project=root)
    assert table_diff(full, wh, "int_user_day") == 0
    assert table_diff(full, wh, "user_views_3d") == 0


def test_an_edited_setting_rebuilds_the_model_and_says_which(tmp_path: Path) -> None:
    """A model's header settings are part of what it computes (helper-94: `lookback` left out of
    the fingerprint went unnoticed): editing one rebuilds the model, and the reason names it."""
    root = sql_project(tmp_path / "p")
    model = root / "features" / "user_views_3d.sql"
    model.write_text(LOOKBACK_MODEL)
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=root)
    run_cli("build", "--select", "+user_views_3d", warehouse=wh, project=root)
    model.write_text(LOOKBACK_MODEL.replace("-- lookback: 2", "-- lookback: 3"))
    out = run_cli("build", "--select", "+user_views_3d", warehouse=wh, project=root)
    assert re.search(r"user_views_3d +incremental_by_time +full .*changed: lookback\b", out), out
    assert re.search(r"int_user_day +incremental_by_time +skip", out), out


def test_an_edited_track_columns_merges_the_history_and_says_so(
    full_build: Path, project: Path, tmp_path: Path
) -> None:
    """`track_columns` is a setting of what the history computes: a column no longer tracked is
    merged in at the next build, named as the reason, with no new data (a mutant leaving it out
    of the fingerprint said 'up to date' and kept tracking it)."""
    edited, wh = edited_copy(project, full_build, tmp_path)
    model = edited / "features" / "user_profile_history.sql"
    tracked = "-- track_columns: rfm_segment, lifecycle_stage, top_category, loyalty_band\n"
    assert model.read_text().count(tracked) == 1
    model.write_text(model.read_text().replace(tracked, tracked.replace(", loyalty_band", "")))
    out = run_cli("build", warehouse=wh, project=edited)
    assert re.search(r"user_profile_history +scd2 +\w+ .*changed: track_columns\b", out), out


def test_an_items_file_after_the_events_reaches_the_interests(tmp_path: Path) -> None:
    """Taobao's events name categories by id only; a catalogue sent after them names each item's
    category path. int_user_interests (by user) reads it through stg_items: new items rows carry
    no user, so the build recomputes every user, as one build of both files does."""
    root = sql_project(tmp_path / "p")
    items = tmp_path / "items.csv"
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT item_id, any_value('taobao.c' || category_id) AS category_path "
            f"FROM read_csv('{TAOBAO}', all_varchar=true) GROUP BY item_id) TO '{items}' (HEADER)"
        )
    select = ("--select", "+int_user_interests")
    full = tmp_path / "full.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=full, project=root)
    run_cli("ingest", "items", str(items), warehouse=full, project=root)
    run_cli("build", *select, warehouse=full, project=root)
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=root)
    run_cli("build", *select, warehouse=wh, project=root)
    run_cli("ingest", "items", str(items), warehouse=wh, project=root)
    run_cli("build", *select, warehouse=wh, project=root)
    with duckdb.connect(str(wh), read_only=True) as con:
        named = con.execute(
            "SELECT count(*) FROM int_user_interests WHERE top_category_1 LIKE 'taobao.c%'"
        ).fetchone()[0]
    assert named > 0
    assert table_diff(full, wh, "int_user_interests") == 0


def test_a_view_shows_the_rows_a_later_as_of_brings(tmp_path: Path) -> None:
    """A view is stated at its build's as-of: when the as-of moves, it is made again, so it reads
    the new rows too (as a table of the same SQL does)."""
    root = tmp_path / "p"
    (root / "sql").mkdir(parents=True)
    sql = "SELECT user_id, count(*) AS events FROM raw_events GROUP BY user_id\n"
    (root / "sql" / "events_view.sql").write_text("-- kind: view\n" + sql)
    (root / "sql" / "events_table.sql").write_text("-- kind: table\n" + sql)
    wh = tmp_path / "wh.duckdb"
    for batch in split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS[:1]):
        run_cli("ingest", "events", str(batch), warehouse=wh, project=root)
        run_cli("build", warehouse=wh, project=root)
    with duckdb.connect(str(wh), read_only=True) as con:
        seen = con.execute("SELECT sum(events) FROM events_view").fetchone()[0]
        loaded = con.execute("SELECT count(*) FROM raw_events").fetchone()[0]
        diff = con.execute(
            "SELECT count(*) FROM (FROM events_view EXCEPT ALL FROM events_table)"
        ).fetchone()[0]
    assert loaded > 90_000 and (seen, diff) == (loaded, 0)


def test_a_late_feed_at_the_same_as_of_gives_the_history_of_one_build(
    project: Path, tmp_path: Path
) -> None:
    """The newest day's file arrives before the two days before it (a feed that was late). Its
    build moves the as-of and records the users whose profile moved without those days; the late
    days, at the same as-of, replace that build's record: a user they bring back to where they
    were keeps one open version, so the history equals that of one build of the three days (no
    version closed and reopened with the same values)."""
    b0, b1, b2, b3, b4 = split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS)
    late = tmp_path / "late.csv"
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * FROM read_csv(['{b2}', '{b3}'], all_varchar=true)) TO '{late}' (HEADER)"
        )
    once, early = tmp_path / "once.duckdb", tmp_path / "early.duckdb"
    for wh, files in ((once, [b2, b3, b4]), (early, [b4, late])):
        for path in (b0, b1):
            run_cli("ingest", "events", str(path), warehouse=wh, project=project)
        run_cli("build", warehouse=wh, project=project)
        for path in files:
            run_cli("ingest", "events", str(path), warehouse=wh, project=project)
            if wh == early or path == b4:
                run_cli("build", warehouse=wh, project=project)
    assert table_diff(once, early, "user_profile_history") == 0


AGE_MODEL = """-- kind: incremental_by_time
-- time_column: day
-- description: each user's events per day, and how many days before the build's as-of that day is
SELECT user_id, CAST(ts AS DATE) AS day, count(*) AS events,
    date_diff('day', CAST(ts AS DATE), CAST(a.as_of AS DATE)) AS days_before_as_of
FROM raw_events CROSS JOIN as_of_time AS a
GROUP BY ALL
"""


def _models_project(tmp_path: Path, **models: str) -> Path:
    """A project of just these models (name=SQL with its header) under tmp_path/p; sql_project
    copies the shipped ones."""
    root = tmp_path / "p"
    (root / "sql").mkdir(parents=True)
    for name, sql in models.items():
        (root / "sql" / f"{name}.sql").write_text(sql)
    return root


def test_a_model_whose_kind_moves_between_view_and_table_is_replaced_each_way(
    tmp_path: Path,
) -> None:
    """Editing a model's kind from view to table and back replaces what is published each time
    (a view is dropped as a view, a table as a table), and the staging copy the gate read is
    gone: the warehouse shows the model under its own name only. Taobao, all of it."""
    sql = "SELECT user_id, count(*) AS events FROM raw_events GROUP BY user_id\n"
    root = _models_project(tmp_path, per_user="-- kind: view\n" + sql)
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=root)
    for kind in ("view", "table", "view"):
        (root / "sql" / "per_user.sql").write_text(f"-- kind: {kind}\n" + sql)
        run_cli("build", warehouse=wh, project=root)
        with duckdb.connect(str(wh), read_only=True) as con:
            shown = con.execute(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_catalog = current_database() AND table_schema = 'main' "
                "AND NOT starts_with(table_name, 'raw_') AND table_name <> 'quarantine'"
            ).fetchall()
            got = con.execute("SELECT count(*), sum(events) FROM per_user").fetchone()
            want = con.execute(
                "SELECT count(DISTINCT user_id), count(*) FROM raw_events"
            ).fetchone()
        assert shown == [("per_user", "VIEW" if kind == "view" else "BASE TABLE")], kind
        assert got == want and want[0] > 900, kind


def test_an_incremental_model_reading_the_as_of_is_rebuilt_when_it_moves(tmp_path: Path) -> None:
    """A by-time model that reads `as_of_time` holds the as-of in every row, also in the days no
    batch touched: when the as-of moves, all of them are rebuilt (a slice of the new days would
    leave the others stated at the old as-of). Taobao in two time batches; one build of all of it
    is the reference."""
    root = _models_project(tmp_path, user_day_age=AGE_MODEL)
    full, wh = tmp_path / "full.duckdb", tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=full, project=root)
    run_cli("build", warehouse=full, project=root)
    for batch in split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS[-1:]):
        run_cli("ingest", "events", str(batch), warehouse=wh, project=root)
        out = run_cli("build", warehouse=wh, project=root)
    assert re.search(r"user_day_age +incremental_by_time +full .*reads as_of_time", out), out
    assert table_diff(full, wh, "user_day_age") == 0


def test_a_late_batch_of_more_separate_days_than_ranges_kept_equals_one_build(
    tmp_path: Path,
) -> None:
    """A late orders export touching more separate days than a slice keeps as ranges
    (`plan.MAX_INTERVALS`, 32): the days are recomputed as one covering range, which must reach
    the last of them. CDNOW's real purchases (dates only, 1997-98): every fourth customer's
    purchases on even days arrive late."""
    from datetime import date

    from conftest import cdnow_lines

    rows = cdnow_lines()[:4000]

    def late(r: list[str]) -> bool:
        day = date(int(r[1][:4]), int(r[1][4:6]), int(r[1][6:]))
        return int(r[0]) % 4 == 0 and day.toordinal() % 2 == 0

    def orders(path: Path, lines: list[list[str]]) -> Path:
        path.write_text("customer_id,date,quantity,dollar_value\n" + "".join(
            ",".join(r) + "\n" for r in lines
        ))  # fmt: skip
        return path

    held = [r for r in rows if late(r)]
    assert len({r[1] for r in held}) > 40  # separate days: no two are neighbours
    root = sql_project(tmp_path / "p")
    args = ("--event-type", "purchase", "--ts-format", "%Y%m%d", "--map", "amount=dollar_value")
    select = ("--select", "+int_user_day")
    full, wh = tmp_path / "full.duckdb", tmp_path / "wh.duckdb"
    every = orders(tmp_path / "all.csv", rows)
    run_cli("ingest", "events", str(every), *args, warehouse=full, project=root)
    run_cli("build", *select, warehouse=full, project=root)
    on_time = orders(tmp_path / "on_time.csv", [r for r in rows if not late(r)])
    run_cli("ingest", "events", str(on_time), *args, warehouse=wh, project=root)
    run_cli("build", *select, warehouse=wh, project=root)
    late_ones = orders(tmp_path / "late.csv", held)
    run_cli("ingest", "events", str(late_ones), *args, warehouse=wh, project=root)
    out = run_cli("build", *select, warehouse=wh, project=root)
    assert re.search(r"int_user_day +incremental_by_time +slice", out), out
    assert table_diff(full, wh, "int_user_day") == 0


def test_a_history_whose_key_changes_is_set_aside_never_over_another(tmp_path: Path) -> None:
    """An edit a history cannot keep its versions through (here: a new key) starts a new history;
    the old one, with every version, is set aside in `_profiler` as the build says, never dropped
    (a history cannot be rebuilt from the data). Taobao in two time batches, a small history of
    each user's purchases."""
    root = tmp_path / "p"
    (root / "sql").mkdir(parents=True)
    model = root / "sql" / "buyers_history.sql"
    head = "-- kind: scd2\n-- unique_key: {key}\n-- track_columns: buys\n"
    body = "SELECT user_id AS {key}, count(*) FILTER (WHERE event_type = 'purchase') AS buys FROM raw_events GROUP BY ALL\n"
    model.write_text(head.format(key="user_id") + body.format(key="user_id"))
    wh = tmp_path / "wh.duckdb"
    for batch in split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS[-1:]):
        run_cli("ingest", "events", str(batch), warehouse=wh, project=root)
        run_cli("build", warehouse=wh, project=root)
    with duckdb.connect(str(wh), read_only=True) as con:
        before = sorted(con.execute("FROM buyers_history").fetchall())
    assert len({r[2] for r in before}) == 2  # two builds' versions
    model.write_text(head.format(key="customer") + body.format(key="customer"))
    out = " ".join(run_cli("build", warehouse=wh, project=root).split())
    said = re.search(
        r"a new history starts: its key customer is new; the old one is kept as (_profiler\.\w+)",
        out,
    )
    assert said, out
    with duckdb.connect(str(wh), read_only=True) as con:
        assert sorted(con.execute(f"FROM {said.group(1)}").fetchall()) == before
        assert con.execute("SELECT count(DISTINCT valid_from) FROM buyers_history").fetchone() == (
            1,
        )
        mistaken = sorted(con.execute("FROM buyers_history").fetchall())
    # the edit was a mistake: put back at the same as-of, the mistaken history is set aside
    # too, beside the first (helper-100: over it, and the two builds' versions were gone)
    model.write_text(head.format(key="user_id") + body.format(key="user_id"))
    out = " ".join(run_cli("build", warehouse=wh, project=root).split())
    again = re.search(
        r"a new history starts: its key user_id is new; the old one is kept as (_profiler\.\w+)",
        out,
    )
    assert again and again.group(1) != said.group(1), out
    with duckdb.connect(str(wh), read_only=True) as con:
        assert sorted(con.execute(f"FROM {said.group(1)}").fetchall()) == before
        assert sorted(con.execute(f"FROM {again.group(1)}").fetchall()) == mistaken
        restored = sorted(con.execute("FROM buyers_history").fetchall())
    # and edited once more: a third history set aside beside the other two, each kept
    model.write_text(head.format(key="customer") + body.format(key="customer"))
    out = " ".join(run_cli("build", warehouse=wh, project=root).split())
    third = re.search(r"the old one is kept as (_profiler\.\w+)", out)
    assert third and third.group(1) not in (said.group(1), again.group(1)), out
    with duckdb.connect(str(wh), read_only=True) as con:
        assert sorted(con.execute(f"FROM {third.group(1)}").fetchall()) == restored
        assert sorted(con.execute(f"FROM {again.group(1)}").fetchall()) == mistaken


def test_a_catalogue_after_the_events_reaches_the_day_rollup(tmp_path: Path) -> None:
    """REES46's events sent without brand and price, then the catalogue that has them: the day
    rollup takes prices and brands from stg_items, and items rows carry no time, so the items
    batch rebuilds it whole, as one build of both files does (a slice of the days of new events
    finds none, and would leave every day without its spend)."""
    root = sql_project(tmp_path / "p")
    events, items = tmp_path / "events.csv", tmp_path / "items.csv"
    with duckdb.connect() as con:
        src = f"read_csv('{REES46}', all_varchar=true)"
        con.execute(
            f"COPY (SELECT event_time, event_type, product_id, category_id, user_id, user_session "
            f"FROM {src}) TO '{events}' (HEADER)"
        )
        con.execute(
            f"COPY (SELECT product_id, any_value(category_code) AS category_code, any_value(brand) "
            f"AS brand, any_value(price) AS price FROM {src} GROUP BY product_id) TO '{items}' (HEADER)"
        )
    select = ("--select", "+int_user_day")
    full, wh = tmp_path / "full.duckdb", tmp_path / "wh.duckdb"
    for source, path in (("events", events), ("items", items)):
        run_cli("ingest", source, str(path), warehouse=full, project=root)
    run_cli("build", *select, warehouse=full, project=root)
    for source, path in (("events", events), ("items", items)):
        run_cli("ingest", source, str(path), warehouse=wh, project=root)
        out = run_cli("build", *select, warehouse=wh, project=root)
    assert re.search(r"int_user_day +incremental_by_time +full .*new data in raw_items", out), out
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT sum(purchase_amount) FROM int_user_day").fetchone()[0] > 0
    assert table_diff(full, wh, "int_user_day") == 0


def test_a_full_refresh_rebuilds_a_table_changed_outside_profiler(tmp_path: Path) -> None:
    """`--full-refresh` rebuilds every incremental model from the raw rows, whatever its table
    holds now (rows deleted by hand here: without new data a build leaves them as they are)."""
    root = _models_project(tmp_path, user_day_events=USER_DAY_EVENTS)
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=root)
    run_cli("build", warehouse=wh, project=root)
    reference = tmp_path / "reference.duckdb"
    shutil.copy(wh, reference)
    with duckdb.connect(str(wh)) as con:
        con.execute(
            "DELETE FROM user_day_events WHERE day = (SELECT max(day) FROM user_day_events)"
        )
    assert table_diff(reference, wh, "user_day_events") > 0
    assert "up to date" in run_cli("build", warehouse=wh, project=root)
    out = run_cli("build", "--full-refresh", warehouse=wh, project=root)
    assert re.search(r"user_day_events +incremental_by_time +full .*--full-refresh", out), out
    assert table_diff(reference, wh, "user_day_events") == 0


def test_a_slice_its_table_cannot_take_fails_the_model_and_leaves_nothing_staged(
    tmp_path: Path,
) -> None:
    """A column of a published incremental table renamed by hand: the next slice cannot be
    inserted, so the model fails in one line that says so, its table stays as it was, and its
    staged slice is dropped with the failure (the warehouse shows no staging table);
    `--full-refresh` repairs it (the line said DuckDB's Binder Error alone).
    Taobao in two time batches."""
    root = _models_project(tmp_path, user_day_events=USER_DAY_EVENTS)
    wh = tmp_path / "wh.duckdb"
    first, second = split_csv_by_time(TAOBAO, tmp_path / "batches", [1512100000])
    run_cli("ingest", "events", str(first), warehouse=wh, project=root)
    run_cli("build", warehouse=wh, project=root)
    with duckdb.connect(str(wh)) as con:
        con.execute("ALTER TABLE user_day_events RENAME COLUMN events TO n_events")
        before = sorted(con.execute("FROM user_day_events").fetchall())
    run_cli("ingest", "events", str(second), warehouse=wh, project=root)
    out = run_cli("build", warehouse=wh, project=root, ok=False)
    assert re.search(r"error +user_day_events .*\n.*does not have a column .*events", out), out
    assert (
        "the published user_day_events no longer takes the rows its SQL makes (changed by "
        "hand?); `profiler build --full-refresh --select user_day_events` rebuilds it" in out
    ), out
    with duckdb.connect(str(wh), read_only=True) as con:
        assert sorted(con.execute("FROM user_day_events").fetchall()) == before
        staged = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_name LIKE '%user_day_events' "
            "AND table_name <> 'user_day_events'"
        ).fetchall()
    assert staged == []
    run_cli("build", "--full-refresh", warehouse=wh, project=root)
    with duckdb.connect(str(wh), read_only=True) as con:
        got = con.execute("SELECT sum(events) FROM user_day_events").fetchone()[0]
        assert got == con.execute("SELECT count(*) FROM raw_events").fetchone()[0] > 90_000


BUYS_HISTORY = """-- kind: scd2
-- unique_key: user_id
-- track_columns: buys
SELECT user_id, count(*) FILTER (WHERE event_type = 'purchase') AS buys FROM raw_events GROUP BY ALL
"""


def _buys_history(tmp_path: Path) -> tuple[Path, Path]:
    """A project of one small history (each user's purchases), and a warehouse of Taobao in two
    time batches, built after each: versions of 12-01 and 12-03."""
    root = _models_project(tmp_path, buys_history=BUYS_HISTORY)
    wh = tmp_path / "wh.duckdb"
    for batch in split_csv_by_time(TAOBAO, tmp_path / "batches", [1512100000]):
        run_cli("ingest", "events", str(batch), warehouse=wh, project=root)
        run_cli("build", warehouse=wh, project=root)
    return root, wh


def _rows(wh: Path, table: str) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return sorted(con.execute(f"FROM {table}").fetchall(), key=repr)


def test_looks_at_the_past_one_after_another_keep_the_history(tmp_path: Path) -> None:
    """Two builds --as-of before the history's newest change, the second later than the first:
    both are looks at the past and leave it as it is (the history keeps the as-of of its newest
    change, not the look's: the second look, later than the first's as-of, would otherwise merge
    at 12-01 and take back every version stamped after it)."""
    root, wh = _buys_history(tmp_path)
    before = _rows(wh, "buys_history")
    assert len({r[2] for r in before}) == 2
    for as_of in ("2017-11-30", "2017-12-01"):
        out = run_cli("build", "--as-of", as_of, warehouse=wh, project=root)
        assert re.search(r"buys_history +scd2 +skip .*history's newest change", out), out
        assert _rows(wh, "buys_history") == before


def test_a_full_refresh_keeps_the_history(tmp_path: Path) -> None:
    """`--full-refresh` rebuilds every model from the raw rows but a history, which the raw rows
    cannot give back (README: kept by --full-refresh, as a dbt snapshot); it follows the rules of
    any build, so one with an as-of in the history's past leaves it as it is (planned as a full
    build, it had merged as of then, and taken back every version stamped after it)."""
    root, wh = _buys_history(tmp_path)
    before = _rows(wh, "buys_history")
    assert len({r[2] for r in before}) == 2
    for as_of in (("--as-of", "2017-11-30"), ()):
        out = run_cli("build", "--full-refresh", *as_of, warehouse=wh, project=root)
        assert _rows(wh, "buys_history") == before
        assert re.search(r"buys_history +scd2 +skip", out), out


def test_a_history_merge_says_how_many_users_changed_came_and_went(tmp_path: Path) -> None:
    """The line under a history's build counts users against the last version: changed (an open
    version closed and a new one opened), new (a first version), gone (closed, none opened). Here
    counted again from the table: Taobao in two files, the first the events before 12-01 of four
    users in five, the second the rest, so its build meets users new to the history too."""
    root = _models_project(tmp_path, buys_history=BUYS_HISTORY)
    wh = tmp_path / "wh.duckdb"
    late = "CAST(user_id AS BIGINT) % 5 = 0 OR CAST(ts AS BIGINT) >= 1512100000"
    for batch in _taobao_split(tmp_path, late):
        run_cli("ingest", "events", str(batch), warehouse=wh, project=root)
        out = " ".join(run_cli("build", warehouse=wh, project=root).split())
    with duckdb.connect(str(wh), read_only=True) as con:
        changed, new, gone = con.execute(
            "WITH v AS (SELECT user_id, valid_from, is_current, valid_to, "
            "valid_from = (SELECT max(valid_from) FROM buys_history) AS opened, "
            "count(*) OVER (PARTITION BY user_id) AS versions FROM buys_history) "
            "SELECT count(*) FILTER (WHERE opened AND versions > 1), "
            "count(*) FILTER (WHERE opened AND versions = 1), "
            "count(DISTINCT user_id) FILTER (WHERE NOT is_current AND user_id NOT IN "
            "(SELECT user_id FROM v WHERE is_current)) FROM v"
        ).fetchone()
    assert changed > 100 and new > 0, (changed, new)
    assert f"buys_history: {changed:,} changed, {new:,} new, {gone:,} gone since" in out, out


def test_a_history_opens_a_version_when_any_one_tracked_column_changes(tmp_path: Path) -> None:
    """Each tracked column counts on its own: a user whose purchases moved but whose carts did not
    (or the other way round) gets a new version too. Taobao in two time batches, a history of
    each user's purchases and carts; which users moved is counted again from the raw events."""
    head = "-- kind: scd2\n-- unique_key: user_id\n-- track_columns: buys, carts\n"
    root = _models_project(
        tmp_path,
        basket_history=head + "SELECT user_id, "
        "count(*) FILTER (WHERE event_type = 'purchase') AS buys, "
        "count(*) FILTER (WHERE event_type = 'cart') AS carts FROM raw_events GROUP BY ALL\n",
    )
    wh = tmp_path / "wh.duckdb"
    cut = 1512100000
    for batch in split_csv_by_time(TAOBAO, tmp_path / "batches", [cut]):
        run_cli("ingest", "events", str(batch), warehouse=wh, project=root)
        run_cli("build", warehouse=wh, project=root)
    with duckdb.connect() as con:
        moved = con.execute(
            "SELECT count(*) FILTER (WHERE late_buys > 0 AND late_carts = 0), "
            "count(*) FILTER (WHERE late_buys = 0 AND late_carts > 0), "
            "list(user_id) FILTER (WHERE early AND (late_buys > 0 OR late_carts > 0)) "
            "FROM (SELECT user_id, bool_or(CAST(ts AS BIGINT) < ?) AS early, "
            "count(*) FILTER (WHERE CAST(ts AS BIGINT) >= ? AND behavior_type = 'buy') AS late_buys, "
            "count(*) FILTER (WHERE CAST(ts AS BIGINT) >= ? AND behavior_type = 'cart') AS late_carts "
            f"FROM read_csv('{TAOBAO}', all_varchar = true) GROUP BY user_id)",
            [cut, cut, cut],
        ).fetchone()
    only_buys, only_carts, expected = moved
    assert only_buys > 20 and only_carts > 20, moved  # each column alone moves some users
    with duckdb.connect(str(wh), read_only=True) as con:
        got = con.execute(
            "SELECT list(user_id) FROM (SELECT user_id FROM basket_history GROUP BY user_id "
            "HAVING count(*) = 2)"
        ).fetchone()[0]
    assert sorted(got) == sorted(expected)


def test_a_history_whose_select_repeats_a_key_is_not_published(tmp_path: Path) -> None:
    """A history's SELECT is the current state, one row per key: grouped by one more column
    (event_type), it opened several versions per user at once and the next build closed some of
    them for good and said more "changed" than it had rows. The model fails, naming a key that
    repeats, and the history stays as it was. Taobao in two time batches, then the edit."""
    root, wh = _buys_history(tmp_path)
    before = _rows(wh, "buys_history")
    model = root / "sql" / "buys_history.sql"
    model.write_text(model.read_text().replace("AS buys FROM raw_events GROUP BY ALL", "AS buys, event_type FROM raw_events GROUP BY ALL"))  # fmt: skip
    with duckdb.connect(str(wh), read_only=True) as con:
        (users,) = con.execute("SELECT count(DISTINCT user_id) FROM raw_events").fetchone()
    out = " ".join(run_cli("build", warehouse=wh, project=root, ok=False).split())
    assert re.search(r"unique_key user_id is not unique: ([\d,]+) key\(s\) repeat", out), out
    assert (
        "an scd2 model's SELECT gives the current state" in out and "nothing was published" in out
    )
    assert users > 900 and _rows(wh, "buys_history") == before


def _current_buys(wh: Path) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        rows = con.execute(
            "SELECT user_id, buys FROM buys_history WHERE is_current ORDER BY ALL"
        ).fetchall()
    assert rows, wh  # a comparison of two empty histories proves nothing
    return rows


def test_a_history_of_raw_rows_merges_when_only_the_as_of_moves(tmp_path: Path) -> None:
    """A history that reads raw_events alone (no parent model whose new version would say the
    as-of moved), built --as-of 11-30 on all of Taobao, then at the data's as-of: no batch is new
    and it has no parent, yet the as-of moved, so it merges, and its current versions are those of
    a build of the data at once (skipped as up to date, they stayed the 11-30 counts)."""
    root = _models_project(tmp_path, buys_history=BUYS_HISTORY)
    wh, once = tmp_path / "wh.duckdb", tmp_path / "once.duckdb"
    for w in (wh, once):
        run_cli("ingest", "events", str(TAOBAO), warehouse=w, project=root)
    run_cli("build", "--as-of", "2017-11-30", warehouse=wh, project=root)
    out = run_cli("build", warehouse=wh, project=root)
    assert re.search(r"buys_history +scd2 +slice .*merge the current state", out), out
    run_cli("build", warehouse=once, project=root)
    assert _current_buys(wh) == _current_buys(once)


def test_a_late_batch_left_by_a_look_at_the_past_is_merged_by_the_next_build(
    tmp_path: Path,
) -> None:
    """A history of raw rows, built on Taobao from 11-30 on; then the days before arrive late (the
    as-of stays) and the first build is a look at the past (`--as-of 11-29`), which leaves the
    history as it is: it has not taken that batch in, so the next build at the data's as-of
    merges it (with the look recorded as having taken it in, it said "up to date" and kept
    counts without the late days)."""
    root = _models_project(tmp_path, buys_history=BUYS_HISTORY)
    wh, once = tmp_path / "wh.duckdb", tmp_path / "once.duckdb"
    before, after = split_csv_by_time(TAOBAO, tmp_path / "b", [1512000001])  # 11-30 00:00:00
    run_cli("ingest", "events", str(after), warehouse=wh, project=root)
    run_cli("build", warehouse=wh, project=root)
    run_cli("ingest", "events", str(before), warehouse=wh, project=root)  # late: the as-of stays
    out = run_cli("build", "--as-of", "2017-11-29", warehouse=wh, project=root)
    assert re.search(r"buys_history +scd2 +skip", out), out
    out = run_cli("build", warehouse=wh, project=root)
    assert re.search(r"buys_history +scd2 +slice", out), out
    run_cli("ingest", "events", str(TAOBAO), warehouse=once, project=root)
    run_cli("build", warehouse=once, project=root)
    assert _current_buys(wh) == _current_buys(once)


def test_a_history_edited_with_its_description_takes_the_edit_after_a_look_at_the_past(
    tmp_path: Path,
) -> None:
    """The history's SQL and its description edited together, then a look at the past: the look
    leaves the history as it is, though it writes its state (the description is new), and the
    next build at the newest as-of still merges the edit, so the current versions count what
    the SQL counts now (with the edited SQL recorded at the look, that build found the history
    up to date and it kept the old counts until new data came)."""
    root, wh = _buys_history(tmp_path)
    model = root / "sql" / "buys_history.sql"
    model.write_text(
        BUYS_HISTORY.replace("-- track_columns", "-- description: buys and carts\n-- track_columns")
        .replace("event_type = 'purchase'", "event_type IN ('purchase', 'cart')")
    )  # fmt: skip
    out = run_cli("build", "--as-of", "2017-11-30", warehouse=wh, project=root)
    assert re.search(r"buys_history +scd2 +skip .*history's newest change", out), out
    out = run_cli("build", warehouse=wh, project=root)
    assert re.search(r"buys_history +scd2 +slice .*changed: its SQL", out), out
    with duckdb.connect(str(wh), read_only=True) as con:
        differ = con.execute(
            "SELECT count(*) FROM buys_history AS h JOIN (SELECT user_id, count(*) FILTER "
            "(WHERE event_type IN ('purchase', 'cart')) AS n FROM raw_events GROUP BY ALL) AS r "
            "USING (user_id) WHERE h.is_current AND h.buys <> r.n"
        ).fetchone()[0]
    assert differ == 0


def test_two_replaces_before_a_build_take_back_the_history_from_the_earlier(
    tmp_path: Path,
) -> None:
    """Two batches corrected (`--replace-batch`) before the next build, the later day first: the
    history's changes are taken back from the earlier one's first time (the earliest mark wins),
    so it equals a history built on the corrected data from the start. Taobao in five time
    batches, a build after each; the corrected batches lose their purchases."""
    root = _models_project(tmp_path, buys_history=BUYS_HISTORY)
    batches = split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS)
    fixed = {}
    for n in (2, 4):  # batch ids: 1-based, in ingest order
        lines = batches[n - 1].read_text().splitlines(keepends=True)
        fixed[n] = tmp_path / f"batch{n}_fixed.csv"
        fixed[n].write_text("".join(line for line in lines if ",buy," not in line))
    daily, reference = tmp_path / "daily.duckdb", tmp_path / "reference.duckdb"
    for batch in batches:
        run_cli("ingest", "events", str(batch), warehouse=daily, project=root)
        run_cli("build", warehouse=daily, project=root)
    run_cli("ingest", "events", str(batches[0]), warehouse=reference, project=root)
    run_cli("build", warehouse=reference, project=root)
    for batch in (fixed[2], batches[2], fixed[4], batches[4]):
        run_cli("ingest", "events", str(batch), warehouse=reference, project=root)
    run_cli("build", warehouse=reference, project=root)
    for n in (4, 2):
        resend = ("ingest", "events", str(fixed[n]), "--replace-batch", str(n))
        run_cli(*resend, warehouse=daily, project=root)
    run_cli("build", warehouse=daily, project=root)
    assert _rows(daily, "buys_history") == _rows(reference, "buys_history")


def _buys_batches(tmp_path: Path) -> tuple[Path, list[Path], Path]:
    """A project of the buys history alone, Taobao in time batches, and the second batch
    corrected: its purchases taken out (a wrong export, sent again with `--replace-batch 2`)."""
    root = _models_project(tmp_path, buys_history=BUYS_HISTORY)
    batches = split_csv_by_time(TAOBAO, tmp_path / "batches", CUTS)
    lines = batches[1].read_text().splitlines(keepends=True)
    fixed = tmp_path / "batch2_fixed.csv"
    fixed.write_text("".join(line for line in lines if ",buy," not in line))
    return root, batches, fixed


def test_a_replace_after_a_build_in_the_future_takes_back_from_the_replaced_batch(
    tmp_path: Path,
) -> None:
    """Two daily builds, a build `--as-of` in the future, then the second day corrected
    (`--replace-batch`) and the third day's batch: two reasons to take the history back (built
    ahead of its data: after the newest data it had seen; a replaced load: from the corrected
    batch's first time), and the earlier one wins, so the versions that saw the wrong second
    day go and the history equals one built on the corrected data. Taobao in time batches, a
    small history of each user's purchases; the corrected batch loses its purchases."""
    root, batches, fixed = _buys_batches(tmp_path)
    daily, reference = tmp_path / "daily.duckdb", tmp_path / "reference.duckdb"
    for batch in batches[:2]:
        run_cli("ingest", "events", str(batch), warehouse=daily, project=root)
        run_cli("build", warehouse=daily, project=root)
    run_cli("build", "--as-of", "2030-01-01", warehouse=daily, project=root)
    resend = ("ingest", "events", str(fixed), "--replace-batch", "2")
    run_cli(*resend, warehouse=daily, project=root)
    run_cli("ingest", "events", str(batches[2]), warehouse=daily, project=root)
    run_cli("build", warehouse=daily, project=root)
    run_cli("ingest", "events", str(batches[0]), warehouse=reference, project=root)
    run_cli("build", warehouse=reference, project=root)
    for batch in (fixed, batches[2]):
        run_cli("ingest", "events", str(batch), warehouse=reference, project=root)
    run_cli("build", warehouse=reference, project=root)
    assert len({r[2] for r in _rows(reference, "buys_history")}) == 2
    assert _rows(daily, "buys_history") == _rows(reference, "buys_history")


def test_a_stop_right_after_a_history_merge_past_a_replace_keeps_what_it_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Daily builds, the second day corrected (`--replace-batch`), and the build that takes the
    history back past it stopped (Ctrl-C, SIGTERM) right after the history published: the stop
    says `profiler build` finishes the job, and the next build, a day later, keeps the versions
    the stopped build recorded. (The replace's mark was cleared after the publish, so it stayed:
    that next build took the history back past it again, and the corrected day's 364 versions
    were gone.) Taobao in time batches, a small history of each user's purchases."""
    import profiler.build_model

    root, batches, fixed = _buys_batches(tmp_path)
    wh = tmp_path / "wh.duckdb"
    for batch in batches[:3]:
        run_cli("ingest", "events", str(batch), warehouse=wh, project=root)
        run_cli("build", warehouse=wh, project=root)
    resend = ("ingest", "events", str(fixed), "--replace-batch", "2")
    run_cli(*resend, warehouse=wh, project=root)
    publish = profiler.build_model.publish

    def published_then_stopped(*args, **kwargs):
        publish(*args, **kwargs)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(profiler.build_model, "publish", published_then_stopped)
        out = run_cli("build", warehouse=wh, project=root, ok=False)
    assert "published before the stop (buys_history)" in out, out
    with duckdb.connect(str(wh), read_only=True) as con:
        (merged_at,) = con.execute("SELECT max(valid_from) FROM buys_history").fetchone()
    recorded = [r[:3] for r in _rows(wh, "buys_history") if r[2] == merged_at]
    assert len(recorded) > 100
    run_cli("ingest", "events", str(batches[3]), warehouse=wh, project=root)
    run_cli("build", warehouse=wh, project=root)
    assert [r[:3] for r in _rows(wh, "buys_history") if r[2] == merged_at] == recorded


def test_a_history_that_reads_a_raw_table_takes_back_a_replaced_load(tmp_path: Path) -> None:
    """A history of each user's city straight from raw_users, a users file read wrongly (its
    city and region swapped), built, then sent again read the right way (`--replace`): no batch
    is new, no parent moved, and the as-of stays, yet the history takes the wrong reading back
    and its current rows are the corrected ones (helper-100: "up to date", the swapped cities
    kept as current)."""
    root = tmp_path / "p"
    (root / "sql").mkdir(parents=True)
    (root / "sql" / "user_city_history.sql").write_text(
        "-- kind: scd2\n-- unique_key: user_id\n-- track_columns: city, region\n"
        "SELECT user_id, any_value(city) AS city, any_value(region) AS region FROM raw_users "
        "GROUP BY user_id\n"
    )
    wh = tmp_path / "wh.duckdb"
    events, users = tmp_path / "events.csv", tmp_path / "users.csv"
    events.write_text("user_id,event_type,ts,item_id\nu1,view,2020-01-01 10:00:00,i\n")
    users.write_text("user_id,town,county\nu1,Oldtown,North\nu2,Elsewhere,South\n")
    run_cli("ingest", "events", str(events), warehouse=wh, project=root)
    wrong = ("--map", "city=county", "--map", "region=town")
    run_cli("ingest", "users", str(users), *wrong, warehouse=wh, project=root)
    run_cli("build", warehouse=wh, project=root)
    right = ("--map", "city=town", "--map", "region=county", "--replace")
    run_cli("ingest", "users", str(users), *right, warehouse=wh, project=root)
    out = run_cli("build", warehouse=wh, project=root)
    assert re.search(r"user_city_history +scd2 +slice", out), out
    assert _rows(wh, "user_city_history") == [
        ("u1", "Oldtown", "North", datetime(2020, 1, 1, 10), None, True),
        ("u2", "Elsewhere", "South", datetime(2020, 1, 1, 10), None, True),
    ]
    assert "up to date" in run_cli("build", warehouse=wh, project=root)  # the mark is gone


USER_DAY_EVENTS = (
    "-- kind: incremental_by_time\n-- time_column: day\n"
    "SELECT user_id, CAST(ts AS DATE) AS day, count(*) AS events FROM raw_events GROUP BY ALL\n"
)


def test_a_build_as_of_an_earlier_time_drops_the_days_after_it(tmp_path: Path) -> None:
    """A by-time model built on all of Taobao, then `--as-of` an earlier time: no batch is new
    and no new row lies between the two as-ofs, yet the days after the new as-of must leave (it
    equals a build of only the rows up to then), and moving the as-of forward again brings them
    back."""
    root = _models_project(tmp_path, user_day_events=USER_DAY_EVENTS)
    wh, past = tmp_path / "wh.duckdb", tmp_path / "past.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=root)
    run_cli("build", warehouse=wh, project=root)
    reference = tmp_path / "reference.duckdb"
    shutil.copy(wh, reference)
    before = split_csv_by_time(TAOBAO, tmp_path / "b", [1512000001])[0]  # up to 11-30 00:00:00
    run_cli("ingest", "events", str(before), warehouse=past, project=root)
    run_cli("build", "--as-of", "2017-11-30T00:00:00", warehouse=past, project=root)
    out = run_cli("build", "--as-of", "2017-11-30T00:00:00", warehouse=wh, project=root)
    assert re.search(r"user_day_events +incremental_by_time +full .*as-of moved back", out), out
    assert table_diff(past, wh, "user_day_events") == 0
    run_cli("build", warehouse=wh, project=root)
    assert table_diff(reference, wh, "user_day_events") == 0


USER_EVENTS = (
    "-- kind: incremental_by_key\n-- unique_key: user_id\n"
    "SELECT user_id, count(*) AS events, max(ts) AS last_ts FROM raw_events GROUP BY ALL\n"
)


def test_an_event_of_the_as_ofs_second_in_a_later_file_reaches_its_day_and_its_user(
    tmp_path: Path,
) -> None:
    """Taobao up to 2017-12-03 15:56:13, when two users viewed an item in the same second; one of
    the two events comes in a later file (a watched folder's next one). The build's as-of is that
    second both times, so it does not move: the late event lies exactly at the as-of and must
    touch its day and its user like any new row. Both incremental kinds equal one build of all."""
    root = _models_project(tmp_path, user_day_events=USER_DAY_EVENTS, user_events=USER_EVENTS)
    wh, once = tmp_path / "wh.duckdb", tmp_path / "once.duckdb"
    second, late_user = 1512316573, 1001396  # the two events: users 1001024 and 1001396
    files = {name: tmp_path / f"{name}.csv" for name in ("first", "late", "all")}
    where = {
        "first": f"ts <= {second} AND NOT (ts = {second} AND user_id = {late_user})",
        "late": f"ts = {second} AND user_id = {late_user}",
        "all": f"ts <= {second}",
    }
    with duckdb.connect() as con:
        for name, path in files.items():
            con.execute(
                f"COPY (SELECT * FROM read_csv('{TAOBAO}') WHERE {where[name]}) "
                f"TO '{path}' (HEADER, DELIMITER ',')"
            )
    for name in ("first", "late"):
        run_cli("ingest", "events", str(files[name]), warehouse=wh, project=root)
        out = run_cli("build", warehouse=wh, project=root)
        assert "as of 2017-12-03T15:56:13" in out, out
    # the slices say they read the one new row (not every row loaded so far)
    assert re.search(r"user_day_events +incremental_by_time +slice +1 raw in", out), out
    assert re.search(r"user_events +incremental_by_key +slice +1 raw in", out), out
    run_cli("ingest", "events", str(files["all"]), warehouse=once, project=root)
    run_cli("build", warehouse=once, project=root)
    assert table_diff(once, wh, "user_day_events") == 0
    assert table_diff(once, wh, "user_events") == 0


def _refused_before_built(root: Path, model: Path, wh: Path, events: Path) -> str:
    """Ingest `events` and build: the build fails, leaves no table of `model`, and says why (the
    output, stripped)."""
    run_cli("ingest", "events", str(events), warehouse=wh, project=root)
    out = run_cli("build", warehouse=wh, project=root, ok=False)
    with duckdb.connect(str(wh), read_only=True) as con:
        assert not con.execute(
            "SELECT * FROM duckdb_tables() WHERE table_name = ?", [model.stem]
        ).fetchall()
    return out.strip()


def test_a_by_key_model_ranking_across_keys_is_refused_before_anything_is_built(
    tmp_path: Path,
) -> None:
    """helper-116: an incremental_by_key model with a percent_rank over all users built, and after
    one Taobao batch 926 of its 928 users' ranks differed from a full build, exit 0: the slice
    reads the touched users alone. The build refuses it in one line; partitioned by the key, it
    builds."""
    root = tmp_path / "p"
    (root / "sql").mkdir(parents=True)
    model = root / "sql" / "ranked.sql"
    header = "-- kind: incremental_by_key\n-- unique_key: user_id\n"
    model.write_text(
        header + "SELECT user_id, count(*) AS events,\n"
        "    percent_rank() OVER (ORDER BY count(*), user_id) AS pr FROM raw_events GROUP BY ALL\n"
    )
    wh = tmp_path / "wh.duckdb"
    out = _refused_before_built(root, model, wh, TAOBAO)
    assert out == (
        f"error: {model}:4: PERCENT_RANK() is computed across user_id values (its window is not "
        "partitioned by user_id); an incremental_by_key build reads only the rows of the user_id "
        "values new data touched, so it would differ from a full build. Partition it by user_id, "
        "or make the model a `table`"
    ), out
    model.write_text(
        header
        + "SELECT user_id, ts, row_number() OVER (PARTITION BY user_id ORDER BY ts, item_id, "
        "event_type) AS nth FROM raw_events QUALIFY nth = 1\n"
    )
    assert "1 model(s) built" in run_cli("build", warehouse=wh, project=root)


def test_a_by_key_model_with_a_composite_key_may_look_across_its_other_key_columns(
    tmp_path: Path,
) -> None:
    """The slice reads the touched values of the first key column alone (a user's every day), so
    a by-key model keyed (user_id, day) whose lag runs over each user's days is key-local: it
    built at 696aa39 and a build in two Taobao batches equals one build of all; the window check
    refused it (`not partitioned by user_id, day`), and its advice would have made every lag NULL."""
    root = _models_project(
        tmp_path,
        user_day_lag="-- kind: incremental_by_key\n-- unique_key: user_id, day\n"
        "SELECT user_id, day, events,\n"
        "    lag(events) OVER (PARTITION BY user_id ORDER BY day) AS prev_events\n"
        "FROM (SELECT user_id, CAST(ts AS DATE) AS day, count(*) AS events FROM raw_events "
        "GROUP BY ALL)\n",
    )
    wh, once = tmp_path / "wh.duckdb", tmp_path / "once.duckdb"
    for part in split_csv_by_time(TAOBAO, tmp_path / "b", [1512316000]):
        run_cli("ingest", "events", str(part), warehouse=wh, project=root)
        run_cli("build", warehouse=wh, project=root)
    run_cli("ingest", "events", str(TAOBAO), warehouse=once, project=root)
    run_cli("build", warehouse=once, project=root)
    assert table_diff(once, wh, "user_day_lag") == 0


def test_a_window_across_keys_in_an_ephemeral_a_by_key_model_reads_is_refused(
    tmp_path: Path,
) -> None:
    """An ephemeral model runs inside its by-key reader's slice: its percent_rank over users,
    read by an incremental_by_key model, was not refused, and after a last Taobao batch touching
    32 users 267 of 928 users' ranks differed from a full build, exit 0."""
    root = tmp_path / "p"
    (root / "sql").mkdir(parents=True)
    rank = root / "sql" / "user_rank.sql"
    rank.write_text(
        "-- kind: ephemeral\nSELECT user_id, count(*) AS events,\n"
        "    percent_rank() OVER (ORDER BY count(*), user_id) AS pr\n"
        "FROM raw_events GROUP BY user_id\n"
    )
    (root / "sql" / "user_ranked.sql").write_text(
        "-- kind: incremental_by_key\n-- unique_key: user_id\nSELECT user_id, events, pr FROM user_rank\n"
    )
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=root)
    out = run_cli("build", warehouse=wh, project=root, ok=False)
    assert out.strip().startswith(
        f"error: {rank}:3: PERCENT_RANK() is computed across user_id values"
    ), out
    assert out.strip().endswith("(user_rank is ephemeral: it runs inside user_ranked's slice)"), out


CROSS_KEY_ROWS = {
    # a share of all events: the untouched keep the old total, the touched get their own events'
    "user_share": (
        "SELECT user_id, count(*) AS events,\n"
        "    count(*) / (SELECT count(*) FROM raw_events) AS share\n"
        "FROM raw_events GROUP BY user_id\n",
        "4: COUNT() is computed across user_id values (its SELECT is not grouped by user_id)",
        "Group it by user_id",
    ),
    # the users who viewed my items: each row of a meets other users' rows of b
    "co_viewers": (
        "SELECT a.user_id, count(DISTINCT b.user_id) AS co_viewers\n"
        "FROM raw_events AS a\n"
        "JOIN raw_events AS b ON b.item_id = a.item_id AND b.user_id <> a.user_id\n"
        "GROUP BY a.user_id\n",
        "5: b is joined to a on other columns than user_id",
        "Join it on user_id too",
    ),
    # views of items anyone bought: the items are those the touched users bought
    "bought_views": (
        "SELECT user_id, count(*) AS views_of_bought_items\n"
        "FROM raw_events\n"
        "WHERE event_type = 'view' AND item_id IN (\n"
        "    SELECT DISTINCT item_id FROM raw_events WHERE event_type = 'purchase')\n"
        "GROUP BY user_id\n",
        "6: a SELECT reads rows of raw_events without their user_id",
        "Keep user_id in what it gives",
    ),
    # the same through EXISTS (SELECT * ...): no key of its rows reaches the outer row
    "bought_views_exists": (
        "SELECT e.user_id, count(*) AS views_of_bought_items\n"
        "FROM raw_events AS e\n"
        "WHERE e.event_type = 'view' AND EXISTS (\n"
        "    SELECT * FROM raw_events AS f WHERE f.item_id = e.item_id AND f.event_type = 'purchase')\n"
        "GROUP BY e.user_id\n",
        "6: a SELECT reads rows of raw_events without their user_id",
        "Keep user_id in what it gives",
    ),
    # each item's first viewer: one row per item, chosen among all users' rows
    "first_finds": (
        "SELECT user_id, count(*) AS first_finds\n"
        "FROM (\n"
        "    SELECT DISTINCT ON (item_id) item_id, user_id FROM raw_events ORDER BY item_id, ts, user_id)\n"
        "GROUP BY user_id\n",
        "5: DISTINCT ON picks one row of raw_events across user_id values",
        "Put user_id in it",
    ),
    # the 100 most active users: the LIMIT picks among the touched users alone
    "top_users": (
        "SELECT user_id, count(*) AS events\n"
        "FROM raw_events\n"
        "GROUP BY user_id\n"
        "ORDER BY events DESC, user_id\n"
        "LIMIT 100\n",
        "7: a LIMIT picks among the rows of raw_events of all user_id values",
        "Limit each user_id's rows (QUALIFY ... PARTITION BY user_id)",
    ),
}


@pytest.mark.parametrize("name", CROSS_KEY_ROWS)
def test_a_by_key_model_meeting_other_users_rows_is_refused_and_builds_as_a_table(
    tmp_path: Path, name: str
) -> None:
    """By-key models combining other users' rows, each after a last Taobao batch touching 32
    users against a full build, exit 0: a share of all events (all 928 users' shares wrong: the
    untouched kept the old total); a self join on the item, the users who viewed my items (38 of
    911 counts; note 31's left-alone item); the items anyone bought through `IN (SELECT DISTINCT
    ...)` (11 of 660 view counts) or `EXISTS (SELECT * ...)` (15 of 660, helper-128); each
    item's first viewer by `DISTINCT ON (item_id)` (31 of 928 users' counts); the 100 most
    active users by `LIMIT 100` (125 rows, 25 wrong). Each is refused at its line before
    anything builds; as a `table` each equals a build of all the data."""
    body, said, advice = CROSS_KEY_ROWS[name]
    root = _models_project(
        tmp_path, **{name: "-- kind: incremental_by_key\n-- unique_key: user_id\n" + body}
    )
    model = root / "sql" / f"{name}.sql"
    wh, once = tmp_path / "wh.duckdb", tmp_path / "once.duckdb"
    parts = split_csv_by_time(TAOBAO, tmp_path / "b", [1512316000])
    out = _refused_before_built(root, model, wh, parts[0])
    assert out == (
        f"error: {model}:{said}; an incremental_by_key build reads only the rows of the user_id "
        f"values new data touched, so it would differ from a full build. {advice}, or make the "
        "model a `table`"
    ), out
    model.write_text("-- kind: table\n" + body)
    for wh_, files in ((wh, parts[1:]), (once, [TAOBAO])):
        for part in files:
            run_cli("ingest", "events", str(part), warehouse=wh_, project=root)
        run_cli("build", warehouse=wh_, project=root)
    assert table_diff(once, wh, name) == 0
