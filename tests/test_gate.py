"""The quality gate: GX really evaluates on DuckDB, faults block, warnings publish, raises are errors.

Data: the shared Taobao sample (928 users' complete history), loaded straight into `raw_events` in
time batches. Taobao has no money: purchases get a deterministic amount, `item_id % 200 + 0.5`.
The project under test is a small one written into tmp_path (cleaned events, a per-user-per-day
rollup, per-user totals and a profile), so these tests do not move when the real models change.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, run_cli, sql_project

from profiler.build import BuildOptions, run_build
from profiler.errors import ProfilerError
from profiler.gate import (
    ExpectationGate,
    _exception_message,
    load_suites,
    parameter_names,
    read_suite,
    run_expectations,
)
from profiler.state import ensure_schema

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TAOBAO = SHARED / "taobao_userbehavior_928users.csv"
CUTS = [0, 1512000000, 1512150000, 2**40]  # Unix seconds: ..2017-11-30, ..2017-12-01 17:20, rest
TABLES = ("stg_events", "user_day", "user_totals", "user_profile")

MODELS = {
    "sql/stg_events.sql": """-- kind: incremental_by_time
-- time_column: ts
SELECT DISTINCT user_id, event_type, ts, item_id, CAST(amount AS DECIMAL(12, 2)) AS amount
FROM raw_events
""",
    "sql/user_day.sql": """-- kind: incremental_by_time
-- time_column: day
-- unique_key: user_id, day
SELECT user_id, CAST(ts AS DATE) AS day, count(*) AS events,
  count(*) FILTER (WHERE event_type = 'purchase') AS purchases, coalesce(sum(amount), 0) AS spend
FROM stg_events GROUP BY 1, 2
""",
    "features/user_totals.sql": """-- kind: incremental_by_key
-- unique_key: user_id
SELECT user_id, sum(events) AS events, sum(purchases) AS purchases, sum(spend) AS spend,
  max(day) AS last_day
FROM user_day GROUP BY 1
""",
    "features/user_profile.sql": """-- kind: table
-- unique_key: user_id
SELECT t.user_id, a.as_of, t.events, t.purchases, t.spend,
  t.purchases / t.events AS purchase_rate,
  date_diff('day', t.last_day, CAST(a.as_of AS DATE)) AS recency_days
FROM user_totals AS t CROSS JOIN as_of_time AS a
""",
}


def exp(type_: str, severity: str | None = None, **kwargs) -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": {"severity": severity} if severity else {}}


SUITES = {
    "stg_events": {
        "name": "stg_events",
        "meta": {"key_columns": ["user_id", "ts", "item_id"]},
        "expectations": [
            exp("expect_column_values_to_not_be_null", column="user_id"),
            exp(
                "expect_column_values_to_be_in_set",
                column="event_type",
                value_set=["view", "cart", "fav", "purchase", "search"],
            ),
            exp("expect_column_values_to_be_between", column="amount", min_value=0),
            exp(
                "expect_table_row_count_to_be_between",
                min_value={"$PARAMETER": "trunc(published_row_count * 0.5)"},
            ),
            exp(
                "expect_column_max_to_be_between",
                "warn",
                column="ts",
                min_value={"$PARAMETER": "as_of - timedelta(days=2)"},
            ),
        ],
    },
    "user_day": {
        "name": "user_day",
        "expectations": [
            exp("expect_compound_columns_to_be_unique", column_list=["user_id", "day"]),
            exp("expect_column_values_to_be_between", column="events", min_value=1),
        ],
    },
    "user_profile": {
        "name": "user_profile",
        "expectations": [
            exp("expect_column_values_to_be_unique", column="user_id"),
            exp("expect_column_values_to_not_be_null", column="user_id"),
            exp(
                "expect_table_row_count_to_be_between",
                min_value={"$PARAMETER": "trunc(published_row_count * 0.5)"},
            ),
            exp(
                "expect_column_values_to_be_between",
                column="purchase_rate",
                min_value=0,
                max_value=1,
            ),
            exp("expect_column_values_to_be_between", column="recency_days", min_value=0),
            # Taobao shoppers mostly browse: this one always fails, and only warns.
            exp("expect_column_mean_to_be_between", "warn", column="purchase_rate", min_value=0.5),
        ],
    },
}


def write_project(root: Path, suites: dict = SUITES) -> Path:
    for rel, text in MODELS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "expectations").mkdir(exist_ok=True)
    for name, suite in suites.items():
        (root / "expectations" / f"{name}.json").write_text(json.dumps(suite, indent=1))
    return root


def load_batch(con: duckdb.DuckDBPyConnection, lo: int, hi: int, fault: str = "") -> int:
    """Taobao rows with lo <= ts < hi as one batch, optionally with a fault injected in some rows."""
    bad = "CAST(item_id AS BIGINT) % 97 = 0"
    user = f"CASE WHEN {bad} THEN NULL ELSE user_id END" if fault == "null_keys" else "user_id"
    etype = (
        "CASE behavior_type WHEN 'pv' THEN 'view' WHEN 'buy' THEN 'purchase' ELSE behavior_type END"
    )
    if fault == "unknown_types":
        etype = f"CASE WHEN {bad} THEN 'click' ELSE {etype} END"
    amount = "CASE WHEN behavior_type = 'buy' THEN CAST(item_id AS BIGINT) % 200 + 0.5 END"
    if fault == "negative_amounts":
        amount = f"CASE WHEN {bad} THEN -1 ELSE 1 END * ({amount})"
    batch = con.execute("SELECT nextval('_profiler.batch_seq')").fetchone()[0]
    con.execute(
        f"""INSERT INTO raw_events (user_id, event_type, ts, item_id, amount, _batch_id)
        SELECT CAST({user} AS VARCHAR), {etype}, make_timestamp(CAST(ts AS BIGINT) * 1000000),
          CAST(item_id AS VARCHAR), {amount}, {batch}
        FROM read_csv('{TAOBAO}', all_varchar = true)
        WHERE CAST(ts AS BIGINT) >= {lo} AND CAST(ts AS BIGINT) < {hi}"""
    )
    n = con.execute(f"SELECT count(*) FROM raw_events WHERE _batch_id = {batch}").fetchone()[0]
    con.execute(
        "INSERT INTO _profiler.batches VALUES (?, 'events', ?, ?, ?, ?, 0, NULL, NULL, NULL, NULL)",
        [batch, f"taobao_{lo}_{hi}{fault}.csv", f"sha-{batch}", n, n],
    )
    return batch


def build(con: duckdb.DuckDBPyConnection, project: Path, **options):
    return run_build(con, project, BuildOptions(gate=ExpectationGate(project), **options))


def snapshot(con: duckdb.DuckDBPyConnection) -> dict:
    tables = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES}
    tables["_state"] = con.execute("SELECT * FROM _profiler.models ORDER BY name").fetchall()
    tables["_relations"] = relations(con)
    return tables


def relations(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Every table and view of the warehouse, by schema: a build leaves none of its staging."""
    return con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() ORDER BY ALL"
    ).fetchall()


