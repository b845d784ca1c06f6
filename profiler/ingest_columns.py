"""Which file column feeds which canonical column: names and synonyms, `--map`, keys inside JSON
objects and dotted columns, the item's values an event's list of items supplies, and a date and
a time sent in two columns.

`resolve_columns` decides; `ingest_rules.typed_query` then types what it chose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from profiler.errors import ProfilerError
from profiler.ingest_options import option_name
from profiler.ingest_values import is_temporal, null_word
from profiler.sources import Source
from profiler.sqltext import literal as quote_literal

if TYPE_CHECKING:
    import duckdb


# the objects whose keys are the item's or the event's own (GA4's `items.price`, Segment's
# `properties.product_id`); never GA4's `device.category` (desktop) or `user_ltv.revenue` (a
# user's lifetime value), which would read as a category and an amount (helper-31)
LEAF_PARENTS = (
    "items", "item", "product", "products", "properties", "traits",
    "event_properties",  # Amplitude's (helper-35)
)  # fmt: skip


_COLUMN_NAME = re.compile(r"[^\x00-\x1f]{1,255}")  # as written; quoted wherever it is used


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
    # JSON lines: the path of a key inside an object (`properties.product_id`, Segment's shape)
    paths: dict[str, str] = field(default_factory=dict)
    # a text column's JSON key (PostHog's CSV `properties`): its SQL holding a value found an
    # object or an array, which no canonical column takes (`unpack_json_text`)
    nested_value: dict[str, str] = field(default_factory=dict)
    # a birthday column of six-digit numbers (DDMMYY) holds no serial days: a 10190 is its
    # 010190 with the zero lost (helper-47: read as 1927), see `serial_days_possible`
    serial_days: bool = True
    copies: dict[str, str] = field(default_factory=dict)  # `NAME (2)` -> the NAME it repeats
    # Parquet columns of INT96 times (Spark's and Hive's legacy type): zone-less when read, though
    # Spark wrote UTC instants (helper-61: every time 4 hours off, unsaid)
    int96: list[str] = field(default_factory=list)


# the columns a nested key may fill where the top-level one is empty: the item's own
FALLBACK_COLUMNS = ("item_id", "price", "quantity", "brand", "category_id", "category_path")


def nested_fallbacks(
    source: Source,
    resolved: Mapping[str, str],
    mapping: Mapping[str, str],
    nested: Sequence[str],
) -> dict[str, str]:
    """Canonical column -> a key inside an item or event object (`LEAF_PARENTS`) named like it,
    for a column read from a top-level name the user did not --map: that key gives the value
    where the top-level one is empty. Amplitude sends `productId` and `price` at the top level of
    revenue events only, and the product of every event in `event_properties` (helper-39: every
    view lost its item and price). Only the item's own columns, by their names in order (a
    generic `value` or `type` inside an object is no amount or event type: helper-41)."""
    parents = {loose(p) for p in LEAF_PARENTS}
    taken = set(resolved.values())
    leaves: dict[str, str] = {}  # loose leaf -> the first nested key with it
    for key in nested:
        parent, _, leaf = key.rpartition(".")
        if loose(parent) in parents and key not in taken:
            leaves.setdefault(loose(leaf), key)
    out: dict[str, str] = {}
    for col in source.columns:
        column = resolved.get(col.name)
        if col.name not in FALLBACK_COLUMNS or column is None or col.name in mapping:
            continue
        if column in nested:
            continue
        key = next((leaves[k] for k in map(loose, (col.name, *col.synonyms)) if k in leaves), None)
        if key is not None and key not in taken:
            out[col.name] = key
            taken.add(key)
    return out


def apply_fallbacks(
    staged: Staged, resolved: Mapping[str, str], fallbacks: Mapping[str, str]
) -> None:
    """Each fallback's column reads the top-level value, else the nested one, as text; an object
    or array inside is no value of the column (helper-41): no fallback there. A top-level word
    for no value (`"N/A"`, `"null"`) is none: the nested value is read."""
    for target, key in fallbacks.items():
        column, inner = resolved[target], f"CAST({staged.values[key]} AS VARCHAR)"
        top = f"nullif(trim(CAST({staged.values[column]} AS VARCHAR)), '')"
        top = f"CASE WHEN {null_word(top)} THEN NULL ELSE {top} END"
        inner = (
            f"CASE WHEN starts_with({inner}, '{{') OR starts_with({inner}, '[') "
            f"THEN NULL ELSE {inner} END"
        )
        staged.values[column] = f"coalesce({top}, {inner})"
        staged.native[column] = "VARCHAR"


def refuse_nested_values(staged: Staged, resolved: Mapping[str, str]) -> None:
    """A JSON text column's key that holds an object where a column's value is read is no value:
    the record is quarantined as `bad_type:<column>`, as in JSON lines (helper-38)."""
    whens = [
        f"WHEN {staged.nested_value[c]} THEN {quote_literal('bad_type:' + target)}"
        for target, c in resolved.items()
        if c in staged.nested_value
    ]
    if whens:
        staged.fault = f"coalesce({staged.fault}, CASE {' '.join(whens)} END)"


def check_mapping(source: Source, mapping: Mapping[str, str] | None) -> dict[str, str]:
    """Refuse a `--map` before any work: its target must be canonical, its column a name."""
    names = [c.name for c in source.columns]
    for target, column in (mapping or {}).items():
        if target not in names:
            raise ProfilerError(
                f"--map {target}={column}: {target!r} is not a column of source {source.name}; "
                f"choose one of: {', '.join(names)}"
            )
        if not isinstance(column, str):
            raise ProfilerError(f"--map {target}={column!r}: name a column of the file")
        if not column.strip() and target in source.required:  # `--map quantity=`: none read
            raise ProfilerError(f"--map {target}=: {target} is required; name its column")
        if column.strip() and not _COLUMN_NAME.fullmatch(column.strip()):
            raise ProfilerError(f"--map {target}={column!r}: name a column of the file")
    return {t: c.strip() for t, c in (mapping or {}).items()}


def resolve_columns(
    source: Source,
    found: Sequence[str],
    mapping: Mapping[str, str],
    file: str,
    constant: Sequence[str] = (),
    inner: Sequence[str] = (),
) -> tuple[dict[str, str], list[str]]:
    """Canonical column -> file column, by `--map`, then canonical name, then synonym.

    Returns the resolution and the file columns left unused. `--map` names compare
    case-insensitively and trimmed, canonical names and synonyms also ignoring spaces, '_', '-'
    and '.' (CustomerID is customer_id), and a column no name matched takes a dotted column's
    last part (GA4 flattened: `items.price` is price); a file column feeds at most one target
    unless `--map` says otherwise. Columns in `constant` take one value for every record (`--event-type`), so
    no file column feeds them.
    """
    for target in constant:
        if target in mapping:
            raise ProfilerError(
                f"--map {target}={mapping[target]} and {option_name(target)} both set "
                f"{target}; keep one"
            )
    by_key: dict[str, str] = {}
    by_loose_key: dict[str, str] = {}  # CustomerID, customer_id and customer id alike
    by_leaf: dict[str, str] = {}  # a flattened export's `items.price`: price, if nothing else is
    for name in found:
        by_key.setdefault(name.strip().lower(), name)
        if name not in inner:  # a key inside a JSON object: by --map or its last part only
            by_loose_key.setdefault(loose(name), name)
        parent, dot, leaf = name.strip(". ").rpartition(".")
        if dot and loose(parent) in map(loose, LEAF_PARENTS):
            by_leaf.setdefault(loose(leaf), name)
    resolved: dict[str, str] = {}
    left_out = {target for target, column in mapping.items() if not column}  # `--map amount=`
    for target, column in mapping.items():
        if target in left_out:
            continue
        if column.lower() not in by_key:
            raise ProfilerError(
                f"--map {target}={column}: {file} has no column {column!r}; "
                f"found: {', '.join(found) or '(none)'}"
            )
        resolved[target] = by_key[column.lower()]
    used = set(resolved.values())
    # Amazon's order reports: `item-price` is the line's total, "aggregates of the quantity"
    # (helper-57: read as a unit price, spend +47%); GA4's `item_price` is a unit's
    amazon = by_loose_key.get("itemprice")
    free = "amount" not in resolved and "amount" not in left_out and amazon not in (None, *used)
    # its All Orders report names `amazon-order-id`, its Order Report `order-item-id` and
    # `quantity-purchased` (helper-58)
    marks = ("amazonorderid", "orderitemid", "quantitypurchased")
    if source.name == "events" and any(m in by_loose_key for m in marks) and free:
        resolved["amount"] = amazon
        used.add(amazon)
    for col in source.columns:
        if col.name in resolved or col.name in left_out:
            continue
        if col.name in constant:
            # a file that says what each record is must be read, not overridden
            sent = next((by_loose_key[k] for k in map(loose, (col.name, *col.synonyms))
                         if k in by_loose_key and by_loose_key[k] not in used), None)  # fmt: skip
            if sent is not None:
                option = option_name(col.name)
                raise ProfilerError(
                    f"{option}: {file} already has a column of {col.name.replace('_', ' ')}s "
                    f"({sent!r}); "
                    f"drop {option} to read it, or rename that column if it means something else"
                )
            continue
        for candidate in (col.name, *col.synonyms):
            # the name as written first, so `user_id` wins over a `User ID` beside it
            name = by_key.get(candidate.lower()) or by_loose_key.get(loose(candidate))
            if name is not None and name not in used:
                resolved[col.name] = name
                used.add(name)
                break
    for col in source.columns:  # then the last part of dotted names (`items.item_id`)
        if col.name in resolved or col.name in constant or col.name in left_out:
            continue
        name = next(
            (by_leaf[k] for k in map(loose, (col.name, *col.synonyms)) if k in by_leaf), None
        )
        if name is not None and name not in used:
            resolved[col.name] = name
            used.add(name)
    missing = [c for c in source.required if c not in resolved and c not in constant]
    if missing and any(_DATA_LIKE.match(name.strip()) for name in found):
        raise ProfilerError(
            f"{file} lacks required {source.name} column(s) {', '.join(missing)}; its first line "
            f"looks like data, not a header ({', '.join(found)}): name its {len(found)} columns "
            f"in order with --columns A,B,C, from {', '.join(c.name for c in source.columns)} "
            "(any other name for a column to leave out)"
        )
    other = _another_sources_file(source, found) if not mapping and not constant else None
    # helper-80: a reviews file sent as events was told --event-type, which loaded its reviews
    # as purchases; an events file sent as users made each id a registered user
    theirs = other and (
        f"its columns are those of {other} ("
        + " or ".join(f"`profiler ingest {o} {file}`" for o in other.split(" or "))
        + ")"
    )
    if missing:
        hint = "name the right ones with " + " ".join(f"--map {m}=COLUMN" for m in missing)
        if "event_type" in missing:
            hint += "; a file of one kind of event (an orders export) can say --event-type purchase"
        if "kind" in missing:
            hint += "; a file of one kind of feedback (a reviews export) can say --kind review"
        if "ts" in missing:  # helper-101: Instacart's orders hold a weekday, an hour, a gap
            hint += (
                "; a file with no time at all (only a weekday, an hour or the days since the "
                "last order) needs each line's time made before ingest: profiles are stated as "
                "of a time"
            )
        if "user_id" in missing and "session_id" in resolved:
            # helper-61: a session-only clickstream (RecSys 2015's clicks) was told only --map
            hint += (
                f"; a file of sessions without users ({resolved['session_id']!r}) can say "
                f"--map user_id='{resolved['session_id']}', and then profiles each session as "
                "a user (no one's sessions add up)"
            )
        raise ProfilerError(
            f"{file} lacks required {source.name} column(s) {', '.join(missing)}; "
            f"found: {', '.join(found) or '(none)'}; "
            + (f"{theirs}; if it is {source.name} all the same, {hint}" if other else hint)
        )
    if other and set(resolved) <= {source.key}:
        raise ProfilerError(
            f"{file} sends {source.name} no column but {source.key}, and {theirs}; loaded as "
            f"{source.name}, each {source.key} would become one of the shop's {source.name}. "
            f"To load the ids alone, send a file of the {source.key} column"
        )
    ignored = []
    for position, name in enumerate(found, 1):
        if not name.strip():
            ignored.append(f"(unnamed column {position})")  # a header ending in a delimiter
        elif name not in used:
            ignored.append(name)
    return {c.name: resolved[c.name] for c in source.columns if c.name in resolved}, ignored


# a "column name" no export writes: a number, or a date (the first record of a headerless file)
_DATA_LIKE = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$|^\d{4}-\d{2}-\d{2}")


TIME_OF_DAY = r"\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?(\s*[AaPp]\.?[Mm]\.?)?"  # 10:00, 8:26:03, 9:05 PM


JOINED = " + "  # the name of a date and a time column read as one: `date + time`


def header_text(file_column: str) -> str:
    """What a line repeating the header holds for this file column (`ingest_rules`): its name;
    for a date and a time column read as one, the two names joined as their values are."""
    return " ".join(part.strip() for part in file_column.split(JOINED)).strip()


def joined_date_and_time(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    staged: Staged,
    resolved: dict[str, str],
    ignored: list[str],
    mapping: Mapping[str, str],
) -> tuple[dict[str, str], list[str]]:
    """A file that writes the day and the time of day in two columns, `date` and `time` (as point
    of sale and web analytics exports do), gives its time column both, joined by a space:
    `2019-10-01 10:00:00` (a `--ts-format` reads the two that way). Only when the time column was
    found by the synonym `time`, not named by `--map`, and holds times of day (Parquet TIME, or
    text like `10:00`); a `time` column holding whole times is read alone, as before.
    """
    ts = source.time_column
    time_column = resolved.get(ts or "")
    if time_column is None or loose(time_column) != "time" or ts in mapping:
        return resolved, ignored
    date_column = next((c for c in ignored if loose(c) == "date"), None)
    if date_column is None:
        return resolved, ignored
    date_native, time_native = (staged.native.get(c) for c in (date_column, time_column))
    day, t = staged.values[date_column], staged.values[time_column]
    if is_temporal(date_native):
        day = f"CAST({day} AS DATE)"
    elif date_native not in (None, "VARCHAR"):
        return resolved, ignored
    day = f"CAST({day} AS VARCHAR)"
    if time_native is not None and time_native.startswith("TIME") and "STAMP" not in time_native:
        time_of_day = f"CAST({t} AS VARCHAR)"
    elif time_native in (None, "VARCHAR"):
        clock = f"regexp_full_match(trim({t}), {quote_literal(TIME_OF_DAY)})"
        # the header again (files joined with `cat`) is no time (helper-99: the join was
        # dropped and every line quarantined): `typed_query` quarantines it
        header = f"lower(trim({t})) = {quote_literal(time_column.strip().lower())}"
        ((all_clocks,),) = con.execute(  # every time given is a time of day
            f"SELECT coalesce(bool_and(nullif(trim({t}), '') IS NULL OR {clock} OR {header}), "
            f"true) FROM {staged.relation}"
        ).fetchall()  # all: a result left open blocks the connection's next statement
        if not all_clocks:
            return resolved, ignored
        time_of_day = f"trim({t})"
    else:
        return resolved, ignored
    joined = f"{date_column}{JOINED}{time_column}"
    # a day and no time of day is a date (see stg_date_only_events)
    staged.values[joined] = (
        f"CASE WHEN nullif(trim(CAST({t} AS VARCHAR)), '') IS NULL THEN {day} "
        f"ELSE {day} || ' ' || {time_of_day} END"
    )
    staged.native.pop(joined, None)
    return {**resolved, ts: joined}, [c for c in ignored if c != date_column]


def _another_sources_file(source: Source, found: Sequence[str]) -> str | None:
    """The source(s), of those whose records say what they are (events' `event_type`, feedback's
    `kind`), whose required columns a file's header all names (by name or synonym), when it is
    not `source` and names no column only `source` has; None when none."""
    from profiler.sources import SOURCES

    names = {loose(name) for name in found}

    def named(c) -> bool:
        return any(loose(n) in names for n in (c.name, *c.synonyms))

    fits = [
        other.name
        for other in SOURCES.values()
        if other.name != source.name
        and any(c in other.required for c in ("event_type", "kind"))
        and all(named(c) for c in other.columns if c.required)
        # a column only `source` has says the file is `source`'s after all (helper-81: reviews
        # whose kind column is called `event`, with a rating and a text)
        and not any(named(c) for c in source.columns if c.name not in other.column_names_lower())
    ]
    return " or ".join(fits) or None


def loose(name: str) -> str:
    """A column name compared without case, spaces, '_', '-' or '.'."""
    return re.sub(r"[\s_.-]", "", name.lower())


def sends_email_ids(
    con: duckdb.DuckDBPyConnection, source: Source, staged: Staged, resolved: Mapping[str, str]
) -> bool:
    """Does any user id of the file hold an `@`? Only then does a source without personal
    columns need the keyed hash (and its pyarrow import: 0.2 s on every ingest otherwise)."""
    if "user_id" not in resolved or staged.native.get(resolved["user_id"]) not in (None, "VARCHAR"):
        return False
    value = staged.values[resolved["user_id"]]
    ((found,),) = con.execute(
        f"SELECT coalesce(bool_or(contains({value}, '@')), false) FROM {staged.relation}"
    ).fetchall()
    return found
