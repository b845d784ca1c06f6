"""The ingest summary: what a loaded file said, in lines a person reads after `profiler ingest`
(and `watch`): where each column came from, what went to quarantine and why, and what to do
about each warning (the quarantine's lines: `ingest_hints`). It formats
`ingest_result.IngestResult`; it decides nothing.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from profiler.ingest_hints import clipped, guest_map, quarantine_lines
from profiler.sqltext import literal as quote_literal
from profiler.sqltext import quote as quote_ident


def describe_ingest(result) -> str:
    """The summary `profiler ingest` prints: what was loaded and how, then each warning with its
    way out, then the quarantine by reason with hints; topic by topic, in this order."""
    if result.duplicate:
        return (
            f"{result.file}: already ingested (same content, batch {result.duplicate_of}); "
            "nothing loaded. To read it again another way (--ts-format, --map, --event-type), "
            "ingest it with --replace: the earlier load is taken out"
        )
    sections = (
        _what_loaded,
        _units_and_clock,
        _orders_and_ids,
        _file_shape,
        _scales_and_times,
        _columns_and_items,
        _money,
        _repeats_and_birthdays,
        quarantine_lines,
    )
    return "\n".join(line for section in sections for line in section(result))


def _what_loaded(result) -> list[str]:
    """The counts, and the columns read (with their file columns)."""
    lines = [
        f"{result.source}: {result.file}: {result.loaded:,} loaded, {sum(result.quarantined.values()):,} quarantined of {result.lines:,} lines (batch {result.batch_id})"
    ]
    if result.lines == 0:  # helper-69: a day's header-only file went by unsaid
        lines.append(
            "  warning: the file holds a header and no line: nothing new from it (a day without "
            "data, or an export that failed upstream?)"
        )
    if result.replaced:
        lines.append(
            f"  replaced: batch {result.batch_id}: its earlier rows left raw_{result.source} and "
            "quarantine and this file's took their place; the next build recomputes the models "
            "in full"
        )
    # every column read, the renamed ones with their file column (helper-36: an `amount` read
    # under its own name went unsaid)
    read = [
        (f"{t} <- {c}" if t != c else t)
        + (f" (else {result.fallbacks[t]})" if t in result.fallbacks else "")
        for t, c in result.columns.items()
    ]
    if read:
        lines.append(f"  read: {', '.join(read)}")
    return lines


def _units_and_clock(result) -> list[str]:
    """Money in minor units or cents, and Amplitude's UTC times."""
    lines: list[str] = []
    zone = result.reading.time_zone or "UTC"
    names = {*result.ignored, *result.columns.values()}
    if (
        zone != "UTC"
        and not result.reading.times_utc
        and result.columns.get("ts") in ("event_time", "client_event_time")
        and {"amplitude_id", "server_upload_time"} & names
    ):  # helper-51: every user's hours shifted, with only a passing hint
        lines.append(
            f"  warning: Amplitude writes {result.columns['ts']} in UTC without saying so, and "
            f"it was read as the shop's clock ({zone}): send the file again with --replace "
            "--times-utc"
        )
    if result.reading.minor_units:
        lines.append("  money: sent in minor units (cents), divided by 100")
    if result.whole_in_minor_units:
        lines.append(
            f"  warning: --minor-units divided the money by 100, but the currency is "
            f"{result.whole_in_minor_units}, which has no cents: send the file again without it "
            "(--replace)"
        )
    if result.cents:
        currency, example = result.cents
        lines.append(
            f"  warning: every purchase's money is a whole number (up to {example:,.0f}) and the "
            f"currency is {currency}: sent in cents? --minor-units divides it by 100 (with "
            "--replace for this file)"
        )
    return lines


