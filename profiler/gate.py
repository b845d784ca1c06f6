"""The quality gate: a model's staged output is validated with its GX suite before it is published.

Suites are GX 1.x ExpectationSuites in `expectations/<table>.json` (`profiler.gate_suites`); their
`$PARAMETER` kwargs read values the gate supplies (`profiler.gate_params`). How they run:

- a build (`ExpectationGate`) runs the expectation types `profiler.gate_sql` compiles as plain
  DuckDB SQL, a whole suite in one aggregate scan (`profiler.gate_sql_run`), with GX's semantics
  and GX's result fields; any other type, or a kwarg the compiler does not know (`row_condition`,
  say), runs through GX itself (`profiler.gate_gx`), and GX is imported only then. With the
  shipped suites a build never imports GX;
- `profiler check` runs every expectation through GX: the reference the compiled SQL is tested
  against (`validate(..., engine="gx")`, the default).

An expectation that raised (GX's `exception_info`, or SQL the compiled gate could not run) is an
error of the gate whatever its severity: it blocks, and it is reported as raised, never as "data
passed" or "data failed". A storage fault while the gate runs (out of memory, a full disk) says
nothing about the data: it propagates, whichever engine hit it, and the build stops
(`profiler.faults`). `profiler check` compares a published table with itself.

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
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from profiler.errors import ProfilerError
from profiler.faults import fault_kind
from profiler.gate_gx import _exception_message, run_expectations
from profiler.gate_params import (
    SUPPLIED,
    columns_of,
    parameter_names,
    supply_parameters,
)
from profiler.gate_results import first_line
from profiler.gate_sql_run import run_compiled
from profiler.gate_suites import (
    ROW_LEVEL,
    SEVERITIES,
    SUITE_DIR,
    UNIQUENESS,
    Suite,
    expectation_severity,
    load_suites,
    read_suite,
    slice_local,
)
from profiler.materialize import Staged, quote, relation_type
from profiler.plan import ts_literal
from profiler.project import Kind
from profiler.publish import GateOutcome
from profiler.runlog import ValidationResult
from profiler.sources import BATCH_COLUMN, SOURCES
from profiler.state import SCHEMA, newest_data

__all__ = [
    "ROW_LEVEL",
    "SEVERITIES",
    "SUITE_DIR",
    "SUPPLIED",
    "UNIQUENESS",
    "ExpectationGate",
    "Suite",
    "_exception_message",
    "describe",
    "expectation_severity",
    "gate_error",
    "load_suites",
    "outcome",
    "parameter_names",
    "published_query",
    "read_suite",
    "record",
    "run_expectations",
    "slice_local",
    "supply_parameters",
    "validate",
]

ENGINES = ("gx", "sql")
# GX keeps one context per process, and the validations table is created on first use: when a
# build runs models at once (`BuildOptions.workers`), both go one thread at a time
_GATE_LOCK = threading.Lock()

_VALIDATIONS_DDL = f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.validations (
    run_id VARCHAR, command VARCHAR, table_name VARCHAR, scope VARCHAR, relation VARCHAR,
    expectation VARCHAR, kwargs VARCHAR, status VARCHAR, success BOOLEAN, severity VARCHAR,
    unexpected_count BIGINT, element_count BIGINT, observed_value VARCHAR, sample VARCHAR,
    sample_keys VARCHAR, exception VARCHAR, as_of TIMESTAMP, validated_at TIMESTAMP)"""
_VALIDATION_COLUMNS = ", ".join(
    part.split()[0] for part in _VALIDATIONS_DDL.split("(", 1)[1].rstrip(")").split(",")
)


# Validating a table: what the gate and `profiler check` share.


