"""How the warehouse is opened: its catalog name, row groups, read-only mode and cursors."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from profiler.errors import ProfilerError
from profiler.settings import (
    ROW_GROUP_SIZE,
    Settings,
    connect,
    cursor,
    ensure_warehouse,
    load_settings,
)


def _settings(tmp_path: Path, name: str = "wh.duckdb") -> Settings:
    return Settings(project_dir=tmp_path, warehouse=tmp_path / name, memory_limit="1GB")


def test_tables_are_written_in_row_groups_both_cores_can_write(tmp_path: Path) -> None:
    """A table of 100k users spans several row groups, not DuckDB's one of 122,880 rows."""
    con = connect(_settings(tmp_path))
    con.execute("CREATE TABLE users AS SELECT range AS user_id FROM range(100000)")
    groups = con.execute(
        "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('users')"
    ).fetchone()[0]
    con.close()
    assert groups == -(-100_000 // ROW_GROUP_SIZE) > 1
    # the file stays a plain DuckDB database: anyone opens it the usual way
    plain = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    assert plain.execute("SELECT count(*), max(user_id) FROM users").fetchone() == (100_000, 99_999)
    plain.close()


def test_the_catalog_is_named_after_the_file_as_duckdb_connect_names_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "it's a-warehouse.duckdb")
    con = connect(settings)
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert con.execute("SELECT current_database()").fetchone()[0] == "it's a-warehouse"
    con.close()
    ro = connect(settings, read_only=True)
    assert ro.execute("SELECT x FROM t").fetchall() == [(1,)]
    with pytest.raises(duckdb.Error, match="read-only"):
        ro.execute("CREATE TABLE u AS SELECT 1")
    ro.close()


@pytest.mark.parametrize(
    ("file", "catalog"),
    [("temp.duckdb", "temp_db"), ("Memory.duckdb", "Memory_db"), ("shop.v2.duckdb", "shop"),
     (".hidden.duckdb", "hidden")],
)  # fmt: skip
def test_a_warehouse_named_like_a_duckdb_catalog_still_opens(
    tmp_path: Path, file: str, catalog: str
) -> None:
    con = connect(_settings(tmp_path, file))
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert con.execute("SELECT current_database(), count(*) FROM t").fetchone() == (catalog, 1)
    con.close()


def test_a_cursor_reads_what_its_connection_reads(tmp_path: Path) -> None:
    """A bare DuckDB cursor starts in the in-memory catalog; `cursor()` does not."""
    con = connect(_settings(tmp_path))
    con.execute("CREATE SCHEMA s")
    con.execute("CREATE TABLE s.t AS SELECT 42 AS x")
    con.execute("USE wh.s")
    assert con.cursor().execute("SELECT current_database()").fetchone()[0] == "memory"
    assert cursor(con).execute("SELECT x FROM t").fetchall() == [(42,)]
    con.close()


