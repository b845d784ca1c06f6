"""Ingest: real samples load whole, broken lines are quarantined one by one, refused files change
nothing, personal values never reach the warehouse."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import itertools
import json
import os
import re
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import REES46, TAOBAO, at_once, rees46_purchases, run_cli

from profiler import pii
from profiler.errors import ProfilerError
from profiler.ingest import ingest
from profiler.ingest_columns import check_mapping
from profiler.ingest_options import AS_SENT, Reading, check_reading
from profiler.ingest_summary import describe_ingest
from profiler.settings import Settings
from profiler.sources import SOURCES
from profiler.state import ModelState, data_lineage, history_stale_from, write_state

FIXTURES = Path(__file__).parent / "fixtures"
MESSY = FIXTURES / "messy_events.csv"
USERS = FIXTURES / "users_personal.csv"
KEY = b"test-key"

MESSY_REASONS = {
    "bad_quoting": 2,
    "wrong_field_count": 2,
    "bad_encoding": 1,
    "empty_line": 1,
    "unknown_event_type": 1,
    "bad_timestamp": 1,
    "early_timestamp": 1,
    "future_timestamp": 1,
    "bad_type:price": 1,
    "negative_money": 1,
    "bad_quantity": 1,
    "bad_type:quantity": 1,
    "missing_user_id": 1,
    "missing_ts": 1,
    "missing_event_type": 1,
}
PERSONAL = [
    "Ada Quill", "Ada.Quill@Example.com", "ada.quill@example.com", "+86 138-0013-8000",
    "8613800138000", "Bo Lin", "bo.lin@example.org", "13900139000", "Chen Mei",
    "chen.mei@example.net", "6552-9988", "0106552998", "Dana", "dana.park@example.com",
    "5550100", "Eve Broken", "eve.broken@example.com", "555-0199", "Finn Noid",
    "finn.noid@example.com", "555-0142",
]  # fmt: skip


@pytest.fixture
def con(tmp_path: Path):
    connection = duckdb.connect(str(tmp_path / "wh.duckdb"))
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every table's full contents, to prove a refused file changed nothing."""
    tables = rows(con, "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary")
    return {
        f"{s}.{t}": sorted(map(repr, rows(con, f'SELECT * FROM "{s}"."{t}"'))) for s, t in tables
    }


def csv_field(value: str) -> str:
    """One CSV field, quoted when it holds a comma or a quote."""
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"') else value


def said_of(result) -> str:
    """The ingest summary on one line, as a test reads it."""
    return " ".join(describe_ingest(result).split())


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# --- the real samples -------------------------------------------------------------------------


def test_taobao_sample_loads_whole(con):
    result = ingest(con, "events", TAOBAO, pii_key=KEY)
    assert (result.lines, result.loaded, result.quarantined) == (94_287, 94_287, {})
    assert result.columns["event_type"] == "behavior_type"
    counts = dict(rows(con, "SELECT event_type, count(*) FROM raw_events GROUP BY ALL"))
    assert counts == {"view": 84_739, "cart": 5_030, "fav": 2_563, "purchase": 1_955}
    first = rows(con, "SELECT ts FROM raw_events WHERE user_id = '1' AND item_id = '2268318'")
    assert first == [(datetime(2017, 11, 24, 17, 21, 10),)]  # 1511544070, Unix seconds, UTC
    batch = rows(con, "SELECT batch_id, lines, loaded, quarantined, min_ts FROM _profiler.batches")
    assert batch == [(1, 94_287, 94_287, 0, datetime(2017, 9, 11, 8, 16, 39))]


def test_rees46_sample_loads_whole(con):
    result = ingest(con, "events", REES46, pii_key=KEY)
    assert (result.lines, result.loaded, result.quarantined) == (17_434, 17_434, {})
    assert result.columns["session_id"] == "user_session"
    assert result.columns["category_path"] == "category_code"
    (row,) = rows(
        con,
        "SELECT ts, item_id, category_path, brand, price, amount, session_id FROM raw_events "
        "WHERE session_id = '72d76fde-8bb3-4e00-8c23-a032dfed738c' AND item_id = '44600062' ORDER BY ts LIMIT 1",
    )
    assert row == (datetime(2019, 10, 1), "44600062", None, "shiseido", 35.79, 35.79, row[-1])
    span = rows(con, "SELECT min(ts), max(ts), count(DISTINCT user_id) FROM raw_events")
    assert span == [(datetime(2019, 10, 1), datetime(2019, 10, 1, 2, 50), 4_504)]


# --- the messy file -----------------------------------------------------------------------------


def test_messy_csv_every_record_accounted_for(con):
    result = ingest(con, "events", MESSY, pii_key=KEY)
    assert result.quarantined == MESSY_REASONS
    assert result.loaded == 12
    # a time before 1990 is named so, not "check --ts-format" (helper-21: 1984 read as a bad time)
    assert "1 time(s) before 1990, which profiler does not take" in describe_ingest(result)
    # helper-36: a refund line's purchase still counts, which the summary now says
    assert "refunds or returns? They are not taken off" in said_of(result)
    physical_data_lines = MESSY.read_bytes().count(b"\n") - 1
    assert result.lines == physical_data_lines - 1  # record 7 spans two lines
    assert result.loaded + sum(result.quarantined.values()) == result.lines
    assert rows(con, "SELECT count(*) FROM raw_events") == [(12,)]
    # the batch's time range is that of its loaded lines, not of the 1985 and 2999 quarantined
    assert rows(con, "SELECT min_ts, max_ts FROM _profiler.batches") == rows(
        con, "SELECT min(ts), max(ts) FROM raw_events"
    )
    quarantined = rows(con, "SELECT record, reason, raw FROM quarantine ORDER BY record")
    assert [r[0] for r in quarantined] == [8, 10, *range(12, 27)]
    by_record = {r[0]: (r[1], r[2]) for r in quarantined}
    assert by_record[13] == (
        "wrong_field_count",
        "2019-10-01 00:01:27 UTC,view,10800076,2053013554994348409,,redmond,54.03",
    )
    assert by_record[14][0] == "bad_encoding" and "tim\\xffberk" in by_record[14][1]
    assert by_record[8][0] == "bad_quoting" and ',"apple,642.69' in by_record[8][1]
    assert by_record[15] == ("empty_line", "")
    assert all(r[1] and (r[2] or r[0] == 15) for r in quarantined)


def test_messy_csv_values_are_normalised(con):
    ingest(con, "events", MESSY, pii_key=KEY)
    got = dict(rows(con, "SELECT item_id, (event_type, ts, brand, amount) FROM raw_events"))
    assert got["1603476"][:2] == ("purchase", datetime(2017, 11, 25, 3, 18, 28))
    assert got["5120034"][:2] == ("cart", datetime(2017, 11, 24, 16, 47, 14))  # Unix ms
    assert got["2268318"][:2] == ("view", datetime(2017, 11, 24, 17, 21, 10))  # +08:00
    assert got["5100816"][:2] == ("cart", datetime(2019, 10, 1, 0, 5, 14))  # '  CART '
    assert got["17200506"][2] == 'sofa, "deluxe"\nline two'
    assert got["2576651"][1] == datetime(2017, 11, 25, 1, 21, 25, 500000)
    assert got["1004856"][3] == pytest.approx(261.52)  # price * quantity
    assert got["3763048"][0] == "fav"  # the record after a broken quote survives


def test_fast_path_quarantine_has_record_and_raw_line(con, tmp_path):
    lines = TAOBAO.read_text().splitlines()[:301]
    lines[150] = lines[150].replace(",pv,", ",unfollow,")
    result = ingest(con, "events", write(tmp_path / "a.csv", "\n".join(lines) + "\n"), pii_key=KEY)
    assert (result.loaded, result.quarantined) == (299, {"unknown_event_type": 1})
    assert rows(con, "SELECT record, raw FROM quarantine") == [(150, lines[150])]
    assert "quarantined 1: unknown_event_type ('unfollow' 1)" in describe_ingest(result)
    # a quote closed before the end of its field is no value DuckDB may guess at (`"2520377"x`
    # would read as 2520377): the line goes to quarantine, the others load
    lines[150] = lines[150].replace(",unfollow,", ",pv,")
    f = lines[200].split(",")
    lines[200] = ",".join([*f[:2], f'"{f[2]}"x', *f[3:]])
    quoted = ingest(con, "events", write(tmp_path / "b.csv", "\n".join(lines) + "\n"), pii_key=KEY)
    assert (quoted.loaded, quoted.quarantined) == (299, {"bad_quoting": 1})


def test_record_numbers_hold_at_scale(con, tmp_path):
    """Beyond one DuckDB row group, read in parallel, record numbers still follow the file."""
    path = tmp_path / "big.csv"
    con.execute(
        "COPY (SELECT 'u' || i AS user_id, CASE WHEN i % 50000 = 7 THEN 'unfollow' ELSE 'pv' END "
        f"AS event_type, 1511544070 + i AS ts FROM range(1, 300001) t(i)) TO '{path}' (HEADER)"
    )
    result = ingest(con, "events", path, pii_key=KEY)
    assert result.quarantined == {"unknown_event_type": 6}
    assert result.unknown == {"unknown_event_type": [("unfollow", 6)]}
    expected = [(i, f"u{i},unfollow,{1511544070 + i}") for i in range(7, 300001, 50000)]
    assert rows(con, "SELECT record, raw FROM quarantine ORDER BY record") == expected


def test_quoted_line_break_keeps_the_fast_path_numbering(con, tmp_path):
    text = (
        'user_id,event_type,ts,brand\n1,pv,1511544070,"two\nlines"\n'
        "2,pv,1511544071,x\n3,unfollow,1511544072,y\n"
    )
    result = ingest(con, "events", write(tmp_path / "a.csv", text), pii_key=KEY)
    assert (result.lines, result.loaded) == (3, 2)
    assert rows(con, "SELECT record, raw FROM quarantine") == [(3, "3,unfollow,1511544072,y")]
    assert rows(con, "SELECT brand FROM raw_events WHERE user_id = '1'") == [("two\nlines",)]


def test_feedback_and_items_rules(con, tmp_path):
    feedback = (
        "userid,created_at,type,product_id,stars,body\n"
        "1,2017-11-25 10:00:00,Rated,2268318,5,great\n"
        "1,2017-11-25 10:00:00,rating,2268318,6,\n"
        "1,2017-11-25 10:00:00,shrug,2268318,,\n"
        "1,2017-11-25 10:00:00,Thumbs Up,2268318,,\n"
    )
    result = ingest(con, "feedback", write(tmp_path / "f.csv", feedback), pii_key=KEY)
    assert result.quarantined == {"bad_rating": 1, "unknown_kind": 1}
    assert rows(con, "SELECT kind, rating, text FROM raw_feedback ORDER BY kind") == [
        ("like", None, None),
        ("rating", 5, "great"),
    ]
    # two days' files joined with `cat`: the second header is no item (helper-97: an item
    # 'sku' of category 'category_name' loaded)
    items = "sku,category_name,price\n2268318,shoes,12.5\n,shoes,1\n1603476,bags,-1\n"
    items += "Sku, Category_Name ,price\n"
    result = ingest(con, "items", write(tmp_path / "i.csv", items), pii_key=KEY)
    assert result.quarantined == {"missing_item_id": 1, "negative_money": 1, "repeated_header": 1}
    assert rows(con, "SELECT item_id, category_path, price FROM raw_items") == [
        ("2268318", "shoes", 12.5)
    ]


def test_fallback_reader_agrees_with_fast_path(con, tmp_path):
    lines = TAOBAO.read_text().splitlines()[:201]
    clean = write(tmp_path / "clean.csv", "\n".join(lines) + "\n")
    blank = write(tmp_path / "blank.csv", "\n".join(lines[:100] + [""] + lines[100:]) + "\n")
    a = ingest(con, "events", clean, pii_key=KEY)
    b = ingest(con, "events", blank, pii_key=KEY)
    assert (a.loaded, b.loaded, b.quarantined) == (200, 200, {"empty_line": 1})
    assert rows(con, "SELECT record FROM quarantine") == [(100,)]
    diff = rows(
        con,
        "SELECT count(*) FROM (SELECT * EXCLUDE _batch_id FROM raw_events WHERE _batch_id = 1 "
        "EXCEPT SELECT * EXCLUDE _batch_id FROM raw_events WHERE _batch_id = 2)",
    )
    assert diff == [(0,)]


def test_semicolon_gzip_and_crlf_variants(con, tmp_path):
    text = TAOBAO.read_text().splitlines()[:51]
    semi = write(tmp_path / "a.csv", "\r\n".join(x.replace(",", ";") for x in text) + "\r\n")
    gz = tmp_path / "b.csv.gz"
    gz.write_bytes(gzip.compress(("\n".join(text) + "\n").encode()))
    for path in (semi, gz):
        result = ingest(con, "events", path, pii_key=KEY)
        assert (result.lines, result.loaded) == (50, 50), path
    assert rows(con, "SELECT count(DISTINCT (user_id, item_id, ts)) FROM raw_events") == [(50,)]


def test_map_names_columns_the_synonyms_miss(con, tmp_path):
    path = write(tmp_path / "odd.csv", "who,what,when_s,sku\nu1,Detail,1511544070,i1\n")
    result = ingest(con, "events", path, mapping={"user_id": "who", "event_type": "what",
                                                  "ts": "when_s"}, pii_key=KEY)  # fmt: skip
    assert result.loaded == 1
    assert rows(con, "SELECT user_id, event_type, item_id FROM raw_events") == [
        ("u1", "view", "i1")
    ]


def test_map_takes_any_header_as_written(con, tmp_path):
    """helpers 35 and 36: `--map` refused Stripe's `Created (UTC)`, BigCommerce's `Order Total
    (inc tax)` and Mixpanel's `$user_id` as "not a plain column name", so those exports could not
    be read without editing them. REES46's first purchase, in both shapes."""
    with REES46.open() as fh:
        head = fh.readline().rstrip("\n").split(",")
        line = next(
            dict(zip(head, r.rstrip("\n").split(","), strict=True)) for r in fh if ",purchase," in r
        )
    csv_body = f"Customer ID,Created (UTC),Order Total (inc tax)\n{line['user_id']},{line['event_time'][:19]},{line['price']}\n"
    mapping = {"user_id": "Customer ID", "ts": "Created (UTC)", "amount": "Order Total (inc tax)"}
    got = ingest(con, "events", write(tmp_path / "stripe.csv", csv_body), mapping=mapping,
                 pii_key=KEY, reading=Reading(event_type="purchase"))  # fmt: skip
    assert (got.loaded, got.quarantined) == (1, {})
    jsonl = (
        '{"event": "Order Completed", "properties": {"time": 1569888000, "$user_id": "'
        + line["user_id"]
        + '", "distinct_id": "$device:x", "$revenue": '
        + line["price"]
        + "}}\n"
    )
    got = ingest(con, "events", write(tmp_path / "mp.jsonl", jsonl), pii_key=KEY,
                 mapping={"user_id": "properties.$user_id", "amount": "properties.$revenue"})  # fmt: skip
    assert (got.loaded, got.quarantined) == (1, {})
    assert rows(con, "SELECT DISTINCT user_id, amount FROM raw_events") == [
        (line["user_id"], float(line["price"]))
    ]


def test_amplitude_event_properties_are_read_and_an_empty_column_is_said(con, tmp_path):
    """helper-35: Amplitude's export nests the product in `event_properties` (ignored whole),
    read `item_id` from its top-level `productId` (set on revenue events only: empty on every
    line, unsaid), and its session -1 ("no session") made one session of a day. REES46's first
    views of one user, as Amplitude sends them."""
    import json as _json

    with REES46.open() as fh:
        head = fh.readline().rstrip("\n").split(",")
        lines = [dict(zip(head, r.rstrip("\n").split(","), strict=True)) for r in fh]
    user = next(r["user_id"] for r in lines if r["event_type"] == "view")
    views = [r for r in lines if r["user_id"] == user and r["event_type"] == "view"][:3]
    body = "".join(
        _json.dumps({
            "user_id": user, "event_type": "Product Viewed", "session_id": -1,
            "productId": "N/A" if i == 0 else None,  # a word for no value is none: the nested one counts
            "event_time": r["event_time"].removesuffix(" UTC") + ".123000",
            "event_properties": {"product_id": r["product_id"], "price": float(r["price"]), "brand": r["brand"]},
        }) + "\n"
        for i, r in enumerate(views)
    )  # fmt: skip
    # helper-39: a revenue event's top-level productId and price made the nested ones of every
    # other event unread; each line now takes the top-level value, else the nested one
    bought = next(r for r in lines if r["event_type"] == "purchase")
    body += _json.dumps({
        "user_id": user, "event_type": "revenue_amount", "productId": bought["product_id"],
        "price": float(bought["price"]), "quantity": 1, "event_time": "2019-10-01 23:00:00.000000",
        "event_properties": {},
    }) + "\n"  # fmt: skip
    reading = check_reading(
        SOURCES["events"], Reading(values=(("event_type", "revenue_amount", "purchase"),))
    )
    got = ingest(
        con, "events", write(tmp_path / "amplitude.json", body), pii_key=KEY, reading=reading
    )
    said = said_of(got)
    assert "item_id <- productId (else event_properties.product_id)" in said, said
    assert "price (else event_properties.price)" in said and "user_id," in said, said
    assert rows(con, "SELECT count(session_id), count(price) FROM raw_events") == [
        (0, len(views) + 1)
    ]
    assert rows(con, "SELECT item_id FROM raw_events ORDER BY ts") == [
        (r["product_id"],) for r in views
    ] + [(bought["product_id"],)]
    # a column read from a name that is empty on every line is said (no nested key to fall to)
    empty = body.replace('"product_id"', '"sku_code"').replace(
        f'"productId": "{bought["product_id"]}"', '"productId": null'
    )
    got = ingest(con, "events", write(tmp_path / "empty.json", empty), pii_key=KEY, reading=reading)
    said = said_of(got)
    assert "warning: read but empty on every loaded line: item_id <- productId" in said, said
    assert "Amplitude writes" not in said  # a shop on UTC reads UTC either way
    # a New York shop: Amplitude's event_time is UTC, unsaid in the file (helper-51: every
    # user's hours shifted by 5)
    ny = duckdb.connect(str(tmp_path / "ny.duckdb"))
    stamped = body.replace(
        '"event_type": "Product Viewed"', '"amplitude_id": 7, "event_type": "Product Viewed"'
    )
    zoned = dataclasses.replace(reading, time_zone="America/New_York")
    got = ingest(ny, "events", write(tmp_path / "ny.json", stamped), pii_key=KEY, reading=zoned)
    assert "warning: Amplitude writes event_time in UTC" in said_of(got)
    fixed = dataclasses.replace(zoned, times_utc=True)
    again = ingest(ny, "events", tmp_path / "ny.json", pii_key=KEY, reading=fixed, replace=True)
    assert "Amplitude writes" not in said_of(again)


def test_a_nested_fallback_takes_only_the_items_own_columns(con, tmp_path):
    """helper-41: the fallback took `event_properties.product` (a name) before `product_id`, a
    generic `value` as the amount of views, an object as an item id, and crashed on a typed
    Parquet column beside a JSON text one. REES46's first purchase, its item and price."""
    import json as _json

    import pyarrow as pa
    import pyarrow.parquet as pq

    u, t, i, p = rees46_purchases()[0]
    at = f"{t:%Y-%m-%d %H:%M:%S}"
    lines = [
        {"user_id": u, "event_type": "view", "event_time": at, "productId": None, "revenue": None,
         "event_properties": {"product": "Blue Shirt", "product_id": i, "value": "red"}},
        {"user_id": u, "event_type": "view", "event_time": at, "productId": "", "revenue": None,
         "event_properties": {"product_id": {"id": i}, "value": 42}},
        {"user_id": u, "event_type": "purchase", "event_time": at, "productId": i, "revenue": p,
         "event_properties": {}},
    ]  # fmt: skip
    body = "".join(_json.dumps(line) + "\n" for line in lines)
    got = ingest(con, "events", write(tmp_path / "amp.jsonl", body), pii_key=KEY)
    assert (got.loaded, got.quarantined, got.fallbacks) == (
        3,
        {},
        {"item_id": "event_properties.product_id"},
    )
    assert rows(con, "SELECT event_type, item_id, amount FROM raw_events ORDER BY event_type, item_id") == [
        ("purchase", i, p), ("view", i, None), ("view", None, None)
    ]  # fmt: skip
    table = {"user_id": [u, u], "event_type": ["view", "purchase"], "ts": [t, t],
             "item_id": pa.array([None, int(i)], pa.int64()),
             "properties": [_json.dumps({"product_id": "P-9"}), "{}"]}  # fmt: skip
    pq.write_table(pa.table(table), tmp_path / "typed.parquet")
    got = ingest(con, "events", tmp_path / "typed.parquet", pii_key=KEY)
    assert (got.loaded, got.quarantined) == (2, {})
    assert rows(con, "SELECT item_id FROM raw_events WHERE _batch_id = ? ORDER BY event_type DESC",
                [got.batch_id]) == [("P-9",), (i,)]  # fmt: skip
    # a column the user names with --map is read alone: no nested key fills it
    named = duckdb.connect(str(tmp_path / "named.duckdb"))
    got = ingest(
        named, "events", tmp_path / "amp.jsonl", pii_key=KEY, mapping={"item_id": "productId"}
    )
    assert (got.loaded, got.fallbacks) == (3, {})
    assert rows(named, "SELECT count(item_id) FROM raw_events") == [(1,)]


def test_money_in_cents_is_said_and_read_with_minor_units(con, tmp_path):
    """helper-36: Stripe's API sends `"amount": 1999, "currency": "usd"` for $19.99; every
    buyer's spend read 100x, unsaid. REES46's first purchases as Stripe charges."""
    import json as _json

    bought = rees46_purchases()[:5]
    body = "".join(
        _json.dumps({"id": f"ch_{n}", "object": "charge", "amount": round(p * 100), "currency": "usd",
                     "customer": u, "created": int(t.timestamp()), "status": "succeeded"}) + "\n"
        for n, (u, t, i, p) in enumerate(bought)
    )  # fmt: skip
    path = write(tmp_path / "charges.jsonl", body)
    stripe = {"user_id": "customer"}
    got = ingest(
        con, "events", path, pii_key=KEY, reading=Reading(event_type="purchase"), mapping=stripe
    )
    said = said_of(got)
    assert "and the currency is usd: sent in cents? --minor-units divides it by 100" in said, said
    assert got.currencies == []  # one currency is no mix
    again = ingest(con, "events", path, pii_key=KEY, replace=True, mapping=stripe,
                   reading=Reading(event_type="purchase", minor_units=True))  # fmt: skip
    assert again.cents is None and "money: sent in minor units" in describe_ingest(again)
    assert sorted(a for (a,) in rows(con, "SELECT amount FROM raw_events")) == sorted(
        round(p, 2) for _, _, _, p in bought
    )
    # a unit price in cents is divided too, before it makes the line's amount
    units = "customer_id,created,product_id,price,quantity,currency\n" + "".join(
        f"{u},{int(t.timestamp())},{i},{round(p * 100)},{n % 3 + 1},usd\n"
        for n, (u, t, i, p) in enumerate(bought)
    )
    lines = ingest(con, "events", write(tmp_path / "lines.csv", units), pii_key=KEY,
                   reading=Reading(event_type="purchase", minor_units=True))  # fmt: skip
    got = rows(con, "SELECT price, amount FROM raw_events WHERE _batch_id = ? ORDER BY ALL",
               [lines.batch_id])  # fmt: skip
    expected = sorted((round(p, 2), round(p, 2) * (n % 3 + 1)) for n, (*_, p) in enumerate(bought))
    assert [v for row in got for v in row] == pytest.approx([v for row in expected for v in row])
    # --minor-units on whole yen is said (helper-40: 5000 yen loaded as 50.0, unsaid)
    yen_cents = ingest(con, "events", write(tmp_path / "yen2.jsonl", body.replace('"usd"', '"jpy"').replace("ch_", "cy_")),
                       pii_key=KEY, mapping=stripe, reading=Reading(event_type="purchase", minor_units=True))  # fmt: skip
    assert "but the currency is jpy, which has no cents" in said_of(yen_cents)
    # Stripe sends forints with two decimals like dollars: --minor-units is right for them
    huf = ingest(con, "events", write(tmp_path / "huf.jsonl", body.replace('"usd"', '"huf"').replace("ch_", "hu_")),
                 pii_key=KEY, mapping=stripe, reading=Reading(event_type="purchase", minor_units=True))  # fmt: skip
    assert huf.whole_in_minor_units is None
    # a shop of whole yen is no shop of cents
    yen = write(tmp_path / "yen.jsonl", body.replace('"usd"', '"jpy"'))
    assert (
        ingest(
            con, "events", yen, pii_key=KEY, mapping=stripe, reading=Reading(event_type="purchase")
        ).cents  # fmt: skip
        is None
    )
    # the bounds: an amount of 100 is cents too, and one charge with a decimal part says dollars
    hundred = re.sub(r'"amount": [0-9]+', '"amount": 100', body).replace("ch_", "c100_")
    assert ingest(con, "events", write(tmp_path / "hundred.jsonl", hundred), pii_key=KEY,
                  mapping=stripe, reading=Reading(event_type="purchase")).cents == ("usd", 100)  # fmt: skip
    dollars = re.sub(r'"amount": ([0-9]+)', r'"amount": \1.5', body, count=1)
    assert ingest(con, "events", write(tmp_path / "dollars.jsonl", dollars), pii_key=KEY,
                  mapping=stripe, reading=Reading(event_type="purchase")).cents is None  # fmt: skip


def test_an_event_id_sent_twice_counts_once(con, tmp_path):
    """helper-35: Mixpanel's raw export held one purchase twice, the same `$insert_id`, only
    `mp_processing_time_ms` apart: two purchases and twice the spend, unsaid; helper-51: then
    said, but still counted twice. The copy now goes to quarantine as `repeated_event_id`, while
    one event's lines with other items (a flattened order) all count. REES46's first purchases as
    Mixpanel events, the first one sent again."""
    import json as _json

    bought = rees46_purchases()[:4]
    events = [
        {"event": "Order Completed", "properties": {
            "time": int(t.timestamp()), "distinct_id": u, "$insert_id": f"ins{n}",
            "product_id": i, "price": p, "mp_processing_time_ms": 1_569_900_000_000 + n}}
        for n, (u, t, i, p) in enumerate(bought)
    ]  # fmt: skip
    again = _json.loads(_json.dumps(events[0]))
    again["properties"]["mp_processing_time_ms"] += 5
    body = "".join(_json.dumps(e) + "\n" for e in [*events, again])
    got = ingest(con, "events", write(tmp_path / "mixpanel.jsonl", body), pii_key=KEY,
                 mapping={"user_id": "properties.distinct_id"})  # fmt: skip
    assert (got.loaded, got.quarantined) == (4, {"repeated_event_id": 1})
    assert got.repeated_ids is None
    # the order's second item, flattened under the same $insert_id: a line of its own
    item = _json.loads(_json.dumps(events[0]))
    item["properties"]["product_id"] = "p2"
    flat = "".join(_json.dumps(e) + "\n" for e in [*events, item])
    got = ingest(con, "events", write(tmp_path / "flat.jsonl", flat), pii_key=KEY,
                 mapping={"user_id": "properties.distinct_id"}, replace=False)  # fmt: skip
    said = said_of(got)
    assert got.quarantined == {} and got.loaded == 5
    assert "warning: 1 line(s) repeat an event id 'properties.$insert_id' (ignored)" in said, said
    # an id that is no value (`NULL`, blank, `0`) tells no event from another: three equal
    # purchase lines with it are three units (helper-56: they became one)
    (u, t, i, p) = bought[0]
    units = "uuid,user_id,ts,item_id,price\n" + "".join(
        f"{w},{u},{t:%Y-%m-%d %H:%M:%S},{i},{p}\n" for w in ("NULL", "NULL", "", "0", "0")
    )
    got = ingest(con, "events", write(tmp_path / "units.csv", units), pii_key=KEY,
                 reading=Reading(event_type="purchase"))  # fmt: skip
    assert (got.loaded, got.quarantined, got.repeated_ids) == (5, {}, None)
    # nor do they make copies of one event under an id the tool dedupes on
    inserts = units.replace("uuid,", "$insert_id,", 1)
    got = ingest(con, "events", write(tmp_path / "inserts.csv", inserts), pii_key=KEY,
                 reading=Reading(event_type="purchase"))  # fmt: skip
    assert (got.loaded, got.quarantined) == (5, {})
    # a `uuid` may be an order's, on each unit's line: both units count, and it is said
    # (helper-55: the second unit was quarantined)
    order = units.replace("NULL,", "o-7,", 2).replace("\n,", "\no-8,").replace("\n0,", "\no-9,")
    got = ingest(con, "events", write(tmp_path / "order.csv", order), pii_key=KEY,
                 reading=Reading(event_type="purchase"))  # fmt: skip
    assert (got.loaded, got.quarantined, got.repeated_ids) == (5, {}, ("uuid", 2))
    # an order's id repeats on each of its lines: no event sent twice (helper-38)
    orders = "customer_id,order_uuid,created_at,product_id,price\n" + "".join(
        f"{u},o1,{t:%Y-%m-%d %H:%M:%S},{i},{p}\n" for u, t, i, p in rees46_purchases()[:3]
    )
    got = ingest(con, "events", write(tmp_path / "orders.csv", orders), pii_key=KEY,
                 reading=Reading(event_type="purchase"))  # fmt: skip
    assert got.repeated_ids is None


def test_a_json_list_of_items_is_said(con, tmp_path):
    """helper-35: an `Order Completed` whose `properties.products` lists the order's items loaded
    as one purchase without them, said only as an ignored key. REES46's first purchases as one
    Segment order."""
    import json as _json

    bought = rees46_purchases()[:2]
    (u, t, _, _) = bought[0]
    order = {"userId": u, "event": "Order Completed", "timestamp": t.isoformat(), "properties": {
        "total": round(sum(p for *_, p in bought), 2),
        "products": [{"product_id": i, "price": p} for _, _, i, p in bought]}}  # fmt: skip
    got = ingest(
        con, "events", write(tmp_path / "segment.jsonl", _json.dumps(order) + "\n"), pii_key=KEY
    )
    said = said_of(got)
    assert "warning: 'properties.products' (ignored) holds a list of items on 1 line(s)" in said, (
        said
    )
    # the same order as a warehouse table's CSV export: `products` a JSON text column (helper-45)
    import csv as _csv
    import io

    out = io.StringIO()
    writer = _csv.writer(out)
    writer.writerow(["user_id", "event", "timestamp", "total", "products"])
    writer.writerow([u, "Order Completed", t.isoformat(), order["properties"]["total"],
                     _json.dumps(order["properties"]["products"])])  # fmt: skip
    reading = check_reading(
        SOURCES["events"], Reading(values=(("event_type", "Order Completed", "purchase"),))
    )
    got = ingest(con, "events", write(tmp_path / "rudder.csv", out.getvalue()), pii_key=KEY,
                 reading=reading)  # fmt: skip
    said = said_of(got)
    assert "warning: 'products' (ignored) holds a list of items on 1 line(s)" in said, said
    # Snowplow's enriched JSON keeps the products in a context (helper-51: lost, unsaid)
    snowplow = {"user_id": u, "event": "purchase", "derived_tstamp": t.isoformat() + "Z",
                "contexts_com_snowplowanalytics_snowplow_ecommerce_product_1":
                    [{"id": i, "price": p} for _, _, i, p in bought]}  # fmt: skip
    got = ingest(con, "events", write(tmp_path / "sp.jsonl", _json.dumps(snowplow) + "\n"),
                 pii_key=KEY, mapping={"ts": "derived_tstamp", "event_type": "event"})  # fmt: skip
    assert "snowplow_ecommerce_product_1' (ignored) holds a list of items" in said_of(got)
    # Adobe's post_product_list read as the item id (helper-51: recommended as `;1004243;;;;`)
    adobe = "visid,date_time,post_product_list\n" + "".join(
        f'{u},{t:%Y-%m-%d %H:%M:%S},"{c};{i};1;{p};;"\n'  # the category first, or empty
        for (u, t, i, p), c in zip(bought, ["", "Shoes"], strict=True)
    )
    got = ingest(con, "events", write(tmp_path / "hit_data.csv", adobe), pii_key=KEY,
                 mapping={"user_id": "visid", "ts": "date_time", "item_id": "post_product_list"},
                 reading=Reading(event_type="purchase"))  # fmt: skip
    assert "warning: 2 item id(s) are product lists like Adobe Analytics' (';" in said_of(got)


