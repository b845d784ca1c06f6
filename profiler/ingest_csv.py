"""CSV into DuckDB with every record accounted for: a strict fast path, and a careful fallback.

The fast path is DuckDB's reader with the dialect fixed from the header, every column VARCHAR and
no error tolerance: any fault at all aborts it. DuckDB's tolerant modes drop extra fields or merge
lines silently, so they are never used. A file that fails the strict read, or whose record count
does not match its line count, is split again in Python, record by record, and every fault lands
in quarantine with its record number and raw text. Faults are rare, so the slow path is too.
"""

from __future__ import annotations

import csv

import duckdb

from profiler.errors import ProfilerError
from profiler.ingest_columns import Staged
from profiler.ingest_read import (
    BAD_BYTE,
    STAGE,
    FileInfo,
    first_line,
    one_row,
    read_lines,
    shown,
    stage_arrow,
)
from profiler.sqltext import literal as quote_literal

DELIMITERS = (",", ";", "\t", "|")
MAX_SPAN = 1000  # physical lines one quoted field may span before its quote counts as broken


def stage_csv(
    con: duckdb.DuckDBPyConnection, info: FileInfo, columns: tuple[str, ...] = ()
) -> Staged:
    """Stage a CSV file as text columns plus record number, fault and raw text.

    The strict DuckDB read is tried first; the Python split only when it fails, or when the
    records it read do not explain the file's lines. `columns` names the columns of a file
    without a header line (`--columns`); its first line is then a record like the others.
    """
    header = first_line(info)
    if header is None:
        return Staged(relation="(SELECT 1)", columns=[], values={}, empty=True)
    delim = "\t" if ".tsv" in [s.lower() for s in info.path.suffixes] else _sniff(header)
    try:
        names = [n.strip() for n in next(csv.reader([header], delimiter=delim))]
    except (csv.Error, StopIteration):
        if "\r" in header:  # the whole file read as one line: it ends its lines with CR alone
            raise ProfilerError(
                f"{info.shown_path}: its lines end with a carriage return alone (as classic Mac "
                "programs save text); convert them first: tr '\\r' '\\n' < FILE > FIXED"
            ) from None
        raise ProfilerError(
            f"{info.shown_path}: the header line cannot be read as CSV (stray control characters?); fix the first line"
        ) from None
    if columns:
        if len(columns) != len(names):
            raise ProfilerError(
                f"--columns names {len(columns)} column(s); the first line of {info.shown_path.name} "
                f"has {len(names)} field(s): {header[:200]}"
            )
        if [n.lower() for n in names] == [c.lower() for c in columns]:
            raise ProfilerError(
                f"--columns: the first line of {info.shown_path.name} is already a header with those "
                "names; drop --columns to read it"
            )
        names = list(columns)
    if not any(names):
        raise ProfilerError(
            f"{info.shown_path}: the first line is empty; a CSV file needs a header line (eBay's "
            "orders report starts with an empty line: drop the empty lines before the header "
            "first: sed '/[^[:space:]]/,$!d' FILE > FIXED)"
        )
    sent, names = names, numbered(names)
    copies = {new: old for old, new in zip(sent, names, strict=True) if new != old}
    has_header = not columns
    if not _stage_strict(con, info, delim, len(names), has_header):
        staged = _stage_fallback(con, info, delim, names, has_header)
        staged.copies = copies
        return staged
    return Staged(
        relation=STAGE,
        columns=names,
        values={n: f"c{i}" for n, i in _positions(names).items()},
        rec="rowid + 1",  # a base table's rowid, so no later operator can reorder it
        raw=_rebuilt_line(len(names), delim),
        copies=copies,
    )


def _positions(names: list[str]) -> dict[str, int]:
    """Column name -> position (names are unique: `numbered`)."""
    return {name: i for i, name in enumerate(names)}


def numbered(names: list[str]) -> list[str]:
    """A name the header repeats is `NAME (2)` at its second place, `NAME (3)` at its third:
    Mercado Livre's `Estado` is an order's status, then the buyer's state (helper-44: the second
    could not be read), and `--map region='Estado (2)'` reads it."""
    out: list[str] = []
    taken = set(names)  # a header's own `Estado (2)` keeps its name (helper-47)
    for name in names:
        new, n = name, 1
        while name and (new in out or (n > 1 and new in taken)):
            n += 1
            new = f"{name} ({n})"
        out.append(new)
    return out


def _sniff(header: str) -> str:
    """The delimiter is the candidate the header uses most; a one-column file gets a comma."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _strict_read(info: FileInfo, delim: str, ncols: int, has_header: bool) -> str:
    """DuckDB's reader with the dialect fixed, all text, and no tolerance: any fault raises."""
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols)) + "}"
    return (
        f"read_csv({quote_literal(str(info.path))}, auto_detect=false, "
        f"header={str(has_header).lower()}, "
        f"delim={quote_literal(delim)}, quote='\"', escape='\"', columns={columns}, "
        f"strict_mode=true, null_padding=false, ignore_errors=false, "
        f"compression={quote_literal('gzip' if info.gzip else 'none')})"
    )


