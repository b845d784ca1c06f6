"""Files refused whole before anything loads, for a shape that would load wrong: ratings on
another scale than stars, Parquet lists or structs read as one value, and an order's items as a
list on one line.
"""

from __future__ import annotations

import duckdb

from profiler.errors import ProfilerError
from profiler.ingest_columns import Staged, loose
from profiler.ingest_kept import ITEM_LISTS
from profiler.ingest_options import Reading
from profiler.ingest_read import one_row
from profiler.ingest_write import Stats
from profiler.sqltext import literal as quote_literal
from profiler.sqltext import quote as quote_ident


def refuse_another_scale(con, stats: Stats, reading: Reading, file: str, typed: str) -> None:
    """Ratings spread over 6 to 10 are no stars: a 1-10 scale would lose its good ratings to
    quarantine and read the rest as stars (helper-32: 480 of 977 lines loaded, the mean 2.99 stars
    for a true 5.57 of 10). Refused whole, with the option that reads it; a few stray 10s of a
    5-star file are not a scale (helper-33), and `--rating-scale 5` says so."""
    if not stats.reasons.get("bad_rating") or reading.rating_scale is not None:
        return
    rated, above, top, spread = one_row(
        con,
        f"SELECT count(rating), count(*) FILTER (WHERE rating > 5), max(rating), "
        f"count(DISTINCT rating) FILTER (WHERE rating BETWEEN 6 AND 9) FROM {typed} "
        "WHERE _reason IS NULL OR _reason = 'bad_rating'",
    )
    if not above or top < 8 or top > 100 or (top <= 10 and spread < 2):
        return  # a few stray 10s (helper-33): their lines are in quarantine, named
    scale = 10 if top <= 10 else 100
    raise ProfilerError(
        f"{file}: {above:,} of {rated:,} ratings are above 5 (up to {top}): a scale of {scale} "
        f"points? Ratings are stars 1-5, so those lines would be lost and the rest read as stars; "
        f"send it with --rating-scale {scale} (read as ceil(rating x 5 / {scale}) stars), or "
        "--rating-scale 5 if it is stars (values above 5 go to quarantine); nothing loaded"
    )


def refuse_nested(staged: Staged, resolved: dict[str, str], file: str) -> None:
    """A Parquet list or struct is many values (GA4's `items`, `event_params`): read as one text
    it became one item id, or a session id holding the search (helper-27)."""
    for target, column in resolved.items():
        kind = staged.native.get(column) or ""
        if kind.endswith("]") or kind.startswith(("STRUCT", "MAP", "UNION")):
            raise ProfilerError(
                f"{file}: column {column!r} ({kind[:60]}) holds nested values, not one {target}; "
                "flatten the file first, one line per item (DuckDB: SELECT *, unnest(items, "
                "recursive := true) FROM 'file.parquet'); nothing loaded"
            )


def refuse_item_lists(
    con: duckdb.DuckDBPyConnection, staged: Staged, ignored: list[str], file: str
) -> None:
    """A Parquet column of an order's items, unread (helper-61: a Spark file's `items`
    list<struct> loaded 200 purchases without their 214 items, prices or categories); a column
    whose lists are all empty is none (helper-65: GA4's page_views, `items = []`, were refused)."""
    for column in ignored:
        kind = staged.native.get(column) or ""
        if not (
            kind.startswith("STRUCT") and kind.endswith("[]") and loose(column).endswith(ITEM_LISTS)
        ):
            continue
        (filled,) = one_row(
            con,
            f"SELECT count(*) FROM {staged.relation} WHERE len({quote_ident(column)}) > 0",
        )
        if filled:
            # an order's own column named as an item's (its total as `price`) would take the
            # item's name, and the item's value be renamed away (helper-66: spend +14%)
            clash = [c for c in staged.columns if c != column and c in _struct_fields(kind)]
            left_out = ", ".join(quote_ident(c) for c in [column, *clash])
            raise ProfilerError(
                f"{file}: column {column!r} holds a list of items on {filled:,} line(s), which one event "
                "cannot hold (its items, prices and categories would go unread); flatten the file "
                f"first, one line per item, a line without items kept (DuckDB: COPY (SELECT * "
                f"EXCLUDE ({left_out}), unnest(CASE WHEN len({quote_ident(column)}) > 0 THEN "
                f"{quote_ident(column)} ELSE [NULL] END, recursive := true) FROM "
                f"{quote_literal(file)}) "
                "TO 'flat.parquet'"
                + (
                    f"; the order's own {', '.join(clash)} left out for the items' own"
                    if clash
                    else ""
                )
                + "); nothing loaded"
            )


def _struct_fields(kind: str) -> set[str]:
    """The field names of a DuckDB STRUCT type as written (`STRUCT(a VARCHAR, "b c" INT)[]`),
    the outer level only."""
    inner = kind[kind.index("(") + 1 : kind.rindex(")")]
    fields, depth, start = set(), 0, 0
    for n, ch in enumerate(inner + ","):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            field_text = inner[start:n].strip()
            quoted = field_text.startswith('"')
            fields.add(
                field_text[1 : field_text.index('"', 1)] if quoted else field_text.split(" ")[0]
            )
            start = n + 1
    return fields


def refuse_record_lists(con: duckdb.DuckDBPyConnection, staged: Staged, file: str) -> None:
    """A JSON lines file whose required columns are missing and one of whose keys holds a list of
    objects on most lines: a record per session or order, its events inside (OTTO's
    `{"session": 12899779, "events": [{"aid": ..., "ts": ..., "type": "clicks"}, ...]}`). Told
    only to --map the missing columns, which no top-level key is (helper-102); called when the
    columns cannot be resolved, so a flat file never pays it."""
    keys = [c for c in staged.columns if c not in staged.paths]
    for key in keys:
        name = key.replace('"', '\\"')  # a key holding a quote stays one key in the path
        path, first = quote_literal(f'$."{name}"'), quote_literal(f'$."{name}"[0]')
        lists, lines = one_row(
            con,
            f"SELECT count(*) FILTER (WHERE json_type(_raw, {path}) = 'ARRAY' AND "
            f"json_type(_raw, {first}) = 'OBJECT'), count(*) FROM {staged.relation} "
            "WHERE _fault IS NULL AND json_valid(_raw)",
        )
        if lines and lists * 2 > lines:
            others = ", ".join(quote_ident(k) for k in keys if k != key)
            raise ProfilerError(
                f"{file}: key {key!r} holds a list of records on {lists:,} of {lines:,} lines, "
                "one line per session or order with its events inside; flatten the file first, "
                f"one line per record (DuckDB: COPY (SELECT {others + ', ' if others else ''}"
                f"unnest({quote_ident(key)}, recursive := true) FROM read_json({quote_literal(file)}, "
                "format = 'newline_delimited')) TO 'flat.parquet'); nothing loaded"
            )