def diff_with(con: duckdb.DuckDBPyConnection, reference: Path) -> dict[str, int]:
    con.execute(f"ATTACH '{reference}' AS ref (READ_ONLY)")
    try:
        return {
            t: n
            for t in TABLES
            if (
                n := con.execute(
                    f"SELECT (SELECT count(*) FROM (FROM {t} EXCEPT ALL FROM ref.{t})) "
                    f"+ (SELECT count(*) FROM (FROM ref.{t} EXCEPT ALL FROM {t}))"
                ).fetchone()[0]
            )
        }
    finally:
        con.execute("DETACH ref")


@pytest.fixture(scope="module")
def clean_full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All the data in one clean batch, one build: what every repaired warehouse must equal."""
    root = write_project(tmp_path_factory.mktemp("full"))
    con = duckdb.connect(str(root / "wh.duckdb"))
    ensure_schema(con)
    load_batch(con, CUTS[0], CUTS[-1])
    run = build(con, root)
    assert run.status == "success", [r.message for r in run.results]
    con.close()
    return root / "wh.duckdb"


@pytest.fixture(scope="module")
def two_batches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first two batches, built one after the other: the published state faults arrive on."""
    root = write_project(tmp_path_factory.mktemp("base"))
    con = duckdb.connect(str(root / "wh.duckdb"))
    ensure_schema(con)
    for lo, hi in zip(CUTS[:2], CUTS[1:3], strict=True):
        load_batch(con, lo, hi)
        assert build(con, root).status == "success"
    con.close()
    return root / "wh.duckdb"


@pytest.fixture
def project(tmp_path: Path, two_batches: Path) -> Path:
    root = write_project(tmp_path)
    shutil.copy(two_batches, root / "wh.duckdb")
    return root


# GX on DuckDB: the regression test for the connection problem.


def test_gx_really_evaluates_on_duckdb() -> None:
    """A failing expectation reports its count and values; a passing one passes (GX #10738)."""
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE ev AS SELECT user_id, behavior_type, CAST(ts AS BIGINT) AS ts
        FROM read_csv('{TAOBAO}', all_varchar = true) WHERE user_id IN ('1', '100', '1000')"""
    )
    n, pv = con.execute(
        "SELECT count(*), count(*) FILTER (behavior_type = 'pv') FROM ev"
    ).fetchone()
    exps = [
        exp("expect_column_values_to_be_in_set", column="behavior_type", value_set=["pv"]),
        exp("expect_column_values_to_not_be_null", column="user_id"),
        exp("expect_table_row_count_to_be_between", min_value=n, max_value=n),
        exp("expect_column_values_to_be_between", column="ts", max_value=0),
    ]
    results = run_expectations(con, "SELECT * FROM ev", exps, {}, ["user_id"])
    in_set, not_null, count, between = results
    assert not in_set.success and in_set.exception is None
    assert in_set.unexpected_count == n - pv and in_set.element_count == n
    assert set(in_set.sample) <= {"buy", "cart", "fav"} and in_set.sample
    assert in_set.sample_keys and set(in_set.sample_keys[0]) == {"user_id"}
    assert not_null.success and not_null.unexpected_count == 0
    assert count.success and count.observed_value == n
    assert not between.success and between.unexpected_count == n
    # the fix is in place: GX keeps one connection for duckdb, as for sqlite
    from great_expectations.execution_engine import sqlalchemy_execution_engine as sae

    assert "duckdb" in sae._PERSISTED_CONNECTION_DIALECTS
    # and GX's cursor is gone: the database can be written again at once
    con.execute("DROP TABLE ev")


def test_gx_reads_the_open_warehouse_file(tmp_path: Path) -> None:
    """GX goes through the build's own connection: no second open of the file, any config."""
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), config={"threads": 1, "memory_limit": "1GB"})
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(10)")
    (res,) = run_expectations(
        con,
        "SELECT * FROM t",
        [exp("expect_column_max_to_be_between", column="x", min_value=9)],
        {},
        [],
    )
    assert res.success and res.observed_value == 9


def test_a_raise_is_never_a_verdict() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    (res,) = run_expectations(
        con, "SELECT * FROM t", [exp("expect_column_values_to_not_be_null", column="nope")], {}, []
    )
    assert not res.success and res.exception and "nope" in res.exception
    flat = {"raised_exception": True, "exception_message": "KeyError: 'type'"}
    per_metric = {"table.row_count": {"raised_exception": True, "exception_message": "boom\nmore"}}
    assert _exception_message(flat) == "KeyError: 'type'"
    assert _exception_message(per_metric).startswith("boom")
    assert _exception_message({"raised_exception": False, "exception_message": None}) is None


