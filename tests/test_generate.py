"""profiler.generate: synthetic shop batches that ingest as they are and continue one shop."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from profiler.errors import ProfilerError
from profiler.generate import generate
from profiler.generate.behaviour import _active_window, _repeat_purchases
from profiler.generate.feedback import COMMENT_TEXTS, COMPLAINT_TEXTS, REVIEW_TEXTS
from profiler.generate.shop import CATEGORIES, DAY, _catalogue, _population
from profiler.generate.tables import FIRST_NAMES
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
    item_ids = tables["items"].column("item_id").to_pylist()
    assert item_ids == sorted(item_ids, key=int)
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


def test_the_same_seed_a_week_later_is_a_new_week_not_a_replay(tmp_path):
    week = {**SMALL, "users": 10, "events": 2_000, "days": 7}  # a shop without staple buyers
    for n in range(2):
        generate(tmp_path / str(n), **{**week, "start": START + timedelta(days=7 * n)})
    first, second = (read(tmp_path / str(n))["events"] for n in range(2))
    for column in ("user_id", "event_type", "item_id"):
        assert not first.column(column).equals(second.column(column)), column


def test_user_ids_depend_only_on_the_number_of_users(tmp_path):
    counts = generate(tmp_path, **{**SMALL, "users": 600, "events": 0})
    bigger = pq.read_table(tmp_path / "users.parquet").column("user_id").to_pylist()
    assert bigger[:500] == [str(i) for i in range(1, 501)]
    assert counts["events"] == counts["feedback"] == 0  # users and items only: allowed


def test_users_sign_up_in_id_order_with_unique_emails_and_names_of_their_gender(sql):
    """Ids follow signup order as a shop's sequence does, and no user acts before signing up."""
    assert sql.execute(
        "SELECT count(*) FILTER (WHERE signup_ts < lag), count(DISTINCT email) FROM"
        " (SELECT signup_ts, email, lag(signup_ts) OVER (ORDER BY CAST(user_id AS INT)) AS lag"
        "  FROM users)"
    ).fetchone() == (0, SMALL["users"])
    for table in ("events", "feedback"):
        early = sql.execute(
            f"SELECT count(*) FROM {table} t JOIN users u USING (user_id) WHERE t.ts < u.signup_ts"
        ).fetchone()[0]
        assert early == 0, table
    for gender, names in FIRST_NAMES.items():
        firsts = sql.execute(
            "SELECT DISTINCT split_part(name, ' ', 1) FROM users WHERE gender = ?", [gender]
        ).fetchall()
        assert {first for (first,) in firsts} <= set(names), gender


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


def test_a_repeat_purchase_fits_its_cart_and_purchase_inside_the_window():
    """A staple buyer's view, cart and purchase come 40 and 95 s apart; in a shop of 300k users
    a few sessions start in the day's last 100 s and must start earlier (5 of 1566)."""
    rng = np.random.default_rng(0)
    pop = _population(300_000, _catalogue(60_000), 1)
    lo, hi = _active_window(rng, pop, 1)
    _, t0 = _repeat_purchases(rng, pop, lo, hi, start=START, days=1, budget=10**6)
    assert len(t0) > 1_000 and t0.max() + 95 < DAY


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
        " count(*) FILTER (WHERE price < 0 OR amount < 0 OR quantity < 1),"
        " count(*) FILTER (WHERE event_type = 'search'"
        "  AND coalesce(category_id, category_path, brand, CAST(price AS VARCHAR)) IS NOT NULL)"
        " FROM events"
    ).fetchone() == (0, 0, 0, 0, 0, 0)
    carted = sql.execute(
        "SELECT avg(CAST(EXISTS (SELECT 1 FROM events c WHERE c.session_id = p.session_id"
        "  AND c.item_id = p.item_id AND c.event_type = 'cart' AND c.ts <= p.ts) AS INT))"
        " FROM events p WHERE p.event_type = 'purchase'"
    ).fetchone()[0]
    assert carted > 0.5  # most purchases go through the cart first (0.59)


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


