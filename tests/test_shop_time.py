"""The shop's time zone (`profiler.shop_time`): times stored on the shop's clock, one zone per
warehouse.

Data: the shared Taobao sample (Unix seconds from a shop in China) and a few lines stated inline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import TAOBAO, run_cli

PROFILE = ("--select", "+user_profile_history")


def rows(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_taobao_on_the_shops_clock(tmp_path: Path) -> None:
    """Taobao's Unix times land 8 hours later on Beijing's clock: the sample's documented days
    (2017-11-25 .. 2017-12-03, Beijing) become its calendar days, and the profile's days, hours
    and as-of follow."""
    utc, local = tmp_path / "utc.duckdb", tmp_path / "shanghai.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=utc)
    out = run_cli("ingest", "events", str(TAOBAO), "--time-zone", "asia/shanghai", warehouse=local)
    assert "times: shop time, Asia/Shanghai" in out
    for warehouse in (utc, local):
        out = run_cli("build", *PROFILE, warehouse=warehouse)
    assert "as of 2017-12-03 23:59:28 (Asia/Shanghai)" in out.replace("T", " ")

    sql = "SELECT user_id, item_id, event_type, ts FROM raw_events ORDER BY ALL"
    shifted = [(u, i, e, t + timedelta(hours=8)) for u, i, e, t in rows(utc, sql)]
    assert rows(local, sql) == sorted(shifted)
    # the sample's days, 2017-11-25 .. 2017-12-03 in Beijing, hold nearly all events there only
    share = "SELECT avg(CAST(CAST(ts AS DATE) BETWEEN '2017-11-25' AND '2017-12-03' AS INT)) FROM raw_events"
    assert rows(local, share)[0][0] > 0.999 > rows(utc, share)[0][0]
    assert rows(local, "SELECT DISTINCT as_of FROM user_profile") == [
        (datetime(2017, 12, 3, 23, 59, 28),)
    ]

    # a user's sessions by hour: the same sessions, 8 hours later on the shop's clock (none of
    # this user's sessions crosses a UTC or a Beijing midnight, so both clocks cut the same ones)
    hours = ", ".join(f"sessions_h{h:02d}" for h in range(24))
    per_hour = f"SELECT {hours} FROM int_user_lifetime WHERE user_id = '1'"
    (u,), (b,) = rows(utc, per_hour), rows(local, per_hour)
    assert sum(u) == sum(b) > 0
    assert list(b) == [u[(h - 8) % 24] for h in range(24)]


def test_each_form_of_time_lands_on_the_shops_clock(tmp_path: Path) -> None:
    """Berlin: +2 hours in October (summer time), +1 in December. Instants are converted; text
    without a zone is already the shop's time."""
    warehouse = tmp_path / "w.duckdb"
    cases = {
        "naive": ("2019-10-01 10:00:00", datetime(2019, 10, 1, 10)),
        "utc_name": ("2019-10-01 10:00:00 UTC", datetime(2019, 10, 1, 12)),
        "z": ("2019-12-01T10:00:00Z", datetime(2019, 12, 1, 11)),
        "offset": ("2019-10-01T10:00:00+05:00", datetime(2019, 10, 1, 7)),
        "unix": ("1569924000", datetime(2019, 10, 1, 12)),
        "unix_ms": ("1575194400000", datetime(2019, 12, 1, 11)),
        "date": ("2019-10-01", datetime(2019, 10, 1)),
    }
    csv = tmp_path / "e.csv"
    csv.write_text(
        "user_id,event_type,item_id,ts\n"
        + "".join(f"u,view,{k},{v[0]}\n" for k, v in cases.items())
    )
    run_cli("ingest", "events", str(csv), "--time-zone", "Europe/Berlin", warehouse=warehouse)
    got = dict(rows(warehouse, "SELECT item_id, ts FROM raw_events"))
    assert got == {k: v[1] for k, v in cases.items()}

    parquet = tmp_path / "e.parquet"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "COPY (SELECT 'p' AS user_id, 'view' AS event_type, 'aware' AS item_id, "
        "TIMESTAMPTZ '2019-10-01 10:00:00+00' AS ts UNION ALL SELECT 'p', 'view', 'naive', "
        f"CAST(TIMESTAMP '2019-10-01 10:00:00' AS TIMESTAMPTZ)) TO '{parquet}'"
    )
    # the same instant twice: Parquet stores zone-aware times; both are 10:00 UTC
    run_cli("ingest", "events", str(parquet), warehouse=warehouse)  # the warehouse's zone
    got = rows(warehouse, "SELECT DISTINCT ts FROM raw_events WHERE user_id = 'p'")
    assert got == [(datetime(2019, 10, 1, 12),)]

    # helper-35: Amplitude's and Snowplow's times carry no zone but are UTC: --times-utc
    # converts them as instants; a date stays its day
    utc = tmp_path / "utc.csv"
    utc.write_text(csv.read_text().replace("u,view,", "t,view,"))
    out = run_cli("ingest", "events", str(utc), "--times-utc", warehouse=warehouse)
    assert "times without a zone read as UTC and converted" in " ".join(out.split())
    got = dict(rows(warehouse, "SELECT item_id, ts FROM raw_events WHERE user_id = 't'"))
    assert got == {k: v[1] for k, v in cases.items()} | {"naive": datetime(2019, 10, 1, 12)}
    con.execute(
        f"COPY (SELECT 'q' AS user_id, 'view' AS event_type, TIMESTAMP '2019-12-01 10:00:00' AS ts) "
        f"TO '{tmp_path / 'naive.parquet'}'"
    )
    run_cli("ingest", "events", str(tmp_path / "naive.parquet"), "--times-utc", warehouse=warehouse)
    assert rows(warehouse, "SELECT ts FROM raw_events WHERE user_id = 'q'") == [
        (datetime(2019, 12, 1, 11),)
    ]
    # and so are UTC times read with --ts-format (a US export of Snowplow's times)
    us = tmp_path / "us.csv"
    us.write_text("user_id,event_type,ts\nr,view,10/01/2019 10:00\nr,cart,12/01/2019 10:00\n")
    run_cli("ingest", "events", str(us), "--ts-format", "%m/%d/%Y %H:%M", "--times-utc",
            warehouse=warehouse)  # fmt: skip
    assert rows(warehouse, "SELECT ts FROM raw_events WHERE user_id = 'r' ORDER BY ts") == [
        (datetime(2019, 10, 1, 12),), (datetime(2019, 12, 1, 11),)
    ]  # fmt: skip


