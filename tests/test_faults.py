"""Storage faults on real data: a read-only warehouse or a full disk gives one clear line, no
traceback, and no half-published table; the next run without the fault equals an uninterrupted one.

Data: the shared Taobao sample cut into three time batches. Models: the project's sql/ and
features/ (no gate, no model layer: see `conftest.sql_project`).

A full disk is simulated without root: the command runs in a subprocess whose RLIMIT_FSIZE is
lowered (with SIGXFSZ ignored, so a write past it fails with EFBIG instead of killing the process).
The limit applies to every file the process writes: the warehouse, its WAL and DuckDB's spill files.
A read-only warehouse is a chmod; as root, where chmod stops nothing, the subprocess runs without
the capabilities that let root ignore file permissions (CAP_DAC_OVERRIDE and friends).

In process: a gate that runs out of memory stops the build whichever engine ran it; an error that
only quotes storage words (a value in a conversion error) is no storage fault; a cleanup the disk
refuses after the COMMIT leaves the model published.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from conftest import (
    REPO,
    TAOBAO,
    at_once,
    env_for,
    run_cli,
    split_csv_by_time,
    sql_project,
)

from profiler.faults import fault_kind
from profiler.gate import ExpectationGate, validate
from profiler.gate_suites import Suite
from profiler.materialize import Staged
from profiler.plan import Plan
from profiler.project import Kind, Model
from profiler.publish import OpenGate, publish
from profiler.runlog import read_run_results
from profiler.state import ModelState, ensure_schema, read_states, write_state

CUTS = [
    1511900000,
    1512150000,
]  # three batches: 2017-11-25.., 2017-11-28 18:13.., 2017-12-01 17:20..
PR_CAPBSET_DROP = 24
ROOT_ONLY_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Warehouses to start from, and the uninterrupted builds each must end up equal to.

    `first`: batches 0 and 1 ingested, nothing built (the next build publishes every table).
    `incremental`: that built, then batch 2 ingested (the next build updates published tables).
    """
    root = tmp_path_factory.mktemp("faults")
    project = sql_project(root / "project")
    batches = split_csv_by_time(TAOBAO, root / "batches", CUTS)
    first = root / "first.duckdb"
    for batch in batches[:2]:
        run_cli("ingest", "events", str(batch), warehouse=first, project=project)
    first_reference = _copy(first, root / "first_reference.duckdb")
    run_cli("build", warehouse=first_reference, project=project)
    incremental = _copy(first_reference, root / "incremental.duckdb")
    run_cli("ingest", "events", str(batches[2]), warehouse=incremental, project=project)
    incremental_reference = _copy(incremental, root / "incremental_reference.duckdb")
    run_cli("build", warehouse=incremental_reference, project=project)
    return {
        "first": first,
        "first_reference": first_reference,
        "incremental": incremental,
        "incremental_reference": incremental_reference,
        "batch2": batches[2],
    }


def _copy(warehouse: Path, to: Path) -> Path:
    shutil.copy(warehouse, to)
    return to


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project per test: each one reads its own target/run_results.json."""
    return sql_project(tmp_path / "project")


# -- running a command under a fault ------------------------------------------------------------


def _file_size_limit(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def _without_root_powers() -> None:
    """As root, give up the capabilities that bypass file permissions, for the exec'd program."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in ROOT_ONLY_CAPS:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _profiler(
    *args: str,
    warehouse: Path,
    project: Path,
    preexec: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "profiler", *args],
        env={**env_for(warehouse, project), "COLUMNS": "200", **(env or {})},
        preexec_fn=preexec,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The command failed with exactly one `error:` line and no traceback; that line."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    return errors[0]


def _read_only(paths: list[Path]) -> Callable[[], None] | None:
    """chmod a-w the paths; the preexec that makes it stick (None when not root). Skips the test
    when this machine cannot make a file read-only for the subprocess at all."""
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    preexec = _without_root_powers if os.geteuid() == 0 else None
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; open(sys.argv[1], 'r+b')", str(paths[-1])]
        if not paths[-1].is_dir()
        else [
            sys.executable,
            "-c",
            "import sys; open(sys.argv[1] + '/probe', 'w')",
            str(paths[-1]),
        ],
        preexec_fn=preexec,
        capture_output=True,
    )
    if probe.returncode == 0:
        _writable(paths)
        pytest.skip("cannot make a file read-only for a subprocess on this machine")
    return preexec


def _writable(paths: list[Path]) -> None:
    for path in paths:
        path.chmod(0o755 if path.is_dir() else 0o644)


# -- what the warehouse holds --------------------------------------------------------------------