def test_gxs_per_metric_failures_give_one_message_whatever_their_order() -> None:
    """Without a DuckDB error to name (a value GX cannot render), the message is the first failed
    metric's in the metrics' names' order, not in the order of GX's dict (the hash seed's)."""
    key = "MetricConfigurationID(metric_name='column_values.in_set.{}', metric_domain_kwargs_id=1)"
    failed = {
        key.format("unexpected_index_query"): {
            "raised_exception": True,
            "exception_message": 'Could not render literal value "1" with datatype VARCHAR',
        },
        key.format("unexpected_count"): {"raised_exception": True, "exception_message": "other"},
    }
    said = {_exception_message(dict(order)) for order in (failed.items(), reversed(failed.items()))}
    assert said == {"other (computing column_values.in_set.unexpected_count)"}


def test_a_query_that_fails_leaves_the_other_of_a_pair_its_own_verdict() -> None:
    """A metric query that fails aborts the transaction of GX's cursor, and every later
    expectation of the run raises with it: each raised one runs again alone, in a suite of two
    as in a longer one. Taobao's three users: a value set of a number and a word for the integer
    `ts` (GX cannot write the word as an integer), then one that fails on the data."""
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE ev AS SELECT user_id, behavior_type, CAST(ts AS BIGINT) AS ts
        FROM read_csv('{TAOBAO}', all_varchar = true) WHERE user_id IN ('1', '100', '1000')"""
    )
    (not_pv,) = con.execute("SELECT count(*) FILTER (behavior_type <> 'pv') FROM ev").fetchone()
    exps = [
        exp("expect_column_values_to_be_in_set", column="ts", value_set=[1511544070, "pv"]),
        exp("expect_column_values_to_be_in_set", column="behavior_type", value_set=["pv"]),
    ]
    bad, in_set = run_expectations(con, "SELECT * FROM ev", exps, {}, ["user_id"])
    assert bad.exception and not bad.success
    assert (in_set.exception, in_set.success, in_set.unexpected_count) == (None, False, not_pv)


# Faults: blocked with a precise message, nothing published, then repaired.


FAULTS = {
    "null_keys": ("expect_column_values_to_not_be_null(column='user_id')", "None"),
    "unknown_types": ("expect_column_values_to_be_in_set(column='event_type'", "'click'"),
    "negative_amounts": ("expect_column_values_to_be_between(column='amount', min_value=0)", "-"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_faulty_batch_blocks_then_the_fix_publishes(
    fault: str, project: Path, clean_full: Path
) -> None:
    con = duckdb.connect(str(project / "wh.duckdb"))
    before = snapshot(con)
    bad = load_batch(con, CUTS[2], CUTS[3], fault)
    run = build(con, project)
    by_model = {r.model: r for r in run.results}
    assert run.status == "error"
    assert by_model["stg_events"].status == "blocked"
    assert all(by_model[m].status == "skipped" for m in TABLES[1:])
    message = by_model["stg_events"].message
    expectation, value = FAULTS[fault]
    assert message.startswith("stg_events: " + expectation), message
    assert "failed on the new slice" in message and " unexpected of " in message
    assert value in message.split("e.g.")[1]
    assert "keys " in message  # a few rows to look at
    assert snapshot(con) == before, "a blocked build must leave every published table as it was"
    rows = con.execute(
        "SELECT status, severity FROM _profiler.validations WHERE run_id = ? AND table_name = 'stg_events'",
        [run.run_id],
    ).fetchall()
    assert ("failed", "error") in rows, "validation rows are written even when the model is blocked"

    con.execute(f"DELETE FROM raw_events WHERE _batch_id = {bad}")  # the fix: drop, then reload
    load_batch(con, CUTS[2], CUTS[3])
    run = build(con, project)
    assert run.status == "success", [r.message for r in run.results]
    assert diff_with(con, clean_full) == {}
    assert relations(con) == before["_relations"], "a published slice leaves no staging behind"


def test_a_build_that_would_lose_most_users_is_blocked(project: Path, clean_full: Path) -> None:
    con = duckdb.connect(str(project / "wh.duckdb"))
    load_batch(con, CUTS[2], CUTS[3])
    profile = project / "features" / "user_profile.sql"
    good = profile.read_text()
    profile.write_text(
        good.replace(
            "CROSS JOIN as_of_time AS a",
            "CROSS JOIN as_of_time AS a WHERE right(t.user_id, 1) = '7'",
        )
    )
    published = con.execute("SELECT count(*) FROM user_profile").fetchone()[0]
    before, kept = con.execute("SELECT * FROM user_profile ORDER BY ALL").fetchall(), relations(con)
    run = build(con, project)
    result = {r.model: r for r in run.results}["user_profile"]
    assert result.status == "blocked"
    assert f"expect_table_row_count_to_be_between(min_value={published // 2})" in result.message
    assert "observed " in result.message
    assert con.execute("SELECT * FROM user_profile ORDER BY ALL").fetchall() == before
    assert relations(con) == kept, "the blocked table's staging copy is dropped"
    assert {r.model: r.status for r in run.results}["user_totals"] == "success"

    profile.write_text(good)
    assert build(con, project).status == "success"
    assert diff_with(con, clean_full) == {}


def test_a_rebuild_at_the_same_as_of_is_compared_with_the_published_table(project: Path) -> None:
    """An edited model rebuilt with no new data has the as-of its table was built at: that is no
    look at the past, so the published baseline applies and losing most users still blocks."""
    con = duckdb.connect(str(project / "wh.duckdb"))
    profile = project / "features" / "user_profile.sql"
    profile.write_text(
        profile.read_text().replace(
            "CROSS JOIN as_of_time AS a",
            "CROSS JOIN as_of_time AS a WHERE right(t.user_id, 1) = '7'",
        )
    )
    before = con.execute("SELECT * FROM user_profile ORDER BY ALL").fetchall()
    run = build(con, project)
    result = {r.model: r for r in run.results}["user_profile"]
    assert result.status == "blocked", result.message
    assert f"expect_table_row_count_to_be_between(min_value={len(before) // 2})" in result.message
    assert con.execute("SELECT * FROM user_profile ORDER BY ALL").fetchall() == before


def test_a_failing_warning_publishes_and_reports(project: Path) -> None:
    con = duckdb.connect(str(project / "wh.duckdb"))
    load_batch(con, CUTS[2], CUTS[3])
    run = build(con, project)
    result = {r.model: r for r in run.results}["user_profile"]
    assert run.status == "success" and result.status == "success"
    assert 0 < result.gate_time <= result.execution_time
    assert (
        "expect_column_mean_to_be_between(column='purchase_rate', min_value=0.5) failed (warn)"
        in result.message
    )
    warn = next(v for v in result.validations if v.severity == "warn")
    assert not warn.success and warn.observed_value < 0.5
    assert con.execute("SELECT max(as_of) FROM user_profile").fetchone()[0] == run_as_of(run)
    row = con.execute(
        "SELECT status, severity, kwargs FROM _profiler.validations WHERE run_id = ? "
        "AND expectation = 'expect_column_mean_to_be_between'",
        [run.run_id],
    ).fetchone()
    assert row[:2] == ("failed", "warn") and json.loads(row[2])["min_value"] == 0.5


def run_as_of(run):
    from datetime import datetime

    return datetime.fromisoformat(run.as_of)


def test_an_expectation_that_raises_is_a_gate_error(project: Path) -> None:
    suites = json.loads(json.dumps(SUITES))
    suites["user_day"]["expectations"].append(
        exp("expect_column_values_to_be_between", "warn", column="no_such_column", min_value=0)
    )
    write_project(project, suites)
    con = duckdb.connect(str(project / "wh.duckdb"))
    load_batch(con, CUTS[2], CUTS[3])
    before = con.execute("SELECT * FROM user_day ORDER BY ALL").fetchall()
    run = build(con, project)
    result = {r.model: r for r in run.results}["user_day"]
    assert result.status == "blocked", "a raise blocks whatever its severity"
    assert (
        "the suite expects column 'no_such_column', which user_day does not have" in result.message
    )
    assert result.message.endswith("; fix expectations/user_day.json, then build")
    raised = [v for v in result.validations if v.exception]
    assert len(raised) == 1 and not raised[0].success
    assert con.execute("SELECT * FROM user_day ORDER BY ALL").fetchall() == before
    status = con.execute(
        "SELECT status FROM _profiler.validations WHERE run_id = ? AND kwargs LIKE '%no_such_column%'",
        [run.run_id],
    ).fetchone()
    assert status == ("raised",)


def test_incremental_slices_validate_the_slice_and_the_would_be_table(project: Path) -> None:
    con = duckdb.connect(str(project / "wh.duckdb"))
    load_batch(con, CUTS[2], CUTS[3])
    slice_rows = con.execute(
        "SELECT count(DISTINCT (user_id, event_type, ts, item_id, amount)) FROM raw_events "
        "WHERE ts >= DATE '2017-12-01'"  # the first day batch 3 (from 2017-12-01 17:40) touches
    ).fetchone()[0]
    run = build(con, project)
    stg = {r.model: r for r in run.results}["stg_events"]
    assert stg.action == "slice"
    scopes = {v.expectation: v for v in stg.validations}
    assert scopes["expect_column_values_to_not_be_null"].scope == "slice"
    assert scopes["expect_column_values_to_not_be_null"].element_count == slice_rows
    total = con.execute("SELECT count(*) FROM stg_events").fetchone()[0]
    assert scopes["expect_table_row_count_to_be_between"].scope == "table"
    assert scopes["expect_table_row_count_to_be_between"].observed_value == total
    # uniqueness over the column the slice replaces by (user_day's day) is decided by the slice
    user_day = {r.model: r for r in run.results}["user_day"]
    (unique,) = [
        v for v in user_day.validations if v.expectation == "expect_compound_columns_to_be_unique"
    ]
    assert unique.success and unique.scope == "slice"
    assert unique.element_count < con.execute("SELECT count(*) FROM user_day").fetchone()[0]


def test_a_published_table_failing_its_changed_suite_holds_back_its_readers(
    project: Path,
) -> None:
    """user_day's suite made stricter than its published rows, and user_totals edited in the
    same change: user_day has nothing new, so its published table is checked and fails. Its
    readers have work (user_totals its edit, user_profile a rebuilt parent) yet are skipped,
    their tables as they were, instead of publishing totals built on days its suite refuses."""
    suites = json.loads(json.dumps(SUITES))
    suites["user_day"]["expectations"].append(
        exp("expect_column_values_to_be_between", column="events", max_value=5)
    )
    write_project(project, suites)
    totals = project / "features" / "user_totals.sql"
    totals.write_text(
        totals.read_text().replace("max(day) AS last_day", "max(day) AS last_day, count(*) AS days")
    )
    con = duckdb.connect(str(project / "wh.duckdb"))
    before = snapshot(con)
    run = build(con, project)
    by_model = {r.model: r for r in run.results}
    assert by_model["user_day"].status == "blocked", by_model["user_day"].message
    assert "fails its changed suite" in by_model["user_day"].message
    for reader in ("user_totals", "user_profile"):
        assert by_model[reader].status == "skipped", (reader, by_model[reader].reason)
    assert by_model["user_totals"].reason == "upstream user_day failed or was blocked"
    assert run.status == "error"
    assert {t: before[t] for t in TABLES} == {t: snapshot(con)[t] for t in TABLES}


def test_a_sources_table_level_rules_read_every_batch(project: Path) -> None:
    """A source's suite: row-level rules read the new batches, the rest the whole table. A batch
    that resends a day already loaded is unique within itself, and duplicates the table."""
    (project / "expectations" / "raw_events.json").write_text(
        json.dumps({
            "name": "raw_events",
            "expectations": [
                exp("expect_column_values_to_not_be_null", column="user_id"),
                exp("expect_compound_columns_to_be_unique", column_list=["user_id", "ts", "item_id", "event_type"]),
            ],
        })
    )  # fmt: skip
    con = duckdb.connect(str(project / "wh.duckdb"))
    (after,) = con.execute("SELECT max(_batch_id) FROM raw_events").fetchone()
    gate = ExpectationGate(project)
    clean = gate.check_source(con, "raw_events", 0, after)
    assert clean.passed, clean.errors + clean.raised
    resent = load_batch(con, CUTS[1], CUTS[1] + 3600)  # the first hour of batch 2, again
    out = gate.check_source(con, "raw_events", after, resent)
    not_null, unique = out.results
    assert not out.passed and not unique.success, "the resent rows pass as unique"
    n = con.execute("SELECT count(*) FROM raw_events WHERE _batch_id = ?", [resent]).fetchone()[0]
    assert not_null.element_count == n > 0  # the new batch: all of it, and only it
    assert unique.unexpected_count == 2 * n  # each resent row and the row it repeats
    assert (not_null.scope, unique.scope) == ("slice", "table")


# The CLI: exit codes, messages, run results, `profiler check`.


def test_cli_build_and_check_exit_non_zero_and_name_the_fault(project: Path) -> None:
    wh = project / "wh.duckdb"
    con = duckdb.connect(str(wh))
    load_batch(con, CUTS[2], CUTS[3], "unknown_types")
    con.close()
    out = run_cli("build", warehouse=wh, project=project, ok=False)
    assert "blocked" in out and "stg_events: expect_column_values_to_be_in_set" in out
    # a blocked model is a failed one in the summary, never "up to date"
    assert re.search(r"up to date, 1 failed, \d+ not built \(upstream failed\)", out), out
    assert "'click'" in out
    # and what to do about it (helper-78: named, with no way out)
    assert (
        "not published: stg_events keeps its last table and its readers are skipped; fix the "
        "data (a wrong batch: `profiler ingest SOURCE FILE --replace-batch N`) or "
        "expectations/stg_events.json, then build" in " ".join(out.split())
    ), out
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    stg = next(r for r in results if r["model"] == "stg_events")
    assert stg["status"] == "blocked" and any(v["unexpected_count"] for v in stg["validations"])

    out = run_cli("check", warehouse=wh, project=project)  # the published tables are fine
    assert "pass" in out and "stg_events" in out
    (project / "expectations" / "raw_events.json").write_text(
        json.dumps(
            {"name": "raw_events", "expectations": [SUITES["stg_events"]["expectations"][1]]}
        )
    )
    out = run_cli("check", "--select", "raw_events", warehouse=wh, project=project, ok=False)
    assert (
        "fail" in out
        and "raw_events: expect_column_values_to_be_in_set" in out
        and "'click'" in out
    )
    checked = json.loads((project / "target" / "run_results.json").read_text())
    assert checked["command"] == "check" and [r["model"] for r in checked["results"]] == [
        "raw_events"
    ]


def test_check_of_an_expectation_whose_sql_fails_is_its_line_not_gxs_log(project: Path) -> None:
    """helper-112: `profiler check` of one expectation whose SQL fails ('yesterday' in a value set
    of times) also wrote Great Expectations' log to stderr: 4,497 lines, 165 tracebacks, around
    the one line that says it; a scheduler's log was buried. stderr now stays empty."""
    import subprocess
    import sys

    from conftest import env_for

    wh = project / "wh.duckdb"
    (project / "expectations" / "raw_events.json").write_text(
        json.dumps({"name": "raw_events", "expectations": [
            {"type": "expect_column_values_to_be_in_set",
             "kwargs": {"column": "ts", "value_set": ["2017-11-25 00:00:00", "yesterday"]}},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "user_id"}},
        ]})
    )  # fmt: skip
    check = subprocess.run(
        [sys.executable, "-m", "profiler", "check", "--select", "raw_events"],
        env={**env_for(wh, project), "COLUMNS": "300"},
        capture_output=True,
        text=True,
    )
    assert check.returncode == 1 and check.stderr == "", check.stderr[:2000]
    assert "raised: ConversionException: Conversion Error" in check.stdout, check.stdout
    assert "1/2 expectations passed" in check.stdout, check.stdout