def test_a_csv_column_of_json_objects_gives_its_keys(con, tmp_path):
    """helper-35: PostHog's CSV export keeps an event's product, price and session in a JSON
    `properties` column: ignored whole, spend 0 and no top category for anyone, and `--map
    amount=properties.revenue` found no such column. REES46's first lines as PostHog events."""
    import csv as _csv
    import io
    import json as _json

    with REES46.open() as fh:
        head = fh.readline().rstrip("\n").split(",")
        lines = [dict(zip(head, next(fh).rstrip("\n").split(","), strict=True)) for _ in range(20)]
    out = io.StringIO()
    writer = _csv.writer(out)
    writer.writerow(["uuid", "event", "properties", "timestamp", "distinct_id"])
    for n, r in enumerate(lines):
        props = {"product_id": r["product_id"], "price": float(r["price"]), "brand": r["brand"],
                 "$session_id": r["user_session"], "$current_url": "https://shop.example/p"}  # fmt: skip
        writer.writerow([f"u{n}", f"product_{r['event_type']}", _json.dumps(props),
                         r["event_time"].removesuffix(" UTC"), r["user_id"]])  # fmt: skip
    path = write(tmp_path / "posthog.csv", out.getvalue())
    got = ingest(con, "events", path, pii_key=KEY, mapping={"user_id": "distinct_id",
                 "session_id": "properties.$session_id"},
                 reading=check_reading(SOURCES["events"], Reading(values=(
                     ("event_type", "product_view", "view"), ("event_type", "product_cart", "cart"),
                     ("event_type", "product_purchase", "purchase")))))  # fmt: skip
    assert (got.loaded, got.quarantined) == (20, {})
    assert (
        got.columns["item_id"] == "properties.product_id"
        and got.columns["price"] == "properties.price"
    )
    want = sorted(
        (r["user_id"], r["product_id"], float(r["price"]), r["user_session"]) for r in lines
    )
    assert sorted(rows(con, "SELECT user_id, item_id, price, session_id FROM raw_events")) == want
    # a key holding an object is no value: quarantined, as in JSON lines (helper-38: stored as
    # the text {"id": 5})
    nested = io.StringIO()
    _csv.writer(nested).writerows([
        ["event", "properties", "timestamp", "distinct_id"],
        ["product_view", _json.dumps({"product_id": {"id": 5}}), "2019-10-01 10:00:00", "u1"],
        ["product_view", _json.dumps({"product_id": "6"}), "2019-10-01 10:01:00", "u1"],
    ])  # fmt: skip
    got = ingest(con, "events", write(tmp_path / "nested.csv", nested.getvalue()), pii_key=KEY,
                 mapping={"user_id": "distinct_id"},
                 reading=check_reading(SOURCES["events"], Reading(values=(("event_type", "product_view", "view"),))))  # fmt: skip
    assert (got.loaded, got.quarantined) == (1, {"bad_type:item_id": 1})


def test_a_file_cut_short_is_refused_whole(con, tmp_path):
    """helper-37: a day's file cut off in the middle of a line loaded with one quarantined line
    and exit code 0, nothing saying it was short; then (helper-53) it failed the command but its
    49 lines stayed and were built on, and the whole file sent again loaded beside them. Now it
    loads nothing: its lines are in quarantine, and the whole file goes in as any file does.
    Taobao's first 50 lines, the last one cut."""
    text = "".join(TAOBAO.read_text().splitlines(keepends=True)[:51])
    cut = write(tmp_path / "day35.csv", text[: len(text) - 20])
    raw_before = snapshot(con).get("main.raw_events", [])
    got = ingest(con, "events", cut, pii_key=KEY)
    assert (got.loaded, got.quarantined) == (0, {"wrong_field_count": 1, "file_refused": 49})
    assert snapshot(con)["main.raw_events"] == raw_before
    said = said_of(got)
    assert "the file ends in the middle of its last line, quarantined as wrong_field_count" in said
    assert "day35.csv ends in the middle of its last line (cut short?): nothing of it loaded" in (
        got.failure() or ""
    )
    # and the command fails, so a scheduler notices (helper-53: exit 0, and the build went on)
    out = run_cli("ingest", "events", str(cut), warehouse=tmp_path / "cli.duckdb", ok=False)
    assert "day35.csv ends in the middle of its last line (cut short?)" in " ".join(out.split())
    # the whole file, sent after it, loads its 50 lines once
    sent = run_cli("ingest", "events", str(write(tmp_path / "whole.csv", text)),
                   warehouse=tmp_path / "cli.duckdb")  # fmt: skip
    assert "50 loaded, 0 quarantined" in sent
    # refused in place of that load, it leaves the warehouse as it was (only a refused first
    # file removes the warehouse it created)
    run_cli("ingest", "events", str(cut), "--replace-batch", "1",
            warehouse=tmp_path / "cli.duckdb", ok=False)  # fmt: skip
    with duckdb.connect(str(tmp_path / "cli.duckdb"), read_only=True) as wh:
        assert wh.execute("SELECT count(*) FROM raw_events").fetchone() == (50,)
    # cut inside its last column, the line's time reads as 1970: cut too (helper-95: loaded)
    late = write(tmp_path / "day38.csv", text[: len(text) - 7])
    out = " ".join(
        run_cli("ingest", "events", str(late), warehouse=tmp_path / "c.duckdb", ok=False).split()
    )
    assert "quarantined as early_timestamp: was it cut short?" in out, out
    assert "0 loaded, 50 quarantined" in out, out
    # a --replace-batch with a cut file changes nothing either
    before = snapshot(con)
    with pytest.raises(ProfilerError, match="cut short.*the earlier load .batch 1. stays"):
        ingest(con, "events", cut, pii_key=KEY, replace_batch=1)
    assert snapshot(con) == before
    # a footer sentence without a line break is no cut record: said, but no failure (helper-58:
    # eBay's report failed every run)
    footer = write(tmp_path / "day36.csv", text + "50 record(s) downloaded")
    out = " ".join(
        run_cli("ingest", "events", str(footer), warehouse=tmp_path / "cli2.duckdb").split()
    )
    assert "50 loaded, 1 quarantined" in out and "cut short" not in out
    assert "the file's last line, without a line break, is no record (a footer?)" in out
    # a totals line with a label where the time goes, without a line break, is no cut (helper-96:
    # the whole file was refused)
    total = write(tmp_path / "day39.csv", text + "Total,,,pv,ALL")
    out = " ".join(run_cli("ingest", "events", str(total), warehouse=tmp_path / "t.duckdb").split())
    assert "50 loaded, 1 quarantined" in out and "cut short" not in out, out
    # a record cut in its first two fields is still a cut (helper-59)
    early = write(tmp_path / "day37.csv", text + "1,22683")
    run_cli("ingest", "events", str(early), warehouse=tmp_path / "cli3.duckdb", ok=False)
    # gzipped, the cut is in the compressed stream: refused whole, not DuckDB's IO error
    packed = gzip.compress(text.encode())
    before = snapshot(con)
    with pytest.raises(ProfilerError, match="day35.csv.gz is cut short"):
        ingest(
            con, "events", write(tmp_path / "day35.csv.gz", packed[: len(packed) // 2]), pii_key=KEY
        )
    assert snapshot(con) == before
    with pytest.raises(ProfilerError, match="empty file"):  # no gzip data at all is empty
        ingest(con, "events", write(tmp_path / "none.csv.gz", b""), pii_key=KEY)
    whole = ingest(con, "events", write(tmp_path / "day36.csv", text), pii_key=KEY)
    assert whole.cut_short is None  # a whole file's last line ends with its line break, or not
    assert (
        ingest(con, "events", write(tmp_path / "d.csv", text.rstrip("\n")), pii_key=KEY).cut_short
        is None
    )
    # a file with a column profiler does not read, or with personal columns, keeps its lines'
    # text out of `quarantine`; the footer is told from the line as sent (helper-96: the
    # redaction's own word "record" passed these cut files as footers, exit 0)
    extra = "".join(line.rstrip("\n") + ",web\n" for line in text.splitlines(keepends=True))
    before = snapshot(con)
    got = ingest(con, "events", write(tmp_path / "day40.csv", extra[:-20]), pii_key=KEY)
    assert (got.loaded, got.cut_record) == (0, True) and "cut short" in (got.failure() or "")
    assert snapshot(con)["main.raw_events"] == before["main.raw_events"]
    users = USERS.read_text(encoding="utf-8")
    got = ingest(con, "users", write(tmp_path / "users.csv", users[:-30]), pii_key=KEY)
    assert (got.loaded, got.cut_record) == (0, True) and "cut short" in (got.failure() or "")
    got = ingest(con, "events", write(tmp_path / "d41.csv", extra + "50 records"), pii_key=KEY)
    assert (got.loaded, got.cut_short, got.cut_record) == (50, "wrong_field_count", False)


def test_a_value_mapped_to_skip_is_quarantined_as_skipped(con, tmp_path):
    """helper-35: Snowplow sends an order as `transaction` beside its `transaction_item` lines;
    both read as purchases, the order counted twice, and nothing could leave one out. REES46's
    first purchase as one order of one item."""
    bought = rees46_purchases()[0]
    u, t, i, p = bought
    body = "domain_userid,derived_tstamp,event,ti_sku,ti_price,tr_total\n" + (
        f"{u},{t:%Y-%m-%d %H:%M:%S},transaction,,,{p}\n{u},{t:%Y-%m-%d %H:%M:%S},transaction_item,{i},{p},\n"
    )
    reading = check_reading(
        SOURCES["events"],
        Reading(
            values=(
                ("event_type", "transaction_item", "purchase"),
                ("event_type", "transaction", "skip"),
            )
        ),
    )
    mapping = {"user_id": "domain_userid", "ts": "derived_tstamp", "item_id": "ti_sku",
               "price": "ti_price", "amount": "tr_total"}  # fmt: skip
    got = ingest(con, "events", write(tmp_path / "snowplow.csv", body), pii_key=KEY,
                 reading=reading, mapping=mapping)  # fmt: skip
    assert (got.loaded, got.quarantined) == (1, {"skipped_event_type": 1})
    assert got.unknown["skipped_event_type"] == [("transaction", 1)]
    assert rows(con, "SELECT event_type, item_id, price FROM raw_events") == [
        ("purchase", str(i), p)
    ]
    with pytest.raises(ProfilerError, match="'skip' is not one of the event types"):
        check_reading(SOURCES["events"], Reading(event_type="skip"))
    # a word the vocabulary already knows, mapped: the map wins (an order line sent as
    # `purchase` beside its `purchase_item` lines would count the order twice)
    words = (("event_type", "purchase_item", "purchase"), ("event_type", "purchase", "skip"))
    renamed = body.replace(",transaction_item,", ",purchase_item,").replace(
        ",transaction,", ",purchase,"
    )
    other = duckdb.connect(str(tmp_path / "renamed.duckdb"))
    got = ingest(other, "events", write(tmp_path / "renamed.csv", renamed), pii_key=KEY,
                 reading=check_reading(SOURCES["events"], Reading(values=words)),
                 mapping=mapping)  # fmt: skip
    assert (got.loaded, got.quarantined) == (1, {"skipped_event_type": 1})


def test_a_bare_date_column_is_the_time_only_when_no_other_column_is():
    """CDNOW's `date` is the time; an export with `date` and `datetime` (or `created_at`) keeps its
    real times. H&M's `article_id` is the item."""
    from profiler.ingest_columns import resolve_columns
    from profiler.sources import SOURCES

    def ts(*columns: str) -> str:
        found = ["user_id", "event_type", *columns]
        return resolve_columns(SOURCES["events"], found, {}, "f")[0]["ts"]

    assert ts("date") == "date"
    assert ts("date", "datetime") == "datetime"
    assert ts("created_at", "date") == "created_at"
    assert ts("order_date", "date") == "order_date"
    assert (
        resolve_columns(SOURCES["feedback"], ["user_id", "date", "kind"], {}, "f")[0]["ts"]
        == "date"
    )
    found = ["customer_id", "event_type", "t_dat", "article_id"]
    resolved = resolve_columns(SOURCES["events"], found, {"ts": "t_dat"}, "f")
    assert resolved[0]["item_id"] == "article_id"
    # Olist's orders: the purchase time, never a delivery date (helper-61)
    olist = ["order_id", "customer_id", "order_status", "order_purchase_timestamp",
             "order_approved_at", "order_delivered_customer_date", "order_estimated_delivery_date"]  # fmt: skip
    resolved = resolve_columns(SOURCES["events"], olist, {}, "f", constant=["event_type"])
    assert resolved[0]["ts"] == "order_purchase_timestamp"
    # Alibaba's display-ad logs and JD.com's JData (helper-102: their event words, items and
    # categories went unread, listed as ignored)
    alibaba = ["user", "time_stamp", "btag", "cate", "brand"]
    assert resolve_columns(SOURCES["events"], alibaba, {}, "f")[0] == {
        "user_id": "user", "ts": "time_stamp", "event_type": "btag", "category_id": "cate",
        "brand": "brand",
    }  # fmt: skip
    # an abbreviation with a dot, as ERP and point-of-sale exports write `Qty.` (without it
    # each line reads as one unit)
    pos = ["Customer ID", "Order Date", "SKU", "Qty.", "Unit Price"]
    assert resolve_columns(SOURCES["events"], pos, {}, "f", constant=["event_type"])[0] == {
        "user_id": "Customer ID", "ts": "Order Date", "item_id": "SKU", "price": "Unit Price",
        "quantity": "Qty.",
    }  # fmt: skip
    jdata = ["user_id", "sku_id", "time", "model_id", "type", "cate", "brand"]
    assert resolve_columns(SOURCES["events"], jdata, {}, "f")[0] == {
        "user_id": "user_id", "item_id": "sku_id", "ts": "time", "event_type": "type",
        "category_id": "cate", "brand": "brand",
    }  # fmt: skip
    profile = ["userid", "cms_segid", "final_gender_code", "age_level", "user_reg_tm"]
    assert resolve_columns(SOURCES["users"], profile, {}, "f")[0] == {
        "user_id": "userid", "gender": "final_gender_code", "signup_ts": "user_reg_tm",
    }  # fmt: skip


def test_timestamp_forms(con, tmp_path):
    cases = {
        "a": ("2019-10-01 10:00:00 UTC", datetime(2019, 10, 1, 10)),
        "b": ("2019-10-01T10:00:00+02:00", datetime(2019, 10, 1, 8)),
        "c": ("2019-10-01T10:00:00Z", datetime(2019, 10, 1, 10)),
        "d": ("2019-10-01 10:00:00", datetime(2019, 10, 1, 10)),
        "e": ("2019-10-01 10:00:00 -0530", datetime(2019, 10, 1, 15, 30)),
        "f": ("1569924000", datetime(2019, 10, 1, 10)),
        "g": ("1569924000123", datetime(2019, 10, 1, 10, 0, 0, 123000)),
        "h": ("2019-10-01", datetime(2019, 10, 1)),
        # Unix microseconds (GA4's event_timestamp) and nanoseconds (pandas' datetime64 as a number)
        "i": ("1569924000123456", datetime(2019, 10, 1, 10, 0, 0, 123456)),
        "j": ("1569924000123456000", datetime(2019, 10, 1, 10, 0, 0, 123456)),
    }
    body = "".join(f"u,view,{k},{v[0]}\n" for k, v in cases.items())
    con.execute("SET TimeZone = 'America/New_York'")  # the caller's zone must not matter
    ingest(con, "events", write(tmp_path / "t.csv", "user_id,event_type,item_id,ts\n" + body),
           pii_key=KEY)  # fmt: skip
    got = dict(rows(con, "SELECT item_id, ts FROM raw_events"))
    assert got == {k: v[1] for k, v in cases.items()}
    assert rows(con, "SELECT current_setting('TimeZone')") == [("America/New_York",)]


# --- other formats ------------------------------------------------------------------------------


def test_jsonl_records_and_faults(con):
    result = ingest(con, "events", FIXTURES / "events.jsonl", pii_key=KEY)
    assert result.quarantined == {
        "bad_json": 2, "empty_line": 1, "missing_ts": 1, "unknown_event_type": 1,
        "bad_encoding": 1,
    }  # fmt: skip
    assert (result.lines, result.loaded) == (9, 3)
    assert result.ignored == ["extra"]
    assert rows(con, "SELECT record FROM quarantine ORDER BY record") == [
        (r,) for r in range(4, 10)
    ]
    assert rows(con, "SELECT amount FROM raw_events WHERE event_type = 'purchase'") == [(25.0,)]


def test_jsonl_read_by_duckdb_when_clean(con, tmp_path):
    """Without bad bytes DuckDB reads the lines itself; the records and reasons are the same."""
    lines = (FIXTURES / "events.jsonl").read_bytes().splitlines()[:8]  # drop the bad-bytes line
    path = write(tmp_path / "clean.ndjson", b"\n".join(lines) + b"\n")
    result = ingest(con, "events", path, pii_key=KEY)
    assert result.quarantined == {
        "bad_json": 2, "empty_line": 1, "missing_ts": 1, "unknown_event_type": 1,
    }  # fmt: skip
    assert rows(con, "SELECT record FROM quarantine ORDER BY record") == [(r,) for r in range(4, 9)]


def test_parquet_native_types(con, tmp_path):
    path = tmp_path / "events.parquet"
    con.execute(
        f"COPY (SELECT CASE WHEN row_number() OVER () = 3 THEN NULL ELSE user_id END AS user_id, "
        f"item_id, behavior_type AS event_type, to_timestamp(ts) AS ts, "
        f"CAST(1.5 AS DECIMAL(10, 2)) AS price FROM read_csv('{TAOBAO}') LIMIT 100) TO '{path}'"
    )
    result = ingest(con, "events", path, pii_key=KEY)
    assert (result.lines, result.loaded, result.quarantined) == (100, 99, {"missing_user_id": 1})
    (record, raw) = rows(con, "SELECT record, raw FROM quarantine")[0]
    assert record == 3 and '"user_id":null' in raw
    expected = rows(con, f"SELECT make_timestamp(ts * 1000000) FROM read_csv('{TAOBAO}') LIMIT 1")
    assert rows(con, "SELECT ts FROM raw_events LIMIT 1") == expected


def test_parquet_with_a_file_row_number_column_loads(con, tmp_path):
    """helper-82: a DuckDB export written with `file_row_number=true` carries that column, and
    reading it numbered rows under the same name: "cannot read as Parquet". Rows are numbered
    in the file's order all the same (the 3rd line, quarantined, is record 3), also beside a
    `rowid` column (helper-86: it shadowed DuckDB's row ids, and every line was record 8)."""
    path = tmp_path / "events.parquet"
    con.execute(
        f"COPY (SELECT CASE WHEN row_number() OVER () = 3 THEN NULL ELSE user_id END AS user_id, "
        f"item_id, behavior_type AS event_type, to_timestamp(ts) AS ts, "
        f"1000 - row_number() OVER () AS file_row_number, 7 AS rowid FROM read_csv('{TAOBAO}') "
        "LIMIT 100) "
        f"TO '{path}'"
    )
    result = ingest(con, "events", path, pii_key=KEY)
    assert (result.lines, result.loaded, result.quarantined) == (100, 99, {"missing_user_id": 1})
    assert "file_row_number" in result.ignored
    assert rows(con, "SELECT record FROM quarantine") == [(3,)]


def test_parquet_float32_prices_are_read_as_written(con, tmp_path):
    """A REAL price 0.0123 (H&M's prices are that small) is 0.0123, not 0.012299999594688416."""
    path = tmp_path / "events.parquet"
    con.execute(
        f"COPY (SELECT user_id, item_id, behavior_type AS event_type, ts, "
        f"CAST(0.0123 + item_id % 7 AS FLOAT) AS price FROM read_csv('{TAOBAO}') LIMIT 50) "
        f"TO '{path}'"
    )
    assert ingest(con, "events", path, pii_key=KEY).loaded == 50
    assert rows(con, "SELECT count(*) FROM raw_events WHERE price <> round(price, 4)") == [(0,)]
    assert 0.0123 in {p for (p,) in rows(con, "SELECT price FROM raw_events")}


# --- duplicates and refusals --------------------------------------------------------------------


def test_same_content_loads_once(con, tmp_path):
    first = ingest(con, "events", MESSY, pii_key=KEY)
    copy = write(tmp_path / "renamed.csv", MESSY.read_bytes())
    again = ingest(con, "events", copy, pii_key=KEY)
    assert again.duplicate and again.batch_id is None and again.loaded == 0
    assert again.duplicate_of == first.batch_id
    assert rows(con, "SELECT count(*) FROM _profiler.batches") == [(1,)]
    assert rows(con, "SELECT count(*) FROM raw_events") == [(12,)]


def test_the_same_content_gzipped_or_not_loads_once(con, tmp_path):
    """A file sent again compressed (or unzipped) is the same content: a date-only orders feed
    would otherwise count every order twice, since equal lines of a date are separate orders."""
    first = ingest(con, "events", TAOBAO, pii_key=KEY)
    zipped = write(tmp_path / "taobao.csv.gz", gzip.compress(TAOBAO.read_bytes()))
    again = ingest(con, "events", zipped, pii_key=KEY)
    assert again.duplicate and again.duplicate_of == first.batch_id
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    ingest(other, "events", zipped, pii_key=KEY)
    assert ingest(other, "events", TAOBAO, pii_key=KEY).duplicate
    # a warehouse of an older version kept a gzip file's fingerprint of its bytes on disk
    other.execute(
        "UPDATE _profiler.batches SET content_sha256 = ?",
        [hashlib.sha256(zipped.read_bytes()).hexdigest()],
    )
    assert ingest(other, "events", zipped, pii_key=KEY).duplicate
    assert rows(other, "SELECT count(*) FROM raw_events") == [(94_287,)]
    # gzip files of several members (`cat a.gz b.gz`, appended logs) are read, and fingerprinted,
    # to the end, a third member too: two that share their first two members are two contents
    lines = TAOBAO.read_text().splitlines(keepends=True)
    first = b"".join(
        gzip.compress("".join(lines[a:b]).encode()) for a, b in ((0, 501), (501, 1001))
    )
    third = duckdb.connect(str(tmp_path / "third.duckdb"))
    for i, rest in enumerate((lines[1001:2001], lines[2001:3001])):
        path = write(tmp_path / f"members{i}.csv.gz", first + gzip.compress("".join(rest).encode()))
        assert ingest(third, "events", path, pii_key=KEY).loaded == 2000


def test_batch_ids_grow_across_sources(con):
    a = ingest(con, "events", MESSY, pii_key=KEY)
    b = ingest(con, "users", USERS, pii_key=KEY)
    c = ingest(con, "events", TAOBAO, pii_key=KEY)
    assert a.batch_id < b.batch_id < c.batch_id
    assert rows(con, "SELECT DISTINCT _batch_id FROM raw_users") == [(b.batch_id,)]


@pytest.mark.parametrize(
    ("source", "name", "content", "mapping", "message"),
    [
        ("events", "no_ts.csv", "user_id,event_type\n1,pv\n", None, "ts"),
        ("events", "x.csv", "user_id,event_type,ts\n", {"user_id": "a;drop"}, "no column 'a;drop'"),
        ("events", "x.csv", "user_id,event_type,ts\n", {"user_id": "a\nb"}, "name a column"),
        ("events", "x.csv", "user_id,event_type,ts\n", {"nonsense": "user_id"}, "not a column"),
        ("events", "x.csv", "user_id,event_type,ts\n", {"ts": "when"}, "no column 'when'"),
        ("nosuch", "x.csv", "user_id,event_type,ts\n", None, "unknown source"),
        ("events", "x.xlsx", "user_id,event_type,ts\n", None, "save the sheet as CSV UTF-8"),
        ("events", "x.zip", "user_id,event_type,ts\n", None, "unzip it first"),
        (
            "events",
            "mac.csv",
            "user_id,event_type,ts\r1,view,2020-01-01 10:00:00\r",
            None,
            "carriage return alone",
        ),  # fmt: skip
        ("events", "x.parquet", "not parquet at all", None, "Parquet"),
        ("events", "x.json", '[{"user_id": 1}]\n', None, "JSON array"),
        ("events", "x.csv.gz", "not gzip", None, "cannot read"),
    ],
)
def test_refused_file_changes_nothing(con, tmp_path, source, name, content, mapping, message):
    ingest(con, "events", MESSY, pii_key=KEY)
    before = snapshot(con)
    with pytest.raises(ProfilerError, match=message) as err:
        ingest(con, source, write(tmp_path / name, content), mapping=mapping, pii_key=KEY)
    assert "\n" not in str(err.value)
    assert snapshot(con) == before


def test_bad_times_name_the_format_that_reads_them(con, tmp_path):
    """helper-36: every file of unreadable times got the hint '%m/%d/%Y %H:%M', also BigCommerce's
    day-first 01/10/2019 and its RFC 2822 dates. REES46's first purchases, written both ways."""
    bought = rees46_purchases()[:13]
    day_first = "customer_id,order_date,product_id,price\n" + "".join(
        f"{u},{t.replace(day=n + 1):%d/%m/%Y %H:%M},{i},{p}\n"
        for n, (u, t, i, p) in enumerate(bought)
    )
    got = ingest(con, "events", write(tmp_path / "bc.csv", day_first), pii_key=KEY,
                 reading=Reading(event_type="purchase"))  # fmt: skip
    said = said_of(got)
    assert "those times read with --ts-format '%d/%m/%Y %H:%M': send the file again" in said, said
    rfc = "customer_id,order_date,product_id,price\n" + "".join(
        f'{u},"{t:%a, %d %b %Y %H:%M:%S} +0000",{i},{p}\n' for u, t, i, p in bought[:2]
    )
    got = ingest(con, "events", write(tmp_path / "rfc.csv", rfc), pii_key=KEY,
                 reading=Reading(event_type="purchase"))  # fmt: skip
    said = said_of(got)
    assert "--ts-format '%a, %d %b %Y %H:%M:%S %z'" in said, said


def test_one_day_above_12_among_thousands_of_times_settles_the_format(con, tmp_path):
    """helper-115: the format hint tried 200 of a file's distinct bad times, as DuckDB's DISTINCT
    gave them, so a day-first file whose days above 12 were few was told 'day or month first?'.
    REES46's purchases, 3,000 orders on days 1-12 of a year, and one on the 25th."""
    bought = rees46_purchases()
    times = [datetime(2019, 1 + n % 12, 1 + n // 12 % 12, n // 144, n % 60) for n in range(3000)]
    times[1234] = times[1234].replace(day=25)
    day_first = "customer_id,order_date,product_id,price\n" + "".join(
        f"{u},{t:%d/%m/%Y %H:%M},{i},{p}\n"
        for (u, _, i, p), t in zip(itertools.cycle(bought), times, strict=False)
    )
    got = ingest(con, "events", write(tmp_path / "orders.csv", day_first), pii_key=KEY,
                 reading=Reading(event_type="purchase"))  # fmt: skip
    said = said_of(got)
    assert "those times read with --ts-format '%d/%m/%Y %H:%M': send the file again" in said, said


def test_missing_column_message_helps(con, tmp_path):
    with pytest.raises(ProfilerError) as err:
        ingest(con, "events", write(tmp_path / "a.csv", "uid2,action,when\n"), pii_key=KEY)
    msg = str(err.value)
    assert "user_id" in msg and "uid2, action, when" in msg and "--map" in msg
    # RecSys 2015's clicks: sessions, no users (helper-61: told only --map user_id=COLUMN)
    clicks = "session_id,timestamp,item_id,category\n1,2014-04-07T10:51:09.277Z,214536502,0\n"
    with pytest.raises(ProfilerError) as err:
        ingest(con, "events", write(tmp_path / "clicks.csv", clicks), pii_key=KEY,
               reading=Reading(event_type="view"))  # fmt: skip
    assert (
        "a file of sessions without users ('session_id') can say --map user_id='session_id'"
        in str(err.value)
    )


def test_unreadable_file_refused(con, tmp_path):
    with pytest.raises(ProfilerError, match="cannot read"):
        ingest(con, "events", tmp_path / "absent.csv", pii_key=KEY)
    assert snapshot(con) == {}


def test_crash_inside_the_transaction_changes_nothing(con):
    ingest(con, "events", REES46, pii_key=KEY)
    before = snapshot(con)

    class Crashing:
        def __init__(self, inner):
            self.inner = inner

        def execute(self, sql, *args):
            if "INSERT INTO _profiler.batches" in sql:
                raise RuntimeError("simulated crash")
            return self.inner.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    with pytest.raises(RuntimeError):
        ingest(Crashing(con), "events", MESSY, pii_key=KEY)
    assert snapshot(con) == before


def test_empty_and_header_only_files(con, tmp_path):
    """A header without rows is a day with nothing to send: a batch of 0 lines. A file with no
    bytes at all (or a gzip of none) is a failed export: refused, nothing recorded."""
    for name, data in (("e.csv", b""), ("e.csv.gz", gzip.compress(b"")), ("e.parquet", b"")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ProfilerError, match="empty file"):
            ingest(con, "events", tmp_path / name, pii_key=KEY)
    header = ingest(
        con, "events", write(tmp_path / "h.csv", "user_id,event_type,ts\n"), pii_key=KEY
    )
    assert (header.lines, header.loaded, header.quarantined) == (0, 0, {})
    assert header.batch_id is not None
    assert rows(con, "SELECT count(*), sum(lines) FROM _profiler.batches") == [(1, 0)]
    # said, so an outage day does not go by unnoticed (helper-69)
    assert "warning: the file holds a header and no line" in describe_ingest(header)

    assert header.failure() is None  # a day with nothing to send is no failed load
    run_cli("ingest", "events", str(tmp_path / "h.csv"), warehouse=tmp_path / "cli.duckdb")


def test_a_file_whose_only_line_cannot_load_fails_the_command(con, tmp_path):
    """A day of one line that loads nothing fails as a day of many does: its line is in
    quarantine, and a scheduler must not see exit 0 (a bound of "more than one line" passed it).
    Taobao's first line, its time sent as a word."""
    header, first = TAOBAO.read_text().splitlines()[:2]
    one = write(tmp_path / "one.csv", f"{header}\n{first.rsplit(',', 1)[0]},yesterday\n")
    got = ingest(con, "events", one, pii_key=KEY)
    assert (got.lines, got.loaded, got.refused) == (1, 0, None)
    assert (got.failure() or "").startswith("nothing loaded from 1 lines")
    out = run_cli("ingest", "events", str(one), warehouse=tmp_path / "cli.duckdb", ok=False)
    assert "nothing loaded from 1 lines" in " ".join(out.split()), out


# --- personal data ------------------------------------------------------------------------------


def personal_hits(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every personal value found in any text column of any table, case-insensitively."""
    hits = []
    columns = rows(
        con,
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
        "WHERE data_type = 'VARCHAR' AND NOT internal",
    )
    for schema, table, column in columns:
        for value in PERSONAL:
            n = rows(
                con,
                f'SELECT count(*) FROM "{schema}"."{table}" WHERE contains(lower("{column}"), ?)',
                [value.lower()],
            )[0][0]
            if n:
                hits.append(f"{schema}.{table}.{column}: {value}")
    return hits


def test_personal_values_never_stored(con, tmp_path):
    result = ingest(con, "users", USERS, pii_key=KEY)
    assert (result.loaded, result.quarantined) == (
        3, {"bad_quoting": 1, "bad_type:birth_year": 1, "missing_user_id": 1},
    )  # fmt: skip
    assert personal_hits(con) == []
    (email, phone, name) = rows(
        con, "SELECT email, phone, name FROM raw_users WHERE user_id = '1'"
    )[0]
    assert email == pii.pseudonymise(KEY, "ada.quill@example.com")
    assert phone == pii.pseudonymise(KEY, "8613800138000")
    assert name == pii.pseudonymise(KEY, "Ada Quill")
    assert rows(con, "SELECT signup_ts FROM raw_users WHERE user_id = '100'") == [
        (datetime(2017, 10, 15, 1, 30),)
    ]
    # the same people in a file of read columns only, without an e-mail: Chen Mei's unreadable
    # birth year sends her line to quarantine, which shows it without her name or phone
    keep = ["customer_id", "full_name", "phone", "year_of_birth", "city"]
    table = list(csv.DictReader(USERS.read_text().splitlines()[:4]))
    body = "".join(",".join(csv_field(r[k]) for k in keep) + "\n" for r in table)
    plain = ingest(con, "users", write(tmp_path / "crm.csv", ",".join(keep) + "\n" + body),
                   pii_key=KEY)  # fmt: skip
    assert (plain.loaded, plain.ignored, plain.quarantined) == (2, [], {"bad_type:birth_year": 1})
    assert personal_hits(con) == []


def test_an_email_address_as_user_id_is_pseudonymised(con, tmp_path):
    """An orders export keyed by the buyer's address (`--map user_id=Email`) must not store it:
    the address becomes its pseudonym, the same the users' email column gets, so the two still
    join; a quarantined line holding one is shown only by its hash. The fixture's people, as
    orders lines."""
    body = (
        "Email,Created at,Total\n"
        " Ada.Quill@Example.com ,2017-11-20 10:00:00,12.50\n"
        "bo.lin@example.org,2017-11-21 11:00:00,7\n"
        "chen.mei@example.net,yesterday,3\n"
        "1000,2017-11-22 12:00:00,4\n"
        # helper-36: a mail header's form was stored as sent, name and address
        '"Ada Quill <ada.quill@example.com>",2017-11-23 09:00:00,5\n'
        "Bo Lin <Bo.Lin@example.org>,2017-11-24 09:00:00,6\n"
    )
    orders = write(tmp_path / "orders.csv", body)
    reading = Reading(event_type="purchase")
    mapping = {"user_id": "Email", "ts": "Created at", "amount": "Total"}
    result = ingest(con, "events", orders, mapping=mapping, pii_key=KEY, reading=reading)
    assert (result.loaded, result.quarantined, result.email_ids) == (5, {"bad_timestamp": 1}, 4)
    assert "4 line(s) had an e-mail address as the user id" in describe_ingest(result)
    ingest(con, "users", USERS, pii_key=KEY)
    assert personal_hits(con) == []
    ada = pii.pseudonymise(KEY, "ada.quill@example.com")
    assert rows(con, "SELECT DISTINCT user_id FROM raw_events ORDER BY 1") == sorted(
        [(ada,), (pii.pseudonymise(KEY, "bo.lin@example.org"),), ("1000",)]
    )
    # the orders' buyer is the users file's customer 1, by her address
    assert rows(con, "SELECT user_id FROM raw_users WHERE email = ?", [ada]) == [("1",)]
    (raw,) = rows(con, "SELECT raw FROM quarantine WHERE source = 'events'")[0]
    assert raw.startswith("[redacted: the line holds an e-mail address; hmac ")
    assert pii.user_id_pseudonym(KEY, " Ada.Quill@Example.com") == ada  # what `show` looks up
    assert pii.user_id_pseudonym(KEY, "Ada <ada.quill@example.com>") == ada
    # a value that was always one address keeps the pseudonym older warehouses hold (helper-38)
    old = "<Ada.Quill@example.com>"
    assert pii.user_id_pseudonym(KEY, old) == pii.pseudonymise(KEY, old.lower())
    assert rows(con, "SELECT count(*) FROM raw_events WHERE user_id = ?", [ada]) == [(2,)]


def test_show_makes_the_id_ingest_stored(con, tmp_path):
    """`show` makes a typed id's stored form in Python (`user_id_pseudonym`), ingest in SQL: the
    two agree. An @ without a domain is no address and stays as sent (a user id like
    `ada@localhost` hashed, `show ada@localhost` found no one); an address behind a tab, which
    DuckDB's trim() leaves, is the address found inside (the fixture's Ada)."""
    ids = [
        "ada@localhost",
        "bo.lin@shop",
        "mailto:Ada.Quill@example.com\t",
        " Ada.Quill@Example.com",
    ]
    body = "".join(f'"{u}",view,2017-11-25 10:00:00,1\n' for u in ids)
    path = write(tmp_path / "events.csv", "user_id,event_type,ts,item_id\n" + body)
    assert ingest(con, "events", path, pii_key=KEY).loaded == 4
    stored = {u for (u,) in rows(con, "SELECT user_id FROM raw_events")}
    ada = pii.pseudonymise(KEY, "ada.quill@example.com")
    assert stored == {"ada@localhost", "bo.lin@shop", ada}
    assert [pii.user_id_pseudonym(KEY, u) for u in ids] == [
        "ada@localhost",
        "bo.lin@shop",
        ada,
        ada,
    ]


def test_replace_that_reads_as_before_changes_nothing(con, tmp_path):
    """helper-40: `ingest users X --replace` of the same file read the same way took back the
    whole profile history at the next build, for nothing. The fixture's customers file."""
    first = ingest(con, "users", USERS, pii_key=KEY)
    before = snapshot(con)
    with pytest.raises(
        ProfilerError, match=f"rows and the quarantine of batch {first.batch_id} again"
    ):
        ingest(con, "users", USERS, pii_key=KEY, replace=True)
    assert snapshot(con) == before
    fixed = ingest(con, "users", USERS, pii_key=KEY, replace=True, mapping={"region": "city"})
    assert fixed.replaced == (first.batch_id,)  # read another way, it replaces
    # the same rows in another order are no same reading: the later line of a file wins
    lines = USERS.read_text().splitlines(keepends=True)
    reordered = write(tmp_path / "users_reordered.csv", "".join(lines[:1] + lines[1:][::-1]))
    later = ingest(con, "users", reordered, pii_key=KEY, replace_batch=first.batch_id,
                   mapping={"region": "city"})  # fmt: skip
    assert later.replaced == (first.batch_id,)


def test_replace_of_content_never_ingested_is_refused(con, tmp_path):
    """helper-39: the status warning said "ingest the file again with --replace"; the edited file
    (its refunded lines left out) loaded as a new batch beside the first, and the refunds, equal
    purchase lines of both, counted still. --replace is for the same content read anew."""
    bought = rees46_purchases()[:4]
    body = "customer_id,order_date,product_id,price,financial_status\n" + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},{i},{p},{'refunded' if n == 0 else 'paid'}\n"
        for n, (u, t, i, p) in enumerate(bought)
    )
    first = ingest(con, "events", write(tmp_path / "orders.csv", body), pii_key=KEY,
                   reading=Reading(event_type="purchase"))  # fmt: skip
    assert f"--replace-batch {first.batch_id}" in said_of(first)
    paid = write(
        tmp_path / "orders_paid.csv",
        "".join(body.splitlines(keepends=True)[:1] + body.splitlines(keepends=True)[2:]),
    )
    before = snapshot(con)
    with pytest.raises(
        ProfilerError, match="never ingested as events, so it replaces nothing.*--replace-batch N"
    ):
        ingest(
            con, "events", paid, pii_key=KEY, replace=True, reading=Reading(event_type="purchase")
        )
    assert snapshot(con) == before
    fixed = ingest(con, "events", paid, pii_key=KEY, replace_batch=first.batch_id,
                   reading=Reading(event_type="purchase"))  # fmt: skip
    assert (fixed.batch_id, fixed.loaded) == (first.batch_id, 3)
    assert rows(con, "SELECT count(*) FROM raw_events") == [(3,)]


def test_one_person_by_id_and_by_address_is_said(con, tmp_path):
    """helper-36: PrestaShop orders and customers by customer id, the review app's reviews by the
    buyer's address: one person became two users (74 review-only phantoms, every buyer's ratings
    empty), unsaid. The fixture's customers; reviews of REES46's first purchased items."""
    items = [i for _, _, i, _ in rees46_purchases()[:2]]
    reviews = "customer_email,product_id,rating,created_at\n" + "".join(
        f"{a},{i},{r},2019-10-02 10:00:00\n"
        for a, i, r in zip(
            ["ada.quill@example.com", "bo.lin@example.org"], items, [1, 5], strict=True
        )
    )
    path = write(tmp_path / "reviews.csv", reviews)
    reading = Reading(kind="review")
    first = ingest(
        con, "feedback", path, pii_key=KEY, reading=reading, mapping={"user_id": "customer_email"}
    )
    assert first.by_address == (0, 2)  # no customers file yet
    users = ingest(con, "users", USERS, pii_key=KEY)  # Ada is customer 1, Bo 100
    said = said_of(users)
    assert users.by_address[0] == 2 and "2 of " in said, said
    assert "known to events or feedback by their e-mail" in said
    again = ingest(con, "feedback", write(tmp_path / "reviews2.csv", reviews.replace("10:00", "11:00")),
                   pii_key=KEY, reading=reading, mapping={"user_id": "customer_email"})  # fmt: skip
    said = said_of(again)
    assert (
        "warning: 2 of 2 user id(s) of this file are the e-mail address of a user registered"
        in said
    )
    # a shop that keys its customers by their address too: one user each, nothing to say
    keyed = duckdb.connect(str(tmp_path / "keyed.duckdb"))
    ingest(keyed, "feedback", path, pii_key=KEY, reading=reading,
           mapping={"user_id": "customer_email"})  # fmt: skip
    both = "".join(f"{a},{a}\n" for a in ["ada.quill@example.com", "bo.lin@example.org"])
    same = ingest(keyed, "users", write(tmp_path / "by_address.csv", "user_id,email\n" + both),
                  pii_key=KEY)  # fmt: skip
    assert same.by_address == (0, 2) and "by their e-mail" not in said_of(same)


def test_address_ids_an_older_version_stored_are_named_until_sent_again(con, tmp_path):
    """helper-40: a warehouse of an older profiler holds `Jane Doe <jane@x.com>` user ids as
    sent; the upgrade said nothing. REES46's first purchases, their buyers as such addresses."""
    from profiler.report import address_ids

    body = "customer,order_date,product_id,price\n" + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},{i},{p}\n" for u, t, i, p in rees46_purchases()[:3]
    )
    path = write(tmp_path / "orders.csv", body)
    first = ingest(con, "events", path, pii_key=KEY, reading=Reading(event_type="purchase"),
                   mapping={"user_id": "customer"})  # fmt: skip
    assert address_ids(con) == ""
    con.execute("UPDATE raw_events SET user_id = 'Jane Doe <jane@x.com>'")  # as stored before
    con.execute("DELETE FROM _profiler.settings WHERE name = 'address_ids_checked_through_batch'")
    said = address_ids(con)
    assert f"3 in raw_events (batch {first.batch_id})" in said and "--replace" in said, said
    assert address_ids(con) == said  # said again until the file is sent again
    ingest(con, "events", path, pii_key=KEY, reading=Reading(event_type="purchase"),
           mapping={"user_id": "customer"}, replace=True)  # fmt: skip
    assert address_ids(con) == ""


