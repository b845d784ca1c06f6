"""Property-based: messy files thrown at ingest never crash it and never lose a line.

Whatever the file (random bytes, mixed encodings, huge fields, quotes and newlines inside fields,
columns in any order, extra columns, empty, only a header): ingest either loads it, accounting for
every record as loaded or quarantined, or refuses it with one clear line and changes nothing.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from conftest import REES46, TAOBAO, rees46_purchases
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from profiler.errors import ProfilerError
from profiler.ingest import ingest
from profiler.ingest_summary import describe_ingest
from profiler.state import ensure_schema

COLUMNS = ["user_id", "event_type", "ts", "item_id", "price", "quantity", "session_id"]
EXTRA = ["colour", "note"]
VALUES = {
    "user_id": st.sampled_from(["1", "42", "u-9", "", " 7 "]),
    "event_type": st.sampled_from(
        ["pv", "buy", "cart", "fav", "view", "purchase", "teleport", "", "PV "]
    ),
    "ts": st.sampled_from(
        [
            "1511544070",
            "2017-11-25T10:00:00Z",
            "2017-11-25 10:00:00 UTC",
            "yesterday",
            "",
            "4102444800",
            "2017-11-25T10:00:00+08:00",
        ]
    ),
    "item_id": st.sampled_from(["2268318", "", "x"]),
    "price": st.sampled_from(["12.5", "-3", "abc", "", "1e3"]),
    "quantity": st.sampled_from(["1", "0", "2", "1.5", ""]),
    "session_id": st.sampled_from(["s1", "", "a,b"]),
    "colour": st.sampled_from(["red", ""]),
    "note": st.one_of(
        st.text(max_size=30),
        st.sampled_from(['say "hi"', "two\nlines", "x" * 5000, "naïve café", "\u00ff\u00fe"]),
    ),
}

# Every case builds its own warehouse; keep examples modest so the suite stays fast.
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def messy_csv(draw) -> tuple[bytes, int | None]:
    """A CSV file and, when every record is one physical line, its number of data lines."""
    cols = draw(st.permutations(COLUMNS + draw(st.lists(st.sampled_from(EXTRA), unique=True))))
    rows = draw(st.lists(st.fixed_dictionaries({c: VALUES[c] for c in cols}), max_size=25))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    writer.writerows([[r[c] for c in cols] for r in rows])
    text = buf.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    mangle = draw(
        st.sampled_from(["none", "bytes", "truncate", "header_only", "empty", "cut_field"])
    )
    if mangle == "bytes":
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(st.binary(min_size=1, max_size=20)) + data[pos:]
    elif mangle == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif mangle == "header_only":
        data = (",".join(cols) + "\n").encode()
    elif mangle == "empty":
        data = b""
    elif mangle == "cut_field":
        data = data.replace(b",", b"", 1)
    one_line_records = (
        mangle == "none"
        and encoding != "utf-16"
        and all("\n" not in r.get("note", "") for r in rows)
    )
    return data, (len(rows) if one_line_records else None)


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    tables = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY ALL"
    ).fetchall()
    return {
        f"{s}.{t}": con.execute(f'SELECT * FROM "{s}"."{t}" ORDER BY ALL').fetchall()
        for s, t in tables
    }


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_schema(con)
    yield con
    con.close()


@SETTINGS
@given(case=messy_csv())
def test_messy_csv_is_accounted_for_or_refused(
    warehouse: duckdb.DuckDBPyConnection, tmp_path_factory, case
) -> None:
    data, expected_lines = case
    path = tmp_path_factory.mktemp("f") / "events.csv"
    path.write_bytes(data)
    before = snapshot(warehouse)
    try:
        result = ingest(warehouse, "events", path, pii_key=b"k")
    except ProfilerError as err:
        assert "\n" not in str(err) and str(err)
        assert snapshot(warehouse) == before
        return
    if result.duplicate:
        assert snapshot(warehouse) == before
        return
    assert result.loaded + sum(result.quarantined.values()) == result.lines
    if expected_lines is not None:
        assert result.lines == expected_lines
    loaded = warehouse.execute(
        "SELECT count(*) FROM raw_events WHERE _batch_id = ?", [result.batch_id]
    ).fetchone()[0]
    quarantined = warehouse.execute(
        "SELECT count(*) FROM quarantine WHERE batch_id = ?", [result.batch_id]
    ).fetchone()[0]
    assert (loaded, quarantined) == (result.loaded, sum(result.quarantined.values()))
    # the batch row `status` reads holds the same counts
    batch = warehouse.execute(
        "SELECT lines, loaded, quarantined FROM _profiler.batches WHERE batch_id = ?",
        [result.batch_id],
    ).fetchone()
    assert batch == (result.lines, loaded, quarantined)
    # a file of lines that all went to quarantine is no header-only file
    assert ("holds a header and no line" in describe_ingest(result)) == (result.lines == 0)


@SETTINGS
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".csv", ".parquet", ".jsonl"]))
@example(data=b"\r\x00", suffix=".csv")  # once crashed the header parse (csv.Error)
def test_random_bytes_never_crash(
    warehouse: duckdb.DuckDBPyConnection, tmp_path_factory, data: bytes, suffix: str
) -> None:
    path = tmp_path_factory.mktemp("r") / f"events{suffix}"
    path.write_bytes(data)
    before = snapshot(warehouse)
    try:
        result = ingest(warehouse, "events", path, pii_key=b"k")
    except ProfilerError as err:
        assert "\n" not in str(err)
        assert snapshot(warehouse) == before
        return
    assert result.loaded + sum(result.quarantined.values()) == result.lines


# --- each rule at its edge, on real lines (helper-125's mutants: each edge moved went unnoticed) ---


def _lines(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text("\n".join(lines) + end, encoding="utf-8")
    return path


def test_a_stray_quote_costs_only_its_own_line_and_a_quarantined_line_keeps_its_text(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Two stray quotes four lines apart (one opening the item, one closing the category, as an
    inch sign would) balance each other: still only their two lines go to quarantine, and the
    three between load. A line the fast path quarantines keeps its text as sent, a quoted comma
    included; a quote a cut left open ends the file short. Taobao's and REES46's first lines."""
    lines = TAOBAO.read_text().splitlines()[:31]
    lines[5] = lines[5].replace(",", ',"', 1)
    f = lines[9].split(",")
    lines[9] = ",".join([*f[:2], f[2] + '"', *f[3:]])
    result = ingest(warehouse, "events", _lines(tmp_path / "quotes.csv", lines), pii_key=b"k")
    assert (result.lines, result.loaded, result.quarantined) == (30, 28, {"bad_quoting": 2})
    assert warehouse.execute("SELECT record, raw FROM quarantine ORDER BY 1").fetchall() == [
        (5, lines[5]),
        (9, lines[9]),
    ]
    head, *rees = REES46.read_text().splitlines()[:31]
    f = rees[10].split(",")  # a view of a microwave, as a remove_from_cart (no event type)
    f[1], f[4] = "remove_from_cart", '"' + f[4].replace(".", ", ", 1) + '"'
    rees[10] = ",".join(f)
    result = ingest(warehouse, "events", _lines(tmp_path / "rees.csv", [head, *rees]), pii_key=b"k")
    assert (result.loaded, result.quarantined) == (29, {"unknown_event_type": 1})
    raw = "SELECT record, raw FROM quarantine WHERE batch_id = ?"
    assert warehouse.execute(raw, [result.batch_id]).fetchall() == [(11, rees[10])]
    # the same file cut inside that quoted field, with no line break after it
    before = snapshot(warehouse)
    cut = _lines(tmp_path / "cut.csv", [head, *rees[:10], rees[10][:90]], end="")
    result = ingest(warehouse, "events", cut, pii_key=b"k")
    assert (result.loaded, result.cut_short, result.cut_record) == (0, "bad_quoting", True)
    assert snapshot(warehouse)["main.raw_events"] == before["main.raw_events"]


