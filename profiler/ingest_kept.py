"""What ingest reads from columns it does not load: a file's currency, order status, event and
order ids, money as sent and birthdays, kept in the typed table beside the loaded columns.

`checked_columns` picks those columns by name; `kept_warnings` turns what they hold into the
summary's warnings (mixed currencies, cents, ids sent twice, unpaid or refunded orders, thousands
read as decimals, spreadsheet birthdays). None refuses a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb

from profiler.ingest_columns import Staged, loose
from profiler.ingest_read import json_path, one_row
from profiler.ingest_rules import EXCEL_SERIALS, MONEY
from profiler.ingest_values import null_word
from profiler.sources import Source


def some_id(column: str) -> str:
    """SQL: the kept id column holds an id, not a blank, `0` or a word for no value (helper-56:
    three equal purchases with uuid `NULL` became one; helper-59: GA4's `(not set)` order)."""
    v = f"trim({column})"
    return f"nullif({v}, '') IS NOT NULL AND {v} <> '0' AND NOT {null_word(v)}"


SOME_EVENT_ID = some_id("__kept_event_id")


def dedupe_id(column: str) -> bool:
    """An event id the tool itself dedupes on (Mixpanel's and Amplitude's `insert_id`, Segment's
    and RudderStack's `messageId`): its copies are one event. A `uuid` or `event_id` may be an
    order's, repeated on each unit's line (helper-55: a unit lost), so those are only warned."""
    return _leaf(column) in ("insertid", "messageid")


def _leaf(column: str) -> str:
    """A column's last name part, lower case, letters and digits only (`properties.$insert_id`
    -> `insertid`)."""
    return re.sub(r"[^a-z0-9]", "", column.rpartition(".")[2].lower())


def repeated_ids(con: duckdb.DuckDBPyConnection, relation: str, value_sql: str) -> int:
    """Loaded lines whose event id (an ignored `$insert_id`, `message_id`, `uuid`) an earlier
    line of the file already sent, with something else: an order's items flattened, or an event
    changed on the way; each counts. Exact copies are in quarantine (`repeated_event_id`)."""
    (n,) = one_row(
        con,
        f"SELECT count({value_sql}) - count(DISTINCT {value_sql}) FROM {relation}",
    )
    return n


# currencies without minor units: their whole amounts are no sign of cents
_WHOLE_CURRENCIES = ("jpy", "krw", "vnd", "clp", "isk", "huf", "twd", "ugx", "pyg", "xaf", "xof")


def cents_suspect(
    con: duckdb.DuckDBPyConnection, src: Source, typed: str, currency_sql: str
) -> tuple[str, float] | None:
    """(currency, an amount) when every priced purchase's money is a whole number of at least
    100 and an ignored currency column names a currency with cents: Stripe's API sends 1999 usd
    for $19.99, and spend read 100x, unsaid (helper-36)."""
    if src.name != "events":
        return None
    money = "coalesce(amount, price)"
    n, whole, example = one_row(
        con,
        f"SELECT count({money}), count(*) FILTER (WHERE {money} = trunc({money}) AND {money} >= 100), "
        f"max({money}) FROM {typed} WHERE _reason IS NULL AND event_type = 'purchase'",
    )
    if not n or whole < n:
        return None
    currency = _currency(con, typed, currency_sql)
    if currency is None or currency in _WHOLE_CURRENCIES:
        return None
    return currency, example


_STRIPE_TWO_DECIMALS = ("huf", "twd", "isk", "ugx")


def _currency(con: duckdb.DuckDBPyConnection, typed: str, currency_sql: str) -> str | None:
    """The file's most frequent three-letter currency code, lower case."""
    (currency,) = one_row(
        con,
        f"SELECT mode(lower(trim(CAST({currency_sql} AS VARCHAR)))) FROM {typed} "
        f"WHERE regexp_full_match(trim(CAST({currency_sql} AS VARCHAR)), '[A-Za-z]{{3}}')",
    )
    return currency


def whole_currency(con: duckdb.DuckDBPyConnection, typed: str, currency_sql: str) -> str | None:
    """The file's currency, when it has no cents (jpy): `--minor-units` then divided whole yen
    by 100 (helper-40)."""
    currency = _currency(con, typed, currency_sql)
    # Stripe sends huf, twd, isk and ugx with two decimals like any other: not those
    return (
        currency if currency in _WHOLE_CURRENCIES and currency not in _STRIPE_TWO_DECIMALS else None
    )


def currencies(
    con: duckdb.DuckDBPyConnection, relation: str, value_sql: str
) -> list[tuple[str, int]]:
    """The values of a file's currency column (ignored: money is summed as sent), most lines
    first, when there is more than one: amounts in two currencies add up to nothing (helper-27)."""
    rows = con.execute(
        f"SELECT upper(trim(CAST({value_sql} AS VARCHAR))) AS c, count(*) AS n FROM {relation} "
        "WHERE nullif(trim(CAST(" + value_sql + " AS VARCHAR)), '') IS NOT NULL "
        "GROUP BY c ORDER BY n DESC, c LIMIT 6"
    ).fetchall()
    return rows if len(rows) > 1 else []


# helper-36: BigCommerce's `Awaiting Payment`, Stripe's `incomplete`, WooCommerce's `on-hold`
# helper-44: the same in other languages (Allegro's `Anulowane`, JTL's `Storniert`, Shopee's
# `Batal` and `Belum Bayar`, Nuvemshop's `Aguardando pagamento`), and Recharge's charges that
# were skipped, are queued for later or failed
UNPAID = (
    r"cancel|refund|return|void|fail|declin|pending|unpaid|abandon|chargeback|awaiting"
    r"|incomplete|expired|on.hold|skipped|queued|error|balance.?due"
    r"|anul|annul|storn|abgebrochen|erstatt|offen|zwrot|nieop|oczekuj|batal|belum|dikembalikan"
    r"|aguardando|pendente|pendiente|reembols|devolu|devolv|rembours|rimbors|recusad|rechaz"
    r"|abgelehnt|odrzuc|pengembalian|hủy|hoàn tiền"
    r"|取消|退款|关闭|關閉|待付款|等待买家付款|未付款|キャンセル|返金|返品|未払|취소|환불|반품|입금대기"
)


def unpaid_statuses(
    con: duckdb.DuckDBPyConnection, relation: str, value_sql: str, partial: bool = False
) -> list[tuple[str, int]]:
    """Values of a file's order status column (ignored) that say an order was not bought:
    every line still counts as a purchase, so the summary names them (helper-32). With
    `partial`, those that say it was refunded in part: bought, but not for all its money, which
    counts in full (helper-57: Shopify's partially_refunded was told to go whole; helper-58:
    then went unsaid)."""
    text = f"lower(CAST({value_sql} AS VARCHAR))"
    which = f"contains({text}, 'partial')" if partial else f"NOT contains({text}, 'partial')"
    return con.execute(
        f"SELECT trim(CAST({value_sql} AS VARCHAR)) AS v, count(*) AS n FROM {relation} "
        f"WHERE regexp_matches({text}, '{UNPAID}') AND {which} "
        "GROUP BY v ORDER BY n DESC, v LIMIT 5"
    ).fetchall()


# a currency or an order status column, as exports name them in English and elsewhere
# (helper-44: Allegro's `Waluta`, JTL's `Währung`, Mercado Livre's `Estado` said nothing)
CURRENCY_WORDS = ("currency", "waluta", "währung", "waehrung", "moeda", "moneda", "divisa",
                  "devise", "valuta", "mata uang", "货币", "币种", "幣別", "通貨", "통화")  # fmt: skip


STATUS_KEYS = ("status", "status_2", "status_3")  # `checked_columns`' names for them


STATUS_WORDS = ("status", "state", "estado", "stato", "statut", "situação", "situacao",
                "zustand", "状态", "狀態", "ステータス", "상태")  # fmt: skip


def _ignored_column(ignored: list[str], *words: str, never: tuple[str, ...] = ()) -> str | None:
    """The ignored column whose name holds the first of `words` that one holds (`currency_iso`,
    `Order Status` before `order_state`), never one holding a word of `never` (`currency_rate`,
    `customer_state`)."""
    found = _ignored_columns(ignored, *words, never=never)
    return found[0] if found else None


def _ignored_columns(ignored: list[str], *words: str, never: tuple[str, ...] = ()) -> list[str]:
    """Every such column, the one `_ignored_column` names first. English words match inside a
    name (`currency_iso`, `OrderStatus`), CJK ones too (`订单状态`); the others only as a whole
    word (helper-47: Italian `valutazione`, a rating, read as `valuta`, a currency)."""
    out: list[str] = []
    for word in words:
        inside = word in _INSIDE_WORDS or any(ord(ch) >= 0x2E80 for ch in word)
        for c in ignored:
            name = c.lower()
            # else a whole word, the end of a compound (German `Bestellwährung`) or a part of a
            # camelCase name (`estadoPago`), never the start of another word (`valutazione`)
            parts = re.split(r"[\W_]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", c).lower())
            found = (
                word in name
                if inside
                else any(p == word or p.endswith(word) for p in parts if p)
                or (" " in word and word.replace(" ", "") in re.sub(r"[\W_]+", "", name))
            )
            if found and not any(n in name for n in never) and c not in out:
                out.append(c)
    return out