def test_pseudonyms_stable_per_key(tmp_path):
    def emails(key: bytes, name: str) -> list[tuple]:
        with duckdb.connect(str(tmp_path / name)) as c:
            ingest(c, "users", USERS, pii_key=key)
            return rows(c, "SELECT user_id, email FROM raw_users ORDER BY user_id")

    assert emails(KEY, "a.duckdb") == emails(KEY, "b.duckdb")
    assert emails(KEY, "a2.duckdb") != emails(b"another key", "c.duckdb")


def test_fast_hmac_matches_the_standard():
    for key in (b"k", b"x" * 64, b"y" * 100):
        digest = pii._hasher(key)
        assert digest("ada@example.com") == pii.pseudonymise(key, "ada@example.com")


def test_pii_key_file_created_once_private(tmp_path, monkeypatch):
    monkeypatch.delenv("PROFILER_PII_KEY", raising=False)
    settings = Settings(project_dir=tmp_path, warehouse=tmp_path / "wh.duckdb")
    key = pii.load_pii_key(settings)
    path = tmp_path / ".profiler" / "pii.key"
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert pii.load_pii_key(settings) == key
    monkeypatch.setenv("PROFILER_PII_KEY", "from-env")
    assert pii.load_pii_key(settings) == b"from-env"


KEY_MAKER = """
import hashlib
from pathlib import Path
from profiler.pii import load_pii_key
from profiler.settings import Settings
released()
for n in range(int(ARGS[1])):
    project = Path(ARGS[0]) / str(n)
    try:
        key = load_pii_key(Settings(project_dir=project, warehouse=project / "wh.duckdb"))
        print(hashlib.sha256(key).hexdigest())
    except Exception as err:
        print(f"error: {err}")
"""


ALONE = "import sys\nARGS = sys.argv[1:]\nreleased = lambda: None\n"  # KEY_MAKER run on its own


def test_two_processes_making_the_pii_key_at_once_agree_on_it(tmp_path, monkeypatch):
    """The key file was created in place, then written: a second process starting at that
    moment (two ingests of a new project, two warehouses) read it empty and failed, `the PII
    key file ... is empty` (75 of 3,000 new projects, here). Now it appears whole: two processes
    making the keys of 600 new projects at once fail on none and get the same key for each."""
    monkeypatch.delenv("PROFILER_PII_KEY", raising=False)
    outputs = at_once(
        KEY_MAKER, [str(tmp_path), "600"], [str(tmp_path), "600"], tmp=tmp_path / "go"
    )
    first, second = (out.splitlines() for out in outputs)
    assert not [line for line in first + second if line.startswith("error")]
    assert len(first) == 600 and first == second
    assert {p.name for p in tmp_path.glob("*/.profiler/*")} == {"pii.key"}


# --- an orders export: no event type column, times in a shop's own format -----------------------


def orders_export(tmp_path: Path) -> tuple[Path, list[tuple[str, datetime, str, float]]]:
    """REES46's purchases as a shop's orders export would send them (the columns of the UCI Online
    Retail export): no event type, times as M/D/YYYY H:MM, CamelCase names the synonyms know only
    as snake_case. Returns the file and its (user, minute, item, price) lines."""
    lines = rees46_purchases()
    body = "".join(
        f"{500000 + i},{item},2,{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d},{price},{user}\n"
        for i, (user, t, item, price) in enumerate(lines)
    )
    header = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
    return write(tmp_path / "orders.csv", header + body), lines


def test_an_orders_export_loads_with_event_type_and_ts_format(con, tmp_path):
    path, lines = orders_export(tmp_path)
    assert len(lines) == 214
    with pytest.raises(ProfilerError, match="--event-type purchase") as err:
        ingest(con, "events", path, pii_key=KEY)
    assert "\n" not in str(err.value) and snapshot(con) == {}

    # read as sent, no time parses: every line is quarantined, none loaded
    first = ingest(con, "events", path, pii_key=KEY, reading=Reading(event_type="purchase"))
    assert (first.loaded, first.quarantined) == (0, {"bad_timestamp": 214})
    assert first.columns == {
        "user_id": "CustomerID", "ts": "InvoiceDate", "item_id": "StockCode",
        "price": "UnitPrice", "quantity": "Quantity",
    }  # fmt: skip

    # so the same file may come again (a wrong reading again is quarantined once, not twice),
    # read with its format, which replaces the earlier quarantine; a third time it is a duplicate
    again = ingest(con, "events", path, pii_key=KEY, reading=Reading(event_type="purchase"))
    assert (again.loaded, again.quarantined) == (0, {"bad_timestamp": 214})
    assert rows(con, "SELECT batch_id, count(*) FROM quarantine GROUP BY ALL") == [
        (again.batch_id, 214)
    ]
    reading = Reading(event_type="buy", ts_format="%m/%d/%Y %H:%M")
    second = ingest(con, "events", path, pii_key=KEY, reading=reading)
    assert (second.duplicate, second.loaded, second.quarantined) == (False, 214, {})
    assert rows(con, "SELECT count(*) FROM quarantine") == [(0,)]
    assert rows(con, "SELECT batch_id, superseded_by FROM _profiler.batches ORDER BY 1") == [
        (first.batch_id, again.batch_id),
        (again.batch_id, second.batch_id),
        (second.batch_id, None),
    ]  # every send stays on record, and says which later send holds its lines
    third = ingest(con, "events", path, pii_key=KEY, reading=reading)
    assert third.duplicate and third.duplicate_of == second.batch_id
    # helper-109: a corrected export in place of a send whose lines a later send holds would
    # count beside that send's rows: refused, it names the batch to replace
    fixed = write(tmp_path / "orders_fixed.csv", "".join(path.read_text().splitlines(True)[:-1]))
    before = snapshot(con)
    for batch, holder in ((first.batch_id, again.batch_id), (again.batch_id, second.batch_id)):
        with pytest.raises(ProfilerError, match=f"already taken over by batch {holder}"):
            ingest(con, "events", fixed, pii_key=KEY, reading=reading, replace_batch=batch)
    assert snapshot(con) == before
    got = rows(
        con,
        "SELECT user_id, ts, item_id, price, event_type, quantity, amount FROM raw_events "
        "ORDER BY ALL",
    )
    assert got == sorted((u, t, i, p, "purchase", 2, 2 * p) for u, t, i, p in lines)


def test_an_export_read_with_day_and_month_swapped_is_replaced(con, tmp_path):
    """REES46's purchases as an orders export (10/1/2019 ...) read day-first: every time parses,
    as 10 January, and nothing fails. The right reading is then refused as the same content,
    pointing to --replace, which takes the wrong rows out and loads the right ones at once."""
    path, lines = orders_export(tmp_path)
    swapped = Reading(event_type="purchase", ts_format="%d/%m/%Y %H:%M")
    wrong = ingest(con, "events", path, pii_key=KEY, reading=swapped)
    assert (wrong.loaded, wrong.quarantined) == (214, {})
    assert rows(con, "SELECT DISTINCT month(ts) FROM raw_events") == [(1,)]

    right = Reading(event_type="purchase", ts_format="%m/%d/%Y %H:%M")
    again = ingest(con, "events", path, pii_key=KEY, reading=right)
    assert again.duplicate and again.duplicate_of == wrong.batch_id
    assert "--replace" in describe_ingest(again)
    # a replace that would load nothing (a mistyped format) is refused and changes nothing
    before = snapshot(con)
    typo = Reading(event_type="purchase", ts_format="%Y-%m-%d %H:%M")
    with pytest.raises(
        ProfilerError,
        match=r"no line loads \(214 lines.*\(batch 1\) stays as it was; nothing changed",
    ) as err:
        ingest(con, "events", path, pii_key=KEY, reading=typo, replace=True)
    assert "\n" not in str(err.value) and snapshot(con) == before

    # scores the model layer wrote at as-ofs that saw the wrong times (10 January on) go too
    con.execute("CREATE TABLE user_scores (user_id VARCHAR, model VARCHAR, as_of TIMESTAMP)")
    con.execute(
        "INSERT INTO user_scores VALUES ('u', 'm', '2018-12-01'), ('u', 'm', '2019-01-15'), "
        "('u', 'm', '2019-10-02'), ('u', 'm', '2019-01-10 00:02')"  # the first wrong time saw it
    )
    lineage = data_lineage(con)
    fixed = ingest(con, "events", path, pii_key=KEY, reading=right, replace=True)
    assert rows(con, "SELECT as_of FROM user_scores") == [(datetime(2018, 12, 1),)]
    # helper-109: no classifier trained on the wrong times is reused (`artifacts`)
    assert data_lineage(con) not in (None, lineage)
    assert (fixed.loaded, fixed.replaced, fixed.batch_id) == (
        214,
        (wrong.batch_id,),
        wrong.batch_id,
    )
    assert "replaced: batch 1: its earlier rows left raw_events" in describe_ingest(fixed)
    got = rows(con, "SELECT user_id, ts, item_id, price, _batch_id FROM raw_events ORDER BY ALL")
    assert got == sorted((u, t, i, p, fixed.batch_id) for u, t, i, p in lines)
    assert rows(con, "SELECT batch_id, loaded, superseded_by FROM _profiler.batches") == [
        (fixed.batch_id, 214, None)
    ]
    # a day past 12 does not match a day-first format: the summary says to check it
    partly = write(
        tmp_path / "partly.csv",
        "CustomerID,InvoiceDate,StockCode\n1,12/1/2009 7:45,a\n1,12/20/2009 10:00,b\n",
    )
    result = ingest(con, "events", partly, pii_key=KEY, reading=swapped)
    assert (result.loaded, result.quarantined) == (1, {"bad_timestamp": 1})
    assert "check --ts-format '%d/%m/%Y %H:%M': 1 time(s) do not match it" in describe_ingest(
        result
    )


def test_a_dat_file_is_delimited_text(con, tmp_path):
    """The RecSys 2015 challenge ships clicks.dat: CSV without a header under another name.
    (Two lines of its shape; the session is the only id, so it stands for the user.)"""
    path = write(
        tmp_path / "clicks.dat",
        "1,2014-04-07T10:51:09.277Z,214536502,0\n1,2014-04-07T10:54:09.868Z,214536500,S\n",
    )
    result = ingest(
        con, "events", path, pii_key=KEY, mapping={"user_id": "session_id"},
        reading=Reading(event_type="view", columns=("session_id", "ts", "item_id", "category_id")),
    )  # fmt: skip
    assert (result.loaded, result.quarantined) == (2, {})
    assert rows(con, "SELECT user_id, ts, category_id FROM raw_events ORDER BY ts") == [
        ("1", datetime(2014, 4, 7, 10, 51, 9, 277000), "0"),
        ("1", datetime(2014, 4, 7, 10, 54, 9, 868000), "S"),
    ]


def test_a_corrected_export_replaces_its_batch(con, tmp_path):
    """REES46's purchases as two daily orders exports; the first is sent again corrected (a price
    fixed, an order added): `--replace-batch` puts it in place of batch 1, batch 2 untouched.
    A wrong batch number or content already loaded elsewhere is refused and changes nothing."""
    buys = rees46_purchases()
    header = "customer_id,order_date,item_id,price\n"
    text = [f"{u},{t},{i},{p}\n" for u, t, i, p in buys]
    # day 1 holds an order whose time the shop's export got wrong, which the fix drops
    day1 = write(
        tmp_path / "day1.csv", header + "".join(text[:100]) + "u2,2019-10-01 25:00:00,9,1.5\n"
    )
    day2 = write(tmp_path / "day2.csv", header + "".join(text[100:]))
    fixed = write(
        tmp_path / "day1_fixed.csv", header + "".join(text[1:100]) + "u,2019-10-01 23:00:00,9,1.5\n"
    )
    orders = Reading(event_type="purchase")
    first, second = (ingest(con, "events", f, pii_key=KEY, reading=orders) for f in (day1, day2))
    assert (first.batch_id, second.batch_id) == (1, 2)
    assert "(batch 1)" in describe_ingest(first)
    before = snapshot(con)
    for batch, content, message in [
        (7, fixed, "no such batch; the newest events batches: 2 day2.csv; 1 day1.csv"),
        (1, day2, "already loaded as batch 2"),
    ]:
        with pytest.raises(ProfilerError, match=message):
            ingest(con, "events", content, pii_key=KEY, reading=orders, replace_batch=batch)
        assert snapshot(con) == before
    with pytest.raises(ProfilerError, match="batch 1 holds events, not users"):
        ingest(con, "users", fixed, pii_key=KEY, replace_batch=1)

    result = ingest(con, "events", fixed, pii_key=KEY, reading=orders, replace_batch=1)
    assert (result.batch_id, result.loaded, result.replaced) == (1, 100, (1,))
    assert rows(con, "SELECT _batch_id, count(*) FROM raw_events GROUP BY 1 ORDER BY 1") == [
        (1, 100),
        (2, len(buys) - 100),
    ]
    assert rows(con, "SELECT count(*) FROM raw_events WHERE user_id = 'u' AND price = 1.5") == [
        (1,)
    ]
    assert rows(con, "SELECT count(*) FROM quarantine") == [(0,)]  # the old send's bad line left
    # the wrong file sent again (a scheduler's retry) is refused: it would count beside its fix
    # (helper-53: spend 7.6x); sent in place of batch 1 it undoes the replace
    after = snapshot(con)
    with pytest.raises(ProfilerError, match="--replace-batch 1 put another file in its place"):
        ingest(con, "events", day1, pii_key=KEY, reading=orders)
    assert snapshot(con) == after
    undone = ingest(con, "events", day1, pii_key=KEY, reading=orders, replace_batch=1)
    assert undone.loaded == 100
    assert rows(con, "SELECT count(*) FROM raw_events WHERE user_id = 'u'") == [(0,)]


def test_a_column_the_feed_sent_before_and_this_file_lacks_is_warned_about(con, tmp_path):
    """A daily feed's next file with `user_session` renamed `session_uuid` and `price` renamed
    `sale_price` loaded with only an "ignored" line (helper-53: sessions fell back to 30-minute
    gaps). REES46's hour in two files; an orders file (purchases only) beside the clickstream is
    another kind of file, whose lack of sessions is no news."""
    lines = REES46.read_text().splitlines()
    half = len(lines) // 2
    first = write(tmp_path / "day1.csv", "\n".join(lines[:half]) + "\n")
    renamed = lines[0].replace("user_session", "session_uuid").replace("price", "sale_price")
    second = write(tmp_path / "day2.csv", "\n".join([renamed, *lines[half:]]) + "\n")
    ingest(con, "events", first, pii_key=KEY)
    said = said_of(ingest(con, "events", second, pii_key=KEY))
    assert (
        "warning: batch 1, a file like this one, sent price, session_id; this file has no" in said
    ), said
    assert "ignored here: sale_price, session_uuid" in said, said
    orders = write(
        tmp_path / "orders.csv",
        "user_id,ts,item_id,amount\n"
        + "".join(f"{u},{t},{i},{p}\n" for u, t, i, p in rees46_purchases()[:20]),
    )
    said = said_of(
        ingest(con, "events", orders, pii_key=KEY, reading=Reading(event_type="purchase"))
    )
    assert "a file like this one" not in said, said
    # the same columns again: no warning, not even about the amount raw derives from the price
    # (helper-56: every second file was told it lost `amount`)
    for n, part in enumerate((lines[1:half:2], lines[2:half:2])):  # after a file like it
        again = write(tmp_path / f"day{3 + n}.csv", "\n".join([lines[0], *part]) + "\n")
        said = said_of(ingest(con, "events", again, pii_key=KEY))
        assert "a file like this one" not in said, said
    # a point of sale's feed beside the web shop's: its own header, no category or brand, of
    # the same event types (helper-58: warned on every file of it)
    till = "Customer Code,Sale Time,SKU,Net,event_type\n" + "".join(
        f"{r.split(',')[7]},{r.split(',')[0].removesuffix(' UTC')},{r.split(',')[2]},1.0,{r.split(',')[1]}\n"
        for r in lines[1:half:3]
    )
    pos = {"user_id": "Customer Code", "ts": "Sale Time", "item_id": "SKU", "amount": "Net"}
    said = said_of(
        ingest(con, "events", write(tmp_path / "pos.csv", till), pii_key=KEY, mapping=pos)
    )
    assert "a file like this one" not in said, said
    # a rename beside new columns (utm tags) is still the same feed (helper-59: unsaid)
    wider = (
        lines[0].replace("user_session", "session_uuid")
        + ",utm_source,utm_medium,utm_campaign,device"
    )
    tagged = write(
        tmp_path / "day5.csv", "\n".join([wider, *(f"{r},a,b,c,d" for r in lines[3:half:2])]) + "\n"
    )
    said = said_of(ingest(con, "events", tagged, pii_key=KEY))
    assert "a file like this one, sent session_id; this file has no column for it" in said, said


def test_a_file_mostly_quarantined_is_refused_whole(tmp_path):
    """helper-50: a Rakuten export read without its options loaded 6 of 1,281 lines and exited 0,
    so a scheduler saw success. REES46's lines, most prices written `1,200`-style (ambiguous):
    the command fails, nothing of the file loads (its 25 readable lines would have been built on
    beside the 100 of the corrected send, helper-53), and it goes in again read the right way,
    with or without --replace."""
    lines = REES46.read_text().splitlines()[:101]
    at = lines[0].split(",").index("price")
    body = [lines[0]] + [
        ",".join(f[:at] + ['"1,200"' if n % 4 else f[at]] + f[at + 1 :])
        for n, f in enumerate(line.split(",") for line in lines[1:])
    ]
    path = write(tmp_path / "grouped.csv", "\n".join(body) + "\n")
    wh = tmp_path / "wh.duckdb"
    out = " ".join(run_cli("ingest", "events", str(path), warehouse=wh, ok=False).split())
    assert "0 loaded, 100 quarantined of 100 lines" in out
    assert (
        "only 25 of 100 lines would load (75 with values it could not read): nothing of it" in out
    )
    assert "quarantined 25: file_refused" in out
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (0,)
    other = tmp_path / "w2.duckdb"
    run_cli("ingest", "events", str(path), warehouse=other, ok=False)
    for warehouse, options in ((wh, ["--replace"]), (other, [])):  # either takes it out
        fixed = run_cli("ingest", "events", str(path), "--decimal-point", *options,
                        warehouse=warehouse)  # fmt: skip
        assert "100 loaded, 0 quarantined" in fixed
        with duckdb.connect(str(warehouse), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (100,)
            assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
    half = write(tmp_path / "half.csv", "\n".join(body[:1] + body[1:5] + lines[60:64]) + "\n")
    run_cli("ingest", "events", str(half), warehouse=wh)  # 3 of 8 quarantined: a success
    # lines left out by design are no misreading (helper-56: a GA4 day, mostly page_view, failed
    # every day): unknown and skipped event types, anonymous lines
    ga4 = "user_pseudo_id,event_timestamp,event_name,item_id\n" + "".join(
        f"{'' if n % 5 == 0 else 'u1'},2019-10-01 10:00:{n:02},{'view_item' if n % 5 == 1 else 'page_view'},i{n}\n"
        for n in range(20)
    )
    day = write(tmp_path / "ga4.csv", ga4)
    out = run_cli("ingest", "events", str(day), "--map", "user_id=user_pseudo_id", warehouse=wh)
    assert "4 loaded, 16 quarantined" in out


def test_a_refused_files_empty_column_is_said_of_the_lines_that_would_load(con, tmp_path):
    """Ta Feng's AGE_GROUP (`60-64`) mapped as the birth year: the file is refused whole, and its
    empty-column warning said "every loaded line" of a file that loaded none (helper-101).
    Taobao's users."""
    users = sorted({line.split(",")[0] for line in TAOBAO.read_text().splitlines()[1:3000]})
    body = "CUSTOMER_ID,AGE_GROUP\n" + "".join(
        f"{u},{'' if n % 4 == 0 else '60-64'}\n" for n, u in enumerate(users)
    )
    got = ingest(con, "users", write(tmp_path / "tafeng_users.csv", body), pii_key=KEY,
                 mapping={"user_id": "CUSTOMER_ID", "birth_year": "AGE_GROUP"})  # fmt: skip
    said = said_of(got)
    assert (
        got.loaded == 0
        and got.refused
        and "empty on every line that would load: birth_year" in said
    )
    assert "every loaded line" not in said


def test_a_file_refused_for_its_times_keeps_the_hint_that_reads_them(tmp_path):
    """A file refused whole still gets the hints of a file that loaded (helper-95: the time
    format hint went, as the refusal pointed at the hints). Taobao's lines with times written
    month first, read day first: November's fail (no month 24), December's read as other days."""
    lines = TAOBAO.read_text().splitlines()
    header, december = lines[0], [x for x in lines[1:] if int(x.split(",")[4]) >= 1512086400]
    body = []
    for line in lines[1:31] + december[:10]:  # 30 lines of November, 10 of December
        f = line.split(",")
        f[4] = datetime.fromtimestamp(int(f[4]), UTC).strftime("%m/%d/%Y %H:%M:%S")
        body.append(",".join(f))
    path = write(tmp_path / "us.csv", "\n".join([header, *body]) + "\n")
    out = " ".join(
        run_cli("ingest", "events", str(path), "--ts-format", "%d/%m/%Y %H:%M:%S",
                warehouse=tmp_path / "wh.duckdb", ok=False).split()
    )  # fmt: skip
    assert "nothing of it loaded" in out and "file_refused" in out, out
    assert "check --ts-format '%d/%m/%Y %H:%M:%S'" in out and "day and month swapped?" in out, out


def test_a_file_mostly_of_times_before_1990_is_refused_whole(con, tmp_path):
    """Taobao's lines, five of nine with the day written 20171125, which reads as a Unix time in
    1970: more lines with times it could not take than lines it could, so nothing of it loads,
    as for unreadable values; with one such line fewer it loads."""
    header, *lines = TAOBAO.read_text().splitlines()[:10]
    dated = [
        ",".join([*f[:4], datetime.fromtimestamp(int(f[4]), UTC).strftime("%Y%m%d")])
        for f in (line.split(",") for line in lines)
    ]
    days = write(tmp_path / "days.csv", "\n".join([header, *dated[:5], *lines[5:]]) + "\n")
    result = ingest(con, "events", days, pii_key=KEY)
    assert (result.loaded, result.quarantined) == (0, {"early_timestamp": 5, "file_refused": 4})
    assert "only 4 of 9 lines would load" in result.refused
    assert rows(con, "SELECT count(*) FROM raw_events") == [(0,)]
    fewer = write(tmp_path / "fewer.csv", "\n".join([header, *dated[:4], *lines[4:]]) + "\n")
    result = ingest(con, "events", fewer, pii_key=KEY)
    assert (result.loaded, result.quarantined, result.refused) == (5, {"early_timestamp": 4}, None)


def test_ingest_outside_the_project_is_refused(tmp_path):
    """helper-54: run from another folder, ingest made a warehouse and a PII key of its own there,
    unsaid, and e-mail ids got pseudonyms the project's never matched."""
    elsewhere = tmp_path / "downloads"
    elsewhere.mkdir()
    wh = elsewhere / "warehouse.duckdb"
    out = run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=elsewhere, ok=False)
    assert "no models" in out and "PROFILER_PROJECT_DIR" in out
    assert not wh.exists() and not (elsewhere / ".profiler").exists()