def test_ratings_follow_satisfaction_and_quality_and_low_ones_bring_complaints(tmp_path):
    """Ratings rise with the user's latent satisfaction and the item's latent quality, and most
    complaints come from the buyers who rated the item 1 or 2 (a shop ten times SMALL's size:
    1139 ratings, 102 complaints with one)."""
    big = {**SMALL, "users": 2_000, "events": 200_000}
    generate(tmp_path, **big)
    cat = _catalogue(400)
    pop = _population(big["users"], cat, big["days"])
    sql = duckdb.connect()
    sql.register("feedback", read(tmp_path)["feedback"])
    sql.register("quality", pa.table({"item_id": cat.ids, "quality": cat.quality}))
    users = [str(i) for i in range(1, big["users"] + 1)]
    sql.register("satisfaction", pa.table({"user_id": users, "happy": pop.satisfaction}))
    by_quality, by_happiness = sql.execute(
        "SELECT corr(rating, quality), corr(rating, happy) FROM feedback"
        " JOIN quality USING (item_id) JOIN satisfaction USING (user_id) WHERE rating > 0"
    ).fetchone()
    assert by_quality > 0.2 and by_happiness > 0.3  # 0.36 and 0.62
    low, with_rating = sql.execute(
        "SELECT count(*) FILTER (WHERE r.rating <= 2), count(*) FROM feedback c"
        " JOIN feedback r USING (user_id, item_id) WHERE c.kind = 'complaint' AND r.rating > 0"
    ).fetchone()
    assert low > 0.5 * with_rating > 25  # 70 of 102
    untold, one_star = sql.execute(
        "SELECT count(*) FILTER (WHERE text IS NULL), count(*) FILTER (WHERE rating = 1)"
        " FROM feedback WHERE kind IN ('review', 'complaint', 'comment')"
    ).fetchone()
    assert untold == 0 and one_star >= 5  # every one has its text, the 10 1-star reviews' too


def test_users_keep_their_favourite_categories_staple_rhythm_and_churn(batch):
    """A user's three favourite categories take about 45%, 25% and 15% of their events; staples
    are bought on days whose ordinal % cycle is the user's phase; unhappy users churn more, so
    more of them fall quiet over the window's last 10 days."""
    cat = _catalogue(200)
    pop = _population(SMALL["users"], cat, SMALL["days"])
    events = batch[1]["events"].to_pylist()
    paths, ids = [c[0] for c in CATEGORIES], cat.ids.to_pylist()
    slots, rhythm, last = Counter(), Counter(), {}
    for e in events:
        u = int(e["user_id"]) - 1
        last[u] = e["ts"]
        if e["category_path"] is not None:
            slots["all"] += 1
            for k, favourite in enumerate(pop.favourite[u]):
                slots[k] += paths[favourite] == e["category_path"]
        if (
            e["event_type"] == "purchase"
            and pop.staple[u] >= 0
            and e["item_id"] == ids[pop.staple[u]]
        ):
            rhythm[(e["ts"].toordinal() - pop.phase[u]) % pop.cycle[u] == 0] += 1
    shares = [slots[k] / slots["all"] for k in range(3)]
    assert shares[0] > 0.4 and shares[1] > 0.22 and shares[2] > 0.12, shares  # .47 .29 .19
    assert rhythm[True] >= 20 and rhythm[True] > 4 * rhythm[False], rhythm  # 40 of 40
    end = datetime.combine(START + timedelta(days=SMALL["days"]), datetime.min.time())
    quiet = {u for u in range(SMALL["users"]) if u not in last or (end - last[u]).days >= 10}
    signed_up = pop.signup < 0
    unhappy = np.flatnonzero(signed_up & (pop.satisfaction < -1))
    happy = np.flatnonzero(signed_up & (pop.satisfaction > 1))
    share = [np.mean([u in quiet for u in group]) for group in (unhappy, happy)]
    assert share[0] > share[1] + 0.1, share  # 0.61 of 61 against 0.42 of 72


def test_feedback_follows_the_events_it_is_about(sql):
    """Ratings, reviews and complaints come at least half a day after the user bought the item;
    likes, comments and shares after a view or favourite of it; texts fit their kind and stars."""
    orphans = sql.execute(
        "SELECT kind, count(*) FROM feedback f WHERE NOT EXISTS (SELECT 1 FROM events e"
        " WHERE e.user_id = f.user_id AND e.item_id = f.item_id AND CASE"
        "  WHEN f.kind IN ('rating', 'review', 'complaint')"
        "  THEN e.event_type = 'purchase' AND e.ts <= f.ts - INTERVAL 12 HOUR"
        "  ELSE e.event_type IN ('view', 'fav') AND e.ts <= f.ts END) GROUP BY 1"
    ).fetchall()
    assert orphans == []
    allowed = {
        "review": {(r + 1, t) for r, texts in enumerate(REVIEW_TEXTS) for t in texts},
        "complaint": {(None, t) for t in COMPLAINT_TEXTS},
        "comment": {(None, t) for t in COMMENT_TEXTS},
    }
    for kind, rating, text in sql.execute("SELECT kind, rating, text FROM feedback").fetchall():
        if kind in allowed:
            assert (rating, text) in allowed[kind], (kind, rating, text)
        else:
            assert text is None, (kind, text)