def test_check_statuses_and_exit_codes_are_what_run_results_json_says(project: Path) -> None:
    """What a scheduler reads after `profiler check`: each table's dbt status (pass, warn, error,
    skipped) in target/run_results.json, read back with its validations, and an exit code that
    only an error-severity failure or a raise makes non-zero. A failing `warn` is no failure; a
    suite of no table is said, not checked; a raw table's suite runs without --select."""
    from profiler.runlog import SCHEMA_VERSION, read_run_results

    wh = project / "wh.duckdb"
    path = project / "target" / "run_results.json"
    orphan = {"name": "engagement", "expectations": [SUITES["user_day"]["expectations"][1]]}
    (project / "expectations" / "engagement.json").write_text(json.dumps(orphan))
    out = run_cli("check", warehouse=wh, project=project)  # user_profile's mean only warns
    assert "1 warn, 0 fail, 0 error" in out, out
    run = read_run_results(path)
    assert json.loads(path.read_text())["metadata"]["schema_version"] == SCHEMA_VERSION
    assert run.command == "check" and run.status == "success"
    statuses = {r.model: r.status for r in run.results}
    assert statuses == {
        "stg_events": "pass", "user_day": "pass", "user_profile": "warn", "engagement": "skipped"
    }, statuses  # fmt: skip
    profile = next(r for r in run.results if r.model == "user_profile")
    (warned,) = [v for v in profile.validations if not v.success]
    assert (warned.expectation, warned.severity) == ("expect_column_mean_to_be_between", "warn")
    assert len(profile.validations) == len(SUITES["user_profile"]["expectations"])

    # an expectation that raises is an `error` (not a `fail`) and fails the run
    (project / "expectations" / "raw_events.json").write_text(
        json.dumps({"name": "raw_events", "expectations": [
            exp("expect_column_values_to_not_be_null", column="user_id"),
            exp("expect_column_values_to_be_between", "warn", column="no_such_column", min_value=0),
        ]})
    )  # fmt: skip
    run_cli("check", warehouse=wh, project=project, ok=False)
    run = read_run_results(path)
    assert run.status == "error" and run.results[0].model == "raw_events"
    assert run.results[0].status == "error", run.results[0]

    # a file of a newer schema is refused, not read as this one
    data = json.loads(path.read_text())
    data["metadata"]["schema_version"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"schema version {SCHEMA_VERSION + 1}"):
        read_run_results(path)