def _snapshot(warehouse: Path) -> dict[str, tuple]:
    """Every table's row count and content hash, and each model's engine state, by name.

    Doubles are rounded to 9 significant digits first, as `conftest.table_diff` does: DuckDB sums
    them in parallel, so two correct builds may differ in the last bits. Staging leftovers of a
    stopped build are not published data (the next build drops them).
    """
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        columns = con.execute(
            "SELECT schema_name, table_name, list(column_name ORDER BY column_index), "
            "list(data_type ORDER BY column_index) FROM duckdb_columns() "
            "WHERE database_name = current_database() AND NOT internal "
            "AND table_name IN (SELECT table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND NOT temporary) GROUP BY ALL"
        ).fetchall()
        snap: dict[str, tuple] = {}
        for schema, name, names, types in columns:
            if name.startswith(("__profiler_stg_", "stg__", "keys__")):
                continue
            exprs = ", ".join(
                f'round("{c}", 9 - CAST(ceil(log10(abs("{c}") + 1)) AS INTEGER))'
                if t in ("DOUBLE", "FLOAT")
                else f'"{c}"'
                for c, t in zip(names, types, strict=True)
            )
            snap[f"{schema}.{name}"] = con.execute(
                f"SELECT count(*), coalesce(sum(hash({exprs})::HUGEINT), 0) "
                f'FROM "{schema}"."{name}"'
            ).fetchone()
        if "_profiler.models" in snap:
            for (model,) in con.execute("SELECT name FROM _profiler.models").fetchall():
                snap[f"state:{model}"] = con.execute(
                    "SELECT * FROM _profiler.models WHERE name = ?", [model]
                ).fetchall()
        return snap
    finally:
        con.close()