_INSIDE_WORDS = ("currency", "status", "state")


def checked_columns(src: Source, ignored: list[str], readable: set[str]) -> dict[str, str]:
    """The ignored columns the file's warnings read, by what they hold: a currency, an order
    status, an event id. JSON lines extract them with the used keys, in the one pass over each
    line's JSON (helper-38: one more pass per warning made a 1M-line ingest 80% slower)."""
    found: dict[str, str | None] = {}
    if "price" in src.column_names_lower():  # events and items send money; feedback none
        found["currency"] = _ignored_column(
            ignored, *CURRENCY_WORDS, never=("rate", "amount", "total", "kurs", "taxa", "tasa")
        )
    if src.name == "events":
        # every status column, up to three: Nuvemshop sends the order's, the payment's and the
        # shipping's, and only the first was looked at (helper-48: `Pendente` payments counted)
        statuses = _ignored_columns(
            ignored, *STATUS_WORDS,
            # a fulfilment's `pending` is a paid order not shipped yet (helper-57)
            never=("customer", "billing", "shipping", "province", "region", "country", "fulfil",
                   "deliver", "shipment"),
        )[:3]  # fmt: skip
        for n, column in enumerate(statuses, 1):
            found[STATUS_KEYS[n - 1]] = column
        # the whole name only: an orders file's `order_uuid` repeats on each line of an order,
        # and a `device_uuid` on each event of a device (helper-38)
        names = ("insertid", "messageid", "eventid", "uuid", "eventuuid")
        found["event_id"] = next((c for c in ignored if _leaf(c) in names), None)
        # an order's id: GA4's transaction_id, sent again when the confirmation page reloads
        orders = ("transactionid", "orderid", "ordernumber", "ecommercetransactionid")
        found["order_id"] = next((c for c in ignored if _leaf(c) in orders), None)
    # only what the file has (helper-41: a name the summary made up)
    return {what: c for what, c in found.items() if c is not None and c in readable}