def _orders_and_ids(result) -> list[str]:
    """Orders or event ids sent again, item lists, users known by address, updates out of
    order."""
    lines: list[str] = []
    column, n, orders, spread, spread_orders = result.orders_again or ("", 0, 0, 0, 0)
    if n:
        lines.append(
            f"  warning: {orders:,} order(s) of {column!r} (ignored) come again later in the file "
            f"({n:,} purchase line(s) repeat an item of the order at a later time: a confirmation "
            "page reloaded?); each counts as a purchase again: leave the later copies out"
        )
    if spread:
        lines.append(
            f"  warning: {spread_orders:,} order(s) of {column!r} (ignored) have items on a later "
            f"day than their first ({spread:,} purchase line(s): orders across midnight?); each "
            "day counts as a purchase day of its own (purchase days, rfm_frequency): give an "
            "order's lines its first time to count it on one day"
        )
    if result.repeated_ids:
        column, n = result.repeated_ids
        lines.append(
            f"  warning: {n:,} line(s) repeat an event id {column!r} (ignored) of an earlier line "
            "of the file: each line counts (an order's lines under its id? one event sent twice "
            "counts twice: leave the copies out)"
        )
    if result.item_lists:
        key, n = result.item_lists
        lines.append(
            f"  warning: {key!r} (ignored) holds a list of items on {n:,} line(s): they load as "
            "one event each, their items, prices and categories unread; flatten the file, one "
            "line per item"
        )
    found, of = result.by_address
    if found:
        what = (
            "of this file's users are known to events or feedback by their e-mail address"
            if result.source == "users"
            else "of this file are the e-mail address of a user registered under another id"
        )
        lines.append(
            f"  warning: {found:,} of {of:,} user id(s) {what}: the profile keeps them apart, one "
            "person as two users; read one id in both (--map user_id=COLUMN, e.g. the customers "
            "file's Email)"
        )
    if result.by_line_order:
        column, ids = result.by_line_order
        lines.append(
            f"  warning: {ids:,} {result.source} come on several lines with different values, their "
            f"last line not their newest by {column!r} (ignored): the later line wins, not the "
            f"later {column}; sort the file by it, oldest first, and send it in place of this one "
            f"with --replace-batch {result.batch_id}"
        )
    return lines


def _file_shape(result) -> list[str]:
    """A file cut short, empty or misread columns, and the words read as event types."""
    lines: list[str] = []
    if result.cut_short and result.cut_record:
        lines.append(
            f"  warning: the file ends in the middle of its last line, quarantined as "
            f"{result.cut_short}: was it cut short? Send it whole with --replace-batch "
            f"{result.batch_id}"
        )
    elif result.cut_short:  # helper-59: a footer was called a cut
        lines.append(
            f"  the file's last line, without a line break, is no record (a footer?): quarantined "
            f"as {result.cut_short}"
        )
    if result.empty:
        said = ", ".join(f"{c} <- {result.columns[c]}" for c in result.empty)
        where = "line that would load" if result.refused else "loaded line"  # helper-101
        lines.append(
            f"  warning: read but empty on every {where}: {said}; is it in another column "
            "(--map names it)?"
        )
    n, of = result.itemless
    if n and not result.purchase_words[0]:  # two purchase words: said below, with the fix
        lines.append(
            f"  warning: {n:,} of {of:,} purchase lines have no item while the others have one "
            "(an order's summary line, a tip, a fee, or an item with its id in another column?): "
            "each counts as a purchase, its money as spend; leave out those that are none"
        )
    n, example = result.product_strings
    if n:
        lines.append(
            f"  warning: {n:,} item id(s) are product lists like Adobe Analytics' ({example!r}): "
            "each loads as one item made of the list; flatten the file, one line per product "
            "with its sku as item_id"
        )
    batch, gone = result.dropped
    if gone:
        others = f" (ignored here: {', '.join(result.ignored)})" if result.ignored else ""
        lines.append(
            f"  warning: batch {batch}, a file like this one, sent {', '.join(gone)}; this file "
            f"has no column for it{others}: renamed? --map names it (with --replace)"
        )
    if result.read_as:  # built-in words (`pv`, Coveo's `click`) as much as --event-type's
        words = ", ".join(f"{w!r} as {t} {n:,}" for w, t, n in result.read_as)
        lines.append(f"  read as: {words}")
    if result.type_words:  # helper-102: Coveo's product_action beside its event_type
        column, found = result.type_words
        words = ", ".join(f"{w!r} as {t} {n:,}" for w, t, n in found[:6])
        sent = result.columns.get("event_type", "event_type")
        lines.append(
            f"  warning: the ignored column {column!r} holds words of more event types than "
            f"{sent!r} ({words}): is it the event type? --map event_type='{column}' "
            "reads it (--event-type VALUE=TYPE names its other words); send the file again so, "
            "with --replace"
        )
    return lines