def test_amazon_item_price_is_the_lines_money(con, tmp_path):
    """Amazon's All Orders report: `item-price` is the line's total ("aggregates of the
    quantity"), read as a unit price (helper-57: spend +47%). REES46's purchases, two units each,
    as an Amazon TSV; GA4's `item_price` stays a unit's."""
    bought = rees46_purchases()[:20]
    body = "amazon-order-id\tpurchase-date\tbuyer-email\tsku\tquantity\titem-price\n" + "".join(
        f"{n:03}-1\t{t:%Y-%m-%dT%H:%M:%S}+00:00\t{u}\t{i}\t2\t{2 * p:.2f}\n"
        for n, (u, t, i, p) in enumerate(bought)
    )
    got = ingest(con, "events", write(tmp_path / "orders.txt", body), pii_key=KEY,
                 mapping={"user_id": "buyer-email", "ts": "purchase-date"},
                 reading=Reading(event_type="purchase"))  # fmt: skip
    assert "amount <- item-price" in said_of(got)
    spent = rows(con, "SELECT sum(amount), count(price) FROM raw_events")
    assert spent == [(pytest.approx(sum(2 * p for *_, p in bought)), 0)]
    # its Order Report names the columns otherwise (helper-58: still a unit price there)
    report = body.replace("amazon-order-id", "order-id").replace(
        "\tquantity\t", "\tquantity-purchased\t"
    )
    other = duckdb.connect(str(tmp_path / "report.duckdb"))
    got = ingest(other, "events", write(tmp_path / "report.txt", report), pii_key=KEY,
                 mapping={"user_id": "buyer-email", "ts": "purchase-date"},
                 reading=Reading(event_type="purchase"))  # fmt: skip
    assert "amount <- item-price" in said_of(got)
    # a money column the user names is read, never item-price (a report extended with each
    # line's total net of its promotions)
    net = "\n".join(
        line + ("\tnet-total" if n == 0 else f"\t{float(line.split(chr(9))[-1]) - 1:.2f}")
        for n, line in enumerate(body.splitlines())
    )
    mapped = duckdb.connect(str(tmp_path / "mapped.duckdb"))
    got = ingest(mapped, "events", write(tmp_path / "net.txt", net + "\n"), pii_key=KEY,
                 mapping={"user_id": "buyer-email", "ts": "purchase-date", "amount": "net-total"},
                 reading=Reading(event_type="purchase"))  # fmt: skip
    assert "amount <- net-total" in said_of(got)
    assert rows(mapped, "SELECT sum(amount) FROM raw_events") == [
        (pytest.approx(sum(2 * p - 1 for *_, p in bought)),)
    ]
    ga4 = "user_pseudo_id,event_timestamp,event_name,item_id,item_price,quantity\n" + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},purchase,{i},{p},2\n" for u, t, i, p in bought
    )
    unit = ingest(con, "events", write(tmp_path / "ga4.csv", ga4), pii_key=KEY,
                  mapping={"user_id": "user_pseudo_id"})  # fmt: skip
    assert "price <- item_price" in said_of(unit)


def test_ts_format_with_a_zone_is_stored_in_utc(con, tmp_path):
    path = write(
        tmp_path / "z.csv",
        "user_id,event_type,ts\nu1,view,01.10.2019 10:00 +0200\nu2,view,31.09.2019 10:00 +0200\n",
    )
    con.execute("SET TimeZone = 'America/New_York'")  # the caller's zone must not matter
    result = ingest(
        con, "events", path, pii_key=KEY, reading=Reading(ts_format="%d.%m.%Y %H:%M %z")
    )
    assert (result.loaded, result.quarantined) == (1, {"bad_timestamp": 1})  # no 31 September
    assert rows(con, "SELECT user_id, ts FROM raw_events") == [("u1", datetime(2019, 10, 1, 8))]


@pytest.mark.parametrize(
    ("source", "reading", "message"),
    [
        ("events", Reading(event_type="sold"), "not one of the event types; choose one of: view"),
        ("users", Reading(event_type="purchase"), "--event-type is for events files"),
        ("events", Reading(kind="review"), "--kind is for feedback files"),
        ("events", Reading(ts_format="%Q"), "--ts-format '%Q'"),
        ("events", Reading(ts_format="mdy"), "no %-directive"),
        ("events", Reading(ts_format="%m%d"), "has no year"),  # Tmall's 1111 is 11 November
        ("events", Reading(columns=("user_id", "User_ID")), "'User_ID' named twice"),
        ("events", Reading(columns=("user_id", " ")), "an empty name"),
        ("events", Reading(columns=("user_id", "ts")), "names 2 column"),  # the file has 6
        ("events", Reading(encoding="klingon"), "--encoding 'klingon': not an encoding"),
    ],
)
def test_a_reading_that_cannot_work_is_refused_and_changes_nothing(
    con, tmp_path, source, reading, message
):
    ingest(con, "events", MESSY, pii_key=KEY)
    before = snapshot(con)
    path, _ = orders_export(tmp_path)
    with pytest.raises(ProfilerError, match=message) as err:
        ingest(con, source, path, pii_key=KEY, reading=reading)
    assert "\n" not in str(err.value)
    assert snapshot(con) == before


def test_event_type_and_a_mapped_event_type_column_conflict(con, tmp_path):
    path = write(tmp_path / "a.csv", "user_id,what,ts\nu1,view,2019-10-01 10:00:00\n")
    with pytest.raises(ProfilerError, match="keep one"):
        ingest(con, "events", path, mapping={"event_type": "what"}, pii_key=KEY,
               reading=Reading(event_type="purchase"))  # fmt: skip
    assert snapshot(con) == {}


def test_a_reviews_export_loads_with_kind(con, tmp_path):
    """Feedback in the columns of the public Amazon reviews exports (no kind column, Unix times)
    for three users of the Taobao sample."""
    path = write(
        tmp_path / "reviews.csv",
        "reviewerID,asin,overall,unixReviewTime,reviewText\n"
        '100101,2268318,5,1511800000,"Great, as described"\n'
        "1000417,1305059,2,1512000000,arrived late\n"
        "1000417,4022701,6,1512100000,out of range stars\n",
    )
    with pytest.raises(ProfilerError, match="--kind review"):
        ingest(con, "feedback", path, pii_key=KEY)
    result = ingest(con, "feedback", path, pii_key=KEY, reading=Reading(kind="Review"))
    assert (result.loaded, result.quarantined) == (2, {"bad_rating": 1})
    assert rows(con, "SELECT user_id, kind, item_id, rating, ts, text FROM raw_feedback ORDER BY ts") == [
        ("100101", "review", "2268318", 5, datetime(2017, 11, 27, 16, 26, 40), "Great, as described"),
        ("1000417", "review", "1305059", 2, datetime(2017, 11, 30, 0, 0), "arrived late"),
    ]  # fmt: skip


def test_event_type_never_overrides_a_type_column_the_file_has(con, tmp_path):
    """Taobao says what each event is (behavior_type): --event-type must not turn views into buys."""
    with pytest.raises(
        ProfilerError, match="already has a column of event types \\('behavior_type'\\)"
    ):
        ingest(con, "events", TAOBAO, pii_key=KEY, reading=Reading(event_type="purchase"))
    assert snapshot(con) == {}


def test_a_column_named_as_written_wins_over_a_loose_match(con, tmp_path):
    path = write(
        tmp_path / "two.csv",
        "User ID,user_id,event_type,ts\nJohn Smith,u1,view,2019-10-01 10:00:00\n",
    )
    result = ingest(con, "events", path, pii_key=KEY)
    assert result.columns["user_id"] == "user_id" and "User ID" in result.ignored
    assert rows(con, "SELECT user_id FROM raw_events") == [("u1",)]


def test_ts_format_still_reads_unix_numbers(con, tmp_path):
    path = write(
        tmp_path / "mixed.csv",
        "user_id,event_type,ts\nu1,view,12/1/2010 8:26\nu2,view,1291191960\nu3,view,1291191960000\n",
    )
    result = ingest(con, "events", path, pii_key=KEY, reading=Reading(ts_format="%m/%d/%Y %H:%M"))
    assert (result.loaded, result.quarantined) == (3, {})
    assert set(rows(con, "SELECT ts FROM raw_events")) == {(datetime(2010, 12, 1, 8, 26),)}


def test_decimal_comma_reads_a_european_export(con, tmp_path):
    """REES46 as a German spreadsheet saves it: `;` between fields, `1.234,56` for 1234.56."""
    lines = REES46.read_text().splitlines()
    header, records = lines[0].split(","), [line.split(",") for line in lines[1:]]
    at = header.index("price")

    def german(price: str) -> str:
        whole, cents = f"{float(price):,.2f}".split(".")
        return whole.replace(",", ".") + "," + cents

    body = "".join(";".join(r[:at] + [german(r[at])] + r[at + 1 :]) + "\n" for r in records)
    path = write(tmp_path / "export.csv", ";".join(header) + "\n" + body)
    assert any(float(r[at]) >= 1000 for r in records)  # thousands dots are in the file

    as_sent = ingest(con, "events", path, pii_key=KEY)  # 12,50 is no number: quarantined
    assert (as_sent.loaded, as_sent.quarantined) == (0, {"bad_type:price": len(records)})
    assert "--decimal-comma" in describe_ingest(as_sent)

    read = ingest(con, "events", path, pii_key=KEY, reading=Reading(decimal_comma=True))
    assert (read.loaded, read.quarantined) == (len(records), {})
    got = rows(
        con, "SELECT price FROM raw_events WHERE _batch_id = ? ORDER BY ALL", [read.batch_id]
    )
    assert got == sorted((float(r[at]),) for r in records)


def test_money_grouped_in_thousands_reads_with_the_option_that_says_so(con, tmp_path):
    """helpers 44, 45: a won or peso export writes `129,000` (quarantined, the only hint
    --decimal-comma, which then read it as 129, unsaid), an Indonesian one `49.000` (read as 49,
    unsaid). --decimal-point reads commas as thousands; a column whose every decimal part has
    three digits is warned about. REES46's purchases, priced in thousands."""
    bought = rees46_purchases()[:12]
    won = [int(p * 1000) for _, _, _, p in bought]
    body = "buyer,ts,item,price\n" + "".join(
        f'{u},{t:%Y-%m-%d %H:%M:%S},{i},"{w:,}"\n'
        for (u, t, i, _), w in zip(bought, won, strict=True)
    )
    path = write(tmp_path / "won.csv", body)
    reading, mapping = Reading(event_type="purchase"), {"user_id": "buyer", "item_id": "item"}
    as_sent = ingest(con, "events", path, pii_key=KEY, reading=reading, mapping=mapping)
    assert as_sent.loaded < len(won) and as_sent.quarantined["bad_type:price"] > 0
    said = said_of(as_sent)
    assert "if the commas of '" in said and "again with --decimal-point" in said, said
    comma = ingest(con, "events", path, pii_key=KEY, mapping=mapping, replace=True,
                   reading=dataclasses.replace(reading, decimal_comma=True))  # fmt: skip
    said = said_of(comma)
    assert "most decimal parts have three digits" in said and "--decimal-point instead" in said
    # a million won reads with no decimal comma: no hint names the option given again
    big = body.replace(f'"{won[0]:,}"', f'"{won[0] * 10:,}"')
    got = ingest(duckdb.connect(str(tmp_path / "million.duckdb")), "events",
                 write(tmp_path / "million.csv", big), pii_key=KEY, mapping=mapping,
                 reading=dataclasses.replace(reading, decimal_comma=True))  # fmt: skip
    assert got.quarantined == {"bad_type:price": 1} and "if the commas of" not in said_of(got)
    point = ingest(con, "events", path, pii_key=KEY, mapping=mapping, replace=True,
                   reading=dataclasses.replace(reading, decimal_point=True))  # fmt: skip
    assert (point.loaded, point.quarantined, point.thousands) == (len(won), {}, [])
    assert sorted(p for (p,) in rows(con, "SELECT price FROM raw_events")) == sorted(won)
    # the dot as thousands: read as decimals, and said
    dotted = "buyer,ts,item,price\n" + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},{i},{w:,}\n".replace(f"{w:,}", f"{w:,}".replace(",", "."))
        for (u, t, i, _), w in zip(bought, won, strict=True)
        if w < 1_000_000
    )
    idr = ingest(con, "events", write(tmp_path / "idr.csv", dotted), pii_key=KEY, reading=reading, mapping=mapping)  # fmt: skip
    said = said_of(idr)
    assert "most decimal parts have three digits" in said and "--decimal-comma --replace" in said
    # one price of two decimals among them does not silence it (helper-48); prices of two
    # decimals with a stray three are no thousands
    odd = dotted.replace(dotted.splitlines()[1].rsplit(",", 1)[1], "12.50", 1)
    idr = ingest(con, "events", write(tmp_path / "odd.csv", odd), pii_key=KEY, reading=reading, mapping=mapping)  # fmt: skip
    assert idr.thousands and idr.thousands[0][1] == dotted.count(".") - 1, idr.thousands
    cents = (
        "buyer,ts,item,price\n"
        + "".join(f"{u},{t:%Y-%m-%d %H:%M:%S},{i},{p:.2f}\n" for u, t, i, p in bought)
        + f"{bought[0][0]},2019-10-01 23:00:00,x,1.250\n"
    )
    plain = ingest(con, "events", write(tmp_path / "cents.csv", cents), pii_key=KEY, reading=reading, mapping=mapping)  # fmt: skip
    assert plain.thousands == []
    # a currency after the digits is no third decimal (helper-49: 12.50€ said to be thousands)
    euros = cents.replace("\n", "€\n").replace("price€", "price").replace("1.250€", "5.5 €")
    plain = ingest(con, "events", write(tmp_path / "euros.csv", euros), pii_key=KEY, reading=reading, mapping=mapping)  # fmt: skip
    assert plain.loaded == len(bought) + 1 and plain.thousands == []
    with pytest.raises(ProfilerError, match="--decimal-comma and --decimal-point"):
        check_reading(SOURCES["events"], Reading(decimal_comma=True, decimal_point=True))


def test_one_order_from_two_feeds_or_two_words_is_warned_about(con, tmp_path):
    """helper-45: a clickstream's unpriced purchases and the orders export of the same orders
    (spend doubled once an items file priced the first), and Klaviyo's `Placed Order` beside
    its `Ordered Product` lines, both read as purchases, counted each order twice, unsaid.
    REES46's purchases."""
    import json as _json

    bought = rees46_purchases()[:10]
    clicks = "user_id,event_type,ts,product_id\n" + "".join(
        f"{u},purchase,{t:%Y-%m-%d %H:%M:%S},{i}\n" for u, t, i, _ in bought
    )
    first = ingest(con, "events", write(tmp_path / "clicks.csv", clicks), pii_key=KEY)
    assert first.purchases_twice == (0, [])
    orders = "customer,order_time,sku,price\n" + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},{i},{p:.2f}\n" for u, t, i, p in bought[:6]
    )
    got = ingest(con, "events", write(tmp_path / "orders.csv", orders), pii_key=KEY,
                 mapping={"user_id": "customer"}, reading=Reading(event_type="purchase"))  # fmt: skip
    assert got.purchases_twice == (6, [first.batch_id])
    assert "6 purchase(s) share user, time and item with purchases batch(es) 1 loaded" in said_of(
        got
    )
    again = ingest(con, "events", write(tmp_path / "orders2.csv", orders + "\n"), pii_key=KEY,
                   mapping={"user_id": "customer"}, reading=Reading(event_type="purchase"))  # fmt: skip
    assert again.purchases_twice == (6, [first.batch_id])  # an exact repeat of batch 2 is none
    # Klaviyo: the order and its products at one moment, both mapped to purchase
    events = []
    for u, t, i, p in bought[:4]:
        when = t.strftime("%Y-%m-%dT%H:%M:%S")
        events.append({"event": "Placed Order", "person": u, "datetime": when, "$value": p})
        events.append(
            {"event": "Ordered Product", "person": u, "datetime": when, "ProductID": i, "$value": p}
        )
    body = "".join(_json.dumps(e) + "\n" for e in events)
    reading = check_reading(SOURCES["events"], Reading(values=(
        ("event_type", "Placed Order", "purchase"), ("event_type", "Ordered Product", "purchase"))))  # fmt: skip
    klaviyo = ingest(con, "events", write(tmp_path / "klaviyo.jsonl", body), pii_key=KEY,
                     reading=reading, mapping={"user_id": "person", "ts": "datetime", "item_id": "ProductID"})  # fmt: skip
    said = said_of(klaviyo)
    assert klaviyo.purchase_words == (4, ["Placed Order", "Ordered Product"]), said
    assert "--event-type 'Placed Order'=skip" in said
    assert "have no item while the others have one" not in said  # one warning, with its fix


def test_a_column_left_out_with_an_empty_map(con, tmp_path):
    """helper-44: a point of sale sells apples by weight (`Qty` 0.75): quarantined with a hint at
    --decimal-comma, and no way to leave a synonym's column out. `--map quantity=` reads none;
    the hint says so. REES46's first purchases."""
    bought = rees46_purchases()[:4]
    body = "customer,date,sku,Qty,Net Sales\n" + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},{i},{q},{p:.2f}\n"
        for (u, t, i, p), q in zip(bought, ["0.75", "2", "1.5", "1"], strict=True)
    )
    path = write(tmp_path / "items-sold.csv", body)
    mapping = {"user_id": "customer", "amount": "Net Sales"}
    reading = Reading(event_type="purchase")
    weighed = ingest(con, "events", path, pii_key=KEY, reading=reading, mapping=mapping)
    assert weighed.quarantined == {"bad_type:quantity": 2}
    said = said_of(weighed)
    assert "--map quantity=" in said and "decimal" not in said
    left = ingest(con, "events", path, pii_key=KEY, reading=reading, replace=True,
                  mapping={**mapping, "quantity": ""})  # fmt: skip
    assert (left.loaded, left.quarantined, left.ignored) == (4, {}, ["Qty"])
    assert rows(con, "SELECT count(quantity), sum(amount) FROM raw_events") == [
        (0, pytest.approx(sum(round(p, 2) for _, _, _, p in bought)))
    ]
    with pytest.raises(ProfilerError, match="user_id is required"):
        check_mapping(SOURCES["events"], {"user_id": ""})
    # a wholesaler's `1,200` units is no weight: its hint is the one for grouped thousands, and
    # --decimal-point reads them, an Indian one's lakhs too
    bulk = body.replace(",0.75,", ',"1,200",').replace(",1.5,", ',"1,00,000",')
    path = write(tmp_path / "bulk.csv", bulk)
    got = ingest(con, "events", path, pii_key=KEY, reading=reading, mapping=mapping)
    said = said_of(got)
    assert got.quarantined == {"bad_type:quantity": 2} and "whole units" not in said, said
    assert "if the commas of '1,200' group thousands" in said, said
    got = ingest(con, "events", path, pii_key=KEY, mapping=mapping, replace=True,
                 reading=dataclasses.replace(reading, decimal_point=True))  # fmt: skip
    assert got.quarantined == {}
    assert rows(con, "SELECT quantity FROM raw_events WHERE _batch_id = ? ORDER BY 1",
                [got.batch_id]) == [(1,), (2,), (1200,), (100000,)]  # fmt: skip


def test_prices_with_a_currency_read_as_the_number(con, tmp_path):
    """REES46's prices as shop exports print them: `$35.79`, `USD 35.79`, `35,79 €` (with a
    decimal comma); a word that is no price still goes to quarantine."""
    lines = REES46.read_text().splitlines()
    header, records = lines[0].split(","), [line.split(",") for line in lines[1:51]]
    at = header.index("price")
    # helpers 44, 45: Shopee's `Rp`, the peso sign, a Chinese shop's fullwidth yen and `元`, a
    # Korean shop's `원`, a Polish one's `zł` were quarantined
    shapes = ["${}", "USD {}", "{} $", "{}€", "£ {}", "R$ {}", "USD{}", "{} EUR", "Rp {}", "₱{}",
              "￥{}", "{}元", "{}원", "{} zł", "S$ {}"]  # fmt: skip
    body = "".join(
        ",".join(r[:at] + [shapes[i % len(shapes)].format(r[at])] + r[at + 1 :]) + "\n"
        for i, r in enumerate(records)
    )
    path = write(tmp_path / "dollars.csv", ",".join(header) + "\n" + body)
    result = ingest(con, "events", path, pii_key=KEY)
    assert (result.loaded, result.quarantined) == (50, {})
    got = rows(con, "SELECT price FROM raw_events ORDER BY ALL")
    assert got == sorted((float(r[at]),) for r in records)
    german = write(
        tmp_path / "euro.csv",
        'user_id,event_type,ts,price\nu1,view,2019-10-01,"1.234,50 €"\nu2,view,2019-10-01,cheap\n',
    )
    read = ingest(con, "events", german, pii_key=KEY, reading=Reading(decimal_comma=True))
    assert (read.loaded, read.quarantined) == (1, {"bad_type:price": 1})
    assert rows(con, "SELECT price FROM raw_events WHERE user_id = 'u1'") == [(1234.5,)]
    us = write(
        tmp_path / "us.csv",
        'user_id,event_type,ts,price\nu3,view,2019-10-01,"$1,234.56"\n'
        'u4,view,2019-10-01,-$5\nu5,view,2019-10-01,"1,234"\n',
    )  # 1,234 alone could be 1.234 (Europe): no number without --decimal-comma
    read = ingest(con, "events", us, pii_key=KEY)
    assert read.quarantined == {"negative_money": 1, "bad_type:price": 1}
    assert rows(con, "SELECT price FROM raw_events WHERE user_id = 'u3'") == [(1234.56,)]


def test_local_money_formats_read_as_the_number(con, tmp_path):
    """helper-50's shops: India's lakhs, Swiss apostrophes, `Rs.`, Turkish lira, roubles with a
    no-break space (with --decimal-comma), the yen sign cp932 decodes as a backslash, full-width
    and Arabic-Indic digits; an ambiguous `1,200` still goes to quarantine."""
    sent = {
        "₹1,00,000.50": 100000.5, "1,00,000": 100000.0, "1'234.50": 1234.5,
        "CHF 1’573.00": 1573.0, "Rs. 30,547.32": 30547.32, "35.79 TL": 35.79,
        "\\7,680.00": 7680.0, "¥１，９８０.００": 1980.0, "١,٣٥١.٢٧": 1351.27,
        "\u200f240.34\u200f": 240.34, "1,200": None,
    }  # fmt: skip
    lines = [f"u{i},view,2019-10-01,{csv_field(v)}" for i, v in enumerate(sent)]
    path = write(tmp_path / "local.csv", "user_id,event_type,ts,price\n" + "\n".join(lines) + "\n")
    result = ingest(con, "events", path, pii_key=KEY)
    assert result.quarantined == {"bad_type:price": 1}
    got = dict(rows(con, "SELECT user_id, price FROM raw_events"))
    want = {f"u{i}": v for i, v in enumerate(sent.values()) if v is not None}
    assert got == pytest.approx(want)
    russian = write(
        tmp_path / "ru.csv",
        "user_id,event_type,ts,price\n"
        'r1,view,2019-10-01,"13\u00a0897,80\u00a0₽"\nr2,view,2019-10-01,"1\u202f234,50 руб."\n',
    )
    read = ingest(con, "events", russian, pii_key=KEY, reading=Reading(decimal_comma=True))
    assert (read.loaded, read.quarantined) == (2, {})
    assert rows(con, "SELECT price FROM raw_events WHERE user_id LIKE 'r%' ORDER BY 1") == [
        (1234.5,),
        (13897.8,),
    ]


def test_one_id_whatever_digits_or_invisible_marks_it_is_written_with(con, tmp_path):
    """A Salla-style export writes some customer ids in Arabic-Indic digits, some with a
    right-to-left mark, a Japanese one in full-width digits: each is still the one customer
    (helper-50: one REES46 buyer became three profiles), its category too; the time in
    Arabic-Indic digits reads. Review text stays as written."""
    user = rees46_purchases()[0][0]
    arabic = user.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    wide = user.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    body = "".join(
        f"{u},purchase,{ts},{cat}\n"
        for u, ts, cat in [
            (user, "2019-10-01 10:00:00", "إلكترونيات"),
            ("\u200f" + user, "2019-10-01 11:00:00", "إلكترونيات\u200f"),
            (arabic, "٢٠١٩/١٠/٠١ ١٢:٠٠", "إلكترونيات"),
            (wide + "\u00a0", "2019-10-01 13:00:00", "\ufeffإلكترونيات"),
        ]
    )
    path = write(tmp_path / "sa.csv", "user_id,event_type,ts,category_path\n" + body)
    result = ingest(con, "events", path, pii_key=KEY)
    assert (result.loaded, result.quarantined) == (4, {})
    assert rows(con, "SELECT DISTINCT user_id, category_path FROM raw_events") == [
        (user, "إلكترونيات")
    ]
    assert rows(con, "SELECT max(ts) FROM raw_events") == [(datetime(2019, 10, 1, 13),)]
    # prose keeps its joiners (Persian spelling, emoji sequences: helper-56) and width
    text = "ＰＣ می\u200cخواهم \U0001f468\u200d\U0001f469\u200d\U0001f467"
    review = write(
        tmp_path / "fb.csv", f"user_id,ts,kind,text\n{wide},2019-10-02,review,{text}\u200f\n"
    )
    ingest(con, "feedback", review, pii_key=KEY)
    assert rows(con, "SELECT user_id, text FROM raw_feedback") == [(user, text)]


def test_words_for_no_value_are_no_value(con, tmp_path):
    """What pandas, R, SQL dumps and spreadsheets write for a missing value is missing: a `NULL`
    user is no user (quarantined), a `NaN` price no price (the view still counts), and a `N/A`
    brand no brand; free text keeps its words. Lines from REES46, values replaced."""
    header = "event_time,event_type,product_id,brand,price,user_id,query\n"
    path = write(
        tmp_path / "nulls.csv",
        header
        + "2019-10-01 00:00:00 UTC,view,44600062,N/A,NaN,541312140,\n"
        + "2019-10-01 00:02:14 UTC,purchase,1004856,samsung,130.76,NULL,\n"
        + "2019-10-01 00:03:00 UTC,search,\\N,-,,543272936,none\n"
        + "2019-10-01 00:04:00 UTC,view,3900821.0,aqua,33.20,554748717.0,\n"
        # Excel's failed lookup and pandas' missing value made text (`astype(str)`): two
        # strangers were one user `#N/A`, another `<NA>`, and `#N/A` a brand
        + "2019-10-01 00:05:00 UTC,view,3900821,#N/A,33.20,554748717,\n"
        + "2019-10-01 00:06:00 UTC,view,3900821,aqua,33.20,#N/A,\n"
        + "2019-10-01 00:07:00 UTC,view,3900821,aqua,33.20,<NA>,\n",
    )
    result = ingest(con, "events", path, pii_key=KEY)
    assert (result.loaded, result.quarantined) == (4, {"missing_user_id": 3})
    got = rows(con, "SELECT user_id, item_id, brand, price, query FROM raw_events ORDER BY ts")
    assert got == [
        ("541312140", "44600062", None, None, None),
        ("543272936", None, None, None, "none"),
        ("554748717", "3900821", "aqua", 33.2, None),  # ids a float column wrote
        ("554748717", "3900821", None, 33.2, None),
    ]


def test_ids_from_float_columns_keep_one_user(con, tmp_path):
    """pandas writes integer ids with gaps as float64: REES46 users sent once as BIGINT and once
    as DOUBLE are the same users (one profile each), in Parquet and in JSON lines."""
    src = tmp_path / "rees.csv"
    src.write_text("\n".join(REES46.read_text().splitlines()[:201]) + "\n")
    for fmt, cast in [("parquet", "BIGINT"), ("parquet", "DOUBLE"), ("json", "DOUBLE")]:
        out = tmp_path / f"rees_{cast}.{'jsonl' if fmt == 'json' else fmt}"
        con.execute(
            f"COPY (SELECT * REPLACE (CAST(user_id AS {cast}) AS user_id, "
            f"CAST(product_id AS DOUBLE) AS product_id) FROM read_csv('{src}')) "
            f"TO '{out}' (FORMAT {fmt})"
        )
        assert ingest(con, "events", out, pii_key=KEY).loaded == 200
    got = rows(con, "SELECT count(DISTINCT user_id), count(DISTINCT item_id) FROM raw_events")
    expected = rows(
        con,
        f"SELECT count(DISTINCT user_id), count(DISTINCT product_id) FROM read_csv('{src}')",
    )
    assert got == expected
    assert rows(con, "SELECT count(*) FROM raw_events WHERE contains(user_id, '.')") == [(0,)]


def test_an_id_written_as_a_spreadsheet_formula_is_the_id(con, tmp_path):
    """Exports keep an id's leading zeros from spreadsheets by writing it as a formula,
    `="00123"`: that user is 00123, as the events write it, not a second one. Taobao's first
    users, zero-padded, in a users file so written beside their events; other text stays."""
    lines = TAOBAO.read_text().splitlines()[1:200]
    users = sorted({f"{int(line.split(',')[0]):08d}" for line in lines})
    body = "user_id,city\n" + "".join(f'"=""{u}""",Hangzhou\n' for u in users)
    ingest(con, "users", write(tmp_path / "users.csv", body + '"=""A-7""",Hangzhou\n'), pii_key=KEY)
    events = "user_id,item_id,category_id,behavior_type,ts\n" + "".join(
        f"{int(u):08d},{rest}\n" for u, rest in (line.split(",", 1) for line in lines)
    )
    ingest(con, "events", write(tmp_path / "events.csv", events), pii_key=KEY)
    assert rows(con, "SELECT user_id FROM raw_users ORDER BY 1") == [
        *((u,) for u in users),
        ('="A-7"',),
    ]
    assert rows(con, "SELECT count(DISTINCT user_id) FROM raw_events") == [(len(users),)]
    assert rows(
        con, "SELECT count(*) FROM raw_events WHERE user_id NOT IN (SELECT user_id FROM raw_users)"
    ) == [(0,)]


def test_otto_style_plural_event_types(con, tmp_path):
    """OTTO's JSON lines (session, aid, ts, type) call events clicks, carts and orders; the
    Taobao lines here are rewritten that way (pv -> clicks, cart -> carts, buy -> orders)."""
    plural = {"pv": "clicks", "cart": "carts", "buy": "orders", "fav": "favorites"}
    lines = TAOBAO.read_text().splitlines()[1:401]
    body = "".join(
        f'{{"session": {u}, "aid": {i}, "ts": {t}, "type": "{plural[k]}"}}\n'
        for u, i, _, k, t in (line.split(",") for line in lines)
    )
    path = write(tmp_path / "otto.jsonl", body)
    result = ingest(
        con, "events", path, mapping={"user_id": "session", "item_id": "aid"}, pii_key=KEY
    )
    assert (result.loaded, result.quarantined) == (400, {})
    kinds = dict(rows(con, "SELECT event_type, count(*) FROM raw_events GROUP BY ALL"))
    expected = {}
    for line in lines:
        kind = {"pv": "view", "buy": "purchase"}.get(line.split(",")[3], line.split(",")[3])
        expected[kind] = expected.get(kind, 0) + 1
    assert kinds == expected


def test_a_no_value_word_in_a_personal_column_is_no_pseudonym(con, tmp_path):
    """Two users who both wrote `N/A` as e-mail must not share a pseudonym (they would link);
    nor two whose phone holds no digit (`private`, `ask me`): phones compare by their digits."""
    path = write(
        tmp_path / "users.csv",
        "user_id,email,phone,city\nu2,N/A,private,Hangzhou\nu3,n/a,ask me,NULL\n",
    )
    assert ingest(con, "users", path, pii_key=KEY).loaded == 2
    assert rows(con, "SELECT user_id, email, phone, city FROM raw_users ORDER BY 1") == [
        ("u2", None, None, "Hangzhou"),
        ("u3", None, None, None),
    ]


def test_hints_do_not_repeat_the_option_given(con, tmp_path):
    path, _ = orders_export(tmp_path)
    wrong = Reading(event_type="purchase", ts_format="%d.%m.%Y %H:%M", decimal_comma=True)
    result = ingest(con, "events", path, pii_key=KEY, reading=wrong)
    assert (result.loaded, result.quarantined) == (0, {"bad_timestamp": 214})
    assert "--ts-format" not in describe_ingest(result)


def test_olist_customers_keep_the_person_as_the_user(con, tmp_path):
    """Olist's customers file has a per-order `customer_id` and the person's
    `customer_unique_id`: the person is the user (ids from Olist's public layout)."""
    path = write(
        tmp_path / "olist_customers_dataset.csv",
        "customer_id,customer_unique_id,customer_zip_code_prefix,customer_city,customer_state\n"
        "06b8999e2fba1a1fbc88172c00ba8bc7,861eff4711a542e4b93843c6dd7febb0,14409,franca,SP\n"
        "18955e83d337fd6b2def6b18a428ac77,290c77bc529b7ac935b93aa66c333dc3,09790,sao bernardo,SP\n",
    )
    result = ingest(con, "users", path, pii_key=KEY)
    assert result.columns == {
        "user_id": "customer_unique_id", "city": "customer_city", "region": "customer_state",
    }  # fmt: skip
    assert result.ignored == ["customer_id", "customer_zip_code_prefix"]
    assert rows(con, "SELECT user_id, city, region FROM raw_users ORDER BY 1") == [
        ("290c77bc529b7ac935b93aa66c333dc3", "sao bernardo", "SP"),
        ("861eff4711a542e4b93843c6dd7febb0", "franca", "SP"),
    ]