def test_check_of_a_published_table_gone_from_the_warehouse_is_an_error(project: Path) -> None:
    """A table its state records as built but the warehouse no longer has (dropped, a partial
    restore) cannot be checked: `error` and exit 1, not `skipped: not built yet` and exit 0."""
    from profiler.runlog import read_run_results

    wh = project / "wh.duckdb"
    with duckdb.connect(str(wh)) as con:
        con.execute("DROP TABLE user_profile")
    out = run_cli("check", "--select", "user_profile", warehouse=wh, project=project, ok=False)
    assert "no table user_profile in the warehouse" in " ".join(out.split()), out
    (result,) = read_run_results(project / "target" / "run_results.json").results
    assert result.status == "error", result


# Suites: GX's own classes load them; mistakes are reported where they are.


def test_shipped_suites_load_with_gx_and_use_supplied_parameters() -> None:
    import great_expectations as gx

    repo = Path(__file__).resolve().parents[1]
    suites = load_suites(repo)
    for suite in suites.values():
        data = json.loads(suite.path.read_text())
        loaded = gx.ExpectationSuite(**data)
        assert len(loaded.expectations) == len(data["expectations"]), suite.path
        for name in parameter_names(suite.expectations):
            assert name in ("as_of", "published_row_count") or name.startswith(
                "published_distinct_"
            )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not a readable JSON suite"),
        ("[]", "a suite needs `name` and a list of `expectations`"),
        ('{"name": "t", "expectations": [{"kwargs": {}}]}', "expectation 1: needs a `type`"),
        (
            '{"name": "t", "expectations": [{"type": "expect_column_to_exist", "meta": {"severity": "fatal"}}]}',
            "severity 'fatal' must be error or warn",
        ),
        ('{"name": "t", "meta": ["user_id"], "expectations": []}', "`meta` must be an object"),
        (
            '{"name": "t", "meta": {"key_columns": [1]}, "expectations": []}',
            "meta.key_columns must be a list of column names",
        ),
        (
            '{"name": "t", "expectations": [{"type": "expect_column_to_exist", "kwargs": ["x"]}]}',
            "`kwargs` must be an object",
        ),
        (
            '{"name": "t", "expectations": [{"type": "expect_column_to_exist", "severity": "warn"}]}',
            "severity 'warn' must be critical, warning or info",
        ),
    ],
)
def test_suite_mistakes_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(text)
    with pytest.raises(ProfilerError, match="t.json"):
        read_suite(path)
    with pytest.raises(ProfilerError) as err:
        read_suite(path)
    assert message in str(err.value)