def _scales_and_times(result) -> list[str]:
    """Rating scales, the shop's clock and times on another one."""
    lines: list[str] = []
    scale = result.reading.rating_scale
    if result.scale_remembered:  # helper-44: a stars feed read at an NPS feed's scale, unsaid
        lines.append(
            f"  warning: ratings read on a scale of {scale} points, as ceil(rating x 5 / {scale}) "
            "stars: the scale this warehouse's feedback was last sent with, since this file gave "
            "none. If its ratings are stars, ingest it again with --rating-scale 5 --replace; "
            "give --rating-scale with every file to say which"
        )
    elif result.source == "feedback" and scale not in (None, 5):
        lines.append(
            f"  ratings: a scale of {scale} points, read as ceil(rating x 5 / {scale}) stars"
        )
    timed = any(t in result.columns for t in ("ts", "signup_ts"))  # helper-61: items said it
    if result.reading.time_zone not in (None, "UTC") and not result.zone_unset and timed:
        naive = (
            "read as UTC and converted"
            if result.reading.times_utc
            else "taken as shop time (--times-utc if they are UTC)"
        )
        lines.append(
            f"  times: shop time, {result.reading.time_zone}: Unix and zoned times converted, "
            f"times without a zone {naive}"
        )
    if (
        result.int96
        and result.reading.time_zone not in (None, "UTC")
        and not result.reading.times_utc
    ):
        lines.append(
            f"  warning: {', '.join(result.int96)} read from Parquet INT96 times (Spark's and "
            "Hive's legacy type), which carry no zone: taken as shop time; Spark writes them as "
            "UTC: if so, ingest the file again with --times-utc --replace"
        )
    if result.one_day:
        day, months = result.one_day
        lines.append(
            f"  warning: every loaded time falls on day {day} of a month, over {months} months of "
            f"one year: day and month swapped? --ts-format {result.reading.ts_format!r} reads "
            "a file of a month's first twelve days so without an error; if so, send it again "
            "with the day and month the other way round and --replace"
        )
    if result.midnight_utc:  # helper-102: Amazon's review dates as Unix midnights
        lines_, earlier, example = result.midnight_utc
        column = result.columns.get("ts", "ts")
        lines.append(
            f"  warning: all {lines_:,} times are midnight UTC: dates sent as Unix times? The "
            f"shop's clock, {result.reading.time_zone}, reads them as {example} and the like"
            + (f", {earlier:,} of them on the day before" if earlier else "")
            + "; to keep their days, send the dates as dates (DuckDB: COPY (SELECT * REPLACE "
            f"(CAST(timezone('UTC', to_timestamp({quote_ident(column)})) AS DATE) AS "
            f"{quote_ident(column)}) FROM {quote_literal(result.file)}) TO 'dated.csv'; "
            f"milliseconds: / 1000) with --replace-batch {result.batch_id}"
        )
    if result.late_signups:
        after, n, hours = result.late_signups
        utc = result.reading.time_zone not in (None, "UTC") and not result.reading.times_utc
        lines.append(
            f"  warning: {after:,} of {n:,} users with events signed up after their first event, "
            f"by a median of {hours:.1f} hours: are the signup times on another clock? "
            + (
                "If they are UTC, ingest the file again with --times-utc --replace"
                if utc
                else "signup_ts is read as the shop's time"
            )
        )
    if result.zone_unset:
        lines.append(
            f"  times: nothing loaded, so the shop's clock is not set yet: give --time-zone "
            f"{result.zone_unset} again when the file goes in again"
        )
    if result.sets_utc:
        lines.append(
            "  times: this warehouse's first load sets the shop's clock to UTC (no --time-zone): "
            "days, hours and sessions follow it, and it cannot change later; a shop on another "
            "clock starts a new warehouse with --time-zone on its first ingest"
        )
    return lines


