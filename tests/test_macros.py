"""Project macros (`macros/*.sql`): installed by a build, part of their callers' fingerprints,
and a macro file holding anything but scalar macros is refused at file:line."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from conftest import REPO, run_cli

from profiler.macros import load_macros

EVENTS = (
    "user_id,ts,event_type,item_id,category_path,brand\n"
    "u1,2024-01-01 10:00:00,view,i1,Women / Dresses,ACME\n"
    "u1,2024-01-01 10:05:00,view,i2,women/dresses,acme\n"
    "u2,2024-01-02 11:00:00,purchase,i3,Home >Kitchen,\n"
)


def project(root: Path, macro: str) -> Path:
    (root / "macros").mkdir(parents=True)
    (root / "macros" / "rules.sql").write_text(macro)
    (root / "sql").mkdir()
    (root / "sql" / "categories.sql").write_text(
        "-- kind: table\n"
        "SELECT DISTINCT user_id, shout(category_path) AS category FROM raw_events\n"
    )
    (root / "sql" / "counts.sql").write_text(
        "-- kind: table\nSELECT user_id, count(*) AS events FROM raw_events GROUP BY user_id\n"
    )
    return root


def _built(root: Path, tmp_path: Path, events: str) -> Path:
    """A warehouse of these events, ingested and built with the project at `root`."""
    path, wh = tmp_path / "events.csv", tmp_path / "wh.duckdb"
    path.write_text(events)
    run_cli("ingest", "events", str(path), warehouse=wh, project=root)
    run_cli("build", warehouse=wh, project=root)
    return wh


def test_a_macro_is_installed_and_its_edit_rebuilds_only_its_callers(tmp_path: Path) -> None:
    root = project(tmp_path / "p", "-- loud\nCREATE MACRO shout(x) AS upper(x);\n")
    wh = tmp_path / "wh.duckdb"
    events = tmp_path / "events.csv"
    events.write_text(EVENTS)
    run_cli("ingest", "events", str(events), warehouse=wh, project=root)
    first = run_cli("build", warehouse=wh, project=root)
    assert "2 model(s) built" in first, first
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT DISTINCT category FROM categories ORDER BY 1").fetchall() == [
            ("HOME >KITCHEN",),
            ("WOMEN / DRESSES",),
            ("WOMEN/DRESSES",),
        ]
    # a comment edited: nothing to rebuild; the comment above a macro is its description in
    # DuckDB's catalog, the warehouse's and the serving copy's (helper-92: none was)
    (root / "macros" / "rules.sql").write_text(
        "-- the file's rules\n\n-- louder:\n-- upper case\nCREATE MACRO shout(x) AS upper(x);\n"
    )
    assert "0 model(s) built" in run_cli("build", warehouse=wh, project=root)
    said = "SELECT comment FROM duckdb_functions() WHERE function_name = 'shout'"
    for path in (wh, wh.with_name("wh.serving.duckdb")):
        with duckdb.connect(str(path), read_only=True) as con:
            assert con.execute(said).fetchall() == [("louder: upper case",)], path
    # the body edited: its caller is rebuilt, the other model is not
    (root / "macros" / "rules.sql").write_text("CREATE MACRO shout(x) AS upper(x) || '!';\n")
    out = run_cli("build", warehouse=wh, project=root)
    assert "1 model(s) built" in out, out
    assert re.search(r"success +categories +table +full .*changed: macro shout\b", out), out
    assert re.search(r"counts +table +skip .*up to date", out), out
    with duckdb.connect(str(wh), read_only=True) as con:
        assert ("HOME >KITCHEN!",) in con.execute("SELECT category FROM categories").fetchall()
    # a macro nothing defines any more leaves the warehouse
    (root / "macros" / "rules.sql").write_text(
        "CREATE MACRO shout(x) AS upper(x) || '!';\nCREATE MACRO whisper(x) AS lower(x);\n"
    )
    run_cli("build", warehouse=wh, project=root)
    (root / "macros" / "rules.sql").write_text("CREATE MACRO shout(x) AS upper(x) || '!';\n")
    run_cli("build", warehouse=wh, project=root)
    with duckdb.connect(str(wh), read_only=True) as con:
        macros = con.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_type = 'macro' "
            "AND database_name = current_database() AND NOT internal ORDER BY 1"
        ).fetchall()
    assert macros == [("shout",)]
    # a macro calling a function that does not exist fails a build with nothing to do too
    (root / "macros" / "broken.sql").write_text("CREATE MACRO g(x) AS no_such_fn(x);\n")
    out = run_cli("build", warehouse=wh, project=root, ok=False)
    assert "broken.sql:1: macro g: Catalog Error" in out, out


def test_a_macro_an_ephemeral_model_calls_rebuilds_its_readers_when_edited(
    tmp_path: Path,
) -> None:
    """An ephemeral model's SQL runs inside its readers, so a macro it calls is part of what they
    compute: editing the macro rebuilds them. Counting only the reader's own SQL (a mutant of
    Model.macros_called) did not rebuild user_categories, which kept the old rule's values."""
    root = project(tmp_path / "p", "CREATE MACRO shout(x) AS upper(x);\n")
    (root / "sql" / "stg_categories.sql").write_text(
        "-- kind: ephemeral\nSELECT user_id, shout(category_path) AS category FROM raw_events\n"
    )
    (root / "sql" / "user_categories.sql").write_text(
        "-- kind: table\nSELECT DISTINCT user_id, category FROM stg_categories\n"
    )
    wh = _built(root, tmp_path, EVENTS)
    (root / "macros" / "rules.sql").write_text("CREATE MACRO shout(x) AS upper(x) || '!';\n")
    out = run_cli("build", warehouse=wh, project=root)
    assert re.search(r"user_categories +table +full .*changed: macro shout\b", out), out
    with duckdb.connect(str(wh), read_only=True) as con:
        got = con.execute("SELECT DISTINCT category FROM user_categories ORDER BY 1").fetchall()
    assert got == [("HOME >KITCHEN!",), ("WOMEN / DRESSES!",), ("WOMEN/DRESSES!",)]


