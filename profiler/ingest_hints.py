"""The ingest summary's quarantine lines: each reason with the values it caught and the way out
(the option that reads them, the format that fits the times, the column that names a guest).
"""

from __future__ import annotations

import re

from profiler.ingest_ids import GUEST_PATTERNS
from profiler.sources import EVENT_TYPES, FEEDBACK_KINDS


def quarantine_lines(result) -> list[str]:
    """Each quarantine reason, most lines first, with its values and what to do about it."""
    lines: list[str] = []
    for reason, n in sorted(result.quarantined.items(), key=lambda kv: -kv[1]):
        values = result.unknown.get(reason)
        named = ", ".join(f"{clipped(v)!r} {c:,}" for v, c in values) if values else ""
        if result.unknown_more.get(reason):
            named += f", and {result.unknown_more[reason]:,} more value(s)"
        lines.append(f"  quarantined {n:,}: {reason}" + (f" ({named})" if named else ""))
        lines += _value_hints(result, reason, n, values) + _time_hints(result, reason, n, values)
    return lines


def _value_hints(result, reason: str, n: int, values) -> list[str]:
    """The way out for a reason about a value: a type, a word, a placeholder id, money."""
    lines: list[str] = []
    if reason.startswith("bad_type:"):
        column = reason.split(":", 1)[1]
        hint = _number_hint(result, column, [v for v, _ in values or []])
        lines += hint or (
            _bad_type_hint(result, column, [v for v, _ in values or []]) if result.read == 0 else []
        )
    if reason in ("unknown_event_type", "unknown_kind") and values:
        # helper-58: Meta Pixel's ViewContent went to quarantine with no word of the way in
        option, words = (
            ("--event-type", EVENT_TYPES)
            if reason == "unknown_event_type"
            else ("--kind", FEEDBACK_KINDS)
        )
        types = f"{', '.join(words[:-1])} or {words[-1]}"
        lines.append(
            f"  map such a word with {option} '{values[0][0]}=TYPE' (TYPE: {types}; skip "
            "leaves its lines out) and send the file again with --replace"
        )
    if reason == "placeholder_user_id":
        lines.append(
            f"  {n:,} line(s) with a user id that stands for no account (a guest checkout): "
            "as one user they would merge strangers. To keep them, map a column that names "
            f"each guest ({guest_map(result)}); they are in `quarantine`"
        )
    if reason.startswith("lossy_id:"):
        lines.append(
            "  ids in scientific notation or past a float's 2^53 lost digits (Excel and pandas "
            "save long numbers so, and different ids then read alike): export that column as "
            "text (in JSON, a string) and send the file again"
        )
    if reason in ("negative_money", "bad_quantity") and result.source == "events":
        lines.append(  # helper-36: a refund line left its purchase counted, unsaid
            f"  {n:,} line(s) of negative money or quantity: refunds or returns? They are not "
            "taken off the purchases they undo, which still count; leave refunded orders out "
            "of the feed (or send --replace-batch without them)"
        )
    if reason == "bad_type:rating":
        lines.append(
            "  ratings are whole stars, 1 to 5: a half star (4.5) or a text is no rating "
            "(the line, its text too, is in `quarantine`)"
        )
    if reason == "missing_user_id" and "--map user_id=COLUMN" not in guest_map(result):
        lines.append(
            f"  lines without a user id (guest orders?) load with {guest_map(result)}, "
            "if that column names each buyer"
        )
    if reason == "missing_ts" and result.read:
        # helper-44: Nuvemshop writes an order's date and buyer on its first line only
        # (not for user ids: anonymous page views have none either, helper-48)
        lines.append(
            "  an export that writes an order's date on its first line only leaves it empty "
            "on the order's other lines: fill the column down before ingesting (a "
            "spreadsheet's fill down, pandas' ffill)"
        )
    return lines