def test_ts_format_still_reads_iso_and_unix_times(con, tmp_path):
    """One column, three ways of writing a time (an export merged from two systems): the
    format reads its own, ISO 8601 and Unix numbers still read. Taobao's first lines."""
    lines = TAOBAO.read_text().splitlines()[1:4]
    u, i, c, k, t = zip(*(line.split(",") for line in lines), strict=True)
    at = [datetime.fromtimestamp(int(x), UTC).replace(tzinfo=None) for x in t]
    sent = [at[0].strftime("%d/%m/%Y %H:%M:%S"), at[1].isoformat() + "Z", t[2]]
    body = "".join(f"{u[n]},{i[n]},{k[n]},{sent[n]}\n" for n in range(3))
    path = write(tmp_path / "mixed.csv", "user_id,item_id,behavior_type,ts\n" + body)
    result = ingest(
        con, "events", path, pii_key=KEY, reading=Reading(ts_format="%d/%m/%Y %H:%M:%S")
    )
    assert (result.loaded, result.quarantined) == (3, {})
    assert [r[0] for r in rows(con, "SELECT ts FROM raw_events ORDER BY ts")] == sorted(at)


def test_jsonl_objects_and_arrays_are_no_values(con, tmp_path):
    """A nested export (`{"user": {"id": ...}}`, as event trackers write them) must not turn the
    object's JSON text into a user id: such records are `bad_type:user_id`. Taobao's lines (more
    of them read than not: a file mostly unread is refused whole)."""
    rows_ = [line.split(",") for line in TAOBAO.read_text().splitlines()[1:6]]
    nested_lines = (
        f'{{"user": {{"id": {rows_[0][0]}}}, "event": "pv", "ts": {rows_[0][4]}}}\n'
        f'{{"user": [{rows_[1][0]}, 2], "event": "pv", "ts": {rows_[1][4]}}}\n'
    )
    body = nested_lines + "".join(
        f'{{"user": {r[0]}, "event": "pv", "ts": {r[4]}, "ctx": {{"a": [1]}}}}\n' for r in rows_[2:]
    )
    result = ingest(con, "events", write(tmp_path / "nested.jsonl", body), pii_key=KEY)
    assert (result.loaded, result.quarantined) == (3, {"bad_type:user_id": 2})
    assert sorted(rows(con, "SELECT user_id FROM raw_events")) == sorted((r[0],) for r in rows_[2:])
    assert [r[0] for r in rows(con, "SELECT record FROM quarantine ORDER BY 1")] == [1, 2]
    # a file of nested lines only: the hint says to flatten it (not to try a decimal comma)
    nested = ingest(con, "events", write(tmp_path / "all.jsonl", nested_lines), pii_key=KEY)
    hint = describe_ingest(nested)
    assert nested.loaded == 0 and "user_id holds JSON objects or arrays" in hint, hint
    assert "decimal" not in hint


def test_a_repeated_column_name_is_reported_and_can_be_read(con, tmp_path):
    """The first of two `price` columns is read and the second is named `price (2)`, ignored,
    with a warning; `--map price='price (2)'` reads it (helper-44: Mercado Livre's two `Estado`,
    an order's status and the buyer's state, and the second could not be read)."""
    lines = REES46.read_text().splitlines()[:11]
    body = "".join(f"{line},{float(line.split(',')[6]) * 10:.2f}\n" for line in lines[1:])
    path = write(tmp_path / "twice.csv", lines[0] + ",price\n" + body)
    result = ingest(con, "events", path, pii_key=KEY)
    assert result.loaded == 10 and result.ignored == ["price (2)"]
    said = said_of(result)
    assert (
        "the header names 'price' more than once: price reads the first; --map price='price (2)'"
        in said
    )
    sent = sum(float(line.split(",")[6]) for line in lines[1:])
    assert rows(con, "SELECT sum(price) FROM raw_events") == [(pytest.approx(sent),)]
    from profiler.ingest_csv import numbered

    # a header's own `price (2)` keeps its name; the copy takes the next number (helper-47)
    assert numbered(["price", "price", "price (2)"]) == ["price", "price (3)", "price (2)"]
    second = ingest(con, "events", path, pii_key=KEY, mapping={"price": "price (2)"}, replace=True)
    assert second.ignored == ["price"] and "more than once" not in describe_ingest(second)
    assert rows(con, "SELECT sum(price) FROM raw_events") == [(pytest.approx(sent * 10),)]


def test_an_iso_shaped_format_is_not_second_guessed(con, tmp_path):
    """With `%Y-%d-%m`, `2017-25-11` is 25 November and `2017-11-25` is no such day: quarantined,
    not read as ISO's 25 November behind the format's back. Taobao's first lines."""
    lines = [line.split(",") for line in TAOBAO.read_text().splitlines()[1:3]]
    body = "".join(f"{u},{i},{k},{ts}\n" for (u, i, _, k, _), ts in
                   zip(lines, ["2017-25-11 10:00", "2017-11-25 10:00"], strict=True))  # fmt: skip
    path = write(tmp_path / "dm.csv", "user_id,item_id,behavior_type,ts\n" + body)
    result = ingest(con, "events", path, pii_key=KEY, reading=Reading(ts_format="%Y-%d-%m %H:%M"))
    assert (result.loaded, result.quarantined) == (1, {"bad_timestamp": 1})
    assert rows(con, "SELECT ts FROM raw_events") == [(datetime(2017, 11, 25, 10, 0),)]


def test_a_warehouse_from_before_superseded_by_gets_it(tmp_path):
    """The embedded example was written before `batches.superseded_by` and `file_columns`: its
    first ingest adds them and keeps every batch row as it was; the new batch keeps its header."""
    from conftest import REPO

    wh = tmp_path / "wh.duckdb"
    wh.write_bytes((REPO / "warehouse.duckdb.example").read_bytes())
    with duckdb.connect(str(wh)) as con:
        before = rows(con, "SELECT * FROM _profiler.batches ORDER BY batch_id")
        assert "superseded_by" not in [d[0] for d in con.execute(
            "SELECT * FROM _profiler.batches LIMIT 0").description]  # fmt: skip
        ingest(con, "events", MESSY, pii_key=KEY)
        after = rows(con, "SELECT * FROM _profiler.batches ORDER BY batch_id")
    assert [r[:-2] for r in after[: len(before)]] == before
    assert all(r[-2] is None for r in after)  # superseded by none
    assert [r[-1] for r in after[: len(before)]] == [None] * len(before)
    assert after[-1][-1] == MESSY.read_bytes().splitlines()[0].decode().split(",")


# --- files without a header line ------------------------------------------------------------------


def headerless(path: Path, tmp_path: Path) -> tuple[Path, tuple[str, ...]]:
    """`path` without its header line (as Taobao's full UserBehavior.csv is published), and the
    names that line held."""
    header, _, body = path.read_bytes().partition(b"\n")
    out = tmp_path / f"headerless_{path.name}"
    out.write_bytes(body)
    return out, tuple(header.decode().strip().split(","))


def test_a_file_without_a_header_line_loads_whole_with_columns(con, tmp_path):
    """Taobao's sample without its header line loads the same rows as with it, its first record
    included; without `--columns` the error says the first line is data and changes nothing."""
    path, names = headerless(TAOBAO, tmp_path)
    with pytest.raises(ProfilerError, match="looks like data, not a header .* --columns") as err:
        ingest(con, "events", path, pii_key=KEY)
    assert "\n" not in str(err.value) and snapshot(con) == {}
    # a first line of times and ids that are no numbers (Stripe's `cus_...`) is data too
    stripe = "2019-10-01T10:00:00Z,cus_NffrFeUfNV2Hib,view\n2019-10-01T10:05:00Z,cus_Q2x,view\n"
    with pytest.raises(ProfilerError, match="looks like data, not a header .* --columns"):
        ingest(con, "events", write(tmp_path / "stripe.csv", stripe), pii_key=KEY)
    columns = tuple("event_type" if n == "behavior_type" else n for n in names)
    result = ingest(con, "events", path, pii_key=KEY, reading=Reading(columns=columns))
    assert (result.loaded, result.quarantined, result.lines) == (94_287, {}, 94_287)
    got = rows(con, "SELECT * EXCLUDE (_batch_id) FROM raw_events ORDER BY ALL")
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    ingest(other, "events", TAOBAO, pii_key=KEY)
    assert got == rows(other, "SELECT * EXCLUDE (_batch_id) FROM raw_events ORDER BY ALL")
    assert ("1", "2268318") in {(r[0], r[3]) for r in got}  # the file's first line is a record
    with pytest.raises(ProfilerError, match="already a header with those names"):
        ingest(con, "events", TAOBAO, pii_key=KEY, reading=Reading(columns=names))
    with pytest.raises(ProfilerError, match="--columns names the columns of a CSV file"):
        ingest(con, "events", FIXTURES / "events.jsonl", pii_key=KEY,
               reading=Reading(columns=columns))  # fmt: skip


def test_a_messy_file_without_a_header_line_accounts_for_every_record(con, tmp_path):
    """The careful reader too: the messy file without its header gives the same records, faults
    and record numbers."""
    path, names = headerless(MESSY, tmp_path)
    result = ingest(con, "events", path, pii_key=KEY, reading=Reading(columns=names))
    assert (result.loaded, result.quarantined) == (12, MESSY_REASONS)
    quarantined = rows(con, "SELECT record, reason FROM quarantine ORDER BY record")
    assert [r[0] for r in quarantined] == [8, 10, *range(12, 27)]


def test_a_header_ending_in_a_delimiter_names_the_unnamed_column(con, tmp_path):
    path = write(tmp_path / "t.csv", "user_id,event_type,ts,\nu1,view,2019-10-01 10:00:00,\n")
    result = ingest(con, "events", path, pii_key=KEY)
    assert result.loaded == 1
    assert "ignored (no canonical column; --map names one): (unnamed column 4)" in describe_ingest(
        result
    )


# --- files in another encoding ---------------------------------------------------------------------


def test_a_windows_1252_export_is_refused_whole_then_loads_with_encoding(con, tmp_path):
    """REES46 as Excel saves it on Windows: cp1252, its casio lines given the brand `lancôme`
    (ô is the byte 0xF4 there). Without `--encoding` nothing loads (reading it as UTF-8 would
    quarantine exactly the lines with accents); with it every line loads as written, gzipped
    too, and a second send is the same content."""
    lines = REES46.read_text().splitlines()
    text = "\r\n".join(line.replace(",casio,", ",lancôme,") for line in lines) + "\r\n"
    assert text.count("lancôme") > 5
    path = write(tmp_path / "export.csv", text.encode("cp1252"))
    first_accent = next(i for i, line in enumerate(lines, 1) if ",casio," in line)
    with pytest.raises(ProfilerError, match=f"line {first_accent:,} holds byte 0xF4") as err:
        ingest(con, "events", path, pii_key=KEY)
    assert "--encoding cp1252" in str(err.value) and "\n" not in str(err.value)
    assert snapshot(con) == {}
    result = ingest(con, "events", path, pii_key=KEY, reading=Reading(encoding="cp1252"))
    assert (result.loaded, result.quarantined) == (len(lines) - 1, {})
    assert rows(con, "SELECT count(*) FROM raw_events WHERE brand = 'lancôme'") == [
        (text.count("lancôme"),)
    ]
    assert rows(con, "SELECT file FROM _profiler.batches") == [(str(path),)]
    again = ingest(con, "events", path, pii_key=KEY, reading=Reading(encoding="cp1252"))
    assert again.duplicate
    zipped = write(tmp_path / "EXPORT.CSV.GZ", gzip.compress(path.read_bytes()))
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    read = ingest(other, "events", zipped, pii_key=KEY, reading=Reading(encoding="cp1252"))
    assert read.loaded == len(lines) - 1
    assert rows(other, "SELECT count(*) FROM raw_events WHERE brand = 'lancôme'") == [
        (text.count("lancôme"),)
    ]


def test_a_utf8_file_reads_as_utf8_whatever_encoding_says(con, tmp_path):
    """`watch --encoding cp1252` applies to every file of a folder: one that is UTF-8 (REES46
    with a brand `lancôme` written in UTF-8) must not turn into `lancÃ´me`."""
    text = REES46.read_text().replace(",casio,", ",lancôme,")
    path = write(tmp_path / "utf8.csv", text.encode())
    result = ingest(con, "events", path, pii_key=KEY, reading=Reading(encoding="cp1252"))
    assert result.quarantined == {}
    assert rows(con, "SELECT DISTINCT brand FROM raw_events WHERE brand LIKE 'lanc%'") == [
        ("lancôme",)
    ]
    # UTF-8 with one broken byte (the messy file) is still UTF-8: the same per-line quarantine
    messy = ingest(con, "events", MESSY, pii_key=KEY, reading=Reading(encoding="cp1252"))
    assert messy.quarantined == MESSY_REASONS


def test_a_shift_jis_file_with_chance_utf8_loads_with_its_encoding(con, tmp_path):
    """helper-39: a Shift-JIS reviews file (half-width katakana ﾃｱ is C3 B1, UTF-8's ñ) read as
    UTF-8 with broken bytes: --encoding cp932 was ignored and every Japanese line quarantined.
    REES46's first purchased items, reviewed in Japanese."""
    items = [i for _, _, i, _ in rees46_purchases()[:4]]
    texts = ["ﾃｱﾗｼ付きで良い", "サイズが合わなかった", "普通です", "また買いたい"]
    body = "user_id,product_id,rating,text,ts\n" + "".join(
        f"u{n},{i},{n + 2},{t},2019-10-02 10:00:00\n"
        for n, (i, t) in enumerate(zip(items, texts, strict=True))
    )
    path = write(tmp_path / "reviews_sjis.csv", body.encode("cp932"))
    with pytest.raises(ProfilerError, match="is not UTF-8.*--encoding cp932"):
        ingest(con, "feedback", path, pii_key=KEY, reading=Reading(kind="review"))
    got = ingest(
        con, "feedback", path, pii_key=KEY, reading=Reading(kind="review", encoding="cp932")
    )
    assert (got.loaded, got.quarantined) == (4, {})
    assert sorted(t for (t,) in rows(con, "SELECT text FROM raw_feedback")) == sorted(texts)


def test_a_gbk_file_loads_with_its_encoding(con, tmp_path):
    """helper-45: in GBK, 女 and 装 (C5 AE, D7 B0) are two valid UTF-8 characters, so a Chinese
    file read as UTF-8 with a few broken bytes: --encoding gbk was overruled and every line
    quarantined, or mangled where it loaded. Taobao's first lines, with Chinese categories."""
    names = ["服装>女装>连衣裙", "数码>手机配件>充电器", "食品>坚果", "家居>床上用品"]
    lines = TAOBAO.read_text().splitlines()[1:41]
    body = "user_id,item_id,category_path,event_type,ts\n" + "".join(
        f"{u},{i},{names[n % 4]},{b},{t}\n"
        for n, (u, i, _, b, t) in enumerate(line.split(",") for line in lines)
    )
    path = write(tmp_path / "behavior_gbk.csv", body.encode("gbk"))
    with pytest.raises(ProfilerError, match="is not UTF-8.*--encoding gb18030"):
        ingest(con, "events", path, pii_key=KEY)
    got = ingest(con, "events", path, pii_key=KEY, reading=Reading(encoding="gbk"))
    assert (got.loaded, got.quarantined) == (40, {})
    assert rows(con, "SELECT DISTINCT category_path FROM raw_events ORDER BY 1") == sorted(
        (n,) for n in names
    )


def test_utf8_text_after_a_long_ascii_start_is_still_utf8(con, tmp_path):
    """helper-42: UTF-8 counted on the first million characters of a chunk only: a file whose
    accents came later, with one broken byte, was refused as "no line holds UTF-8 text". REES46,
    its brands written `café` from line 30,000 on, one byte broken at the end."""
    text = REES46.read_text().splitlines(keepends=True)
    head, rows_ = text[0], (text[1:] * 3)[:30_050]
    body = (
        head + "".join(rows_[:30_000]) + "".join(r.replace(",", ",café", 1) for r in rows_[30_000:])
    ).encode()
    path = write(tmp_path / "late_accents.csv", body + b"x\xff,view\n")
    from profiler.ingest_read import file_info

    info = file_info(path)
    assert info.utf8_text and not info.other_encoding


def test_a_cyrillic_or_turkish_export_is_refused_naming_its_encoding(con, tmp_path):
    """helper-50: a Windows-1251 file was named no encoding but cp1252 (Cyrillic as
    `ýëåêòðîíèêà`), and a Windows-1254 one was called UTF-16 (its `ş` is the byte 0xFE). REES46's
    lines, their brands in Russian or Turkish, the Turkish one in the header too."""
    lines = REES46.read_text().splitlines()[:200]
    for brand, encoding in (("Электроника", "cp1251"), ("Isıtıcı Şapka", "cp1254")):
        text = "\n".join(line.replace(",samsung,", f",{brand},") for line in lines) + "\n"
        if encoding == "cp1254":
            text = text.replace("user_session", "oturum_ş", 1)  # 0xFE on the first line
        path = write(tmp_path / f"{encoding}.csv", text.encode(encoding))
        with pytest.raises(ProfilerError, match=f"--encoding {encoding},") as err:
            ingest(con, "events", path, pii_key=KEY)
        assert "utf-16" not in str(err.value)
        assert snapshot(con) == {}
    result = ingest(con, "events", path, pii_key=KEY, reading=Reading(encoding="cp1254"))
    assert result.quarantined == {}
    assert rows(con, "SELECT count(*) FROM raw_events WHERE brand = 'Isıtıcı Şapka'") == [
        (text.count("Isıtıcı Şapka"),)
    ]


def test_a_utf16_export_is_named_as_such_and_loads_with_encoding(con, tmp_path):
    """Some spreadsheet tools save "Unicode text" as UTF-16 with a byte-order mark."""
    path = write(tmp_path / "unicode.csv", TAOBAO.read_text().encode("utf-16"))
    with pytest.raises(ProfilerError, match="--encoding utf-16"):
        ingest(con, "events", path, pii_key=KEY)
    result = ingest(con, "events", path, pii_key=KEY, reading=Reading(encoding="utf-16"))
    assert (result.loaded, result.quarantined) == (94_287, {})


def test_a_file_not_in_the_encoding_named_is_refused_and_changes_nothing(con, tmp_path):
    text = "user_id,event_type,ts,brand\nu1,view,2019-10-01,lancôme\n"
    path = write(tmp_path / "e.csv", text.encode("cp1252"))
    with pytest.raises(ProfilerError, match="e.csv is not ascii: byte 0xF4"):
        ingest(con, "events", path, pii_key=KEY, reading=Reading(encoding="ascii"))
    assert snapshot(con) == {}


def test_a_date_column_and_a_time_column_make_the_event_time(con, tmp_path):
    """REES46 with its event time written as two columns, as point-of-sale exports do: the same
    times as the file as sent, from text (also read by a --ts-format), from Parquet's DATE and
    TIME types, and a line with a day but no time is that date."""
    lines = REES46.read_text().splitlines()
    header = lines[0].split(",")
    at = header.index("event_time")
    split = ["date", "time", *header[:at], *header[at + 1 :]]
    records = [line.split(",") for line in lines[1:]]
    body = [[r[at][:10], r[at][11:19], *r[:at], *r[at + 1 :]] for r in records]
    path = tmp_path / "pos.csv"
    path.write_text("\n".join(",".join(r) for r in [split, *body]) + "\n")
    result = ingest(con, "events", path, pii_key=KEY)
    assert (result.loaded, result.quarantined) == (len(records), {})
    assert result.columns["ts"] == "date + time" and "date" not in result.ignored
    got = rows(con, "SELECT ts, user_id, item_id FROM raw_events ORDER BY ALL")
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    ingest(other, "events", REES46, pii_key=KEY)
    assert got == rows(other, "SELECT ts, user_id, item_id FROM raw_events ORDER BY ALL")

    german = tmp_path / "pos_de.csv"
    dotted = [[f"{r[0][8:10]}.{r[0][5:7]}.{r[0][:4]}", *r[1:]] for r in body[:50]]
    # two days' files joined with `cat`: the second header is quarantined, and the date and the
    # time still read as one (helper-99: its `time` dropped the join, and every line went)
    german.write_text("\n".join(",".join(r) for r in [split, *dotted[:20], split, *dotted[20:]]))
    third = duckdb.connect(str(tmp_path / "third.duckdb"))
    dmy = Reading(ts_format="%d.%m.%Y %H:%M:%S")
    joined = ingest(third, "events", german, pii_key=KEY, reading=dmy)
    assert (joined.loaded, joined.quarantined) == (50, {"repeated_header": 1})
    assert rows(third, "SELECT ts FROM raw_events ORDER BY ALL") == sorted(
        (datetime.strptime(f"{r[0]} {r[1]}", "%Y-%m-%d %H:%M:%S"),) for r in body[:50]
    )

    parquet = tmp_path / "pos.parquet"
    with duckdb.connect() as c:
        c.execute(
            f"COPY (SELECT CAST(date AS DATE) AS date, CAST(nullif(time, '') AS TIME) AS time, * "
            f"EXCLUDE (date, time) FROM read_csv('{path}', all_varchar=true)) TO '{parquet}'"
        )
    fourth = duckdb.connect(str(tmp_path / "fourth.duckdb"))
    assert ingest(fourth, "events", parquet, pii_key=KEY).loaded == len(records)
    assert rows(fourth, "SELECT ts, user_id, item_id FROM raw_events ORDER BY ALL") == got

    # a time of day on a 12-hour clock: the hint names the format that reads the two as one
    # (it named '%m/%d/%Y %H:%M', and every line stayed in quarantine)
    clock = [[r[0], datetime.strptime(r[1], "%H:%M:%S").strftime("%I:%M:%S %p"), *r[2:]]
             for r in body[:30]]  # fmt: skip
    twelve = write(tmp_path / "pos_12h.csv", "\n".join(",".join(r) for r in [split, *clock]))
    fifth = duckdb.connect(str(tmp_path / "fifth.duckdb"))
    unread = ingest(fifth, "events", twelve, pii_key=KEY)
    assert (unread.loaded, unread.quarantined) == (0, {"bad_timestamp": 30})
    assert "those times read with --ts-format '%Y-%m-%d %I:%M:%S %p'" in said_of(unread)
    read = ingest(fifth, "events", twelve, pii_key=KEY, replace=True,
                  reading=Reading(ts_format="%Y-%m-%d %I:%M:%S %p"))  # fmt: skip
    assert (read.loaded, read.quarantined) == (30, {})
    assert rows(fifth, "SELECT ts FROM raw_events ORDER BY ALL") == sorted(
        (datetime.strptime(f"{r[0]} {r[1]}", "%Y-%m-%d %H:%M:%S"),) for r in body[:30]
    )

    no_time = write(tmp_path / "day.csv", "date,time,user_id,event_type\n2019-10-02,,7,view\n")
    ingest(third, "events", no_time, pii_key=KEY)
    assert rows(third, "SELECT ts FROM raw_events WHERE user_id = '7'") == [
        (datetime(2019, 10, 2),)
    ]


def test_a_date_only_feed_sent_again_in_part_is_named_in_the_summary(con, tmp_path):
    """REES46's purchases as a daily orders export with dates only. A corrected re-export that
    repeats the day's orders loads (a date cannot tell a re-sent order from a new one), and the
    summary says how many of its lines equal lines already loaded; a timed feed never warns."""
    buys = rees46_purchases()
    lines = [f"{u},{t.date()},{i},{p}" for u, t, i, p in buys]
    header = "customer_id,order_date,item_id,amount\n"
    first = write(tmp_path / "orders.csv", header + "\n".join(lines) + "\n")
    extra = "u-new,2019-10-01,1,9.99"
    again = write(tmp_path / "orders_fixed.csv", header + "\n".join([*lines, extra]) + "\n")
    orders = Reading(event_type="purchase")
    assert ingest(con, "events", first, pii_key=KEY, reading=orders).dated_again == 0
    result = ingest(con, "events", again, pii_key=KEY, reading=orders)
    assert (result.loaded, result.dated_again) == (len(buys) + 1, len(buys))
    said = said_of(result)
    assert f"warning: {len(buys):,} line(s) sent as dates equal lines already loaded" in said
    # the fix named (helper-54: the warning said they count twice, not what to do)
    assert f"without the days sent before, with --replace-batch {result.batch_id}" in said
    # sent in place of the first (--replace-batch), its lines equal only those it replaces
    other = duckdb.connect(str(tmp_path / "replaced.duckdb"))
    ingest(other, "events", first, pii_key=KEY, reading=orders)
    fixed = ingest(other, "events", again, pii_key=KEY, reading=orders, replace_batch=1)
    assert (fixed.loaded, fixed.dated_again) == (len(buys) + 1, 0)
    timed = ingest(con, "events", REES46, pii_key=KEY)
    copy = write(tmp_path / "rees46_again.csv", REES46.read_bytes().replace(b"\n", b"\r\n"))
    assert timed.dated_again == 0 == ingest(con, "events", copy, pii_key=KEY).dated_again


def test_a_time_column_holding_whole_times_is_read_alone(con, tmp_path):
    """Where `time` already holds the whole time (text, a Unix number, a Parquet timestamp),
    the `date` beside it is not joined: the file loads as it did before dates and times were."""
    text = write(
        tmp_path / "whole.csv",
        "date,time,user_id,event_type\n2019-10-01,2019-10-01 10:00:00,7,view\n"
        "2019-10-01,1569924000,8,view\n2019-10-01,,6,view\n",
    )  # a line without its time leaves the others whole times: no time of day to join
    result = ingest(con, "events", text, pii_key=KEY)
    assert (result.loaded, result.columns["ts"]) == (2, "time")
    assert result.quarantined == {"missing_ts": 1}
    assert rows(con, "SELECT user_id, ts FROM raw_events ORDER BY ALL") == [
        ("7", datetime(2019, 10, 1, 10)),
        ("8", datetime(2019, 10, 1, 10)),
    ]
    parquet = tmp_path / "whole.parquet"
    with duckdb.connect() as c:
        c.execute(
            "COPY (SELECT DATE '2019-10-02' AS date, TIMESTAMP '2019-10-02 11:30:00' AS time, "
            f"'9' AS user_id, 'view' AS event_type) TO '{parquet}'"
        )
    assert ingest(con, "events", parquet, pii_key=KEY).loaded == 1
    assert rows(con, "SELECT ts FROM raw_events WHERE user_id = '9'") == [
        (datetime(2019, 10, 2, 11, 30),)
    ]


def test_hm_transactions_and_amazon_metadata_load_without_a_map(con, tmp_path):
    """H&M's `transactions_train.csv` (dates as `t_dat`, 64-hex customers, article ids with a
    leading zero) is an orders feed sent as dates; Amazon Reviews 2023's metadata names items by
    `parent_asin` alone. Lines in those published shapes."""
    customer = "00000dbacae5abe5e23885899a1fa44253a17956c6d1c3d25f88aa139fdfc657"
    body = (
        "t_dat,customer_id,article_id,price,sales_channel_id\n"
        f"2018-09-20,{customer},0663713001,0.0508305084745762,2\n"
        f"2018-09-20,{customer},0541518023,0.0304915254237288,2\n"
    )
    result = ingest(
        con, "events", write(tmp_path / "transactions_train.csv", body), pii_key=KEY,
        reading=Reading(event_type="purchase"),
    )  # fmt: skip
    assert (result.loaded, result.quarantined) == (2, {})
    assert result.columns["ts"] == "t_dat" and result.columns["item_id"] == "article_id"
    got = rows(con, "SELECT user_id, item_id, ts FROM raw_events ORDER BY item_id")
    assert got == [
        (customer, "0541518023", datetime(2018, 9, 20)),
        (customer, "0663713001", datetime(2018, 9, 20)),
    ]
    meta = '{"main_category": "All Beauty", "title": "Mask", "parent_asin": "B07G9GWFSM"}\n'
    items = ingest(con, "items", write(tmp_path / "meta_All_Beauty.jsonl", meta), pii_key=KEY)
    assert (items.loaded, items.columns["item_id"]) == (1, "parent_asin")


def test_item_ids_written_differently_in_two_feeds_are_pointed_out(con, tmp_path):
    """H&M's articles write `0663713001`; its transactions, saved from a number column, `663713001`:
    no event then finds its item, and every top category is NULL, unsaid (helper-20). REES46's
    events, with its catalogue written once zero-padded and once as the events write ids."""
    with REES46.open() as f:
        lines = list(csv.DictReader(f))
    ids = sorted({r["product_id"] for r in lines})
    padded = write(
        tmp_path / "articles.csv", "item_id,brand\n" + "".join(f"{int(i):010d},b\n" for i in ids)
    )
    same = write(tmp_path / "items.csv", "item_id,brand\n" + "".join(f"{i},b\n" for i in ids))
    ingest(con, "items", padded, pii_key=KEY)
    events = ingest(con, "events", REES46, pii_key=KEY)
    said = describe_ingest(events)
    assert events.unknown_items.missing == events.unknown_items.of == len(ids)
    assert (
        f"{len(ids):,} of these events' {len(ids):,} item ids are not in the items loaded" in said
    )
    assert f"the items have '{int(ids[0]):010d}'" in said
    assert f"{len(ids):,} of this file's {len(ids):,} item ids match ids in raw_items only" in said
    fixed = ingest(con, "items", same, pii_key=KEY)  # the catalogue as the events write ids
    assert fixed.unknown_items is None and "not in the items" not in describe_ingest(fixed)
    assert fixed.padded_items is None
    # a quarter of the catalogue zero-padded (Ta Feng's products, helper-101): under the half
    # `unknown_items` needs, those events lost their categories, unsaid
    quarter = write(tmp_path / "quarter.csv", "item_id,brand\n" + "".join(
        f"{int(i):010d},b\n" if n % 4 == 0 else f"{i},b\n" for n, i in enumerate(ids)))  # fmt: skip
    again = ingest(con, "items", quarter, pii_key=KEY)
    assert again.unknown_items is None
    assert again.padded_items.found == len(ids[::4]) and again.padded_items.table == "raw_events"
    assert "item ids match ids in raw_events only with leading zeros added or cut" in said_of(again)
    # the events' side: a share of them padded under the half, down to a tenth, is said as such
    for share in (0.4, 0.15):
        part = set(ids[: int(len(ids) * share)])
        fresh = duckdb.connect(str(tmp_path / f"part{share}.duckdb"))
        ingest(fresh, "items", write(tmp_path / f"part{share}.csv", "item_id,brand\n" + "".join(
            f"{int(i):010d},b\n" if i in part else f"{i},b\n" for i in ids)), pii_key=KEY)  # fmt: skip
        events = ingest(fresh, "events", REES46, pii_key=KEY)
        assert events.unknown_items is None and events.padded_items.found == len(part), share


def test_a_half_star_rating_is_quarantined_and_said_so(con, tmp_path):
    """Ratings are whole stars; a review of 4.5 stars (as some shops allow) goes to quarantine
    whole, and the summary says why in words (helper-20)."""
    body = (
        "user_id,ts,kind,rating,text\n"
        "1,2017-12-01 10:00:00,review,5,fine\n"
        "1,2017-12-02 10:00:00,review,4.5,nearly\n"
    )
    result = ingest(con, "feedback", write(tmp_path / "reviews.csv", body), pii_key=KEY)
    assert (result.loaded, result.quarantined) == (1, {"bad_type:rating": 1})
    assert "ratings are whole stars, 1 to 5: a half star (4.5)" in describe_ingest(result)


def test_content_loaded_as_another_source_is_pointed_out(con, tmp_path):
    """An events file sent as items as well: its brands and prices become the items' newest
    values, and the summary says which, not that nothing changed (helper-22). REES46's first
    lines."""
    head = REES46.read_text().splitlines()[:4]
    path = write(tmp_path / "events.csv", "\n".join(head) + "\n")
    ingest(con, "events", path, pii_key=KEY)
    said = said_of(ingest(con, "items", path, pii_key=KEY))
    assert "the same content is loaded as events too (batch 1): is it items as well?" in said
    assert (
        "Its category_id, category_path, brand, price are now the newest values of those items"
        in said
    )