def _models(snap: dict[str, tuple]) -> dict[str, tuple]:
    """The model tables of a snapshot."""
    names = {key.removeprefix("state:") for key in snap if key.startswith("state:")}
    return {key: value for key, value in snap.items() if key.removeprefix("main.") in names}


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lock_is_free(warehouse: Path) -> bool:
    fd = os.open(warehouse.with_name(warehouse.name + ".lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


# -- a read-only warehouse -------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["file", "folder"])
@pytest.mark.parametrize("command", ["build", "ingest"])
def test_read_only_warehouse_refused_in_one_line_and_nothing_changes(
    samples: dict[str, Path], project: Path, tmp_path: Path, what: str, command: str
) -> None:
    folder = tmp_path / "wh"
    folder.mkdir()
    wh = folder / "wh.duckdb"
    shutil.copy(samples["first"], wh)
    digest, before = _file_digest(wh), sorted(p.name for p in folder.iterdir())
    preexec = _read_only([wh] if what == "file" else [folder])
    try:
        args = ("build",) if command == "build" else ("ingest", "events", str(samples["batch2"]))
        line = _one_error_line(_profiler(*args, warehouse=wh, project=project, preexec=preexec))
    finally:
        _writable([wh, folder])
    assert f"warehouse {wh} is not writable" in line
    assert "Make the file and its folder writable" in line and "PROFILER_WAREHOUSE" in line
    assert _file_digest(wh) == digest  # not a byte changed
    left = {p.name for p in folder.iterdir()} - set(before)
    assert left <= {"wh.duckdb.lock"}  # no WAL, no probe file (a lock file is harmless)
    assert not (project / "target" / "run_results.json").exists()  # nothing ran


def test_an_input_file_nobody_may_read_is_refused_in_one_line(
    samples: dict[str, Path], project: Path, tmp_path: Path
) -> None:
    """A file the user may not read (chmod 000: an export another account wrote) was refused by
    click before profiler ran: a boxed usage message ("Path '...' is not readable"), exit 2
    (helper-126's note). It is one `error:` line naming the file, exit 1, and nothing loaded."""
    wh = tmp_path / "wh.duckdb"
    shutil.copy(samples["first"], wh)
    locked = tmp_path / "locked.csv"
    shutil.copy(samples["batch2"], locked)
    digest = _file_digest(wh)
    preexec = _read_only([locked])
    locked.chmod(0o000)
    try:
        proc = _profiler(
            "ingest", "events", str(locked), warehouse=wh, project=project, preexec=preexec
        )
    finally:
        _writable([locked])
    line = _one_error_line(proc)
    assert str(locked) in line and "ermission denied" in line, line
    assert _file_digest(wh) == digest


def test_watch_keeps_a_file_it_cannot_load_into_a_read_only_warehouse(
    samples: dict[str, Path], project: Path, tmp_path: Path
) -> None:
    """The warehouse's fault is not the file's: it stays in the landing folder, not `_rejected`."""
    wh = tmp_path / "wh.duckdb"
    shutil.copy(samples["first"], wh)
    landing = tmp_path / "landing"
    (landing / "events").mkdir(parents=True)
    landed = shutil.copy(samples["batch2"], landing / "events" / "batch.csv")
    preexec = _read_only([wh])
    try:
        proc = _profiler(
            "watch", str(landing), "--once", warehouse=wh, project=project, preexec=preexec
        )
        line = _one_error_line(proc)
    finally:
        _writable([wh])
    assert "is not writable" in line
    assert Path(landed).exists() and not (landing / "events" / "_rejected").exists()


def test_a_temp_dir_it_cannot_write_is_not_called_the_warehouse(
    samples: dict[str, Path], project: Path, tmp_path: Path
) -> None:
    """A refused write counts as a read-only warehouse only for the warehouse's own files: a
    PROFILER_TEMP_DIR the build cannot spill to (30MB of memory makes it spill) stops it in one
    line naming that folder and what to do (it said `build stopped: Permission denied: DIR`
    alone), not with the advice to make the warehouse writable."""
    wh = _copy(samples["first"], tmp_path / "wh.duckdb")
    spill = tmp_path / "spill"
    spill.mkdir()
    env = {"PROFILER_TEMP_DIR": str(spill / "tmp"), "PROFILER_MEMORY_LIMIT": "30MB"}
    preexec = _read_only([spill])
    try:
        proc = _profiler("build", warehouse=wh, project=project, preexec=preexec, env=env)
        line = _one_error_line(proc)
    finally:
        _writable([spill])
    assert line == (
        f"error: cannot spill to disk (Permission denied: {spill / 'tmp'}): DuckDB needed more "
        "than PROFILER_MEMORY_LIMIT=30MB and may not write where it spills; published tables are "
        "as they were. Make that folder writable, or set PROFILER_TEMP_DIR to a writable folder "
        "with room, and run again"
    ), line


# -- a full disk -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "fraction"),
    [("first", 0.5), ("first", 1.4), ("incremental", 0.3), ("incremental", 0.6)],
)
def test_build_on_a_full_disk_stops_in_one_line_and_publishes_nothing_half(
    samples: dict[str, Path], project: Path, tmp_path: Path, start: str, fraction: float
) -> None:
    """Every table is either as before, or (its model reported success) as an uninterrupted build
    has it, together with its state; nothing is published after the fault; the next build
    without the limit finishes the job and equals an uninterrupted build."""
    wh, reference = tmp_path / "wh.duckdb", samples[f"{start}_reference"]
    shutil.copy(samples[start], wh)
    before = _snapshot(wh)
    limit = int(wh.stat().st_size * fraction)
    proc = _profiler("build", warehouse=wh, project=project, preexec=_file_size_limit(limit))
    line = _one_error_line(proc)
    assert line.startswith("error: disk full: could not write") and str(wh) in line, line
    assert "Free space on that disk" in line and "PROFILER_TEMP_DIR" in line

    run = read_run_results(project / "target" / "run_results.json")
    statuses = [r.status for r in run.results]
    assert run.status == "error" and statuses.count("error") == 1, statuses
    stop = statuses.index("error")
    assert "File too large" in run.results[stop].message
    assert set(statuses[:stop]) <= {"success"}, statuses
    assert all(r.reason == "build stopped: disk full" for r in run.results[stop + 1 :])
    assert _lock_is_free(wh)

    after, expected = _snapshot(wh), _snapshot(reference)
    assert stop > 0 or start == "incremental", "the fault hit the very first write: raise the limit"
    for r in run.results:
        table, state = f"main.{r.model}", f"state:{r.model}"
        if r.status == "success":  # published whole, with its state
            assert after.get(state) == expected.get(state), r.model
            assert after.get(table) == (expected if r.action != "skip" else before).get(table)
        else:  # failed or never reached: untouched
            assert after.get(state) == before.get(state), r.model
            assert after.get(table) == before.get(table), r.model
    for table in ("main.raw_events", "main.quarantine", "_profiler.batches", "_profiler.runs"):
        assert after[table] == before[table], table

    run_cli("build", warehouse=wh, project=project)
    assert _models(_snapshot(wh)) == _models(expected)


def _failed_ingest(
    samples: dict[str, Path], project: Path, tmp_path: Path, **fault
) -> tuple[Path, dict, str]:
    """Ingest the second Taobao batch into a copy of the first under `fault` (a `preexec` limit or
    an `env`): the warehouse, its snapshot before, and the one error line the ingest printed."""
    wh = tmp_path / "wh.duckdb"
    shutil.copy(samples["first"], wh)
    before = _snapshot(wh)
    proc = _profiler(
        "ingest", "events", str(samples["batch2"]), warehouse=wh, project=project, **fault
    )
    return wh, before, _one_error_line(proc)


@pytest.mark.parametrize("limit", [64 * 1024, 1024 * 1024])
def test_ingest_on_a_full_disk_loads_nothing_and_a_retry_loads_everything(
    samples: dict[str, Path], project: Path, tmp_path: Path, limit: int
) -> None:
    wh, before, line = _failed_ingest(samples, project, tmp_path, preexec=_file_size_limit(limit))
    assert line.startswith("error: disk full") and str(wh) in line
    assert "could not write (File too large: /" in line  # the system's words, not DuckDB's prefix
    after = _snapshot(wh)
    for table in ("main.raw_events", "main.quarantine", "_profiler.batches"):
        assert after[table] == before[table], table  # not one row of the file landed
    assert _lock_is_free(wh)

    out = run_cli("ingest", "events", str(samples["batch2"]), warehouse=wh, project=project)
    assert "already ingested" not in out  # the failed attempt recorded no batch
    con = duckdb.connect(str(wh), read_only=True)
    try:
        loaded, lines = con.execute(
            "SELECT loaded, lines FROM _profiler.batches ORDER BY batch_id DESC LIMIT 1"
        ).fetchone()
        (raw,) = con.execute("SELECT count(*) FROM raw_events").fetchone()
    finally:
        con.close()
    assert loaded == lines > 0
    assert raw == before["main.raw_events"][0] + loaded


def test_out_of_memory_says_which_setting_to_change(
    samples: dict[str, Path], project: Path, tmp_path: Path
) -> None:
    wh, before, line = _failed_ingest(
        samples, project, tmp_path, env={"PROFILER_MEMORY_LIMIT": "4MB"}
    )
    assert "out of memory" in line and "PROFILER_MEMORY_LIMIT=4MB" in line
    assert "PROFILER_TEMP_DIR" in line
    assert _snapshot(wh) == before


# In process: the gate, the classification, the cleanup after a publish.

UNIQUE = {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "s"}, "meta": {}}