def test_gx_native_severity_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        '{"name": "t", "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "x"}, '
        '"severity": "warning"}, {"type": "expect_column_to_exist", "kwargs": {"column": "y"}}, '
        '{"type": "expect_column_to_exist", "kwargs": {"column": "z"}, "severity": "critical", '
        '"meta": {"severity": "warn"}}]}'
    )
    suite = read_suite(path)
    # the project's meta.severity decides over GX's field
    assert [suite.severity(0), suite.severity(1), suite.severity(2)] == ["warn", "error", "warn"]


# Great Expectations is imported only when a suite runs.


def test_gx_is_not_imported_without_gated_work(project: Path) -> None:
    script = f"""
import sys, duckdb
import profiler.cli
assert 'great_expectations' not in sys.modules, 'import profiler.cli imported GX'
from pathlib import Path
from profiler.build import BuildOptions, run_build
from profiler.gate import ExpectationGate
con = duckdb.connect({str(project / "wh.duckdb")!r})
run = run_build(con, Path({str(project)!r}), BuildOptions(gate=ExpectationGate(Path({str(project)!r}))))
assert run.results and all(r.action == 'skip' for r in run.results), run.results
print('great_expectations' in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_an_earlier_as_of_is_no_collapse(project: Path) -> None:
    """Going back in time shrinks tables by design: the published baseline does not apply."""
    from datetime import datetime

    con = duckdb.connect(str(project / "wh.duckdb"))
    before = con.execute("SELECT count(*) FROM stg_events").fetchone()[0]
    run = build(con, project, as_of=datetime(2017, 11, 25, 12))
    assert run.status == "success", [r.message for r in run.results]
    assert con.execute("SELECT count(*) FROM stg_events").fetchone()[0] < before / 2


def test_shipped_suites_name_columns_their_tables_have() -> None:
    """Suites drift when models change: every column a suite names is a documented column.

    A missing column makes GX raise, which blocks the model; this says so before any build does.
    """
    from profiler.project import load_project
    from profiler.sources import BATCH_COLUMN, SOURCES

    repo = Path(__file__).resolve().parents[1]
    models = load_project(repo)
    raw = {s.table: {c.name for c in s.columns} | {BATCH_COLUMN} for s in SOURCES.values()}
    problems = []
    for name, suite in load_suites(repo).items():
        if name not in raw and name not in models:
            problems.append(f"{suite.path.name}: no model or source table {name}")
            continue
        known = raw.get(name) or set(models[name].columns)
        named = set(suite.key_columns)
        for e in suite.expectations:
            kw = e["kwargs"]
            named |= {kw[k] for k in ("column", "column_A", "column_B") if k in kw}
            named |= set(kw.get("column_list") or [])
        if missing := sorted(named - known):
            problems.append(f"{suite.path.name}: {name} has no column(s) {', '.join(missing)}")
    assert not problems, problems


def test_a_slice_into_a_table_not_published_yet_is_validated_whole(tmp_path: Path) -> None:
    """The model layer stages its first scores as a slice: there is no published table yet."""
    from datetime import datetime

    from profiler.materialize import Staged
    from profiler.plan import Plan
    from profiler.project import Kind, Model

    con = duckdb.connect()
    ensure_schema(con)
    con.execute("""CREATE TABLE _profiler."stg__scores" AS SELECT '1' AS user_id, 0.5 AS score""")
    (tmp_path / "expectations").mkdir()
    suite = {
        "name": "scores",
        "expectations": [
            exp("expect_column_values_to_be_between", column="score", min_value=0, max_value=1),
            exp("expect_column_values_to_be_unique", column="user_id"),
            exp("expect_table_row_count_to_be_between", min_value=1),
        ],
    }
    (tmp_path / "expectations" / "scores.json").write_text(json.dumps(suite))
    model = Model(
        "scores", tmp_path, "SELECT 1", Kind.INCREMENTAL_BY_KEY, 0, unique_key=("user_id",)
    )
    staged = Staged(
        model,
        Plan("scores", "full", "first build", 1),
        '_profiler."stg__scores"',
        1,
        apply=lambda c: None,
        slice_predicate="user_id IN ('1')",
    )
    gate = ExpectationGate(tmp_path)
    gate.start_run("run", datetime(2024, 1, 1))
    out = gate.check(con, staged)
    assert out.passed, out.raised + out.errors
    assert [v.scope for v in out.results] == ["table"] * 3


def test_the_would_be_table_keeps_the_published_rows_the_slice_does_not_replace(
    tmp_path: Path,
) -> None:
    """Table-level expectations of a slice read what publishing it makes: the DELETE keeps the
    rows whose slice predicate is NULL (a NULL key here), so the would-be table keeps them too."""
    from datetime import datetime

    from profiler.materialize import Staged
    from profiler.plan import Plan
    from profiler.project import Kind, Model

    con = duckdb.connect()
    ensure_schema(con)
    con.execute(
        "CREATE TABLE scores AS SELECT * FROM (VALUES ('1', 0.1), ('2', 0.2), (NULL, 0.3)) "
        "v(user_id, score)"
    )
    con.execute("""CREATE TABLE _profiler."stg__scores" AS SELECT '1' AS user_id, 0.5 AS score""")
    (tmp_path / "expectations").mkdir()
    suite = {
        "name": "scores",
        "expectations": [exp("expect_table_row_count_to_be_between", min_value=3, max_value=3)],
    }
    (tmp_path / "expectations" / "scores.json").write_text(json.dumps(suite))
    model = Model(
        "scores", tmp_path, "SELECT 1", Kind.INCREMENTAL_BY_KEY, 0, unique_key=("user_id",)
    )
    predicate = "user_id IN ('1')"

    def apply(c: duckdb.DuckDBPyConnection) -> None:  # what stage_by_key's apply does
        c.execute(f"DELETE FROM scores WHERE {predicate}")
        c.execute('INSERT INTO scores BY NAME SELECT * FROM _profiler."stg__scores"')

    staged = Staged(
        model, Plan("scores", "slice", "new keys", 1), '_profiler."stg__scores"', 1, apply,
        slice_predicate=predicate,
    )  # fmt: skip
    gate = ExpectationGate(tmp_path)
    gate.start_run("run", datetime(2024, 1, 1))
    out = gate.check(con, staged)
    (count,) = out.results
    staged.apply(con)
    assert count.scope == "table"
    assert count.observed_value == con.execute("SELECT count(*) FROM scores").fetchone()[0] == 3
    assert out.passed, out.errors


def test_uniqueness_over_columns_a_slice_does_not_replace_by_reads_the_would_be_table(
    tmp_path: Path,
) -> None:
    """A day's slice of an incremental_by_time model decides uniqueness over columns that include
    the day; an order id repeated on a later day is a duplicate of a row the slice keeps."""
    from datetime import datetime

    from profiler.materialize import Staged
    from profiler.plan import Plan
    from profiler.project import Kind, Model

    con = duckdb.connect()
    ensure_schema(con)
    con.execute(
        "CREATE TABLE orders AS SELECT * FROM (VALUES ('o1', DATE '2024-01-01'), "
        "('o2', DATE '2024-01-01')) v(order_id, day)"
    )
    con.execute(
        """CREATE TABLE _profiler."stg__orders" AS """
        "SELECT 'o1' AS order_id, DATE '2024-01-02' AS day"
    )
    (tmp_path / "expectations").mkdir()
    suite = {
        "name": "orders",
        "expectations": [
            exp("expect_compound_columns_to_be_unique", column_list=["order_id", "day"]),
            exp("expect_column_values_to_be_unique", column="order_id"),
        ],
    }
    (tmp_path / "expectations" / "orders.json").write_text(json.dumps(suite))
    model = Model("orders", tmp_path, "SELECT 1", Kind.INCREMENTAL_BY_TIME, 0, time_column="day")
    staged = Staged(
        model, Plan("orders", "slice", "new day", 1), '_profiler."stg__orders"', 1,
        apply=lambda c: None, slice_predicate="day >= DATE '2024-01-02'",
    )  # fmt: skip
    gate = ExpectationGate(tmp_path)
    gate.start_run("run", datetime(2024, 1, 3))
    out = gate.check(con, staged)
    by_day, alone = out.results
    assert (by_day.scope, by_day.success, by_day.element_count) == ("slice", True, 1)
    assert not out.passed and not alone.success, "o1 of 2024-01-02 repeats o1 of 2024-01-01"
    assert (alone.scope, alone.unexpected_count) == ("table", 2)


def test_a_changed_suite_checks_the_published_table_and_a_suite_of_nothing_is_named(
    tmp_path: Path,
) -> None:
    """helper-28: a suite made stricter (or renamed with its model) never looked at the table
    already published, and a suite whose model was renamed gated nothing, unsaid."""
    project = sql_project(tmp_path / "project")
    shutil.copytree(REPO / "expectations", project / "expectations")
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=project)
    run_cli("build", warehouse=wh, project=project)
    assert "gates nothing" not in run_cli("build", warehouse=wh, project=project)
    path = project / "expectations" / "behaviour_features.json"
    suite = json.loads(path.read_text())
    suite["expectations"].append({
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "weekend_share", "max_value": 0.5},
        "meta": {},
    })  # fmt: skip
    path.write_text(json.dumps(suite))
    out = " ".join(run_cli("build", warehouse=wh, project=project, ok=False).split())
    assert "the published table fails its changed suite and stays as it is" in out, out
    assert "weekend_share" in out
    again = " ".join(run_cli("build", warehouse=wh, project=project, ok=False).split())
    assert "fails its changed suite" in again  # until the data or the suite is fixed
    # fixing the model rebuilds it, checked whole (helper-33: the old table kept it blocked)
    model = project / "features" / "behaviour_features.sql"
    sql = model.read_text()
    halved = "nullif(l.sessions, 0) / 2 AS weekend_share"
    model.write_text(sql.replace("nullif(l.sessions, 0) AS weekend_share", halved))
    run_cli("build", warehouse=wh, project=project)
    model.write_text(sql)
    suite["expectations"][-1]["kwargs"]["max_value"] = 1
    path.write_text(json.dumps(suite))
    run_cli("build", warehouse=wh, project=project)
    # a failing `warn` on the published table is said, and recorded (helper-60: unsaid)
    suite["expectations"].append(exp(
        "expect_column_values_to_be_between", "warn", column="weekend_share", max_value=0.01
    ))  # fmt: skip
    path.write_text(json.dumps(suite))
    out = " ".join(run_cli("build", warehouse=wh, project=project).split())
    assert "suite changed: published table checked" in out and "weekend_share" in out, out
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    (checked,) = [r for r in results if r["model"] == "behaviour_features"]
    assert checked["action"] == "skip" and len(checked["validations"]) == len(suite["expectations"])
    suite["expectations"].pop()
    path.write_text(json.dumps(suite))
    run_cli("build", warehouse=wh, project=project)
    path.rename(path.with_name("engagement.json"))
    out = " ".join(run_cli("build", warehouse=wh, project=project).split())
    assert "note: expectations/engagement.json checks no model or raw table" in out, out


def test_a_suite_naming_a_column_the_model_lacks_says_so(tmp_path: Path) -> None:
    """helper-28: a column renamed in the model but not in its suite failed with GX's
    `The column "searches" in BatchData does not exist`."""
    project = sql_project(tmp_path / "project")
    shutil.copytree(REPO / "expectations", project / "expectations")
    path = project / "expectations" / "rfm_features.json"
    suite = json.loads(path.read_text())
    suite["expectations"].append({
        "type": "expect_column_values_to_not_be_null", "kwargs": {"column": "searches"}, "meta": {},
    })  # fmt: skip
    path.write_text(json.dumps(suite))
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=project)
    out = " ".join(run_cli("build", warehouse=wh, project=project, ok=False).split())
    assert "the suite expects column 'searches', which rfm_features does not have" in out, out
    assert out.count("expects column") == 1, out


def test_a_changed_suite_of_a_history_checks_its_current_rows(tmp_path: Path) -> None:
    """helper-31: the check of a changed suite read every version of user_profile_history, so
    its `user_id` uniqueness failed on 1,426 of 1,641 rows and blocked every build."""
    project = sql_project(tmp_path / "project")
    shutil.copytree(REPO / "expectations", project / "expectations")
    wh = tmp_path / "wh.duckdb"
    run_cli("ingest", "events", str(TAOBAO), warehouse=wh, project=project)
    run_cli("build", "--as-of", "2017-12-01", warehouse=wh, project=project)
    run_cli("build", warehouse=wh, project=project)
    with duckdb.connect(str(wh), read_only=True) as con:
        versions, users = con.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM user_profile_history"
        ).fetchone()
    assert versions > users  # more than one version of some users
    path = project / "expectations" / "user_profile_history.json"
    suite = json.loads(path.read_text())
    band = next(e for e in suite["expectations"] if e["kwargs"].get("column") == "loyalty_band")
    band["kwargs"]["value_set"] = [*band["kwargs"]["value_set"], "vip"]
    path.write_text(json.dumps(suite))
    out = " ".join(run_cli("build", warehouse=wh, project=project).split())
    assert "fails its changed suite" not in out, out


def test_a_suite_made_stricter_with_a_new_batch_checks_the_rows_already_published(
    tmp_path: Path,
) -> None:
    """A suite edited in the same build that slices an incremental model: the slice's rows alone
    pass the new rule, the rows published before do not. The model is rebuilt and checked whole,
    so it is blocked and keeps its table, instead of publishing the slice beside rows that were
    never checked against the suite now in force."""
    from conftest import split_csv_by_time

    project = sql_project(tmp_path / "project")
    (project / "expectations").mkdir()
    path = project / "expectations" / "int_user_day.json"
    rule = exp("expect_column_values_to_not_be_null", column="day")
    path.write_text(json.dumps({"name": "int_user_day", "expectations": [rule]}))
    wh = tmp_path / "wh.duckdb"
    old, new = split_csv_by_time(TAOBAO, tmp_path / "batches", [1512086400])  # 2017-12-01 00:00 UTC
    run_cli("ingest", "events", str(old), warehouse=wh, project=project)
    run_cli("build", "--select", "+int_user_day", warehouse=wh, project=project)
    stricter = exp("expect_column_values_to_be_between", column="day", min_value="2017-12-01")
    path.write_text(json.dumps({"name": "int_user_day", "expectations": [rule, stricter]}))
    run_cli("ingest", "events", str(new), warehouse=wh, project=project)
    out = " ".join(
        run_cli(
            "build", "--select", "+int_user_day", warehouse=wh, project=project, ok=False
        ).split()
    )
    assert "its suite changed: rebuilt, checked whole" in out and "not published" in out, out
    with duckdb.connect(str(wh), read_only=True) as con:
        newest = con.execute("SELECT max(day) FROM int_user_day").fetchone()[0]
    assert str(newest) < "2017-12-01"  # the published table is the one before
