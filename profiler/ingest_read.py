"""Reading an input file into DuckDB as text records: formats, fingerprints, Parquet and JSON lines.

Readers only stage: they put the file's records in a temporary relation and describe it with a
`Staged`; typing and checks are `ingest_rules`, writing to the warehouse is `ingest`. CSV, the
format with the most ways to break, has its own module (`ingest_csv`).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import re
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.ingest_columns import Staged
from profiler.sqltext import literal as quote_literal
from profiler.sqltext import quote as quote_ident

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".dat": "csv",  # delimited text under another name (the RecSys 2015 clicks.dat)
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
CHUNK = 1 << 24
STAGE = "_ingest_stage"  # the temp table a reader fills when DuckDB cannot read the file in place
BAD_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of bytes that are not UTF-8


@dataclass(frozen=True)
class FileInfo:
    """What ingest knows of a file before reading it: its format, fingerprint and line count."""

    path: Path
    format: str  # csv, parquet or jsonl
    gzip: bool
    sha256: str  # of the content: a text file's decompressed bytes, so x.csv and x.csv.gz agree
    physical_lines: int  # lines of the (decompressed) text, the header included; 0 for Parquet
    size: int  # decompressed bytes
    file_sha256: str = ""  # of the bytes on disk, where they differ (.gz): what older versions kept
    foreign_byte: tuple[int, int] | None = None  # (line, byte): the first byte that is not UTF-8
    utf8_text: bool = False  # holds a character written in UTF-8's multi-byte form
    sent_as: Path | None = None  # the file as sent, when `path` is its UTF-8 copy (`--encoding`)
    ends_mid_line: bool = False  # text whose last line has no line break: cut short, maybe

    @property
    def shown_path(self) -> Path:
        return self.sent_as or self.path

    @property
    def other_encoding(self) -> bool:
        """Bytes that are not UTF-8 and no UTF-8 text at all: another encoding (Latin-1, as
        Excel saves CSV), not a UTF-8 file with a broken byte."""
        return self.foreign_byte is not None and not self.utf8_text

    @property
    def fingerprints(self) -> tuple[str, ...]:
        """Every fingerprint a previous load of this content may have been recorded under."""
        return (self.sha256, self.file_sha256) if self.file_sha256 else (self.sha256,)


# how the kinds of file shops' data often comes in become one that ingest reads
_SAVE_AS = {
    ".xlsx": "save the sheet as CSV UTF-8 first (Excel: File > Save As; LibreOffice: "
    "`soffice --headless --convert-to csv FILE`)",
    ".xls": "save the sheet as CSV UTF-8 first (Excel: File > Save As)",
    ".zip": "unzip it first (`unzip FILE`) and ingest the files inside",
    ".bz2": "decompress it first (`bunzip2 FILE`), or recompress it with gzip",
    ".xz": "decompress it first (`unxz FILE`), or recompress it with gzip",
    ".zst": "decompress it first (`zstd -d FILE`), or recompress it with gzip",
}


def detect_format(path: Path) -> tuple[str, bool]:
    """Format by extension (`.gz` on top of a text format allowed); unknown extensions refused."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    fmt = FORMATS.get(ext)
    if fmt is None or (gz and fmt == "parquet"):
        known = ", ".join(sorted(FORMATS)) + " (and .gz of the text formats)"
        how = _SAVE_AS.get(ext, "")
        raise ProfilerError(
            f"{path}: unknown file type {''.join(suffixes) or '(none)'}; use {known}"
            + (f"; {how}" if how else "")
        )
    return fmt, gz