def _time_hints(result, reason: str, n: int, values) -> list[str]:
    """The way out for a time that did not read: the format that reads it, or what it was."""
    lines: list[str] = []
    if reason == "early_timestamp" and any(
        re.fullmatch(r"(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])", str(v))
        for v, _ in values or []
    ):
        lines.append(
            "  these are dates written as YYYYMMDD (GA4's event_date), read as Unix seconds: "
            "send the file again with --ts-format %Y%m%d, or map the real time column "
            "(--map ts=event_timestamp)"
        )
    elif reason == "early_timestamp" and (
        short := _ts_formats([v for v, _ in values or []], _SHORT_YEAR)
    ):
        # helper-57: Etsy's `01/10/24` read as the year 24
        lines.append(
            f"  these are dates with a two-digit year, read as years 0-99: send the file again "
            f"with --ts-format '{short[0]}'"
            + (f" or '{short[1]}' (day or month first? a day above 12 tells)" if short[1:] else "")
        )
    elif (
        reason == "early_timestamp"
        and values
        and all(
            re.fullmatch(r"0?[1-9](0[1-9]|[12]\d|3[01])|1[0-2](0[1-9]|[12]\d|3[01])", str(v))
            for v, _ in values
        )
    ):
        # helper-101: Tmall's time_stamp `1111` (11 November, no year) was called a missing time
        lines.append(
            "  these look like a month and day without a year (Tmall's time_stamp: 1111 is 11 "
            "November), read as Unix seconds: add the year before ingest (DuckDB: "
            "strftime(make_date(2015, time_stamp // 100, time_stamp % 100), '%Y-%m-%d'))"
        )
    elif reason == "early_timestamp":
        lines.append(
            f"  {n:,} time(s) before 1990, which profiler does not take: a 0 or a small "
            "number for a missing time? (lines in `quarantine`)"
        )
    if reason == "bad_timestamp" and result.read and result.reading.ts_format:
        lines.append(
            f"  check --ts-format {result.reading.ts_format!r}: {n:,} time(s) do not match it; "
            "if it is wrong (day and month swapped?), loaded times may be wrong too: ingest "
            "the file again with the right format and --replace"
        )
    if reason == "bad_timestamp" and not result.reading.ts_format:
        fits = _ts_formats(result.bad_times, _TS_FORMATS + _SHORT_YEAR)
        if fits:  # helper-36: the hint named a month-first format for 01/10/2019 and RFC 2822
            said = " or ".join(repr(f) for f in fits)
            lines.append(
                f"  those times read with --ts-format {said}"
                + (
                    " (day or month first? a day above 12 in the file tells)"
                    if len(fits) > 1
                    else ""
                )
                + ": send the file again with it and --replace"
            )
        elif result.read == 0:
            lines.append(
                "  nothing loaded: if those times share one format, send the file again with "
                "it, e.g. --ts-format '%m/%d/%Y %H:%M' for 12/1/2010 8:26 (lines in `quarantine`)"
            )
    return lines


# common export time formats, tried on the values a file's bad times show
_TS_FORMATS = tuple(
    f"{day}{sep}{time}"
    # ISO's day too: read alone, not with a 12-hour time (a date column and a time column)
    for day in ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%Y-%m-%d", "%d-%m-%Y",
                "%m-%d-%Y", "%d %b %Y", "%b %d, %Y", "%d-%b-%Y", "%Y%m%d")
    for sep, time in (("", ""), (" ", "%H:%M"), (" ", "%H:%M:%S"), (" ", "%I:%M %p"),
                      (" ", "%I:%M:%S %p"))
) + ("%a, %d %b %Y %H:%M:%S %z", "%d/%b/%Y:%H:%M:%S %z")  # fmt: skip


_SHORT_YEAR = tuple(
    f"{day}{sep}{time}"
    for day in ("%m/%d/%y", "%d/%m/%y", "%d.%m.%y", "%m-%d-%y", "%d-%m-%y", "%b-%d-%y")
    for sep, time in (("", ""), (" ", "%H:%M"), (" ", "%H:%M:%S"), (" ", "%I:%M %p"))
)  # fmt: skip


def _ts_formats(values: list[str], formats: tuple[str, ...] = _TS_FORMATS) -> list[str]:
    """The strptime formats (at most two) that read every shown value of a file's bad times."""
    from datetime import datetime

    if not values:
        return []
    fits = []
    for fmt in formats:
        try:
            for v in values:
                datetime.strptime(v.strip(), fmt)
        except ValueError:
            continue
        fits.append(fmt)
    return fits[:2]