def test_what_spreadsheets_do_to_a_file_is_named(con, tmp_path):
    """REES46 lines as a spreadsheet saves them: category ids of 19 digits in scientific
    notation (different categories then read alike: 434 became 71 in helper-23's file), blank
    rows of empty fields, and a price with a thousands separator and no decimals."""
    head, *lines = REES46.read_text().splitlines()[:6]
    rows = [line.split(",") for line in lines]
    # LibreOffice and pandas write the exponent in lower case
    excel = [[f"{float(r[3]):.5{'eE'[n % 2 == 0]}}", *r[4:]] for n, r in enumerate(rows)]
    body = "\n".join(",".join([*r[:3], *e]) for r, e in zip(rows, excel, strict=True))
    result = ingest(
        con, "events", write(tmp_path / "excel.csv", f"{head}\n{body}\n,,,,,,,,\n"), pii_key=KEY
    )
    said = describe_ingest(result)
    assert result.quarantined == {"lossy_id:category_id": 5, "empty_line": 1}, said
    assert f"'{float(rows[0][3]):.5E}'" in said and "export that column as text" in said
    # the same lines as Parquet, the ids a text column: quarantined too (helper-97: they loaded,
    # 6 categories as 2)
    parquet = tmp_path / "excel.parquet"
    duckdb.execute(
        f"COPY (SELECT * FROM read_csv('{tmp_path / 'excel.csv'}', all_varchar = true) "
        f"WHERE user_id IS NOT NULL) TO '{parquet}'"
    )
    assert ingest(con, "events", parquet, pii_key=KEY).quarantined == {"lossy_id:category_id": 5}
    # and as pandas writes an integer column with a gap, a DOUBLE: their digits are gone too
    # (helper-99: stored as 2.0530135556318828e+18), while a small id reads whole
    doubles = tmp_path / "double.parquet"
    duckdb.execute(
        f"COPY (SELECT * REPLACE (CAST(category_id AS DOUBLE) AS category_id, "
        f"CAST(user_id AS DOUBLE) AS user_id) FROM read_csv('{REES46}') LIMIT 5) TO '{doubles}'"
    )
    assert ingest(con, "events", doubles, pii_key=KEY).quarantined == {"lossy_id:category_id": 5}
    # JSON lines of numbers: in scientific notation (or any float past 2^53) digits are gone
    # (helper-99: 2.05301e+18 loaded as 2053010000000000000); 19 digits as sent, or a string, stay
    keys = head.split(",")
    numbers = [excel[0][0], excel[1][0], rows[2][3], f'"{rows[3][3]}"', rows[4][3]]
    jsonl = [
        json.dumps({**dict(zip(keys, r, strict=True)), "category_id": "@"}).replace('"@"', n)
        for r, n in zip(rows, numbers, strict=True)
    ]
    result = ingest(con, "events", write(tmp_path / "e.jsonl", "\n".join(jsonl)), pii_key=KEY)
    assert result.quarantined == {"lossy_id:category_id": 2}, describe_ingest(result)
    assert result.loaded == 3 and "(in JSON, a string)" in describe_ingest(result)
    small = doubles.with_name("small.parquet")
    duckdb.execute(
        f"COPY (SELECT * REPLACE (CAST(category_id % 1000 AS DOUBLE) AS category_id) "
        f"FROM read_csv('{REES46}') LIMIT 5) TO '{small}'"
    )
    assert ingest(con, "events", small, pii_key=KEY).loaded == 5
    dotted = "SELECT count(*) FROM raw_events WHERE category_id LIKE '%.%'"
    assert con.execute(dotted).fetchone() == (0,)
    priced = "\n".join(",".join([*r[:6], '"1,200"', *r[7:]]) for r in rows[:1])
    again = ingest(con, "events", write(tmp_path / "price.csv", f"{head}\n{priced}\n"), pii_key=KEY)
    assert again.quarantined == {"bad_type:price": 1}
    assert "quarantined 1: bad_type:price ('1,200' 1)" in describe_ingest(again)


def _shopify_orders(con, tmp_path, body: str, **line_columns: str):
    """Ingest a Shopify orders export as its purchases: buyer by e-mail, time paid, line price."""
    mapping = {"user_id": "Email", "ts": "Paid at", "price": "Lineitem price", **line_columns}
    path = write(tmp_path / "orders_export.csv", body)
    return ingest(
        con, "events", path, mapping=mapping, pii_key=KEY, reading=Reading(event_type="purchase")
    )


def test_quarantine_keeps_no_column_profiler_does_not_read(con, tmp_path):
    """A Shopify orders export carries the buyer's billing name, address and phone in columns
    profiler does not read; a guest checkout (no e-mail) is quarantined, and its raw line kept
    them verbatim (helper-25). The quarantine now shows the canonical columns only; a line that
    cannot be split, nothing of it."""
    body = (
        "Name,Email,Paid at,Lineitem sku,Lineitem price,Billing Name,Billing Address1,Billing Phone\n"
        "#1001,anna@example.de,2024-01-02 10:00:00 +0100,SKU-1,10.00,Anna Fischer,Hauptstr. 1,+4915112345678\n"
        "#1002,,2024-01-02 11:00:00 +0100,SKU-2,19.00,Jonas Weber,Lindenweg 7,+4915187654321\n"
        '#1003,"broken,2024-01-02 12:00:00 +0100,SKU-3,5.00,Mia Roth,Am Ring 2,+4917000000000\n'
    )
    result = _shopify_orders(con, tmp_path, body, item_id="Lineitem sku")
    assert result.loaded == 1 and sum(result.quarantined.values()) == 2
    raws = [r[0] for r in rows(con, "SELECT raw FROM quarantine ORDER BY record")]
    text = " ".join(raws)
    for personal in (
        "Jonas",
        "Weber",
        "Lindenweg",
        "4915187654321",
        "Mia",
        "Am Ring",
        "4917000000000",
    ):
        assert personal not in text, text
    assert '"item_id":"SKU-2"' in raws[0] and '"user_id":null' in raws[0]
    assert raws[1].startswith("[redacted: a record that could not be split")


def test_shopify_exports_read_as_their_lines_say(con, tmp_path):
    """Shopify's order `Total` sits on the first line of an order only (with shipping): it is no
    line's amount, so spend comes from each line's price (helper-25: +31%). Its customers export
    writes `'6800000000000` to keep spreadsheets from rounding: that is customer 6800000000000.
    A negative price is quarantined with its value shown."""
    body = (
        "Name,Email,Paid at,Lineitem quantity,Lineitem price,Total\n"
        "#1001,anna@example.de,2024-01-02 10:00:00 +0100,1,10.00,34.90\n"
        "#1001,anna@example.de,2024-01-02 10:00:00 +0100,2,10.00,\n"
        "#1002,anna@example.de,2024-01-03 10:00:00 +0100,1,-6.27,\n"
    )
    result = _shopify_orders(con, tmp_path, body, quantity="Lineitem quantity")
    assert "Total" in result.ignored and "amount" not in result.columns
    assert rows(con, "SELECT sum(amount) FROM raw_events") == [(30.0,)]
    assert "quarantined 1: negative_money ('-6.27' 1)" in describe_ingest(result)
    customers = write(
        tmp_path / "customers_export.csv", "Customer ID,City\n'6800000000000,Berlin\n"
    )
    ingest(con, "users", customers, pii_key=KEY)
    assert rows(con, "SELECT user_id FROM raw_users") == [("6800000000000",)]


def test_the_summary_says_which_word_was_read_as_which_type(con, tmp_path):
    """Coveo's product_action mapped by VALUE=TYPE for three words: its `click`, left unmapped,
    was read as a view by the built-in vocabulary, unsaid (helper-25: a click and its detail
    counted two views). Every word read as another type is now listed, with its lines; a word that
    differs from its type only in case or spaces (`PURCHASE `) is the type, not listed."""
    body = "session_id_hash,product_action,server_timestamp_epoch_ms\n" + "".join(
        f"s{n % 3},{action},{1550885210881 + n * 1000}\n"
        for n, action in enumerate(
            ["detail", "click", "detail", "add", "PURCHASE ", "remove", "View"]
        )
    )
    reading = Reading(values=(("event_type", "detail", "view"), ("event_type", "add", "cart")))
    result = ingest(
        con, "events", write(tmp_path / "browsing_train.csv", body), pii_key=KEY, reading=reading,
        mapping={"user_id": "session_id_hash", "event_type": "product_action", "ts": "server_timestamp_epoch_ms"},
    )  # fmt: skip
    said = describe_ingest(result)
    assert "read as: 'detail' as view 2, 'add' as cart 1, 'click' as view 1" in said, said
    assert result.quarantined == {"unknown_event_type": 1}


def test_an_address_in_a_search_of_a_numeric_id_file_never_reaches_quarantine(con, tmp_path):
    """The keyed hash is registered only for files whose user ids hold an `@`; a quarantined
    line of another file whose search text holds an address was stored verbatim (helper-26)."""
    body = "user_id,event_type,ts,query\n1,search,2017-12-01 10:00:00,socks\n2,search,notatime,jane.doe@example.com\n"
    result = ingest(con, "events", write(tmp_path / "searches.csv", body), pii_key=KEY)
    assert (result.loaded, result.quarantined) == (1, {"bad_timestamp": 1})
    assert rows(con, "SELECT raw FROM quarantine") == [
        ("[redacted: the line holds an e-mail address]",)
    ]


def _ga4_rows(n: int = 300) -> list[dict]:
    """REES46's first lines as a flattened GA4 BigQuery export would send them: microsecond
    times, GA4 event names (a `page_view` before each product view, as GA4 fires both), dotted
    item columns, and the order's revenue in `ecommerce.purchase_revenue`."""
    names = {"view": "view_item", "cart": "add_to_cart", "purchase": "purchase"}
    out = []
    with REES46.open() as fh:
        for row in list(csv.DictReader(fh))[:n]:
            t = datetime.fromisoformat(row["event_time"].removesuffix(" UTC")).replace(tzinfo=UTC)
            us = int(t.timestamp()) * 1_000_000
            base = {"event_date": t.strftime("%Y%m%d"), "event_timestamp": us,
                    "device.category": "desktop", "user_ltv.revenue": "250.0",
                    "user_pseudo_id": row["user_id"], "ga_session_id": row["user_session"],
                    "items.item_id": row["product_id"], "items.item_brand": row["brand"],
                    "items.price": row["price"], "items.quantity": 1}  # fmt: skip
            if row["event_type"] == "view":
                out.append({**base, "event_name": "page_view", "items.item_id": ""})
            out.append({**base, "event_name": names[row["event_type"]]})
    return out


def test_a_flattened_ga4_export_reads_its_times_items_and_event_names(con, tmp_path):
    """helper-27: GA4's event_date won over event_timestamp (20191001 read as Unix seconds), the
    dotted `items.price`, `items.item_id` were ignored (spend 0), and `page_view`, fired beside
    each `view_item`, counted every product view twice."""
    events = _ga4_rows()
    path = tmp_path / "ga4.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(events[1]))
        w.writeheader()
        w.writerows(events)
    result = ingest(con, "events", path, pii_key=KEY, mapping={"event_type": "event_name"})
    sent = {k: sum(e["event_name"] == k for e in events) for k in ("page_view", "view_item")}
    assert (
        result.columns["ts"] == "event_timestamp" and result.columns["user_id"] == "user_pseudo_id"
    )
    assert result.columns["item_id"] == "items.item_id" and result.columns["price"] == "items.price"
    assert result.columns["brand"] == "items.item_brand"
    # GA4's device.category and user_ltv.revenue are no category and no amount (helper-31)
    assert "category_id" not in result.columns and "amount" not in result.columns
    assert result.quarantined == {"unknown_event_type": sent["page_view"]}
    assert result.unknown["unknown_event_type"] == [("page_view", sent["page_view"])]
    first, views, spend = rows(
        con, "SELECT min(ts), count(*) FILTER (WHERE event_type = 'view'), "
        "sum(amount) FILTER (WHERE event_type = 'purchase') FROM raw_events"
    )[0]  # fmt: skip
    assert first == datetime(2019, 10, 1, 0, 0) and views == sent["view_item"]
    priced = [float(e["items.price"]) for e in events if e["event_name"] == "purchase"]
    assert priced and spend == pytest.approx(sum(priced))


def test_magento_and_woocommerce_line_columns_read_as_quantity_and_amount(con, tmp_path):
    """Magento's qty_ordered was ignored, every line read as one unit (spend -47%); WooCommerce's
    line_total was ignored, every purchase had no money (helper-27). REES46's purchases."""
    bought = rees46_purchases()[:20]
    magento = "customer_id,created_at,sku,price,qty_ordered,row_total\n" + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},{i},{p:.2f},{n % 3 + 1}.0000,{p * (n % 3 + 1):.2f}\n"
        for n, (u, t, i, p) in enumerate(bought)
    )
    result = ingest(con, "events", write(tmp_path / "sales_order_item.csv", magento),
                    pii_key=KEY, reading=Reading(event_type="purchase"))  # fmt: skip
    assert (result.columns["quantity"], result.columns["amount"]) == ("qty_ordered", "row_total")
    woo = "customer_id,order_date,product_id,qty,line_total\n" + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},{i},1,{p:.2f}\n" for u, t, i, p in bought
    )
    result = ingest(con, "events", write(tmp_path / "woo_orders.csv", woo), pii_key=KEY,
                    reading=Reading(event_type="purchase"))  # fmt: skip
    assert result.columns["amount"] == "line_total"
    spend = dict(rows(con, "SELECT _batch_id, sum(amount) FROM raw_events GROUP BY 1"))
    assert sorted(spend.values()) == pytest.approx(
        sorted(
            [
                sum(p for _, _, _, p in bought),
                sum(p * (n % 3 + 1) for n, (*_, p) in enumerate(bought)),
            ]
        )
    )


def test_guest_checkouts_as_customer_0_are_said_and_guest_words_quarantined(con, tmp_path):
    """WooCommerce writes customer_id 0 for every guest checkout: 30 guests became one user 0,
    a champion with 117 purchases, unsaid (helper-27). A 0 may be a real user (helper-31), and
    a file must load alike whatever else it holds (helper-33): it loads, and the summary warns
    and names the column that tells guests apart; `guest` itself is quarantined. REES46's
    purchases, every fourth as a guest's."""
    bought = rees46_purchases()[:40]
    body = "order_id,customer_id,billing_email,order_date,product_id,line_total\n" + "".join(
        f"{n},{'0' if n % 4 == 0 else u},{u}@example.com,{t:%Y-%m-%d %H:%M:%S},{i},{p:.2f}\n"
        for n, (u, t, i, p) in enumerate(bought)
    )
    result = ingest(con, "events", write(tmp_path / "woo.csv", body), pii_key=KEY,
                    reading=Reading(event_type="purchase"))  # fmt: skip
    guests = sum(n % 4 == 0 for n in range(len(bought)))
    assert (result.loaded, result.quarantined) == (len(bought), {})
    said = said_of(result)
    assert f"warning: user id '0' has {guests} lines, more than 3x any other user" in said, said
    assert "(--map user_id=billing_email) and ingest the file again with --replace" in said
    words = ingest(con, "events", write(tmp_path / "woo2.csv", body.replace(",0,", ",Guest,")),
                   pii_key=KEY, reading=Reading(event_type="purchase"))  # fmt: skip
    assert words.quarantined == {"placeholder_user_id": guests}
    assert "--map user_id=billing_email" in describe_ingest(words)


def test_purchases_without_any_money_are_said(con, tmp_path):
    """helper-27: a WooCommerce export whose money sat in an unknown column loaded every purchase
    with no amount, and spend read 0 for all 91 buyers, unsaid. REES46's purchases."""
    bought = rees46_purchases()[:10]
    body = "customer_id,order_date,product_id,order_money\n" + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},{i},{p:.2f}\n" for u, t, i, p in bought
    )
    result = ingest(con, "events", write(tmp_path / "orders.csv", body), pii_key=KEY,
                    reading=Reading(event_type="purchase"))  # fmt: skip
    said = said_of(result)
    assert "warning: none of the 10 purchases has an amount or a price" in said, said
    assert "ignored (no canonical column; --map names one): order_money" in said
    priced = ingest(con, "events", write(tmp_path / "priced.csv", body.replace("order_money", "price")),
                    pii_key=KEY, reading=Reading(event_type="purchase"))  # fmt: skip
    assert "has an amount or a price" not in describe_ingest(priced)


def test_a_nested_parquet_column_is_refused_as_one_value(con, tmp_path):
    """GA4's nested export: `--map item_id=items` stored a whole list of items as one item id,
    and `--map session_id=event_params` a struct list holding the search (helper-27). REES46's
    first lines, their item in a list of structs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with REES46.open() as fh:
        lines = list(csv.DictReader(fh))[:20]
    table = pa.table({
        "user_pseudo_id": [r["user_id"] for r in lines],
        "event_name": [r["event_type"] for r in lines],
        "event_time": [r["event_time"].removesuffix(" UTC") for r in lines],
        "items": [[{"item_id": r["product_id"], "price": float(r["price"])}] for r in lines],
    })  # fmt: skip
    path = tmp_path / "ga4_nested.parquet"
    pq.write_table(table, path)
    before = snapshot(con)
    with pytest.raises(
        ProfilerError,
        match=r"column 'items' \(STRUCT.*\[\]\) holds nested values, not one item_id; flatten",
    ):
        ingest(con, "events", path, pii_key=KEY,
               mapping={"user_id": "user_pseudo_id", "event_type": "event_name", "item_id": "items"})  # fmt: skip
    assert snapshot(con) == before
    # a list of plain ids is as many items
    ids = tmp_path / "ids.parquet"
    pq.write_table(table.set_column(3, "items", pa.array([[r["product_id"]] for r in lines])), ids)
    with pytest.raises(ProfilerError, match=r"column 'items' \(VARCHAR\[\]\) holds nested values"):
        ingest(con, "events", ids, pii_key=KEY,
               mapping={"user_id": "user_pseudo_id", "event_type": "event_name", "item_id": "items"})  # fmt: skip
    assert snapshot(con) == before
    # unmapped, the list loaded each line as one event without its items (helper-61); an
    # order-level `price` beside the items' took their name when flattened (helper-66)
    pq.write_table(table.append_column("price", pa.array([999.0] * len(lines))), path)
    reading = {"user_id": "user_pseudo_id", "event_type": "event_name"}
    with pytest.raises(ProfilerError, match="column 'items' holds a list of items on 20 line") as e:
        ingest(con, "events", path, pii_key=KEY, mapping=reading)
    assert snapshot(con) == before
    assert "the order's own price left out for the items' own" in str(e.value)
    # the command the message gives flattens it: one line per item, each read
    command = re.search(r"DuckDB: (COPY .*?TO 'flat\.parquet')", str(e.value)).group(1)
    flat = tmp_path / "flat.parquet"
    con.execute(
        command.replace("'flat.parquet'", f"'{flat}'")
    )  # the file's own name in it (helper-67)
    got = ingest(con, "events", flat, pii_key=KEY, mapping=reading)
    assert got.loaded == 20
    prices = sorted(float(r["price"]) for r in lines)
    assert sorted(p for (p,) in rows(con, "SELECT price FROM raw_events")) == prices
    # GA4's page_views send `items = []`: a file of them loads, as before (helper-65)
    empty = pa.array([[] for _ in lines], table.schema.field("items").type)
    views = tmp_path / "views.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("items"), "items", empty), views)
    page_views = ingest(con, "events", views, pii_key=KEY, mapping=reading)
    assert page_views.loaded == 20 and page_views.item_lists is None  # nothing to flatten


def test_ga4_event_date_reads_with_a_format_and_is_named_without_one(con, tmp_path):
    """GA4's event_date (20191001), as a Parquet integer: --ts-format was ignored for integers and
    every line was quarantined; without it, the hint said "a 0 for a missing time?" (helper-27).
    REES46's first lines."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with REES46.open() as fh:
        lines = list(csv.DictReader(fh))[:10]
    table = pa.table({
        "user_pseudo_id": [r["user_id"] for r in lines],
        "event_name": [r["event_type"] for r in lines],
        "event_date": [int(r["event_time"][:10].replace("-", "")) for r in lines],
    })  # fmt: skip
    pq.write_table(table, tmp_path / "ga4.parquet")
    mapping = {"user_id": "user_pseudo_id", "event_type": "event_name"}
    bare = ingest(con, "events", tmp_path / "ga4.parquet", pii_key=KEY, mapping=mapping)
    assert bare.quarantined == {"early_timestamp": 10}
    assert "these are dates written as YYYYMMDD" in describe_ingest(bare)
    read = ingest(con, "events", tmp_path / "ga4.parquet", pii_key=KEY, mapping=mapping,
                  reading=Reading(ts_format="%Y%m%d"), replace=True)  # fmt: skip
    assert (read.loaded, read.quarantined) == (10, {})
    assert rows(con, "SELECT DISTINCT ts FROM raw_events") == [(datetime(2019, 10, 1),)]


def test_tmall_month_and_day_without_a_year_are_named(con, tmp_path):
    """Tmall's user_log_format1 writes time_stamp as month and day without a year (`829`,
    `1111`); read as Unix seconds, the hint asked whether they were missing times (helper-101).
    Taobao's first lines in Tmall's columns; once the year is added they load."""
    lines = TAOBAO.read_text().splitlines()[1:60]
    codes = {"pv": 0, "cart": 1, "buy": 2, "fav": 3}
    days = ("829", "1111", "511", "1001", "0615")
    body = "user_id,item_id,cat_id,seller_id,brand_id,time_stamp,action_type\n" + "".join(
        f"{u},{i},{c},{n % 7},{n % 5},{days[n % 5]},{codes[b]}\n"
        for n, (u, i, c, b, _) in enumerate(line.split(",") for line in lines)
    )
    reading = Reading(
        values=tuple(
            ("event_type", k, v)
            for k, v in (("0", "view"), ("1", "cart"), ("2", "purchase"), ("3", "fav"))
        )
    )
    bare = ingest(con, "events", write(tmp_path / "user_log_format1.csv", body), pii_key=KEY,
                  reading=reading)  # fmt: skip
    assert bare.quarantined == {"early_timestamp": len(lines)}
    said = describe_ingest(bare)
    assert "a month and day without a year" in said and "missing time" not in said, said
    dated = re.sub(r",(0?\d{3,4}),(\d)\n", lambda m: f",2015{int(m[1]):04d},{m[2]}\n", body)
    read = ingest(con, "events", write(tmp_path / "dated.csv", dated), pii_key=KEY,
                  reading=dataclasses.replace(reading, ts_format="%Y%m%d"))  # fmt: skip
    assert (read.loaded, read.quarantined) == (len(lines), {})
    assert rows(con, "SELECT min(ts), max(ts) FROM raw_events") == [
        (datetime(2015, 5, 11), datetime(2015, 11, 11))
    ]


def test_a_brand_id_a_float_column_wrote_is_the_whole_id(con, tmp_path):
    """pandas writes Tmall's brand_id, which has gaps, as `5848.0`, and as `5848` in a chunk
    without one: one brand read as two (helper-101: `top_brand_1` was `6423.0`). Brand names
    stay as sent, '47 too. Taobao's first lines with Tmall's brand column."""
    lines = TAOBAO.read_text().splitlines()[1:41]
    brands = ("5848.0", "5848", "", "Nike 7.0", "3.50", "'47")
    body = "user_id,item_id,category_id,behavior_type,ts,brand_id\n" + "".join(
        f"{line},{brands[n % 6]}\n" for n, line in enumerate(lines)
    )
    got = ingest(con, "events", write(tmp_path / "tmall.csv", body), pii_key=KEY)
    assert got.loaded == len(lines)
    assert rows(con, "SELECT DISTINCT brand FROM raw_events ORDER BY 1") == [
        ("'47",),
        ("3.50",),
        ("5848",),
        ("Nike 7.0",),
        (None,),
    ]


def test_the_summary_says_how_many_more_values_a_reason_had(con, tmp_path):
    """Only five values are named per reason: GA4 sends more event names than that, and the
    summary said nothing of the rest (helper-27)."""
    names = ["session_start", "first_visit", "scroll", "user_engagement", "page_view",
             "begin_checkout", "add_payment_info"]  # fmt: skip
    body = "user_id,event_type,ts\n" + "".join(
        f"1,{n},2019-10-01 00:0{i}:00\n" for i, n in enumerate(names)
    ) + "1,view_item,2019-10-01 00:09:00\n"  # fmt: skip
    result = ingest(con, "events", write(tmp_path / "ga4.csv", body), pii_key=KEY)
    said = describe_ingest(result)
    assert "quarantined 7: unknown_event_type (" in said and ", and 2 more value(s))" in said, said


def test_an_order_total_on_every_line_and_mixed_currencies_are_said(con, tmp_path):
    """helper-27: GA4's purchase_revenue mapped as the amount repeats the order's total on each
    item line (spend +13%), and a currency column was ignored while EUR and USD were summed.
    REES46's purchases, paired into two-item orders of the first one's buyer and time."""
    bought = rees46_purchases()[:20]
    lines, own_lines = [], []
    for n in range(0, len(bought), 2):
        (user, t, item_a, price_a), (_, _, item_b, price_b) = bought[n], bought[n + 1]
        total = price_a + price_b
        currency = "EUR" if n % 4 == 0 else "USD"
        for item, price in ((item_a, price_a), (item_b, price_b)):
            sent = f"{user},{t:%Y-%m-%d %H:%M:%S},{item},{price:.2f}"
            lines.append(f"{sent},{total:.2f},{currency}\n")
            own_lines.append(f"{sent},{price:.2f},USD\n")
    body = "user_id,ts,item_id,price,purchase_revenue,currency\n" + "".join(lines)
    result = ingest(con, "events", write(tmp_path / "ga4_purchases.csv", body), pii_key=KEY,
                    reading=Reading(event_type="purchase"), mapping={"amount": "purchase_revenue"})  # fmt: skip
    said = said_of(result)
    assert (
        "warning: in 10 of 10 orders of several items, every line carries the same 'purchase_revenue'"
        in said
    ), said
    assert "warning: amounts in more than one currency (EUR 10, USD 10 lines)" in said, said
    # the same orders with each line's own money, in one currency: nothing to say
    own = "user_id,ts,item_id,price,amount,currency\n" + "".join(own_lines)
    ok = ingest(con, "events", write(tmp_path / "lines.csv", own), pii_key=KEY,
                reading=Reading(event_type="purchase"))  # fmt: skip
    said = describe_ingest(ok)
    assert "orders of several items" not in said and "currency" not in said.split("ignored")[0], (
        said
    )


def test_a_ten_point_rating_scale_is_refused_and_read_with_its_option(con, tmp_path):
    """helper-32: a 1-10 reviews feed loaded its 1-5 ratings as stars and quarantined the 6-10
    ones, text and all (480 of 977 lines; mean 2.99 stars for a true 5.57 of 10). Taobao's first
    buyers and items, rating them 1..10 in turn."""
    with TAOBAO.open() as fh:
        bought = [line.split(",") for line in fh if ",buy," in line][:40]
    body = "user_id,product_id,score,created_at,review_text\n" + "".join(
        f"{u},{i},{n % 10 + 1},{int(t) + 3600},fine\n" for n, (u, i, _, _, t) in enumerate(bought)
    )
    path = write(tmp_path / "reviews10.csv", body)
    before = snapshot(con)
    with pytest.raises(
        ProfilerError,
        match=r"20 of 40 ratings are above 5 \(up to 10\): a scale of 10 points\?.*--rating-scale 10",
    ):
        ingest(con, "feedback", path, pii_key=KEY, reading=Reading(kind="review"))
    assert snapshot(con) == before
    # a few stray values of a 5-star file stay single lines in quarantine, with the values named
    stray = (
        body.replace(",7,", ",5,")
        .replace(",8,", ",4,")
        .replace(",9,", ",3,")
        .replace(",10,", ",2,")
    )
    odd = ingest(
        con,
        "feedback",
        write(tmp_path / "reviews5.csv", stray),
        pii_key=KEY,
        reading=Reading(kind="review"),
    )
    assert odd.quarantined == {"bad_rating": 4} and odd.unknown["bad_rating"] == [("6", 4)]
    # a 5-star file with a few 10s (no spread over 6-9) is stars, its 10s quarantined (helper-33)
    tens = ingest(con, "feedback", write(tmp_path / "tens.csv", stray.replace(",6,", ",10,")),
                  pii_key=KEY, reading=Reading(kind="review"))  # fmt: skip
    assert tens.quarantined == {"bad_rating": 4}
    # nor is one stray 8 beside them a spread (ratings spread over 6-9 take two values or more)
    eight = stray.replace(",6,", ",10,", 3).replace(",6,", ",8,")
    eights = ingest(con, "feedback", write(tmp_path / "eight.csv", eight), pii_key=KEY,
                    reading=Reading(kind="review"))  # fmt: skip
    assert eights.quarantined == {"bad_rating": 4}
    result = ingest(
        con, "feedback", path, pii_key=KEY, reading=Reading(kind="review", rating_scale=10)
    )
    assert (result.loaded, result.quarantined) == (40, {})
    stars = dict(
        rows(
            con,
            "SELECT rating, count(*) FROM raw_feedback WHERE _batch_id = ? GROUP BY ALL",
            [result.batch_id],
        )
    )
    assert stars == {1: 8, 2: 8, 3: 8, 4: 8, 5: 8}  # 1-2 of 10 one star ... 9-10 five
    # an NPS 0 (note 13: quarantined as a bad rating) is the lowest, one star; -1 stays out
    nps = body.replace(",1,", ",0,").replace(",2,", ",-1,")
    zero = ingest(con, "feedback", write(tmp_path / "nps.csv", nps), pii_key=KEY,
                  reading=Reading(kind="review", rating_scale=10))  # fmt: skip
    assert zero.quarantined == {"bad_rating": 4} and zero.unknown["bad_rating"] == [("-1", 4)]
    assert rows(con, "SELECT count(*) FROM raw_feedback WHERE _batch_id = ? AND rating = 1",
                [zero.batch_id]) == [(4,)]  # fmt: skip
    # the feed's next day, of low scores only, reads at the scale given before (helper-34: 4 of
    # 10 read as 4 stars), and a file mostly of low scores with a spread over 6-10 is refused
    day2 = body.splitlines()[0] + "\n" + "".join(
        line.replace(",fine", ",day two") + "\n" for line in body.splitlines()[1:] if line.split(",")[2] in ("2", "4")
    )  # fmt: skip
    later = ingest(
        con,
        "feedback",
        write(tmp_path / "day2.csv", day2),
        pii_key=KEY,
        reading=Reading(kind="review"),
    )
    assert later.reading.rating_scale == 10 and later.quarantined == {}
    # said as a warning (helper-44: a stars feed after an NPS one read 5 stars as 3, in a note)
    said = said_of(later)
    assert "warning: ratings read on a scale of 10 points" in said
    assert "--rating-scale 5 --replace" in said
    assert rows(
        con, "SELECT DISTINCT rating FROM raw_feedback WHERE text = 'day two' ORDER BY 1"
    ) == [(1,), (2,)]
    # and --rating-scale 5 reads a file that looks like a scale of 10 as stars
    five = ingest(con, "feedback", path, pii_key=KEY, replace=True,
                  reading=Reading(kind="review", rating_scale=5))  # fmt: skip
    assert five.quarantined == {"bad_rating": 20}
    # a file that keeps no line leaves no scale for the next (none of its ratings was read)
    undated = re.sub(r",[0-9]+,(fine|day two)$", r",yesterday,\1", day2, flags=re.M)
    lost = ingest(con, "feedback", write(tmp_path / "undated.csv", undated), pii_key=KEY,
                  reading=Reading(kind="review", rating_scale=10))  # fmt: skip
    assert (lost.loaded, lost.quarantined) == (0, {"bad_timestamp": 8})
    day3 = day2.replace("day two", "day three")
    stars = ingest(con, "feedback", write(tmp_path / "day3.csv", day3), pii_key=KEY,
                   reading=Reading(kind="review"))  # fmt: skip
    assert stars.reading.rating_scale is None and not stars.scale_remembered


