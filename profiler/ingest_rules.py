"""The ingest rules: one SQL that types the columns `ingest_columns` chose, or quarantines a line.

Every record comes out of `typed_query` either typed, or with the first rule it breaks as its
reason. The reasons vocabulary (all lower case, stable, documented in `REASONS`):

- structural (set by the readers): `bad_quoting`, `wrong_field_count`, `bad_encoding`,
  `empty_line`, `bad_json`; `bad_quoting` too for an id holding a line break (stray quotes
  joined lines into one record)
- `missing_<column>`: a required column is empty
- `placeholder_user_id`: a user id exports write for "no account" (`guest`, `anonymous`), which
  would make one user of all (a `0` that looks like WooCommerce's guests is said, not refused)
- `unknown_event_type`, `unknown_kind`: a value outside the normalised vocabulary
- `skipped_event_type`, `skipped_kind`: a value the user said to skip (`--event-type X=skip`)
- `bad_timestamp` (unparseable), `early_timestamp` (before 1990: a zero, or a date written as a
  small number), `future_timestamp` (more than a day ahead)
- `bad_type:<column>`: a number that does not parse (or an integer column with a fraction), or a
  JSON object or array where a value is expected
- `lossy_id:<column>`: an id written in scientific notation (`2.10381E+18`, as Excel saves long
  numbers), or a float column's (or JSON float's) past 2^53, whose dropped digits would merge
  different ids
- a line of empty fields only (`,,,,`, as spreadsheets save blank rows) is an `empty_line` too
- `repeated_header`: a line that repeats the header's names (files joined with `cat`)
- `negative_money`, `bad_quantity` (< 0: returns are not purchases), `bad_rating` (outside 1-5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from profiler.ingest_columns import Staged, header_text
from profiler.ingest_options import AS_SENT, SKIP, VOCABULARIES, Reading
from profiler.ingest_values import (
    FREE_TEXT,
    decimal_comma_sql,
    decimal_point_sql,
    is_numeric,
    is_temporal,
    null_word,
    timestamp_sql,
    trimmed,
    vocabulary_sql,
    whole_id,
    without_currency_sql,
)
from profiler.pii import EMAIL_ID, email_sql, normalise_sql
from profiler.sources import Column, Source
from profiler.sqltext import literal as quote_literal
from profiler.sqltext import quote as quote_ident

if TYPE_CHECKING:
    pass


REASONS = (
    "bad_quoting",
    "wrong_field_count",
    "bad_encoding",
    "empty_line",
    "bad_json",
    "missing_<column>",
    "placeholder_user_id",
    "unknown_event_type",
    "unknown_kind",
    "skipped_event_type",
    "skipped_kind",
    "bad_timestamp",
    "early_timestamp",
    "future_timestamp",
    "bad_type:<column>",
    "lossy_id:<column>",
    "negative_money",
    "bad_quantity",
    "bad_rating",
    "repeated_event_id",
    "repeated_header",
)


MIN_TS = "1990-01-01"
# ids that stand for no account (lower case; `unknown` is no value already); a 0 or -1 may be a
# real user (RetailRocket's visitor 0), so it is said when it looks like guests, not refused
# (`ingest_ids.catch_all_ids`)
PLACEHOLDER_IDS = ("guest", "anonymous")
LOSSY_ID = r"-?[0-9](\.[0-9]+)?[eE]\+[0-9]+"  # a number in scientific notation
FUTURE_SLACK = timedelta(days=1)
MONEY = ("price", "amount")
# a two-digit birth year up to this is 20xx, above it 19xx: fixed, so a file reads the same any year
TWO_DIGIT_PIVOT = 15
# a birthday of five digits is the day number a spreadsheet stores a date as (Excel's serial day,
# counted from 1899-12-30): 10000 is 1927-05-18, 73050 is 2099-12-31
EXCEL_SERIALS = (10000, 73050)


def _value_sql(col: Column, staged: Staged, file_column: str) -> str:
    """The value of one canonical column before parsing: trimmed text, or a native typed value.

    Native numbers and timestamps (Parquet) skip the round trip through text where the target
    wants that type anyway.
    """
    expr = staged.values[file_column]
    native = staged.native.get(file_column)
    if col.type == "TIMESTAMP" and (is_temporal(native) or is_numeric(native)):
        return expr
    if col.type == "DOUBLE" and native == "FLOAT":  # 0.0123 as written, not 0.012299999594...
        return f"CAST(CAST({expr} AS VARCHAR) AS DOUBLE)"
    if col.type in ("DOUBLE", "INTEGER") and is_numeric(native):
        return expr
    if col.name.endswith("_id") and is_numeric(native):  # 541312140.0 -> '541312140'
        return (
            f"CASE WHEN NOT isfinite({expr}) THEN NULL "
            f"WHEN {expr} = trunc({expr}) AND abs({expr}) < 9e15 "
            f"THEN CAST(CAST({expr} AS BIGINT) AS VARCHAR) ELSE CAST({expr} AS VARCHAR) END"
        )
    text = expr if native in (None, "VARCHAR") else f"CAST({expr} AS VARCHAR)"
    return trimmed(text, fold=col.name not in ("title", "text"))  # prose stays as written


@dataclass
class _Levels:
    """The SQL of every column at each step (value, parsed, final) and the checks on them."""

    hmac: str | None
    future: str  # timestamps after this are from the future
    values: list[str] = field(default_factory=list)
    parsed: list[str] = field(default_factory=list)
    finals: list[str] = field(default_factory=list)
    checks: list[tuple[str, str]] = field(default_factory=list)  # (condition, reason)

    def add(self, col: Column, value: str, parsed: str, final: str) -> None:
        self.values.append(f"{value} AS __v_{col.name}")
        self.parsed.append(f"{parsed} AS __p_{col.name}")
        self.finals.append(f"{final} AS __t_{col.name}")


def _column_levels(
    col: Column, staged: Staged, file_column: str | None, lv: _Levels, reading: Reading
) -> None:
    """Add one canonical column's SQL and checks; `v` is its trimmed text (or native value),
    `p` an intermediate parse, `t` the typed result."""
    v, p, t = f"__v_{col.name}", f"__p_{col.name}", f"__t_{col.name}"
    native = staged.native.get(file_column) if file_column else None
    value = _value_sql(col, staged, file_column) if file_column else "CAST(NULL AS VARCHAR)"
    constant = reading.constants().get(col.name)
    if constant is not None:
        value = quote_literal(constant)
    # A word for "no value" is no value. Text columns drop it when parsed (below); a number or
    # time compares its text with the words only when it failed to parse. Every expression refers
    # to the level before by column name: nesting the text's SQL would multiply it.
    words = col.type == "VARCHAR" and col.name not in (*FREE_TEXT, *VOCABULARIES)
    absent = "FALSE"
    if words:
        absent = f"{p} IS NULL"
    elif col.type != "VARCHAR" and native in (None, "VARCHAR") and constant is None:
        absent = f"({t} IS NULL AND {null_word(v)})"
    if col.required:
        lv.checks.append((f"({v} IS NULL OR {absent})", f"missing_{col.name}"))
    if col.name in VOCABULARIES:
        vocabulary = vocabulary_sql(v, VOCABULARIES[col.name], reading.value_map(col.name))
        lv.add(col, value, vocabulary, p)
        lv.checks.append((f"{v} IS NOT NULL AND {p} IS NULL", f"unknown_{col.name}"))
        lv.checks.append((f"{p} = '{SKIP}'", f"skipped_{col.name}"))
    elif col.personal:
        kept = f"CASE WHEN {null_word(v)} THEN NULL ELSE {v} END"
        lv.add(col, value, kept, f"{lv.hmac}({normalise_sql(col.name, p)})")
    elif col.type == "TIMESTAMP":
        fmt = reading.ts_format if native in (None, "VARCHAR") else None
        number = "NULL" if is_temporal(native) else f"TRY_CAST({v} AS DOUBLE)"
        if native in (None, "VARCHAR"):  # a Unix number never holds ':': skip the cast for text
            number = f"CASE WHEN contains({v}, ':') THEN NULL ELSE {number} END"
        zone = reading.time_zone or "UTC"
        lv.add(col, value, number, timestamp_sql(v, p, native, fmt, zone, reading.times_utc))
        lv.checks.append((f"{v} IS NOT NULL AND NOT {absent} AND {t} IS NULL", "bad_timestamp"))
        lv.checks.append((f"{t} < '{MIN_TS}'", "early_timestamp"))
        lv.checks.append((f"{t} > '{lv.future}'", "future_timestamp"))
    elif col.type in ("DOUBLE", "INTEGER"):
        ok = f"isfinite({p})"
        if col.type == "INTEGER":
            ok += f" AND {p} = trunc({p}) AND abs({p}) <= 2147483647"
        number = v
        if col.name in MONEY and native in (None, "VARCHAR"):
            number = without_currency_sql(v)
        if reading.decimal_comma and native in (None, "VARCHAR"):
            number = decimal_comma_sql(number)
        if reading.decimal_point and native in (None, "VARCHAR"):
            number = decimal_point_sql(number)
        typed = f"CAST({p} AS {col.type})"
        if col.name in MONEY and reading.minor_units:  # Stripe's 1999 is 19.99
            typed = f"({p} / 100.0)"
        parsed = f"TRY_CAST({number} AS DOUBLE)"
        if col.name == "birth_year":  # a birthday as a number: 19900305, or Excel's serial day
            lo, hi = EXCEL_SERIALS
            text = f"trim(CAST({v} AS VARCHAR))"
            parsed = (
                f"CASE WHEN {parsed} >= 10000000 AND {parsed} < 30000000 "
                f"THEN floor({parsed} / 10000) "
                f"WHEN regexp_full_match({text}, '[0-9]{{6}}(\\.0+)?') THEN {_six_digits(text)} "
                + (
                    f"WHEN {parsed} BETWEEN {lo} AND {hi} AND {parsed} = trunc({parsed}) "
                    f"AND NOT starts_with({text}, '0') "
                    f"THEN year(DATE '1899-12-30' + CAST({parsed} AS INTEGER)) "
                    if staged.serial_days
                    else ""
                )
                + f"ELSE {parsed} END"
            )
        if col.name == "birth_year" and not is_numeric(native):  # a birthday: its year, in
            # any order (05/03/1990, 31.12.1980) or written as digits (19900305; helpers 32, 33)
            year = r"(^|[^0-9])((19|20)[0-9][0-9])([^0-9]|$)"
            # 7/1/02: a two-digit year up to TWO_DIGIT_PIVOT is 20xx, else 19xx (7/1/85 is 1985;
            # never the wall clock, helper-38), and a month is at most 12 (helper-39); DuckDB's
            # date cast would read 7/1/02 as the year 2
            three = r"^([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{2})$"
            a, b, c = (
                f"TRY_CAST(regexp_extract(trim({v}), '{three}', {g}) AS INTEGER)" for g in (1, 2, 3)
            )
            two = (  # 85/07/01 (Japan's YY/MM/DD: a first part above 31), else day and month first
                f"CASE WHEN {a} > 31 AND {b} BETWEEN 1 AND 12 AND {c} BETWEEN 1 AND 31 THEN {a} "
                f"WHEN {a} BETWEEN 1 AND 31 AND {b} BETWEEN 1 AND 31 AND least({a}, {b}) <= 12 "
                f"THEN {c} END"
            )
            short = f"{two} + CASE WHEN {two} <= {TWO_DIGIT_PIVOT} THEN 2000 ELSE 1900 END"
            parsed = (
                f"coalesce({parsed}, {short}, year(TRY_CAST({v} AS DATE)), "
                f"TRY_CAST(regexp_extract({v}, '{year}', 2) AS DOUBLE))"
            )
        if col.name == "rating" and (reading.rating_scale or 5) != 5:  # 9 and 10 of 10: 5 stars
            # 0 of 10 (an NPS detractor's 0) is the lowest: one star
            stars = (
                f"CASE WHEN {p} = 0 THEN 1 ELSE ceil({p} * 5.0 / {int(reading.rating_scale)}) END"
            )
            typed = f"CAST({stars} AS INTEGER)"
        lv.add(col, value, parsed, f"CASE WHEN {ok} THEN {typed} END")
        lv.checks.append(
            (f"{v} IS NOT NULL AND {t} IS NULL AND NOT {absent}", f"bad_type:{col.name}")
        )
    else:
        kept = f"CASE WHEN {null_word(v)} THEN NULL ELSE {v} END" if words else v
        # a brand sent as an id (Tmall's brand_id) is written 5848.0 by pandas where the column
        # has gaps, and 5848 in a chunk without one: one brand (helper-101)
        final = (
            whole_id(p)
            if col.name.endswith("_id")
            else whole_id(p, guarded=False)
            if col.name == "brand"
            else p
        )
        # Excel's 2.10381E+18, in a text file or a Parquet text column (helper-97: a Parquet
        # VARCHAR column of them loaded, 6 category ids as 2)
        if col.name.endswith("_id") and native in (None, "VARCHAR"):
            # no id spans lines: two stray quotes in its column (an inch sign) made one record
            # of the lines between (helper-125: 5 lines loaded as one event, 3 in its item id)
            lv.checks.append((f"contains({v}, chr(10))", "bad_quoting"))
            lossy = f"(contains({p}, 'E+') OR contains({p}, 'e+')) AND regexp_full_match({p}, '{LOSSY_ID}')"
            lv.checks.append((lossy, f"lossy_id:{col.name}"))
        if col.name.endswith("_id") and native in ("DOUBLE", "FLOAT"):  # pandas' ids with gaps
            # past 2^53 (a float's 2^24) neighbouring whole numbers read alike: digits were lost
            # (helper-99: 19-digit category ids stored as 2.0530135556318828e+18)
            bound = 2**53 if native == "DOUBLE" else 2**24
            lv.checks.append((f"abs(TRY_CAST({v} AS DOUBLE)) >= {bound}", f"lossy_id:{col.name}"))
        if col.name == "user_id" and lv.hmac:  # an address as the id: personal, so pseudonymised
            final = f"CASE WHEN {email_sql(p)} THEN {lv.hmac}({normalise_sql('email', p)}) ELSE {final} END"
        if col.name == "session_id":  # Amplitude's -1: the event belongs to no session
            final = f"CASE WHEN {p} = '-1' THEN NULL ELSE {final} END"
        if col.name == "user_id":
            words = ", ".join(quote_literal(w) for w in PLACEHOLDER_IDS)
            lv.checks.append((f"lower(__t_{col.name}) IN ({words})", "placeholder_user_id"))
        lv.add(col, value, kept, final)


def serial_days_possible(con, staged: Staged, column: str) -> bool:
    """No value of the birthday column has six digits: its five-digit ones may be serial days."""
    text = f"trim(CAST({staged.values[column]} AS VARCHAR))"
    ((six,),) = con.execute(
        f"SELECT EXISTS (SELECT 1 FROM {staged.relation} "
        f"WHERE regexp_full_match({text}, '[0-9]{{6}}(\\.0+)?'))"
    ).fetchall()  # whole: an unfinished result blocks the connection's next registration
    return not six


def _six_digits(text: str) -> str:
    """The year of a six-digit birthday: Korea's YYMMDD (930516) when its first pair cannot be a
    day or a month, a DDMMYY or MMDDYY (160593) when its last cannot; else (010203) no year, 0,
    which the profile reads as unknown and the summary names (helper-45: NULL, unsaid)."""
    a, b, c = (f"CAST(substr({text}, {i}, 2) AS INTEGER)" for i in (1, 3, 5))
    return (
        f"CASE WHEN {a} > 31 AND {b} BETWEEN 1 AND 12 AND {c} BETWEEN 1 AND 31 THEN 1900 + {a} "
        f"WHEN {c} > 31 AND {a} BETWEEN 1 AND 31 AND {b} BETWEEN 1 AND 31 "
        f"AND least({a}, {b}) <= 12 THEN 1900 + {c} ELSE 0 END"
    )


def _range_checks(source: Source) -> list[tuple[str, str]]:
    names = {c.name for c in source.columns}
    checks = [(f"__t_{m} < 0", "negative_money") for m in MONEY if m in names]
    if "quantity" in names:
        checks.append(("__t_quantity < 0", "bad_quantity"))  # 0: a line of no units, kept
    if "rating" in names:
        checks.append(("__t_rating NOT BETWEEN 1 AND 5", "bad_rating"))
    return checks


def _ordered_checks(lv: _Levels, source: Source) -> list[tuple[str, str]]:
    """First failing rule wins: missing keys, vocabulary, time, types, then ranges."""
    order = (
        "bad_quoting",
        "missing_",
        "placeholder_",
        "unknown_",
        "skipped_",
        "bad_timestamp",
        "early_timestamp",
        "future_timestamp",
        "bad_type:",
        "lossy_id:",
    )
    ranked = sorted(
        lv.checks, key=lambda c: next(i for i, o in enumerate(order) if c[1].startswith(o))
    )
    return ranked + _range_checks(source)


def _raw_sql(source: Source, staged: Staged, hmac: str | None, unread: bool) -> str:
    """Raw text for quarantine, never a personal value.

    The line as sent only when every column of the file is a canonical one of a source without
    personal columns (and then, if it holds an e-mail address, only its keyed hash). Otherwise,
    a file with personal columns or with columns profiler does not read (a Shopify export's
    billing name, address and phone), the record is shown as JSON of its canonical columns, with
    pseudonyms, and a record that could not even be split only by its keyed hash, or not at all.
    """
    if not source.personal and not unread:
        # a line holding an e-mail address (a user id or a search that is one) is shown only by
        # its keyed hash, or, when the file needed no key (no user id holds an `@`), not at all
        hashed = f"'; hmac ' || {hmac}({staged.raw}) || ']'" if hmac else "']'"
        return (
            f"CASE WHEN contains({staged.raw}, '@') AND regexp_matches({staged.raw}, '{EMAIL_ID}') "
            f"THEN '[redacted: the line holds an e-mail address' || {hashed} "
            f"ELSE {staged.raw} END"
        )
    hashed = {c.name for c in source.columns if c.personal} | ({"user_id"} if hmac else set())
    fields = ", ".join(
        # the user id as stored: an e-mail address as its pseudonym
        f"{quote_ident(c.name)} := {'__t_' if c.name in hashed else '__v_'}{c.name}"
        for c in source.columns
    )
    unsplit = (
        f"'[redacted: a record that could not be split; hmac ' || {hmac}({staged.raw}) || ']'"
        if hmac
        else "'[redacted: a record that could not be split, of a file with columns profiler does not read]'"
    )
    return (
        f"CASE WHEN __fault IS NOT NULL THEN {unsplit} "
        f"ELSE to_json(struct_pack({fields}))::VARCHAR END"
    )


def footer_sql(raw: str) -> str:
    """Whether a line of too few fields reads as an export's footer sentence, not a record cut
    short (`3 record(s) downloaded`, eBay's, written without a final line break: helper-58): a
    line of words with no field separator, or one that names records, rows or a total in under
    three fields; anything else (`1,22683`, `12345`) is a record (helper-59: a cut inside the
    first two fields passed as a footer). Judged on the line as sent, before `_raw` redacts it
    (helper-96: a redacted line says "record", so a cut users file passed as a footer)."""
    counts = (f"length({raw}) - length(replace({raw}, {sep}, ''))" for sep in SEPARATORS)
    separators = f"greatest({', '.join(counts)})"
    blank = "' ' || chr(9) || chr(10) || chr(13)"
    words = f"{separators} = 0 AND contains(trim({raw}, {blank}), ' ')"
    named = f"{separators} < 2 AND regexp_matches({raw}, '(?i){FOOTER_WORDS}')"
    return f"coalesce(({words}) OR ({named}), FALSE)"


# a footer's field separators, and the words that name what it counts
SEPARATORS = ("','", "';'", "chr(9)", "'|'")
FOOTER_WORDS = r"record|rows?\b|total|download|export|generated|seller"


def _output_sql(source: Source, name: str) -> str:
    """The stored value; an event's amount defaults to price times quantity (1 when absent)."""
    names = {c.name for c in source.columns}
    if name == "amount" and {"price", "quantity"} <= names:
        return "coalesce(__t_amount, __t_price * coalesce(__t_quantity, 1))"
    return f"__t_{name}"


def vocabulary_column(source: Source) -> str | None:
    """The source's column with a normalised vocabulary (events: event_type, feedback: kind)."""
    return next((c.name for c in source.columns if c.name in VOCABULARIES), None)


def typed_query(
    source: Source,
    staged: Staged,
    resolved: Mapping[str, str],
    *,
    now: datetime,
    hmac: str | None = None,
    reading: Reading = AS_SENT,
    unread: bool = False,
    kept: Mapping[str, str] | None = None,
) -> str:
    """One SELECT giving, per record: `_rec`, `_reason` (NULL when loaded), `_raw` (only when
    quarantined), `_unknown` (the value an `unknown_<column>` record sent) and every canonical
    column typed, plus `__kept_<what>`, the text of each ignored column of `kept` (what -> file
    column) the warnings read, so they read the typed table, not the file again. `now` is the
    wall clock, used only to refuse timestamps from the future.
    """
    lv = _Levels(hmac=hmac, future=(now + FUTURE_SLACK).isoformat(sep=" "))
    for col in source.columns:
        _column_levels(col, staged, resolved.get(col.name), lv, reading)
    whens = " ".join(f"WHEN {cond} THEN '{reason}'" for cond, reason in _ordered_checks(lv, source))
    sent = [
        f"__v_{c.name}"
        for c in source.columns
        if c.name in resolved and c.name not in reading.constants()
    ]
    if sent and source.key in resolved:  # a spreadsheet's blank row (`,,,,`): an empty line
        blank = " AND ".join(f"{v} IS NULL" for v in [f"__v_{source.key}", *sent])
        whens = f"WHEN {blank} THEN 'empty_line' {whens}"
    if sent:  # the header again (daily files joined with `cat`; helper-97: a user 'user_id')
        names = {v: header_text(resolved[v[4:]]) for v in sent}  # `v`s are trimmed: the length,
        header = " AND ".join(  # which spares nearly every line the lower() (0.4 s at 10M)
            f"strlen(CAST({v} AS VARCHAR)) = {len(name.encode())} "
            f"AND lower(CAST({v} AS VARCHAR)) = {quote_literal(name.lower())}"
            for v, name in names.items()
        )
        whens = f"WHEN {header} THEN 'repeated_header' {whens}"
    outs = ", ".join(
        f"{_output_sql(source, c.name)} AS {quote_ident(c.name)}" for c in source.columns
    )
    extra = "".join(
        f", CAST({staged.values[c]} AS VARCHAR) AS __kept_{what}"
        for what, c in (kept or {}).items()
    )
    # the value a record sent for the rule it broke, to name the most frequent ones; a time:
    # the source's time column, else its one timestamp (users' signup_ts: helper-74's crash)
    stamp = source.time_column or next(
        (c.name for c in source.columns if c.type == "TIMESTAMP"), None
    )
    unknown = (
        " ".join(
            f"WHEN 'unknown_{c.name}' THEN __v_{c.name} WHEN 'skipped_{c.name}' THEN __v_{c.name}"
            for c in source.columns
            if c.name in VOCABULARIES
        )
        + "".join(
            f" WHEN 'bad_type:{c.name}' THEN CAST(__v_{c.name} AS VARCHAR)"
            for c in source.columns
            if c.type != "VARCHAR" and not c.personal
        )
        + (
            " WHEN 'placeholder_user_id' THEN __t_user_id"
            if "user_id" in source.column_names_lower()
            else ""
        )
        + (
            f" WHEN 'early_timestamp' THEN CAST(__v_{stamp} AS VARCHAR)"
            f" WHEN 'bad_timestamp' THEN CAST(__v_{stamp} AS VARCHAR)"
            if stamp
            else ""
        )
        + (
            " WHEN 'bad_rating' THEN CAST(__v_rating AS VARCHAR)"
            if "rating" in source.column_names_lower()
            else ""
        )
        + "".join(
            f" WHEN 'lossy_id:{c.name}' THEN __v_{c.name}"
            for c in source.columns
            if c.name.endswith("_id")
        )
    )
    sent_money = [f"__t_{m}" for m in MONEY if m in source.column_names_lower()]
    if sent_money:
        unknown += f" WHEN 'negative_money' THEN CAST(least({', '.join(sent_money)}) AS VARCHAR)"
    unknown = f"CASE __reason {unknown} END" if unknown else "CAST(NULL AS VARCHAR)"
    # the word a record sent for its event type or kind, where it was not the canonical one
    # (`pv`, `click`; not `VIEW`, which differs only in case or spaces): the summary says which
    # word was read as which
    vocab = vocabulary_column(source)
    sent_words = (
        f"CASE WHEN lower(trim(CAST(__v_{vocab} AS VARCHAR))) IS DISTINCT FROM __t_{vocab} "
        f"THEN CAST(__v_{vocab} AS VARCHAR) END"
        if vocab and vocab not in reading.constants()
        else "CAST(NULL AS VARCHAR)"
    )
    keyed = hmac and "user_id" in source.column_names_lower()
    emailed = email_sql("__p_user_id") if keyed else "FALSE"  # counted in the summary
    return f"""
WITH s AS (SELECT *, {staged.rec} AS __rec, {staged.fault} AS __fault, {", ".join(lv.values)}
           FROM {staged.relation}),
p AS (SELECT *, {", ".join(lv.parsed)} FROM s),
f AS (SELECT *, {", ".join(lv.finals)} FROM p),
r AS (SELECT *, CASE WHEN __fault IS NOT NULL THEN __fault {whens} END AS __reason FROM f)
SELECT __rec AS _rec, __reason AS _reason,
       CASE WHEN __reason IS NOT NULL THEN {_raw_sql(source, staged, hmac, unread)} END AS _raw,
       CASE WHEN __fault = 'wrong_field_count' THEN {footer_sql(staged.raw)} END AS _footer,
       {unknown} AS _unknown, {emailed} AS _email_id, {sent_words} AS _sent_word, {outs}{extra}
FROM r"""