def validate(
    con: duckdb.DuckDBPyConnection,
    suite: Suite,
    row_query: str,
    table_query: str,
    parameters: dict[str, Any],
    key_columns: list[str],
    partition: frozenset[str] = frozenset(),
    engine: str = "gx",
) -> list[ValidationResult]:
    """Slice-local expectations on `row_query`, the rest on `table_query` (one run when equal).

    `partition`: the lower-cased column an incremental slice replaces rows by. `engine`: `gx`
    runs every expectation through GX; `sql` runs the compiled ones as SQL and only the rest
    through GX.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    groups: dict[str, list[int]] = {}
    for i, exp in enumerate(suite.expectations):
        query = row_query if slice_local(exp, partition) else table_query
        groups.setdefault(query, []).append(i)
    results: list[ValidationResult | None] = [None] * len(suite.expectations)
    for query, idx in groups.items():
        keys = [k for k in key_columns if k.lower() in columns_of(con, query)]
        exps = [suite.expectations[i] for i in idx]
        for i, res in zip(idx, _run(con, query, exps, parameters, keys, engine), strict=True):
            res.scope = "slice" if query != table_query else "table"
            results[i] = res
    return [r for r in results if r is not None]


def _run(
    con: duckdb.DuckDBPyConnection,
    query: str,
    exps: list[dict],
    parameters: dict[str, Any],
    keys: list[str],
    engine: str,
) -> list[ValidationResult]:
    """The compiled expectations as SQL, then GX for whatever is left (imported only then)."""
    if engine == "gx":
        with _GATE_LOCK:
            return run_expectations(con, query, exps, parameters, keys)
    results = run_compiled(con, query, exps, parameters, keys)
    rest = [i for i, r in enumerate(results) if r is None]
    if rest:
        with _GATE_LOCK:
            by_gx = run_expectations(con, query, [exps[i] for i in rest], parameters, keys)
        for i, res in zip(rest, by_gx, strict=True):
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
        gone = _missing_column(v.exception)
        if gone:  # GX's "in BatchData does not exist", DuckDB's binder error: say it plainly
            return (
                f"{head}: the suite expects column {gone!r}, which {table} does not have "
                f"(renamed or removed?); edit expectations/{table}.json or the model"
            )
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


def _missing_column(message: str) -> str | None:
    found = re.search(
        r'The column "([^"]+)" in BatchData does not exist|Referenced column "?([^"\s]+)"? not found',
        message,
    )
    return (found.group(1) or found.group(2)) if found else None


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
    with _GATE_LOCK:  # two models finishing at once must not both create the table
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
    if rows:  # one statement: executemany costs ~0.6 ms per row
        one = f"({', '.join('?' * len(rows[0]))})"
        con.execute(
            f"INSERT INTO {SCHEMA}.validations ({_VALIDATION_COLUMNS}) "
            f"VALUES {', '.join([one] * len(rows))}",
            [value for row in rows for value in row],
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
    why = str(err) if isinstance(err, ProfilerError) else first_line(err)
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
    """The gate of a build: compiled SQL for the expectations it knows, GX for the rest."""

    def __init__(self, project: Any) -> None:
        project_dir = getattr(project, "project_dir", project)
        self.suites = load_suites(Path(project_dir))
        self.run_id = str(uuid.uuid4())
        self.as_of: datetime | None = None

    def start_run(self, run_id: str, as_of: datetime) -> None:
        self.run_id, self.as_of = run_id, as_of

    def suite_fingerprint(self, table: str) -> str:
        suite = self.suites.get(table)
        return suite.fingerprint if suite else ""

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
                con, parameter_names(suite.expectations), published, self.as_of or newest_data(con)
            )
            keys = list(suite.key_columns or model.unique_key or ("user_id",))
            results = validate(
                con, suite, row_query, table_query, params, keys, _partition(staged), engine="sql"
            )
            out = outcome(model.name, results)
        except Exception as err:
            if fault_kind(err):
                raise  # out of memory, a full disk: the build stops (`profiler.faults`)
            out = gate_error(model.name, err)
        record(con, self.run_id, "build", model.name, staged.relation, out.results, self.as_of)
        out.seconds = time.perf_counter() - t0
        return out

    def check_source(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        after: int,
        through: int,
        before: datetime | None = None,
    ) -> GateOutcome:
        """A source's suite (`expectations/raw_events.json`) on its batches after `after` up to
        `through` (and, with `before`, its rows timed up to then): row-level expectations and
        uniqueness that includes the batch column on those rows, the rest on the whole table as
        the build reads it."""
        suite = self.suites[table]
        source = next(s for s in SOURCES.values() if s.table == table)
        t0 = time.perf_counter()
        upto = f" WHERE {source.time_column} <= {ts_literal(before)}" if before else ""
        whole = f"SELECT * FROM {quote(table)}{upto}"
        rows = (
            f"{whole}{' AND' if upto else ' WHERE'} {BATCH_COLUMN} > {int(after)} "
            f"AND {BATCH_COLUMN} <= {int(through)}"
        )
        try:
            params = supply_parameters(
                con, parameter_names(suite.expectations), None, self.as_of or newest_data(con)
            )
            # the rows' keys name the batch that sent them, for `--replace-batch` (helper-81: a
            # suite's own key_columns left it out)
            keys = list(suite.key_columns or (source.key, *filter(None, (source.time_column,))))
            keys = list(dict.fromkeys([*keys, BATCH_COLUMN]))
            batch = frozenset({BATCH_COLUMN})
            out = outcome(table, validate(con, suite, rows, whole, params, keys, batch, "sql"))
        except Exception as err:
            if fault_kind(err):
                raise
            out = gate_error(table, err)
        record(con, self.run_id, "build", table, table, out.results, self.as_of)
        out.seconds = time.perf_counter() - t0
        return out


def _earlier_as_of(con: duckdb.DuckDBPyConnection, name: str, as_of: datetime | None) -> bool:
    """Whether this build's as-of is before the one the published table was built at."""
    row = con.execute(f"SELECT as_of FROM {SCHEMA}.models WHERE name = ?", [name]).fetchone()
    return bool(as_of and row and row[0] and as_of < row[0])
