"""What each CLI command does, as plain functions the CLI (and tests) call.

Each function opens the warehouse the way its command needs (under the build lock when it
writes) and returns something printable; the CLI only parses and prints.
"""

from __future__ import annotations

import re
from contextlib import suppress
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.faults import raise_if_storage_fault, storage_fault
from profiler.settings import Settings, connect, ensure_warehouse

# any header as written (`Created (UTC)`, Mixpanel's `$user_id`): names are quoted, never SQL
_COLUMN_NAME = re.compile(r"[^\x00-\x1f]{1,255}")


def parse_mapping(items: list[str]) -> dict[str, str]:
    """`--map TARGET=COLUMN` pairs; a COLUMN is a file's column name as written, quoted in SQL."""
    mapping: dict[str, str] = {}
    for item in items:
        target, sep, column = item.partition("=")
        if not sep or not target.strip() or not _COLUMN_NAME.fullmatch(column.strip()):
            raise ProfilerError(f"--map {item!r} must look like TARGET=COLUMN")
        mapping[target.strip()] = column.strip()
    return mapping


def reading_of(
    event_types: list[str] | None,
    kinds: list[str] | None,
    ts_format: str | None = None,
    decimal_comma: bool = False,
    time_zone: str | None = None,
    columns: str | None = None,
    encoding: str | None = None,
    rating_scale: int | None = None,
    minor_units: bool = False,
    times_utc: bool = False,
):
    """An `ingest_reading.Reading` from the CLI's options: `--event-type purchase` (every line),
    or `--event-type 0=view --event-type 1=cart ...` (the file's own codes); `--kind` alike;
    `--columns a,b,c` for a file without a header line."""
    from profiler.ingest_reading import Reading, option_name, parse_columns

    constants: dict[str, str | None] = {"event_type": None, "kind": None}
    values = []
    for column, items in (("event_type", event_types), ("kind", kinds)):
        option = option_name(column)
        for item in items or []:
            sent, sep, value = item.partition("=")
            if sep:
                values.append((column, sent.strip(), value.strip()))
            elif constants[column] is not None:
                raise ProfilerError(f"{option} given twice ({constants[column]}, {item}); keep one")
            else:
                constants[column] = item
    return Reading(
        constants["event_type"],
        constants["kind"],
        ts_format,
        decimal_comma,
        tuple(values),
        time_zone,
        parse_columns(columns),
        encoding,
        rating_scale,
        minor_units,
        times_utc,
    )


def landing_readings(
    maps: list[str],
    event_types: list[str] | None,
    kinds: list[str] | None,
    ts_format: str | None,
    decimal_comma: bool = False,
    time_zone: str | None = None,
    columns: list[str] = (),
    encoding: str | None = None,
    rating_scale: int | None = None,
    minor_units: bool = False,
    times_utc: bool = False,
) -> dict[str, tuple[dict[str, str], object]]:
    """How `profiler watch` reads each source folder: source -> (mapping, `Reading`).

    `--map SOURCE.TARGET=COLUMN` and `--columns SOURCE=A,B,C` name the source they are for;
    `--event-type` is for `events/`, `--kind` for `feedback/`, `--ts-format`, `--decimal-comma`,
    `--time-zone` and `--encoding` for every folder.
    Checked here, before the loop starts, so a typo stops the command instead of rejecting every
    file that lands.
    """
    from profiler.ingest_reading import Reading, check_reading, parse_columns
    from profiler.ingest_rules import check_mapping
    from profiler.sources import SOURCES

    if time_zone is not None:
        import duckdb

        from profiler.shop_time import check_zone

        time_zone = check_zone(duckdb.connect(), time_zone)
    read = reading_of(event_types, kinds, ts_format, decimal_comma, time_zone)
    mappings: dict[str, dict[str, str]] = {name: {} for name in SOURCES}
    for item in maps:
        source, dot, rest = item.partition(".")
        if not dot or source not in SOURCES:
            raise ProfilerError(
                f"--map {item!r}: in watch, name the source first, as SOURCE.TARGET=COLUMN "
                f"(SOURCE one of {', '.join(SOURCES)}), e.g. events.user_id=CustomerID"
            )
        mappings[source].update(parse_mapping([rest]))
    headers: dict[str, tuple[str, ...]] = {}
    for item in columns:
        source, eq, names = item.partition("=")
        if not eq or source.strip() not in SOURCES or source.strip() in headers:
            raise ProfilerError(
                f"--columns {item!r}: in watch, name the source first, once, as SOURCE=A,B,C "
                f"(SOURCE one of {', '.join(SOURCES)}), e.g. events=user_id,item_id,ts"
            )
        headers[source.strip()] = parse_columns(names)
    readings = {}
    for name, source in SOURCES.items():
        reading = Reading(
            read.event_type if name == "events" else None,
            read.kind if name == "feedback" else None,
            ts_format,
            decimal_comma,
            tuple(
                v
                for v in read.values
                if v[0] == {"events": "event_type", "feedback": "kind"}.get(name)
            ),
            time_zone,
            headers.get(name, ()),
            encoding,
            rating_scale,
            minor_units,
            times_utc,
        )
        readings[name] = (check_mapping(source, mappings[name]), check_reading(source, reading))
    return readings