def test_unpaid_orders_and_currencies_are_named_whatever_their_columns_are_called(con, tmp_path):
    """helper-32: `currency_iso` hid a EUR and USD mix that `currency` showed, and an ignored
    `order_state` of cancelled orders was loaded as purchases, unsaid. REES46's purchases."""
    bought = rees46_purchases()[:30]
    # helper-33: `currency_rate` was taken for the currency, `customer_state` for the status
    header = "customer_email,customer_state,order_date,product_number,unit_price,currency_rate,currency_iso,order_state\n"
    body = header + "".join(
        f"{u}@example.com,CA,{t:%Y-%m-%d %H:%M:%S},{i},{p:.2f},{1 if n % 3 else 0.92},"
        f"{'EUR' if n % 3 else 'USD'},{'cancelled' if n % 10 == 0 else 'completed'}\n"
        for n, (u, t, i, p) in enumerate(bought)
    )
    result = ingest(con, "events", write(tmp_path / "shopware.csv", body), pii_key=KEY,
                    reading=Reading(event_type="purchase"), mapping={"user_id": "customer_email"})  # fmt: skip
    said = said_of(result)
    assert "warning: amounts in more than one currency (EUR 20, USD 10 lines)" in said, said
    assert (
        "warning: 'order_state' (ignored) says some orders were not bought ('cancelled' 3 lines)"
        in said
    ), said
    # helper-36: the same lines as JSON said neither; BigCommerce's words were not known
    import json as _json

    names = header.strip().split(",")
    lines = [dict(zip(names, line.split(","), strict=True)) for line in body.splitlines()[1:]]
    for n, line in enumerate(lines):
        line["order_state"] = {0: "Awaiting Payment", 1: "incomplete"}.get(
            n % 10, line["order_state"]
        )
    jsonl = "".join(_json.dumps(line) + "\n" for line in lines)
    result = ingest(con, "events", write(tmp_path / "orders.jsonl", jsonl), pii_key=KEY,
                    reading=Reading(event_type="purchase"), mapping={"user_id": "customer_email"})  # fmt: skip
    said = said_of(result)
    assert "warning: amounts in more than one currency (EUR 20, USD 10 lines)" in said, said
    assert "('Awaiting Payment' 3, 'incomplete' 3 lines)" in said, said
    # helper-44: in other languages (Allegro's `Waluta` and `Anulowane`, a Chinese shop's
    # `订单状态` and `已取消`, Recharge's skipped charges) neither was said
    for currency, status, words in (
        ("Waluta", "Status zamówienia", ("Anulowane", "Zakończone")),
        ("货币", "订单状态", ("已取消", "交易成功")),
        ("currency", "status", ("SKIPPED", "SUCCESS")),
    ):
        local = body.replace("currency_iso", currency).replace("order_state", status)
        local = local.replace("cancelled", words[0]).replace("completed", words[1])
        result = ingest(con, "events", write(tmp_path / f"{currency}.csv", local), pii_key=KEY,
                        reading=Reading(event_type="purchase"), mapping={"user_id": "customer_email"})  # fmt: skip
        said = said_of(result)
        assert "warning: amounts in more than one currency (EUR 20, USD 10 lines)" in said, said
        assert (
            f"warning: '{status}' (ignored) says some orders were not bought ('{words[0]}' 3 lines)"
            in said
        ), said
    # every status column is read: Nuvemshop's order status says closed, its payment status
    # says pending (helper-48: only the first column was looked at)
    lines = body.replace("order_state", "Status do Pedido").splitlines()
    two = (
        lines[0]
        + ",Status do Pagamento\n"
        + "".join(
            f"{line.replace('cancelled', 'Fechado').replace('completed', 'Fechado')},"
            f"{'Pendente' if n % 5 == 0 else 'Pago'}\n"
            for n, line in enumerate(lines[1:])
        )
    )
    result = ingest(con, "events", write(tmp_path / "nuvem.csv", two), pii_key=KEY,
                    reading=Reading(event_type="purchase"), mapping={"user_id": "customer_email"})  # fmt: skip
    said = said_of(result)
    assert (
        "'Status do Pagamento' (ignored) says some orders were not bought ('Pendente' 6 lines)"
        in said
    ), said
    # Shopify: a paid order not shipped yet and a partial refund are bought (helper-57: told to
    # leave them out); a refunded one is not
    shopify = (
        lines[0].replace("Status do Pedido", "Financial Status")
        + ",Lineitem fulfillment status\n"
        + "".join(
            f"{line.replace('cancelled', 'partially_refunded').replace('completed', 'paid' if n % 7 else 'refunded')},pending\n"
            for n, line in enumerate(lines[1:])
        )
    )
    result = ingest(con, "events", write(tmp_path / "shopify.csv", shopify), pii_key=KEY,
                    reading=Reading(event_type="purchase"), mapping={"user_id": "customer_email"})  # fmt: skip
    said = said_of(result)
    assert "'Financial Status' (ignored) says some orders were not bought ('refunded'" in said, said
    assert (
        "not bought ('partially_refunded'" not in said
        and "'Lineitem fulfillment status' (ignored) says" not in said
    )
    assert "every line of them (Shopify writes the status on an order's first line only)" in said
    assert "says some orders were refunded in part ('partially_refunded'" in said, said


def test_a_birthday_gives_the_birth_year_and_a_zero_date_is_no_value(con, tmp_path):
    """helper-32: Shopware's customers export sends `birthday` (1990-01-01, or MySQL's zero date
    0000-00-00 for unknown): mapped to birth_year, 661 of 731 customers were quarantined whole,
    their city and gender lost; other date formats did too (helper-33). Taobao's first user ids."""
    with TAOBAO.open() as fh:
        next(fh)
        users = list(dict.fromkeys(line.split(",")[0] for line in fh))[:10]
    days = [
        "1990-01-01",
        "0000-00-00",
        "31.12.1985",
        "7/1/02",
        "07/04/2001",
        "19770305",
        "3.5.85",
        "",
        "85/07/01",  # Japan's YY/MM/DD (helper-39: read as 2001)
        "99/04/20",
    ]
    body = "customer_number,birthday,city\n" + "".join(
        f"{u},{d},Hangzhou\n" for u, d in zip(users, days, strict=True)
    )
    result = ingest(con, "users", write(tmp_path / "customers.csv", body), pii_key=KEY,
                    mapping={"user_id": "customer_number"})  # fmt: skip
    assert (result.loaded, result.quarantined) == (10, {})
    assert result.columns["birth_year"] == "birthday"
    got = dict(rows(con, "SELECT user_id, birth_year FROM raw_users"))
    # two-digit years (note 13: quarantined): 20xx up to 15, else 19xx, whatever the year now
    years = [1990, None, 1985, 2002, 2001, 1977, 1985, None, 1985, 1999]
    assert got == dict(zip(users, years, strict=True))
    # a Parquet DATE column of birthdays, and one of years, read alike
    from datetime import date

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"customer_id": users[:2], "birthday": [date(1990, 1, 1), None]}),
        tmp_path / "c.parquet",
    )
    typed = ingest(con, "users", tmp_path / "c.parquet", pii_key=KEY)
    assert (typed.loaded, typed.quarantined) == (2, {})
    pq.write_table(
        pa.table({"customer_id": users[:2], "birth_year": [1990, None]}), tmp_path / "y.parquet"
    )
    assert ingest(con, "users", tmp_path / "y.parquet", pii_key=KEY).quarantined == {}
    # a spreadsheet's date column saved as General: serial days (32874 is 1990-01-01; note 14:
    # birth year 32874, NULL in the profile, unsaid), and a Parquet column of numbers like them
    body = "customer_number,dob\n" + "".join(
        f"{u},{d}\n"
        for u, d in zip(users[:4], ["32874", "28491.0", "1975", "19800101"], strict=True)
    )
    serial = ingest(con, "users", write(tmp_path / "serial.csv", body), pii_key=KEY,
                    mapping={"user_id": "customer_number"})  # fmt: skip
    assert serial.serial_birthdays == (2, "28491.0")
    assert "(28491.0 is 1978-01-01)" in describe_ingest(serial)
    pq.write_table(
        pa.table({"customer_id": users[4:6], "birthday": [32874, 19800101]}), tmp_path / "n.parquet"
    )
    ingest(con, "users", tmp_path / "n.parquet", pii_key=KEY)
    got = dict(rows(con, "SELECT user_id, birth_year FROM raw_users WHERE _batch_id > 3"))
    assert got == dict(zip(users[:6], [1990, 1978, 1975, 1980, 1990, 1980], strict=True))
    # six digits (helper-45: a Korean members file's YYMMDD 930516 gave no year, unsaid): read
    # where one pair can only be a year, else unknown and said, as a month-and-day birthday is
    body = (
        "customer_number,dob\n"
        + "".join(
            f"{u},{d}\n"
            for u, d in zip(users[6:10], ["930516", "160593", "050516", "0000-03-15"], strict=True)
        )
        + " ,0000-01-01\n"
    )  # a line without a user: in quarantine, not among the birthdays said
    six = ingest(con, "users", write(tmp_path / "six.csv", body), pii_key=KEY,
                 mapping={"user_id": "customer_number"})  # fmt: skip
    assert (six.loaded, sum(six.quarantined.values())) == (4, 1)
    assert six.serial_birthdays is None and six.yearless_birthdays == (2, ["0000-03-15", "050516"])
    assert "2 birthday(s) give no year between 1900 and 2030" in describe_ingest(six)
    got = dict(
        rows(con, "SELECT user_id, birth_year FROM raw_users WHERE _batch_id = ?", [six.batch_id])
    )
    assert [got[u] for u in users[6:10]] == [1993, 1993, 0, 0]
    # DDMMYY as numbers lose their zero (010190 is 10190): a column with six-digit values
    # holds no serial days (helper-47: 10190 read as 1927)
    pq.write_table(
        pa.table({"customer_id": users[:2], "dob": [10190, 120590]}), tmp_path / "d.parquet"
    )
    ddmmyy = ingest(con, "users", tmp_path / "d.parquet", pii_key=KEY)
    assert ddmmyy.serial_birthdays is None and ddmmyy.yearless_birthdays == (1, ["10190"])
    # JSON lines too (helper-49: a KeyError before the key's value was read)
    body = "".join(
        f'{{"customer_id": "{u}", "birthday": "{d}"}}\n'
        for u, d in zip(users[:2], ["1990-05-03", "32874"], strict=True)
    )
    got = ingest(con, "users", write(tmp_path / "b.jsonl", body), pii_key=KEY)
    assert (got.loaded, got.serial_birthdays) == (2, (1, "32874"))


def test_segment_events_read_keys_inside_properties(con, tmp_path):
    """helper-32: Segment's export nests the product, price and query in `properties`; they were
    ignored (17,055 views without an item) and `--map item_id=properties.product_id` was refused.
    REES46's first lines as Segment track calls."""
    import json as _json

    names = {"view": "Product Viewed", "cart": "Product Added", "purchase": "Order Completed"}
    with REES46.open() as fh:
        lines = list(csv.DictReader(fh))[:50]
    body = "".join(
        _json.dumps({"type": "track", "event": names[r["event_type"]], "anonymous_id": r["user_id"],
                     "timestamp": r["event_time"].replace(" UTC", "Z").replace(" ", "T"),
                     "properties": {"product_id": r["product_id"], "price": float(r["price"]),
                                    "brand": r["brand"] or None},
                     "context": {"ip": "10.0.0.1", "library": {"name": "analytics.js"}}}) + "\n"
        for r in lines
    )  # fmt: skip
    values = tuple(("event_type", w, t) for t, w in names.items())
    result = ingest(con, "events", write(tmp_path / "segment.jsonl", body), pii_key=KEY,
                    mapping={"user_id": "anonymous_id", "event_type": "event"},
                    reading=Reading(values=values))  # fmt: skip
    assert (result.loaded, result.quarantined) == (50, {})
    assert result.columns["item_id"] == "properties.product_id"
    assert result.columns["price"] == "properties.price"
    assert "context.ip" not in result.ignored and "context" in result.ignored
    # a key beside the read ones is unread: a quarantined line never shows it (helper-33: a
    # shipping name and phone inside `properties` were stored as sent)
    bad = _json.dumps({"event": "Product Viewed", "anonymous_id": "u1", "timestamp": "nope",
                       "properties": {"product_id": "1", "shipping_phone": "+49 30 1234567"}})  # fmt: skip
    odd = ingest(con, "events", write(tmp_path / "odd.jsonl", bad + "\n"), pii_key=KEY,
                 mapping={"user_id": "anonymous_id", "event_type": "event"},
                 reading=Reading(values=values))  # fmt: skip
    assert "properties.shipping_phone" in odd.ignored
    (raw,) = rows(con, "SELECT raw FROM quarantine WHERE batch_id = ?", [odd.batch_id])[0]
    assert "1234567" not in raw, raw
    got = rows(con, "SELECT item_id, price FROM raw_events ORDER BY ALL")
    assert got == sorted((r["product_id"], float(r["price"])) for r in lines)


def test_a_real_user_0_is_kept(con, tmp_path):
    """helper-31: shops whose ids start at 0 (RetailRocket's visitorid) have a real user 0; only
    a 0 holding more lines than 3x any other user is a placeholder. Taobao's first lines, with
    user 1 renamed 0."""
    with TAOBAO.open() as fh:
        lines = [next(fh)] + [next(fh) for _ in range(300)]
    body = "".join(
        lines[:1] + [("0" + line[1:]) if line.startswith("1,") else line for line in lines[1:]]
    )
    result = ingest(con, "events", write(tmp_path / "events.csv", body), pii_key=KEY)
    assert result.quarantined == {} and result.loaded == 300 and result.catch_all == []
    assert rows(con, "SELECT count(*) > 0 FROM raw_events WHERE user_id = '0'") == [(True,)]


def test_segment_and_ga4_names_and_guests_without_an_id_are_read_or_hinted(con, tmp_path):
    """helper-34: GA4's event_name and Segment's ecommerce events (Product Viewed, Order
    Completed) needed a --map and four --event-type pairs; Magento guests with an empty
    customer_id were quarantined with no hint of the e-mail column beside them. REES46's lines."""
    names = {"view": "Product Viewed", "cart": "Product Added", "purchase": "Order Completed"}
    with REES46.open() as fh:
        lines = list(csv.DictReader(fh))[:30]
    body = "anonymous_id,event_name,timestamp,product_id\n" + "".join(
        f"{r['user_id']},{names[r['event_type']]},{r['event_time'].removesuffix(' UTC')},{r['product_id']}\n"
        for r in lines
    )
    result = ingest(
        con,
        "events",
        write(tmp_path / "seg.csv", body),
        pii_key=KEY,
        mapping={"user_id": "anonymous_id"},
    )
    assert (result.loaded, result.quarantined) == (30, {})
    assert result.columns["event_type"] == "event_name"
    guests = "customer_id,customer_email,created_at,sku,price\n" + "".join(
        f"{'' if n % 2 else r['user_id']},{r['user_id']}@example.com,{r['event_time'].removesuffix(' UTC')},{r['product_id']},{r['price']}\n"
        for n, r in enumerate(lines)
    )
    magento = ingest(
        con,
        "events",
        write(tmp_path / "magento.csv", guests),
        pii_key=KEY,
        reading=Reading(event_type="purchase"),
    )
    assert magento.quarantined == {"missing_user_id": 15}
    assert "load with --map user_id=customer_email" in said_of(magento)
    # GA4's flat export: a flag and a time come before the anonymous id in the file (helper-51:
    # `--map user_id=is_active_user` made every guest one user `true`)
    ga4 = (
        "is_active_user,user_first_touch_time,user_pseudo_id,user_id,event_timestamp,event_name,item_id\n"
        + "".join(
            f"true,1569888000000000,{r['user_session']},{'' if n % 2 else r['user_id']},"
            f"{r['event_time'].removesuffix(' UTC')},view_item,{r['product_id']}\n"
            for n, r in enumerate(lines)
        )
    )
    anonymous = ingest(con, "events", write(tmp_path / "ga4.csv", ga4), pii_key=KEY)
    assert anonymous.quarantined == {"missing_user_id": 15}
    assert "load with --map user_id=user_pseudo_id" in said_of(anonymous)
    # without the anonymous id, no time stands for a guest
    unnamed = "".join(
        ",".join(v for k, v in enumerate(line.split(",")) if k != 2) + "\n"
        for line in ga4.splitlines()
    )
    anonymous = ingest(con, "events", write(tmp_path / "ga4_unnamed.csv", unnamed), pii_key=KEY)
    assert anonymous.quarantined == {"missing_user_id": 15}
    assert "--map user_id=user_first" not in said_of(anonymous)
    # a POS export: `Customer` holds display names, on the guests' lines too; never the hint
    # (helper-57: following it stored raw names as ids, 249 customers as 20)
    pos = "customer_code,customer,ts,item_id,price\n" + "".join(
        f"{'' if n % 2 else r['user_id']},{'Walk In' if n % 2 else 'Ana Khan'},"
        f"{r['event_time'].removesuffix(' UTC')},{r['product_id']},{r['price']}\n"
        for n, r in enumerate(lines)
    )
    till = ingest(con, "events", write(tmp_path / "pos.csv", pos), pii_key=KEY,
                  mapping={"user_id": "customer_code"}, reading=Reading(event_type="purchase"))  # fmt: skip
    assert till.quarantined == {"missing_user_id": 15}
    assert "--map user_id=customer" not in said_of(till)
    # the same with `guest` as the guests' id (helper-58: its hint still named the names)
    guest = pos.replace("\n,Walk In", "\nguest,Walk In")
    till = ingest(con, "events", write(tmp_path / "pos2.csv", guest), pii_key=KEY,
                  mapping={"user_id": "customer_code"}, reading=Reading(event_type="purchase"))  # fmt: skip
    assert till.quarantined == {"placeholder_user_id": 15}
    assert "--map user_id=customer" not in said_of(till)


def test_an_empty_first_line_is_refused_naming_the_fix(con, tmp_path):
    """eBay's orders report starts with an empty line (helper-57: refused without a way out).
    Taobao's first lines after one."""
    text = "".join(TAOBAO.read_text().splitlines(keepends=True)[:20])
    with pytest.raises(
        ProfilerError, match=r"the first line is empty.*sed '/\[\^\[:space:\]\]/,\$!d' FILE"
    ):
        ingest(con, "events", write(tmp_path / "ebay.csv", "\n" + text), pii_key=KEY)
    assert snapshot(con) == {}


def test_dates_with_a_two_digit_year_name_the_format(con, tmp_path):
    """Etsy's sold-items export writes `01/10/24`: read as the year 24 and quarantined as too
    early, with a hint about missing times (helper-57). REES46's first purchases, so dated."""
    bought = rees46_purchases()[:6]
    body = "user_id,ts,item_id,price\n" + "".join(
        f"{u},{t:%m/%d/%y},{i},{p}\n" for u, t, i, p in bought
    )
    got = ingest(con, "events", write(tmp_path / "etsy.csv", body), pii_key=KEY,
                 reading=Reading(event_type="purchase"))  # fmt: skip
    assert got.loaded == 0
    assert (
        "a two-digit year, read as years 0-99: send the file again with --ts-format '%m/%d/%y'"
        in said_of(got)
    )
    # day or month first, when the file cannot tell (helper-59: the day-first reading went unsaid)
    ambiguous = "user_id,ts,item_id,price\nu1,05/03/24,i1,1.0\nu2,06/03/24,i2,2.0\n"
    unsure = ingest(con, "events", write(tmp_path / "eu.csv", ambiguous), pii_key=KEY,
                    reading=Reading(event_type="purchase"))  # fmt: skip
    assert "--ts-format '%m/%d/%y' or '%d/%m/%y' (day or month first?" in said_of(unsure)
    fixed = Reading(event_type="purchase", ts_format="%m/%d/%y")
    again = ingest(con, "events", write(tmp_path / "etsy.csv", body), pii_key=KEY, reading=fixed)
    assert again.loaded == 6 and rows(con, "SELECT min(ts) FROM raw_events") == [
        (datetime(2019, 10, 1),)
    ]


def test_an_order_sent_again_later_is_said(con, tmp_path):
    """GA4 sends a purchase again when the confirmation page is reloaded: the same
    transaction_id, 95 seconds later (helper-51: counted twice, unsaid). An order's items at one
    time are one order. REES46's first purchases as GA4 orders of two items each."""
    bought = rees46_purchases()[:6]
    lines = [  # each order's two items at its first item's user and time
        f"{bought[n - n % 2][0]},{bought[n - n % 2][1]:%Y-%m-%d %H:%M:%S},purchase,{i},{p},T{n // 2}"
        for n, (_, _, i, p) in enumerate(bought)
    ]
    u, t, i, p = bought[0]
    reload = f"{u},{t + timedelta(seconds=95):%Y-%m-%d %H:%M:%S},purchase,{i},{p},T0"
    body = "user_pseudo_id,event_time,event_name,item_id,price,transaction_id\n"
    got = ingest(con, "events", write(tmp_path / "ga4.csv", body + "\n".join([*lines, reload]) + "\n"),
                 pii_key=KEY, mapping={"user_id": "user_pseudo_id"})  # fmt: skip
    assert "warning: 1 order(s) of 'transaction_id' (ignored) come again later" in said_of(got)
    once = ingest(con, "events", write(tmp_path / "once.csv", body + "\n".join(lines) + "\n"),
                  pii_key=KEY, mapping={"user_id": "user_pseudo_id"}, replace=False)  # fmt: skip
    assert once.orders_again is None
    # an order's other items past midnight: its lines spread over two days, not sent again
    # (helper-61: told to leave 14 real purchases out); one whose later time repeats an item
    # beside a new one is spread too, never also told to leave its lines out (helper-66); a unit
    # 137 ms after its order's first line is the order's (Retailrocket, helper-65)
    late = (
        "u9,2019-10-01 23:59:30,purchase,a,1.5,T9\nu9,2019-10-01 23:59:30.137,purchase,a,1.5,T9\n"
    )
    after = "u9,2019-10-02 00:00:40,purchase,b,2.5,T9\nu9,2019-10-02 00:00:40,purchase,a,1.5,T9\n"
    spread = ingest(con, "events", write(tmp_path / "midnight.csv", body + late + after),
                    pii_key=KEY, mapping={"user_id": "user_pseudo_id"})  # fmt: skip
    assert spread.orders_again == ("transaction_id", 0, 0, 2, 1)
    assert "come again later" not in said_of(spread)
    assert "1 order(s) of 'transaction_id' (ignored) have items on a later day" in said_of(spread)
    same_day = ingest(con, "events", write(tmp_path / "rr.csv", body + late), pii_key=KEY,
                      mapping={"user_id": "user_pseudo_id"})  # fmt: skip
    assert same_day.orders_again is None
    # from two seconds on, the order's item again is the order sent again
    reloaded = (
        "u7,2019-10-01 12:00:00,purchase,a,1.5,T7\nu7,2019-10-01 12:00:02,purchase,a,1.5,T7\n"
    )
    two_s = ingest(con, "events", write(tmp_path / "rr3.csv", body + reloaded), pii_key=KEY,
                   mapping={"user_id": "user_pseudo_id"})  # fmt: skip
    assert two_s.orders_again == ("transaction_id", 1, 1, 0, 0)
    # ...unless those milliseconds cross midnight: two purchase days (helper-67)
    across = "u8,2019-10-01 23:59:59.900,purchase,a,1.5,T8\nu8,2019-10-02 00:00:00.037,purchase,b,1.5,T8\n"
    crossing = ingest(con, "events", write(tmp_path / "rr2.csv", body + across), pii_key=KEY,
                      mapping={"user_id": "user_pseudo_id"})  # fmt: skip
    assert crossing.orders_again == ("transaction_id", 0, 0, 1, 1)
    # GA4 writes `(not set)` where a purchase has no id: no order, whatever the users and times
    # (helper-59: 39 purchases of 39 users were told to go)
    unset = body + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},purchase,{i},{p},(not set)\n" for u, t, i, p in bought
    )
    none = ingest(con, "events", write(tmp_path / "unset.csv", unset), pii_key=KEY,
                  mapping={"user_id": "user_pseudo_id"})  # fmt: skip
    assert none.orders_again is None


def test_equal_purchase_units_split_over_the_parts_of_one_export_are_said(con, tmp_path):
    """A warehouse's parallel unload deals an export's lines over part files, so two equal units
    of one order may land in two parts; the build counts the second as the first sent again
    (helper-61: 17% of spend gone, unsaid). REES46's purchases over two parts, three of them
    bought twice with a unit in each part. The joined file, loaded too, is not told again
    (helper-66)."""
    bought = rees46_purchases()[:18]

    def lines(part):
        return "user_id,ts,event_type,item_id,price\n" + "".join(
            f"{u},{t:%Y-%m-%d %H:%M:%S},purchase,{i},{p}\n" for u, t, i, p in part
        )

    first = ingest(
        con, "events", write(tmp_path / "data_0_0_0.csv", lines(bought[:8])), pii_key=KEY
    )
    assert first.purchases_resent == (0, [])
    second = ingest(con, "events", write(tmp_path / "data_0_0_1.csv", lines(bought[:3] + bought[8:])),
                    pii_key=KEY)  # fmt: skip
    assert second.purchases_resent == (3, [first.batch_id])
    assert "such lines are separate units: join the parts into one file" in said_of(second)
    joined = ingest(
        con, "events", write(tmp_path / "all.csv", lines(bought[:3] + bought)), pii_key=KEY
    )
    assert joined.purchases_resent == (0, []) and "separate units" not in said_of(joined)
    # half of a file's purchases equal to loaded ones is no longer under half: not told
    more = rees46_purchases()[18:21]
    half = ingest(
        con, "events", write(tmp_path / "half.csv", lines(bought[:3] + more)), pii_key=KEY
    )
    assert (half.loaded, half.purchases_resent) == (6, (0, []))


def test_an_age_group_read_as_a_birth_year_is_told_what_to_map(con, tmp_path):
    """Ta Feng's transactions carry the buyer's age group (`50-54`): read as a birth year, every
    line went to quarantine with a hint to try --decimal-comma, and a warning that the file's
    values were now the users' newest, though none loaded (helper-61)."""
    body = (
        "TRANSACTION_DT,CUSTOMER_ID,AGE_GROUP,PIN_CODE,PRODUCT_ID,event_type\n"
        "11/1/2000,1104905,50-54,115,4710199010372,purchase\n"
        "11/1/2000,418683,30-34,221,4710857472535,purchase\n"
    )
    path = write(tmp_path / "tafeng.csv", body)
    events = ingest(con, "events", path, pii_key=KEY, mapping={"ts": "TRANSACTION_DT"},
                    reading=Reading(ts_format="%m/%d/%Y"))  # fmt: skip
    assert events.loaded == 2
    users = ingest(con, "users", path, pii_key=KEY,
                   mapping={"birth_year": "AGE_GROUP", "region": "PIN_CODE"})  # fmt: skip
    said = said_of(users)
    assert users.loaded == 0 and "decimal comma" not in said
    assert "'AGE_GROUP' holds no birth_year the way it is read ('30-34')" in said
    assert "--map birth_year= (lines in `quarantine`)" in said
    assert "newest values" not in said


def test_an_item_status_says_to_leave_the_lines_out(con, tmp_path):
    """Amazon's `item-status` is a line's: one cancelled item of a shipped order is one line to
    leave out, not the order (helper-58: told to drop whole orders, 59 shipped lines lost).
    REES46's first purchases, every third item cancelled."""
    bought = rees46_purchases()[:9]
    body = "buyer,ts,sku,item-price,item-status\n" + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},{i},{p},{'Cancelled' if n % 3 == 0 else 'Shipped'}\n"
        for n, (u, t, i, p) in enumerate(bought)
    )
    got = ingest(con, "events", write(tmp_path / "orders.csv", body), pii_key=KEY,
                 mapping={"user_id": "buyer"}, reading=Reading(event_type="purchase"))  # fmt: skip
    said = said_of(got)
    assert (
        "('Cancelled' 3 lines), yet every line counts as a purchase: leave those lines out" in said
    )


def test_an_unknown_event_word_names_the_option_and_pixel_words_read(con, tmp_path):
    """Meta Pixel's ViewContent and AddToWishlist went to quarantine with no word of the way in
    (helper-58). REES46's first views as pixel events, one InitiateCheckout among them."""
    bought = rees46_purchases()[:4]
    words = ["ViewContent", "AddToWishlist", "InitiateCheckout", "Purchase"]
    body = "user_id,event,ts,item_id,price\n" + "".join(
        f"{u},{w},{t:%Y-%m-%d %H:%M:%S},{i},{p}\n"
        for (u, t, i, p), w in zip(bought, words, strict=True)
    )
    got = ingest(con, "events", write(tmp_path / "pixel.csv", body), pii_key=KEY)
    assert (got.loaded, got.quarantined) == (3, {"unknown_event_type": 1})
    said = said_of(got)
    assert "'AddToWishlist' as fav 1, 'ViewContent' as view 1" in said, said
    assert "map such a word with --event-type 'InitiateCheckout=TYPE'" in said, said
    # as it says: skipped, the file goes in again (helper-59: refused as the same reading)
    skipped = Reading(values=(("event_type", "InitiateCheckout", "skip"),))
    again = ingest(con, "events", tmp_path / "pixel.csv", pii_key=KEY,
                   reading=check_reading(SOURCES["events"], skipped), replace=True)  # fmt: skip
    assert again.quarantined == {"skipped_event_type": 1}


def test_updates_sent_out_of_order_beside_their_time_are_said(con, tmp_path):
    """A users export holding three versions of each user, sorted by user and city instead of
    by its `updated_at`: the later line wins, so a user's city was an older one, unsaid
    (helper-61). Taobao's first users moving between three cities."""
    users = sorted({line.split(",")[0] for line in TAOBAO.read_text().splitlines()[1:40]})
    versions = [
        (u, city, f"2017-11-{20 + n} 10:00:00")
        for u in users
        for n, city in enumerate(("Suzhou", "Hangzhou", "Ningbo"))
    ]
    body = "user_id,city,updated_at\n" + "".join(
        f"{u},{c},{t}\n"
        for u, c, t in sorted(versions)  # by user, then city
    )
    got = ingest(con, "users", write(tmp_path / "users.csv", body), pii_key=KEY)
    assert got.by_line_order == ("updated_at", len(users))
    assert "the later line wins, not the later updated_at; sort the file by it" in said_of(got)
    assert f"with --replace-batch {got.batch_id}" in said_of(got)
    ordered = "user_id,city,updated_at\n" + "".join(
        f"{u},{c},{t}\n" for u, c, t in sorted(versions, key=lambda v: (v[2], v[0]))
    )
    fixed = ingest(con, "users", write(tmp_path / "sorted.csv", ordered), pii_key=KEY)
    assert fixed.by_line_order is None  # sorted by its time: nothing to say
    # US times with their --ts-format, Unix seconds, and an SCD export's valid_from (helper-66)
    for name, stamp, reading in (
        ("updated_at", lambda t: f"{datetime.fromisoformat(t):%m/%d/%Y %H:%M}", Reading(ts_format="%m/%d/%Y %H:%M")),
        ("updated_at", lambda t: str(int(datetime.fromisoformat(t).timestamp())), AS_SENT),
        ("valid_from", lambda t: t, AS_SENT),
    ):  # fmt: skip
        other = f"user_id,city,{name}\n" + "".join(
            f"{u},{c},{stamp(t)}\n" for u, c, t in sorted(versions)
        )
        got = ingest(
            con, "users", write(tmp_path / f"{name}.csv", other), pii_key=KEY, reading=reading
        )
        assert got.by_line_order == (name, len(users)), (name, stamp("2017-11-20 10:00:00"))
    once = "user_id,city,updated_at\n" + "".join(f"{u},Ningbo,2017-11-22 10:00:00\n" for u in users)
    assert (
        ingest(con, "users", write(tmp_path / "once.csv", once), pii_key=KEY).by_line_order is None
    )


def test_units_read_as_money_beside_a_money_column_are_said(con, tmp_path):
    """Ta Feng names the units bought `AMOUNT`, the shop's cost `ASSET` and the line's money
    `SALES_PRICE`: read as sent, spend was the count of units, unsaid (helper-61), and the first
    warning named ASSET (helper-66). REES46's purchases in that shape; mapped as
    the warning says, the money is read."""
    bought = rees46_purchases()[:30]
    body = "TRANSACTION_DT,CUSTOMER_ID,PRODUCT_ID,AMOUNT,ASSET,SALES_PRICE\n" + "".join(
        f"{t:%Y-%m-%d %H:%M:%S},{u},{i},{1 + n % 3},{p * 0.8 * (1 + n % 3):.2f},{p * (1 + n % 3):.2f}\n"
        for n, (u, t, i, p) in enumerate(bought)
    )
    path = write(tmp_path / "tafeng.csv", body)
    purchase = Reading(event_type="purchase")
    got = ingest(
        con, "events", path, pii_key=KEY, mapping={"ts": "TRANSACTION_DT"}, reading=purchase
    )
    assert got.amount_counts == (3, "SALES_PRICE")
    assert "--map quantity='AMOUNT' --map amount='SALES_PRICE'" in said_of(got)
    fixed = ingest(con, "events", path, pii_key=KEY, reading=purchase, replace=True,
                   mapping={"ts": "TRANSACTION_DT", "quantity": "AMOUNT", "amount": "SALES_PRICE"})  # fmt: skip
    assert fixed.amount_counts is None
    total = sum(round(p * (1 + n % 3), 2) for n, (_, _, _, p) in enumerate(bought))
    assert rows(con, "SELECT round(sum(amount), 2) FROM raw_events") == [(round(total, 2),)]
    # a subscription shop's whole prices beside each customer's lifetime total (helper-65)
    subs = "customer_id,ts,amount,customer_total_spent\n" + "".join(
        f"{u},{t:%Y-%m-%d %H:%M:%S},{(19, 29, 49, 99)[n % 4]},{500 + n}\n"
        for n, (u, t, _, _) in enumerate(bought)
    )
    quiet = ingest(con, "events", write(tmp_path / "subs.csv", subs), pii_key=KEY, reading=purchase)
    assert quiet.loaded == len(bought) and quiet.amount_counts is None


def test_units_read_as_money_are_said_beside_a_bulk_line(con, tmp_path):
    """One line of 144 units (a shop buying a case of drinks) among Ta Feng's small counts
    silenced the warning: every count had to be 100 or less (helper-101: spend 27,417 for a true
    3,652,595, unsaid). REES46's purchases in Ta Feng's shape, one of them bulk."""
    bought = rees46_purchases()[:200]
    body = "TRANSACTION_DT,CUSTOMER_ID,PRODUCT_ID,AMOUNT,ASSET,SALES_PRICE\n" + "".join(
        f"{t:%Y-%m-%d %H:%M:%S},{u},{i},{q},{p * 0.8 * q:.2f},{p * q:.2f}\n"
        for n, (u, t, i, p) in enumerate(bought)
        for q in [144 if n == 7 else 1 + n % 3]
    )
    got = ingest(con, "events", write(tmp_path / "tafeng.csv", body), pii_key=KEY,
                 mapping={"ts": "TRANSACTION_DT"}, reading=Reading(event_type="purchase"))  # fmt: skip
    assert got.amount_counts == (144, "SALES_PRICE")
    assert "--map quantity='AMOUNT' --map amount='SALES_PRICE'" in said_of(got)