def guest_map(result) -> str:
    """The --map that tells guests apart: an e-mail column first, then an analytics tool's
    anonymous id (GA4's user_pseudo_id, Snowplow's domain_userid, Amplitude's device_id); never
    a note, a user agent, an IP address, a flag or a time (helper-51: GA4's is_active_user,
    Snowplow's user_ipaddress and Amplitude's user_creation_time were suggested)."""
    never = r"note|agent|ip\b|ip_|ipaddress|^is_|^has_|\.is_|time|date|_at$|count|type|name"
    for pattern in GUEST_PATTERNS:
        # only a column the guests' lines fill, and not with names (`ingest_ids.guest_columns`)
        filled = result.guest_columns
        other = [
            c
            for c in result.ignored
            if re.search(pattern, c, re.I)
            and not re.search(never, c, re.I)
            and (filled is None or c in filled)
        ]
        if other:
            return f"--map user_id={other[0]}"
    return "--map user_id=COLUMN"


_COMMA_GROUPED = re.compile(r"^\D{0,4}\d{1,3}(,\d{3})+\D{0,4}$")  # 1,899, ₱1,899, 129,000원
_DOT_GROUPED = re.compile(r"^\D{0,4}\d{1,3}(\.\d{3}){2,}\D{0,4}$")  # 1.250.000, Rp 1.250.000
_FRACTION = re.compile(r"^(?!\d{1,3}(,\d{3})+$)\d*[.,]\d+$")  # 0.75, 1.500; not 1,200


def _number_hint(result, column: str, values: list[str]) -> list[str]:
    """Which option reads the numbers a column's quarantined lines sent: `1,899` is 1899 with
    commas grouping thousands, or 1.899 with a decimal comma (helpers 44 and 45: a
    peso and a won export had no way in, and --decimal-comma, the only hint, read 129,000 as
    129); `1.250.000` groups thousands with dots; a quantity of 0.75 is a weight, no count."""
    reading = result.reading
    if column == "quantity" and any(_FRACTION.match(v.strip()) for v in values):
        return [
            "  quantity counts whole units: a fraction (a weight or a volume sold) is no count. "
            "Leave the column out with --map quantity= (each line then counts as one unit, and "
            "its price as the line's money: map the line's total, not the unit price, with "
            "--map amount=COLUMN) and ingest the file again with --replace"
        ]
    if reading.decimal_comma or reading.decimal_point:
        return []
    # lines loaded: the file is in, and goes in again in place of itself (helper-48: the hint
    # without --replace was refused as already ingested)
    again = (
        "send the file again with --replace and" if result.loaded else "send the file again with"
    )
    comma = next((v.strip() for v in values if _COMMA_GROUPED.match(v.strip())), None)
    if comma:
        return [
            f"  {column}: if the commas of {comma!r} group thousands (won, yen, peso), {again} "
            "--decimal-point; if they are decimal commas, with --decimal-comma"
        ]
    dots = next((v.strip() for v in values if _DOT_GROUPED.match(v.strip())), None)
    if dots:
        return [
            f"  {column}: the dots of {dots!r} group thousands: {again} --decimal-comma, which "
            "reads them so (and 49.000 as forty-nine thousand)"
        ]
    return []


def _bad_type_hint(result, column: str, values: list[str]) -> list[str]:
    """Why a whole file's `bad_type` lines did not load: a text column only refuses JSON objects
    and arrays; a number column, numbers it cannot read: a decimal comma when they hold one, else
    values that are no number of that column (helper-61: Ta Feng's age group `50-54` as a birth
    year was told to try --decimal-comma)."""
    from profiler.sources import get_source

    if get_source(result.source).column(column).type == "VARCHAR":
        return [
            f"  nothing loaded: {column} holds JSON objects or arrays (nested values); flatten the "
            "file first, one plain value per key (DuckDB: unnest(), jq: .[])"
        ]
    if result.reading.decimal_comma:
        return []
    if values and not any("," in v for v in values):
        file_column = result.columns.get(column, column)
        return [
            f"  nothing loaded: {file_column!r} holds no {column} the way it is read "
            f"({clipped(values[0])!r}): map another column with --map {column}=COLUMN, or none "
            f"with --map {column}= (lines in `quarantine`)"
        ]
    return [
        "  nothing loaded: if those numbers use a decimal comma (12,50 or 1.234,50), "
        "send the file again with --decimal-comma (lines in `quarantine`)"
    ]


def clipped(value: str, width: int = 40) -> str:
    return value if len(value) <= width else value[: width - 3] + "..."
