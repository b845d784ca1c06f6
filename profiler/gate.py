"""The quality gate: Great Expectations suites run on a model's staged output before it is published.

Suites. `expectations/<table>.json` is a GX 1.x ExpectationSuite in GX's own JSON form (`name`,
`expectations: [{type, kwargs, meta}]`), so GX's classes load it and people who know GX can write
it. `meta.severity` is `error` (the default: the model and everything downstream are blocked) or
`warn` (reported, published anyway); GX's own `severity` field is honoured too (`critical` is
error, `warning` and `info` are warn). An expectation that raised (GX's `exception_info`) is an
error of the gate whatever its severity: it blocks, and it is reported as raised, never as "data
passed" or "data failed".

Comparisons with what is published, and freshness, are GX suite parameters. GX has no "compared
with the previous table" expectation, but it evaluates `{"$PARAMETER": "<expression>"}` in kwargs
with its own parser at validation time. The gate supplies the values:

    as_of                     the build's as-of time
    published_row_count       rows of the published table before this build (0 when there is none,
                              or when this build's as-of is earlier than the one it was built at:
                              going back in time shrinks tables legitimately)
    published_distinct_<col>  distinct values of <col> in it (0 likewise, or without such a column)

so `"min_value": {"$PARAMETER": "trunc(published_row_count * 0.5)"}` ("a build may not lose half
the users") and `"min_value": {"$PARAMETER": "as_of - timedelta(days=2)"}` ("the newest event is at
most two days older than the as-of") keep the rule in the suite, in GX's language; only the number
comes from the warehouse. `profiler check` compares a published table with itself.

What is validated, so that the cost follows the batch:
- a table, a view or a full rebuild: the staged relation, which is the whole would-be table;
- an incremental slice: what the slice alone decides runs on the staged slice only: row-level
  types (`ROW_LEVEL`: the verdict on a row depends on that row; the rows kept were validated when
  they were published; schema checks go with them, the slice has the new SQL's columns) and
  uniqueness over columns that include the one the slice replaces by (the unique key of an
  incremental_by_key model, the time column of an incremental_by_time one: a key's or a day's rows
  are all in the slice or all kept). Everything else (row counts, other uniqueness, aggregates
  such as max, mean or distinct counts, freshness) runs on the would-be table
  `published rows outside the slice UNION ALL BY NAME the slice`. A type the gate does not know
  counts as table-level: correct, if dearer. `mostly` on a row-level type is the share within the
  slice;
- scd2: the staged current state (one row per key); `check` validates the history's current rows.

The connection GX uses. GX validates through its SQL datasource (SQLAlchemy + duckdb_engine) on the
build's own DuckDB database: the engine is created with `creator=` returning a `con.cursor()`, a
second connection to the same database instance that sees everything committed (staging relations
are committed before the gate runs), so GX never opens the warehouse file itself (which fails
while the build holds it with another configuration). GX 1.x closes its SQLAlchemy connection
after each query and only then reads the result; returning the connection to the pool rolls back,
and DuckDB discards the pending result, so every expectation came back failed with an empty
result. GX keeps one persistent connection for the dialects in
`sqlalchemy_execution_engine._PERSISTED_CONNECTION_DIALECTS` (sqlite, ...): `_keep_duckdb_connection`
adds duckdb there, so GX also builds a `StaticPool` engine. Each validation gets a fresh cursor,
closed afterwards, so its read transaction never outlives the staged data it must see.
`tests/test_gate.py` pins this down; the versions are pinned in pyproject. GX 1.24 has no DuckDB
support for regex or like patterns, nor for `expect_column_values_to_be_of_type`: those raise, a
gate error; write such rules with value sets, lengths or ranges.

Great Expectations costs ~3 s to import: nothing here imports it until a suite must run.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from profiler.errors import ProfilerError
from profiler.materialize import Staged, quote, relation_type
from profiler.project import Kind
from profiler.publish import GateOutcome
from profiler.runlog import ValidationResult
from profiler.state import SCHEMA

SUITE_DIR = "expectations"
SEVERITIES = ("error", "warn")
SAMPLE_SIZE = 5
_GX_SEVERITY = {"critical": "error", "warning": "warn", "info": "warn"}
_INDEX = "_profiler_index"  # meta key that maps GX's (unordered) results back to the suite

ROW_LEVEL = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_match_regex_list",
        "expect_column_values_to_not_match_regex_list",
        "expect_column_values_to_match_like_pattern",
        "expect_column_values_to_not_match_like_pattern",
        "expect_column_values_to_match_like_pattern_list",
        "expect_column_values_to_not_match_like_pattern_list",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_match_strftime_format",
        "expect_column_values_to_be_dateutil_parseable",
        "expect_column_values_to_be_json_parseable",
        "expect_column_values_to_match_json_schema",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_equal",
        "expect_column_pair_values_to_be_in_set",
        "expect_multicolumn_sum_to_equal",
        "expect_select_column_values_to_be_unique_within_record",
        "expect_column_to_exist",
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
    }
)

UNIQUENESS = frozenset(
    {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
)

_VALIDATIONS_DDL = f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.validations (
    run_id VARCHAR, command VARCHAR, table_name VARCHAR, scope VARCHAR, relation VARCHAR,
    expectation VARCHAR, kwargs VARCHAR, status VARCHAR, success BOOLEAN, severity VARCHAR,
    unexpected_count BIGINT, element_count BIGINT, observed_value VARCHAR, sample VARCHAR,
    sample_keys VARCHAR, exception VARCHAR, as_of TIMESTAMP, validated_at TIMESTAMP)"""


