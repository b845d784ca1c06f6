"""The compiled gate agrees with Great Expectations, expectation by expectation.

GX is the reference: every expectation runs through GX (`engine="gx"`, what `profiler check`
uses) and through the compiled SQL (`engine="sql"`, what a build uses), and the verdict, the
unexpected and element counts and the observed value must be the same. Three sets of data:
- crafted tables where each compiled type passes and fails with known counts (NULLs, `mostly`,
  strict bounds, uniqueness with NULLs, compound uniqueness, lengths, pairs with `or_equal` and
  every `ignore_row_if`), plus an empty table and an all-NULL column;
- every expectation of every shipped suite on the project built from the shared Taobao sample,
  with a users feed and a feedback feed (tests/test_profile_dimensions.py's data, smaller);
- the same suites on the shared REES46 slice, which has prices, brands and categories.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from conftest import REES46, REPO, TAOBAO, run_cli

from profiler.gate import load_suites, parameter_names, published_query, supply_parameters, validate
from profiler.gate_params import Unsupported, evaluate
from profiler.gate_sql import COMPILED_TYPES
from profiler.gate_suites import Suite


def exp(type_: str, **kwargs) -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": {}}


CRAFTED = """CREATE TABLE t AS SELECT * FROM (VALUES
    (1, 5,    'ab',  3,    1,    'k1', 'p', 1,    TIMESTAMP '2024-01-01 10:00:00', 0.5),
    (2, 10,   'abc', 2,    2,    'k1', 'p', 1,    TIMESTAMP '2024-01-02 10:00:00', 1.0),
    (3, NULL, NULL,  NULL, 1,    'k2', 'p', 2,    TIMESTAMP '2024-01-03 10:00:00', NULL),
    (4, 0,    'xy',  NULL, NULL, NULL, 'q', NULL, TIMESTAMP '2024-01-04 10:00:00', 2.5),
    (5, -1,   'zz',  1,    2,    NULL, 'q', NULL, NULL,                            -0.5),
    (6, 10,   'ab',  4,    4,    'k3', NULL, 1,   TIMESTAMP '2024-01-05 10:00:00', 1.5),
    (7, 11,   'abcd', 0,   NULL, 'k3', NULL, NULL, TIMESTAMP '2024-01-06 10:00:00', 0.0),
    (8, 3,    'ab',  NULL, NULL, 'k4', 'p', 1,    TIMESTAMP '2024-01-07 10:00:00', 1.0)
) AS v(id, x, s, a, b, u, c1, c2, ts, f)"""

B = "expect_column_values_to_be_between"
NN = "expect_column_values_to_not_be_null"
IN = "expect_column_values_to_be_in_set"
LEN = "expect_column_value_lengths_to_equal"
U = "expect_column_values_to_be_unique"
CU = "expect_compound_columns_to_be_unique"
P = "expect_column_pair_values_a_to_be_greater_than_b"
ROWS = "expect_table_row_count_to_be_between"
MAX = "expect_column_max_to_be_between"
NU = "expect_column_unique_value_count_to_be_between"
C12 = ["c1", "c2"]
# (expectation, the unexpected count or observed value GX reports (None: GX raises), success)
# fmt: off
CASES = [
    (exp(B, column="x", min_value=0, max_value=10), 2, False),  # -1, 11; NULL ignored
    (exp(B, column="x", min_value=0, max_value=10, mostly=5 / 7), 2, True),  # of 7 non-null
    (exp(B, column="x", min_value=0, max_value=10, mostly=0.75), 2, False),
    (exp(B, column="x", min_value=0, max_value=10, strict_min=True), 3, False),
    (exp(B, column="x", min_value=0, max_value=10, strict_max=True), 4, False),
    (exp(B, column="x", min_value=-1), 0, True),
    (exp(B, column="x", min_value=1), 2, False),  # the same SQL as above, another bound: -1, 0
    (exp(B, column="x", max_value=11, strict_max=True), 1, False),
    (exp(B, column="f", min_value=0.0, max_value=2.5), 1, False),
    (exp(B, column="ts", min_value="2024-01-02 00:00", max_value="2024-01-06 10:00:00"), 2, False),
    (exp(B, column="ts", min_value="2024-01-02", max_value="2024-01-06 10:00"), None, False),  # date < datetime
    (exp(B, column="x", min_value=0, max_value=10, strict_min="false"), 2, False),  # GX: False
    (exp(B, column="ts", min_value="2024-1-2"), 1, False),  # a date to GX, not to fromisoformat
    (exp(B, column="ts", min_value="2024-02-30"), None, False),  # no such day: GX cannot build it
    (exp(B, column="x", min_value=None, max_value=None), None, False),
    (exp(B, column="x", min_value=3, max_value=1), None, False),
    (exp(B, column="s", min_value=0), None, False),  # a text column
    (exp(B, column="nope", min_value=0), None, False),  # no such column
    (exp(NN, column="x"), 1, False),
    (exp(NN, column="b", mostly=5 / 8), 3, True),  # of all 8 rows
    (exp(NN, column="b", mostly=0.7), 3, False),
    (exp(NN, column="id"), 0, True),
    (exp(IN, column="s", value_set=["ab", "abc"]), 3, False),
    (exp(IN, column="s", value_set=["ab", "abc", "xy"], mostly=0.7), 2, True),
    (exp(IN, column="x", value_set=[0, 3, 5, 10, 11, -1]), 0, True),
    (exp(IN, column="s", value_set=[]), 7, False),
    (exp(IN, column="s", value_set=["ab", None]), 4, False),  # GX drops None: `IN (.., NULL)`
    (exp(IN, column="s", value_set=[None]), 7, False),  # then `IN ()`: every non-NULL value
    (exp(IN, column="s", value_set=None), None, False),  # GX cannot build it: no set
    (exp(IN, column="s"), None, False),
    (exp(LEN, column="s", value=2), 2, False),  # 'abc', 'abcd'
    (exp(LEN, column="s", value=2, mostly=0.7), 2, True),
    (exp(U, column="u"), 4, False),  # k1 k1 k3 k3; NULLs are no duplicates
    (exp(U, column="id"), 0, True),
    (exp(U, column="u", mostly=2 / 6), 4, True),
    (exp(U, column="u", mostly=0.34), 4, False),
    (exp(CU, column_list=C12), 3, False),  # (p, 1) three times; rows with a NULL ignored
    (exp(CU, column_list=C12, ignore_row_if="any_value_is_missing"), 3, False),
    (exp(CU, column_list=C12, ignore_row_if="never"), 3, False),
    (exp(CU, column_list=["id", "c1"]), 0, True),
    (exp(CU, column_list=C12, mostly=0.5), 3, True),  # of 7 rows not all NULL
    (exp(CU, column_list=C12, ignore_row_if="any_value_is_missing", mostly=0.5), 3, False),  # of 4
    (exp(P, column_A="a", column_B="b"), 3, False),  # (2,2) (1,2) (4,4)
    (exp(P, column_A="a", column_B="b", mostly=0.5), 3, True),  # of 6: both NULL ignored
    (exp(P, column_A="a", column_B="b", mostly=0.51), 3, False),
    (exp(P, column_A="a", column_B="b", or_equal=True), 1, False),  # (1,2); one NULL: no verdict
    (exp(P, column_A="a", column_B="b", or_equal=True, ignore_row_if="either_value_is_missing"), 1, False),
    (exp(P, column_A="a", column_B="b", or_equal=True, ignore_row_if="either_value_is_missing", mostly=0.8), 1, False),  # of 4
    (exp(P, column_A="a", column_B="b", or_equal=True, ignore_row_if="neither"), 1, False),
    (exp(P, column_A="a", column_B="b", ignore_row_if="neither"), 3, False),
    (exp(P, column_A="a", column_B="b", ignore_row_if="sometimes"), None, False),
    (exp(P, column_A="a", column_B="b", or_equal=True, mostly=0.8), 1, True),
    (exp(P, column_A="x", column_B="a", or_equal=True), 1, False),
    (exp(P, column_A="a", column_B="b", or_equal="false"), 3, False),  # GX reads text as a bool
    (exp(P, column_A="a", column_B="b", or_equal=None), 3, False),
    (exp(ROWS, min_value=8, max_value=8), 8, True),
    (exp(ROWS, min_value=8, strict_min=True), 8, False),
    (exp(ROWS, max_value=7), 8, False),
    (exp(ROWS, min_value=8, strict_min="false"), 8, True),
    (exp(MAX, column="x", min_value=11), 11, True),
    (exp(MAX, column="x", max_value=11, strict_max=True), 11, False),
    (exp(MAX, column="x", max_value=11, strict_max=None), None, False),  # GX cannot build it
    (exp(MAX, column="f", min_value=2, max_value=3), 2.5, True),
    (exp(MAX, column="ts", min_value="2024-01-07"), "2024-01-07", True),  # GX: a date bound
    (exp(MAX, column="ts", min_value="2024-01-08"), "2024-01-07", False),
    (exp(MAX, column="ts", max_value="2024-01-07T09:00:00"), "2024-01-07 10:00:00", False),
    (exp(MAX, column="ts"), "2024-01-07T10:00:00", True),  # GX's ISO text, unparsed
    (exp(MAX, column="x", min_value="2024-01-07"), None, False),
    (exp(NU, column="u", min_value=4, max_value=4), 4, True),
    (exp(NU, column="u", min_value=5), 4, False),
]
# fmt: on


def suite_of(exps: list[dict], table: str = "t") -> Suite:
    return Suite(table, Path(f"{table}.json"), table, tuple(exps))


def both(con, query: str, suite: Suite, params: dict, keys: list[str]):
    gx = validate(con, suite, query, query, params, keys, engine="gx")
    sql = validate(con, suite, query, query, params, keys, engine="sql")
    return gx, sql


def verdict(v) -> tuple:
    return (bool(v.exception), v.success, v.unexpected_count, v.element_count, v.observed_value)


def assert_agree(gx: list, sql: list, where: str) -> None:
    bad = [
        f"{where}: {g.expectation}({g.kwargs}): GX {verdict(g)} SQL {verdict(s)}"
        for g, s in zip(gx, sql, strict=True)
        if verdict(g) != verdict(s) or g.kwargs != s.kwargs
    ]
    assert not bad, "\n".join(bad)


@pytest.fixture(scope="module")
def crafted() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(CRAFTED)
    con.execute("CREATE TABLE empty AS SELECT * FROM t WHERE false")
    return con


def test_each_compiled_type_fails_and_passes_with_exact_counts(crafted) -> None:
    query = "SELECT * FROM t"
    sql = validate(crafted, suite_of([c[0] for c in CASES]), query, query, {}, ["id"], engine="sql")
    # GX in one run, the raising cases among the others: a raise must not leave GX's cursor in an
    # aborted transaction that makes every later expectation of the run raise too
    gx = validate(crafted, suite_of([c[0] for c in CASES]), query, query, {}, ["id"])
    assert_agree(gx, sql, "crafted")
    for (e, count, success), s in zip(CASES, sql, strict=True):
        if count is None:
            assert s.exception and not s.success, (e, s)
            continue
        seen = s.observed_value if s.unexpected_count is None else s.unexpected_count
        assert (seen, s.success, s.exception) == (count, success, None), (e, s)
    assert {e["type"] for e, _, _ in CASES} == COMPILED_TYPES


def test_samples_and_keys_name_the_bad_rows(crafted) -> None:
    suite = suite_of(
        [
            exp(B, column="x", min_value=0, max_value=10),
            exp(NN, column="x"),
            exp(U, column="u"),
            exp(CU, column_list=C12),
        ]
    )
    # a key column that is the checked column is not repeated as a key
    gx, sql = both(crafted, "SELECT * FROM t", suite, {}, ["id", "x"])
    between, not_null, unique, compound = sql
    assert sorted(between.sample) == [-1, 11] and sorted(k["id"] for k in between.sample_keys) == [5, 7]  # fmt: skip
    assert not_null.sample == [None] and not_null.sample_keys == [{"id": 3}]
    assert sorted(unique.sample) == ["k1", "k3"]
    assert sorted(map(json.dumps, compound.sample)) == sorted(map(json.dumps, gx[3].sample))
    for g, s in zip(gx[:3], sql[:3], strict=True):
        assert sorted(map(json.dumps, g.sample)) == sorted(map(json.dumps, s.sample)), g.expectation
        assert sorted(map(json.dumps, g.sample_keys)) == sorted(map(json.dumps, s.sample_keys))


def test_empty_tables_and_all_null_columns_agree(crafted) -> None:
    exps = [c[0] for c in CASES if c[1] is not None]
    gx, sql = both(crafted, "SELECT * FROM empty", suite_of(exps), {}, [])
    assert_agree(gx, sql, "empty")
    nulls = "SELECT id, NULL::INTEGER AS x, NULL::VARCHAR AS s, a, b, NULL AS u, c1, c2, ts, f FROM t"  # fmt: skip
    gx, sql = both(crafted, nulls, suite_of(exps), {}, [])
    assert_agree(gx, sql, "all-null")


def test_a_nan_fails_as_in_gx(crafted) -> None:
    """0.0 / 0.0 is NaN in DuckDB, the largest double: GX fails a max that is NaN, with bounds or
    without, and counts a NaN value outside a range."""
    query = "SELECT * FROM (VALUES (1.0::DOUBLE), (0.0 / 0.0), (NULL)) AS v(f)"
    exps = [
        exp(MAX, column="f"),
        exp(MAX, column="f", min_value=0),
        exp(B, column="f", max_value=2),
    ]
    gx, sql = both(crafted, query, suite_of(exps), {}, [])
    assert_agree(gx, sql, "nan")
    assert [(v.success, v.observed_value, v.unexpected_count) for v in sql] == [
        (False, None, None), (False, None, None), (False, None, 1)
    ]  # fmt: skip


def test_parameters_evaluate_as_gx_does() -> None:
    from great_expectations.core.suite_parameters import parse_suite_parameter

    values = {"as_of": datetime(2024, 3, 1, 12, 30), "published_row_count": 1001, "n": 7}
    expressions = [
        "trunc(published_row_count * 0.5)",
        "as_of - timedelta(days=2)",
        "as_of",
        "published_row_count",
        "round(n / 3) + 2 ^ 3 ^ 2 - -1",
        "abs(-n) * (1 + 2)",
        "trunc(published_row_count * 0.9) - 1",
        "n - - -1",
        "trunc(published_row_count * PI) - e",
    ]
    for expression in expressions:
        assert evaluate(expression, values) == parse_suite_parameter(expression, values), expression
    # the names the gate is asked to supply: not GX's constants, functions or their keywords
    exps = [exp(ROWS, min_value={"$PARAMETER": e}) for e in expressions]
    assert parameter_names(exps) == {"as_of", "published_row_count", "n"}
    for expression in ["trunc(published_row_count * 0.5) 7", "n)"]:  # GX: "Expected end of text"
        with pytest.raises(Exception, match="Parse Failure"):
            parse_suite_parameter(expression, values)
        with pytest.raises(Unsupported, match="cannot read"):
            evaluate(expression, values)


def test_parameters_resolve_in_the_compiled_gate(crafted) -> None:
    exps = [
        exp("expect_table_row_count_to_be_between", min_value={"$PARAMETER": "trunc(n * 0.5)"}),
        exp(
            "expect_column_max_to_be_between",
            column="ts",
            min_value={"$PARAMETER": "as_of - timedelta(days=2)"},
        ),  # fmt: skip
        exp(B, column="ts", max_value={"$PARAMETER": "as_of"}),
    ]
    params = {"n": 20, "as_of": datetime(2024, 1, 6, 12)}
    gx, sql = both(crafted, "SELECT * FROM t", suite_of(exps), params, [])
    assert_agree(gx, sql, "parameters")
    assert [v.success for v in sql] == [False, True, False]
    assert sql[0].kwargs["min_value"] == 10


def test_published_parameters_count_the_published_table(crafted) -> None:
    """`published_distinct_<col>` is the number of distinct values (k1 k1 k2 k3 k3 k4 and two
    NULLs: 4), not of rows; a column the published table lacks, or no published table, gives 0."""
    as_of = datetime(2024, 1, 6, 12)
    names = {"as_of", "published_row_count", "published_distinct_u", "published_distinct_nope"}
    assert supply_parameters(crafted, names, "SELECT * FROM t", as_of) == {
        "as_of": as_of,
        "published_row_count": 8,
        "published_distinct_u": 4,
        "published_distinct_nope": 0,
    }
    assert supply_parameters(crafted, names - {"as_of"}, None, None) == {
        "published_row_count": 0,
        "published_distinct_u": 0,
        "published_distinct_nope": 0,
    }


def test_unknown_types_and_kwargs_fall_back_to_gx(crafted) -> None:
    exps = [
        exp("expect_column_mean_to_be_between", column="x", min_value=100),
        exp(
            B,
            column="x",
            min_value=0,
            row_condition='col("id")>4',
            condition_parser="great_expectations",
        ),  # fmt: skip
        exp(B, column="x", min_value=0),
    ]
    gx, sql = both(crafted, "SELECT * FROM t", suite_of(exps), {}, [])
    assert_agree(gx, sql, "fallback")
    assert not sql[0].success and sql[0].observed_value == pytest.approx(38 / 7)
    assert sql[1].unexpected_count == 1  # only id 5 (-1) among id > 4: GX evaluated it


def test_an_expectation_whose_sql_fails_is_raised_with_duckdbs_reason(crafted) -> None:
    """The suite's one scan fails on a value the column cannot hold ('a' for an integer; GX raises
    too): each expectation then runs alone, the one at fault is raised with DuckDB's reason, which
    the build prints, and the others get their verdict."""
    exps = [exp(IN, column="x", value_set=["a", 1]), exp(NN, column="x")]
    query = "SELECT * FROM t"
    in_set, not_null = validate(crafted, suite_of(exps), query, query, {}, [], engine="sql")
    assert in_set.exception.startswith("ConversionException: ") and "'a'" in in_set.exception
    assert (not_null.exception, not_null.success, not_null.unexpected_count) == (None, False, 1)
    # GX (`profiler check`) says the same, not the text of its last retry ("Current transaction
    # is aborted"), and gives the other its verdict
    in_set, not_null = validate(crafted, suite_of(exps), query, query, {}, [], engine="gx")
    assert in_set.exception.startswith("ConversionException: ") and "'a'" in in_set.exception
    assert (not_null.exception, not_null.success, not_null.unexpected_count) == (None, False, 1)


def test_gx_gives_duckdbs_reason_whatever_the_hash_seed() -> None:
    """Which failed metric's text GX keeps follows its dict's order, so the hash seed: under some
    seeds (4, 10, 11, 12 of this script, here) it kept `Could not render literal value "1" with
    datatype VARCHAR` (the same bad value set, rendered for the index query), and CI failed the
    test above on one run."""
    script = (
        "import duckdb\n"
        "from profiler.gate_gx import run_expectations\n"
        "con = duckdb.connect()\n"
        f"con.execute({CRAFTED!r})\n"
        f"e = {{'type': {IN!r}, 'kwargs': {{'column': 'x', 'value_set': ['a', 1]}}, 'meta': {{}}}}\n"
        "print(run_expectations(con, 'SELECT * FROM t', [e], {}, [])[0].exception)\n"
    )
    runs = {
        seed: subprocess.Popen(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in ("4", "10", "11", "12")
    }
    for seed, run in runs.items():
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err[-2000:]
        assert out.startswith("ConversionException: "), (seed, out)


def test_an_expectation_the_compiler_trips_on_goes_to_gx_alone(crafted, monkeypatch) -> None:
    """An error compiling one expectation (a value no rule foresaw) is no error of the suite."""
    import profiler.gate_sql_run as gate_sql_run

    compile_expectation = gate_sql_run.compile_expectation

    def trips_on_x(e: dict, parameters: dict, types: dict):
        if e["kwargs"].get("column") == "x":
            raise ValueError("a value no rule foresaw")
        return compile_expectation(e, parameters, types)

    monkeypatch.setattr(gate_sql_run, "compile_expectation", trips_on_x)
    exps = [exp(B, column="x", min_value=0), exp(NN, column="b")]
    compiled = gate_sql_run.run_compiled(crafted, "SELECT * FROM t", exps, {}, [])
    assert compiled[0] is None  # GX runs it
    assert (compiled[1].success, compiled[1].unexpected_count) == (False, 3)
    sql = validate(crafted, suite_of(exps), "SELECT * FROM t", "SELECT * FROM t", {}, [], engine="sql")  # fmt: skip
    assert (sql[0].exception, sql[0].unexpected_count) == (None, 1)  # -1


# Every shipped suite, on the project built from real samples.


def published_agreement(wh: Path) -> int:
    """GX and SQL on every suite of a built warehouse; returns how many expectations compared."""
    suites = load_suites(REPO)
    con = duckdb.connect(str(wh))
    compared = 0
    try:
        for table, suite in suites.items():
            query = published_query(con, table, None)
            if query is None:
                continue
            params = supply_parameters(con, parameter_names(suite.expectations), query, datetime(2030, 1, 1))  # fmt: skip
            gx, sql = both(con, query, suite, params, list(suite.key_columns) or ["user_id"])
            assert_agree(gx, sql, f"{wh.parent.name}/{table}")
            assert not any(v.exception for v in sql), [v.exception for v in sql if v.exception]
            compared += len(sql)
    finally:
        con.close()
    return compared


BUILD = """
import sys, duckdb
from typer.testing import CliRunner
from profiler.cli import app
env = {{"PROFILER_PROJECT_DIR": {project!r}, "PROFILER_WAREHOUSE": {wh!r}}}
for args in {commands!r}:
    result = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
