"""Partial parsing: a warm cache spares sqlglot, and an edited model is always parsed again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import env_for, sql_project

# Prints whether `profiler ls` loaded sqlglot, and the lineage it listed for int_users.
PROBE = """
import sys
from typer.testing import CliRunner
from profiler.cli import app
out = CliRunner().invoke(app, ["ls"], env={"COLUMNS": "400"}).output
print("sqlglot" in sys.modules)
print([line for line in out.splitlines() if line.startswith("int_users\t")][0])
"""


def _ls(project: Path, tmp_path: Path) -> tuple[bool, str]:
    env = env_for(tmp_path / "wh.duckdb", project)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    loaded, line = proc.stdout.splitlines()[-2:]
    return loaded == "True", line


def test_warm_cache_skips_sqlglot_and_edits_are_reparsed(tmp_path: Path) -> None:
    project = sql_project(tmp_path / "project")
    cache = project / "target" / "partial_parse.json"

    loaded, line = _ls(project, tmp_path)
    assert loaded and cache.exists()  # cold: parsed, and remembered
    assert "stg_users" in line

    loaded, warm_line = _ls(project, tmp_path)
    assert not loaded and warm_line == line  # warm: same lineage, no parser

    model = project / "sql" / "int_users.sql"
    text = model.read_text()
    assert "SELECT user_id FROM stg_users" in text
    model.write_text(
        text.replace("SELECT user_id FROM stg_users", "SELECT item_id AS user_id FROM stg_items")
    )
    loaded, edited = _ls(project, tmp_path)
    assert loaded  # the edited text was parsed again...
    assert "stg_items" in edited  # ...and its new lineage is what the DAG shows


def test_unreadable_or_foreign_cache_is_ignored(tmp_path: Path) -> None:
    project = sql_project(tmp_path / "project")
    cache = project / "target" / "partial_parse.json"
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    loaded, line = _ls(project, tmp_path)
    assert loaded and "stg_users" in line
    assert json.loads(cache.read_text())["entries"]  # rewritten whole

    data = json.loads(cache.read_text())
    data["salt"] = "another sqlglot"
    cache.write_text(json.dumps(data))
    loaded, _ = _ls(project, tmp_path)
    assert loaded  # a cache from another sqlglot version is not trusted


@pytest.mark.parametrize("content", ["[]", "null", '"partial_parse"', "7", "true"])
@pytest.mark.parametrize("salted", [False, True])
def test_a_cache_holding_json_that_is_no_object_is_ignored(
    tmp_path: Path, content: str, salted: bool
) -> None:
    """Valid JSON of another shape (a file truncated or overwritten by another tool) is no
    cache either: `profiler ls` parses again and writes the cache whole, rather than dying with
    AttributeError: 'list' object has no attribute 'get'; nor are such entries under this
    profiler's salt (a hand edit: TypeError: 'int' object is not iterable, helper-121)."""
    project = sql_project(tmp_path / "project")
    cache = project / "target" / "partial_parse.json"
    cache.parent.mkdir(parents=True)
    if salted:
        from profiler import parse_cache

        content = f'{{"salt": {json.dumps(parse_cache._salt())}, "entries": {content}}}'
    cache.write_text(content)
    loaded, line = _ls(project, tmp_path)
    assert loaded and "stg_users" in line
    assert json.loads(cache.read_text())["entries"]


def test_a_cache_written_by_other_lineage_or_macro_code_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cached answers are the lineage's and the macro checks': a profiler whose lineage.py or
    macros.py differs must not read them (helper-111: macros.py was not in the salt, so a new
    macro rule was skipped for macros an older profiler had cached)."""
    from profiler import parse_cache

    code = tmp_path / "profiler"
    code.mkdir()
    for name in parse_cache.CODE:
        shutil.copy(Path(parse_cache.__file__).parent / name, code / name)
    monkeypatch.setattr(parse_cache, "__file__", str(code / "parse_cache.py"))
    salts = {parse_cache._salt()}
    for name in parse_cache.CODE:
        with (code / name).open("a") as f:
            f.write("\n# another rule\n")
        salts.add(parse_cache._salt())
    assert len(salts) == 1 + len(parse_cache.CODE) and "macros.py" in parse_cache.CODE


def test_a_cache_written_under_another_sqlglot_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lineage, normalised SQL and rewrites are sqlglot's answers: after an upgrade of sqlglot,
    a cache the older one wrote is parsed again (nothing but the salt tells them apart)."""
    from profiler import parse_cache

    cache = tmp_path / "partial_parse.json"
    cache.write_text(json.dumps({"salt": parse_cache._salt(), "entries": {"k": "old answer"}}))
    parse_cache.use(cache)
    assert parse_cache.get("k") == "old answer"  # the same sqlglot reads it

    real = parse_cache.version
    monkeypatch.setattr(
        parse_cache, "version", lambda name: "0.0.1" if name == "sqlglot" else real(name)
    )
    parse_cache.use(tmp_path / "elsewhere.json")
    parse_cache.use(cache)  # read again, by a profiler on another sqlglot
    assert parse_cache.get("k") is None
    parse_cache.use(tmp_path / "elsewhere.json")  # leave no cache behind for other tests


def test_each_project_keeps_its_own_cache_in_one_process(tmp_path: Path) -> None:
    """A process that loads one project, then another (a notebook, a test run), writes the
    second project's parses to its own `target/`, not to the first's."""
    from profiler import parse_cache
    from profiler.dag import build_dag
    from profiler.project import load_project

    first, second = sql_project(tmp_path / "first"), sql_project(tmp_path / "second")
    (second / "sql" / "int_users.sql").write_text(
        (second / "sql" / "int_users.sql").read_text() + "\n-- the second shop's copy\n"
    )
    build_dag(load_project(first))
    parse_cache.save()
    build_dag(load_project(second))
    parse_cache.save()
    caches = [
        json.loads((p / "target" / "partial_parse.json").read_text()) for p in (first, second)
    ]
    assert set(caches[1]["entries"]) - set(caches[0]["entries"])  # the edited model's, in its own
    parse_cache.use(tmp_path / "elsewhere.json")  # leave no cache behind for other tests
