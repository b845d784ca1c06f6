"""Running compiled expectations: a whole suite on one relation in one aggregate scan.

Every compiled expectation contributes `count(*) FILTER (WHERE ...)` columns (or an aggregate) to
a single SELECT over the validated query, so a suite of twenty expectations reads its table once.
Uniqueness rides along as `count(DISTINCT ...)`: when it equals the non-NULL count there is no
duplicate; only when there is one does a second query count the duplicated rows the way GX does.
Failed expectations get a `LIMIT 5` query for the unexpected values and their key columns.
If the combined SELECT fails (a bad comparison, say), each expectation runs alone, so only the
one at fault is reported as raised. A storage fault (out of memory, a full disk) is no verdict on
any expectation: it propagates, and the build stops (`profiler.faults`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb

from profiler.faults import fault_kind
from profiler.gate_params import Unsupported
from profiler.gate_results import SAMPLE_SIZE, distinct, first_line, plain, raised
from profiler.gate_sql import Check, Raises, compile_expectation
from profiler.gate_suites import expectation_severity
from profiler.materialize import quote
from profiler.runlog import ValidationResult


def run_compiled(
    con: duckdb.DuckDBPyConnection,
    query: str,
    expectations: list[dict],
    parameters: dict[str, Any],
    key_columns: list[str],
) -> list[ValidationResult | None]:
    """Results in suite order; None where the expectation is not compiled (GX must run it)."""
    types = {r[0].lower(): r[1] for r in con.execute(f"DESCRIBE {query}").fetchall()}
    results: list[ValidationResult | None] = [None] * len(expectations)
    checks: dict[int, Check] = {}
    for i, exp in enumerate(expectations):
        try:
            checks[i] = compile_expectation(exp, parameters, types)
        except Unsupported:
            continue
        except Raises as err:
            results[i] = raised(exp, str(err))
        except Exception:  # a value the compiler did not foresee: GX decides, as for Unsupported
            continue
    values = _aggregate(con, query, checks, results)
    for i, check in checks.items():
        if results[i] is None:
            try:
                results[i] = _result(con, query, check, values[i], key_columns)
            except Exception as err:  # a comparison GX would also fail on
                if fault_kind(err):
                    raise
                results[i] = raised(check.exp, first_line(err))
    return results


def _items(check: Check) -> list[tuple[str, list]]:
    """The aggregates a check needs, with their bound values."""
    if check.kind == "metric":
        return [(check.metric or "NULL", [])]
    domain = f"count(*) FILTER (WHERE {check.domain})" if check.domain else "count(*)"
    if check.kind == "map":
        return [(domain, []), (f"count(*) FILTER (WHERE {check.unexpected})", check.params)]
    whole = _no_nulls(check.group)
    group = ", ".join(quote(c) for c in check.group)
    return [
        (domain, []),
        (f"count(*) FILTER (WHERE {whole})", []),
        (f"count(DISTINCT ({group})) FILTER (WHERE {whole})", []),
    ]


def _no_nulls(columns: tuple[str, ...]) -> str:
    return " AND ".join(f"{quote(c)} IS NOT NULL" for c in columns)


def _aggregate(
    con: duckdb.DuckDBPyConnection,
    query: str,
    checks: dict[int, Check],
    results: list[ValidationResult | None],
) -> dict[int, list]:
    """One SELECT for every check: `count(*)` first, then each check's aggregates."""
    if not checks:
        return {}
    try:
        return _select(con, query, checks)
    except duckdb.Error as err:
        if fault_kind(err):
            raise
    values = {}  # find the one at fault
    for i, check in checks.items():
        try:
            values.update(_select(con, query, {i: check}))
        except duckdb.Error as err:
            if fault_kind(err):
                raise
            results[i] = raised(check.exp, first_line(err))
    return values


def _select(
    con: duckdb.DuckDBPyConnection, query: str, checks: dict[int, Check]
) -> dict[int, list]:
    columns: dict[tuple, int] = {("count(*)", ()): 0}
    params: list = []
    wanted: dict[int, list[int]] = {}
    for i, check in checks.items():
        wanted[i] = [0]
        for sql, bound in _items(check):
            key = (sql, tuple(repr(v) for v in bound))
            if key not in columns:
                columns[key] = len(columns)
                params.extend(bound)
            wanted[i].append(columns[key])
    select = ",\n  ".join(sql for sql, _ in columns)
    row = con.execute(f"SELECT {select}\nFROM ({query}) AS _validated", params).fetchone()
    return {i: [row[j] for j in idx] for i, idx in wanted.items()}


