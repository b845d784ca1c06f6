"""Whose ids a loaded file sends: its user and item ids against the other feeds' (the same ids
written two ways, an e-mail address standing for a registered id), ids that stand for every guest,
and item ids that are product lists. Each returns what the summary states; none refuses a line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb

from profiler.ingest_columns import Staged
from profiler.ingest_read import one_row
from profiler.sources import Source
from profiler.sqltext import quote as quote_ident
from profiler.state import has_table


@dataclass(frozen=True)
class UnknownItems:
    missing: int  # distinct item ids of the events that no items row has
    of: int  # distinct item ids of the events
    example: str  # one of the missing ids
    catalogue_example: str  # one id the items do have
    this_file: bool  # the events of this file (else: all events, against an items file)


def unknown_items(con: duckdb.DuckDBPyConnection, src: Source, typed: str) -> UnknownItems | None:
    """Most item ids of the events absent from the items loaded: ids written differently in the
    two feeds (H&M's `0663713001` in its articles, `663713001` in transactions saved from a
    number column) leave every event without categories, brands and prices, unsaid. Checked on
    this file's events, or for an items file on all events; None when most ids match, or when
    either side has no item ids."""
    if src.name not in ("events", "items") or not has_table(con, "raw_items"):
        return None
    if src.name == "events":
        ids = f"SELECT DISTINCT item_id FROM {typed} WHERE _reason IS NULL AND item_id IS NOT NULL"
    elif has_table(con, "raw_events"):
        ids = "SELECT DISTINCT item_id FROM raw_events WHERE item_id IS NOT NULL"
    else:
        return None
    missing, of, example, known = one_row(
        con,
        f"SELECT count(*) FILTER (WHERE i.item_id IS NULL), count(*), "
        f"min(e.item_id) FILTER (WHERE i.item_id IS NULL), "
        f"(SELECT min(item_id) FROM raw_items) "
        f"FROM ({ids}) AS e LEFT JOIN (SELECT DISTINCT item_id FROM raw_items) AS i "
        f"ON i.item_id = e.item_id",
    )
    if known is None or not of or missing * 2 <= of:
        return None
    return UnknownItems(missing, of, example, known, src.name == "events")


@dataclass(frozen=True)
class PaddedIds:
    found: int  # the file's ids that match a loaded id only with leading zeros added or cut
    of: int  # the file's ids
    example: str  # one of them as this file writes it
    loaded_as: str  # the same id as loaded before
    table: str  # where: raw_users, raw_items, or raw_events / raw_feedback
    column: str = "user_id"  # or item_id


# whose ids a file's ids are held against, by (column, source)
_PADDED_AGAINST = {
    ("user_id", "users"): ("raw_events", "raw_feedback"),
    ("user_id", "events"): ("raw_users",),
    ("user_id", "feedback"): ("raw_users",),
    ("item_id", "events"): ("raw_items",),
    ("item_id", "items"): ("raw_events",),
}


def padded_ids(
    con: duckdb.DuckDBPyConnection, src: Source, typed: str, column: str = "user_id"
) -> PaddedIds | None:
    """The file's ids (users', or items') that miss the other feed's but match it once leading
    zeros are added or cut, when they are most of those that miss and a tenth of the file's ids
    miss at least: Ta Feng's `01104905` beside `1104905` from a number column (helper-101: 300
    customers made 600 profiles, none with both its purchases and its registration, unsaid; a
    quarter of its products zero-padded lost their categories, under `unknown_items`' half). The
    other feed is probed only when that many ids miss it; None otherwise."""
    others = [t for t in _PADDED_AGAINST.get((column, src.name), ()) if has_table(con, t)]
    if not others:
        return None
    c = quote_ident(column)
    mine = f"(SELECT DISTINCT {c} AS id FROM {typed} WHERE _reason IS NULL AND {c} IS NOT NULL)"
    known = " UNION ".join(f"SELECT DISTINCT {c} FROM {t} WHERE {c} IN (SELECT id FROM mine)"
                           for t in others)  # fmt: skip
    of, matched = one_row(
        con,
        f"WITH mine AS {mine}, known AS ({known}) SELECT count(*), "
        f"count(*) FILTER (WHERE id IN (SELECT {c} FROM known)) FROM mine",
    )
    if not of or (of - matched) * 10 < of:
        return None
    for table in others:
        # this file cut the zeros, or wrote them where the other feed cut them
        cut, padded = (
            f"(SELECT DISTINCT {c} AS loaded, ltrim({c}, '0') AS id FROM {table} "
            f"WHERE {c} LIKE '0%' AND ltrim({c}, '0') IN (SELECT id FROM mine))",
            f"(SELECT DISTINCT {c} AS loaded, {c} AS id FROM {table} WHERE {c} IN "
            "(SELECT ltrim(id, '0') FROM mine WHERE id LIKE '0%'))",
        )
        found, example, loaded_as = one_row(
            con,
            f"WITH mine AS {mine}, pairs AS (SELECT m.id AS mine, c.loaded FROM mine AS m "
            f"JOIN {cut} AS c ON c.id = m.id UNION ALL "
            f"SELECT m.id, p.loaded FROM mine AS m JOIN {padded} AS p "
            f"ON p.id = ltrim(m.id, '0') WHERE m.id LIKE '0%') "
            "SELECT count(DISTINCT mine), min(mine), min(loaded) FILTER (WHERE mine = "
            "(SELECT min(mine) FROM pairs)) FROM pairs",
        )
        if found * 2 > of - matched:
            return PaddedIds(found, of, example, loaded_as, table, column)
    return None


@dataclass(frozen=True)
class StrangerIds:
    known: int  # the file's user ids that are users of the events or users loaded
    of: int  # the file's user ids
    example: str  # one unknown id as this file writes it
    users_example: str  # one id the events or users have


def stranger_ids(con: duckdb.DuckDBPyConnection, src: Source, typed: str) -> StrangerIds | None:
    """A feedback file whose user ids are almost none of the events' or users' users: keyed by
    something else. Olist's reviews name orders, not customers: `--map user_id=order_id` loaded
    801 orders as users with a rating each and left the 686 buyers' ratings empty, unsaid
    (helper-102). Said when fewer than one id in ten is known and both sides have ten or more;
    None otherwise (feedback sent before the events says nothing)."""
    # the users file first: small, and where a shop sends one its reviewers are mostly in it, so
    # the events (10M lines: 0.15 s) are read only when the users leave the answer open
    others = [t for t in ("raw_users", "raw_events") if has_table(con, t)]
    if src.name != "feedback" or not others:
        return None
    for n in range(1, len(others) + 1):
        known = " UNION ".join(
            f"SELECT DISTINCT user_id FROM {t} WHERE user_id IN (SELECT user_id FROM mine)"
            for t in others[:n]
        )
        of, matched, example = one_row(
            con,
            f"WITH mine AS (SELECT DISTINCT user_id FROM {typed} WHERE _reason IS NULL AND "
            f"user_id IS NOT NULL), known AS ({known}) SELECT count(*), count(k.user_id), "
            "min(m.user_id) FILTER (WHERE k.user_id IS NULL) FROM mine AS m "
            "LEFT JOIN known AS k ON k.user_id = m.user_id",
        )
        if of < 10 or matched * 10 >= of:
            return None
    # scanned only when the file would be said: a feedback file of known users never pays it
    everyone = " UNION ".join(f"SELECT DISTINCT user_id FROM {t}" for t in others)
    users, theirs = one_row(con, f"SELECT count(*), min(user_id) FROM ({everyone})")
    if users < 10:
        return None
    return StrangerIds(matched, of, example, theirs)


def ids_by_address(
    con: duckdb.DuckDBPyConnection, src: Source, typed: str, read: Mapping[str, str]
) -> tuple[int, int]:
    """(user ids, of the file's) that are the e-mail pseudonym of a user registered under
    another id, or for a users file, the ids events or feedback use for its users' addresses:
    one person as two profiles (helper-36: orders by customer id, reviews by address, 74
    review-only phantoms and every buyer's ratings empty)."""
    if src.name == "users":
        others = [t for t in ("raw_events", "raw_feedback") if has_table(con, t)]
        if "email" not in read or not others:
            return 0, 0
        # the file's addresses probe the raw ids (a semi-join), never a DISTINCT over them
        # (helper-38: 2.3 s for 1,000 users beside 10M events)
        mine = f"(SELECT email FROM {typed} WHERE _reason IS NULL AND email IS NOT NULL)"
        used = " UNION ".join(
            f"SELECT DISTINCT user_id FROM {t} WHERE user_id IN {mine}" for t in others
        )
        return one_row(
            con,
            f"SELECT count(DISTINCT t.user_id) FILTER (WHERE t.email IN ({used}) "
            "AND t.email <> t.user_id), count(DISTINCT t.user_id) "
            f"FROM {typed} AS t WHERE t._reason IS NULL",
        )
    if not has_table(con, "raw_users") or "user_id" not in src.column_names_lower():
        return 0, 0
    return one_row(
        con,
        "SELECT count(DISTINCT t.user_id) FILTER (WHERE t.user_id IN (SELECT email FROM raw_users "
        "WHERE email IS NOT NULL AND email <> user_id)), count(DISTINCT t.user_id) "
        f"FROM {typed} AS t WHERE t._reason IS NULL",
    )


def catch_all_ids(
    con: duckdb.DuckDBPyConnection, src: Source, typed: str
) -> list[tuple[str, int, int]]:
    """(id, its lines, the busiest other user's lines) for `0` or `-1` as the user id of more
    loaded lines than 3x any other user has (and 3 at least): a placeholder for guests?
    (WooCommerce: 30 guests as one customer 0, helper-27.) Said, not quarantined: a shop whose ids
    start at 0 has a real user 0 (helper-31), and a file of one user's lines must load the same
    as the others (helper-33). Read from the typed rows."""
    if "user_id" not in src.column_names_lower():
        return []
    zeros = con.execute(
        f"SELECT user_id, count(*) FROM {typed} WHERE _reason IS NULL AND user_id IN ('0', '-1') "
        "GROUP BY user_id"
    ).fetchall()
    if not zeros:
        return []
    (busiest,) = one_row(
        con,
        f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {typed} "
        "WHERE _reason IS NULL AND user_id NOT IN ('0', '-1') GROUP BY user_id)",
    )
    return sorted((u, n, busiest) for u, n in zeros if n >= 3 and n > 3 * busiest)


# the column names a guest's id may be under, best first (`ingest_hints.guest_map`)
GUEST_PATTERNS = (
    r"e-?mail",
    r"pseudo|anonymous|device_?id|domain_userid|client_?id|visitor",
    r"customer|user|buyer",
)


GUEST_WORDS = "|".join(GUEST_PATTERNS)


def guest_columns(
    con: duckdb.DuckDBPyConnection, staged: Staged, ignored: list[str], typed: str
) -> list[str] | None:
    """The ignored columns that hold a value on most lines quarantined for lacking a user id, in
    file order, leaving out those whose values are mostly words with spaces (a person's name);
    None when no line lacks one or the file's columns cannot be read here (JSON keys). What the
    summary's guest hint may name (helper-57: it named a `Customer` column of display names,
    empty on those very lines, and an Etsy column empty everywhere)."""
    guests = "_reason IN ('missing_user_id', 'placeholder_user_id')"
    (missing,) = one_row(con, f"SELECT count(*) FROM {typed} WHERE {guests}")
    # only names the hint could give (helper-58: 60 columns read over 1M lines took 2 s)
    columns = [c for c in ignored if c in staged.values and re.search(GUEST_WORDS, c, re.I)]
    if not missing or not columns:
        return None
    texts = [f"nullif(trim(CAST({staged.values[c]} AS VARCHAR)), '')" for c in columns]
    counts = ", ".join(f"count({t}), count({t}) FILTER (WHERE contains({t}, ' '))" for t in texts)
    row = one_row(
        con,
        f"SELECT count(*), {counts} FROM {staged.relation} WHERE {staged.rec} IN "
        f"(SELECT _rec FROM {typed} WHERE {guests})",
    )
    lines, pairs = row[0], list(zip(row[1::2], row[2::2], strict=True))
    return [
        c
        for c, (n, spaced) in zip(columns, pairs, strict=True)
        if n * 2 > lines and spaced * 2 <= n
    ]


def product_strings(con: duckdb.DuckDBPyConnection, src: Source, typed: str) -> tuple[int, str]:
    """(lines, one as sent): item ids that are Adobe Analytics product lists
    (`;sku;qty;price;;,;sku2;...`), which load as one made-up item per line (helper-51: the
    recommendations then offered `;1004243;;;;`)."""
    if src.name != "events":
        return 0, ""
    n, example = one_row(
        con,
        f"SELECT count(*), min(item_id) FROM {typed} WHERE _reason IS NULL "
        "AND contains(item_id, ';') "  # Category;Product;Quantity;Price;events;eVars (helper-56)
        "AND regexp_matches(item_id, '^[^;,]*;[^;,]+;[0-9]*;[0-9.]*(;|,|$)')",
    )
    return n, example or ""