def file_info(path: Path) -> FileInfo:
    """Fingerprint the content and count text lines in one pass (the count checks the CSV
    reader). A gzip file is fingerprinted decompressed, so sending it again unzipped (or the other
    way round) is seen as the same content."""
    fmt, gz = detect_format(path)
    digest, lines, size, last = hashlib.sha256(), 0, 0, b"\n"
    on_disk = hashlib.sha256() if gz else None
    unzip = _Gunzip() if gz else None
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")  # across chunk edges
    foreign, utf8_chars, bad_bytes = None, 0, 0
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                if fmt == "parquet":
                    digest.update(chunk)
                    continue
                text = unzip.decompress(chunk) if unzip else chunk
                digest.update(text)
                if on_disk:
                    on_disk.update(chunk)
                # UTF-8 characters and broken bytes are counted, chunk by chunk, until one kind
                # clearly wins: Shift-JIS makes a few UTF-8 characters by chance
                # among many broken bytes (helper-39); a clean file stops being decoded (helper-41)
                decided = utf8_chars > 4 * bad_bytes + 100_000 or (
                    foreign is not None and bad_bytes > 4 * utf8_chars + 10_000
                )
                if not text.isascii() and not decided:
                    decoded = decoder.decode(text)
                    # counted by string lengths, never a list per character (helper-41)
                    broken = len(decoded) - len(BAD_BYTE.sub("", decoded))
                    bad_bytes += broken
                    utf8_chars += len(decoded) - len(decoded.encode("ascii", "ignore")) - broken
                    bad = BAD_BYTE.search(decoded) if foreign is None else None
                    if bad:
                        line = lines + decoded.count("\n", 0, bad.start()) + 1
                        foreign = (line, ord(bad.group()) - 0xDC00)
                lines, size = lines + text.count(b"\n"), size + len(text)
                last = text[-1:] or last
    except (OSError, zlib.error) as exc:
        raise ProfilerError(f"cannot read {path}: {exc}") from None
    if unzip and not unzip.complete:  # helper-38: DuckDB's "Unexpected end of GZIP stream"
        raise ProfilerError(
            f"{path.name} is cut short: its gzip data ends before the end of the file it holds "
            "(a copy or a download cut off?); send it whole; nothing loaded"
        )
    if size and last != b"\n":
        lines += 1  # a last line without a line break is still a line
    file_sha256 = on_disk.hexdigest() if on_disk else ""
    # a UTF-8 file with a few broken bytes has as many UTF-8 characters or more; Shift-JIS
    # makes a chance one among dozens of broken bytes, and GBK one among three (helper-45: 女
    # and 装 are two valid UTF-8 characters in GBK, and --encoding gbk was overruled)
    utf8_text = utf8_chars > 0 and utf8_chars >= bad_bytes
    return FileInfo(path, fmt, gz, digest.hexdigest(), lines, size, file_sha256, foreign, utf8_text,
                    ends_mid_line=fmt != "parquet" and bool(size) and last != b"\n")  # fmt: skip


class _Gunzip:
    """Streaming gunzip of every member: `cat a.gz b.gz` and appended logs (`gzip -c >> f.gz`)
    hold several, and zlib stops at the end of the first."""

    def __init__(self) -> None:
        self._member = zlib.decompressobj(wbits=47)
        self._fed = False

    def decompress(self, data: bytes) -> bytes:
        self._fed = True
        out = [self._member.decompress(data)]
        while self._member.eof and self._member.unused_data:
            rest = self._member.unused_data
            self._member = zlib.decompressobj(wbits=47)
            out.append(self._member.decompress(rest))
        return b"".join(out)

    @property
    def complete(self) -> bool:
        """Did the last member end? A copy or download cut short ends inside one; an empty file
        is no gzip data at all (refused as empty, helper-41)."""
        return self._member.eof or not self._fed


def as_utf8(info: FileInfo, encoding: str, folder: Path) -> FileInfo:
    """A UTF-8 copy of a text file sent in `encoding` (`--encoding cp1252`), in `folder`: read
    as usual, recorded under the content and the name it was sent with."""
    copy = folder / (info.path.name[:-3] if info.gzip else info.path.name)  # `.gz`, any case
    opener = gzip.open if info.gzip else open
    try:
        with opener(info.path, "rb") as raw, open(copy, "wb") as out:
            reader = codecs.getreader(encoding)(raw, errors="strict")
            writer = codecs.getwriter("utf-8")(out)
            shutil.copyfileobj(reader, writer, CHUNK)
    except UnicodeDecodeError as exc:
        raise ProfilerError(
            f"{info.path.name} is not {encoding}: byte 0x{exc.object[exc.start]:02X} has no "
            f"character in it; name the file's encoding with --encoding"
            # GBK lacks what GB18030 has (helper-48: a `¥` sign)
            + (" (gb18030, GBK's superset?)" if encoding in ("gbk", "gb2312") else "")
        ) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise ProfilerError(f"cannot read {info.path}: {exc}") from None
    return replace(
        file_info(copy),
        sha256=info.sha256,
        file_sha256=info.file_sha256,
        sent_as=info.path,
    )