@pytest.fixture
def starved(tmp_path: Path):
    """A table whose duplicates cannot be counted in the memory DuckDB may use, with no temp
    directory to spill to; and a project whose suite for it asks exactly that."""
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), config={"threads": 1})
    ensure_schema(con)
    con.execute(
        "CREATE TABLE t AS SELECT range::VARCHAR || repeat('x', 40) AS s FROM range(300000)"
    )
    (tmp_path / "expectations").mkdir()
    (tmp_path / "expectations" / "t.json").write_text(
        '{"name": "t", "expectations": [' + json.dumps(UNIQUE) + "]}"
    )
    con.execute("SET memory_limit = '10MB'")
    con.execute("SET temp_directory = ''")
    yield con
    con.close()


@pytest.mark.parametrize("engine", ["sql", "gx"])
def test_out_of_memory_in_the_gate_is_no_verdict(starved, engine: str) -> None:
    """Neither engine reports it as a raised expectation: it propagates, as DuckDB raised it;
    also when another expectation's SQL fails first (numbers in a text column), so that the
    compiled gate runs each expectation alone."""
    in_numbers = {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "s", "value_set": [1, 2]},
        "meta": {},
    }
    suite = Suite("t", Path("t.json"), "t", (in_numbers, UNIQUE))
    with pytest.raises(duckdb.OutOfMemoryException):
        validate(starved, suite, "SELECT * FROM t", "SELECT * FROM t", {}, [], engine=engine)


def test_out_of_memory_after_the_gates_scan_is_no_verdict(starved) -> None:
    """Every value twice: the compiled gate's one scan counts them in the memory it may use, the
    queries after it, that count and list the duplicated rows, run out: no verdict either."""
    starved.execute(
        "CREATE TABLE twice AS SELECT (range % 10000)::VARCHAR || repeat('x', 40) AS s "
        "FROM range(20000)"
    )
    suite = Suite("twice", Path("twice.json"), "twice", (UNIQUE,))
    query = "SELECT * FROM twice"
    with pytest.raises(duckdb.OutOfMemoryException):
        validate(starved, suite, query, query, {}, [], engine="sql")


def test_a_fault_on_gxs_first_query_is_raised_as_itself(monkeypatch, tmp_path: Path) -> None:
    """GX's first query on its cursor (its connection test) is not one of the metric queries GX
    catches: a fault there leaves GX as its own TestConnectionError, no storage fault by its type.
    The runner raises the DuckDB error under it, so the build stops on it as on any other."""
    import profiler.gate_gx as gate_gx

    class Starved:  # a cursor of the build's connection, out of memory from GX's first query on
        def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
            self._cursor = cursor

        def execute(self, *args, **kwargs):
            raise duckdb.OutOfMemoryException(
                "Out of Memory Error: could not allocate block of size 256.0 KiB (9.9 MiB/10.0 MiB used)"
            )

        def __getattr__(self, name: str):
            return getattr(self._cursor, name)

    cursor = gate_gx.settings_cursor
    monkeypatch.setattr(gate_gx, "settings_cursor", lambda con: Starved(cursor(con)))
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("CREATE TABLE t AS SELECT range::VARCHAR AS s FROM range(10)")
    suite = Suite("t", Path("t.json"), "t", (UNIQUE,))
    with pytest.raises(duckdb.OutOfMemoryException) as err:
        validate(con, suite, "SELECT * FROM t", "SELECT * FROM t", {}, [], engine="gx")
    assert fault_kind(err.value) == "out of memory"
    con.close()


def test_out_of_memory_in_the_gate_stops_the_build(starved, tmp_path: Path) -> None:
    """A build's gate lets it through to `publish`, whose caller stops the build on it."""
    model = Model("t", tmp_path, "SELECT 1", Kind.TABLE, 0)
    staged = Staged(model, Plan("t", "full", "first build", 1), "t", 300000, apply=lambda c: None)
    state = ModelState("t", "table", "d", "m", 1, 0, None)
    with pytest.raises(duckdb.OutOfMemoryException) as err:
        publish(starved, staged, ExpectationGate(tmp_path), state)
    assert fault_kind(err.value) == "out of memory"
    assert "t" not in read_states(starved)


