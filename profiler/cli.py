"""The `profiler` command: parse arguments, call one function, print. No logic lives here.

Heavy libraries (Great Expectations, scikit-learn, pyarrow) are imported by the commands that use
them, so `profiler --help` and `profiler ls` start fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from profiler.errors import ProfilerError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="A dbt-style SQL feature store that keeps e-commerce user profiles up to date in DuckDB.",
)

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project-dir", envvar="PROFILER_PROJECT_DIR", help="Folder with sql/ and features/."
    ),
]
DecimalCommaOpt = Annotated[
    bool,
    typer.Option(
        "--decimal-comma",
        help="Numbers sent as text use a decimal comma, as European exports do: 1.234,50.",
    ),
]
DecimalPointOpt = Annotated[
    bool,
    typer.Option(
        "--decimal-point",
        help="Numbers sent as text use a decimal point and commas only group thousands: 1,899 is "
        "1899 (won, yen or peso exports), which is refused as ambiguous without it.",
    ),
]
MinorUnitsOpt = Annotated[
    bool,
    typer.Option(
        "--minor-units",
        help="Money is sent in minor units (cents), as Stripe's API does: amount and price are "
        "divided by 100.",
    ),
]
TimesUtcOpt = Annotated[
    bool,
    typer.Option(
        "--times-utc",
        help="Times without a zone are UTC (Amplitude's, Snowplow's, warehouse exports): "
        "converted to the shop's time zone, as Unix times are.",
    ),
]
RatingScaleOpt = Annotated[
    int | None,
    typer.Option(
        "--rating-scale",
        help="Points of the best rating in a feedback file: 10 or 100 read as stars 1-5 "
        "(9 and 10 of 10 are 5 stars); 5 keeps stars and quarantines stray values above 5. "
        "Without it, a file whose ratings spread over 6-10 is refused.",
    ),
]
TimeZoneOpt = Annotated[
    str | None,
    typer.Option(
        help="The shop's time zone, e.g. Europe/Berlin: days, hours and sessions follow its "
        "clock. Set by a warehouse's first ingest (UTC when not given) and kept: Unix times and "
        "times with an offset are converted to it, times without one are taken as already in it.",
    ),
]
EncodingOpt = Annotated[
    str | None,
    typer.Option(
        help="The text files' encoding when it is not UTF-8, e.g. cp1252 (Windows, as Excel "
        "saves CSV), latin-1, utf-16."
    ),
]
WarehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--warehouse",
        envvar="PROFILER_WAREHOUSE",
        help="DuckDB file (default: <project>/warehouse.duckdb).",
    ),
]


def _console():
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # `profiler build | head`: the reader left, the command goes on unheard, as with its
            # output in a file (helper-80: rich's own handler exited 1 and the build stopped
            # halfway, some models published, the rest not, without a word)
            self.quiet = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    return _Console(highlight=False)


def _fail(message: str) -> None:
    from rich.markup import escape

    # the message may quote a file's column names or values: never markup
    _console().print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(1)


@app.callback()
def _stop_on_sigterm(ctx: typer.Context) -> None:
    # SIGTERM (a scheduler's stop, `kill`) stops a command as Ctrl-C does, so it too says what
    # the command left instead of dying without a word (helper-62); for the command only: a
    # process that runs commands in-process (pytest) gets its own handler back (helper-75: the
    # test suite could not be stopped)
    import signal

    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    ctx.call_on_close(lambda: signal.signal(signal.SIGTERM, previous))


def _stops() -> tuple[type[BaseException], ...]:
    """What a Ctrl-C or SIGTERM surfaces as: KeyboardInterrupt between queries, DuckDB's
    InterruptException or a RuntimeError "Query interrupted" inside one (helper-62: 8 of 139
    stops printed that traceback). Only evaluated when an exception is raised."""
    import duckdb

    return (KeyboardInterrupt, RuntimeError, duckdb.InterruptException)


def _interrupted(err: BaseException, message: str) -> None:
    """Ctrl-C or SIGTERM stopped a command: say what it left (helper-46: typer exits 130 and
    says nothing, an ingest printed a traceback). Any other error of `_stops()`'s kinds is
    raised on."""
    from rich.markup import escape

    if isinstance(err, RuntimeError) and "interrupt" not in str(err).lower():
        raise err
    _console().print(f"[yellow]interrupted:[/yellow] {escape(message)}", soft_wrap=True)
    raise typer.Exit(130)


def _settings(project_dir: Path | None, warehouse: Path | None):
    from profiler.settings import load_settings

    return load_settings(project_dir, warehouse)


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="events, users, items or feedback.")],
    # readable=False: click's own check printed a boxed usage error, exit 2; ingest says it in
    # one line (helper-126)
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON-lines file.", readable=False)],
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="TARGET=COLUMN: read canonical TARGET from the file's COLUMN."),
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option(
            help="Every line is this event type (view, cart, fav, purchase, search), for a file "
            "without an event type column, e.g. an orders export; or VALUE=TYPE, repeated, for "
            "a column of codes, e.g. 0=view 1=cart; VALUE=skip leaves those lines out (quarantined)."
        ),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            help="Every line is this kind of feedback (rating, review, complaint, like, comment, "
            "share), for a feedback file without a kind column, e.g. a reviews export; or "
            "VALUE=KIND, repeated."
        ),
    ] = None,
    ts_format: Annotated[
        str | None,
        typer.Option(
            help="strptime format of times sent as text that are not ISO 8601, "
            "e.g. '%m/%d/%Y %H:%M' for 12/1/2010 8:26."
        ),
    ] = None,
    decimal_comma: DecimalCommaOpt = False,
    decimal_point: DecimalPointOpt = False,
    time_zone: TimeZoneOpt = None,
    columns: Annotated[
        str | None,
        typer.Option(
            help="The file has no header line: its columns, in order, comma-separated, e.g. "
            "user_id,item_id,category_id,event_type,ts for Taobao's UserBehavior.csv."
        ),
    ] = None,
    encoding: EncodingOpt = None,
    rating_scale: RatingScaleOpt = None,
    minor_units: MinorUnitsOpt = False,
    times_utc: TimesUtcOpt = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="The same content was ingested before (read wrongly: --ts-format, --map, "
            "--event-type): its rows leave raw_<source> and quarantine and the file loads as "
            "read now, as the same batch, in one step; refused when no line would load. The "
            "next build recomputes the models in full and takes back history stamped later "
            "than the corrected data.",
        ),
    ] = False,
    replace_batch: Annotated[
        int | None,
        typer.Option(
            "--replace-batch",
            metavar="N",
            help="Load the file in place of batch N of this source (a corrected re-export of an "
            "earlier file; batch ids are in _profiler.batches and in the ingest summary), "
            "as --replace does.",
        ),
    ] = None,
    project_dir: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Append a file to raw_<source>; lines that cannot be used go to `quarantine`, with the reason.

    How columns, times, money, ids and repeats are read: docs/ingest.md.
    """
    from profiler.commands import ingest_file, parse_mapping, reading_of

    try:
        if replace and replace_batch is not None:
            raise ProfilerError("--replace and --replace-batch: give one")
        result = ingest_file(
            _settings(project_dir, warehouse),
            source,
            path,
            parse_mapping(map_ or []),
            reading_of(
                event_type,
                kind,
                ts_format=ts_format,
                decimal_comma=decimal_comma,
                time_zone=time_zone,
                columns=columns,
                encoding=encoding,
                rating_scale=rating_scale,
                minor_units=minor_units,
                times_utc=times_utc,
                decimal_point=decimal_point,
            ),
            replace,
            replace_batch,
        )
    except ProfilerError as err:
        _fail(str(err))
    except _stops() as err:
        _interrupted(
            err, f"nothing loaded from {path} (a file loads in one transaction); send it again"
        )
    from profiler.ingest_summary import describe_ingest

    _console().print(describe_ingest(result), soft_wrap=True, markup=False)
    failure = result.failure()  # a scheduler must not see these as a success
    if failure:
        _fail(failure)