def starts_utf16(info: FileInfo) -> bool:
    """The file starts with UTF-16's byte-order mark (FF FE or FE FF)."""
    opener = gzip.open if info.gzip else open
    with opener(info.path, "rb") as fh:
        return fh.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def read_lines(info: FileInfo) -> tuple[list[str], bool]:
    """The file's physical lines without terminators (LF or CRLF), and whether any byte was not
    UTF-8. Such bytes survive as surrogates (`surrogateescape`) for the reader to report."""
    try:
        data = gzip.decompress(info.path.read_bytes()) if info.gzip else info.path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise ProfilerError(f"cannot read {info.path}: {exc}") from None
    try:
        text, bad = data.decode("utf-8"), False
    except UnicodeDecodeError:
        text, bad = data.decode("utf-8", "surrogateescape"), True
    del data
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines, bad


def shown(text: str) -> str:
    """Text safe to store: bytes that were not UTF-8 appear as `\\xNN` escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def first_line(info: FileInfo) -> str | None:
    """The first line, decoded leniently (only names are read from it); None if the file holds
    nothing but blank space, which is an empty file rather than an error."""
    if info.size == 0:
        return None
    opener = gzip.open if info.gzip else open
    try:
        with opener(info.path, "rb") as fh:
            first = fh.readline(1 << 20)
            more = fh.read(1 << 16) if not first.strip() else b"x"
    except (OSError, EOFError, zlib.error) as exc:
        raise ProfilerError(f"cannot read {info.path}: {exc}") from None
    if not first.strip() and not more.strip():
        return None
    return first.decode("utf-8-sig", "replace").rstrip("\r\n")


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple:
    """The single row of a query, fully consumed (DuckDB 2 refuses new work on an open result)."""
    return con.execute(sql, params or []).fetchall()[0]


def stage_arrow(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, list]) -> None:
    """Copy Python-built columns into a temp table so later SQL reads a plain DuckDB table."""
    import pyarrow as pa

    types = {"_rec": pa.int64(), "_fields": pa.list_(pa.string())}  # the rest are text
    table = pa.table({n: pa.array(v, types.get(n, pa.string())) for n, v in columns.items()})
    con.register("_ingest_arrow", table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _ingest_arrow")
    finally:
        con.unregister("_ingest_arrow")


def _stage_numbered(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """The Parquet file into the STAGE table with `__profiler_row` numbering its rows from 0,
    batch by batch, so memory holds one batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    schema = file.schema_arrow.append(pa.field("__profiler_row", pa.int64()))

    def numbered():
        start = 0
        for batch in file.iter_batches():
            rows = pa.array(range(start, start + batch.num_rows), pa.int64())
            yield pa.RecordBatch.from_arrays([*batch.columns, rows], schema=schema)
            start += batch.num_rows

    reader = pa.RecordBatchReader.from_batches(schema, numbered())
    con.register("_ingest_numbered", reader)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGE} AS SELECT * FROM _ingest_numbered")
    finally:
        con.unregister("_ingest_numbered")


def stage_parquet(con: duckdb.DuckDBPyConnection, info: FileInfo) -> Staged:
    """Parquet is already typed and framed: read it in place, numbering rows from 1."""
    path = quote_literal(str(info.path))
    relation, number = f"read_parquet({path}, file_row_number=true)", "file_row_number"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    except duckdb.Error as exc:
        # its first line: the rest quotes the query, which names the option (helper-125: a
        # cut file of a short path went to pyarrow, whose ArrowInvalid crashed ingest)
        if "file_row_number" not in _first_line(exc):
            raise ProfilerError(f"cannot read {info.path} as Parquet: {_first_line(exc)}") from None
        # the file has a column of that name (DuckDB writes one on request, helper-82): its
        # batches, numbered as they are read, go into a copy (helper-86: a `rowid` column of the
        # file shadowed DuckDB's row ids)
        _stage_numbered(con, info.path)
        relation, number = STAGE, "__profiler_row"
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    names = [row[0] for row in described if row[0] != number]
    types = {row[0]: row[1] for row in described}
    fields = ", ".join(f"{quote_ident(n)} := {quote_ident(n)}" for n in names)
    int96 = con.execute(
        f"SELECT name FROM parquet_schema({quote_literal(str(info.path))}) WHERE type = 'INT96'"
    ).fetchall()
    return Staged(
        relation=relation,
        columns=names,
        values={n: quote_ident(n) for n in names},
        native={n: types[n] for n in names},
        rec=f"{number} + 1",
        raw=f"to_json(struct_pack({fields}))::VARCHAR",
        int96=[n for (n,) in int96 if n in names],
    )


