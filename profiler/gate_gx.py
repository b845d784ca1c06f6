"""The GX runner: Great Expectations itself validates a query on the build's DuckDB connection.

The compiled gate (`profiler.gate_sql`) runs the expectation types it knows as plain SQL; this runs
the rest, and everything `profiler check` validates (GX stays the reference there).

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
GX reports a failed query as an exception of the expectation and retries it, so a storage fault
(out of memory, a full disk) would come back as "raised" or "transaction aborted": the cursor GX
gets is watched (`_WatchedCursor`), and the first storage fault it saw is raised once GX returns.
`tests/test_gate.py` pins this down; the versions are pinned in pyproject. GX 1.24 has no DuckDB
support for regex or like patterns, nor for `expect_column_values_to_be_of_type`: those raise, a
gate error; write such rules with value sets, lengths or ranges.

Great Expectations costs ~3 s to import: nothing here imports it until `run_expectations` runs.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from typing import Any

import duckdb

from profiler.errors import ProfilerError
from profiler.faults import fault_kind
from profiler.gate_results import SAMPLE_SIZE, distinct, first_line, is_parameter, plain, raised
from profiler.gate_suites import expectation_severity
from profiler.runlog import ValidationResult
from profiler.settings import cursor as settings_cursor

_INDEX = "_profiler_index"  # meta key that maps GX's (unordered) results back to the suite


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
            "fix in profiler/gate_gx.py must be redone for this version (pyproject pins the one it fits)"
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
        # GX logs each failed metric query and its retries with tracebacks (4,497 lines on stderr
        # for one expectation whose SQL fails, helper-112); the runner reports it in one line
        logging.getLogger("great_expectations").setLevel(logging.CRITICAL)
        self.ExpectationSuite = gx.ExpectationSuite
        self.ExpectationConfiguration = ExpectationConfiguration
        self.ConnectionWrapper = ConnectionWrapper
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        self.names = itertools.count()


_GX: _Gx | None = None


class _WatchedCursor:
    """A DuckDB cursor that remembers the first storage fault of a query GX ran on it.

    GX catches every error of a metric query and keeps only its text (of the last retry, often
    "Current transaction is aborted"); what the build must stop on is the error itself.
    """

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self._cursor = cursor
        self.fault: BaseException | None = None
        self.error: BaseException | None = None  # the first error of any kind: the reason

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._cursor.execute(*args, **kwargs)
        except Exception as err:
            if self.fault is None and fault_kind(err):
                self.fault = err
            if self.error is None:
                self.error = err
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


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
            results[i] = raised(exp, f"GX cannot build it: {first_line(err)}")
    name = f"profiler_{next(gx.names)}"
    cursor = settings_cursor(con)
    watched = _WatchedCursor(cursor)
    try:
        datasource = gx.context.data_sources.add_sql(
            name=name,
            connection_string="duckdb://",
            kwargs={"creator": lambda: gx.ConnectionWrapper(watched)},
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
    except Exception:
        if watched.fault is not None:
            raise watched.fault from None
        raise
    finally:
        try:
            datasource = gx.context.data_sources.get(name)
            datasource.get_execution_engine().close()
            gx.context.data_sources.delete(name)
        except Exception:
            pass
        cursor.close()
    if watched.fault is not None:
        raise watched.fault
    final = [
        r if r is not None else raised(expectations[i], "GX returned no result for it")
        for i, r in enumerate(results)
    ]
    # GX keeps the text of its last retry of a failed query ("Current transaction is aborted"),
    # or of whichever failed metric its dict holds first (hash order: "Could not render literal
    # value" of the same bad value): alone, the expectation's first failed query is the one at
    # fault, and DuckDB says why
    if len(final) == 1 and final[0].exception is not None and watched.error is not None:
        final[0].exception = first_line(watched.error)
    # One failing metric query leaves GX's shared cursor in an aborted transaction, and every
    # later expectation of the run then "raises" too. Run each raised one again on its own, so a
    # single bad expectation is reported as itself and the others get their real verdicts.
    again = [i for i, r in enumerate(final) if r.exception is not None]
    if len(expectations) > 1 and again:
        for i in again:
            final[i] = run_expectations(con, query, [expectations[i]], parameters, key_columns)[0]
    return final


def _exception_message(info: Any) -> str | None:
    """GX reports a crash either flat ({raised_exception, exception_message}) or per metric."""
    if not info:
        return None
    if "raised_exception" in info:
        if info.get("raised_exception"):
            return str(info.get("exception_message") or "raised").strip().splitlines()[0]
        return None
    # in the metrics' names' order: GX's dict follows its sets' (hash) order, and the same failure
    # must say the same thing in every run
    for metric, detail in sorted(info.items(), key=lambda item: str(item[0])):
        if isinstance(detail, dict) and (
            detail.get("raised_exception", True) or detail.get("exception_message")
        ):
            message = str(detail.get("exception_message") or "raised").strip().splitlines()[0]
            named = re.search(r"metric_name='([^']+)'", str(metric))
            return f"{message} (computing {named.group(1) if named else metric})"
    return None


def _convert(exp: dict, r: Any) -> ValidationResult:
    resolved = dict(r.expectation_config.kwargs)  # GX's, with the parameters substituted
    kwargs = {k: resolved.get(k, v) if is_parameter(v) else v for k, v in exp["kwargs"].items()}
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
        plain(kwargs),
        bool(r.success) and exception is None,
        expectation_severity(exp),
        result.get("unexpected_count"),
        distinct(plain(result.get("partial_unexpected_list") or [])),
        exception,
        observed_value=plain(result.get("observed_value")),
        element_count=result.get("element_count"),
        sample_keys=distinct(plain([k for k in keys if k])),
    )
