"""`profiler ingest`: append one file to `raw_<source>`, every record loaded or quarantined.

The steps: fingerprint the file (same content twice loads once, a replace swaps a load:
`ingest_resend`), stage it as text in DuckDB (`ingest_csv`, `ingest_read`), choose which file
column feeds which canonical column (`ingest_columns`), type and check every record in one SQL
(`ingest_rules`, from the options of `ingest_options` and the value SQL of `ingest_values`), say
what looks wrong (`ingest_checks`, `ingest_ids`, `ingest_kept`) or refuse a shape that would load
wrong (`ingest_refuse`), then write raw rows, quarantine rows and the batch row in ONE transaction
(`ingest_write`), so a refused or crashing file changes nothing; `ingest_result` is what the
caller and the summary get back. Personal columns are pseudonymised on the way (`pii`).

Ingest is the one place allowed to read the wall clock, and only to refuse future timestamps;
nothing it writes depends on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import duckdb

from profiler.errors import ProfilerError
from profiler.ingest_checks import (
    UNREAD,
    amount_like_quantity,
    bad_times,
    columns_dropped,
    cut_record,
    cut_short,
    dated_again_count,
    empty_columns,
    event_words_elsewhere,
    gender_codes,
    itemless_purchases,
    midnight_utc,
    one_day_of_month,
    order_totals_on_lines,
    purchase_words_together,
    purchases_resent,
    purchases_twice,
    signups_after_events,
    unpriced_purchases,
    updates_by_line_order,
)
from profiler.ingest_columns import (
    LEAF_PARENTS,
    Staged,
    apply_fallbacks,
    check_mapping,
    joined_date_and_time,
    nested_fallbacks,
    refuse_nested_values,
    resolve_columns,
    sends_email_ids,
)
from profiler.ingest_csv import stage_csv
from profiler.ingest_ids import (
    catch_all_ids,
    guest_columns,
    ids_by_address,
    padded_ids,
    product_strings,
    stranger_ids,
    unknown_items,
)
from profiler.ingest_kept import (
    checked_columns,
    dedupe_id,
    item_lists,
    kept_warnings,
)
from profiler.ingest_options import AS_SENT, Reading, check_reading
from profiler.ingest_read import (
    STAGE,
    FileInfo,
    as_utf8,
    file_info,
    jsonl_values,
    one_row,
    stage_jsonl,
    stage_parquet,
    starts_utf16,
    unpack_json_text,
)
from profiler.ingest_refuse import (
    refuse_another_scale,
    refuse_item_lists,
    refuse_nested,
    refuse_record_lists,
)
from profiler.ingest_resend import (
    batch_to_replace,
    loads_elsewhere,
    loads_of,
    reads_as_before,
    replaced_by,
)
from profiler.ingest_result import IngestResult
from profiler.ingest_rules import MONEY, serial_days_possible, typed_query
from profiler.ingest_values import is_numeric
from profiler.ingest_write import (
    REFUSED,
    Stats,
    commit,
    quarantine_resent_events,
    read_stats,
    remembered_rating_scale,
)
from profiler.pii import register_hmac, unregister_hmac
from profiler.settings import refuse_example_warehouse
from profiler.shop_time import warehouse_zone, zone_for_ingest
from profiler.sources import (
    Source,
    get_source,
)
from profiler.sqltext import literal as quote_literal

TYPED = "_ingest_typed"


def _refusal(stats: Stats, file: str, cut_record: bool) -> tuple[str, str] | None:
    """Why a file some of whose lines would load is refused whole, and how it goes in again; or
    None. Its good lines go to `quarantine` as `REFUSED` with the others, so the file changes no
    table a build reads (helper-53: a day 40% short loaded, was built on, and its lines stayed
    beside the whole file sent again; helper-50: 6 of 1,281 lines of a file read the wrong way
    loaded). A replace with such a file changes nothing at all."""
    if not stats.loaded:  # nothing to refuse: `IngestResult.failure` says so
        return None
    name = Path(file).name
    # values it could not read, not lines left out by design (a skipped event type, GA4's
    # page_view, an anonymous line, an event sent twice: helper-56)
    unread = sum(n for why, n in stats.reasons.items() if why.startswith(UNREAD))
    if cut_record:
        return f"{name} ends in the middle of its last line (cut short?)", "send it whole with"
    if unread > stats.loaded:
        return (
            f"{name}: only {stats.loaded:,} of {stats.lines:,} lines would load ({unread:,} "
            "with values it could not read)",
            "read the way the summary's hints say, send it again with",
        )
    return None


def _refused(why: str, fix: str, batch_id: int) -> str:
    return (
        f"{why}: nothing of it loaded (its lines are listed in `quarantine`, those that read as "
        f"{REFUSED}); {fix} --replace-batch {batch_id}, which takes them out"
    )


def ingest(
    con: duckdb.DuckDBPyConnection,
    source: str,
    path: Path,
    *,
    mapping: dict[str, str] | None = None,
    pii_key: bytes,
    reading: Reading = AS_SENT,
    replace: bool = False,
    replace_batch: int | None = None,
) -> IngestResult:
    """Load one file into `raw_<source>`; refuse it whole (ProfilerError) if it cannot be used.

    Every data record ends in `raw_<source>` or in `quarantine`, so
    `loaded + sum(quarantined) == lines`. Content loaded before is skipped, unless `replace`:
    then the earlier load leaves raw and quarantine in the same transaction that writes this one
    (a file first read with the wrong `--ts-format` or `--map`), and every model but the
    histories is forgotten, so the next build recomputes whatever the earlier load fed.
    `replace_batch` does the same in place of batch N of this source, whatever it held (a
    corrected re-export of yesterday's file).
    Prints nothing: the CLI shows the result.
    """
    src = get_source(source)
    path = Path(path)
    wanted = check_mapping(src, mapping)
    reading = check_reading(src, reading)
    refuse_example_warehouse(con)
    # helper-45: a first ingest without --time-zone fixed the clock at UTC, unsaid
    unset = warehouse_zone(con) is None
    sets_utc = reading.time_zone is None and unset
    given_zone = reading.time_zone if unset else None  # a first load's --time-zone
    reading = dataclasses.replace(reading, time_zone=zone_for_ingest(con, reading.time_zone))
    info = file_info(path)
    if reading.columns and info.format != "csv":
        raise ProfilerError(
            f"--columns names the columns of a CSV file without a header line; "
            f"{path.name} is {info.format}, whose columns have names"
        )
    if path.stat().st_size == 0 or (info.format != "parquet" and info.size == 0):
        # an export with no rows still writes its header (that loads, as 0 lines): a file with
        # nothing at all is a failed export, refused so that a scheduler notices
        raise ProfilerError(f"{path.name}: empty file (not even a header): nothing loaded")
    if info.other_encoding and not reading.encoding:
        line, byte = info.foreign_byte
        # helper-50: a Turkish file was called UTF-16 (its first line's ş is the byte 0xFE), a
        # Cyrillic one got no encoding that reads it
        guess = (
            "a UTF-16 file (it starts with the bytes FF FE or FE FF) loads with --encoding utf-16"
            if starts_utf16(info)
            else "a Latin-1 or Windows-1252 file (as Excel saves CSV) loads with --encoding cp1252; "
            "Central European: --encoding cp1250, Cyrillic: --encoding cp1251, Turkish: --encoding "
            "cp1254, Arabic: --encoding cp1256, Japanese: --encoding cp932, Chinese: --encoding "
            "gb18030 (Taiwan, Hong Kong: big5), Korean: --encoding cp949"
        )
        raise ProfilerError(
            f"{path.name} is not UTF-8: line {line:,} holds byte 0x{byte:02X}, which is not UTF-8 "
            f"there, nor are more of its bytes than make UTF-8 characters; {guess}; nothing loaded"
        )
    loads = loads_of(con, src, info.fingerprints)
    if replace_batch is not None:
        loads = batch_to_replace(con, src, replace_batch, loads, path)
    elif loads and not replace:
        return IngestResult(src.name, str(path), None, 0, 0, {}, True, duplicate_of=loads[0])
    elif not replace and (taken := replaced_by(con, src, info.fingerprints)):
        raise ProfilerError(
            f"{path.name} holds what batch {taken} held before --replace-batch {taken} put "
            f"another file in its place; loading it would count both; to undo that replace, "
            f"send it with --replace-batch {taken}; nothing loaded"
        )
    elif replace and not loads_of(
        con, src, info.fingerprints, in_raw=False
    ):  # helper-39: an edited file
        # "replaced" nothing and loaded beside the one it was to correct
        raise ProfilerError(
            f"--replace: {path.name}'s content was never ingested as {src.name}, so it replaces "
            "nothing; to put an edited or corrected file in place of an earlier one, give "
            "--replace-batch N (each ingest summary names its batch); nothing loaded"
        )
    with ExitStack() as cleanup:
        if _needs_decoding(info, reading.encoding):
            # read from a UTF-8 copy, gone when the ingest ends
            folder = Path(cleanup.enter_context(TemporaryDirectory(prefix="profiler-ingest-")))
            info = as_utf8(info, reading.encoding, folder)
        # text without a zone is read in the session's zone: the shop's, or UTC with --times-utc
        with _ingest_session(con, "UTC" if reading.times_utc else reading.time_zone):
            staged = _stage(con, info, reading.columns, tuple(wanted.values()))
            try:
                result = _load(con, src, info, staged, wanted, pii_key, reading, loads)
                result.also_as = loads_elsewhere(con, src, info.fingerprints)
                result.sets_utc = sets_utc and result.batch_id is not None and result.loaded > 0
                # helper-50: nothing loaded, so no clock was set; the retry without the option
                # set UTC
                result.zone_unset = given_zone if result.loaded == 0 else None
                return result
            finally:
                for table in (TYPED, STAGE):
                    con.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _needs_decoding(info: FileInfo, encoding: str | None) -> bool:
    """`--encoding` applies to a text file in another encoding (`FileInfo.other_encoding`): a
    UTF-8 file (ASCII included, or with a few broken bytes) reads as UTF-8 whatever the option
    says, so `watch --encoding cp1252` never garbles one. UTF-16 and UTF-32 have bytes of their
    own even for ASCII text, so they are always decoded."""
    if encoding is None or info.format == "parquet":  # Parquet text is UTF-8 by definition
        return False
    return info.other_encoding or encoding.startswith(("utf-16", "utf-32"))


def _stage(
    con: duckdb.DuckDBPyConnection,
    info: FileInfo,
    columns: tuple[str, ...],
    mapped: tuple[str, ...],
) -> Staged:
    # inside the objects items and events nest in, or that --map names
    parents = tuple(
        sorted({*LEAF_PARENTS, *(m.rpartition(".")[0].lower() for m in mapped if "." in m)})
    )
    if info.format == "jsonl":
        return stage_jsonl(con, info, parents)
    staged = stage_parquet(con, info) if info.format == "parquet" else stage_csv(con, info, columns)
    return unpack_json_text(con, staged, parents) if not staged.empty else staged


def _columns(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    info: FileInfo,
    staged: Staged,
    mapping: Mapping[str, str],
    reading: Reading,
) -> tuple[dict[str, str], list[str], dict[str, str], dict[str, str]]:
    """Which file column gives each canonical column (`resolved`), the columns left unread
    (`ignored`), the nested keys that fill an empty one (`fallbacks`), and the unread columns the
    warnings read (`checked`); a file whose values cannot be read as sent is refused here. Fixes
    `staged` where a value needs another reading (a JSON key, a numeric date, a split date and
    time)."""
    file = str(info.shown_path)
    try:
        resolved, ignored = resolve_columns(
            src, staged.columns, mapping, file, tuple(reading.constants()), tuple(staged.paths)
        )
    except ProfilerError:
        if info.format == "jsonl":  # its records may be inside a list: said first
            refuse_record_lists(con, staged, file)
        raise
    fallbacks = nested_fallbacks(src, resolved, mapping, tuple(staged.paths))
    ignored = [c for c in ignored if c not in fallbacks.values()]
    if staged.paths:  # keys inside an object: named by it, unless some of its keys are read
        read = {
            c.split(".", 1)[0]
            for c in [*resolved.values(), *fallbacks.values()]
            if c in staged.paths
        }
        ignored = [
            c
            for c in ignored
            if c not in read and (c not in staged.paths or c.split(".", 1)[0] in read)
        ]  # an unread key beside read ones stays unread: quarantine never shows it (helper-33)
    refuse_nested(staged, resolved, file)
    if src.name == "events":
        refuse_item_lists(con, staged, ignored, file)
    if reading.ts_format:  # a Parquet integer of dates (GA4's event_date, 20191001) takes it too
        for target in ("ts", "signup_ts"):
            column = resolved.get(target)
            if column and is_numeric(staged.native.get(column)):
                staged.values[column] = f"CAST({staged.values[column]} AS VARCHAR)"
                staged.native[column] = "VARCHAR"
    checked = checked_columns(src, ignored, {*staged.values, *staged.columns})
    if src.name == "users" and "birth_year" in resolved:  # read: its serial days are said
        checked["birthday"] = resolved["birth_year"]
    for money in MONEY:  # read: money whose decimals all have three digits is said
        if money in resolved and not is_numeric(staged.native.get(resolved[money])):
            checked[f"sent_{money}"] = resolved[money]
    refuse_nested_values(staged, resolved)
    if info.format == "jsonl":
        jsonl_values(staged, resolved, [*checked.values(), *fallbacks.values()])
    if "birthday" in checked:  # after jsonl_values: a JSON key's value is SQL from then on
        staged.serial_days = serial_days_possible(con, staged, checked["birthday"])
    apply_fallbacks(staged, resolved, fallbacks)
    if info.format != "jsonl":
        resolved, ignored = joined_date_and_time(con, src, staged, resolved, ignored, mapping)
    return resolved, ignored, fallbacks, checked


def _load(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    info: FileInfo,
    staged: Staged,
    mapping: Mapping[str, str],
    pii_key: bytes,
    reading: Reading,
    replaced: tuple[int, ...],
) -> IngestResult:
    """Type the staged records, then write everything for this file in one transaction."""
    file = str(info.shown_path)
    # a feed's next file without --rating-scale reads at the scale its earlier files gave
    # (helper-34: a day of 2-5 of 10 was read as stars)
    remembered = (
        remembered_rating_scale(con)
        if src.name == "feedback" and reading.rating_scale is None
        else None
    )
    if remembered:
        reading = dataclasses.replace(reading, rating_scale=remembered)
    if staged.empty:  # an empty file is fine: a batch with no rows says it was seen
        batch_id = commit(con, src, info, Stats(), None, reading, TYPED, replaced)
        return IngestResult(
            src.name, file, batch_id, 0, 0, {}, False, reading=reading, replaced=replaced
        )
    resolved, ignored, fallbacks, checked = _columns(con, src, info, staged, mapping, reading)
    # personal columns, and a user id that is an e-mail address, are keyed hashes
    keyed = src.personal or sends_email_ids(con, src, staged, resolved)
    hmac = register_hmac(con, pii_key) if keyed else None
    try:
        (now,) = one_row(con, "SELECT CAST(timezone(?, now()) AS TIMESTAMP)", [reading.time_zone])

        sql = typed_query(src, staged, resolved, now=now, hmac=hmac, reading=reading,
                          unread=bool(ignored), kept=checked)  # fmt: skip
        con.execute(f"CREATE OR REPLACE TEMP TABLE {TYPED} AS {sql}")
        if "event_id" in checked and dedupe_id(checked["event_id"]):
            quarantine_resent_events(con, src, TYPED)
        kept = kept_warnings(
            con, src, TYPED, checked, reading.minor_units, reading.decimal_comma, staged.serial_days
        )
        nested_lists = item_lists(con, src, staged, ignored)
        guests = guest_columns(con, staged, ignored, TYPED)
        by_line_order = updates_by_line_order(con, src, staged, TYPED, ignored, reading.ts_format)
        counted = amount_like_quantity(con, src, staged, TYPED, resolved, ignored)
        type_words = event_words_elsewhere(con, src, staged, TYPED, resolved, ignored)
        con.execute(f"DROP TABLE IF EXISTS temp.{STAGE}")  # free its memory before the insert
    finally:
        if hmac:
            unregister_hmac(con)
    stats = read_stats(con, src, TYPED)
    refuse_another_scale(con, stats, reading, file, TYPED)
    if replaced and stats.loaded == 0:
        worst = max(stats.reasons, key=stats.reasons.get, default="no lines")
        raise ProfilerError(
            f"{file}: read this way no line loads ({stats.lines:,} lines, most quarantined as "
            f"{worst}); the earlier load (batch {replaced[0]}) stays as it was; nothing changed"
        )
    if replaced and reads_as_before(con, src, replaced, sum(stats.reasons.values()), TYPED):
        raise ProfilerError(  # helper-40: a replace that changed nothing took back all history
            f"{file}: read this way it gives the rows and the quarantine of batch {replaced[0]} "
            "again: nothing to replace, so nothing changed (the history stays)"
        )
    dated_again = dated_again_count(con, src, TYPED, replaced) if stats.loaded else 0
    twice = purchases_twice(con, src, TYPED, replaced) if stats.loaded else (0, [])
    resent = purchases_resent(con, src, TYPED, replaced) if stats.loaded else (0, [])
    dropped = (
        columns_dropped(con, src, TYPED, resolved, replaced, staged.columns)
        if stats.loaded
        else (0, [])
    )
    cut = cut_short(con, info, TYPED)
    cut_in_record = bool(cut) and cut_record(con, TYPED, cut)
    refusal = _refusal(stats, file, cut_in_record)
    if refusal and replaced:
        raise ProfilerError(
            f"{refusal[0]}: the earlier load (batch {replaced[0]}) stays as it was; nothing changed"
        )
    batch = (  # what the batch keeps: a refused file's lines all go to quarantine
        Stats(stats.lines, 0, {**stats.reasons, REFUSED: stats.loaded}) if refusal else stats
    )
    batch_id = commit(
        con, src, info, batch, [c.name for c in src.columns], reading, TYPED, replaced,
        staged.columns,
    )  # fmt: skip
    return IngestResult(
        src.name, file, batch_id, batch.lines, batch.loaded, batch.reasons, False,
        columns=resolved, ignored=ignored, fallbacks=fallbacks, unknown=stats.unknown, reading=reading,
        scale_remembered=bool(remembered),
        header_copies=staged.copies,
        dated_again=dated_again, replaced=replaced,
        unknown_items=unknown_items(con, src, TYPED) if stats.loaded else None,
        padded_ids=padded_ids(con, src, TYPED) if stats.loaded else None,
        padded_items=padded_ids(con, src, TYPED, "item_id") if stats.loaded else None,
        stranger_ids=stranger_ids(con, src, TYPED) if stats.loaded else None,
        email_ids=stats.email_ids,
        by_address=ids_by_address(con, src, TYPED, resolved) if stats.loaded else (0, 0),
        late_signups=signups_after_events(con, src, TYPED)
        if "signup_ts" in resolved and not reading.times_utc
        else None,
        by_line_order=by_line_order,
        amount_counts=counted,
        type_words=type_words,
        bad_times=bad_times(con, TYPED) if stats.reasons.get("bad_timestamp") else [],
        one_day=one_day_of_month(con, src, TYPED, reading.ts_format) if stats.loaded else None,
        midnight_utc=midnight_utc(con, src, TYPED, reading.time_zone) if stats.loaded else None,
        read_as=stats.read_as,
        unknown_more=stats.unknown_more,
        catch_all=catch_all_ids(con, src, TYPED) if stats.loaded else [],
        unpriced=unpriced_purchases(con, src, TYPED) if stats.loaded else 0,
        product_strings=product_strings(con, src, TYPED) if "item_id" in resolved else (0, ""),
        itemless=itemless_purchases(con, src, TYPED) if "item_id" in resolved else (0, 0),
        order_totals=order_totals_on_lines(con, src, TYPED) if "amount" in resolved else (0, 0),
        currencies=kept.currencies,
        unpaid=kept.unpaid,
        partly_refunded=kept.partly_refunded,
        cut_short=cut,
        cut_record=cut_in_record,
        refused=_refused(*refusal, batch_id) if refusal else None,
        cents=kept.cents,
        whole_in_minor_units=kept.whole_in_minor_units,
        repeated_ids=kept.repeated_ids,
        orders_again=kept.orders_again,
        serial_birthdays=kept.serial_birthdays,
        gender_codes=gender_codes(con, src, TYPED) if stats.loaded else [],
        yearless_birthdays=kept.yearless_birthdays,
        purchases_twice=twice,
        purchases_resent=resent,
        int96=[t for t, c in resolved.items() if c in staged.int96],
        dropped=dropped,
        purchase_words=purchase_words_together(con, TYPED)
        if stats.loaded and src.name == "events"
        else (0, []),
        thousands=kept.thousands,
        item_lists=nested_lists,
        guest_columns=guests,
        # a session id is often unset (Amplitude's -1): the 30-minute rule then makes sessions
        empty=empty_columns(con, TYPED, [c for c in resolved
                                         if c not in (*reading.constants(), "session_id")])
        if stats.loaded else [],
    )  # fmt: skip


@contextmanager
def _ingest_session(con: duckdb.DuckDBPyConnection, zone: str | None) -> Iterator[None]:
    """Run with the settings ingest relies on, and put the caller's back afterwards.

    The shop's time zone as the session's: text without a zone means the shop's time. Insertion
    order kept: the CSV stage's rowid is then the record number. No progress bar: ingest prints
    nothing.
    """
    wanted = {
        "TimeZone": quote_literal(zone or "UTC"),
        "preserve_insertion_order": "true",
        "enable_progress_bar": "false",
    }
    saved = {name: one_row(con, f"SELECT current_setting('{name}')")[0] for name in wanted}
    for name, value in wanted.items():
        con.execute(f"SET {name} = {value}")
    try:
        yield
    finally:
        for name, value in saved.items():
            literal = quote_literal(value) if isinstance(value, str) else str(value).lower()
            con.execute(f"SET {name} = {literal}")