def test_a_warehouse_another_process_holds_is_one_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "wh.duckdb"
    duckdb.connect(str(path)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('ok', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        # helper-46: DuckDB's own words did not say to point the BI tool at the serving copy
        with pytest.raises(
            ProfilerError,
            match="another process has it open .*python.*serving copy wh.serving.duckdb",
        ):
            connect(_settings(tmp_path))
    finally:
        holder.kill()
        holder.wait()


def test_spills_go_beside_the_warehouse_unless_configured(tmp_path: Path) -> None:
    """An in-memory DuckDB instance would spill to ./.tmp, wherever the command runs."""
    con = connect(_settings(tmp_path))
    assert con.execute("SELECT current_setting('temp_directory')").fetchone()[0] == str(
        tmp_path / "wh.duckdb.tmp"
    )
    con.close()
    spill = tmp_path / "spill"
    configured = Settings(tmp_path, tmp_path / "wh.duckdb", memory_limit="1GB", temp_dir=spill)
    con = connect(configured)
    assert con.execute("SELECT current_setting('temp_directory')").fetchone()[0] == str(spill)
    con.close()


def test_a_warehouse_already_open_in_this_process_is_one_clear_error(tmp_path: Path) -> None:
    first = connect(_settings(tmp_path))
    try:
        with pytest.raises(ProfilerError, match="cannot open warehouse .*wh.duckdb"):
            connect(_settings(tmp_path), read_only=True)
    finally:
        first.close()


def test_an_option_beats_the_environment_and_the_default_warehouse_is_the_projects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: `--warehouse` does what PROFILER_WAREHOUSE does, and the warehouse defaults to
    `<project>/warehouse.duckdb` wherever the command runs (helper-111: neither was pinned; either
    mistake writes a shop's events into another file)."""
    from conftest import TAOBAO, run_cli, sql_project
    from typer.testing import CliRunner

    from profiler.cli import app

    events = tmp_path / "events.csv"
    events.write_text("".join(TAOBAO.open().readlines()[:50]))
    shop, test = tmp_path / "shop.duckdb", tmp_path / "test.duckdb"
    run_cli("ingest", "events", str(events), "--warehouse", str(test), warehouse=shop)
    assert test.exists() and not shop.exists()
    project, elsewhere = sql_project(tmp_path / "project"), tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(
        app, ["ingest", "events", str(events)], env={"PROFILER_PROJECT_DIR": str(project)}
    )
    assert result.exit_code == 0, result.output
    assert (project / "warehouse.duckdb").exists() and not (elsewhere / "warehouse.duckdb").exists()


def test_duckdb_gets_the_configured_threads_and_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROFILER_THREADS and PROFILER_MEMORY_LIMIT reach DuckDB; unset, the limit is 3GB, not
    DuckDB's 80% of the machine's memory (a process past 4 GB is killed, helper-111)."""
    monkeypatch.delenv("PROFILER_MEMORY_LIMIT", raising=False)
    assert load_settings(tmp_path, tmp_path / "wh.duckdb").memory_limit == "3GB"
    monkeypatch.setenv("PROFILER_THREADS", "1")
    monkeypatch.setenv("PROFILER_MEMORY_LIMIT", "1GB")
    con = connect(load_settings(tmp_path, tmp_path / "wh.duckdb"))
    got = con.execute("SELECT current_setting('threads'), current_setting('memory_limit')")
    assert got.fetchone() == (1, "953.6 MiB")  # 1GB is 10^9 bytes
    con.close()


def test_the_example_goes_only_to_the_default_path(tmp_path: Path) -> None:
    """A configured warehouse that is not there gets no copy of the made-up shop: the build
    refuses it (a typo), and the copy would take the shop's own file name (helper-111)."""
    import shutil

    from conftest import REPO

    shutil.copy(REPO / "warehouse.duckdb.example", tmp_path / "warehouse.duckdb.example")
    shop = tmp_path / "shop.duckdb"
    assert not ensure_warehouse(Settings(tmp_path, shop, warehouse_configured=True))
    assert not shop.exists()
    assert ensure_warehouse(Settings(tmp_path, tmp_path / "warehouse.duckdb"))
    assert (tmp_path / "warehouse.duckdb").exists()


def test_a_limit_duckdb_cannot_read_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    """helper-111: PROFILER_THREADS=two or PROFILER_MEMORY_LIMIT=3 (no unit) was a 40-line
    Python traceback."""
    from conftest import run_cli, sql_project

    project, wh = sql_project(tmp_path / "project"), tmp_path / "wh.duckdb"
    events = tmp_path / "events.csv"
    events.write_text("user_id,ts,event_type\nu1,2024-01-01 10:00:00,view\n")
    for name, value in (("PROFILER_THREADS", "two"), ("PROFILER_MEMORY_LIMIT", "3")):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(name, value)
            out = run_cli("ingest", "events", str(events), warehouse=wh,
                          project=project, ok=False)  # fmt: skip
        assert f"{name}={value}" in out and len(out.strip().splitlines()) == 1, out
        # only the variable DuckDB refused (helper-113: the fine one and the default were named)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PROFILER_THREADS", "2")
            mp.setenv("PROFILER_MEMORY_LIMIT", "3")
            out = run_cli("ingest", "events", str(events), warehouse=wh, project=project, ok=False)
        assert "PROFILER_MEMORY_LIMIT=3: " in out and "PROFILER_THREADS" not in out, out


@pytest.mark.parametrize("value", ["two", "-1", "\u00b2", "1.5"])
def test_threads_that_are_no_whole_number_are_one_line(value: str, monkeypatch) -> None:
    """'\u00b2' (a superscript two) is a digit to str.isdigit but no number to int(): a
    traceback, `invalid literal for int()`."""
    from profiler.settings import load_settings

    monkeypatch.setenv("PROFILER_THREADS", value)
    with pytest.raises(ProfilerError, match="a whole number of threads"):
        load_settings()
