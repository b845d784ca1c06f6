"""Where the project and warehouse live, and how DuckDB is configured.

Everything here comes from CLI options or the environment; nothing reads the wall clock.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.faults import check_writable, raise_if_storage_fault
from profiler.sqltext import literal as _literal
from profiler.sqltext import quote as _quote
from profiler.state import SCHEMA, check_state_version

EXAMPLE_WAREHOUSE = "warehouse.duckdb.example"
_EXAMPLE_KEY = "example"  # in _profiler.settings: this warehouse began as a copy of the example
# Rows per row group in the tables a build writes. At DuckDB's default (122,880) a table of 100k
# users is one row group: one thread writes it, and the append goes through the WAL, so the
# checkpoint writes it a second time. A quarter of that lets both cores write a table's row
# groups straight to the file (10M events, a 1% batch: 9.5 s -> 7.9 s, benchmarks/RESULTS.md).
ROW_GROUP_SIZE = 32_768
# Catalog names DuckDB keeps for itself; a warehouse file named after one gets `_db` appended, as
# `duckdb.connect` does for main, temp and system (here the in-memory catalog holds "memory" too).
_RESERVED_CATALOGS = {"main", "temp", "system", "memory"}


@dataclass(frozen=True)
class Settings:
    project_dir: Path
    warehouse: Path
    warehouse_configured: bool = False
    threads: int | None = None
    memory_limit: str | None = None
    temp_dir: Path | None = None

    @property
    def target_dir(self) -> Path:
        return self.project_dir / "target"

    @property
    def state_dir(self) -> Path:
        """Files kept beside the project but outside the warehouse (the PII key, the build lock)."""
        return self.project_dir / ".profiler"


def no_warehouse(settings: Settings) -> str:
    """What to do when the warehouse file is not there: one message for every command
    (helper-80: show, check and export said "run `profiler build`", which refuses a path set by
    PROFILER_WAREHOUSE that does not exist)."""
    if settings.warehouse_configured:  # a typo in PROFILER_WAREHOUSE made folders (helper-29)
        return (
            f"{settings.warehouse}: no warehouse there (a typo in the path?); "
            "`profiler ingest events FILE` creates one, then `profiler build`"
        )
    return (
        f"no warehouse at {settings.warehouse}; `profiler build` starts it from the example shop, "
        "or set PROFILER_WAREHOUSE to your shop's"
    )


def load_settings(
    project_dir: str | Path | None = None, warehouse: str | Path | None = None
) -> Settings:
    """Resolve options, then environment variables, then defaults (see GUIDE: the contract)."""
    project = Path(project_dir or os.environ.get("PROFILER_PROJECT_DIR") or ".").resolve()
    configured = warehouse or os.environ.get("PROFILER_WAREHOUSE")
    wh = Path(configured).resolve() if configured else project / "warehouse.duckdb"
    threads = os.environ.get("PROFILER_THREADS")
    if threads and not threads.strip().isdecimal():  # helper-111: a traceback said int() failed
        raise ProfilerError(f"PROFILER_THREADS={threads}: a whole number of threads, e.g. 2")
    return Settings(
        project_dir=project,
        warehouse=wh,
        warehouse_configured=bool(configured),
        threads=int(threads) if threads else None,
        # DuckDB's limit covers its buffers, not Python, Arrow or allocator slack: 3 GB keeps a
        # whole process under 4 GB, spilling to the temp dir beyond it.
        memory_limit=os.environ.get("PROFILER_MEMORY_LIMIT", "3GB"),
        temp_dir=Path(os.environ["PROFILER_TEMP_DIR"])
        if os.environ.get("PROFILER_TEMP_DIR")
        else None,
    )


def ensure_warehouse(settings: Settings) -> bool:
    """Start a newcomer from the embedded example when no warehouse exists and none was configured.

    Returns True when the example was copied. A configured path that does not exist is created
    empty by DuckDB on connect.
    """
    if settings.warehouse.exists() or settings.warehouse_configured:
        return False
    example = settings.project_dir / EXAMPLE_WAREHOUSE
    if not example.exists():
        return False
    partial = settings.warehouse.with_name(f".{settings.warehouse.name}.copying")
    shutil.copyfile(example, partial)
    with duckdb.connect(str(partial)) as con:  # marked, so a shop's own files are not mixed in
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.settings (name VARCHAR PRIMARY KEY, value VARCHAR)"
        )
        con.execute(
            f"INSERT OR REPLACE INTO {SCHEMA}.settings VALUES (?, ?)",
            [_EXAMPLE_KEY, EXAMPLE_WAREHOUSE],
        )
    partial.replace(settings.warehouse)  # a copy cut short never looks like a warehouse
    return True


def refuse_example_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    """A warehouse the first build started from the example holds a made-up shop: a real
    shop's files go into a warehouse of their own, never mixed with it (ids would collide)."""
    (marked,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = 'settings'",
        [SCHEMA],
    ).fetchone()
    if (
        marked
        and con.execute(
            f"SELECT 1 FROM {SCHEMA}.settings WHERE name = ?", [_EXAMPLE_KEY]
        ).fetchone()
    ):
        (path,) = con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        name = Path(path or "warehouse.duckdb").name
        raise ProfilerError(
            f"{name} holds the example shop the first `profiler build` copied from "
            f"{EXAMPLE_WAREHOUSE}; set PROFILER_WAREHOUSE to a new file for your shop's data, "
            f"or delete {name} to start it empty"
        )