ITEM_LISTS = ("items", "products", "product1")  # and names ending so: `line_items`,
# `properties_products`, Snowplow's `contexts_com_snowplowanalytics_snowplow_ecommerce_product_1`


def item_lists(
    con: duckdb.DuckDBPyConnection, src: Source, staged: Staged, ignored: list[str]
) -> tuple[str, int] | None:
    """An ignored JSON key named like a list of items that holds one: an order's products nested
    in one line (Segment's and Mixpanel's `properties.products`) load as one event without them,
    their items, brands and categories unread (helper-35); a Parquet list is refused outright.
    A CSV or Parquet text column of them (RudderStack's warehouse `products`) alike (helper-45)."""
    if src.name != "events":
        return None
    if staged.fault != "__json_fault":
        for c in ignored:
            if loose(c).endswith(ITEM_LISTS) and c in staged.values:
                v = f"CAST({staged.values[c]} AS VARCHAR)"
                (n,) = one_row(
                    con,
                    f"SELECT count(*) FROM {staged.relation} WHERE starts_with(ltrim({v}), '[') "
                    f"AND json_valid({v}) AND json_type({v}) = 'ARRAY' AND json_array_length({v}) > 0",
                )
                if n:
                    return c, n
        return None
    # an object none of whose keys was read is ignored whole (`properties`): its keys too
    inner = [k for k in staged.paths if k.partition(".")[0] in ignored]
    for c in [*ignored, *inner]:
        if loose(c.rpartition(".")[2]).endswith(ITEM_LISTS):
            path = staged.paths.get(c) or json_path(c)
            (n,) = one_row(
                con,
                f"SELECT count(*) FROM {staged.relation} WHERE __json_fault0 IS NULL "
                # an empty list holds no item to lose (helper-67: GA4's page_views, `[]`)
                f"AND json_type(_raw, {path}) = 'ARRAY' AND json_array_length(_raw, {path}) > 0",
            )
            if n:
                return c, n
    return None