@app.command()
def build(
    select: Annotated[
        str | None,
        typer.Option("--select", "-s", help="dbt selector: model, model+, +model, tag:x."),
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild incremental models from scratch.")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Build as of this time (ISO); default: newest event."),
    ] = None,
    project_dir: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Build what changed, gated, published atomically."""
    from profiler.commands import build_project

    try:
        ok = build_project(
            _settings(project_dir, warehouse), select, full_refresh, as_of, _console()
        )
    except ProfilerError as err:
        _fail(str(err))
    except _stops() as err:
        published = getattr(err, "published", None)
        which = (
            "no model was published before the stop"
            if published == []
            else f"the models published before the stop ({', '.join(published)}) keep their new "
            "tables, the others their last ones"
            if published
            else "the models published before the stop keep their new tables, the others their "
            "last ones"
        )
        _interrupted(
            err,
            f"{which}, and the serving copy is the last whole build; `profiler build` finishes "
            "the job",
        )
    if not ok:
        raise typer.Exit(1)


@app.command()
def check(
    select: Annotated[
        str | None,
        typer.Option("--select", "-s", help="dbt selector, or raw table names (raw_events)."),
    ] = None,
    project_dir: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Run the expectations on published tables, without building."""
    from profiler.check import check_project

    try:
        ok = check_project(_settings(project_dir, warehouse), select, _console())
    except ProfilerError as err:
        _fail(str(err))
    except _stops() as err:
        _interrupted(err, "no table was changed (check only reads them)")
    if not ok:
        raise typer.Exit(1)