def test_a_macro_file_holds_scalar_macros_only(tmp_path: Path) -> None:
    """A table macro would hide the tables it reads from the lineage; a query or a TEMP macro
    (one connection's) is no project macro either. Refused at file:line, nothing built."""
    wh = tmp_path / "wh.duckdb"
    events = tmp_path / "events.csv"
    events.write_text(EVENTS)
    vips = tmp_path / "vips.csv"
    vips.write_text("c\nWomen / Dresses\n")
    for n, (text, line) in enumerate(
        [
            ("CREATE MACRO shout(x) AS upper(x);\n\nCREATE MACRO t() AS TABLE SELECT 1;\n", 3),
            ("-- a note\nSELECT 1;\n", 2),
            ("CREATE TEMP MACRO shout(x) AS upper(x);\n", 1),
            ("CREATE MACRO shout(x) AS upper(x);\nCREATE MACRO SHOUT(x) AS lower(x);\n", 2),
            # helper-90: a subquery hid raw_events from the lineage (future data in a past as-of)
            ("CREATE MACRO shout(x) AS (SELECT max(ts) FROM raw_events);\n", 1),
            ("CREATE MACRO shout(x) AS x IN (FROM raw_events SELECT user_id);\n", 1),
            ("CREATE MACRO shout(x) AS EXISTS (TABLE raw_feedback);\n", 1),  # helper-91
            # helper-111: a file read in a subquery binds in the check's empty catalog, so only
            # the subquery rule refuses it (its edits would rebuild nothing: no lineage sees it)
            (f"CREATE MACRO shout(x) AS x IN (SELECT c FROM read_csv('{vips}'));\n", 1),
            # helper-92: never callable (a form of DuckDB's parser), and every COALESCE a call
            ("CREATE MACRO shout(x) AS upper(x);\nCREATE MACRO coalesce(x) AS 42;\n", 2),
            ("CREATE MACRO shout(x) AS upper(x);\nCREATE MACRO rec(x) AS rec(x);\n", 2),
            # a function that does not exist: said by a build with nothing to do too (helper-91)
            ("CREATE MACRO shout(x) AS upper(x);\nCREATE MACRO g(x) AS no_such_fn(x);\n", 2),
            # helper-90: `lower` replaced DuckDB's for the whole warehouse, and ingest
            # quarantined every event type
            ("CREATE MACRO shout(x) AS upper(x);\nCREATE MACRO lower(s) AS s;\n", 2),
            ("CREATE MACRO main.shout(x) AS upper(x);\n", 1),
            ("CREATE MACRO shout(x) AS upper(x);\n\nCREATE MACRO g(x) AS ;\n", 3),
        ]
    ):
        root = project(tmp_path / f"p{n}", text)
        run_cli("ingest", "events", str(events), warehouse=wh, project=root)
        out = run_cli("build", warehouse=wh, project=root, ok=False)
        assert f"rules.sql:{line}: " in out, out
        assert len(out.strip().splitlines()) == 1, out
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' "
                           "AND table_name IN ('categories', 'counts')").fetchone() == (0,)  # fmt: skip