def test_only_storage_errors_are_storage_faults() -> None:
    """DuckDB quotes data and SQL in its messages: only the errors of a refused write count."""
    con = duckdb.connect()
    con.execute("CREATE TABLE k (v VARCHAR PRIMARY KEY)")
    con.execute("INSERT INTO k VALUES ('could not write')")
    for sql in [
        "SELECT CAST('could not write' AS INTEGER)",  # ConversionException
        "SELECT CAST('No space left on device' AS DATE)",
        'SELECT "out of memory"',  # BinderException
        "SELECT 'permission denied' FROM",  # ParserException
        "INSERT INTO k VALUES ('could not write')",  # ConstraintException
        "COMMIT",  # TransactionException, but no transaction: nothing about storage
    ]:
        with pytest.raises(duckdb.Error) as err:
            con.execute(sql)
        assert fault_kind(err.value) is None, (sql, err.value)
    # what DuckDB 2.0.1 raised here past RLIMIT_FSIZE: writing a table, a COMMIT, a checkpoint
    assert fault_kind(duckdb.IOException('IO Error: Could not write file "/w.duckdb": File too large')) == "disk full"  # fmt: skip
    assert fault_kind(duckdb.TransactionException('TransactionContext Error: Failed to commit: Could not write file "/w.duckdb.wal": File too large')) == "disk full"  # fmt: skip
    assert fault_kind(duckdb.FatalException('FATAL Error: Failed to create checkpoint because of error: Could not write file "/w.duckdb": File too large')) == "disk full"  # fmt: skip
    assert fault_kind(duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")) == "out of memory"  # fmt: skip
    # and reading a warehouse file cut short (helper-62: tracebacks)
    assert fault_kind(duckdb.TransactionException('TransactionContext Error: Failed to commit: Could not read enough bytes from file "/w.duckdb": attempted to read 4096 bytes from location 27795456')) == "damaged"  # fmt: skip
    assert fault_kind(duckdb.Error("Corrupt database file: computed checksum 5381 does not match stored checksum 0 in block at location 27275264")) == "damaged"  # fmt: skip
    with pytest.raises(duckdb.Error) as err:  # data that says so is no damage
        con.execute("SELECT CAST('Corrupt database file: could not read enough bytes' AS INTEGER)")
    assert fault_kind(err.value) is None


class _DiskFullOnDrop:
    """The build's connection, on a disk that fills up just after the publish COMMIT."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def execute(self, sql: str, *args):
        if sql.startswith("DROP"):
            raise duckdb.IOException('IO Error: Could not write file "/wh.duckdb": No space left on device')  # fmt: skip
        return self.con.execute(sql, *args)


def test_a_cleanup_the_disk_refuses_after_the_commit_still_publishes(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_schema(con)
    con.execute("CREATE TABLE stg AS SELECT 1 AS x")
    model = Model("m", tmp_path, "SELECT 1", Kind.TABLE, 0)
    staged = Staged(
        model, Plan("m", "full", "first build", 1), "stg", 1,
        apply=lambda c: c.execute("CREATE TABLE m AS SELECT * FROM stg"), cleanup=["DROP TABLE stg"],
    )  # fmt: skip
    out = publish(_DiskFullOnDrop(con), staged, OpenGate(), ModelState("m", "table", "d", "m", 1, 0, None))  # fmt: skip
    assert out.passed
    assert con.execute("SELECT x FROM m").fetchall() == [(1,)]
    assert read_states(con)["m"].version == 1
    con.close()


class _StopInGate(OpenGate):
    """Ctrl-C (or SIGTERM, which a build turns into the same stop) while the gate reads."""

    def check(self, con: duckdb.DuckDBPyConnection, staged: Staged) -> None:
        raise KeyboardInterrupt


def test_a_stop_while_the_gate_reads_drops_the_staged_table_and_publishes_nothing(
    tmp_path: Path,
) -> None:
    """A stop during the gate leaves the published table and its state as they were, and drops
    the staged copy on its way out, not left in main beside the table until the next build.
    Taobao's events per user: those before 11-28 18:13 published, all of them staged."""
    from profiler.materialize import table

    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_schema(con)
    src = f"read_csv('{TAOBAO}', all_varchar = true)"
    sql = (
        f"SELECT user_id, count(*) AS events FROM {src} WHERE CAST(ts AS BIGINT) < {{}} GROUP BY 1"
    )
    con.execute(f"CREATE TABLE per_user AS {sql.format(CUTS[0])}")
    before = sorted(con.execute("FROM per_user").fetchall())
    tables = "SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL"
    shown = con.execute(tables).fetchall()
    model = Model("per_user", tmp_path, "SELECT 1", Kind.TABLE, 0)
    staged = table.stage(con, model, sql.format(2**40), Plan("per_user", "full", "new data", 2))
    assert staged.rows > len(before) > 500
    with pytest.raises(KeyboardInterrupt):
        publish(con, staged, _StopInGate(), ModelState("per_user", "table", "d", "m", 2, 0, None))
    assert sorted(con.execute("FROM per_user").fetchall()) == before
    assert "per_user" not in read_states(con)
    assert con.execute(tables).fetchall() == shown
    con.close()


def test_out_of_memory_in_check_stops_it(starved, tmp_path: Path) -> None:
    """`profiler check` treats it as the build does: no verdict on the table, the run stops."""
    from profiler.check import run_check

    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "t.sql").write_text("-- kind: table\nSELECT 1 AS s\n")
    with pytest.raises(duckdb.OutOfMemoryException) as err:
        run_check(starved, tmp_path, None)
    assert fault_kind(err.value) == "out of memory"