def test_gender_codes_are_said_as_read(con, tmp_path):
    """Tmall's user_info_format1 writes gender 0 female, 1 male, 2 unknown; read as ISO 5218
    (0 unknown, 2 female) its women had no gender and its unknowns were all women, unsaid
    (helper-101). The summary says how codes with a 0 read; words and PrestaShop's 1/2 say
    nothing. Taobao's first users, Tmall's columns."""
    users = sorted({line.split(",")[0] for line in TAOBAO.read_text().splitlines()[1:2000]})[:12]
    tmall = "user_id,age_range,gender\n" + "".join(
        f"{u},{n % 9},{('0', '0', '1', '2', '')[n % 5]}\n" for n, u in enumerate(users)
    )
    got = ingest(con, "users", write(tmp_path / "user_info_format1.csv", tmall), pii_key=KEY)
    assert got.gender_codes == [("0", 6), ("1", 2), ("2", 2)]
    assert "Tmall's user_info: 0 female, 1 male, 2 unknown" in said_of(got)
    assert f"--replace-batch {got.batch_id}" in said_of(got)
    for name, values in (("words", ("f", "m", "")), ("presta", ("1", "2", "1"))):
        body = "user_id,gender\n" + "".join(f"{u},{values[n % 3]}\n" for n, u in enumerate(users))
        quiet = ingest(con, "users", write(tmp_path / f"{name}.csv", body), pii_key=KEY)
        assert quiet.gender_codes == [] and "ISO 5218" not in said_of(quiet), name


def test_user_ids_written_with_and_without_leading_zeros_are_said(con, tmp_path):
    """Ta Feng writes CUSTOMER_ID `01104905`; a users file made from a number column has
    `1104905`: 300 customers made 600 profiles, none with both its purchases and its
    registration, unsaid (helper-101). Either order of the two feeds is said; ids that match,
    or new users unlike any loaded, say nothing. Taobao's first lines, their ids padded."""
    lines = TAOBAO.read_text().splitlines()[1:400]
    users = sorted({line.split(",")[0] for line in lines})
    plain = write(tmp_path / "users.csv", "user_id,gender\n" + "".join(f"{u},f\n" for u in users))
    got = ingest(con, "users", plain, pii_key=KEY)
    assert got.padded_ids is None  # nothing to meet yet
    padded = "user_id,item_id,category_id,behavior_type,ts\n" + "".join(
        f"{int(u):08d},{rest}\n" for u, rest in (line.split(",", 1) for line in lines)
    )
    said = ingest(con, "events", write(tmp_path / "padded.csv", padded), pii_key=KEY)
    assert said.padded_ids.found == said.padded_ids.of == len(users)
    assert said.padded_ids.table == "raw_users"
    assert said.padded_ids.loaded_as == said.padded_ids.example.lstrip("0")
    assert "leading zeros added or cut" in said_of(said)
    assert f"--replace-batch {said.batch_id}" in said_of(said)
    # the other way round: the users file cut the zeros the events keep
    again = ingest(con, "users", write(tmp_path / "users2.csv", "user_id,city\n" + "".join(
        f"{u},Hangzhou\n" for u in users)), pii_key=KEY)  # fmt: skip
    assert (again.padded_ids.found, again.padded_ids.table) == (len(users), "raw_events")
    same = "\n".join(["user_id,item_id,category_id,behavior_type,ts", *lines]) + "\n"
    quiet = ingest(con, "events", write(tmp_path / "same.csv", same), pii_key=KEY)
    assert quiet.padded_ids is None
    strangers = "\n".join(["user_id,item_id,category_id,behavior_type,ts", *(
        f"9{u},{rest}" for u, rest in (line.split(",", 1) for line in lines))]) + "\n"  # fmt: skip
    new = ingest(con, "events", write(tmp_path / "strangers.csv", strangers), pii_key=KEY)
    assert new.padded_ids is None


def test_batch_ids_stay_above_the_datas_own_after_engine_state_is_lost(con, tmp_path):
    """With `_profiler` dropped, batch ids started again at 1: a second file shared the first
    one's id, and `--replace` of it took the first file's rows out too (helper-62: 20,342 of
    Taobao's rows gone). Taobao's first two hundred lines in two files."""
    lines = TAOBAO.read_text().splitlines()
    first = ingest(
        con, "events", write(tmp_path / "d1.csv", "\n".join(lines[:101]) + "\n"), pii_key=KEY
    )
    # a file that loaded nothing holds its batch id in quarantine alone
    unread = lines[101].rsplit(",", 1)[0] + ",yesterday"
    lost = ingest(con, "events", write(tmp_path / "d0.csv", f"{lines[0]}\n{unread}\n"), pii_key=KEY)
    assert (lost.loaded, lost.quarantined) == (0, {"bad_timestamp": 1})
    con.execute("DROP SCHEMA _profiler CASCADE")
    second = ingest(con, "events", write(tmp_path / "d2.csv", "\n".join([lines[0], *lines[101:201]]) + "\n"),
                    pii_key=KEY)  # fmt: skip
    assert second.batch_id > lost.batch_id > first.batch_id
    fixed = write(tmp_path / "d2_fixed.csv", "\n".join([lines[0], *lines[101:151]]) + "\n")
    ingest(con, "events", fixed, pii_key=KEY, replace_batch=second.batch_id)
    assert rows(con, "SELECT _batch_id, count(*) FROM raw_events GROUP BY ALL ORDER BY 1") == [
        (first.batch_id, 100),
        (second.batch_id, 50),
    ]
    assert rows(con, "SELECT batch_id, reason FROM quarantine") == [
        (lost.batch_id, "bad_timestamp")
    ]


def test_a_users_file_with_an_unreadable_signup_time_names_it(tmp_path: Path) -> None:
    """helper-74: `ingest users` crashed after loading (AttributeError in the summary's search
    for a time format) when a signup time could not be read: users have no time column, so the
    value the record sent was not kept."""
    rows = [f"u{i},F,1990,Paris,2024-01-{i + 1:02d} 10:00:00" for i in range(9)]
    users = write(
        tmp_path / "users.csv",
        "user_id,gender,birth_year,city,signup_ts\n"
        + "\n".join(rows)
        + "\nu9,M,1985,Lyon,notadate\n",
    )
    out = run_cli("ingest", "users", str(users), warehouse=tmp_path / "wh.duckdb")
    assert "9 loaded, 1 quarantined" in out and "bad_timestamp ('notadate' 1)" in out, out


def test_a_file_of_another_source_is_refused_with_the_right_command(tmp_path):
    """helper-80: a reviews file sent as events was told `--event-type purchase`, which loaded
    its reviews as purchases; the REES46 events file sent as users loaded 17,434 rows and made
    every one of its 4,505 ids a registered user, with a warning that it changed nothing."""
    wh = tmp_path / "wh.duckdb"
    reviews = write(
        tmp_path / "reviews.csv", "user_id,ts,kind,rating,text\n5,2019-10-02,review,4,ok\n"
    )
    out = " ".join(run_cli("ingest", "events", str(reviews), warehouse=wh, ok=False).split())
    assert f"are those of feedback (`profiler ingest feedback {reviews}`)" in out, out
    out = " ".join(run_cli("ingest", "users", str(REES46), warehouse=wh, ok=False).split())
    assert f"are those of events (`profiler ingest events {REES46}`)" in out, out
    assert "each user_id would become one of the shop's users" in out
    # a column only feedback has (a rating) says it is feedback, whatever its kind is called
    # (helper-81: told it was an events file)
    named = write(tmp_path / "named.csv", "user_id,event,ts,rating\n5,review,2019-10-02,4\n")
    out = " ".join(run_cli("ingest", "feedback", str(named), warehouse=wh, ok=False).split())
    assert "those of" not in out and "--map kind=COLUMN" in out, out
    # what each file is, it loads as; an events file with item attributes is a catalogue too
    run_cli("ingest", "feedback", str(reviews), warehouse=wh)
    assert "loaded" in run_cli("ingest", "items", str(REES46), warehouse=wh)
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_users").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (0,)


def test_the_edges_of_each_value_rule(con, tmp_path):
    """Each rule at its edge, on REES46's first line varied one value at a time (helper-97's
    mutants: each edge moved went unnoticed): `anonymous` is no account, `unknown` and MySQL's
    zero date are no value, half a unit of money below 0 is negative, a time more than a day
    ahead is in the future and one within it is not, and an id a float column wrote with a
    fraction is no whole id."""
    head, line = REES46.read_text().splitlines()[:2]
    ahead = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    near = (datetime.now(UTC) + timedelta(hours=12)).strftime("%Y-%m-%d %H:%M:%S")

    def varied(**values: str) -> str:
        row = dict(zip(head.split(","), line.split(","), strict=True)) | values
        return ",".join(row.values())

    body = [
        varied(user_id="anonymous"),  # placeholder_user_id
        varied(user_id="Anonymous", event_time="2019-10-01 00:00:01 UTC"),  # any case
        varied(brand="unknown", event_time="2019-10-01 00:00:02 UTC"),  # loads, brand NULL
        varied(event_time="0000-00-00 00:00:00"),  # missing_ts
        varied(price="-0.5", event_type="purchase"),  # negative_money
        varied(event_time=ahead),  # future_timestamp
        varied(event_time=near, user_id="541312141"),  # loads
        varied(user_id="541312140.5", event_time="2019-10-01 00:00:03 UTC"),  # loads as sent
    ]
    got = ingest(
        con, "events", write(tmp_path / "edges.csv", "\n".join([head, *body])), pii_key=KEY
    )
    assert got.quarantined == {
        "placeholder_user_id": 2,
        "missing_ts": 1,
        "negative_money": 1,
        "future_timestamp": 1,
    }
    assert rows(con, "SELECT user_id, brand FROM raw_events ORDER BY ts") == [
        ("541312140", None),
        ("541312140.5", "shiseido"),
        ("541312141", "shiseido"),
    ]


def test_day_and_month_swapped_over_a_months_first_days_are_said(con, tmp_path):
    """Online Retail's `12/1/2010 7:45` ... `12/9/2010 20:01` all parse with day and month
    swapped, so nothing is quarantined to tell: they loaded as the 12th of nine months, unsaid
    (helper-101). Taobao's lines of 1-3 December 2017 (UTC), written as Online Retail writes
    times; read the right way round, nothing is said."""
    lines = [line.split(",") for line in TAOBAO.read_text().splitlines()[1:]]
    when = [(r, datetime.fromtimestamp(int(r[4]), UTC)) for r in lines]
    december = [(r, t) for r, t in when if t.month == 12][:300]
    body = "Customer ID,StockCode,category_id,behavior_type,InvoiceDate\n" + "".join(
        f"{r[0]},{r[1]},{r[2]},{r[3]},{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}\n"
        for r, t in december
    )
    path = write(tmp_path / "online_retail.csv", body)
    swapped = ingest(con, "events", path, pii_key=KEY,
                     reading=Reading(ts_format="%d/%m/%Y %H:%M"))  # fmt: skip
    assert swapped.loaded == len(december) and swapped.one_day == (12, 3)
    assert "every loaded time falls on day 12 of a month, over 3 months" in said_of(swapped)
    right = ingest(con, "events", path, pii_key=KEY, replace=True,
                   reading=Reading(ts_format="%m/%d/%Y %H:%M"))  # fmt: skip
    assert right.one_day is None and "day and month swapped" not in said_of(right)
    assert rows(con, "SELECT min(ts)::DATE, max(ts)::DATE FROM raw_events") == [
        (date(2017, 12, 1), date(2017, 12, 3))
    ]


def test_a_file_without_any_time_is_told_to_make_one(con, tmp_path):
    """Instacart's orders.csv has a weekday, an hour and the days since the prior order, no time:
    the refusal said only --map ts=COLUMN, and no column is one (helper-101). REES46's purchases
    in Instacart's columns; nothing loads."""
    bought = rees46_purchases()[:20]
    body = "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order\n"
    body += "".join(
        f"{n},{u},prior,{n + 1},{t:%w},{t.hour},\n" for n, (u, t, _, _) in enumerate(bought)
    )
    with pytest.raises(ProfilerError, match="needs each line's time made before ingest") as err:
        ingest(con, "events", write(tmp_path / "orders.csv", body), pii_key=KEY,
               reading=Reading(event_type="purchase"))  # fmt: skip
    assert "\n" not in str(err.value) and snapshot(con) == {}


def test_feedback_keyed_by_another_id_than_the_events_users_is_said(con, tmp_path):
    """Olist's reviews name an order, not a customer: `--map user_id=order_id` loaded 801 orders
    as users with a rating each and left the 686 buyers' ratings empty, unsaid (helper-102).
    Taobao's first buyers, their purchases as events; reviews of their orders keyed by order id
    are said, keyed by the buyers' ids say nothing, and before any events nothing is known."""
    buys = [line for line in TAOBAO.read_text().splitlines()[1:] if ",buy," in line][:60]
    order = {line: hashlib.md5(line.encode()).hexdigest() for line in buys}
    reviews = "order_id,user_id,review_score,review_creation_date\n" + "".join(
        f"{order[line]},{line.split(',')[0]},5,2017-12-04 00:00:00\n" for line in buys
    )
    early = ingest(con, "feedback", write(tmp_path / "r0.csv", reviews.replace(",5,", ",4,")),
                   pii_key=KEY, reading=Reading(kind="review"), mapping={"user_id": "order_id"})  # fmt: skip
    assert early.stranger_ids is None  # nothing to meet yet
    ingest(con, "events", write(tmp_path / "buys.csv", "\n".join(
        ["user_id,item_id,category_id,behavior_type,ts", *buys]) + "\n"), pii_key=KEY)  # fmt: skip
    keyed = ingest(con, "feedback", write(tmp_path / "reviews.csv", reviews), pii_key=KEY,
                   reading=Reading(kind="review"), mapping={"user_id": "order_id"})  # fmt: skip
    assert (keyed.stranger_ids.known, keyed.stranger_ids.of) == (0, len(set(order.values())))
    said = said_of(keyed)
    assert "0 of this file's 60 user ids are users of the events or users loaded" in said, said
    assert f"--replace-batch {keyed.batch_id}" in said
    by_buyer = ingest(con, "feedback", write(tmp_path / "fixed.csv", reviews), pii_key=KEY,
                      reading=Reading(kind="review"), replace_batch=keyed.batch_id)  # fmt: skip
    assert by_buyer.stranger_ids is None
    assert "users of the events" not in said_of(by_buyer)
    # one reviewer in ten known is enough: a file of the shop's users, nothing said
    lines = reviews.replace(",5,", ",3,").splitlines()
    tenth = [lines[0]] + [
        line if n % 10 else line.split(",")[1] + line[line.index(",") :]
        for n, line in enumerate(lines[1:])
    ]
    mixed = ingest(con, "feedback", write(tmp_path / "tenth.csv", "\n".join(tenth) + "\n"),
                   pii_key=KEY, reading=Reading(kind="review"), mapping={"user_id": "order_id"})  # fmt: skip
    assert mixed.stranger_ids is None and mixed.loaded == 60


def test_dates_sent_as_unix_midnights_on_a_clock_west_of_utc_are_said(tmp_path):
    """Amazon's Fine Food reviews write a review's date as a Unix time at midnight UTC: on a
    shop clock of America/Los_Angeles each read as 17:00 (16:00 in winter) the day before, and
    all 598 reviewers' first and last days were one early, unsaid (helper-102). Said with the
    DuckDB line that sends them as dates, which then keep their days; the same file on a UTC
    clock, and real times, say nothing."""
    body = "Id,ProductId,UserId,Score,Time,Text\n" + "".join(
        f'{n},B001E4KFG0,A{n % 4}SGXH7AUHU8GW,5,{(15000 + n * 37) * 86400},"Good, <br />really"\n'
        for n in range(12)
    )
    path = write(tmp_path / "Reviews.csv", body)
    west = duckdb.connect(str(tmp_path / "west.duckdb"))
    said = ingest(west, "feedback", path, pii_key=KEY,
                  reading=Reading(kind="review", time_zone="America/Los_Angeles"))  # fmt: skip
    assert said.midnight_utc == (12, 12, "2011-01-25 16:00"), said.midnight_utc
    text = said_of(said)
    assert "all 12 times are midnight UTC: dates sent as Unix times?" in text, text
    assert "12 of them on the day before" in text
    fix = re.search(r"DuckDB: (COPY .*? TO 'dated.csv')", text).group(1)
    duckdb.sql(fix.replace("'dated.csv'", f"'{tmp_path / 'dated.csv'}'"))
    dated = ingest(west, "feedback", tmp_path / "dated.csv", pii_key=KEY,
                   reading=Reading(kind="review"), replace_batch=said.batch_id)  # fmt: skip
    assert dated.midnight_utc is None
    assert rows(west, "SELECT min(ts), max(ts) FROM raw_feedback") == [
        (datetime(2011, 1, 26), datetime(2012, 3, 8))
    ]
    west.close()
    utc = duckdb.connect(str(tmp_path / "utc.duckdb"))
    assert (
        ingest(utc, "feedback", path, pii_key=KEY, reading=Reading(kind="review")).midnight_utc
        is None
    )
    utc.close()
    times = "Id,ProductId,UserId,Score,Time,Text\n" + "".join(
        f"{n},B001E4KFG0,A{n % 4}SGXH7AUHU8GW,5,{(15000 + n * 37) * 86400 + 3600 * n},x\n"
        for n in range(12)
    )
    timed = duckdb.connect(str(tmp_path / "timed.duckdb"))
    quiet = ingest(timed, "feedback", write(tmp_path / "timed.csv", times), pii_key=KEY,
                   reading=Reading(kind="review", time_zone="America/Los_Angeles"))  # fmt: skip
    assert quiet.midnight_utc is None
    timed.close()


def test_an_ignored_column_of_event_words_beside_the_event_type_read_is_said(con, tmp_path):
    """Coveo's browsing_train sends `event_type` (`event_product`, `pageview`) beside
    `product_action` (`detail`, `add`, `purchase`): the hint said `--event-type
    'event_product=TYPE'`, which loaded its carts and purchases as views, unsaid (helper-102).
    The ignored column is now named, read either way; read from it, nothing is said."""
    body = "session_id_hash,event_type,product_action,product_sku_hash,server_timestamp_epoch_ms\n" + "".join(
        f"s{n % 3},{kind},{action},{'' if kind == 'pageview' else f'p{n}'},{1550885210881 + n * 1000}\n"
        for n, (kind, action) in enumerate(
            [("pageview", ""), ("event_product", "detail"), ("event_product", "add"),
             ("event_product", "purchase"), ("pageview", ""), ("event_product", "detail"),
             ("event_product", "click"), ("event_product", "remove")]
        )
    )  # fmt: skip
    path = write(tmp_path / "browsing_train.csv", body)
    where = {
        "user_id": "session_id_hash",
        "ts": "server_timestamp_epoch_ms",
        "item_id": "product_sku_hash",
    }
    told = ingest(con, "events", path, pii_key=KEY, mapping=where, reading=Reading(
        values=(("event_type", "event_product", "view"), ("event_type", "pageview", "skip"))))  # fmt: skip
    assert told.type_words == (
        "product_action",
        [("detail", "view", 2), ("click", "view", 1), ("purchase", "purchase", 1)],
    )
    said = said_of(told)
    assert (
        "the ignored column 'product_action' holds words of more event types than 'event_type'"
        in said
    ), said
    assert "--map event_type='product_action' reads it" in said
    right = ingest(con, "events", path, pii_key=KEY, replace=True,
                   mapping={**where, "event_type": "product_action"},
                   reading=Reading(values=(("event_type", "add", "cart"), ("event_type", "remove", "skip"))))  # fmt: skip
    assert right.type_words is None
    assert rows(con, "SELECT event_type, count(*) FROM raw_events GROUP BY 1 ORDER BY 1") == [
        ("cart", 1),
        ("purchase", 1),
        ("view", 3),
    ]


def test_json_records_inside_a_list_are_told_to_flatten(con, tmp_path):
    """OTTO's train.jsonl is one line per session, its events a list inside: the refusal asked
    for --map of columns no top-level key is (helper-102). Refused with the DuckDB line that
    flattens it, which then loads. Taobao's first lines as OTTO's sessions (ts in ms)."""
    lines = [line.split(",") for line in TAOBAO.read_text().splitlines()[1:41]]
    kinds = {"pv": "clicks", "cart": "carts", "buy": "orders", "fav": "clicks"}
    sessions: dict[str, list] = {}
    for u, i, _, b, t in lines:
        sessions.setdefault(u, []).append({"aid": int(i), "ts": int(t) * 1000, "type": kinds[b]})
    path = write(tmp_path / "train.jsonl", "".join(
        json.dumps({"session": int(u), "events": e}) + "\n" for u, e in sessions.items()))  # fmt: skip
    with pytest.raises(ProfilerError, match="key 'events' holds a list of records") as err:
        ingest(con, "events", path, pii_key=KEY)
    assert snapshot(con) == {}
    # on half the lines only, it is no file of records: the columns missing are what is told
    (u, e), *_ = sessions.items()
    half = write(tmp_path / "half.jsonl", json.dumps({"session": int(u), "events": e}) + "\n"
                 + json.dumps({"session": int(u), "events": "none"}) + "\n")  # fmt: skip
    with pytest.raises(ProfilerError, match="lacks required events column") as other:
        ingest(con, "events", half, pii_key=KEY)
    assert "list of records" not in str(other.value) and snapshot(con) == {}
    flatten = re.search(r"DuckDB: (COPY .*? TO 'flat.parquet')", str(err.value)).group(1)
    flat = tmp_path / "flat.parquet"
    duckdb.sql(flatten.replace("'flat.parquet'", f"'{flat}'"))
    got = ingest(con, "events", flat, pii_key=KEY, mapping={"user_id": "session", "item_id": "aid"},
                 reading=Reading(values=(("event_type", "clicks", "view"), ("event_type", "carts", "cart"),
                                         ("event_type", "orders", "purchase"))))  # fmt: skip
    assert (got.loaded, got.quarantined) == (len(lines), {})


def test_a_replace_of_content_loaded_twice_by_an_older_version_supersedes_both(con, tmp_path):
    """helper-109: a warehouse of an older version kept a gzip file's fingerprint of its bytes on
    disk, so the same content sent unzipped loaded again as another batch. `--replace` takes both
    loads out: one copy of the rows stays, under the first batch, and the other batch's row says
    which batch holds its lines now (else it counts as current: `_rows_in`, `newest_data`)."""
    part = write(tmp_path / "part.csv", "".join(TAOBAO.read_text().splitlines(True)[:1001]))
    zipped = write(tmp_path / "part.csv.gz", gzip.compress(part.read_bytes()))
    first = ingest(con, "events", zipped, pii_key=KEY)
    con.execute(
        "UPDATE _profiler.batches SET content_sha256 = ?",
        [hashlib.sha256(zipped.read_bytes()).hexdigest()],
    )
    second = ingest(con, "events", part, pii_key=KEY)
    assert (second.duplicate, second.loaded) == (False, 1000)  # counted twice by then
    fixed = ingest(con, "events", zipped, pii_key=KEY, replace=True)
    assert fixed.replaced == (first.batch_id, second.batch_id) and fixed.loaded == 1000
    assert rows(con, "SELECT _batch_id, count(*) FROM raw_events GROUP BY ALL") == [
        (first.batch_id, 1000)
    ]
    assert rows(
        con, "SELECT batch_id, loaded, superseded_by FROM _profiler.batches ORDER BY 1"
    ) == [
        (first.batch_id, 1000, None),
        (second.batch_id, 1000, first.batch_id),
    ]
    assert ingest(con, "events", part, pii_key=KEY).duplicate_of == first.batch_id


def test_a_superseded_load_of_a_wrong_reading_does_not_move_the_datas_newest_time(con, tmp_path):
    """The as-of a history was built from (`newest_data` through its batch) reads the batches'
    time ranges: a load the replace superseded (the same content loaded twice by an older
    version, read day-first) must not lend its wrong times to them. REES46's purchases as a
    date-only orders feed: day-first, 1/12/2019 read as 1 December, a month after every real one."""
    from profiler.state import max_batch, newest_data

    buys = rees46_purchases()[:20]
    path = write(tmp_path / "orders.csv", "customer_id,order_date,item_id,amount\n"
                 + "".join(f"{u},1/{n % 12 + 1}/2019,{i},{p}\n" for n, (u, _, i, p) in enumerate(buys)))  # fmt: skip
    zipped = write(tmp_path / "orders.csv.gz", gzip.compress(path.read_bytes()))
    wrong = Reading(event_type="purchase", ts_format="%d/%m/%Y")
    ingest(con, "events", zipped, pii_key=KEY, reading=wrong)
    con.execute(  # as an older version fingerprinted it: the gzip file's bytes
        "UPDATE _profiler.batches SET content_sha256 = ?",
        [hashlib.sha256(zipped.read_bytes()).hexdigest()],
    )
    assert ingest(con, "events", path, pii_key=KEY, reading=wrong).loaded == 20
    right = Reading(event_type="purchase", ts_format="%m/%d/%Y")
    fixed = ingest(con, "events", zipped, pii_key=KEY, reading=right, replace=True)
    assert len(fixed.replaced) == 2
    assert rows(con, "SELECT count(*) FROM _profiler.batches WHERE superseded_by IS NOT NULL") == [
        (1,)
    ]
    assert newest_data(con) == datetime(2019, 1, 12)  # the raw rows: the right reading
    assert newest_data(con, through_batch=max_batch(con)) == newest_data(con)


def test_a_replace_that_moves_equal_lines_between_dates_is_no_same_reading(con, tmp_path):
    """helper-109: a date-only orders feed read day-first where it was month-first. A customer
    who bought the same item on 2 January and twice on 1 February reads, the wrong way, as once
    on 1 February and twice on 2 January: the same set of rows, not the same rows. The replace
    that fixes it is no reading "as before" (it was refused, and the wrong days stayed)."""
    buys = rees46_purchases()[:20]
    u, _, i, p = buys[0]
    mixed = [f"{u},1/2/2019,{i},{p}", f"{u},2/1/2019,{i},{p}", f"{u},2/1/2019,{i},{p}"]
    same = [f"{v},10/10/2019,{j},{q}" for v, _, j, q in buys[1:]]  # either way the same day
    path = write(tmp_path / "orders.csv", "customer_id,order_date,item_id,amount\n"
                 + "\n".join([*mixed, *same]) + "\n")  # fmt: skip
    wrong = Reading(event_type="purchase", ts_format="%d/%m/%Y")
    first = ingest(con, "events", path, pii_key=KEY, reading=wrong)
    assert first.loaded == 22
    right = Reading(event_type="purchase", ts_format="%m/%d/%Y")
    fixed = ingest(con, "events", path, pii_key=KEY, reading=right, replace=True)
    assert fixed.replaced == (first.batch_id,)
    got = rows(
        con, "SELECT ts, count(*) FROM raw_events WHERE item_id = ? GROUP BY ALL ORDER BY 1", [i]
    )
    assert got == [(datetime(2019, 1, 2), 1), (datetime(2019, 2, 1), 2)]


def test_a_replace_stopped_inside_its_transaction_leaves_the_warehouse_as_it_was(
    con, tmp_path, monkeypatch
):
    """helper-109: Ctrl-C (or any error) after a replace took the old rows out and before it
    committed: the transaction is rolled back, so the same connection (`watch`'s) sees the old
    load whole and the next ingest starts its own transaction."""
    from profiler import ingest_write

    path, _ = orders_export(tmp_path)
    swapped = Reading(event_type="purchase", ts_format="%d/%m/%Y %H:%M")
    ingest(con, "events", path, pii_key=KEY, reading=swapped)
    before = snapshot(con)
    real = ingest_write.take_out

    def stopped(*args):
        real(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_write, "take_out", stopped)
    right = Reading(event_type="purchase", ts_format="%m/%d/%Y %H:%M")
    with pytest.raises(KeyboardInterrupt):
        ingest(con, "events", path, pii_key=KEY, reading=right, replace=True)
    assert snapshot(con) == before
    monkeypatch.undo()
    assert ingest(con, "events", path, pii_key=KEY, reading=right, replace=True).loaded == 214


def test_a_users_replace_takes_back_a_history_merge_whose_build_recorded_no_run(con, tmp_path):
    """helper-109: a build merged the profile history right after a users file came (its newest
    batch) and was stopped before it recorded its run; the file, read wrongly, is then replaced.
    No run says the merge saw it, so only the history's own state can: its versions from that
    merge on are marked to go. Taobao's first hundred lines, the fixture's customers file."""
    lines = TAOBAO.read_text().splitlines()[:101]
    ingest(con, "events", write(tmp_path / "day.csv", "\n".join(lines) + "\n"), pii_key=KEY)
    users = ingest(con, "users", USERS, pii_key=KEY, mapping={"region": "city"})
    ((as_of,),) = rows(con, "SELECT max(ts) FROM raw_events")
    merged = ModelState("user_profile_history", "scd2", "d", "m", 1, users.batch_id, as_of)
    write_state(con, merged)  # published, then stopped: no `_profiler.runs` row
    assert rows(con, "SELECT count(*) FROM _profiler.runs") == [(0,)]
    ingest(con, "users", USERS, pii_key=KEY, replace=True)
    assert history_stale_from(con, "user_profile_history") is not None


def test_a_replace_batch_that_adds_only_a_bad_line_keeps_it_in_quarantine(con, tmp_path):
    """helper-109: a corrected file with the same rows and one more line that cannot load is
    another reading (its quarantine differs): it replaces, and the new line is kept for review."""
    lines = TAOBAO.read_text().splitlines()[:101]
    first = ingest(con, "events", write(tmp_path / "d.csv", "\n".join(lines) + "\n"), pii_key=KEY)
    more = write(tmp_path / "d2.csv", "\n".join([*lines, "7,1,2,unfollow,1511544070"]) + "\n")
    fixed = ingest(con, "events", more, pii_key=KEY, replace_batch=first.batch_id)
    assert (fixed.replaced, fixed.loaded, fixed.quarantined) == (
        (first.batch_id,),
        100,
        {"unknown_event_type": 1},
    )
    assert rows(con, "SELECT batch_id, record FROM quarantine") == [(first.batch_id, 101)]


def test_a_process_starting_while_the_key_is_written_gets_the_same_key(tmp_path, monkeypatch):
    """Deterministic form of the race above: another process asks for the key at the moment
    this one has opened its file and not yet written it. Created in place, the key file was
    there, empty: `the PII key file ... is empty`."""
    import profiler.pii as pii

    monkeypatch.delenv("PROFILER_PII_KEY", raising=False)
    settings = Settings(project_dir=tmp_path, warehouse=tmp_path / "wh.duckdb")
    theirs: list[str] = []
    fdopen = os.fdopen

    def other_process_starts(fd, *args, **kwargs):
        if not theirs:  # once: the other process runs to its end, this one is held at this step
            import subprocess
            import sys

            out = subprocess.run(
                [sys.executable, "-c", ALONE + KEY_MAKER.replace("/ str(n)", ""), str(tmp_path), "1"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            theirs.append(out)
        return fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(pii.os, "fdopen", other_process_starts)
    ours = pii.load_pii_key(settings)
    assert theirs == [hashlib.sha256(ours).hexdigest()]
    assert (tmp_path / ".profiler" / "pii.key").read_bytes() == ours and len(ours) == 32


def test_a_key_file_still_being_written_is_waited_for(tmp_path, monkeypatch):
    """Where the key is created in place (no hard links), another process finds the file empty
    until its writer has written it: it waits for the key rather than failing `the PII key file
    ... is empty`. Here the writer finishes during the first wait."""
    monkeypatch.delenv("PROFILER_PII_KEY", raising=False)
    path = tmp_path / ".profiler" / "pii.key"
    path.parent.mkdir()
    path.write_bytes(b"")  # created, not yet written
    theirs = os.urandom(32)
    waits: list[float] = []

    def their_writer_finishes(seconds: float) -> None:
        waits.append(seconds)
        path.write_bytes(theirs)

    monkeypatch.setattr(pii.time, "sleep", their_writer_finishes)
    settings = Settings(project_dir=tmp_path, warehouse=tmp_path / "wh.duckdb")
    assert pii.load_pii_key(settings) == theirs and len(waits) == 1
    # a key file that stays empty (its writer died) is named after the waits, with what to do
    monkeypatch.setattr(pii.time, "sleep", waits.append)
    path.write_bytes(b"")
    with pytest.raises(ProfilerError, match="is empty; restore it or set PROFILER_PII_KEY"):
        pii.load_pii_key(settings)
    assert len(waits) > 1


def test_a_filesystem_without_hard_links_gets_a_key(tmp_path, monkeypatch):
    """FAT, exFAT and some network shares refuse link(2): the key is then created in place, as
    before, instead of every ingest of a new project failing with `Operation not permitted`."""
    import errno

    import profiler.pii as pii

    def no_links(src, dst):
        raise PermissionError(errno.EPERM, "Operation not permitted", str(src), None, str(dst))

    monkeypatch.delenv("PROFILER_PII_KEY", raising=False)
    monkeypatch.setattr(pii.os, "link", no_links)
    settings = Settings(project_dir=tmp_path, warehouse=tmp_path / "wh.duckdb")
    key = pii.load_pii_key(settings)
    path = tmp_path / ".profiler" / "pii.key"
    assert len(key) == 32 and path.read_bytes() == key and pii.load_pii_key(settings) == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["pii.key"]