def _result(
    con: duckdb.DuckDBPyConnection, query: str, check: Check, values: list, key_columns: list[str]
) -> ValidationResult:
    exp = check.exp
    if check.kind == "metric":
        success, observed = _between(values[1], check.bounds)
        return ValidationResult(
            exp["type"], plain(check.kwargs), success, expectation_severity(exp),
            observed_value=plain(observed),
        )  # fmt: skip
    total, considered = values[0], values[1]
    if check.kind == "map":
        unexpected = values[2]
    elif values[2] == values[3]:
        unexpected = 0  # as many distinct values as rows: no duplicate
    else:
        unexpected = _duplicated_rows(con, query, check)
    if check.nulls_count:
        considered = total
    if total == 0 and check.summed:
        unexpected = None  # GX sums over no rows: NULL
    success = (
        unexpected is None or not total or not considered
        or (considered - unexpected) / considered >= check.mostly
    )  # fmt: skip
    sample: list = []
    keys: list = []
    if unexpected:
        sample, keys = _sample(con, query, check, key_columns)
    return ValidationResult(
        exp["type"], plain(check.kwargs), bool(success), expectation_severity(exp), unexpected,
        distinct(plain(sample)), element_count=total, sample_keys=distinct(plain(keys)),
    )  # fmt: skip


def _duplicated_rows(con: duckdb.DuckDBPyConnection, query: str, check: Check) -> int:
    group = ", ".join(quote(c) for c in check.group)
    return con.execute(
        f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM ({query}) AS _validated "
        f"WHERE {_no_nulls(check.group)} GROUP BY {group} HAVING count(*) > 1)"
    ).fetchone()[0]


def _sample(
    con: duckdb.DuckDBPyConnection, query: str, check: Check, key_columns: list[str]
) -> tuple[list, list]:
    """A few unexpected values (GX's partial_unexpected_list) and their key columns."""
    shown = list(check.sample)
    keys = [k for k in key_columns if k != check.kwargs.get("column")]
    select = ", ".join(quote(c) for c in [*shown, *keys])
    if check.kind == "unique":
        group = ", ".join(quote(c) for c in check.group)
        where = f"{_no_nulls(check.group)} QUALIFY count(*) OVER (PARTITION BY {group}) > 1"
    else:
        where = check.unexpected
    rows = con.execute(
        f"SELECT {select} FROM ({query}) AS _validated WHERE {where} LIMIT {SAMPLE_SIZE}",
        check.params if check.kind == "map" else [],
    ).fetchall()
    n = len(shown)
    if check.dict_sample:
        sample = [dict(zip(shown, r[:n], strict=True)) for r in rows]
    elif n == 1:
        sample = [r[0] for r in rows]
    else:
        sample = [list(r[:n]) for r in rows]
    key_rows = [dict(zip(keys, r[n:], strict=True)) for r in rows] if keys else []
    return sample, key_rows


def _between(observed: Any, bounds: dict) -> tuple[bool, Any]:
    """GX's `_validate_metric_value_between`: a NULL fails; dates given as text are parsed.

    GX reads aggregates as JSON values first: dates and timestamps as ISO text, decimals as floats.
    """
    if isinstance(observed, dt.date | dt.time):
        observed = observed.isoformat()
    elif isinstance(observed, Decimal):
        observed = float(observed)
    if observed is None or (isinstance(observed, float) and observed != observed):
        return False, None
    lo, hi = bounds.get("min_value"), bounds.get("max_value")
    if isinstance(observed, dt.datetime):
        lo, hi = (_parse(v) if isinstance(v, str) else v for v in (lo, hi))
    dates = [v for v in (lo, hi) if isinstance(v, dt.date)]
    if any(isinstance(v, dt.datetime) for v in dates) and not isinstance(observed, dt.datetime):
        observed = _parse(observed)
    if dates and not isinstance(observed, dt.date):
        observed = _parse(observed).date()
    above = lo is None or (observed > lo if bounds.get("strict_min") else observed >= lo)
    below = hi is None or (observed < hi if bounds.get("strict_max") else observed <= hi)
    return bool(above and below), observed


def _parse(value: Any) -> dt.datetime:
    from dateutil.parser import parse

    return parse(value)