@dataclass
class Kept:
    """What the ignored columns of `checked_columns`, kept in the typed table, say."""

    currencies: list[tuple[str, int]]
    cents: tuple[str, float] | None
    whole_in_minor_units: str | None  # --minor-units given for a currency without cents
    repeated_ids: tuple[str, int] | None
    unpaid: list[tuple[str, list[tuple[str, int]]]]  # (status column, its unpaid values)
    partly_refunded: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)
    serial_birthdays: tuple[int, str] | None = None  # (count, one as sent)
    yearless_birthdays: tuple[int, list[str]] | None = None  # (count, some as sent)
    # (column, count, one as sent): money whose decimal parts mostly have three digits
    thousands: list[tuple[str, int, str]] = field(default_factory=list)
    # (column, purchase lines, orders sent again, lines, orders spread over times):
    # an order id whose purchases come at two times or more
    orders_again: tuple[str, int, int, int, int] | None = None


def kept_warnings(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    typed: str,
    checked: dict[str, str],
    minor_units: bool,
    decimal_comma: bool = False,
    serial_days: bool = True,
) -> Kept:
    """The warnings read from the kept columns (`typed_query(kept=...)`): mixed currencies,
    money in cents, event ids sent twice, orders whose status says they were not bought."""
    currency = "__kept_currency" if "currency" in checked else None
    loaded = f"(SELECT __kept_event_id FROM {typed} WHERE _reason IS NULL AND {SOME_EVENT_ID})"
    repeats = repeated_ids(con, loaded, "__kept_event_id") if "event_id" in checked else 0
    unpaid = [
        (checked[key], found)
        for key in STATUS_KEYS
        if key in checked and (found := unpaid_statuses(con, typed, f"__kept_{key}"))
    ]
    partly = [
        (checked[key], found)
        for key in STATUS_KEYS
        if key in checked and (found := unpaid_statuses(con, typed, f"__kept_{key}", True))
    ]
    return Kept(
        currencies=currencies(con, typed, currency) if currency else [],
        cents=cents_suspect(con, src, typed, currency) if currency and not minor_units else None,
        whole_in_minor_units=whole_currency(con, typed, currency)
        if currency and minor_units
        else None,
        repeated_ids=(checked["event_id"], repeats) if repeats else None,
        unpaid=unpaid,
        partly_refunded=partly,
        serial_birthdays=serial_birthdays(con, typed)
        if "birthday" in checked and serial_days
        else None,
        yearless_birthdays=yearless_birthdays(con, typed) if "birthday" in checked else None,
        thousands=[
            found
            for money in MONEY
            if f"sent_{money}" in checked
            and (found := three_decimals(con, typed, money, decimal_comma))
        ],
        orders_again=orders_again(con, typed, checked["order_id"])
        if "order_id" in checked
        else None,
    )


def orders_again(
    con: duckdb.DuckDBPyConnection, typed: str, column: str
) -> tuple[str, int, int, int, int] | None:
    """(column, lines, orders, spread lines, spread orders): purchase lines of an order id that
    the file sends at more than one time. A later line with an item the order had at an earlier
    time is the order sent again (GA4 sends a purchase again when its confirmation page is
    reloaded; helper-51: 8 purchases counted twice, unsaid); one with another item is the same
    order's lines spread over times (helper-61: an order across midnight made a one-time buyer
    a champion, and was told to leave its real lines out). An order's items at one time are one
    order, and so are lines within 2 seconds of its first (helper-65: Retailrocket's lines of an
    order 137 ms apart, whose repeated item is a unit); spread lines are said only on another
    day than the order's first, where they change purchase days."""
    again, orders, spread, spread_orders = one_row(
        con,
        # per user: an id GA4 writes `(not set)` or a 0 is no order (helper-59: 39 purchases
        # of 39 users were one order to leave out)
        f"WITH p AS (SELECT user_id AS u, __kept_order_id AS o, ts, item_id AS i FROM {typed} "
        f"WHERE _reason IS NULL AND event_type = 'purchase' AND {some_id('__kept_order_id')}), "
        "many AS (SELECT u, o, min(ts) AS first FROM p GROUP BY u, o HAVING count(DISTINCT ts) > 1), "
        # a line within 2 seconds of the first is never the order sent again, but counts on
        # its day (helper-67: 137 ms across midnight made two purchase days, unsaid)
        "later AS (SELECT l.u, l.o, CAST(l.ts AS DATE) <> CAST(m.first AS DATE) AS other_day, "
        "l.ts >= m.first + INTERVAL 2 SECOND AND EXISTS (SELECT 1 FROM p AS q WHERE q.u = l.u "
        "AND q.o = l.o AND q.ts < l.ts AND q.i IS NOT DISTINCT FROM l.i) AS sent_again "
        "FROM p AS l JOIN many AS m ON m.u = l.u AND m.o = l.o AND l.ts > m.first), "
        # an order whose later lines bring any new item is spread, all its later lines
        # (helper-66: one order told both to leave its later lines out and to keep them)
        "orders AS (SELECT u, o, bool_and(sent_again) AS again, count(*) AS n, "
        "count(*) FILTER (WHERE other_day) AS days FROM later GROUP BY u, o) "
        "SELECT coalesce(sum(n) FILTER (WHERE again), 0), count(*) FILTER (WHERE again), "
        "coalesce(sum(days) FILTER (WHERE NOT again), 0), "
        "count(*) FILTER (WHERE NOT again AND days > 0) FROM orders",
    )
    return (column, again, orders, spread, spread_orders) if again or spread else None