print(sorted(m for m in sys.modules if m.split(".")[0] == "great_expectations")[:3])
"""


@pytest.fixture(scope="module")
def taobao_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The project's own models and suites on Taobao with a users and a feedback feed, built in
    a fresh interpreter that then says which GX modules it imported."""
    tmp = tmp_path_factory.mktemp("taobao_sql")
    wh = tmp / "wh.duckdb"
    users = tmp / "users.csv"
    users.write_text(
        "user_id,gender,birth_year,city,region,signup_ts\n"
        "100101,F,1990,Hangzhou,Zhejiang,2015-03-01 00:00:00\n"
        "1000417,M,1985,Beijing,Beijing,2017-11-26 12:00:00\n"
    )
    feedback = tmp / "feedback.csv"
    feedback.write_text(
        "user_id,ts,kind,item_id,rating,text\n"
        "100101,2017-11-30 09:00:00,rating,2,4,\n"
        "1000417,2017-12-02 20:05:00,complaint,5,,Late\n"
    )
    project = tmp / "project"  # a copy, so the build's target/ stays out of the repository
    for folder in ("sql", "features", "macros", "expectations"):
        shutil.copytree(REPO / folder, project / folder)
    commands = [
        ["ingest", "events", str(TAOBAO)],
        ["ingest", "users", str(users)],
        ["ingest", "feedback", str(feedback)],
        ["build", "--select", "+user_profile_history"],
    ]
    script = BUILD.format(project=str(project), wh=str(wh), commands=commands)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return wh, out.stdout.strip()