def _stage_strict(
    con: duckdb.DuckDBPyConnection, info: FileInfo, delim: str, ncols: int, has_header: bool
) -> bool:
    """Copy the strict read into a temp table (rowid = record order: a plain CREATE TABLE AS keeps
    the file's order); False when it fails or cannot be trusted."""
    read = _strict_read(info, delim, ncols, has_header)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGE} AS SELECT * FROM {read}")
    except (duckdb.InvalidInputException, duckdb.ConversionException):
        return False
    (records,) = one_row(con, f"SELECT count(*) FROM {STAGE}")
    return _lines_explained(con, ncols, records + int(has_header), info.physical_lines)


def _lines_explained(con: duckdb.DuckDBPyConnection, ncols: int, records: int, lines: int) -> bool:
    """Do the strictly read records (and the header line, counted in `records`) account for every
    physical line of the file?

    DuckDB skips blank lines silently; quoted line breaks legitimately make records span lines.
    Only the second is fine, so when the counts differ, count the line breaks inside fields.
    """
    if records == lines:
        return True
    breaks = " + ".join(
        f"coalesce(length(c{i}) - length(replace(c{i}, chr(10), '')), 0)" for i in range(ncols)
    )
    (embedded,) = one_row(con, f"SELECT coalesce(sum({breaks}), 0) FROM {STAGE}")
    return records + embedded == lines


def _rebuilt_line(ncols: int, delim: str) -> str:
    """SQL re-serialising a record (fast path only): the file's dialect, quotes only when needed."""
    d = quote_literal(delim)
    fields = [
        f"CASE WHEN c{i} IS NULL THEN '' "
        f"WHEN contains(c{i}, '\"') OR contains(c{i}, {d}) OR contains(c{i}, chr(10)) "
        f"OR contains(c{i}, chr(13)) THEN '\"' || replace(c{i}, '\"', '\"\"') || '\"' ELSE c{i} END"
        for i in range(ncols)
    ]
    return f" || {d} || ".join(fields)


def _stage_fallback(
    con: duckdb.DuckDBPyConnection, info: FileInfo, delim: str, names: list[str], has_header: bool
) -> Staged:
    """Split records in Python, with SQL checking the simple ones (no quote: one line, one record).

    Only lines holding a quote go through `split_record`, so a large file with one bad line
    still costs little more than reading it.
    """
    lines, check_bad = read_lines(info)
    if has_header:
        del lines[0]
    raws, faults, fields = _records(lines, delim, len(names))
    if check_bad:
        for i, raw in enumerate(raws):
            if BAD_BYTE.search(raw):
                raws[i], faults[i], fields[i] = shown(raw), "bad_encoding", []
    recs = list(range(1, len(raws) + 1))
    stage_arrow(con, STAGE, {"_rec": recs, "_fault": faults, "_raw": raws, "_fields": fields})
    d = quote_literal(delim)
    return Staged(
        relation=f"(SELECT *, coalesce(_fields, string_split(_raw, {d})) AS __split FROM {STAGE})",
        columns=names,
        values={n: f"__split[{i + 1}]" for n, i in _positions(names).items()},
        fault=(
            "coalesce(_fault, CASE WHEN _raw = '' THEN 'empty_line' "
            f"WHEN len(__split) <> {len(names)} THEN 'wrong_field_count' END)"
        ),
    )


def _records(
    lines: list[str], delim: str, ncols: int
) -> tuple[list[str], list[str | None], list[list[str] | None]]:
    """Raw text, fault and fields of every record. Lines without a quote are taken in bulk, as
    one record each with fields None (SQL splits and counts them)."""
    raws: list[str] = []
    faults: list[str | None] = []
    fields: list[list[str] | None] = []
    pos = 0
    for i in [i for i, line in enumerate(lines) if '"' in line]:
        if i < pos:
            continue  # inside a record that spans lines
        raws.extend(lines[pos:i])
        faults.extend([None] * (i - pos))
        fields.extend([None] * (i - pos))
        span, fault, parsed = split_record(lines, i, delim, ncols)
        raws.append("\n".join(lines[i : i + span]))
        faults.append(fault)
        fields.append([] if fault else parsed)
        pos = i + span
    raws.extend(lines[pos:])
    faults.extend([None] * (len(lines) - pos))
    fields.extend([None] * (len(lines) - pos))
    return raws, faults, fields


def split_record(
    lines: list[str], i: int, delim: str, ncols: int
) -> tuple[int, str | None, list[str] | None]:
    """The record starting at line `i`, which holds a quote: (lines it spans, fault, fields).

    A quote may open a field that spans lines (legal CSV). If the quotes never balance, do not
    parse, or give the wrong field count over several lines, only line `i` is blamed and reading
    resumes at the next line, so one stray quote never swallows the records after it.
    """
    quotes, j = lines[i].count('"'), i
    while quotes % 2 and j + 1 < len(lines) and j - i < MAX_SPAN:
        j += 1
        quotes += lines[j].count('"')
    if quotes % 2:
        return 1, "bad_quoting", None
    try:
        rows = list(csv.reader([x + "\n" for x in lines[i : j + 1]], delimiter=delim, strict=True))
    except csv.Error:
        return 1, "bad_quoting", None
    if len(rows) != 1 or (j > i and len(rows[0]) != ncols):
        return 1, "bad_quoting", None
    if len(rows[0]) != ncols:
        return 1, "wrong_field_count", None
    return j - i + 1, None, rows[0]