def test_one_zone_per_warehouse(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("user_id,event_type,ts\nu,view,1569924000\n")
    second.write_text("user_id,event_type,ts\nu,view,1569927600\n")

    out = run_cli(
        "ingest", "events", str(first), "--time-zone", "Mars/Olympus", warehouse=warehouse, ok=False
    )
    assert "--time-zone Mars/Olympus: not a time zone name" in out
    assert list(tmp_path.glob("w.duckdb*")) == []  # a refused first ingest leaves nothing behind
    # a misspelt zone is answered with the names closest to it
    out = run_cli(
        "ingest", "events", str(first), "--time-zone", "Europe/Berln", warehouse=warehouse, ok=False
    )
    assert "use an IANA name such as Europe/Berlin," in out

    run_cli("ingest", "events", str(first), "--time-zone", "Asia/Tokyo", warehouse=warehouse)
    out = run_cli(
        "ingest",
        "events",
        str(second),
        "--time-zone",
        "Europe/Berlin",
        warehouse=warehouse,
        ok=False,
    )
    assert "keeps its times in Asia/Tokyo" in out
    assert rows(warehouse, "SELECT count(*) FROM raw_events") == [(1,)]
    assert rows(warehouse, "SELECT count(*) FROM _profiler.batches") == [(1,)]

    run_cli("ingest", "events", str(second), warehouse=warehouse)  # no option: the warehouse's zone
    assert rows(warehouse, "SELECT ts FROM raw_events ORDER BY ts") == [
        (datetime(2019, 10, 1, 19),),
        (datetime(2019, 10, 1, 20),),
    ]
    # --as-of with a zone is stated on the shop's clock
    run_cli("build", *PROFILE, "--as-of", "2019-10-01T11:30:00Z", warehouse=warehouse)
    assert rows(warehouse, "SELECT DISTINCT as_of FROM user_profile") == [
        (datetime(2019, 10, 1, 20, 30),)
    ]
    # any offset, not only UTC's, is an instant (11:00 UTC); a time without one is already the
    # shop's clock, not UTC
    for given, shop in (("2019-10-01T16:00:00+05:00", 20), ("2019-10-01T19:00:00", 19)):
        run_cli("build", *PROFILE, "--as-of", given, warehouse=warehouse)
        assert rows(warehouse, "SELECT DISTINCT as_of FROM user_profile") == [
            (datetime(2019, 10, 1, shop),)
        ]
    # a first ingest without the option sets UTC, and says so once (helper-45: a shop in Seoul
    # found its clock fixed at UTC, unsaid, after its first ingest with the option was refused)
    utc = tmp_path / "utc.duckdb"
    # a first load that keeps no line sets no clock (helper-48: a file quarantined whole fixed UTC)
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,event_type,ts\nu,view,yesterday\n")
    run_cli("ingest", "events", str(bad), warehouse=utc, ok=False)
    # given a zone, the failed first load says to give it again (helper-50: the retry without
    # it set UTC)
    kolkata = tmp_path / "kolkata.duckdb"
    out = run_cli(
        "ingest", "events", str(bad), "--time-zone", "Asia/Kolkata", warehouse=kolkata, ok=False
    )
    assert "the shop's clock is not set yet: give --time-zone Asia/Kolkata again" in " ".join(
        out.split()
    )
    said = " ".join(run_cli("ingest", "events", str(first), warehouse=utc).split())
    assert "this warehouse's first load sets the shop's clock to UTC (no --time-zone)" in said
    assert "first load sets" not in run_cli("ingest", "events", str(second), warehouse=utc)


def test_a_warehouse_from_before_zones_is_utc(tmp_path: Path) -> None:
    """Batches without a recorded zone were read as UTC: another zone would mix two clocks."""
    warehouse = tmp_path / "w.duckdb"
    csv = tmp_path / "a.csv"
    csv.write_text("user_id,event_type,ts\nu,view,1569924000\n")
    run_cli("ingest", "events", str(csv), warehouse=warehouse)
    con = duckdb.connect(str(warehouse))
    con.execute("DROP TABLE _profiler.settings")  # as an older version left it
    con.close()
    other = tmp_path / "b.csv"
    other.write_text("user_id,event_type,ts\nu,view,1569927600\n")
    out = run_cli(
        "ingest", "events", str(other), "--time-zone", "Asia/Tokyo", warehouse=warehouse, ok=False
    )
    assert "keeps its times in UTC" in out
    run_cli("ingest", "events", str(other), "--time-zone", "UTC", warehouse=warehouse)
    assert rows(warehouse, "SELECT value FROM _profiler.settings WHERE name = 'time_zone'") == [
        ("UTC",)
    ]


@pytest.mark.parametrize(
    ("zone", "message", "before_zones"),
    [
        ("Nowhere/Land", "not a time zone name", False),
        ("Asia/Tokyo", "keeps its times in UTC", False),
        # a warehouse from before zones were recorded: its batches were read as UTC
        ("Asia/Tokyo", "keeps its times in UTC", True),
    ],
)
def test_watch_refuses_a_zone_it_cannot_use_before_it_starts(
    tmp_path: Path, zone: str, message: str, before_zones: bool
) -> None:
    warehouse = tmp_path / "w.duckdb"
    csv = tmp_path / "a.csv"
    csv.write_text("user_id,event_type,ts\nu,view,1569924000\n")
    run_cli("ingest", "events", str(csv), warehouse=warehouse)
    if before_zones:
        with duckdb.connect(str(warehouse)) as con:
            con.execute("DROP TABLE _profiler.settings")  # as an older version left it
    landing = tmp_path / "landing"
    (landing / "events").mkdir(parents=True)
    (landing / "events" / "b.csv").write_text("user_id,event_type,ts\nu,view,1569927600\n")
    out = run_cli(
        "watch", str(landing), "--once", "--time-zone", zone, warehouse=warehouse, ok=False
    )
    assert message in out
    assert (landing / "events" / "b.csv").exists()  # not rejected: the option was wrong


def test_parquet_int96_times_are_said_and_read_as_utc_when_told(tmp_path: Path) -> None:
    """Spark's and Hive's INT96 times carry no zone when read, though Spark wrote UTC instants:
    taken as shop time, every Beijing time was 8 hours early, unsaid (helper-61). Taobao's
    first lines as such a file; an items file, which has no time, says nothing of times."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = [line.split(",") for line in TAOBAO.read_text().splitlines()[1:21]]
    path = tmp_path / "part-0.parquet"
    table = pa.table({
        "user_id": [u for u, *_ in lines],
        "item_id": [i for _, i, *_ in lines],
        "event_type": [e for *_, e, _ in lines],
        "ts": pa.array([datetime.utcfromtimestamp(int(t)) for *_, t in lines], pa.timestamp("us")),
    })  # fmt: skip
    pq.write_table(table, path, use_deprecated_int96_timestamps=True)
    wh = tmp_path / "w.duckdb"
    out = " ".join(
        run_cli("ingest", "events", str(path), "--time-zone", "Asia/Shanghai", warehouse=wh).split()
    )
    assert "warning: ts read from Parquet INT96 times" in out and "--times-utc --replace" in out
    again = run_cli("ingest", "events", str(path), "--times-utc", "--replace", warehouse=wh)
    assert "INT96" not in again
    utc = sorted(datetime.utcfromtimestamp(int(t)) + timedelta(hours=8) for *_, t in lines)
    assert [t for (t,) in rows(wh, "SELECT ts FROM raw_events ORDER BY ts")] == utc
    items = tmp_path / "items.csv"
    items.write_text("item_id,category_id\n1,2\n")
    assert "times:" not in run_cli("ingest", "items", str(items), warehouse=wh)


def test_signup_times_on_another_clock_are_said(tmp_path: Path) -> None:
    """A users file's UTC `created_at`, read as a Los Angeles shop's time, put every signup
    hours after the user's first event, unsaid (helper-61). Taobao's users, each signed up at
    its first event, the times written in UTC."""
    wh = tmp_path / "w.duckdb"
    run_cli("ingest", "events", str(TAOBAO), "--time-zone", "America/Los_Angeles", warehouse=wh)
    first: dict[str, int] = {}
    for line in TAOBAO.read_text().splitlines()[1:]:
        user, *_, ts = line.split(",")
        first[user] = min(first.get(user, int(ts)), int(ts))
    users = tmp_path / "users.csv"
    users.write_text("user_id,created_at\n" + "".join(
        f"{u},{datetime.utcfromtimestamp(t):%Y-%m-%d %H:%M:%S}\n" for u, t in first.items()
    ))  # fmt: skip
    out = " ".join(run_cli("ingest", "users", str(users), warehouse=wh).split())
    assert (
        f"warning: {len(first):,} of {len(first):,} users with events signed up after their first event"
        in out
    ), out
    assert "If they are UTC, ingest the file again with --times-utc --replace" in out
    again = run_cli("ingest", "users", str(users), "--times-utc", "--replace", warehouse=wh)
    assert "signed up after" not in again
    # signing up minutes after browsing is a shop's normal, no other clock (helper-65)
    minutes = tmp_path / "minutes.csv"
    minutes.write_text("user_id,created_at\n" + "".join(
        f"{u},{datetime.fromtimestamp(t, UTC) + timedelta(minutes=5):%Y-%m-%d %H:%M:%S%z}\n"
        for u, t in first.items()
    ))  # fmt: skip
    assert "signed up after" not in run_cli("ingest", "users", str(minutes), warehouse=wh)