def _columns_and_items(result) -> list[str]:
    """Columns ignored or named twice, content loaded as another source, e-mail ids, unknown
    items."""
    lines: list[str] = []
    if result.ignored:  # a column a shop meant as its user id or city should not vanish unsaid
        lines.append(
            f"  ignored (no canonical column; --map names one): {', '.join(result.ignored)}"
        )
    for target, column in result.columns.items():  # Mercado Livre's two `Estado` (helper-44)
        copy = next((c for c, of in result.header_copies.items() if of == column), None)
        if copy:
            lines.append(
                f"  warning: the header names {column!r} more than once: {target} reads the first; "
                f"--map {target}='{copy}' reads the second"
            )
    # a load of no line changed nothing (helper-61: "now the newest values" of nothing loaded)
    for source, batch in result.also_as if result.read else ():
        fed = [c for c in result.columns if c not in ("user_id", "item_id")]
        lines.append(
            f"  warning: the same content is loaded as {source} too (batch {batch}): is it "
            f"{result.source} as well? "
            + (
                f"Its {', '.join(fed)} are now the newest values of those {result.source}"
                if fed
                # helper-80: "which change no value" was false: the users feed is what registers
                else f"Its ids alone are now {result.source} of the shop, with no other value"
            )
        )
    if result.email_ids:
        lines.append(
            f"  {result.email_ids:,} line(s) had an e-mail address as the user id: stored as its "
            "pseudonym, like the users' email column (`profiler show ADDRESS` finds the user)"
        )
    padded = result.padded_ids
    for ids in (padded, result.padded_items):  # helper-101: Ta Feng's 01104905 and 1104905
        if not ids:
            continue
        users = ids.column == "user_id"
        lines.append(
            f"  warning: {ids.found:,} of this file's {ids.of:,} {'user' if users else 'item'} "
            f"ids match ids in {ids.table} only with leading zeros added or cut "
            f"({ids.example!r} here, {ids.loaded_as!r} there): the same "
            f"{'people' if users else 'products'} written two ways (a spreadsheet or a number "
            "column drops leading zeros)? "
            + (
                "Each way is a profile of its own"
                if users
                else "Those events get no category, brand or catalogue price"
            )
            + ": write the ids one way in both feeds and send the corrected file with "
            f"--replace-batch {result.batch_id}"
        )
    strangers = result.stranger_ids
    if strangers and not padded:  # helper-102: Olist's reviews keyed by order
        lines.append(
            f"  warning: {strangers.known:,} of this file's {strangers.of:,} user ids are users "
            f"of the events or users loaded ({strangers.example!r} here, {strangers.users_example!r} "
            "there): is user_id an order's or a review's id? Each would be a profile of "
            "its feedback alone, and the buyers' ratings stay empty; key the file by the events' "
            "user ids (Olist's reviews: join order_id to the orders' customer_unique_id) and send "
            f"it with --replace-batch {result.batch_id}"
        )
    missing = result.unknown_items
    if missing:
        whose = "these events'" if missing.this_file else "the events' (all loaded)"
        lines.append(
            f"  warning: {missing.missing:,} of {whose} {missing.of:,} item ids are not in the "
            f"items loaded (e.g. {missing.example!r}; the items have {missing.catalogue_example!r}"
            "): written differently in the two files (a leading zero, a prefix)? Such events get "
            "no category, brand or price from the items"
        )
    return lines


def _money(result) -> list[str]:
    """What the money says: units sent as money, order totals, currencies, guests, unpaid or
    refunded orders, thousands separators."""
    lines: list[str] = []
    if result.amount_counts:
        largest, money = result.amount_counts
        sent = result.columns["amount"]
        lines.append(
            f"  warning: amount <- {sent!r} holds whole numbers up to {largest:,} only, and "
            f"{money!r} (ignored) holds larger ones: is {sent!r} the units bought? Then send the "
            f"file again with --map quantity='{sent}' --map amount='{money}' (a line's money) or "
            f"price='{money}' (a unit's), with --replace"
        )
    totals, orders = result.order_totals
    if totals:
        lines.append(
            f"  warning: in {totals:,} of {orders:,} orders of several items, every line carries "
            f"the same {result.columns.get('amount')!r}, not its price x quantity: the order's "
            "total on each line? Spend counts it once per line. Map the line's money instead, or "
            "leave amount out with --map amount= (price x quantity is used), and ingest the file again "
            "with --replace"
        )
    if result.currencies:
        lines.append(
            "  warning: amounts in more than one currency ("
            + ", ".join(f"{c} {n:,}" for c, n in result.currencies)
            + " lines); profiler sums money as sent, so spend mixes them: convert to one "
            "currency before ingesting, or send each currency to a warehouse of its own"
        )
    for user, n, busiest in result.catch_all:
        lines.append(
            f"  warning: user id {user!r} has {n:,} lines, more than 3x any other user "
            f"({busiest:,}): guest checkouts written as one customer (WooCommerce's 0)? Then they "
            f"merge strangers into one profile: map a column that names each guest "
            f"({guest_map(result)}) and ingest the file again with --replace"
        )
    for column, found in result.unpaid:
        # an item's status is its line's (Amazon's item-status: helper-58), an order's may be
        # on its first line only (Shopify's Financial Status)
        item = re.search(r"item|line|product|artikel|producto|produto", column, re.I)
        what = (
            "leave those lines out"
            if item
            else "leave those orders out, every line of them (Shopify writes the status on an "
            "order's first line only)"
        )
        lines.append(
            f"  warning: {column!r} (ignored) says some orders were not bought ("
            + ", ".join(f"{clipped(v)!r} {n:,}" for v, n in found)
            + f" lines), yet every line counts as a purchase: {what}, and ingest the file in "
            f"place of this one with --replace-batch {result.batch_id}"
        )
    for column, found in result.partly_refunded:
        lines.append(
            f"  warning: {column!r} (ignored) says some orders were refunded in part ("
            + ", ".join(f"{clipped(v)!r} {n:,}" for v, n in found)
            + " lines): they count in full, the refunded money is not taken off"
        )
    for column, n, sent in result.thousands:
        if result.reading.decimal_comma:
            lines.append(
                f"  warning: {result.columns[column]!r} ({column}): most decimal parts have three "
                f"digits ({n:,} value(s); {sent}): if its commas group thousands (won, yen, peso), "
                "send the file again with --decimal-point instead of --decimal-comma, with --replace"
            )
        else:
            lines.append(
                f"  warning: {result.columns[column]!r} ({column}): most decimal parts have three "
                f"digits ({n:,} value(s); {sent}): if its dots group thousands (Rp 49.000 is "
                "forty-nine thousand), send the file again with --decimal-comma --replace"
            )
    return lines


