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
from profiler.settings import Settings, connect, ensure_warehouse, no_warehouse

# any header as written (`Created (UTC)`, Mixpanel's `$user_id`): names are quoted, never SQL
_COLUMN_NAME = re.compile(r"[^\x00-\x1f]{1,255}")


def parse_mapping(items: list[str]) -> dict[str, str]:
    """`--map TARGET=COLUMN` pairs; a COLUMN is a file's column name as written, quoted in SQL;
    `TARGET=` (no column) reads TARGET from no column."""
    mapping: dict[str, str] = {}
    for item in items:
        target, sep, column = item.partition("=")
        named = not column.strip() or _COLUMN_NAME.fullmatch(column.strip())
        if not sep or not target.strip() or not named:
            raise ProfilerError(f"--map {item!r} must look like TARGET=COLUMN (or TARGET=)")
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
    decimal_point: bool = False,
):
    """An `ingest_options.Reading` from the CLI's options: `--event-type purchase` (every line),
    or `--event-type 0=view --event-type 1=cart ...` (the file's own codes); `--kind` alike;
    `--columns a,b,c` for a file without a header line."""
    from profiler.ingest_options import Reading, option_name, parse_columns

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
    return Reading(  # by name: a swapped pair of flags would read a file wrong, silently
        event_type=constants["event_type"],
        kind=constants["kind"],
        ts_format=ts_format,
        decimal_comma=decimal_comma,
        values=tuple(values),
        time_zone=time_zone,
        columns=parse_columns(columns),
        encoding=encoding,
        rating_scale=rating_scale,
        minor_units=minor_units,
        times_utc=times_utc,
        decimal_point=decimal_point,
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
    decimal_point: bool = False,
) -> dict[str, tuple[dict[str, str], object]]:
    """How `profiler watch` reads each source folder: source -> (mapping, `Reading`).

    `--map SOURCE.TARGET=COLUMN` and `--columns SOURCE=A,B,C` name the source they are for;
    `--event-type` is for `events/`, `--kind` for `feedback/`, `--ts-format`, `--decimal-comma`,
    `--time-zone` and `--encoding` for every folder.
    Checked here, before the loop starts, so a typo stops the command instead of rejecting every
    file that lands.
    """
    from profiler.ingest_columns import check_mapping
    from profiler.ingest_options import Reading, check_reading, parse_columns
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
            event_type=read.event_type if name == "events" else None,
            kind=read.kind if name == "feedback" else None,
            ts_format=ts_format,
            decimal_comma=decimal_comma,
            values=tuple(
                v
                for v in read.values
                if v[0] == {"events": "event_type", "feedback": "kind"}.get(name)
            ),
            time_zone=time_zone,
            columns=headers.get(name, ()),
            encoding=encoding,
            rating_scale=rating_scale,
            minor_units=minor_units,
            times_utc=times_utc,
            decimal_point=decimal_point,
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
    """`reading`: an `ingest_options.Reading` (`--event-type`, `--ts-format`); None reads as sent.
    `replace`: load content ingested before again, in place of the earlier load;
    `replace_batch`: load this file in place of batch N."""
    from profiler.ingest import ingest
    from profiler.ingest_options import Reading
    from profiler.lock import lock_path, warehouse_lock
    from profiler.pii import load_pii_key
    from profiler.project import require_models
    from profiler.sources import get_source
    from profiler.state import ensure_schema

    get_source(source)
    # outside the project a warehouse and a PII key of its own were made, unsaid: e-mail ids
    # then got other pseudonyms than the project's (helper-54)
    require_models(settings.project_dir)
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


def build_project(
    settings: Settings, select: str | None, full_refresh: bool, as_of: str | None, console
) -> bool:
    """Run a build and print one line per model; True when everything selected is published."""
    from profiler.build import BuildOptions, BuildStopped, parse_as_of, run_build
    from profiler.lock import warehouse_lock
    from profiler.project import require_models
    from profiler.report import BuildPrinter
    from profiler.runlog import write_run_results
    from profiler.serve.serving import Held, publish_serving_copy

    require_models(settings.project_dir)  # before the warehouse is touched
    if settings.target_dir.exists() and not settings.target_dir.is_dir():  # helper-46: a traceback
        raise ProfilerError(
            f"{settings.target_dir} is a file; profiler keeps run results, its parse cache and "
            "trained models in that folder: move the file away"
        )
    if settings.warehouse_configured and not settings.warehouse.exists():
        raise ProfilerError(no_warehouse(settings))
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
                f"{settings.warehouse.name}.example",
                soft_wrap=True,
            )
        con = connect(settings)
        try:
            versions = _versions(con)
            try:
                with printer:
                    run = run_build(con, settings.project_dir, options)
            except BaseException as err:  # Ctrl-C, SIGTERM: say which models it published
                # (helper-80: one published as the stop came had no line)
                err.published = _published_since(con, versions)
                raise
            kept = publish_serving_copy(settings, con, run) if run.status == "success" else None
            try:  # after the serving copy: published models are served whatever target/ allows
                write_run_results(settings.target_dir, run)
            except OSError as err:  # helper-62: a traceback after every model was published
                if storage_fault(err, settings):
                    raise
                console.print(
                    f"warning: {settings.target_dir / 'run_results.json'} not written "
                    f"({err.strerror or err}); the build itself is published",
                    soft_wrap=True,
                )
            printer.summary(con, run, settings.warehouse, as_of_given=as_of is not None)
            if isinstance(kept, Held):
                from profiler.serve.catalog import serving_path

                serving = serving_path(settings.warehouse)
                console.print(  # helper-71: "X behind T" read as stale when X was just built
                    f"note: {serving.name} "
                    + ("stays at its last whole build" if serving.exists() else "not written")
                    + f": {kept.why}; a build of them all (`profiler build`) "
                    + ("replaces it" if serving.exists() else "writes it"),
                    soft_wrap=True,
                )
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


def _versions(con) -> dict[str, int]:
    """Each model's state version; none before the first build made the state (the build's own
    `ensure_schema` does, once)."""
    from profiler.state import SCHEMA, has_table, read_states

    if not has_table(con, "models", SCHEMA):
        return {}
    return {name: state.version for name, state in read_states(con).items()}


def _published_since(con, versions: dict[str, int]) -> list[str] | None:
    """The models whose state moved since `versions` was read; None when the warehouse cannot
    tell (the stop left the connection unusable)."""
    try:
        now = _versions(con)
    except Exception:
        return None
    return sorted(name for name, version in now.items() if versions.get(name) != version)


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
    """The gate of the project's suites (compiled to SQL; GX runs only what the compiler does not
    know), when it has suites; otherwise everything passes."""
    from profiler.publish import OpenGate

    if any((settings.project_dir / "expectations").glob("*.json")):
        from profiler.gate import ExpectationGate  # GX is imported only for what SQL cannot run

        return ExpectationGate(settings)
    return OpenGate()


LS_COLUMNS = ("model", "kind", "key / time", "tags", "reads", "description")


def list_models(settings: Settings) -> list[tuple[str, str, str, str, str, str]]:
    """One row per model, in DAG order: name, kind, keys (@ time column), tags (what `--select
    tag:x` picks), parents, description."""
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
        tags = ", ".join(m.tags)
        rows.append((name, m.kind.value, keys, tags, ", ".join(dag.parents[name]), m.description))
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
