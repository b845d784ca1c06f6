"""What ingest tells about a file it loaded, beyond its lines: its typed rows checked against
themselves and against what is loaded already.

Each reads the file's typed rows (`typed`, a temp table of ingest), the raw tables and, for a few,
a staged column the file sent and no canonical column reads (a guest's e-mail, an `updated_at`, a
money column beside the amount), and returns what the summary states; none refuses a line. The
unread columns kept in the typed table for warnings (currency, status, event and order ids) are
`ingest_kept`'s; the checks of whose ids a file sends are `ingest_ids`'.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import duckdb

from profiler.ingest_columns import Staged, loose
from profiler.ingest_options import EVENT_TYPE_SYNONYMS
from profiler.ingest_read import FileInfo, one_row
from profiler.ingest_values import timestamp_sql, vocabulary_sql
from profiler.sources import BATCH_COLUMN, Source
from profiler.sqltext import literal as quote_literal
from profiler.sqltext import quote as quote_ident
from profiler.state import has_table


def dated_again_count(
    con: duckdb.DuckDBPyConnection, src: Source, typed: str, replaced: tuple[int, ...]
) -> int:
    """Loaded lines at midnight exactly that equal a line already in `raw_events` (other than
    the rows of the loads this one replaces).

    Sent as dates (stg_date_only_events), equal lines are separate orders, so a date-only feed
    sent again (a corrected re-export, the same file under another name and format) would count
    twice; the summary says so. Timed feeds do not need it: their repeats count once anyway.
    """
    if src.name != "events" or not has_table(con, src.table):
        return 0
    same = " AND ".join(
        f"r.{quote_ident(c.name)} IS NOT DISTINCT FROM t.{quote_ident(c.name)}" for c in src.columns
    )
    midnight = "CAST({}.ts AS TIME) = TIME '00:00:00'"
    (count,) = one_row(
        con,
        f"WITH again AS (SELECT t.* FROM {typed} AS t WHERE t._reason IS NULL "
        f"AND {midnight.format('t')} AND EXISTS (SELECT 1 FROM {src.table} AS r "
        f"WHERE {midnight.format('r')} AND {same}"
        + "".join(f" AND r.{BATCH_COLUMN} <> {int(b)}" for b in replaced)
        + ")) "
        # sent as dates: no line of the user's type that day at another time (the rule of
        # stg_date_only_events, within this file)
        f"SELECT count(*) FROM again AS a WHERE NOT EXISTS (SELECT 1 FROM {typed} AS o "
        "WHERE o._reason IS NULL AND o.user_id = a.user_id AND o.event_type = a.event_type "
        f"AND CAST(o.ts AS DATE) = CAST(a.ts AS DATE) AND NOT {midnight.format('o')})",
    )
    return count


def purchases_twice(
    con: duckdb.DuckDBPyConnection, src: Source, typed: str, replaced: tuple[int, ...]
) -> tuple[int, list[int]]:
    """(lines, batches): this file's timed purchases at the moment (user, time) and of the item
    of a purchase another load sent, other in price, quantity or amount, so no exact repeat:
    one order from two feeds (a clickstream's unpriced `buy` and the orders export, helper-45:
    spend doubled) counts twice, unsaid before. A purchase without an item matches any item."""
    if src.name != "events" or not has_table(con, src.table):
        return 0, []
    other = _other_loads_in_span(typed, replaced)
    rows = con.execute(
        f"SELECT count(DISTINCT t._rec), list(DISTINCT r.{BATCH_COLUMN} ORDER BY r.{BATCH_COLUMN}) "
        f"FROM {typed} AS t JOIN {src.table} AS r ON r.user_id = t.user_id AND r.ts = t.ts "
        "AND r.event_type = 'purchase' AND (r.item_id = t.item_id OR r.item_id IS NULL "
        "OR t.item_id IS NULL) AND (r.price, r.quantity, r.amount) IS DISTINCT FROM "
        f"(t.price, t.quantity, t.amount){other} "
        "WHERE t._reason IS NULL AND t.event_type = 'purchase' "
        "AND CAST(t.ts AS TIME) <> TIME '00:00:00'"
    ).fetchone()
    return rows[0], rows[1] or []


def _other_loads_in_span(typed: str, replaced: tuple[int, ...]) -> str:
    """SQL conditions on raw rows `r`: not of the loads this one replaces, and within the file's
    own span of time, so zone maps skip the rest of raw_events (helper-47: the whole table was
    read, 0.12-0.19 s per ingest into 10M rows)."""
    other = "".join(f" AND r.{BATCH_COLUMN} <> {int(b)}" for b in replaced)
    return other + (
        f" AND r.ts BETWEEN (SELECT min(ts) FROM {typed} WHERE _reason IS NULL) "
        f"AND (SELECT max(ts) FROM {typed} WHERE _reason IS NULL)"
    )


def purchases_resent(
    con: duckdb.DuckDBPyConnection, src: Source, typed: str, replaced: tuple[int, ...]
) -> tuple[int, list[int]]:
    """(lines, batches): this file's timed purchase lines equal in every column to a purchase
    line another load sent. The build counts such a line once, as an export sent again; but
    the parts of one export split over files (a warehouse's parallel unload, `data_0_0_0`,
    `data_0_0_1`) may each hold one of a pair of equal units (helper-61: 391 units, 17% of
    spend, gone unsaid). Said only when they are under half of the file's purchase lines: a file
    that mostly repeats loaded purchases is an export sent again, or the parts joined (helper-66:
    the joined file got the note again)."""
    if src.name != "events" or not has_table(con, src.table):
        return 0, []
    other = _other_loads_in_span(typed, replaced)
    equal = " AND ".join(
        f"r.{quote_ident(c.name)} IS NOT DISTINCT FROM t.{quote_ident(c.name)}"
        for c in src.columns
        if c.name not in ("user_id", "ts", "event_type")
    )
    rows = con.execute(
        f"SELECT count(DISTINCT t._rec), list(DISTINCT r.{BATCH_COLUMN} ORDER BY r.{BATCH_COLUMN}) "
        f"FROM {typed} AS t JOIN {src.table} AS r ON r.user_id = t.user_id AND r.ts = t.ts "
        f"AND r.event_type = 'purchase' AND {equal}{other} "
        "WHERE t._reason IS NULL AND t.event_type = 'purchase' "
        "AND CAST(t.ts AS TIME) <> TIME '00:00:00' AND t.ts = date_trunc('second', t.ts)"
    ).fetchone()
    if not rows[0]:
        return 0, []
    (purchases,) = one_row(
        con, f"SELECT count(*) FROM {typed} WHERE _reason IS NULL AND event_type = 'purchase'"
    )
    return (rows[0], rows[1]) if rows[0] * 2 < purchases else (0, [])


def signups_after_events(
    con: duckdb.DuckDBPyConnection, src: Source, typed: str
) -> tuple[int, int, float] | None:
    """(users signed up after their first event, users with events and a signup, the median
    hours after) when most signed up after their first event, by less than a day: the signup
    times on another clock (helper-61: a users file's UTC `created_at` read as Los Angeles time
    put all 4,504 signups hours after each user's first event, unsaid). Users who browsed for
    days before signing up are no sign of it: their gaps are days."""
    if src.name != "users" or not has_table(con, "raw_events"):
        return None
    signed = f"SELECT user_id, max(signup_ts) AS signup FROM {typed} WHERE _reason IS NULL AND signup_ts IS NOT NULL GROUP BY user_id"
    after, n, hours = one_row(
        con,
        f"WITH s AS ({signed}), f AS (SELECT user_id, min(ts) AS first FROM raw_events "
        "WHERE user_id IN (SELECT user_id FROM s) GROUP BY user_id) "
        "SELECT count(*) FILTER (WHERE s.signup > f.first), count(*), "
        "median(epoch(s.signup) - epoch(f.first)) FILTER (WHERE s.signup > f.first) / 3600 "
        "FROM s JOIN f USING (user_id)",
    )
    # a clock error is whole hours; signing up minutes after browsing is a shop's normal
    # (helper-65: a UTC warehouse's zoned signups were told of another clock)
    if n < 5 or after < 0.8 * n or hours is None or not 1 <= hours < 24:
        return None
    return after, n, hours


# columns a daily feed keeps sending; one gone from the next file is likely renamed
_KEPT = {
    "events": ("item_id", "category_id", "category_path", "brand", "price", "quantity", "amount",
               "session_id", "query"),
    "feedback": ("item_id", "rating", "text"),
}  # fmt: skip


def columns_dropped(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    typed: str,
    resolved: Mapping[str, str],
    replaced: tuple[int, ...],
    file_columns: list[str],
) -> tuple[int, list[str]]:
    """(batch, columns): the columns the newest earlier load of the same kind of file sent on
    nine lines in ten or more, which this file does not read at all: a renamed column
    (helper-53: `price` as `sale_price`, `user_session` as `session_uuid` loaded with only an
    "ignored" line; sessions then fell back to 30-minute gaps). The same kind: the same event
    types (events), and headers that share at least half the names of the shorter (another
    feed, a point of sale beside the web shop, has its own: helper-58), or, for loads from
    before headers were kept, one that sent every column this file reads. Raw `amount` is price
    x quantity where only a price was sent, so it counts only where no price is (helper-56)."""
    own = [c for c in _KEPT.get(src.name, ()) if c in resolved]
    kept = [c for c in _KEPT.get(src.name, ()) if c not in resolved]
    if "price" in resolved or "price" in kept:
        kept = [c for c in kept if c != "amount"]
        own = [c for c in own if c != "amount"]
    if not kept or not has_table(con, src.table) or not has_table(con, "batches", "_profiler"):
        return 0, []
    kinds = "event_type" if src.name == "events" else "kind"
    taken = "".join(f" AND batch_id <> {int(b)}" for b in replaced)
    recent = con.execute(
        f"SELECT batch_id, file_columns FROM _profiler.batches WHERE source = ? AND loaded > 0 "
        f"AND superseded_by IS NULL{taken} ORDER BY batch_id DESC LIMIT 5",
        [src.name],
    ).fetchall()
    if not recent:
        return 0, []
    counts = ", ".join(f"count({quote_ident(c)})" for c in [*kept, *own])
    first = 50_000  # lines of each: a 10M-line first load is not read whole on every ingest
    ((mine,),) = con.execute(
        f"SELECT list(DISTINCT {kinds} ORDER BY {kinds}) FROM "
        f"(SELECT {kinds} FROM {typed} WHERE _reason IS NULL LIMIT {first})"
    ).fetchall()
    header = {c.lower() for c in file_columns}
    for batch, theirs in recent:
        if theirs is not None:
            names = {c.lower() for c in theirs}
            if len(header & names) * 2 < min(len(header), len(names)):
                continue  # another feed's file
        ((shape, lines, *sent),) = con.execute(
            f"SELECT list(DISTINCT {kinds} ORDER BY {kinds}), count(*), {counts} FROM "
            f"(SELECT * FROM {src.table} WHERE {BATCH_COLUMN} = {int(batch)} LIMIT {first})"
        ).fetchall()
        counted = dict(zip([*kept, *own], sent, strict=True))
        if not lines or shape != mine or (theirs is None and not all(counted[c] for c in own)):
            continue
        return batch, [c for c in kept if counted[c] >= 0.9 * lines]
    return 0, []


def purchase_words_together(con: duckdb.DuckDBPyConnection, typed: str) -> tuple[int, list[str]]:
    """(moments, words): moments (user, time) holding purchases read from two or more words of
    the file's event type column: Klaviyo's `Placed Order` (the order) and `Ordered Product`
    (each item), both mapped to purchase, count each order twice (helper-45). The words come
    most item-less first: the order's own line, the one to leave out (helper-48: the items'
    lines, with their item, brand and quantity, were named)."""
    sent = "trim(coalesce(_sent_word, event_type))"
    n, words = one_row(
        con,  # compared as the vocabulary compares them (`Placed Order` = `placed order`)
        f"WITH p AS (SELECT *, lower({sent}) AS w, {sent} AS as_sent FROM {typed} "
        "WHERE _reason IS NULL AND event_type = 'purchase'), "
        "m AS (SELECT user_id, ts FROM p GROUP BY user_id, ts HAVING count(DISTINCT w) > 1), "
        "words AS (SELECT min(as_sent) AS w, avg(CASE WHEN item_id IS NULL THEN 1 ELSE 0 END) "
        "AS itemless FROM p SEMI JOIN m USING (user_id, ts) GROUP BY p.w) "
        "SELECT (SELECT count(*) FROM m), (SELECT list(w ORDER BY itemless DESC, w) FROM words)",
    )
    return n, words or []


# what exports call the time a record last changed (dbt snapshots' `updated_at`)
_UPDATED = ("updatedat", "updated", "lastupdated", "modifiedat", "modified", "lastmodified",
            "datemodified", "dateupdated", "updatetime", "updatedtime", "changedat",
            "validfrom", "effectivefrom", "effectivedate")  # fmt: skip


def updates_by_line_order(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    staged: Staged,
    typed: str,
    ignored: list[str],
    ts_format: str | None = None,
) -> tuple[str, int] | None:
    """(the ignored column, ids): a users or items file that sends an id on several lines with
    different values, whose later line is not its newest by a column of when each record changed
    (read as a time), which is not read: the later line wins (helper-61: a users export sorted by
    user and city gave 192 of 442 users a city that was not their newest, unsaid)."""
    if src.name not in ("users", "items"):
        return None
    column = next(
        (c for c in ignored if c in staged.values and loose(c) in _UPDATED),
        None,
    )
    if column is None:
        return None
    key = "user_id" if src.name == "users" else "item_id"
    values = ", ".join(quote_ident(c.name) for c in src.columns if c.name != key)
    # read as ingest reads times: ISO text, the file's --ts-format, Unix seconds or milliseconds
    # (helper-66: US times and Unix seconds went unread, and the warning unsaid)
    text = f"trim(CAST({staged.values[column]} AS VARCHAR))"
    changed = timestamp_sql(text, f"TRY_CAST({text} AS DOUBLE)", None, ts_format)
    (ids,) = one_row(
        con,
        f"SELECT count(*) FILTER (WHERE last_line < newest) FROM (SELECT arg_max(s.changed, "
        f"t._rec) AS last_line, max(s.changed) AS newest FROM {typed} AS t JOIN (SELECT "
        f"{staged.rec} AS _rec, {changed} AS changed FROM {staged.relation}) AS s USING (_rec) "
        f"WHERE t._reason IS NULL GROUP BY t.{key} HAVING count(DISTINCT ({values})) > 1)",
    )
    return (column, ids) if ids else None


# what a line's money is called, the likeliest first; never a cost or an asset (what the shop
# paid: helper-66, Ta Feng's ASSET before its SALES_PRICE was named)
_MONEY_WORDS = ("sales", "revenue", "total", "price", "spend", "money", "value")
_NOT_A_LINES = ("customer", "lifetime", "ltv", "clv", "user", "account", "avg", "average")


def amount_like_quantity(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    staged: Staged,
    typed: str,
    resolved: Mapping[str, str],
    ignored: list[str],
) -> tuple[int, str] | None:
    """(the largest amount, an ignored column named like money) when the column read as the
    events' amount holds small whole numbers only, no quantity or price is read, and an ignored
    column named like money holds larger numbers: a count read as money (helper-61: Ta Feng's
    `AMOUNT` is the units bought and `SALES_PRICE` the line's money; spend was 13,981 for a true
    3,532,993, unsaid)."""
    if src.name != "events" or "amount" not in resolved or {"price", "quantity"} & set(resolved):
        return None
    # small: 99 lines in 100 up to 100 units, not every line (helper-101: one bulk line of 144
    # units in Ta Feng's grocery lines silenced the warning; spend 27,417 for a true 3,652,595)
    n, whole, largest, small, mean = one_row(
        con,
        f"SELECT count(amount), count(*) FILTER (WHERE amount = trunc(amount)), max(amount), "
        f"count(*) FILTER (WHERE amount <= 100), avg(amount) "
        f"FROM {typed} WHERE _reason IS NULL AND event_type = 'purchase'",
    )
    if n < 10 or whole < n or small < 0.99 * n:
        return None

    def likeliest(column: str) -> int:
        words = re.sub(r"[^a-z]", " ", column.lower()).split()
        if any(w.startswith(_NOT_A_LINES) for w in words):  # a customer's lifetime total
            return 99  # (helper-65: a subscription shop was told to map it as each order's)
        return min(
            (n for n, m in enumerate(_MONEY_WORDS) for w in words if w.startswith(m)), default=99
        )

    ranked = sorted((likeliest(c), c) for c in ignored if c in staged.values)
    for column in [c for rank, c in ranked if rank < 99]:
        value = (
            f"TRY_CAST(replace(trim(CAST({staged.values[column]} AS VARCHAR)), ',', '') AS DOUBLE)"
        )
        numbers, other_mean = one_row(
            con, f"SELECT count({value}), avg({value}) FROM {staged.relation}"
        )
        if numbers >= 0.9 * n and other_mean is not None and other_mean > 3 * mean:
            return int(largest), column
    return None


# the names an event type column goes by, beside the one read (Coveo's `product_action`)
_TYPE_WORDS = ("action", "event", "type", "behavio", "activity")
# names of no words: GA4's event_date, event_timestamp, event_bundle_sequence_id (each such
# column would cost a scan of the file)
_NOT_WORDS = ("id", "date", "time", "timestamp", "count", "value", "offset")


def event_words_elsewhere(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    staged: Staged,
    typed: str,
    resolved: Mapping[str, str],
    ignored: list[str],
) -> tuple[str, list[tuple[str, str, int]]] | None:
    """(an ignored column, its words read as event types with their lines) when it holds words
    of more event types than the column read as the event type gives: Coveo's browsing_train
    sends `event_type` (`event_product`, `pageview`) beside `product_action` (`detail`, `add`,
    `purchase`); told to map `event_product=TYPE`, its carts and purchases loaded as views,
    unsaid (helper-102). None otherwise."""
    if src.name != "events" or "event_type" not in resolved:
        return None
    (read,) = one_row(
        con,
        f"SELECT count(DISTINCT event_type) FROM {typed} WHERE _reason IS NULL",
    )
    for column in ignored:
        name = loose(column)
        if (
            column not in staged.values
            or not any(w in name for w in _TYPE_WORDS)
            or name.endswith(_NOT_WORDS)
        ):
            continue
        value = f"trim(CAST({staged.values[column]} AS VARCHAR))"
        words = con.execute(
            f"SELECT word, kind, count(*) FROM (SELECT {value} AS word, "
            f"{vocabulary_sql(value, EVENT_TYPE_SYNONYMS)} AS kind FROM {staged.relation}) "
            "WHERE kind IS NOT NULL GROUP BY ALL ORDER BY 3 DESC, 1"
        ).fetchall()
        if len({kind for _, kind, _ in words}) > max(read, 1):
            return column, words
    return None


def itemless_purchases(con: duckdb.DuckDBPyConnection, src: Source, typed: str) -> tuple[int, int]:
    """(lines, of): purchase lines without an item in a file whose other purchase lines have
    one: an order's summary line (eBay's, for multi-item orders), a tip or a fee, each counted as
    one more purchase (helper-57: eBay's purchases +25%)."""
    if src.name != "events":
        return 0, 0
    n, of = one_row(
        con,
        f"SELECT count(*) FILTER (WHERE item_id IS NULL), count(*) FROM {typed} "
        "WHERE _reason IS NULL AND event_type = 'purchase'",
    )
    return (n, of) if 0 < n < of else (0, 0)


def unpriced_purchases(con: duckdb.DuckDBPyConnection, src: Source, typed: str) -> int:
    """The file's purchases when none of them has an amount or a price (0 otherwise): the file
    sends no money, or it sits in a column no name matched (WooCommerce's `line_total`, a
    flattened `items.price`), and spend would read 0 for every buyer, unsaid (helper-27)."""
    if src.name != "events":
        return 0
    purchases, priced = one_row(
        con,
        f"SELECT count(*), count(amount) + count(price) FROM {typed} "
        "WHERE _reason IS NULL AND event_type = 'purchase'",
    )
    return purchases if purchases and not priced else 0


def empty_columns(con: duckdb.DuckDBPyConnection, typed: str, read: list[str]) -> list[str]:
    """The canonical columns of `read` (fed by a file column) that are empty on every loaded line:
    a name matched the wrong column (helper-35: Amplitude's top-level `productId`, set on revenue
    events only, read as the item while the events' products sat in `event_properties`)."""
    if not read:
        return []
    counts = one_row(
        con,
        f"SELECT {', '.join(f'count({quote_ident(c)})' for c in read)} FROM {typed} "
        "WHERE _reason IS NULL",
    )
    return [c for c, n in zip(read, counts, strict=True) if n == 0]


def gender_codes(con: duckdb.DuckDBPyConnection, src: Source, typed: str) -> list[tuple[str, int]]:
    """[(code, users)] when a users file's genders are all digit codes among 0, 1, 2 and 9 and
    hold a 0: the models read them as ISO 5218 (1 male, 2 female, 0 unknown), but Tmall's
    user_info writes 0 female, 1 male, 2 unknown (helper-101: its women had no gender and its
    unknowns were all women, unsaid). Empty otherwise."""
    if src.name != "users" or "gender" not in src.column_names_lower():
        return []
    found = con.execute(
        f"SELECT trim(CAST(gender AS VARCHAR)) AS code, count(*) FROM {typed} "
        "WHERE _reason IS NULL AND gender IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    codes = {code for code, _ in found}
    if "0" not in codes or not codes <= {"0", "1", "2", "9"}:
        return []
    return [(code, n) for code, n in found]


def one_day_of_month(
    con: duckdb.DuckDBPyConnection, src: Source, typed: str, ts_format: str | None
) -> tuple[int, int] | None:
    """(the day, the months) when a `--ts-format` with a day and a month put every loaded time
    on one day of the month across months: a file of a month's first twelve days read with day
    and month swapped (Online Retail's `12/1/2010` ... `12/12/2010` by '%d/%m/%Y' loaded as the
    12th of every month of 2010, unsaid: helper-101). Every such time parses, so no line is
    quarantined to tell. Swapped, the true days are months of the true month's year: a file
    spanning years (a shop billing on the 1st) says nothing. None otherwise."""
    if not ts_format or "%d" not in ts_format or "%m" not in ts_format or not src.time_column:
        return None
    ts = quote_ident(src.time_column)
    days, day, months, years = one_row(
        con,
        f"SELECT count(DISTINCT day({ts})), min(day({ts})), count(DISTINCT month({ts})), "
        f"count(DISTINCT year({ts})) FROM {typed} WHERE _reason IS NULL",
    )
    return (day, months) if days == 1 and months > 1 and years == 1 else None


def midnight_utc(
    con: duckdb.DuckDBPyConnection, src: Source, typed: str, zone: str | None
) -> tuple[int, int, str] | None:
    """(lines, lines read on the day before, one time as read) when every loaded time is midnight
    UTC, over two days or more, and the shop's clock moved them off midnight: dates sent as Unix
    times (Amazon's Fine Food and 2014/2018 reviews write a review's date so). With a clock west
    of UTC each reads as 16:00 or 17:00 the day before (helper-102: all 598 reviewers' first and
    last days one early in America/Los_Angeles, unsaid); east of it they keep their day but are
    no dates (an hour, a session). None otherwise."""
    if not src.time_column or zone in (None, "UTC"):
        return None
    ts = quote_ident(src.time_column)
    utc = f"timezone('UTC', timezone({quote_literal(zone)}, {ts}))"
    lines, midnights, days, moved, earlier, example = one_row(
        con,
        f"SELECT count(*), count(*) FILTER (WHERE CAST({utc} AS TIME) = TIME '00:00:00'), "
        f"count(DISTINCT CAST({utc} AS DATE)), "
        f"count(*) FILTER (WHERE CAST({ts} AS TIME) <> TIME '00:00:00'), "
        f"count(*) FILTER (WHERE CAST({ts} AS DATE) < CAST({utc} AS DATE)), "
        f"strftime(min({ts}), '%Y-%m-%d %H:%M') FROM {typed} WHERE _reason IS NULL",
    )
    if lines < 10 or midnights < lines or days < 2 or not moved:
        return None
    return lines, earlier, example


def bad_times(con: duckdb.DuckDBPyConnection, typed: str) -> list[str]:
    """Up to 200 distinct unreadable times: the summary looks for the format that reads them.

    Those with a number above 12 in first or second place come first (then in text order): they
    tell day-first from month-first, and a file may hold few of them among thousands of times
    (helper-115: a sample as DISTINCT gave it missed the one 25th and asked "day or month first?").
    """
    field = r"regexp_extract(_unknown, '^\D*(\d+)\D+(\d+)', {})"
    telling = " OR ".join(
        f"coalesce(try_cast({field.format(i)} AS INTEGER) > 12, false)" for i in (1, 2)
    )
    return [
        v
        for (v,) in con.execute(
            f"SELECT DISTINCT _unknown FROM {typed} WHERE _reason = 'bad_timestamp' "
            f"ORDER BY {telling} DESC, _unknown LIMIT 200"
        ).fetchall()
    ]


def order_totals_on_lines(
    con: duckdb.DuckDBPyConnection, src: Source, typed: str
) -> tuple[int, int]:
    """(orders, of orders with several items) whose lines all carry one equal amount that is not
    their price x quantity, when that is most of them: the order's total repeated on each line
    (GA4's `ecommerce.purchase_revenue` mapped as amount: spend +13%, helper-27); else (0, 0).
    Only files that send both an amount and a price can tell."""
    if src.name != "events":
        return 0, 0
    orders, totals = one_row(
        con,
        "SELECT count(*), count(*) FILTER (WHERE one_amount AND off) FROM ("
        "SELECT count(DISTINCT amount) = 1 AS one_amount, bool_or(abs(amount - price * "
        "coalesce(quantity, 1)) > 0.005 * greatest(abs(amount), 1)) AS off "
        f"FROM {typed} WHERE _reason IS NULL AND event_type = 'purchase' AND amount IS NOT NULL "
        "AND price IS NOT NULL GROUP BY user_id, ts "
        "HAVING count(*) > 1 AND count(DISTINCT item_id) > 1)",
    )
    return (totals, orders) if orders and totals * 2 > orders else (0, 0)


# quarantine reasons that mean a value was not read: a file read the wrong way
UNREAD = ("bad_", "wrong_field_count", "early_timestamp", "future_timestamp", "lossy_id")


def cut_short(con: duckdb.DuckDBPyConnection, info: FileInfo, typed: str) -> str | None:
    """The reason the last line was quarantined for, when the file ends in the middle of it and
    a value of that line cannot be read: a copy or a download cut short (helper-37: a day's file
    40% short loaded with one quarantined line and exit code 0; helper-95: a cut inside the last
    column left `15115` of a Unix time, an early_timestamp). Not a value of another kind: a
    totals footer's label in the date column is no cut (helper-96). A cut line that still reads
    (a session id cut short) cannot be told from a file without a final line break."""
    if not info.ends_mid_line:
        return None
    rows = con.execute(
        f"SELECT _reason FROM {typed} WHERE _rec = (SELECT max(_rec) FROM {typed})"
    ).fetchall()
    cut = ("wrong_field_count", "bad_quoting", "bad_json", "bad_encoding", "early_timestamp")
    return rows[0][0] if rows and rows[0][0] in cut else None


def cut_record(con: duckdb.DuckDBPyConnection, typed: str, reason: str) -> bool:
    """The cut last line is part of a record, not an export's footer sentence, which a command
    should not fail for (`ingest_rules.footer_sql` tells them apart, on the line as sent)."""
    ((footer,),) = con.execute(
        f"SELECT coalesce(_footer, FALSE) FROM {typed} WHERE _rec = (SELECT max(_rec) FROM {typed})"
    ).fetchall()
    return reason != "wrong_field_count" or not footer