# Suites: plain JSON, read without GX.


@dataclass(frozen=True)
class Suite:
    table: str
    path: Path
    name: str
    expectations: tuple[dict, ...]
    key_columns: tuple[str, ...] = ()  # suite `meta.key_columns`: what identifies a bad row

    def severity(self, i: int) -> str:
        return expectation_severity(self.expectations[i])


def expectation_severity(exp: dict) -> str:
    meta = exp.get("meta") or {}
    if "severity" in meta:
        return meta["severity"]
    return _GX_SEVERITY.get(str(exp.get("severity", "critical")), "error")


def slice_local(exp: dict, partition: frozenset[str] = frozenset()) -> bool:
    """Whether the slice alone decides it: a row-level type, or uniqueness over columns that
    include the one the slice replaces by (a key's or a day's rows are all in the slice or none).
    """
    if exp["type"] in ROW_LEVEL:
        return True
    if exp["type"] in UNIQUENESS and partition:
        kwargs = exp["kwargs"]
        columns = (
            [kwargs["column"]] if "column" in kwargs else list(kwargs.get("column_list") or [])
        )
        return bool(partition & {str(c).lower() for c in columns})
    return False


def read_suite(path: Path) -> Suite:
    """One suite file; mistakes are reported at file and expectation, where the fix goes."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ProfilerError(f"{path}: not a readable JSON suite: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise ProfilerError(f"{path}: a suite needs `name` and a list of `expectations`")
    for i, exp in enumerate(data["expectations"]):
        where = f"{path}: expectation {i + 1}"
        if not isinstance(exp, dict) or not isinstance(exp.get("type"), str):
            raise ProfilerError(
                f"{where}: needs a `type`, e.g. expect_column_values_to_not_be_null"
            )
        if not isinstance(exp.get("kwargs", {}), dict):
            raise ProfilerError(f"{where} ({exp['type']}): `kwargs` must be an object")
        if not isinstance(exp.get("meta") or {}, dict):
            raise ProfilerError(f"{where} ({exp['type']}): `meta` must be an object")
        if expectation_severity(exp) not in SEVERITIES:
            raise ProfilerError(
                f"{where} ({exp['type']}): severity {expectation_severity(exp)!r} must be error or warn"
            )
    exps = tuple({"kwargs": {}, "meta": {}, **e} for e in data["expectations"])
    keys = (data.get("meta") or {}).get("key_columns") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ProfilerError(f"{path}: meta.key_columns must be a list of column names")
    return Suite(path.stem, path, str(data.get("name") or path.stem), exps, tuple(keys))


def load_suites(project_dir: Path) -> dict[str, Suite]:
    """`expectations/<table>.json` for every gated table, by table name."""
    return {p.stem: read_suite(p) for p in sorted((Path(project_dir) / SUITE_DIR).glob("*.json"))}


# Suite parameters: the numbers a suite's `$PARAMETER` expressions read.

_NAME = re.compile(r"(?<![A-Za-z0-9_$.])([A-Za-z][A-Za-z0-9_$]*)(\s*[(=])?")
_GX_CONSTANTS = {"E", "PI", "e", "pi"}
SUPPLIED = "as_of, published_row_count, published_distinct_<column>"


def parameter_names(expectations: tuple[dict, ...] | list[dict]) -> set[str]:
    """Variables the expressions use (not GX's functions such as trunc() or their keywords)."""
    names: set[str] = set()
    for exp in expectations:
        for value in exp["kwargs"].values():
            if _is_parameter(value):
                for m in _NAME.finditer(str(value["$PARAMETER"])):
                    if not m.group(2) and m.group(1) not in _GX_CONSTANTS:
                        names.add(m.group(1))
    return names


def supply_parameters(
    con: duckdb.DuckDBPyConnection, names: set[str], published: str | None, as_of: datetime | None
) -> dict[str, Any]:
    """Values for the names; `published` is a SELECT of the published table, None when new."""
    values: dict[str, Any] = {}
    columns = _columns(con, published) if published else set()
    for name in sorted(names):
        if name == "as_of":
            if as_of is None:
                raise ProfilerError("$PARAMETER as_of: no as-of time (no events ingested yet)")
            values[name] = as_of
        elif name == "published_row_count":
            values[name] = (
                con.execute(f"SELECT count(*) FROM ({published})").fetchone()[0] if published else 0
            )
        elif name.startswith("published_distinct_"):
            col = name.removeprefix("published_distinct_")
            values[name] = (
                con.execute(f"SELECT count(DISTINCT {quote(col)}) FROM ({published})").fetchone()[0]
                if col.lower() in columns
                else 0
            )
        else:
            raise ProfilerError(f"$PARAMETER {name!r} is not one the gate supplies ({SUPPLIED})")
    return values


def _columns(con: duckdb.DuckDBPyConnection, query: str) -> set[str]:
    return {r[0].lower() for r in con.execute(f"DESCRIBE {query}").fetchall()}


# Great Expectations: imported, fixed and set up once, on first use.


class _DuckDBDialect(str):
    """A dialect name GX's persisted-connection check accepts (it compares strings and `.value`)."""

    @property
    def value(self) -> str:
        return str(self)


def _keep_duckdb_connection() -> None:
    """The fix for GX on DuckDB: one persistent connection, as GX does for sqlite (see above)."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as sae

    dialects = getattr(sae, "_PERSISTED_CONNECTION_DIALECTS", None)
    if dialects is None:
        raise ProfilerError(
            "great_expectations no longer has _PERSISTED_CONNECTION_DIALECTS; the DuckDB connection "
            "fix in profiler/gate.py must be redone for this version (pyproject pins the one it fits)"
        )
    if not any(d == "duckdb" for d in dialects):
        sae._PERSISTED_CONNECTION_DIALECTS = (*dialects, _DuckDBDialect("duckdb"))


class _Gx:
    """The imported GX pieces and one ephemeral context, shared by every validation."""

    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from duckdb_engine import ConnectionWrapper
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        _keep_duckdb_connection()
        self.ExpectationSuite = gx.ExpectationSuite
        self.ExpectationConfiguration = ExpectationConfiguration
        self.ConnectionWrapper = ConnectionWrapper
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        self.names = itertools.count()


_GX: _Gx | None = None


def _gx() -> _Gx:
    global _GX
    if _GX is None:
        _GX = _Gx()
    return _GX


def run_expectations(
    con: duckdb.DuckDBPyConnection,
    query: str,
    expectations: list[dict],
    parameters: dict[str, Any],
    key_columns: list[str],
) -> list[ValidationResult]:
    """Validate the rows of `query` with GX, on a fresh cursor of `con`; results in suite order."""
    gx = _gx()
    results: list[ValidationResult | None] = [None] * len(expectations)
    configs = []
    for i, exp in enumerate(expectations):
        try:
            configs.append(
                gx.ExpectationConfiguration(
                    type=exp["type"],
                    kwargs=exp["kwargs"],
                    meta={**exp["meta"], _INDEX: i},
                ).to_domain_obj()
            )
        except Exception as err:  # an expectation GX cannot even build is a gate error
            results[i] = _raised(exp, f"GX cannot build it: {_first_line(err)}")
    name = f"profiler_{next(gx.names)}"
    cursor = con.cursor()
    try:
        datasource = gx.context.data_sources.add_sql(
            name=name,
            connection_string="duckdb://",
            kwargs={"creator": lambda: gx.ConnectionWrapper(cursor)},
        )
        batch = (
            datasource.add_query_asset("relation", query=query)
            .add_batch_definition_whole_table("whole")
            .get_batch()
        )
        result_format: dict[str, Any] = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": SAMPLE_SIZE,
        }
        if key_columns:
            result_format["unexpected_index_column_names"] = key_columns
        outcome = batch.validate(
            gx.ExpectationSuite(name=name, expectations=configs),
            result_format=result_format,
            expectation_parameters=parameters,
        )
        for r in outcome.results:
            i = r.expectation_config.meta[_INDEX]
            results[i] = _convert(expectations[i], r)
    finally:
        try:
            datasource = gx.context.data_sources.get(name)
            datasource.get_execution_engine().close()
            gx.context.data_sources.delete(name)
        except Exception:
            pass
        cursor.close()
    return [
        r if r is not None else _raised(expectations[i], "GX returned no result for it")
        for i, r in enumerate(results)
    ]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def _raised(exp: dict, message: str) -> ValidationResult:
    return ValidationResult(
        exp["type"],
        exp["kwargs"],
        False,
        expectation_severity(exp),
        exception=message,
    )


def _exception_message(info: Any) -> str | None:
    """GX reports a crash either flat ({raised_exception, exception_message}) or per metric."""
    if not info:
        return None
    if "raised_exception" in info:
        if info.get("raised_exception"):
            return str(info.get("exception_message") or "raised").strip().splitlines()[0]
        return None
    for metric, detail in info.items():
        if isinstance(detail, dict) and (
            detail.get("raised_exception", True) or detail.get("exception_message")
        ):
            message = str(detail.get("exception_message") or "raised").strip().splitlines()[0]
            named = re.search(r"metric_name='([^']+)'", str(metric))
            return f"{message} (computing {named.group(1) if named else metric})"
    return None


def _plain(value: Any) -> Any:
    """JSON-ready values: datetimes as ISO text, NaN as None, containers recursively."""
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _convert(exp: dict, r: Any) -> ValidationResult:
    resolved = dict(r.expectation_config.kwargs)  # GX's, with the parameters substituted
    kwargs = {k: resolved.get(k, v) if _is_parameter(v) else v for k, v in exp["kwargs"].items()}
    result = dict(r.result or {})
    exception = _exception_message(dict(r.exception_info or {}))
    column = exp["kwargs"].get("column")
    keys = [
        {k: v for k, v in key.items() if k != column}
        for key in result.get("partial_unexpected_index_list") or []
        if isinstance(key, dict)
    ]
    return ValidationResult(
        exp["type"],
        _plain(kwargs),
        bool(r.success) and exception is None,
        expectation_severity(exp),
        result.get("unexpected_count"),
        _distinct(_plain(result.get("partial_unexpected_list") or [])),
        exception,
        observed_value=_plain(result.get("observed_value")),
        element_count=result.get("element_count"),
        sample_keys=_distinct(_plain([k for k in keys if k])),
    )


def _is_parameter(value: Any) -> bool:
    return isinstance(value, dict) and "$PARAMETER" in value


def _distinct(values: list) -> list:
    """Five unexpected rows are often one value five times: show each value once."""
    seen: set[str] = set()
    out = []
    for v in values:
        key = json.dumps(v, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


# Validating a table: what the gate and `profiler check` share.


def validate(
    con: duckdb.DuckDBPyConnection,
    suite: Suite,
    row_query: str,
    table_query: str,
    parameters: dict[str, Any],
    key_columns: list[str],
    partition: frozenset[str] = frozenset(),
) -> list[ValidationResult]:
    """Slice-local expectations on `row_query`, the rest on `table_query` (one GX run when equal).

    `partition`: the lower-cased column an incremental slice replaces rows by.
    """
    groups: dict[str, list[int]] = {}
    for i, exp in enumerate(suite.expectations):
        query = row_query if slice_local(exp, partition) else table_query
        groups.setdefault(query, []).append(i)
    results: list[ValidationResult | None] = [None] * len(suite.expectations)
    for query, idx in groups.items():
        keys = [k for k in key_columns if k.lower() in _columns(con, query)]
        exps = [suite.expectations[i] for i in idx]
        for i, res in zip(idx, run_expectations(con, query, exps, parameters, keys), strict=True):
            res.scope = "slice" if query != table_query else "table"
            results[i] = res
    return [r for r in results if r is not None]


def outcome(table: str, results: list[ValidationResult]) -> GateOutcome:
    """Errors block, warnings publish, raised expectations are errors of the gate."""
    out = GateOutcome(results=results)
    for v in results:
        if v.exception:
            out.raised.append(describe(table, v))
        elif not v.success:
            (out.errors if v.severity == "error" else out.warnings).append(describe(table, v))
    out.passed = not out.errors and not out.raised
    return out


def describe(table: str, v: ValidationResult) -> str:
    """`table: expectation(kwargs) failed ...`: what a person needs to find the bad rows."""
    args = ", ".join(f"{k}={v!r}" for k, v in v.kwargs.items())
    if len(args) > 240:
        args = args[:237] + "..."
    head = f"{table}: {v.expectation}({args})"
    if v.exception:
        return f"{head} raised: {v.exception}"
    where = " on the new slice" if v.scope == "slice" else ""
    tag = "" if v.severity == "error" else " (warn)"
    if v.unexpected_count is not None:
        of = f" of {v.element_count:,}" if v.element_count is not None else ""
        text = f"{head} failed{tag}{where}: {v.unexpected_count:,} unexpected{of} rows"
        if v.sample:
            text += f", e.g. {', '.join(repr(s) for s in v.sample)}"
        if v.sample_keys:
            text += "; keys " + ", ".join(
                " ".join(f"{k}={val!r}" for k, val in key.items()) for key in v.sample_keys
            )
        return text
    return f"{head} failed{tag}: observed {v.observed_value!r}"


def record(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    command: str,
    table: str,
    relation: str,
    results: list[ValidationResult],
    as_of: datetime | None,
) -> None:
    """Rows of `_profiler.validations`, committed at once: written even when the model is blocked."""
    con.execute(_VALIDATIONS_DDL)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        [
            run_id,
            command,
            table,
            v.scope,
            relation,
            v.expectation,
            json.dumps(v.kwargs, default=str),
            "raised" if v.exception else ("passed" if v.success else "failed"),
            v.success,
            v.severity,
            v.unexpected_count,
            v.element_count,
            None if v.observed_value is None else json.dumps(v.observed_value, default=str),
            json.dumps(v.sample, default=str),
            json.dumps(v.sample_keys, default=str),
            v.exception,
            as_of,
            now,
        ]
        for v in results
    ]
    if rows:
        con.executemany(
            f"INSERT INTO {SCHEMA}.validations VALUES ({', '.join('?' * len(rows[0]))})", rows
        )


def published_query(con: duckdb.DuckDBPyConnection, table: str, kind: Kind | None) -> str | None:
    """A SELECT of what readers see now; an scd2 history counts its current rows."""
    if relation_type(con, table) is None:
        return None
    if kind is Kind.SCD2:
        return f"SELECT * EXCLUDE (valid_from, valid_to, is_current) FROM {quote(table)} WHERE is_current"
    return f"SELECT * FROM {quote(table)}"


def gate_error(table: str, err: BaseException) -> GateOutcome:
    """The gate itself failed (GX missing, a bad parameter, ...): block, and say why."""
    why = str(err) if isinstance(err, ProfilerError) else _first_line(err)
    v = ValidationResult("(gate)", {}, False, "error", exception=why)
    return GateOutcome(False, raised=[f"{table}: the gate could not run: {why}"], results=[v])


def _staged_queries(con: duckdb.DuckDBPyConnection, staged: Staged) -> tuple[str, str]:
    """What the slice-local and the table-level expectations read (the same for a whole table)."""
    rel = staged.relation
    rel_sql = rel if ('"' in rel or "." in rel) else quote(rel)
    row_query = f"SELECT * FROM {rel_sql}"
    if staged.slice_predicate is None or relation_type(con, staged.model.name) is None:
        return row_query, row_query  # a whole table, or a slice into a table not published yet
    would_be = (
        f"SELECT * FROM (SELECT * FROM {quote(staged.model.name)} "
        f"WHERE ({staged.slice_predicate}) IS NOT TRUE) UNION ALL BY NAME ({row_query})"
    )
    return row_query, would_be


def _partition(staged: Staged) -> frozenset[str]:
    """The column whose values a slice replaces wholesale (see `slice_local`)."""
    model = staged.model
    if staged.slice_predicate is None:
        return frozenset()
    if model.kind is Kind.INCREMENTAL_BY_KEY and model.unique_key:
        return frozenset({model.unique_key[0].lower()})
    if model.kind is Kind.INCREMENTAL_BY_TIME and model.time_column:
        return frozenset({model.time_column.lower()})
    return frozenset()


class ExpectationGate:
    """The gate of a project with suites: GX runs only for models that have one."""

    def __init__(self, project: Any) -> None:
        project_dir = getattr(project, "project_dir", project)
        self.suites = load_suites(Path(project_dir))
        self.run_id = str(uuid.uuid4())
        self.as_of: datetime | None = None

    def start_run(self, run_id: str, as_of: datetime) -> None:
        self.run_id, self.as_of = run_id, as_of

    def check(self, con: duckdb.DuckDBPyConnection, staged: Staged) -> GateOutcome:
        model = staged.model
        suite = self.suites.get(model.name)
        if suite is None:
            return GateOutcome()
        t0 = time.perf_counter()
        try:
            row_query, table_query = _staged_queries(con, staged)
            published = published_query(con, model.name, model.kind)
            if published and _earlier_as_of(con, model.name, self.as_of):
                published = None  # going back in time shrinks tables: no baseline to compare with
            params = supply_parameters(
                con, parameter_names(suite.expectations), published, self.as_of or _newest(con)
            )
            keys = list(suite.key_columns or model.unique_key or ("user_id",))
            results = validate(con, suite, row_query, table_query, params, keys, _partition(staged))
            out = outcome(model.name, results)
        except Exception as err:
            out = gate_error(model.name, err)
        record(con, self.run_id, "build", model.name, staged.relation, out.results, self.as_of)
        out.seconds = time.perf_counter() - t0
        return out


def _earlier_as_of(con: duckdb.DuckDBPyConnection, name: str, as_of: datetime | None) -> bool:
    """Whether this build's as-of is before the one the published table was built at."""
    row = con.execute(f"SELECT as_of FROM {SCHEMA}.models WHERE name = ?", [name]).fetchone()
    return bool(as_of and row and row[0] and as_of < row[0])


def _newest(con: duckdb.DuckDBPyConnection) -> datetime | None:
    for table in ("raw_events", "raw_feedback"):
        if relation_type(con, table):
            newest = con.execute(f"SELECT max(ts) FROM {table}").fetchone()[0]
            if newest:
                return newest
    return None
