"""Property-based: messy files thrown at ingest never crash it and never lose a line.

Whatever the file (random bytes, mixed encodings, huge fields, quotes and newlines inside fields,
columns in any order, extra columns, empty, only a header): ingest either loads it, accounting for
every record as loaded or quarantined, or refuses it with one clear line and changes nothing.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from profiler.errors import ProfilerError
from profiler.ingest import ingest
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