def test_the_shipped_category_rule_reads_every_way_of_writing_levels() -> None:
    """helper-89: `Women / Dresses` and `women/dresses` were two categories, `Home >Kitchen` and
    `Home>Kitchen` too. The shipped macro, as a build installs it."""
    con = duckdb.connect()
    for macro in load_macros(REPO):
        for statement in macro.create_in():
            con.execute(statement)
    paths = {
        "Women / Dresses": "women.dresses",
        "women/dresses": "women.dresses",
        "Home >Kitchen": "home.kitchen",
        "Home> Kitchen": "home.kitchen",
        "home > kitchen": "home.kitchen",
        "디지털/가전>음향기기": "디지털/가전.음향기기",  # a `/` beside a `>` is part of a name
        "KADIN Giyim": "kadin giyim",
        "electronics.audio": "electronics.audio",
        # helper-90: still two categories, or an empty level
        "A > B / C": "a.b/c",
        "a>b/c": "a.b/c",
        "/Shoes": "shoes",
        "a // b": "a.b",
        "Home\xa0/ Decor": "home.decor",
        "Home >> Kitchen": "home.kitchen",
        " ": None,
    }
    got = dict(
        con.execute("SELECT p, category_levels(p) FROM unnest(?) AS t(p)", [list(paths)]).fetchall()
    )
    assert got == paths


def test_macros_keep_their_strings_call_each_other_and_are_repaired(tmp_path: Path) -> None:
    """helper-90: whitespace in a macro's string literals was collapsed ('  ' became ' '); a macro
    calling one of a later file failed on a fresh catalog; a macro dropped or replaced by hand in
    the warehouse was trusted; a comment naming a macro counted as a call."""
    root = project(tmp_path / "p", "CREATE MACRO shout(x) AS squash(upper(x)) || '!';\n")
    (root / "macros" / "squash.sql").write_text(
        "CREATE MACRO squash(x) AS replace(x, '  ', ' ');\n"
    )
    (root / "sql" / "counts.sql").write_text(
        "-- kind: table\n-- the categories are shout(category_path) elsewhere, not here\n"
        "SELECT user_id, count(*) AS events FROM raw_events GROUP BY user_id\n"
    )
    wh = _built(
        root,
        tmp_path,
        "user_id,ts,event_type,category_path\nu1,2024-01-01 10:00:00,view,Garden  Tools\n",
    )

    def categories() -> list:
        with duckdb.connect(str(wh), read_only=True) as con:
            return con.execute("SELECT category FROM categories").fetchall()

    assert categories() == [("GARDEN TOOLS!",)]
    (root / "macros" / "rules.sql").write_text(
        "CREATE MACRO shout(x) AS squash(upper(x)) || '?';\n"
    )
    out = run_cli("build", warehouse=wh, project=root)
    assert re.search(r"counts +table +skip .*up to date", out), out  # its comment is no call
    assert categories() == [("GARDEN TOOLS?",)]
    # a call qualified with the schema is a call (helper-91: its caller was left up to date)
    model = root / "sql" / "categories.sql"
    model.write_text(model.read_text().replace("shout(", "main.shout("))
    run_cli("build", warehouse=wh, project=root)
    (root / "macros" / "rules.sql").write_text(
        "CREATE MACRO shout(x) AS squash(upper(x)) || '?!';\n"
    )
    run_cli("build", warehouse=wh, project=root)
    assert categories() == [("GARDEN TOOLS?!",)]
    (root / "macros" / "rules.sql").write_text(
        "CREATE MACRO shout(x) AS squash(upper(x)) || '?';\n"
    )
    with duckdb.connect(str(wh)) as con:  # by hand, in the warehouse
        con.execute("DROP MACRO squash")
        con.execute("CREATE OR REPLACE MACRO shout(x) AS 'by hand'")
    run_cli("build", "--full-refresh", "--select", "categories", warehouse=wh, project=root)
    assert categories() == [("GARDEN TOOLS?",)]
    # helper-111: the files unedited, so only the catalog tells the hand-made macro apart
    with duckdb.connect(str(wh)) as con:
        con.execute("CREATE OR REPLACE MACRO shout(x) AS 'by hand'")
    run_cli("build", "--full-refresh", "--select", "categories", warehouse=wh, project=root)
    assert categories() == [("GARDEN TOOLS?",)]