@app.command("ls")
def ls_(project_dir: ProjectOpt = None) -> None:
    """List the project's models with kind, keys and description."""
    from profiler.commands import LS_COLUMNS, list_models

    try:
        rows = list_models(_settings(project_dir, None))
    except ProfilerError as err:
        _fail(str(err))
    console = _console()
    if not console.is_terminal:
        # piped or redirected: one tab-separated line per model, whole, for grep, cut and scripts
        sys.stdout.write("".join("\t".join(row) + "\n" for row in [LS_COLUMNS, *rows]))
        return
    from rich.table import Table

    table = Table(*LS_COLUMNS, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command()
def dag(
    format_: Annotated[str, typer.Option("--format", help="text or mermaid.")] = "text",
    project_dir: ProjectOpt = None,
) -> None:
    """Show the lineage of the project's models, from sources to the profile."""
    from profiler.commands import render_dag

    try:
        text = render_dag(_settings(project_dir, None), format_)
    except ProfilerError as err:
        _fail(str(err))
    sys.stdout.write(text + "\n")


@app.command()
def show(
    user_id: Annotated[str, typer.Argument(help="The user's id as it appears in user_profile.")],
    project_dir: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """One user's profile, grouped by dimension."""
    from profiler.serve.show import show_user

    try:
        show_user(_settings(project_dir, warehouse), user_id, _console())
    except ProfilerError as err:
        _fail(str(err))


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Folder for the Parquet files.")],
    select: Annotated[
        str | None,
        typer.Option(
            "--select", "-s", help="dbt selector over the analyst tables, or user_scores."
        ),
    ] = None,
    audiences_csv: Annotated[
        bool,
        typer.Option(
            "--audiences-csv", help="Also write OUT/audiences/<audience>.csv of user ids."
        ),
    ] = False,
    project_dir: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Parquet (zstd) of the analyst tables, with column docs; only what changed is rewritten."""
    from profiler.serve.export import export_tables

    try:
        result = export_tables(_settings(project_dir, warehouse), out, select, audiences_csv)
    except ProfilerError as err:
        _fail(str(err))
    except _stops() as err:
        _interrupted(
            err,
            f"the tables written so far are in {out} and its manifest; run the export again "
            "to write the rest",
        )
    console = _console()
    for line in result.lines():
        console.print(line, soft_wrap=True)


@app.command()
def docs(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the static site (open index.html).")
    ],
    evaluate_recommendations: Annotated[
        str | None,
        typer.Option(
            "--evaluate-recommendations",
            help="First evaluate user_recommendations built as of this cutoff (ISO) on the days after it.",
        ),
    ] = None,
    horizon_days: Annotated[
        int, typer.Option("--horizon-days", help="Days after the cutoff the evaluation looks at.")
    ] = 2,
    project_dir: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """A static docs site: lineage, models, checks, model metrics, distributions, profile lookup."""
    from profiler.serve.docs import docs_command

    try:
        lines = docs_command(
            _settings(project_dir, warehouse), out, evaluate_recommendations, horizon_days
        )
    except ProfilerError as err:
        _fail(str(err))
    except _stops() as err:
        _interrupted(
            err, f"the site in {out} is as it was (it is replaced whole); run `profiler docs` again"
        )
    console = _console()
    for line in lines:
        console.print(
            line, style="bold red" if line.startswith("WARNING") else None, soft_wrap=True
        )


@app.command()
def watch(
    directory: Annotated[
        Path, typer.Argument(help="Landing folder with one subfolder per source.")
    ],
    every: Annotated[float, typer.Option("--every", min=0.1, help="Seconds between scans.")] = 10.0,
    once: Annotated[
        bool, typer.Option("--once", help="Scan, ingest and build once, then stop.")
    ] = False,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="SOURCE.TARGET=COLUMN: in DIR/SOURCE/ files, read canonical TARGET from COLUMN.",
        ),
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option(help="As ingest's, for files in DIR/events/: TYPE, or VALUE=TYPE repeated."),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(help="As ingest's, for files in DIR/feedback/: KIND, or VALUE=KIND repeated."),
    ] = None,
    ts_format: Annotated[
        str | None, typer.Option(help="strptime format of times sent as text, in every folder.")
    ] = None,
    decimal_comma: DecimalCommaOpt = False,
    decimal_point: DecimalPointOpt = False,
    time_zone: TimeZoneOpt = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            help="SOURCE=A,B,C: CSV files in DIR/SOURCE/ have no header line; these are their "
            "columns, in order."
        ),
    ] = None,
    encoding: EncodingOpt = None,
    rating_scale: RatingScaleOpt = None,
    minor_units: MinorUnitsOpt = False,
    times_utc: TimesUtcOpt = False,
    project_dir: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Ingest files landing in DIR/<source>/ and build, in a loop, until Ctrl-C or SIGTERM."""
    from profiler.commands import landing_readings
    from profiler.watch import watch_folder

    try:
        readings = landing_readings(
            map_ or [],
            event_type,
            kind,
            ts_format=ts_format,
            decimal_comma=decimal_comma,
            time_zone=time_zone,
            columns=columns or [],
            encoding=encoding,
            rating_scale=rating_scale,
            minor_units=minor_units,
            times_utc=times_utc,
            decimal_point=decimal_point,
        )
        ok = watch_folder(
            _settings(project_dir, warehouse),
            directory,
            every,
            _console(),
            once=once,
            readings=readings,
        )
    except ProfilerError as err:
        _fail(str(err))
    if not ok:
        raise typer.Exit(1)


@app.command()
def generate(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for events/users/items/feedback files.")
    ],
    users: Annotated[int, typer.Option("--users")] = 1000,
    events: Annotated[int, typer.Option("--events")] = 50_000,
    days: Annotated[int, typer.Option("--days")] = 30,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")] = "2024-01-01",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    format_: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Synthetic shop data for all four sources, ready to ingest without --map."""
    from datetime import date

    from profiler.generate import generate as run

    try:
        first = date.fromisoformat(start)
    except ValueError:
        _fail(f"--start {start!r} is not a date like 2024-01-01")
    try:
        counts = run(
            out, users=users, events=events, days=days, start=first, seed=seed, fmt=format_
        )
    except ProfilerError as err:
        _fail(str(err))
    except _stops() as err:
        _interrupted(
            err, f"the files in {out} may be partly written; run `profiler generate` again"
        )
    _console().print(
        ", ".join(f"{k}: {v:,}" for k, v in counts.items()) + f" -> {out}", soft_wrap=True
    )


@app.command()
def train(
    name: Annotated[str, typer.Argument(help="A spec in models/, e.g. purchase_propensity.")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Score as of this time (ISO); default: newest event."),
    ] = None,
    horizon_days: Annotated[
        int | None, typer.Option("--horizon-days", help="Override the spec's horizon.")
    ] = None,
    project_dir: ProjectOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Point-in-time training, out-of-time evaluation against baselines, scores into user_scores."""
    from profiler.ml.command import train_command

    try:
        report = train_command(_settings(project_dir, warehouse), name, as_of, horizon_days)
    except ProfilerError as err:
        _fail(str(err))
    except _stops() as err:
        _interrupted(err, f"no new version of {name} and no new scores")
    console = _console()
    for line in report.lines:
        console.print(
            line, style="bold red" if line.startswith("WARNING") else None, soft_wrap=True
        )


def main() -> None:
    app()
