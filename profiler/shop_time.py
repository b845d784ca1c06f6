"""The shop's time zone: one per warehouse, chosen by its first ingest (`--time-zone`), UTC when
none is given.

Every time the warehouse stores is the shop's wall-clock time in that zone, so days, hours of
day, weekdays, sessions that end at midnight and the as-of all follow the shop's clock. Ingest
converts the times that name an instant (Unix numbers, text with an offset or a zone name,
zone-aware Parquet) and takes times without a zone as already in it. A warehouse cannot mix two
zones: a later ingest with another one is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from profiler.errors import ProfilerError
from profiler.state import SCHEMA, has_table

DEFAULT = "UTC"
_KEY = "time_zone"


def check_zone(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """The zone's canonical spelling (`europe/berlin` -> `Europe/Berlin`), or a one-line error."""
    rows = con.execute(
        "SELECT name FROM pg_timezone_names() WHERE lower(name) = lower(?) ORDER BY name = ? DESC",
        [name.strip(), name.strip()],
    ).fetchall()
    if rows:
        return rows[0][0]
    close = [
        n
        for (n,) in con.execute(
            "SELECT name FROM pg_timezone_names() WHERE name LIKE '%/%' "
            "ORDER BY jaro_winkler_similarity(lower(name), lower(?)) DESC, name LIMIT 3",
            [name.strip()],
        ).fetchall()
    ]
    raise ProfilerError(
        f"--time-zone {name}: not a time zone name; use an IANA name such as "
        f"{', '.join(close) or 'Europe/Berlin'}"
    )


def warehouse_zone(con: duckdb.DuckDBPyConnection) -> str | None:
    """The zone the warehouse's times are in: the one recorded, else UTC when it holds batches
    from before zones were recorded, else None (nothing ingested yet)."""
    if not has_table(con, "settings", SCHEMA):
        return DEFAULT if has_table(con, "batches", SCHEMA) and _any_batch(con) else None
    row = con.execute(f"SELECT value FROM {SCHEMA}.settings WHERE name = ?", [_KEY]).fetchone()
    if row is not None:
        return row[0]
    return DEFAULT if _any_batch(con) else None


def zone_for_ingest(con: duckdb.DuckDBPyConnection, given: str | None) -> str:
    """The zone this ingest reads in: the warehouse's; `given` must agree with it."""
    have = warehouse_zone(con)
    if given is None:
        return have or DEFAULT
    wanted = check_zone(con, given)
    if have is not None and have != wanted:
        raise ProfilerError(
            f"--time-zone {wanted}: this warehouse keeps its times in {have}, set by its first "
            f"ingest, and cannot mix two zones; drop the option (or give {have}), or ingest into "
            "a new warehouse"
        )
    return wanted


def record_zone(con: duckdb.DuckDBPyConnection, zone: str) -> None:
    """Remember the zone, inside the transaction that commits the warehouse's first batch."""
    con.execute(
        f"INSERT INTO {SCHEMA}.settings (name, value) SELECT ?, ? "
        f"WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.settings WHERE name = ?)",
        [_KEY, zone, _KEY],
    )


def in_shop_time(con: duckdb.DuckDBPyConnection, when: datetime) -> datetime:
    """A time the user gave with a zone (`--as-of 2017-12-01T00:00Z`) as the warehouse's wall
    clock; a time without one is already that."""
    if when.tzinfo is None:
        return when
    zone = warehouse_zone(con) or DEFAULT
    (local,) = con.execute(
        "SELECT CAST(timezone(?, CAST(? AS TIMESTAMPTZ)) AS TIMESTAMP)",
        [zone, when.astimezone(UTC).isoformat()],
    ).fetchone()
    return local


def _any_batch(con: duckdb.DuckDBPyConnection) -> bool:
    """A batch that loaded rows: one quarantined whole read no time into the warehouse."""
    return (
        con.execute(f"SELECT 1 FROM {SCHEMA}.batches WHERE loaded > 0 LIMIT 1").fetchone()
        is not None
    )
