"""The ingest rules: which file column feeds which canonical column, and one SQL that types them.

Every record comes out of `typed_query` either typed, or with the first rule it breaks as its
reason. The reasons vocabulary (all lower case, stable, documented in `REASONS`):

- structural (set by the readers): `bad_quoting`, `wrong_field_count`, `bad_encoding`,
  `empty_line`, `bad_json`
- `missing_<column>`: a required column is empty
- `unknown_event_type`, `unknown_kind`: a value outside the normalised vocabulary
- `bad_timestamp` (unparseable or before 1990), `future_timestamp` (more than a day ahead)
- `bad_type:<column>`: a number that does not parse (or an integer column with a fraction), or a
  JSON object or array where a value is expected
- `negative_money`, `bad_quantity` (<= 0), `bad_rating` (outside 1-5)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from profiler.errors import ProfilerError
from profiler.pii import normalise_sql
from profiler.sources import Column, Source

REASONS = (
    "bad_quoting",
    "wrong_field_count",
    "bad_encoding",
    "empty_line",
    "bad_json",
    "missing_<column>",
    "unknown_event_type",
    "unknown_kind",
    "bad_timestamp",
    "future_timestamp",
    "bad_type:<column>",
    "negative_money",
    "bad_quantity",
    "bad_rating",
)

# Keys are compared after lower-casing and turning '-' and ' ' into '_'.
EVENT_TYPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "view": ("view", "views", "viewed", "pv", "page_view", "pageview", "detail", "view_item",
             "product_view", "click", "clicks"),
    "cart": ("cart", "carts", "addtocart", "add_to_cart", "add_cart", "addcart", "add_to_basket"),
    "fav": ("fav", "favorite", "favourite", "favorites", "favourites", "wishlist",
            "add_to_wishlist", "like"),
    "purchase": ("purchase", "purchases", "purchased", "buy", "bought", "order", "orders",
                 "transaction", "checkout_complete"),
    "search": ("search", "searches", "searched", "query"),
}  # fmt: skip
FEEDBACK_KIND_SYNONYMS: dict[str, tuple[str, ...]] = {
    "rating": ("rating", "rate", "rated", "stars", "star_rating", "score"),
    "review": ("review", "reviewed", "product_review"),
    "complaint": ("complaint", "complain", "complained"),
    "like": ("like", "liked", "thumbs_up", "upvote"),
    "comment": ("comment", "commented", "reply"),
    "share": ("share", "shared"),
}
VOCABULARIES = {"event_type": EVENT_TYPE_SYNONYMS, "kind": FEEDBACK_KIND_SYNONYMS}

# Text that means "no value" in exports (pandas, R, SQL dumps, spreadsheets), in these spellings
# lower-case, upper-case or capitalised; never applied to free text (a search for "none" is a
# search). Personal columns included: two users with e-mail `N/A` must not share a pseudonym.
NULL_WORDS = ("null", "nan", "none", "na", "n/a", "\\n", "nat", "unknown", "-", "?")
FREE_TEXT = ("query", "title", "text")
_NULL_SPELLINGS = tuple(
    dict.fromkeys(
        [w for word in NULL_WORDS for w in (word, word.upper(), word.capitalize())] + ["NaN", "NaT"]
    )
)
MIN_TS = "1990-01-01"
FUTURE_SLACK = timedelta(days=1)
MONEY = ("price", "amount")
_PLAIN_NAME = re.compile(r"[^\W\d]\w*([ .-]\w+)*")


@dataclass
class Staged:
    """A file as DuckDB sees it after reading: the contract between the readers and the rules.

    `relation` is anything SELECT can read from; `values` gives, per file column, the SQL of its
    value (VARCHAR unless `native` names another DuckDB type); `rec`, `fault` and `raw` are the SQL
    of the record number, the structural fault (or NULL) and the raw text of one record.
    """

    relation: str
    columns: list[str]
    values: dict[str, str]
    native: dict[str, str] = field(default_factory=dict)
    rec: str = "_rec"
    fault: str = "NULL"
    raw: str = "_raw"
    empty: bool = False  # no header, no records: nothing to type


@dataclass(frozen=True)
class Reading:
    """How to read a file beyond its column names: `--event-type`, `--kind` and `--ts-format`.

    `event_type` (events) and `kind` (feedback) give every record that value, for a file that
    holds one kind of record and no column saying so: an orders export is all `purchase`, a
    reviews export all `review`. `ts_format` is a strptime format for every timestamp column sent
    as text, for times that are not ISO 8601 (`%m/%d/%Y %H:%M` reads `12/1/2010 8:26`); numbers
    and typed Parquet times do not need one. `decimal_comma` reads numbers sent as text the way
    European exports write them: `1.234,50` is 1234.5 (an option, because `1.234` alone could be
    either). `values` maps what a file's event type or kind column sends to the vocabulary, for
    codes no synonym can know (`--event-type 0=view`: Tmall's `action_type` 0..3): triples of
    (column, value as sent, canonical value).
    """

    event_type: str | None = None
    kind: str | None = None
    ts_format: str | None = None
    decimal_comma: bool = False
    values: tuple[tuple[str, str, str], ...] = ()

    def constants(self) -> dict[str, str]:
        """Canonical column -> the value every record gets."""
        values = {"event_type": self.event_type, "kind": self.kind}
        return {column: value for column, value in values.items() if value is not None}

    def value_map(self, column: str) -> dict[str, str]:
        """Value as sent -> canonical value, for `column`."""
        return {sent: canonical for c, sent, canonical in self.values if c == column}


AS_SENT = Reading()  # the file's own columns and formats


def _option(column: str) -> str:
    """The ingest option that gives every record one value of `column`: --event-type, --kind."""
    return "--" + column.replace("_", "-")


_CONSTANT_SOURCE = {"event_type": "events", "kind": "feedback"}


def check_reading(source: Source, reading: Reading) -> Reading:
    """Refuse an `--event-type`, `--kind` or `--ts-format` that cannot work, before any work;
    returns it with canonical values."""
    canonical = {
        column: _canonical(source, column, value, value)
        for column, value in reading.constants().items()
    }
    values = []
    for column, sent, value in reading.values:
        if column in canonical:
            raise ProfilerError(
                f"{_option(column)} {canonical[column]} gives every line one value, "
                f"{_option(column)} {sent}={value} maps the file's values; keep one kind"
            )
        values.append((column, sent, _canonical(source, column, value, f"{sent}={value}")))
    if reading.ts_format is not None:
        check_ts_format(reading.ts_format)
    return Reading(
        canonical.get("event_type"),
        canonical.get("kind"),
        reading.ts_format,
        reading.decimal_comma,
        tuple(values),
    )


def _canonical(source: Source, column: str, value: str, said: str) -> str:
    """The vocabulary's name for `value` of `column` (`buy` -> `purchase`), or a one-line error
    quoting what the user `said`."""
    option = _option(column)
    if source.name != _CONSTANT_SOURCE[column]:
        raise ProfilerError(f"{option} is for {_CONSTANT_SOURCE[column]} files, not {source.name}")
    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    vocabulary = VOCABULARIES[column]
    found = next((c for c, names in vocabulary.items() if key in names), None)
    if found is None:
        raise ProfilerError(
            f"{option} {said}: {value!r} is not one of the {column.replace('_', ' ')}s; "
            f"choose one of: {', '.join(vocabulary)}"
        )
    return found


def check_ts_format(fmt: str) -> None:
    """Refuse a `--ts-format` DuckDB's strptime would refuse on every record, in one line."""
    import duckdb

    if "%" not in fmt:
        raise ProfilerError(
            f"--ts-format {fmt!r}: has no %-directive; write it as strptime does, "
            "e.g. '%m/%d/%Y %H:%M' for 12/1/2010 8:26"
        )
    with duckdb.connect() as con:
        try:
            con.execute("SELECT try_strptime('', ?)", [fmt])
        except duckdb.Error as err:
            first = str(err).splitlines()[0].split(": ", 1)[-1]
            raise ProfilerError(f"--ts-format {fmt!r}: {first}") from None


def check_mapping(source: Source, mapping: Mapping[str, str] | None) -> dict[str, str]:
    """Refuse a `--map` before any work: its target must be canonical, its column a plain name."""
    names = [c.name for c in source.columns]
    for target, column in (mapping or {}).items():
        if target not in names:
            raise ProfilerError(
                f"--map {target}={column}: {target!r} is not a column of source {source.name}; "
                f"choose one of: {', '.join(names)}"
            )
        if not isinstance(column, str) or not _PLAIN_NAME.fullmatch(column.strip()):
            raise ProfilerError(
                f"--map {target}={column}: {column!r} is not a plain column name "
                "(letters, digits, '_', and inner ' ', '.', '-' only)"
            )
    return {t: c.strip() for t, c in (mapping or {}).items()}


def resolve_columns(
    source: Source,
    found: Sequence[str],
    mapping: Mapping[str, str],
    file: str,
    constant: Sequence[str] = (),
) -> tuple[dict[str, str], list[str]]:
    """Canonical column -> file column, by `--map`, then canonical name, then synonym.

    Returns the resolution and the file columns left unused. `--map` names compare
    case-insensitively and trimmed, canonical names and synonyms also ignoring spaces, '_', '-'
    and '.' (CustomerID is customer_id); a file column feeds at most one target unless `--map`
    says otherwise. Columns in `constant` take one value for every record (`--event-type`), so
    no file column feeds them.
    """
    for target in constant:
        if target in mapping:
            raise ProfilerError(
                f"--map {target}={mapping[target]} and {_option(target)} both set "
                f"{target}; keep one"
            )
    by_key: dict[str, str] = {}
    by_loose_key: dict[str, str] = {}  # CustomerID, customer_id and customer id alike
    for name in found:
        by_key.setdefault(name.strip().lower(), name)
        by_loose_key.setdefault(_loose(name), name)
    resolved: dict[str, str] = {}
    for target, column in mapping.items():
        if column.lower() not in by_key:
            raise ProfilerError(
                f"--map {target}={column}: {file} has no column {column!r}; "
                f"found: {', '.join(found) or '(none)'}"
            )
        resolved[target] = by_key[column.lower()]
    used = set(resolved.values())
    for col in source.columns:
        if col.name in resolved:
            continue
        if col.name in constant:
            # a file that says what each record is must be read, not overridden
            sent = next((by_loose_key[k] for k in map(_loose, (col.name, *col.synonyms))
                         if k in by_loose_key and by_loose_key[k] not in used), None)  # fmt: skip
            if sent is not None:
                option = _option(col.name)
                raise ProfilerError(
                    f"{option}: {file} already has a column of {col.name.replace('_', ' ')}s "
                    f"({sent!r}); "
                    f"drop {option} to read it, or rename that column if it means something else"
                )
            continue
        for candidate in (col.name, *col.synonyms):
            # the name as written first, so `user_id` wins over a `User ID` beside it
            name = by_key.get(candidate.lower()) or by_loose_key.get(_loose(candidate))
            if name is not None and name not in used:
                resolved[col.name] = name
                used.add(name)
                break
    missing = [c for c in source.required if c not in resolved and c not in constant]
    if missing:
        hint = f"name the right ones with --map {missing[0]}=COLUMN"
        if "event_type" in missing:
            hint += "; a file of one kind of event (an orders export) can say --event-type purchase"
        if "kind" in missing:
            hint += "; a file of one kind of feedback (a reviews export) can say --kind review"
        raise ProfilerError(
            f"{file} lacks required {source.name} column(s) {', '.join(missing)}; "
            f"found: {', '.join(found) or '(none)'}; {hint}"
        )
    ignored, seen = [], set()
    for name in found:  # a repeated column name: only its first column is ever read
        if name not in used or name in seen:
            ignored.append(name if name not in seen else f"{name} (repeated)")
        seen.add(name)
    return {c.name: resolved[c.name] for c in source.columns if c.name in resolved}, ignored


def _loose(name: str) -> str:
    """A column name compared without case, spaces, '_', '-' or '.'."""
    return re.sub(r"[\s_.-]", "", name.lower())


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")  # fmt: skip


def _is_numeric(native: str | None) -> bool:
    return native is not None and native.startswith(_NUMERIC)


def _is_temporal(native: str | None) -> bool:
    return native is not None and native.startswith(("TIMESTAMP", "DATE"))


def _value_sql(col: Column, staged: Staged, file_column: str) -> str:
    """The value of one canonical column before parsing: trimmed text, or a native typed value.

    Native numbers and timestamps (Parquet) skip the round trip through text where the target
    wants that type anyway.
    """
    expr = staged.values[file_column]
    native = staged.native.get(file_column)
    if col.type == "TIMESTAMP" and (_is_temporal(native) or _is_numeric(native)):
        return expr
    if col.type == "DOUBLE" and native == "FLOAT":  # 0.0123 as written, not 0.012299999594...
        return f"CAST(CAST({expr} AS VARCHAR) AS DOUBLE)"
    if col.type in ("DOUBLE", "INTEGER") and _is_numeric(native):
        return expr
    if col.name.endswith("_id") and _is_numeric(native):  # 541312140.0 -> '541312140'
        return (
            f"CASE WHEN NOT isfinite({expr}) THEN NULL "
            f"WHEN {expr} = trunc({expr}) AND abs({expr}) < 9e15 "
            f"THEN CAST(CAST({expr} AS BIGINT) AS VARCHAR) ELSE CAST({expr} AS VARCHAR) END"
        )
    text = expr if native in (None, "VARCHAR") else f"CAST({expr} AS VARCHAR)"
    return _trimmed(text)


def _null_word(v: str) -> str:
    """TRUE when `v` is a word exports write for "no value" (`NULL`, `NaN`, `N/A`, `\\N`...):
    a user id `NULL` is a missing user, a birth year `unknown` is unknown, not a bad line.
    Exact spellings in a CASE chain: `lower()` on every value would cost 3x as much."""
    whens = " ".join(f"WHEN {quote_literal(word)} THEN TRUE" for word in _NULL_SPELLINGS)
    # a cheap guard first: the words start with a few characters (a range compare reads only the
    # string's prefix), and are short
    starts = " OR ".join(
        f"({v} >= {quote_literal(c)} AND {v} < {quote_literal(chr(ord(c) + 1))})"
        for c in sorted({word[0] for word in _NULL_SPELLINGS})
    )
    return f"(({starts}) AND strlen({v}) <= 7 AND CASE {v} {whens} ELSE FALSE END)"


def _whole_id(v: str) -> str:
    """An id a float column wrote (`541312140.0`, as pandas does for ids with gaps) is the id
    `541312140`, so one user never becomes two; any other id stays exactly as sent."""
    return (
        f"CASE WHEN contains({v}, '.') AND regexp_full_match({v}, '-?[0-9]+\\.0+') "
        f"THEN split_part({v}, '.', 1) ELSE {v} END"
    )


def _trimmed(text: str) -> str:
    """Trim spaces, empty becomes NULL. The guard makes it ~3x cheaper: DuckDB's trim copies
    every string, and almost none need trimming."""
    return (
        f"nullif(CASE WHEN starts_with({text}, ' ') OR ends_with({text}, ' ') "
        f"THEN trim({text}) ELSE {text} END, '')"
    )


def _epoch_sql(d: str) -> str:
    """Unix time to TIMESTAMP, guessing the unit from the magnitude (s, ms, us, ns)."""
    micros = (
        f"CASE WHEN abs({d}) >= 1e17 THEN {d} / 1000 WHEN abs({d}) >= 1e14 THEN {d} "
        f"WHEN abs({d}) >= 1e11 THEN {d} * 1000 ELSE {d} * 1e6 END"
    )
    return (
        f"CASE WHEN abs({micros}) < 9e15 THEN make_timestamp(CAST(round({micros}) AS BIGINT)) END"
    )


def _timestamp_sql(v: str, d: str, native: str | None, fmt: str | None = None) -> str:
    """A timestamp in UTC from a native value, a Unix number, or text with or without a zone.

    Text without a zone is read as UTC because ingest runs with the session time zone at UTC.
    With a strptime format (`--ts-format`) text is read by that format only.
    """
    if native is not None and native.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone('UTC', {v})"
    if _is_temporal(native):
        return f"CAST({v} AS TIMESTAMP)"
    if _is_numeric(native):
        return _epoch_sql(d)
    spaced_offset = rf"regexp_replace({v}, '\s+([+-]\d\d):?(\d\d)$', '\1:\2')"
    text = (
        f"coalesce(timezone('UTC', TRY_CAST({v} AS TIMESTAMPTZ)), "
        f"timezone('UTC', TRY_CAST({spaced_offset} AS TIMESTAMPTZ)))"
    )
    if fmt is not None:  # the format first; Unix numbers and ISO 8601 text still read
        parsed = f"try_strptime({v}, {quote_literal(fmt)})"
        parsed = f"timezone('UTC', {parsed})" if re.search("%[zZ]", fmt) else parsed
        return f"coalesce({parsed}, CASE WHEN {d} IS NOT NULL THEN {_epoch_sql(d)} ELSE {text} END)"
    return f"CASE WHEN {d} IS NOT NULL THEN {_epoch_sql(d)} ELSE {text} END"


def _vocabulary_sql(
    v: str, synonyms: dict[str, tuple[str, ...]], sent: Mapping[str, str] | None = None
) -> str:
    """Canonical value or NULL. Values the user mapped (`sent`) come first, exactly as sent;
    values already canonical skip the normalising string work, and CASE chains (not IN lists,
    which DuckDB plans as joins) keep it a cheap projection."""
    key = f"replace(replace(lower({v}), '-', '_'), ' ', '_')"
    canon = " ".join(
        [f"WHEN {quote_literal(a)} THEN {quote_literal(b)}" for a, b in (sent or {}).items()]
        + [f"WHEN {quote_literal(c)} THEN {quote_literal(c)}" for c in synonyms]
    )
    whens = " ".join(
        f"WHEN {quote_literal(name)} THEN {quote_literal(c)}"
        for c, names in synonyms.items()
        for name in names
    )
    return f"CASE {v} {canon} ELSE CASE {key} {whens} END END"


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
        absent = f"({t} IS NULL AND {_null_word(v)})"
    if col.required:
        lv.checks.append((f"({v} IS NULL OR {absent})", f"missing_{col.name}"))
    if col.name in VOCABULARIES:
        vocabulary = _vocabulary_sql(v, VOCABULARIES[col.name], reading.value_map(col.name))
        lv.add(col, value, vocabulary, p)
        lv.checks.append((f"{v} IS NOT NULL AND {p} IS NULL", f"unknown_{col.name}"))
    elif col.personal:
        kept = f"CASE WHEN {_null_word(v)} THEN NULL ELSE {v} END"
        lv.add(col, value, kept, f"{lv.hmac}({normalise_sql(col.name, p)})")
    elif col.type == "TIMESTAMP":
        fmt = reading.ts_format if native in (None, "VARCHAR") else None
        number = "NULL" if _is_temporal(native) else f"TRY_CAST({v} AS DOUBLE)"
        if native in (None, "VARCHAR"):  # a Unix number never holds ':': skip the cast for text
            number = f"CASE WHEN contains({v}, ':') THEN NULL ELSE {number} END"
        lv.add(col, value, number, _timestamp_sql(v, p, native, fmt))
        lv.checks.append(
            (
                f"{v} IS NOT NULL AND NOT {absent} AND ({t} IS NULL OR {t} < '{MIN_TS}')",
                "bad_timestamp",
            )
        )
        lv.checks.append((f"{t} > '{lv.future}'", "future_timestamp"))
    elif col.type in ("DOUBLE", "INTEGER"):
        ok = f"isfinite({p})"
        if col.type == "INTEGER":
            ok += f" AND {p} = trunc({p}) AND abs({p}) <= 2147483647"
        number = v
        if reading.decimal_comma and native in (None, "VARCHAR"):
            number = _decimal_comma_sql(v)
        lv.add(
            col,
            value,
            f"TRY_CAST({number} AS DOUBLE)",
            f"CASE WHEN {ok} THEN CAST({p} AS {col.type}) END",
        )
        lv.checks.append(
            (f"{v} IS NOT NULL AND {t} IS NULL AND NOT {absent}", f"bad_type:{col.name}")
        )
    else:
        kept = f"CASE WHEN {_null_word(v)} THEN NULL ELSE {v} END" if words else v
        lv.add(col, value, kept, _whole_id(p) if col.name.endswith("_id") else p)


def _decimal_comma_sql(v: str) -> str:
    """`1.234,50` -> `1234.50`: dots (or spaces) group thousands, the comma marks decimals. Text
    that is not such a number (`12.50`, `1,2,3`) stays unreadable: quarantined as `bad_type`."""
    groups = "[. \u00a0\u202f]"
    grouped = rf"^[+-]?(\d{{1,3}}({groups}\d{{3}})+|\d+)(,\d+)?$"
    return (
        f"CASE WHEN regexp_full_match({v}, {quote_literal(grouped)}) "
        f"THEN replace(regexp_replace({v}, {quote_literal(groups)}, '', 'g'), ',', '.') END"
    )


def _range_checks(source: Source) -> list[tuple[str, str]]:
    names = {c.name for c in source.columns}
    checks = [(f"__t_{m} < 0", "negative_money") for m in MONEY if m in names]
    if "quantity" in names:
        checks.append(("__t_quantity <= 0", "bad_quantity"))
    if "rating" in names:
        checks.append(("__t_rating NOT BETWEEN 1 AND 5", "bad_rating"))
    return checks


def _ordered_checks(lv: _Levels, source: Source) -> list[tuple[str, str]]:
    """First failing rule wins: missing keys, vocabulary, time, types, then ranges."""
    order = ("missing_", "unknown_", "bad_timestamp", "future_timestamp", "bad_type:")
    ranked = sorted(
        lv.checks, key=lambda c: next(i for i, o in enumerate(order) if c[1].startswith(o))
    )
    return ranked + _range_checks(source)


def _raw_sql(source: Source, staged: Staged, hmac: str | None) -> str:
    """Raw text for quarantine; for a source with personal columns never the personal values.

    There the record is shown as JSON of its canonical columns with pseudonyms, and a record that
    could not even be split is shown only by its keyed hash.
    """
    if not source.personal:
        return staged.raw
    fields = ", ".join(
        f"{quote_ident(c.name)} := {'__t_' if c.personal else '__v_'}{c.name}"
        for c in source.columns
    )
    return (
        f"CASE WHEN __fault IS NOT NULL THEN "
        f"'[redacted record of a source with personal columns; hmac ' || {hmac}({staged.raw}) || ']' "
        f"ELSE to_json(struct_pack({fields}))::VARCHAR END"
    )


def _output_sql(source: Source, name: str) -> str:
    """The stored value; an event's amount defaults to price times quantity (1 when absent)."""
    names = {c.name for c in source.columns}
    if name == "amount" and {"price", "quantity"} <= names:
        return "coalesce(__t_amount, __t_price * coalesce(__t_quantity, 1))"
    return f"__t_{name}"


def typed_query(
    source: Source,
    staged: Staged,
    resolved: Mapping[str, str],
    *,
    now: datetime,
    hmac: str | None = None,
    reading: Reading = AS_SENT,
) -> str:
    """One SELECT giving, per record: `_rec`, `_reason` (NULL when loaded), `_raw` (only when
    quarantined), `_unknown` (the value an `unknown_<column>` record sent) and every canonical
    column typed. `now` is the wall clock, used only to refuse timestamps from the future.
    """
    lv = _Levels(hmac=hmac, future=(now + FUTURE_SLACK).isoformat(sep=" "))
    for col in source.columns:
        _column_levels(col, staged, resolved.get(col.name), lv, reading)
    whens = " ".join(f"WHEN {cond} THEN '{reason}'" for cond, reason in _ordered_checks(lv, source))
    outs = ", ".join(
        f"{_output_sql(source, c.name)} AS {quote_ident(c.name)}" for c in source.columns
    )
    unknown = " ".join(
        f"WHEN 'unknown_{c.name}' THEN __v_{c.name}"
        for c in source.columns
        if c.name in VOCABULARIES
    )
    unknown = f"CASE __reason {unknown} END" if unknown else "CAST(NULL AS VARCHAR)"
    return f"""
WITH s AS (SELECT *, {staged.rec} AS __rec, {staged.fault} AS __fault, {", ".join(lv.values)}
           FROM {staged.relation}),
p AS (SELECT *, {", ".join(lv.parsed)} FROM s),
f AS (SELECT *, {", ".join(lv.finals)} FROM p),
r AS (SELECT *, CASE WHEN __fault IS NOT NULL THEN __fault {whens} END AS __reason FROM f)
SELECT __rec AS _rec, __reason AS _reason,
       CASE WHEN __reason IS NOT NULL THEN {_raw_sql(source, staged, hmac)} END AS _raw,
       {unknown} AS _unknown, {outs}
FROM r"""