def ingest_file(
    settings: Settings,
    source: str,
    path: Path,
    mapping: dict[str, str],
    reading=None,
    replace: bool = False,
    replace_batch: int | None = None,
):
    """`reading`: an `ingest_reading.Reading` (`--event-type`, `--ts-format`); None reads as sent.
    `replace`: load content ingested before again, in place of the earlier load;
    `replace_batch`: load this file in place of batch N."""
    from profiler.ingest import ingest
    from profiler.ingest_reading import Reading
    from profiler.lock import lock_path, warehouse_lock
    from profiler.pii import load_pii_key
    from profiler.sources import get_source
    from profiler.state import ensure_schema

    get_source(source)
    if path.is_dir():
        raise ProfilerError(
            f"{path} is a folder; ingest takes one file (`profiler watch` takes a folder of them)"
        )
    if not path.exists():
        raise ProfilerError(f"{path}: no such file")
    if not path.is_file():
        raise ProfilerError(f"{path} is not a regular file (a device or a pipe?); send a file")
    key = load_pii_key(settings)
    with warehouse_lock(settings.warehouse, f"ingest {source} {path.name}"):
        new = not settings.warehouse.exists()  # under the lock: nobody else can create it now
        con = connect(settings)
        refused = False
        try:
            ensure_schema(con)
            return ingest(
                con,
                source,
                path,
                mapping=mapping,
                pii_key=key,
                reading=reading or Reading(),
                replace=replace,
                replace_batch=replace_batch,
            )
        except ProfilerError:
            refused = True
            raise
        except duckdb.Error as err:  # the file's rows were written in one transaction: none landed
            raise_if_storage_fault(err, settings)
            raise
        finally:
            con.close()
            if refused and new:  # a refused first file leaves no empty warehouse behind
                # (its lock file goes too, while still held: a process that opened it meanwhile
                # was told the warehouse is busy)
                wal = Path(f"{settings.warehouse}.wal")
                for created in (settings.warehouse, wal, lock_path(settings.warehouse)):
                    created.unlink(missing_ok=True)


