"""Shared test helpers: where the real samples are, and running the CLI the way a user does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from profiler.cli import app

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
TAOBAO = SHARED / "taobao_userbehavior_928users.csv"
REES46 = SHARED / "rees46_2019-10-01_slice.csv"


def rees46_purchases() -> list[tuple[str, datetime, str, float]]:
    """REES46's purchases as (user, time cut to the minute, item, price): what a shop's orders
    export of the same day would hold."""
    out = []
    with REES46.open() as fh:
        next(fh)
        for row in fh:
            ts, kind, item, _, _, _, price, user, _ = row.rstrip("\n").split(",")
            if kind == "purchase":
                t = datetime.fromisoformat(ts.removesuffix(" UTC")).replace(second=0)
                out.append((user, t, item, float(price)))
    return out


def cdnow_lines() -> list[list[str]]:
    """CDNOW: real purchases of 23,570 customers, January 1997 to June 1998, as lifetimes ships
    it (`lifetimes/datasets/CDNOW_master.txt`, the data set of Fader, Hardie and Lee's BG/NBD
    papers): [customer, date (YYYYMMDD), CDs, dollars] per line, sorted by customer. Times are
    dates only, and some customers bought twice on a day for the same money."""
    import lifetimes

    src = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
    return [line.split() for line in src.read_text().splitlines()[1:] if line.strip()]


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's own project or warehouse settings."""
    for var in ("PROFILER_PROJECT_DIR", "PROFILER_WAREHOUSE", "PROFILER_PII_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PROFILER_PII_KEY", "test-key")
    monkeypatch.setenv("PROFILER_THREADS", "2")


def run_cli(
    *args: str, warehouse: Path, project: Path = REPO, ok: bool = True, width: int = 200
) -> str:
    """Run `profiler ARGS` in-process against `warehouse` on a terminal `width` columns wide;
    assert its exit code; return its output."""
    env = {
        "PROFILER_PROJECT_DIR": str(project),
        "PROFILER_WAREHOUSE": str(warehouse),
        "COLUMNS": str(width),
    }
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def sql_project(root: Path) -> Path:
    """A copy of the project's SQL models without its suites and classifier specs.

    Engine tests use it: incremental semantics do not depend on the gate or the model layer,
    which have their own tests, and each GX validation or training would only add minutes.
    """
    import shutil

    for folder in ("sql", "features", "macros"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def split_csv_by_time(src: Path, out_dir: Path, cuts: list[int], ts_expr: str = "ts") -> list[Path]:
    """Cut a real sample into time batches (rows with cuts[i] <= ts < cuts[i+1]), same columns."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bounds = [-(2**62), *cuts, 2**62]
    paths = []
    con = duckdb.connect()
    for i in range(len(bounds) - 1):
        path = out_dir / f"batch_{i:02d}.csv"
        con.execute(
            f"COPY (SELECT * FROM read_csv('{src}', all_varchar=true) "
            f"WHERE CAST({ts_expr} AS BIGINT) >= {bounds[i]} AND CAST({ts_expr} AS BIGINT) < {bounds[i + 1]}) "
            f"TO '{path}' (HEADER, DELIMITER ',')"
        )
        paths.append(path)
    return paths


def model_tables(warehouse: Path) -> list[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return [
            r[0] for r in con.execute("SELECT name FROM _profiler.models ORDER BY name").fetchall()
        ]
    finally:
        con.close()


def table_diff(a: Path, b: Path, table: str, drop: tuple[str, ...] = ()) -> int:
    """Rows in one warehouse's table but not the other's (both ways), doubles rounded to 9 digits.

    DuckDB sums doubles in parallel, so the last bits of a float may differ between two correct
    builds; every other type must match exactly.
    """
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        cols = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'a' AND table_name = ? ORDER BY column_index",
            [table],
        ).fetchall()
        exprs = [
            f'round("{c}", 9 - CAST(ceil(log10(abs("{c}") + 1)) AS INTEGER)) AS "{c}"'
            if t in ("DOUBLE", "FLOAT")
            else f'"{c}"'
            for c, t in cols
            if c not in drop
        ]
        sel = ", ".join(exprs)
        return con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {sel} FROM a.{table} EXCEPT ALL SELECT {sel} FROM b.{table})) "
            f"+ (SELECT count(*) FROM (SELECT {sel} FROM b.{table} EXCEPT ALL SELECT {sel} FROM a.{table}))"
        ).fetchone()[0]
    finally:
        con.close()


def env_for(warehouse: Path, project: Path = REPO) -> dict[str, str]:
    return {
        **os.environ,
        "PROFILER_PROJECT_DIR": str(project),
        "PROFILER_WAREHOUSE": str(warehouse),
        "PROFILER_PII_KEY": "test-key",
    }


def lifecycle_stage(purchase_days: int, since_last: int, cycle: float) -> str:
    """The lifecycle stage by docs/models.md's rule, worked out apart from the SQL: never bought,
    once within two cycles, within 1.5 cycles, within 3, else churned."""
    if not purchase_days:
        return "prospect"
    if purchase_days == 1 and since_last <= 2 * cycle:
        return "new"
    if since_last <= 1.5 * cycle:
        return "active"
    return "at risk" if since_last <= 3 * cycle else "churned"


AT_ONCE = """
import os, sys, time
ready, go, *ARGS = sys.argv[1:]
def released():
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
"""


def at_once(
    script: str, *argvs: list[str], tmp: Path, while_running: Callable[[], None] | None = None
) -> list[str]:
    """Run `script` in one Python process per argument list (`ARGS` in the script), all let go
    at one moment: each calls `released()` once its imports are done and waits there for the
    others, so a race between them cannot be missed because one started late. Calls
    `while_running` (a reader, say) until they end; returns each one's output."""
    tmp.mkdir(parents=True, exist_ok=True)
    go, readies, procs = tmp / "go", [], []
    for n, argv in enumerate(argvs):
        readies.append(tmp / f"ready-{n}")
        command = [sys.executable, "-c", AT_ONCE + script, str(readies[-1]), str(go), *argv]
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in readies) and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "a process ended before it was let go"
        time.sleep(0.001)
    go.touch()
    while any(p.poll() is None for p in procs):
        (while_running or (lambda: time.sleep(0.01)))()
    return [p.communicate()[0] for p in procs]
