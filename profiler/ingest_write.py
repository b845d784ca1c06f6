"""What a load writes: the counts of its typed records (the batch row's), then raw rows,
quarantine rows and the batch row in ONE transaction, so a refused or crashing file changes
nothing, and the settings a load leaves for the next (the shop's clock, the rating scale).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from profiler.ingest_kept import SOME_EVENT_ID
from profiler.ingest_options import Reading
from profiler.ingest_read import FileInfo, one_row
from profiler.ingest_resend import take_out
from profiler.ingest_rules import vocabulary_column
from profiler.shop_time import record_zone
from profiler.sources import BATCH_COLUMN, RECORD_COLUMN, SOURCES, Source, engine_columns
from profiler.sqltext import quote as quote_ident
from profiler.state import SCHEMA, ensure_schema, get_setting, put_setting

# the quarantine reason of a line that would have loaded, in a file refused whole
# (`ingest._refusal`)
REFUSED = "file_refused"
RATING_SCALE_KEY = "rating_scale"
UNKNOWN_SHOWN = 5  # values named per `unknown_*` reason in the result


@dataclass
class Stats:
    """What the batch row records, read from the typed records before the transaction opens."""

    lines: int = 0
    loaded: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    min_ts: datetime | None = None
    max_ts: datetime | None = None
    unknown: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    email_ids: int = 0  # loaded lines whose user id was an e-mail address (now its pseudonym)
    read_as: list[tuple[str, str, int]] = field(default_factory=list)  # (word sent, type, lines)
    unknown_more: dict[str, int] = field(default_factory=dict)


def quarantine_resent_events(con: duckdb.DuckDBPyConnection, src: Source, typed: str) -> None:
    """A line equal to an earlier line of the file in every column read and in its dedupe id
    (`dedupe_id`: Mixpanel's `$insert_id`, Segment's `messageId`) is that event sent again:
    quarantined as `repeated_event_id`. Without the id, equal purchase lines of one file count as
    units, and a resent purchase counted twice (helper-51: 6 purchases became 9). Lines of one
    event with other items (a flattened order) differ in their item, and all count."""
    cols = ", ".join(quote_ident(c.name) for c in src.columns)
    con.execute(
        f"UPDATE {typed} SET _reason = 'repeated_event_id' WHERE _rec IN (SELECT _rec FROM {typed} "
        f"WHERE _reason IS NULL AND {SOME_EVENT_ID} "
        f"QUALIFY row_number() OVER (PARTITION BY __kept_event_id, {cols} ORDER BY _rec) > 1)"
    )


def read_stats(con: duckdb.DuckDBPyConnection, src: Source, typed: str) -> Stats:
    ts = quote_ident(src.time_column) if src.time_column else "NULL::TIMESTAMP"
    lines, loaded, min_ts, max_ts, email_ids = one_row(
        con,
        f"SELECT count(*), count(*) FILTER (WHERE _reason IS NULL), "
        f"min({ts}) FILTER (WHERE _reason IS NULL), max({ts}) FILTER (WHERE _reason IS NULL), "
        f"count(*) FILTER (WHERE _reason IS NULL AND _email_id) FROM {typed}",
    )
    reasons = con.execute(
        f"SELECT _reason, count(*) FROM {typed} WHERE _reason IS NOT NULL "
        "GROUP BY _reason ORDER BY count(*) DESC, _reason"
    ).fetchall()
    unknown: dict[str, list[tuple[str, int]]] = {}
    more: dict[str, int] = {}  # values of a reason beyond the ones shown
    for reason, value, n, values in con.execute(
        f"SELECT _reason, _unknown, count(*) AS n, count(*) OVER (PARTITION BY _reason) "
        f"FROM {typed} WHERE _unknown IS NOT NULL GROUP BY _reason, _unknown "
        "QUALIFY row_number() OVER (PARTITION BY _reason ORDER BY n DESC, _unknown) "
        f"<= {UNKNOWN_SHOWN} ORDER BY _reason, n DESC, _unknown"
    ).fetchall():
        unknown.setdefault(reason, []).append((value, n))
        if values > UNKNOWN_SHOWN:
            more[reason] = values - UNKNOWN_SHOWN
    vocab = vocabulary_column(src)
    read_as = (
        con.execute(
            f"SELECT _sent_word, {vocab}, count(*) AS n FROM {typed} WHERE _reason IS NULL "
            f"AND _sent_word IS NOT NULL GROUP BY ALL ORDER BY n DESC, _sent_word LIMIT 12"
        ).fetchall()
        if vocab
        else []
    )
    return Stats(lines, loaded, dict(reasons), min_ts, max_ts, unknown, email_ids, read_as, more)


def remembered_rating_scale(con: duckdb.DuckDBPyConnection) -> int | None:
    """The last --rating-scale a feedback file of this warehouse was read with, when not 5."""
    value = get_setting(con, RATING_SCALE_KEY)
    return int(value) if value and int(value) != 5 else None


def commit(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    info: FileInfo,
    stats: Stats,
    columns: list[str] | None,
    reading: Reading,
    typed: str,
    replaced: tuple[int, ...] = (),
    file_columns: list[str] | None = None,
) -> int:
    """Raw rows, quarantine rows and the batch row: all of them or, on any error, none. The rows
    of `replaced` loads leave in the same transaction, and the models' state with them."""
    con.execute("BEGIN TRANSACTION")
    try:
        ensure_schema(con)  # raw tables included, and `state.add_missing_columns`
        if stats.loaded:  # a load that keeps no line sets no clock (helper-48: it fixed UTC)
            record_zone(con, reading.time_zone or "UTC")
        # the latest one given by a file that loads
        if src.name == "feedback" and reading.rating_scale is not None and stats.loaded:
            put_setting(con, RATING_SCALE_KEY, str(reading.rating_scale))
        if replaced:  # in place: the file keeps its batch, so its place among the sends
            batch_id = replaced[0]
            take_out(con, src, replaced, stats.min_ts)
        else:
            # above every batch id the data holds too: engine state dropped (or lost) made the
            # ids start again at 1, and a replace then took another file's rows out (helper-62)
            held = [
                f"(SELECT coalesce(max({BATCH_COLUMN}), 0) + 1 FROM {s.table})"
                for s in SOURCES.values()  # all made by `ensure_schema` above
            ]
            (batch_id,) = one_row(
                con,
                f"SELECT greatest(nextval('{SCHEMA}.batch_seq'), "
                f"(SELECT coalesce(max(batch_id), 0) + 1 FROM {SCHEMA}.batches), "
                f"(SELECT coalesce(max(batch_id), 0) + 1 FROM quarantine), {', '.join(held)})",
            )
        file = str(info.shown_path)
        # this send accounts for every line again: an earlier send of the same content, which
        # loaded nothing (see `ingest_resend.loads_of`), keeps its batch row, marked superseded by this
        # one, but not its quarantine rows
        earlier = (
            f"SELECT batch_id FROM {SCHEMA}.batches WHERE source = ? "
            "AND list_contains(?, content_sha256) AND loaded = 0 AND superseded_by IS NULL"
        )
        sent = [src.name, list(info.fingerprints)]
        con.execute(f"DELETE FROM quarantine WHERE batch_id IN ({earlier})", sent)
        con.execute(
            f"UPDATE {SCHEMA}.batches SET superseded_by = ? WHERE batch_id IN ({earlier})",
            [batch_id, *sent],
        )
        if columns:
            cols = ", ".join(quote_ident(c) for c in columns)
            record = (
                (f", {RECORD_COLUMN}", ", _rec")
                if RECORD_COLUMN in engine_columns(src)
                else ("", "")
            )
            if stats.loaded:
                con.execute(
                    f"INSERT INTO {src.table} ({cols}, {BATCH_COLUMN}{record[0]}) "
                    f"SELECT {cols}, ?{record[1]} FROM {typed} WHERE _reason IS NULL",
                    [batch_id],
                )
            con.execute(  # a refused file's lines that would load go there too (`_refusal`)
                "INSERT INTO quarantine (batch_id, source, file, record, reason, raw) "
                "SELECT ?, ?, ?, _rec, coalesce(_reason, ?), _raw "
                f"FROM {typed} WHERE _reason IS NOT NULL OR ? ORDER BY _rec",
                [batch_id, src.name, file, REFUSED, stats.loaded == 0],
            )
        con.execute(
            f"INSERT INTO {SCHEMA}.batches (batch_id, source, file, content_sha256, lines, "
            "loaded, quarantined, min_ts, max_ts, file_columns) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                batch_id, src.name, file, info.sha256, stats.lines, stats.loaded,
                sum(stats.reasons.values()), stats.min_ts, stats.max_ts, file_columns,
            ],
        )  # fmt: skip
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):  # a broken connection must not hide the first error
            con.execute("ROLLBACK")
        raise
    return batch_id