def test_a_macro_no_model_calls_is_served_and_a_deleted_one_breaks_no_view(tmp_path: Path) -> None:
    """helper-92: an analyst's own macro reached neither the warehouse nor the serving copy
    until some model had work; and deleting a macro a published view called dropped it before
    the build failed, so the view broke."""
    from profiler.serve.catalog import serving_path

    root = project(tmp_path / "p", "CREATE MACRO shout(x) AS upper(x);\n")
    (root / "sql" / "loud.sql").write_text(
        "-- kind: view\nSELECT user_id, shout(event_type) AS loud FROM raw_events\n"
    )
    wh = tmp_path / "wh.duckdb"
    events = tmp_path / "events.csv"
    events.write_text(EVENTS)
    run_cli("ingest", "events", str(events), warehouse=wh, project=root)
    run_cli("build", warehouse=wh, project=root)

    def ask(path: Path, sql: str):
        with duckdb.connect(str(path), read_only=True) as con:
            return con.execute(sql).fetchall()

    own = root / "macros" / "analyst.sql"
    for body, want in (("x * 2", 42), ("x * 3", 63)):
        own.write_text(f"CREATE MACRO twice(x) AS {body};\n")
        assert "0 model(s) built" in run_cli("build", warehouse=wh, project=root)
        for path in (wh, serving_path(wh)):
            assert ask(path, "SELECT twice(21)") == [(want,)], path
    own.unlink()
    run_cli("build", warehouse=wh, project=root)
    gone = "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'twice'"
    assert ask(wh, gone) == ask(serving_path(wh), gone) == [(0,)]
    # the view's macro deleted while the view still calls it: the build fails, the view works
    (root / "macros" / "rules.sql").write_text("CREATE MACRO other(x) AS x;\n")
    run_cli("build", warehouse=wh, project=root, ok=False)
    assert ask(wh, "SELECT DISTINCT loud FROM loud ORDER BY 1") == [("PURCHASE",), ("VIEW",)]


def test_editing_a_macro_another_one_calls_rebuilds_the_models_calling_that_one(
    tmp_path: Path,
) -> None:
    """`shout` calls `squash`; a model calls `shout` only. Editing `squash` changes what
    `shout` gives, so the model's fingerprint holds `squash` too: it rebuilds and shows the new rule."""
    root = project(tmp_path / "p", "CREATE MACRO shout(x) AS squash(upper(x));\n")
    (root / "macros" / "squash.sql").write_text("CREATE MACRO squash(x) AS replace(x, ' ', '');\n")
    wh = _built(root, tmp_path, EVENTS)

    def categories() -> list:
        with duckdb.connect(str(wh), read_only=True) as con:
            return con.execute("SELECT DISTINCT category FROM categories ORDER BY 1").fetchall()

    assert categories() == [("HOME>KITCHEN",), ("WOMEN/DRESSES",)]
    (root / "macros" / "squash.sql").write_text("CREATE MACRO squash(x) AS replace(x, ' ', '_');\n")
    out = run_cli("build", warehouse=wh, project=root)
    assert re.search(r"categories +table +full .*changed: macro squash\b", out), out
    assert re.search(r"counts +table +skip .*up to date", out), out
    assert categories() == [("HOME_>KITCHEN",), ("WOMEN/DRESSES",), ("WOMEN_/_DRESSES",)]