def stage_jsonl(
    con: duckdb.DuckDBPyConnection, info: FileInfo, parents: tuple[str, ...] = ()
) -> Staged:
    """JSON lines: one record per physical line, so a broken line costs only itself."""
    head = first_line(info)
    if head is None:
        return Staged(relation="(SELECT 1)", columns=[], values={}, empty=True)
    if head.lstrip().startswith("["):
        raise ProfilerError(f"{info.path} holds a JSON array; write one JSON object per line")
    relation = _lines_by_duckdb(con, info) or _lines_by_python(con, info)
    keys = con.execute(  # json_keys gives [] for arrays and scalars: only validity matters
        f"SELECT k FROM (SELECT unnest(json_keys(_raw)) AS k, _rec FROM {relation} "
        "WHERE _fault IS NULL AND json_valid(_raw)) GROUP BY k ORDER BY min(_rec), k"
    ).fetchall()
    # the keys of objects one level down, as `parent.key` (Segment's `properties.product_id`)
    inner = con.execute(
        "SELECT k, sk FROM (SELECT _rec, k, unnest(json_keys(_raw, '$.\"' || replace(k, '\"', "
        "'\\\"') || '\"')) AS sk FROM (SELECT _rec, _raw, unnest(json_keys(_raw)) AS k FROM "
        # only a line with `:{` can hold an object: a flat file costs one string scan
        f"{relation} WHERE _fault IS NULL AND (contains(_raw, ':{{') OR contains(_raw, ': {{')) "
        f"AND json_valid(_raw)) WHERE lower(k) IN ({', '.join(map(quote_literal, parents)) or 'NULL'}) "
        "AND json_type(_raw, '$.\"' || "
        "replace(k, '\"', '\\\"') || '\"') = 'OBJECT') GROUP BY ALL ORDER BY min(_rec), k, sk"
    ).fetchall()
    names = [k for (k,) in keys]
    paths = {
        f"{k}.{sk}": quote_literal(f"$.{_json_key(k)}.{_json_key(sk)}")
        for k, sk in inner
        if f"{k}.{sk}" not in names
    }
    return Staged(
        relation=relation,
        columns=names + list(paths),
        values={},  # filled by `jsonl_values` once the columns are resolved
        fault="__json_fault",
        paths=paths,
    )


def unpack_json_text(
    con: duckdb.DuckDBPyConnection, staged: Staged, parents: tuple[str, ...]
) -> Staged:
    """A text column of JSON objects named like a parent (PostHog's CSV `properties`) gives its
    keys as `column.key`, as a JSON lines file's objects do (helper-35: every product, price and
    session of a PostHog export was ignored with its `properties`, and `--map` could not name
    them). Only lines whose value parses are asked for a key."""
    for name in list(staged.columns):
        native = staged.native.get(name)
        if (
            name.lower() not in parents
            or name not in staged.values
            or native not in (None, "VARCHAR", "JSON")
        ):
            continue
        v = f"CAST({staged.values[name]} AS VARCHAR)"
        obj = f"(starts_with(ltrim({v}), '{{') AND json_valid({v}))"
        keys = con.execute(
            f"SELECT k FROM (SELECT unnest(json_keys({v})) AS k, {staged.rec} AS r "
            f"FROM {staged.relation} WHERE {obj}) GROUP BY k ORDER BY min(r), k"
        ).fetchall()
        for (key,) in keys:
            column = f"{name}.{key}"
            if column in staged.columns:
                continue
            staged.columns.append(column)
            staged.values[column] = (
                f"CASE WHEN {obj} THEN json_extract_string({v}, {json_path(key)}) END"
            )
            staged.paths[column] = json_path(key)
            staged.nested_value[column] = (
                f"({obj} AND json_type({v}, {json_path(key)}) IN ('OBJECT', 'ARRAY'))"
            )
    return staged