def three_decimals(
    con: duckdb.DuckDBPyConnection, typed: str, money: str, decimal_comma: bool
) -> tuple[str, int, str] | None:
    """(column, count, `one as sent read as the number`) when most loaded values of a money
    column with a decimal part have exactly three digits in it: thousands read as decimals? An
    Indonesian `49.000` read as 49 without --decimal-comma, a won `129,000` as 129 with it
    (helpers 44, 45), unsaid; a `15.500` or a `12.50` among them does not make them decimals
    (helper-48). A shop whose prices have two decimals, and a stray three, is not told; nor is
    `12.50€` (helper-49: a currency after the digits counted as decimals)."""
    v = f"__kept_sent_{money}"
    mark = "," if decimal_comma else "\\."
    three = f"regexp_matches({v}, '[0-9]{mark}[0-9]{{3}}[^0-9]{{0,4}}$')"
    other = f"regexp_matches({v}, '{mark}([0-9]{{1,2}}|[0-9]{{4,}})[^0-9]{{0,4}}$')"
    # decided on the first 20,000 loaded lines, counted on all only when they say thousands: the
    # two regexes on every value of a 1M-line file took 0.9 s
    threes, others = one_row(
        con,
        f"SELECT count(*) FILTER (WHERE {three}), count(*) FILTER (WHERE {other}) "
        f"FROM (SELECT {v} FROM {typed} WHERE _reason IS NULL LIMIT 20000)",
    )
    if not threes or threes <= others:
        return None
    n, others, example = one_row(
        con,
        f"SELECT count(*) FILTER (WHERE {three}), count(*) FILTER (WHERE {other}), "
        f"arg_min(trim({v}) || ' read as ' || CAST({money} AS VARCHAR), {v}) FILTER (WHERE {three}) "
        f"FROM {typed} WHERE _reason IS NULL",
    )
    return (money, n, example) if n > others else None


def serial_birthdays(con: duckdb.DuckDBPyConnection, typed: str) -> tuple[int, str] | None:
    """(count, one as sent) of the birthdays read as spreadsheet serial days: a date
    column saved as General (32874 for 1990-01-01) gave a birth year of 32874, NULL in the
    profile, unsaid. Said, since a five-digit number could be meant otherwise."""
    lo, hi = EXCEL_SERIALS
    sent = "TRY_CAST(__kept_birthday AS DOUBLE)"
    n, example = one_row(
        con,
        f"SELECT count(*), min(trim(__kept_birthday)) FROM {typed} "
        f"WHERE _reason IS NULL AND {sent} BETWEEN {lo} AND {hi} "
        "AND regexp_full_match(trim(__kept_birthday), '[1-9][0-9]{4}(\\.0+)?')",
    )
    return (n, example) if n else None


def yearless_birthdays(con: duckdb.DuckDBPyConnection, typed: str) -> tuple[int, list[str]] | None:
    """(count, up to 3 as sent) of birthdays that give no year in 1900..2030 (Square's
    `0000-03-15`, an ambiguous `010203`): the profile reads them as unknown; said, not silent
    (helpers 44, 45)."""
    n, examples = one_row(
        con,
        f"SELECT count(*), list(DISTINCT trim(__kept_birthday) ORDER BY trim(__kept_birthday))[:3] "
        f"FROM {typed} WHERE _reason IS NULL AND birth_year NOT BETWEEN 1900 AND 2030",
    )
    return (n, examples) if n else None