def test_wrong_paths_are_named_for_what_they_are(tmp_path: Path) -> None:
    """A folder or a device sent to ingest is not "no such file"; a warehouse path holding
    another kind of file is named so by show and export too, not "run profiler build" (helper-21).
    Each is one line and changes nothing."""
    project = sql_project(tmp_path / "project")
    wh = tmp_path / "wh.duckdb"
    for path, said in (
        (tmp_path, "is a folder; ingest takes one file (`profiler watch` takes a folder of them)"),
        (Path("/dev/null"), "is not a regular file"),
        (tmp_path / "gone.csv", "no such file"),
    ):
        out = run_cli("ingest", "events", str(path), warehouse=wh, project=project, ok=False)
        assert said in out and out.count("\n") == 1, out
    assert not wh.exists()
    other = tmp_path / "notes.duckdb"
    other.write_text("not a database\n")
    for args in (("show", "1"), ("export", "--out", str(tmp_path / "bi"))):
        out = run_cli(*args, warehouse=other, project=project, ok=False)
        assert "not a valid DuckDB database file" in out and out.count("\n") == 1, out
    assert other.read_text() == "not a database\n" and not (tmp_path / "bi").exists()


@pytest.mark.parametrize(
    ("command", "target", "said"),
    [
        # a stop that cannot tell which models it published does not say it published none
        (["build"], "profiler.commands.build_project", "the models published before the stop keep"),
        (["ingest", "events", str(TAOBAO)], "profiler.commands.ingest_file", "nothing loaded from"),
        # DuckDB's word for a query a Ctrl-C stopped inside a Python function (the hmac)
        (
            ["ingest", "events", str(TAOBAO)],
            "profiler.commands.ingest_file:RuntimeError",
            "nothing loaded from",
        ),
        (["build"], "profiler.commands.build_project:RuntimeError", "`profiler build` finishes"),
        (["export", "--out", "bi"], "profiler.serve.export.export_tables", "run the export again"),
        (["train", "purchase_propensity"], "profiler.ml.command.train_command", "no new version"),
        # inside a query, DuckDB raises its own InterruptException (helper-62: a traceback)
        (
            ["train", "purchase_propensity"],
            "profiler.ml.command.train_command:InterruptException",
            "no new version",
        ),
        (["check"], "profiler.check.check_project:InterruptException", "no table was changed"),
        (
            ["docs", "--out", "site"],
            "profiler.serve.docs.docs_command",
            "run `profiler docs` again",
        ),
    ],
)
def test_ctrl_c_says_what_the_command_left(monkeypatch, command, target, said) -> None:
    """helper-46: Ctrl-C ended a build with exit code 130 and no word, an ingest with a
    traceback. Each command says what the stop left, in one line, with exit code 130 (the
    stops themselves are safe: helper-46's 170 interrupted runs)."""
    from typer.testing import CliRunner

    from profiler.cli import app

    target, _, kind = target.partition(":")

    def stopped(*_args, **_kwargs):
        if kind == "RuntimeError":
            raise RuntimeError("Query interrupted")
        if kind:
            raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")
        raise KeyboardInterrupt

    module, _, name = target.rpartition(".")
    monkeypatch.setattr(f"{module}.{name}", stopped)
    got = CliRunner().invoke(app, command)
    assert got.exit_code == 130, got.output
    assert got.output.startswith("interrupted: ") and said in " ".join(got.output.split())