def _lines_by_duckdb(con: duckdb.DuckDBPyConnection, info: FileInfo) -> str | None:
    """Lines read by DuckDB as one text column; None if it cannot (bad bytes, mixed line ends).

    The delimiter is a control character valid JSON never holds unescaped; a line with one is
    left to the Python reader, like any other line DuckDB refuses.
    """
    read = (
        f"read_csv({quote_literal(str(info.path))}, columns={{'_raw': 'VARCHAR'}}, header=false, "
        "delim='\x1f', quote='', escape='', auto_detect=false, strict_mode=true, "
        f"compression={quote_literal('gzip' if info.gzip else 'none')})"
    )
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGE} AS SELECT * FROM {read}")
    except (duckdb.InvalidInputException, duckdb.ConversionException):
        return None
    if one_row(con, f"SELECT count(*) FROM {STAGE}")[0] != info.physical_lines:
        return None
    return (
        f"(SELECT rowid + 1 AS _rec, CASE WHEN _raw IS NULL THEN 'empty_line' END AS _fault, "
        f"coalesce(_raw, '') AS _raw FROM {STAGE})"
    )


def _lines_by_python(con: duckdb.DuckDBPyConnection, info: FileInfo) -> str:
    lines, check_bad = read_lines(info)
    faults = [
        "empty_line" if not line else "bad_encoding" if check_bad and BAD_BYTE.search(line)
        else None
        for line in lines
    ]  # fmt: skip
    raws = [shown(line) for line in lines] if check_bad else lines
    recs = list(range(1, len(lines) + 1))
    stage_arrow(con, STAGE, {"_rec": recs, "_fault": faults, "_raw": raws})
    return STAGE


def _json_key(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def json_path(key: str) -> str:
    return quote_literal("$." + _json_key(key))


def jsonl_values(staged: Staged, resolved: dict[str, str], checked: Sequence[str] = ()) -> None:
    """Extract only the keys ingest will use (`resolved`: canonical column -> key, and the
    ignored keys the warnings read, `checked`): each line is parsed twice in all (its type, then
    every used key at once), and only when it holds no other fault. A used key holding an object
    or an array (`{"user": {"id": 1}}`) is no value of that column: the record is quarantined as
    `bad_type:<column>`, never stored as JSON text."""
    read = list(dict.fromkeys(resolved.values()))
    used = read + [k for k in dict.fromkeys(checked) if k not in read]
    column = {key: name for name, key in reversed(list(resolved.items()))}  # the first one
    path = {k: staged.paths.get(k) or json_path(k) for k in used}
    paths = ", ".join(path[k] for k in used)
    fault = (  # try(): json_type raises on malformed text instead of returning NULL
        "coalesce(_fault, CASE WHEN try(json_type(_raw)) IS DISTINCT FROM 'OBJECT' "
        "THEN 'bad_json' END)"
    )
    # only a value that starts like one is asked its JSON type: a third parse, of those lines only
    nested = " ".join(
        f"WHEN (starts_with(__json[{i + 1}], '{{') OR starts_with(__json[{i + 1}], '[')) "
        f"AND json_type(_raw, {path[k]}) IN ('OBJECT', 'ARRAY') "
        f"THEN {quote_literal('bad_type:' + column[k])}"
        for i, k in enumerate(read)
    )
    # a JSON number past 2^53 is read as a float and its last digits are gone, as in Parquet
    # (`2.05301e+18` loaded as 2053010000000000000, merging categories: helper-99); a longer
    # integer is kept as sent, and a string is text
    lossy = " ".join(
        f"WHEN (contains(__json[{i + 1}], '.') OR contains(lower(__json[{i + 1}]), 'e')) "
        f"AND abs(TRY_CAST(__json[{i + 1}] AS DOUBLE)) >= {2**53} "
        f"AND json_type(_raw, {path[k]}) = 'DOUBLE' "
        f"THEN {quote_literal('lossy_id:' + column[k])}"
        for i, k in enumerate(read)
        if column[k].endswith("_id")
    )
    nested = f"CASE {nested} {lossy} END" if nested or lossy else "NULL"
    staged.relation = (
        f"(SELECT *, coalesce(__json_fault0, {nested}) AS __json_fault FROM "
        f"(SELECT *, CASE WHEN __json_fault0 IS NULL THEN json_extract_string(_raw, [{paths}]) "
        f"END AS __json FROM (SELECT *, {fault} AS __json_fault0 FROM {staged.relation})))"
    )
    staged.values = {k: f"__json[{i + 1}]" for i, k in enumerate(used)}


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