def _repeats_and_birthdays(result) -> list[str]:
    """Purchases sent twice or by two feeds, birthdays read as unknown or as serial days,
    unpriced purchases, dates sent again."""
    lines: list[str] = []
    n, batches = result.purchases_twice
    if n:
        lines.append(
            f"  warning: {n:,} purchase(s) share user, time and item with purchases batch(es) "
            f"{', '.join(map(str, batches))} loaded, yet differ in price, quantity or amount: the "
            "same orders from two feeds (a clickstream's purchases and an orders export)? Both "
            "count; send each purchase from one feed only (--event-type VALUE=skip leaves a "
            "feed's purchase lines out)"
        )
    n, batches = result.purchases_resent
    if n:
        lines.append(
            f"  note: {n:,} purchase line(s) equal purchase lines of batch(es) "
            f"{', '.join(map(str, batches))} in every column: the build counts each once, as an "
            "export sent again; if the files are parts of one export (a parallel unload's "
            "data_0_0_0, data_0_0_1), such lines are separate units: join the parts into one "
            "file (DuckDB: COPY (FROM read_csv('data_*.csv.gz')) TO 'all.csv') and load it too "
            "(each line then counts as often as the joined file sends it)"
        )
    n, words = result.purchase_words
    if n:
        lines.append(
            f"  warning: at {n:,} moment(s) a user has purchases read from "
            + " and ".join(map(repr, words))
            + " at once: an order and its items? Each counts; keep the lines of one (--event-type "
            f"{words[0]!r}=skip leaves the lines with the fewest items out)"
        )
    if result.yearless_birthdays:
        n, sent = result.yearless_birthdays
        lines.append(
            f"  note: {n:,} birthday(s) give no year between 1900 and 2030 ("
            + ", ".join(map(repr, sent))
            + "): the profile reads their birth years as unknown (six digits are read as YYMMDD "
            "or DDMMYY only where one pair can only be a year)"
        )
    if result.gender_codes:
        lines.append(
            "  note: gender codes read as ISO 5218, 1 male, 2 female, 0 and 9 unknown ("
            + ", ".join(f"{code!r} {n:,}" for code, n in result.gender_codes)
            + "); if this feed's codes mean otherwise (Tmall's user_info: 0 female, 1 male, 2 "
            "unknown; JD.com's JData sex: 0 male, 1 female, 2 unknown), recode them to words "
            f"(f, m) and send the file again with --replace-batch {result.batch_id}"
        )
    if result.serial_birthdays:
        n, sent = result.serial_birthdays
        day = date(1899, 12, 30) + timedelta(days=int(float(sent)))
        lines.append(
            f"  note: {n:,} birthday(s) are the numbers a spreadsheet stores dates as ({sent} is "
            f"{day}), read as those dates' years; if they mean something else, send the column "
            "as dates"
        )
    if result.unpriced:
        lines.append(
            f"  warning: none of the {result.unpriced:,} purchases has an amount or a price: they "
            "take the items' prices where an items file gives them, else spend counts them as 0. "
            "If the file has the money in another column, --map amount=COLUMN (the line's money) "
            "or price=COLUMN (a unit's), and ingest it again with --replace"
        )
    if result.dated_again:
        lines.append(
            f"  warning: {result.dated_again:,} line(s) sent as dates equal lines already loaded "
            "on the same dates; equal lines of a date are separate orders, so both count. If this "
            "file sends earlier orders again, they now count twice: send it again without the "
            f"days sent before, with --replace-batch {result.batch_id}"
        )
    return lines