def test_a_search_names_the_category_the_session_looks_at_next(batch):
    """Its leaf category, plain, cheap, best, or after the brand of the item viewed next; a
    search that ends its session names the session's theme (another user's next event, 18%)."""
    events = batch[1]["events"].to_pylist()
    leaves = defaultdict(set)  # per session
    for event in events:
        if event["category_path"] is not None:
            leaves[event["session_id"]].add(event["category_path"].rsplit(".", 1)[1])
    brand_forms, last, on_theme = 0, 0, 0
    for search, after in zip(events, [*events[1:], None], strict=True):
        if search["event_type"] != "search":
            continue
        if (
            after is None
            or after["session_id"] != search["session_id"]
            or after["event_type"] == "search"
        ):
            seen = {leaf.replace("_", " ") for leaf in leaves[search["session_id"]]}
            last += bool(seen)
            on_theme += any(search["query"].endswith(leaf) for leaf in seen)
            continue
        leaf = after["category_path"].rsplit(".", 1)[1].replace("_", " ")
        forms = {leaf, f"cheap {leaf}", f"best {leaf}", f"{after['brand']} {leaf}"}
        assert search["query"] in forms, (search, after)
        brand_forms += search["query"] == f"{after['brand']} {leaf}"
    assert brand_forms > 10
    assert on_theme > 0.9 * last > 100  # 183 of 187


def test_views_favour_the_most_stocked_brands(sql):
    """Brands are listed from most to least stocked; fewer views go to each next one."""
    rank = {(c[0], b): k for c in CATEGORIES for k, b in enumerate(c[3])}
    views = Counter(
        rank[row]
        for row in sql.execute(
            "SELECT category_path, brand FROM events WHERE event_type = 'view'"
        ).fetchall()
    )
    by_rank = [views[k] for k in range(max(views) + 1)]
    assert by_rank == sorted(by_rank, reverse=True), by_rank  # [6563, 4515, 3444, 2185, 760]


def test_csv_has_canonical_headers_and_iso_utc_timestamps(tmp_path):
    """Canonical headers, ISO-8601 UTC times, and the values the Parquet files of the same
    arguments hold."""
    counts = generate(tmp_path, **{**SMALL, "events": 3_000}, fmt="csv")
    generate(tmp_path / "parquet", **{**SMALL, "events": 3_000})
    con = duckdb.connect()
    for name, source in SOURCES.items():
        as_text = ", ".join(
            f"strftime({c.name}, '%Y-%m-%dT%H:%M:%SZ')"
            if c.type == "TIMESTAMP"
            else f"CAST({c.name} AS VARCHAR)"
            for c in source.columns
        )
        differ = con.execute(
            f"SELECT count(*) FROM (SELECT {as_text} FROM '{tmp_path / 'parquet' / name}.parquet'"
            f" EXCEPT ALL SELECT * FROM read_csv('{tmp_path / name}.csv', all_varchar = true))"
        ).fetchone()[0]
        assert differ == 0, name
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


@pytest.mark.parametrize("under", ["", "batch"])
def test_an_out_folder_that_is_a_file_is_a_one_line_error(tmp_path, under):
    """`--out data/events.csv` over an existing file: nothing to write into, and the file is
    left as it was (it printed a FileExistsError or NotADirectoryError traceback)."""
    from conftest import run_cli

    taken = tmp_path / "events.csv"
    taken.write_text("user_id,event_type,ts\n")
    text = run_cli(
        "generate", "--users", "50", "--events", "500", "--out", str(taken / under),
        warehouse=tmp_path / "unused.duckdb", ok=False,
    )  # fmt: skip
    assert text.startswith(f"error: cannot write to {taken}") and text.count("\n") == 1, text
    assert taken.read_text() == "user_id,event_type,ts\n"


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