def test_stray_quotes_in_one_column_never_join_lines_into_an_id(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Two stray quotes in the item column four lines apart (one opening it, one closing it, as
    an inch sign would) make legal CSV of one record of five fields over five lines: no item id
    spans lines, so the record goes to quarantine, its five lines its text. Taobao's lines."""
    lines = TAOBAO.read_text().splitlines()[:31]
    for n, field in ((5, '"{}'), (9, '{}"')):
        f = lines[n].split(",")
        lines[n] = ",".join([f[0], field.format(f[1]), *f[2:]])
    result = ingest(warehouse, "events", _lines(tmp_path / "inches.csv", lines), pii_key=b"k")
    assert (result.lines, result.loaded, result.quarantined) == (26, 25, {"bad_quoting": 1})
    assert warehouse.execute("SELECT record, raw FROM quarantine").fetchall() == [
        (5, "\n".join(lines[5:10]))
    ]
    spanning = "SELECT count(*) FROM raw_events WHERE contains(item_id, chr(10))"
    assert warehouse.execute(spanning).fetchone() == (0,)


def test_a_parquet_file_cut_short_is_refused_in_one_line(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Parquet download cut off (its footer gone) is refused with one clear line and changes
    nothing, as a gzip file cut short is, whatever its path. REES46's first 500 lines."""
    whole = tmp_path / "whole.parquet"
    warehouse.execute(f"COPY (SELECT * FROM read_csv('{REES46}') LIMIT 500) TO '{whole}'")
    monkeypatch.chdir(tmp_path)  # a short path: DuckDB's error then quotes the whole query
    cut = Path("e.parquet")
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    before = snapshot(warehouse)
    with pytest.raises(ProfilerError, match=r"cannot read e.parquet as Parquet") as err:
        ingest(warehouse, "events", cut, pii_key=b"k")
    assert "\n" not in str(err.value)
    assert snapshot(warehouse) == before
    # gzipped, it is no format ingest reads: the types it reads are named
    packed = Path("e.parquet.gz")
    packed.write_bytes(gzip.compress(whole.read_bytes()))
    with pytest.raises(ProfilerError, match=r"unknown file type .parquet.gz; use .csv"):
        ingest(warehouse, "events", packed, pii_key=b"k")
    assert snapshot(warehouse) == before


def test_each_value_rule_holds_at_its_bound(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """REES46's first purchase varied one value at a time: a time of 1990's first second loads
    and the second before it is early, a line of 0 units loads, a negative amount (not only a
    price) is negative money, and a quantity past an integer's range is no quantity. Ids a
    float column wrote with a fraction stay as sent, never rounded into a neighbour's; ids Excel
    rounded on most lines refuse the file; a float id from 2^53 on has lost digits."""
    user, t, item, price = rees46_purchases()[0]
    at = f"{t:%Y-%m-%d %H:%M:%S}"
    lines = [
        "user_id,event_type,ts,item_id,price,quantity,amount",
        f"{user},purchase,1990-01-01 00:00:00,{item},{price},1,",  # loads
        f"{user},purchase,1989-12-31 23:59:59,{item},{price},1,",  # early_timestamp
        f"{user},purchase,{at},{item},{price},0,",  # loads, amount 0
        f"{user},purchase,{at},{item},{price},1,-{price}",  # negative_money
        f"{user},purchase,{at},{item},{price},3000000000,",  # bad_type:quantity
    ]
    got = ingest(warehouse, "events", _lines(tmp_path / "edges.csv", lines), pii_key=b"k")
    assert got.quarantined == {
        "early_timestamp": 1,
        "negative_money": 1,
        "bad_type:quantity": 1,
    }
    assert warehouse.execute(
        "SELECT ts, quantity, amount FROM raw_events ORDER BY ts"
    ).fetchall() == [
        (datetime(1990, 1, 1), 1, price),
        (t, 0, 0.0),
    ]
    doubles = tmp_path / "doubles.parquet"
    warehouse.execute(
        f"COPY (SELECT * REPLACE (CAST(user_id AS DOUBLE) + CASE WHEN price > 500 "
        f"THEN 0.5 ELSE 0 END AS user_id) FROM read_csv('{REES46}') LIMIT 200) TO '{doubles}'"
    )
    assert ingest(warehouse, "events", doubles, pii_key=b"k").loaded == 200
    halves = "SELECT count(*) FROM raw_events WHERE ends_with(user_id, '.5')"
    sent = f"SELECT count(*) FROM '{doubles}' WHERE user_id <> trunc(user_id)"
    assert warehouse.execute(halves).fetchone() == warehouse.execute(sent).fetchone() != (0,)
    # ids Excel wrote in scientific notation on most lines: a file read the wrong way
    head, *rees = REES46.read_text().splitlines()[:6]
    for n in range(3):
        f = rees[n].split(",")
        f[3] = f"{float(f[3]):.5E}"
        rees[n] = ",".join(f)
    before = snapshot(warehouse)
    got = ingest(warehouse, "events", _lines(tmp_path / "excel.csv", [head, *rees]), pii_key=b"k")
    assert (got.loaded, got.quarantined) == (0, {"lossy_id:category_id": 3, "file_refused": 2})
    assert "only 2 of 5 lines would load" in (got.refused or "")
    assert snapshot(warehouse)["main.raw_events"] == before["main.raw_events"]
    # a float id past 2^53 lost its last digits, from 2^53 itself on: 2^53 + 1 reads as 2^53
    edge = 2**53 + 1
    floats = tmp_path / "floats.parquet"
    warehouse.execute(
        f"COPY (SELECT * REPLACE (CAST({edge} AS DOUBLE) AS category_id) "
        f"FROM read_csv('{REES46}') LIMIT 3) TO '{floats}'"
    )
    assert ingest(warehouse, "events", floats, pii_key=b"k").quarantined == {
        "lossy_id:category_id": 3
    }
    keys = head.split(",")
    objects = [json.dumps(dict(zip(keys, x.split(","), strict=True))) for x in rees[3:]]
    objects = [
        re.sub(r'"category_id": "[0-9]+"', f'"category_id": {edge:.15e}', x) for x in objects
    ]
    jsonl = _lines(tmp_path / "floats.jsonl", objects)
    assert ingest(warehouse, "events", jsonl, pii_key=b"k").quarantined == {
        "lossy_id:category_id": 2
    }


def test_crlf_and_bom_files_read_as_their_unix_twins(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Files read line by line in Python (a blank line, a broken byte) lose a Windows line end
    and a byte-order mark as DuckDB does: a blank CRLF line is an empty line, no record of one
    field, and a JSON lines file's first object after a BOM loads. Taobao's first lines."""
    lines = TAOBAO.read_text().splitlines()[:21]
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(("\r\n".join([*lines[:11], "", *lines[11:]]) + "\r\n").encode())
    got = ingest(warehouse, "events", crlf, pii_key=b"k")
    assert (got.lines, got.loaded, got.quarantined) == (21, 20, {"empty_line": 1})
    keys = ["user_id", "item_id", "category_id", "event_type", "ts"]
    objects = [json.dumps(dict(zip(keys, x.split(","), strict=True))) for x in lines[1:]]
    objects[5] = objects[5].replace('"pv"', '"p\udcffv"')  # one byte that is not UTF-8
    bom = tmp_path / "bom.jsonl"
    text = "\n".join(objects) + "\n"
    bom.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8", "surrogateescape"))
    got = ingest(warehouse, "events", bom, pii_key=b"k")
    assert (got.lines, got.loaded, got.quarantined) == (20, 19, {"bad_encoding": 1})


def test_a_repeated_header_of_accented_names_is_no_item(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """A Brazilian shop's two days of catalogue joined with `cat`: the second header, of names
    with accents, is a repeated header, not an item `código` of category `categoria`. REES46's
    items."""
    head, *rees = REES46.read_text().splitlines()[:21]
    items = [",".join(x.split(",")[2:6:2] + x.split(",")[5:6]) for x in rees]
    header = "código,categoria,marca"
    path = _lines(tmp_path / "catalogo.csv", [header, *items[:10], header, *items[10:]])
    mapping = {"item_id": "código", "category_path": "categoria", "brand": "marca"}
    got = ingest(warehouse, "items", path, pii_key=b"k", mapping=mapping)
    assert (got.lines, got.loaded, got.quarantined) == (21, 20, {"repeated_header": 1})


def test_purchase_lines_without_an_item_are_said_only_beside_lines_with_one(
    warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """An order's summary line without an item (eBay's, for a multi-item order) counts as one
    more purchase, which the summary says; an orders export whose item column is empty (every
    purchase itemless) has no such line. REES46's purchases."""
    bought = rees46_purchases()[:6]
    lines = [f"{u},purchase,{t:%Y-%m-%d %H:%M:%S},{i},{p}" for u, t, i, p in bought]
    user, t, _, price = bought[0]
    total = f"{user},purchase,{t:%Y-%m-%d %H:%M:%S},,{price}"  # the order's summary line
    header = "user_id,event_type,ts,item_id,price"
    got = ingest(
        warehouse, "events", _lines(tmp_path / "e.csv", [header, *lines, total]), pii_key=b"k"
    )
    assert got.itemless == (1, 7)
    assert "1 of 7 purchase lines have no item while the others" in " ".join(
        describe_ingest(got).split()
    )
    orders = [",".join([*x.split(",")[:3], "", x.split(",")[4]]) for x in lines]
    path = _lines(tmp_path / "orders.csv", [header, *orders])
    got = ingest(warehouse, "events", path, pii_key=b"k")
    assert (got.loaded, got.itemless) == (6, (0, 0))