def describe_ingest(result) -> str:
    if result.duplicate:
        return (
            f"{result.file}: already ingested (same content, batch {result.duplicate_of}); "
            "nothing loaded. To read it again another way (--ts-format, --map, --event-type), "
            "ingest it with --replace: the earlier load is taken out"
        )
    lines = [
        f"{result.source}: {result.file}: {result.loaded:,} loaded, {sum(result.quarantined.values()):,} quarantined of {result.lines:,} lines (batch {result.batch_id})"
    ]
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
    if result.reading.minor_units:
        lines.append("  money: sent in minor units (cents), divided by 100")
    if result.cents:
        currency, example = result.cents
        lines.append(
            f"  warning: every purchase's money is a whole number (up to {example:,.0f}) and the "
            f"currency is {currency}: sent in cents? --minor-units divides it by 100 (with "
            "--replace for this file)"
        )
    if result.repeated_ids:
        column, n = result.repeated_ids
        lines.append(
            f"  warning: {n:,} line(s) repeat an event id {column!r} (ignored) sent before in the "
            "file: one event sent twice? Each line counts (equal purchase lines are two purchases)"
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
    if result.cut_short:
        lines.append(
            f"  warning: the file ends in the middle of its last line, quarantined as "
            f"{result.cut_short}: was it cut short? Send it whole with --replace-batch "
            f"{result.batch_id}"
        )
    if result.empty:
        said = ", ".join(f"{c} <- {result.columns[c]}" for c in result.empty)
        lines.append(
            f"  warning: read but empty on every loaded line: {said}; is it in another column "
            "(--map names it)?"
        )
    if result.read_as:  # built-in words (`pv`, Coveo's `click`) as much as --event-type's
        words = ", ".join(f"{w!r} as {t} {n:,}" for w, t, n in result.read_as)
        lines.append(f"  read as: {words}")
    scale = result.reading.rating_scale
    if result.source == "feedback" and scale not in (None, 5):  # given, or the feed's last one
        lines.append(
            f"  ratings: a scale of {scale} points, read as ceil(rating x 5 / {scale}) stars "
            "(the scale this warehouse's feedback was last sent with; --rating-scale 5 for stars)"
        )
    if result.reading.time_zone not in (None, "UTC"):  # helper-35: which times were converted?
        naive = (
            "read as UTC and converted"
            if result.reading.times_utc
            else "taken as shop time (--times-utc if they are UTC)"
        )
        lines.append(
            f"  times: shop time, {result.reading.time_zone}: Unix and zoned times converted, "
            f"times without a zone {naive}"
        )
    if result.ignored:  # a column a shop meant as its user id or city should not vanish unsaid
        lines.append(
            f"  ignored (no canonical column; --map names one): {', '.join(result.ignored)}"
        )
    for source, batch in result.also_as:
        fed = [c for c in result.columns if c not in ("user_id", "item_id")]
        lines.append(
            f"  warning: the same content is loaded as {source} too (batch {batch}): is it "
            f"{result.source} as well? "
            + (
                f"Its {', '.join(fed)} are now the newest values of those {result.source}"
                if fed
                else "It sent ids alone, which change no value"
            )
        )
    if result.email_ids:
        lines.append(
            f"  {result.email_ids:,} line(s) had an e-mail address as the user id: stored as its "
            "pseudonym, like the users' email column (`profiler show ADDRESS` finds the user)"
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
    totals, orders = result.order_totals
    if totals:
        lines.append(
            f"  warning: in {totals:,} of {orders:,} orders of several items, every line carries "
            f"the same {result.columns.get('amount')!r}, not its price x quantity: the order's "
            "total on each line? Spend counts it once per line. Map the line's money instead, or "
            "leave amount out (price x quantity is used), and ingest the file again with --replace"
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
            f"({_guest_map(result)}) and ingest the file again with --replace"
        )
    if result.unpaid:
        column, found = result.unpaid
        lines.append(
            f"  warning: {column!r} (ignored) says some orders were not bought ("
            + ", ".join(f"{_clipped(v)!r} {n:,}" for v, n in found)
            + " lines), yet every line counts as a purchase: leave them out and ingest the file "
            f"in place of this one with --replace-batch {result.batch_id}"
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
            "file sends earlier orders again, they now count twice"
        )
    for reason, n in sorted(result.quarantined.items(), key=lambda kv: -kv[1]):
        values = result.unknown.get(reason)
        named = ", ".join(f"{_clipped(v)!r} {c:,}" for v, c in values) if values else ""
        if result.unknown_more.get(reason):
            named += f", and {result.unknown_more[reason]:,} more value(s)"
        lines.append(f"  quarantined {n:,}: {reason}" + (f" ({named})" if named else ""))
        if reason.startswith("bad_type:") and result.loaded == 0:
            lines += _bad_type_hint(result, reason.split(":", 1)[1])
        if reason == "placeholder_user_id":
            lines.append(
                f"  {n:,} line(s) with a user id that stands for no account (a guest checkout): "
                "as one user they would merge strangers. To keep them, map a column that names "
                f"each guest ({_guest_map(result)}); they are in `quarantine`"
            )
        if reason.startswith("lossy_id:"):
            lines.append(
                "  ids in scientific notation lost digits (Excel saves long numbers so, and different "
                "ids then read alike): export that column as text and send the file again"
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
        if reason == "missing_user_id" and "--map user_id=COLUMN" not in _guest_map(result):
            lines.append(
                f"  lines without a user id (guest orders?) load with {_guest_map(result)}, "
                "if that column names each buyer"
            )
        if reason == "early_timestamp" and any(
            re.fullmatch(r"(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])", str(v))
            for v, _ in values or []
        ):
            lines.append(
                "  these are dates written as YYYYMMDD (GA4's event_date), read as Unix seconds: "
                "send the file again with --ts-format %Y%m%d, or map the real time column "
                "(--map ts=event_timestamp)"
            )
        elif reason == "early_timestamp":
            lines.append(
                f"  {n:,} time(s) before 1990, which profiler does not take: a 0 or a small "
                "number for a missing time? (lines in `quarantine`)"
            )
        if reason == "bad_timestamp" and result.loaded and result.reading.ts_format:
            lines.append(
                f"  check --ts-format {result.reading.ts_format!r}: {n:,} time(s) do not match it; "
                "if it is wrong (day and month swapped?), loaded times may be wrong too: ingest "
                "the file again with the right format and --replace"
            )
        if reason == "bad_timestamp" and not result.reading.ts_format:
            fits = _ts_formats(result.bad_times)
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
            elif result.loaded == 0:
                lines.append(
                    "  nothing loaded: if those times share one format, send the file again with "
                    "it, e.g. --ts-format '%m/%d/%Y %H:%M' for 12/1/2010 8:26 (lines in `quarantine`)"
                )
    return "\n".join(lines)


# common export time formats, tried on the values a file's bad times show
_TS_FORMATS = tuple(
    f"{day}{sep}{time}"
    for day in ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%m-%d-%Y",
                "%d %b %Y", "%b %d, %Y", "%d-%b-%Y", "%Y%m%d")
    for sep, time in (("", ""), (" ", "%H:%M"), (" ", "%H:%M:%S"), (" ", "%I:%M %p"),
                      (" ", "%I:%M:%S %p"))
) + ("%a, %d %b %Y %H:%M:%S %z", "%d/%b/%Y:%H:%M:%S %z")  # fmt: skip


def _ts_formats(values: list[str]) -> list[str]:
    """The strptime formats (at most two) that read every shown value of a file's bad times."""
    from datetime import datetime

    if not values:
        return []
    fits = []
    for fmt in _TS_FORMATS:
        try:
            for v in values:
                datetime.strptime(v.strip(), fmt)
        except ValueError:
            continue
        fits.append(fmt)
    return fits[:2]


def _guest_map(result) -> str:
    """The --map that tells guests apart: an e-mail column first; never a note, a user agent
    or an IP address."""
    other = [c for c in result.ignored if re.search(r"e-?mail", c, re.I)] or [
        c
        for c in result.ignored
        if re.search(r"customer|user|buyer", c, re.I)
        and not re.search(r"note|agent|ip\b|ip_", c, re.I)
    ]
    return f"--map user_id={other[0]}" if other else "--map user_id=COLUMN"


def _bad_type_hint(result, column: str) -> list[str]:
    """Why a whole file's `bad_type` lines did not load: a text column only refuses JSON objects
    and arrays; a number column, numbers it cannot read."""
    from profiler.sources import get_source

    if get_source(result.source).column(column).type == "VARCHAR":
        return [
            f"  nothing loaded: {column} holds JSON objects or arrays (nested values); flatten the "
            "file first, one plain value per key (DuckDB: unnest(), jq: .[])"
        ]
    if result.reading.decimal_comma:
        return []
    return [
        "  nothing loaded: if those numbers use a decimal comma (12,50 or 1.234,50), "
        "send the file again with --decimal-comma (lines in `quarantine`)"
    ]


def _clipped(value: str, width: int = 40) -> str:
    return value if len(value) <= width else value[: width - 3] + "..."


def build_project(
    settings: Settings, select: str | None, full_refresh: bool, as_of: str | None, console
) -> bool:
    """Run a build and print one line per model; True when everything selected is published."""
    from profiler.build import BuildOptions, BuildStopped, parse_as_of, run_build
    from profiler.lock import warehouse_lock
    from profiler.project import require_models
    from profiler.report import BuildPrinter
    from profiler.runlog import write_run_results
    from profiler.serve.serving import publish_serving_copy

    require_models(settings.project_dir)  # before the warehouse is touched
    if settings.warehouse_configured and not settings.warehouse.exists():
        # a typo in PROFILER_WAREHOUSE made folders and an empty warehouse (helper-29)
        raise ProfilerError(
            f"{settings.warehouse}: no warehouse there (a typo in the path?); "
            "`profiler ingest events FILE` creates one"
        )
    printer = BuildPrinter(console)
    options = BuildOptions(
        select,
        full_refresh,
        parse_as_of(as_of),
        gate=_gate(settings),
        on_start=printer.start,
        on_result=printer.result,
    )
    with warehouse_lock(settings.warehouse, "build"):
        if ensure_warehouse(settings):  # under the lock: two first builds copy it once
            console.print(
                f"no warehouse yet: starting from the example data in "
                f"{settings.warehouse.name}.example"
            )
        con = connect(settings)
        try:
            with printer:
                run = run_build(con, settings.project_dir, options)
            write_run_results(settings.target_dir, run)
            if run.status == "success":
                publish_serving_copy(settings, con, run)
            printer.summary(con, run, settings.warehouse)
            gone = _models_gone(con, settings)
            if gone:  # its table stays, as it was: say so rather than let it go stale unsaid
                console.print(
                    f"note: {', '.join(gone)}: built before, no model file now; its table stays as "
                    "last built and is no longer served or exported (DROP TABLE to remove it)",
                    soft_wrap=True,
                )
            for suite in _suites_of_nothing(settings):  # a model renamed, its suite not
                console.print(
                    f"note: expectations/{suite}.json checks no model or raw table (renamed or "
                    "removed?): it gates nothing",
                    soft_wrap=True,
                )
        except BuildStopped as stopped:
            with suppress(OSError):  # the target folder may sit on the same full disk
                write_run_results(settings.target_dir, stopped.run)
            raise storage_fault(stopped.cause, settings) or ProfilerError(
                f"build stopped: {stopped}"
            ) from None
        except (duckdb.Error, OSError) as err:
            raise_if_storage_fault(err, settings)
            raise
        finally:
            con.close()
    return run.status == "success"


def _models_gone(con, settings: Settings) -> list[str]:
    """Models the warehouse has state of whose file left the project, with a table still there."""
    from profiler.project import load_project
    from profiler.state import has_table, read_states

    present = load_project(settings.project_dir)
    return sorted(n for n in read_states(con) if n not in present and has_table(con, n))


def _suites_of_nothing(settings: Settings) -> list[str]:
    from profiler.gate_suites import load_suites
    from profiler.project import load_project
    from profiler.sources import SOURCES

    known = set(load_project(settings.project_dir)) | {s.table for s in SOURCES.values()}
    return sorted(t for t in load_suites(settings.project_dir) if t not in known | {"user_scores"})


def _gate(settings: Settings):
    """The Great Expectations gate when the project has suites; otherwise everything passes."""
    from profiler.publish import OpenGate

    if any((settings.project_dir / "expectations").glob("*.json")):
        from profiler.gate import ExpectationGate  # GX itself is imported only when a suite runs

        return ExpectationGate(settings)
    return OpenGate()


LS_COLUMNS = ("model", "kind", "key / time", "reads", "description")


def list_models(settings: Settings) -> list[tuple[str, str, str, str, str]]:
    """One row per model, in DAG order: name, kind, keys (@ time column), parents, description."""
    from profiler.dag import build_dag
    from profiler.project import load_project

    dag = build_dag(load_project(settings.project_dir))
    rows = []
    for name in dag.order():
        m = dag.models[name]
        keys = (
            f"{', '.join(m.unique_key)} @ {m.time_column}".strip()
            if m.time_column
            else ", ".join(m.unique_key)
        )
        rows.append((name, m.kind.value, keys, ", ".join(dag.parents[name]), m.description))
    return rows


def render_dag(settings: Settings, fmt: str) -> str:
    from profiler.dag import build_dag
    from profiler.project import load_project

    dag = build_dag(load_project(settings.project_dir))
    if fmt == "mermaid":
        lines = ["graph LR"]
        for name in dag.order():
            lines.append(f'  {name}["{name} ({dag.models[name].kind.value})"]')
            lines.extend(f"  {p} --> {name}" for p in dag.parents[name])
        return "\n".join(lines)
    if fmt != "text":
        raise ProfilerError(f"--format {fmt!r}: choose text or mermaid")
    out: list[str] = []

    def walk(node: str, depth: int, seen: set[str]) -> None:
        kind = dag.models[node].kind.value if node in dag.models else "source"
        out.append(f"{'  ' * depth}{'└─ ' if depth else ''}{node} ({kind})")
        if node in seen:
            return
        seen.add(node)
        for child in sorted(dag.children(node)):
            walk(child, depth + 1, seen)

    roots = sorted({p for ps in dag.parents.values() for p in ps if p not in dag.models})
    for root in roots:
        walk(root, 0, set())
    return "\n".join(out)