def test_a_gated_build_never_imports_gx(taobao_built: tuple[Path, str]) -> None:
    """The shipped suites are all compiled: a build that validates every model imports no GX."""
    wh, imported = taobao_built
    con = duckdb.connect(str(wh), read_only=True)
    rows = con.execute(
        "SELECT count(*), count(DISTINCT table_name), count(*) FILTER (status = 'passed') "
        "FROM _profiler.validations WHERE command = 'build'"
    ).fetchone()
    con.close()
    assert rows[0] > 100 and rows[1] >= 10 and rows[2] == rows[0], rows
    assert imported == "[]", f"a build imported {imported}"


def test_every_shipped_expectation_agrees_on_taobao(taobao_built: tuple[Path, str]) -> None:
    compared = published_agreement(taobao_built[0])
    total = sum(len(s.expectations) for s in load_suites(REPO).values())
    assert compared == total, f"{compared} of {total}: a suite's table was not built"
    print(f"GX and SQL agree on {compared} expectations (Taobao)")


def test_every_shipped_expectation_agrees_on_rees46(tmp_path: Path) -> None:
    wh = tmp_path / "wh.duckdb"
    project = tmp_path / "project"
    for folder in ("sql", "features", "macros", "expectations"):
        shutil.copytree(REPO / folder, project / folder)
    run_cli("ingest", "events", str(REES46), warehouse=wh, project=project)
    run_cli("build", "--select", "+user_profile", warehouse=wh, project=project)
    compared = published_agreement(wh)
    assert compared > 100, compared
    print(f"GX and SQL agree on {compared} expectations (REES46)")