def connect(settings: Settings, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with the configured limits, so large builds spill instead of dying.

    Opening to write first checks that the warehouse can be written at all (see
    `faults.check_writable`), so a read-only one is refused before any work. The warehouse is
    attached (the row group size is an ATTACH option; `ROW_GROUP_SIZE` says why) under the
    catalog name `duckdb.connect` would give it, and `USE`d; a new cursor starts in the in-memory
    catalog, so take cursors with `cursor()`. Spills go beside the warehouse, as they would with
    `duckdb.connect(path)`, unless PROFILER_TEMP_DIR says otherwise.
    """
    if not read_only:
        check_writable(settings)
    limits = {
        "PROFILER_MEMORY_LIMIT": ("memory_limit", settings.memory_limit),
        "PROFILER_THREADS": ("threads", settings.threads),
    }
    config: dict[str, str | int] = {name: value for name, value in limits.values() if value}
    # an in-memory instance would spill to ./.tmp, wherever the command runs
    config["temp_directory"] = str(settings.temp_dir or f"{settings.warehouse}.tmp")
    try:  # the limits as configuration: a SET of a huge thread count aborts the process
        con = duckdb.connect(config=config)
    except duckdb.Error as exc:  # helper-111: a limit DuckDB cannot take was a traceback
        for variable, (name, value) in limits.items():  # name the one it refuses (helper-113)
            try:
                if value:
                    duckdb.connect(config={name: value}).close()
            except duckdb.Error as err:
                raise ProfilerError(f"{variable}={value}: {str(err).splitlines()[0]}") from None
        raise ProfilerError(str(exc).splitlines()[0]) from None
    catalog = _quote(catalog_name(settings.warehouse))
    options = f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}" + (", READ_ONLY" if read_only else "")
    try:
        con.execute(f"ATTACH {_literal(str(settings.warehouse))} AS {catalog} ({options})")
    except duckdb.Error as exc:  # locked by another process or already open here, unreadable
        con.close()
        raise_if_storage_fault(exc, settings)
        first = str(exc).strip().splitlines()[0]
        if "Conflicting lock" in first:  # another process has it open: busy, not broken
            from profiler.lock import Busy
            from profiler.serve.catalog import serving_path

            held = re.search(r"held in (.*?\(PID \d+\))", first)
            holder = f" ({held.group(1)})" if held else ""
            # helper-46: DuckDB's words alone did not say what to do
            raise Busy(
                f"cannot open warehouse {settings.warehouse}: another process has it open"
                f"{holder}, a BI tool or a notebook? Readers should open the serving copy "
                f"{serving_path(settings.warehouse).name}, which no build locks; close that "
                "connection and run the command again"
            ) from None
        raise ProfilerError(f"cannot open warehouse {settings.warehouse}: {first}") from None
    con.execute(f"USE {catalog}")
    try:
        check_state_version(con, f"warehouse {settings.warehouse}")
    except (ProfilerError, duckdb.Error) as err:
        con.close()
        raise_if_storage_fault(err, settings)  # a damaged file is found by this first read
        raise
    return con


def catalog_name(warehouse: Path) -> str:
    """The warehouse's catalog: the file name up to its first dot, as `duckdb.connect` names it."""
    name = warehouse.name.lstrip(".").split(".")[0] or "warehouse"
    return f"{name}_db" if name.lower() in _RESERVED_CATALOGS else name


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of `con` that reads the catalog and schema `con` is using, as `con` does."""
    catalog, schema = con.execute("SELECT current_database(), current_schema()").fetchone()
    cur = con.cursor()
    cur.execute(f"USE {_quote(catalog)}.{_quote(schema)}")
    return cur