def _build_process(wh: Path, project: Path, stderr: int) -> subprocess.Popen:
    """`profiler build` in its own process, its output line by line as it prints it."""
    return subprocess.Popen(
        [sys.executable, "-m", "profiler", "build"],
        env={**env_for(wh, project), "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def test_sigterm_stops_a_build_as_ctrl_c_does_and_the_next_build_finishes_the_job(
    samples: dict[str, Path], project: Path, tmp_path: Path
) -> None:
    """helper-62: SIGTERM (a scheduler's stop) ended commands without a word. It now stops them
    as Ctrl-C does: one `interrupted:` line, exit code 130, and the next build ends equal to an
    uninterrupted one."""
    wh = _copy(samples["first"], tmp_path / "wh.duckdb")
    proc = _build_process(wh, project, stderr=subprocess.STDOUT)
    lines = []
    for line in proc.stdout:  # stop it once its first model is published, mid-build
        lines.append(line)
        if "stg_" in line:
            proc.send_signal(signal.SIGTERM)
            break
    out = "".join(lines) + proc.stdout.read()
    assert proc.wait(timeout=300) == 130, out
    assert "Traceback" not in out and "\ninterrupted: " in out, out
    # it names what it published (helper-80: a model published as the stop came had no line)
    built = {
        line.split()[1] for line in lines if line.startswith("success") and " skip " not in line
    }
    named = re.search(r"the models published before the stop \(([^)]*)\)", " ".join(out.split()))
    assert named and built <= set(named.group(1).split(", ")), out
    assert _profiler("build", warehouse=wh, project=project).returncode == 0
    assert _models(_snapshot(wh)) == _models(_snapshot(samples["first_reference"]))


def test_a_reader_that_leaves_the_pipe_does_not_stop_the_build(
    samples: dict[str, Path], project: Path, tmp_path: Path
) -> None:
    """helper-80: `profiler build | head -2` exited 1 without a word once `head` left, with 3 of
    24 models published. The build now goes on unheard and ends equal to an uninterrupted one."""
    wh = _copy(samples["first"], tmp_path / "wh.duckdb")
    proc = _build_process(wh, project, stderr=subprocess.PIPE)
    assert "success" in proc.stdout.readline()  # as `head -1` does: one line, then gone
    proc.stdout.close()
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert _models(_snapshot(wh)) == _models(_snapshot(samples["first_reference"]))


def test_a_command_run_in_process_gives_its_sigterm_handler_back(tmp_path: Path) -> None:
    """helper-75: the handler stayed in the process after the command (pytest's own SIGTERM
    became a KeyboardInterrupt that the next command turned into a failed test)."""
    before = signal.getsignal(signal.SIGTERM)
    run_cli("ls", warehouse=tmp_path / "wh.duckdb")
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_newer_profilers_state_is_refused_and_extra_state_columns_are_no_crash(
    samples: dict[str, Path], project: Path, tmp_path: Path
) -> None:
    """helper-62: a `_profiler` table with a column a newer profiler added crashed every command
    (the state INSERTs were positional). Extra columns are now filled by name; a newer state
    layout (its version above ours) is refused in one line before anything is written."""
    wh = _copy(samples["first"], tmp_path / "wh.duckdb")
    with duckdb.connect(str(wh)) as con:
        for table in ("models", "runs", "settings", "batches"):
            con.execute(f"ALTER TABLE _profiler.{table} ADD COLUMN newer_column INTEGER")
    built = _profiler("build", warehouse=wh, project=project)
    assert built.returncode == 0, built.stdout + built.stderr
    assert _models(_snapshot(wh)) == _models(_snapshot(samples["first_reference"]))
    assert (
        _profiler(
            "ingest", "events", str(samples["batch2"]), warehouse=wh, project=project
        ).returncode
        == 0
    )

    with duckdb.connect(str(wh)) as con:
        con.execute("UPDATE _profiler.settings SET value = '2' WHERE name = 'state_version'")
    digest = _file_digest(wh)
    # (`show` reads the serving copy, a plain reader's file, and still works)
    for args in (("build",), ("ingest", "events", str(samples["batch2"])), ("check",)):
        line = _one_error_line(_profiler(*args, warehouse=wh, project=project))
        assert "written by a newer profiler (engine state version 2" in line, line
        assert "upgrade profiler" in line
    assert _file_digest(wh) == digest


@pytest.mark.parametrize("command", ["export", "docs"])
def test_an_out_folder_on_a_full_disk_is_one_line_and_leaves_no_half_files(
    samples: dict[str, Path], project: Path, tmp_path: Path, command: str
) -> None:
    """helper-62: a full or unwritable --out gave a traceback. Now one line says what stays: the
    site as it was (it is replaced whole), the export's earlier tables with their manifest."""
    import pyarrow.parquet as pq

    wh = _copy(samples["first_reference"], tmp_path / "wh.duckdb")
    out = tmp_path / "out"
    if command == "docs":  # an earlier site, to be kept whole
        assert _profiler(command, "--out", str(out), warehouse=wh, project=project).returncode == 0
    before = _files(out) if out.exists() else {}
    proc = _profiler(
        command, "--out", str(out), warehouse=wh, project=project, preexec=_file_size_limit(65536)
    )
    line = _one_error_line(proc)
    assert f"cannot write --out {out} (disk full:" in line
    assert f"Free space or name another folder, and run `profiler {command}` again" in line
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # no half files
    if command == "docs":
        assert _files(out) == before  # the old site, whole
        return
    manifest = json.loads((out / "_manifest.json").read_text())["tables"]
    assert manifest  # some tables fit under the limit: they are written, and whole
    for name, entry in manifest.items():
        assert pq.read_table(out / entry["path"]).num_rows == entry["rows"], name
    assert {p.name for p in out.iterdir()} == {"_manifest.json"} | {
        e["path"] for e in manifest.values()
    }


def _files(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("cut", [0.1, 0.5, None])
def test_a_warehouse_cut_short_is_named_damaged_in_one_line(
    samples: dict[str, Path], project: Path, tmp_path: Path, cut: float | None
) -> None:
    """helper-62: a warehouse truncated near its end gave tracebacks (a COMMIT that could not
    read enough bytes, a block whose checksum failed). `None`: not cut, but overwritten in places
    (a disk error): the failed checksum DuckDB reports names no file."""
    wh = _copy(samples["incremental_reference"], tmp_path / "wh.duckdb")
    size = wh.stat().st_size
    with open(wh, "r+b") as f:
        if cut is not None:
            f.truncate(int(size * (1 - cut)))
        else:
            for at in (0.2, 0.4, 0.6, 0.8):
                f.seek(int(size * at))
                f.write(b"\xff" * 4096)
    line = _one_error_line(_profiler("build", "--full-refresh", warehouse=wh, project=project))
    assert f"warehouse {wh} is damaged: part of the file cannot be read" in line, line
    assert "Restore the file from a backup" in line


@pytest.mark.parametrize("what", ["file", "folder"])
def test_check_reads_a_read_only_warehouse_and_says_where_the_results_went(
    samples: dict[str, Path], project: Path, tmp_path: Path, what: str
) -> None:
    """helper-62: `check` refused a read-only warehouse, though it only reads the tables. It now
    checks them and says the results are in run_results.json, not in _profiler.validations."""
    shutil.copytree(REPO / "expectations", project / "expectations")
    folder = tmp_path / "wh"
    folder.mkdir()
    wh = _copy(samples["first_reference"], folder / "wh.duckdb")
    digest = _file_digest(wh)
    preexec = _read_only([wh] if what == "file" else [folder])
    try:
        args = ("check", "--select", "user_profile")
        proc = _profiler(*args, warehouse=wh, project=project, preexec=preexec)
    finally:
        _writable([wh, folder])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in out, out
    assert f"note: {wh} is read-only" in out and "not in _profiler.validations" in out, out
    results = read_run_results(project / "target" / "run_results.json")
    assert results.command == "check" and results.results
    assert all(r.status == "pass" for r in results.results), results
    assert _file_digest(wh) == digest


class _DiskFullOnState:
    """The build's connection, on a disk that fills up while the model's state is written."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def execute(self, sql: str, *args):
        if sql.startswith("INSERT INTO _profiler.models"):
            raise duckdb.IOException('IO Error: Could not write file "/wh.duckdb": No space left on device')  # fmt: skip
        return self.con.execute(sql, *args)


def test_a_state_the_disk_refuses_publishes_nothing(tmp_path: Path) -> None:
    """The published table and the state that describes it change together: a state write that
    fails leaves the table as it was (a table without its state would be built on again from an
    older watermark, its slice merged twice)."""
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_schema(con)
    con.execute("CREATE TABLE m AS SELECT 1 AS x")
    write_state(con, ModelState("m", "table", "d", "m", 1, 1, None))
    con.execute("CREATE TABLE stg AS SELECT 2 AS x")
    model = Model("m", tmp_path, "SELECT 2", Kind.TABLE, 0)
    staged = Staged(
        model, Plan("m", "full", "new data", 2), "stg", 1,
        apply=lambda c: c.execute("DELETE FROM m; INSERT INTO m FROM stg"), cleanup=["DROP TABLE stg"],
    )  # fmt: skip
    with pytest.raises(duckdb.IOException):
        publish(_DiskFullOnState(con), staged, OpenGate(), ModelState("m", "table", "d", "m", 2, 2, None))  # fmt: skip
    assert con.execute("SELECT x FROM m").fetchall() == [(1,)]
    assert read_states(con)["m"].version == 1
    con.close()


# -- two builds of one project --------------------------------------------------------------------

WRITER = """
from pathlib import Path
from profiler.runlog import read_run_results, write_run_results
run, failed = read_run_results(Path(ARGS[0])), 0
released()
for i in range(int(ARGS[2])):
    run.run_id = f"{ARGS[3]}-{i}"
    try:
        write_run_results(Path(ARGS[1]), run)
    except OSError:
        failed += 1
print(failed)
"""


def test_two_builds_of_one_project_write_run_results_without_a_torn_file(
    samples, project: Path, tmp_path: Path
) -> None:
    """Two warehouses of one project (a shop each, or dev and prod) built at the same moment
    wrote target/run_results.json through one temporary name: a build's rename failed (`not
    written`) or renamed the other's half-written file, so a reader saw broken JSON. Each
    process now writes a temporary file of its own. A real build's results, written 500 times
    by each of two processes at once, while read: no write fails, no reading is torn."""
    wh = _copy(samples["first_reference"], tmp_path / "wh.duckdb")
    run_cli("build", warehouse=wh, project=project)  # nothing to do: a real run's results
    target = project / "target"
    source = shutil.copy(target / "run_results.json", tmp_path / "run_results.json")
    readings = []

    def read() -> None:
        try:
            read_run_results(target / "run_results.json")
            readings.append("whole")
        except json.JSONDecodeError:
            readings.append("torn")

    args = [[str(source), str(target), "500", who] for who in "ab"]
    failed = at_once(WRITER, *args, tmp=tmp_path / "at_once", while_running=read)
    assert [int(f) for f in failed] == [0, 0] and "torn" not in readings, readings.count("torn")
    assert read_run_results(target / "run_results.json").run_id in {"a-499", "b-499"}
    assert not [p.name for p in target.iterdir() if p.name.endswith(".tmp")]
