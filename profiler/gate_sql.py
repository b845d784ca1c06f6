"""The expectation compiler: GX expectations as DuckDB SQL, with GX's semantics.

The suites stay GX suites; this turns the expectation types the project uses into SQL that
DuckDB runs directly (`profiler.gate_sql_run` evaluates a whole suite in one aggregate scan), so a
build never pays for importing GX (~5 s) nor its per-expectation Python (20-35 ms each). The SQL
is the SQL GX itself generates on DuckDB (read from GX 1.24's metric providers), so the verdicts,
counts and observed values are the ones GX would report; `tests/test_gate_sql.py` compares both on
every shipped suite and on crafted tables.

GX's rules, as compiled:
- column map types (between, in set, lengths) ignore NULLs: a row is unexpected when the column
  is not NULL and the condition is not TRUE; `mostly` compares (non-null - unexpected) / non-null;
  an empty table or an all-NULL column passes vacuously. `expect_column_values_to_not_be_null`
  counts NULLs over all rows.
- uniqueness counts every row of a duplicated non-NULL value (two rows of 'a' are 2 unexpected);
  compound uniqueness ignores rows with a NULL in any of the columns.
- column pairs drop rows per `ignore_row_if` (default: both values missing); of the rest, a row
  is unexpected when `A > B` (`A >= B OR both NULL` with `or_equal`) is FALSE, not when NULL.
- aggregate types (row count, max, distinct count) compare the observed value with `min_value` /
  `max_value` (`strict_min` / `strict_max`); an observed NULL fails; dates given as text are parsed.

`compile_expectation` raises `Unsupported` for a type or kwarg it does not know (`row_condition`,
say): that expectation goes to GX, which is imported only then.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from profiler.gate_params import Unsupported, evaluate
from profiler.gate_results import is_parameter
from profiler.materialize import quote

_RUNTIME = frozenset({"result_format", "catch_exceptions", "meta", "notes"})
_BETWEEN = frozenset({"min_value", "max_value", "strict_min", "strict_max"})
_ALLOWED = {
    "expect_column_values_to_not_be_null": {"column", "mostly"},
    "expect_column_values_to_be_between": {"column", "mostly"} | _BETWEEN,
    "expect_column_values_to_be_in_set": {"column", "value_set", "mostly"},
    "expect_column_value_lengths_to_equal": {"column", "value", "mostly"},
    "expect_column_values_to_be_unique": {"column", "mostly"},
    "expect_column_pair_values_a_to_be_greater_than_b": {
        "column_A",
        "column_B",
        "or_equal",
        "ignore_row_if",
        "mostly",
    },
    "expect_compound_columns_to_be_unique": {"column_list", "ignore_row_if", "mostly"},
    "expect_table_row_count_to_be_between": _BETWEEN,
    "expect_column_max_to_be_between": {"column"} | _BETWEEN,
    "expect_column_unique_value_count_to_be_between": {"column"} | _BETWEEN,
}
COMPILED_TYPES = frozenset(_ALLOWED)
# The flags the compiler reads, and whether GX takes None for them (as False). GX's pydantic models
# coerce text such as "false" or 0 into a bool; rather than copy those rules, anything but a real
# bool goes to GX (a truthiness test would read "false" as True).
_FLAGS = {"strict_min": False, "strict_max": False, "or_equal": True}

# GX refuses to compare these column types with numeric or date bounds (column_values_between.py)
_INCOMPARABLE = (
    "VARCHAR", "CHAR", "NVARCHAR", "NCHAR", "TEXT", "STRING", "BOOLEAN", "BOOL", "BIT",
    "TINYTEXT", "MEDIUMTEXT", "LONGTEXT",
)  # fmt: skip


class Raises(Exception):
    """GX would raise on this expectation: a gate error, reported with this message."""


@dataclass
class Check:
    """One compiled expectation. `kind` says how `gate_sql_run` evaluates and reports it:

    - `map`: `domain` rows are considered (None: every row), `unexpected` rows fail (a condition
      that already implies `domain`); `nulls_count` makes it GX's not-null special case;
    - `unique`: rows whose `group` values (none NULL) occur more than once fail;
    - `metric`: the aggregate `metric` is compared with `bounds`.
    """

    exp: dict
    kwargs: dict  # as reported: `$PARAMETER`s replaced by their values
    kind: str
    columns: tuple[str, ...]  # what it reads; a missing one raises, as in GX
    mostly: float = 1.0
    domain: str | None = None
    unexpected: str | None = None
    params: list = field(default_factory=list)  # bound values of `unexpected`, in order
    group: tuple[str, ...] = ()
    metric: str | None = None
    bounds: dict = field(default_factory=dict)
    sample: tuple[str, ...] = ()  # the columns whose values make the unexpected list
    nulls_count: bool = False
    dict_sample: bool = False  # GX lists a multicolumn row as {column: value}
    summed: bool = False  # GX sums a CASE for it: no rows give a NULL count, not 0


def resolve_kwargs(exp: dict, parameters: dict[str, Any]) -> dict:
    """The kwargs with each `$PARAMETER` evaluated as GX does; `Unsupported` when it cannot."""
    return {
        k: evaluate(str(v["$PARAMETER"]), parameters) if is_parameter(v) else v
        for k, v in exp["kwargs"].items()
    }


def compile_expectation(
    exp: dict, parameters: dict[str, Any], column_types: dict[str, str]
) -> Check:
    """`exp` as a `Check` on a relation with these columns (lower-cased name -> DuckDB type).

    Raises `Unsupported` (run it with GX instead) or `Raises` (GX would raise: a gate error).
    """
    allowed = _ALLOWED.get(exp["type"])
    if allowed is None:
        raise Unsupported(f"{exp['type']} is not compiled")
    kw = resolve_kwargs(exp, parameters)
    for key, value in kw.items():
        if key in ("row_condition", "condition_parser") and value in (None, ""):
            continue
        if key not in allowed and key not in _RUNTIME:
            raise Unsupported(f"{exp['type']}: kwarg {key} is not compiled")
        if key in _FLAGS and not isinstance(value, bool) and not (value is None and _FLAGS[key]):
            raise Unsupported(f"{exp['type']}: {key}={value!r} is not a bool: GX decides")
    check = _COMPILERS[exp["type"]](exp, kw, column_types)
    missing = [c for c in check.columns if str(c).lower() not in column_types]
    if missing:
        raise Raises(f'The column "{missing[0]}" in BatchData does not exist.')
    mostly = kw.get("mostly", 1.0)
    if not isinstance(mostly, int | float) or isinstance(mostly, bool) or not 0 <= mostly <= 1:
        raise Unsupported("mostly must be a number in [0, 1]")
    check.mostly = float(mostly)
    return check


def _column(kw: dict) -> str:
    column = kw.get("column")
    if not isinstance(column, str):
        raise Unsupported("column must be a name")
    return column


def _map(exp: dict, kw: dict, expected: str, params: list | None = None) -> Check:
    col = _column(kw)
    q = quote(col)
    return Check(
        exp,
        kw,
        "map",
        (col,),
        domain=f"{q} IS NOT NULL",
        unexpected=f"{q} IS NOT NULL AND NOT ({expected})",
        params=params or [],
        sample=(col,),
        summed=True,
    )


def _not_null(exp: dict, kw: dict, types: dict[str, str]) -> Check:
    col = _column(kw)
    return Check(
        exp, kw, "map", (col,), unexpected=f"{quote(col)} IS NULL", sample=(col,), nulls_count=True,
        summed=True,
    )  # fmt: skip


def _between(exp: dict, kw: dict, types: dict[str, str]) -> Check:
    col = _column(kw)
    lo, hi = _bounds(exp, kw, "comparable")
    if lo is None and hi is None:
        raise Raises("ValueError: min_value and max_value cannot both be None")
    try:
        if lo is not None and hi is not None and lo > hi:
            raise Raises("ValueError: min_value cannot be greater than max_value")
    except TypeError as err:
        raise Raises(f"TypeError: {err}") from None
    ctype = types.get(col.lower(), "")
    if ctype.upper().startswith(_INCOMPARABLE):
        raise Raises(f"InvalidColumnTypeError: column type {ctype} cannot be compared with bounds")
    q = quote(col)
    conditions, params = [], []
    if lo is not None:
        conditions.append(f"{q} {'>' if kw.get('strict_min') else '>='} ?")
        params.append(lo)
    if hi is not None:
        conditions.append(f"{q} {'<' if kw.get('strict_max') else '<='} ?")
        params.append(hi)
    return _map(exp, kw, " AND ".join(conditions), params)


def _bounds(exp: dict, kw: dict, kind: str) -> tuple[Any, Any]:
    """min and max as GX types them; a `$PARAMETER` bound is reported so too, as GX does."""
    out = []
    for key in ("min_value", "max_value"):
        value = coerce_bound(kw.get(key), kind)
        if is_parameter(exp["kwargs"].get(key)):
            kw[key] = value
        out.append(value)
    return out[0], out[1]


_ISO_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")


def coerce_bound(value: Any, kind: str) -> Any:
    """A bound as GX's pydantic model types it: `comparable` (float | date | datetime, the
    between types and max), `count` (int | datetime, row counts) or `int` (distinct counts)."""
    if value is None or (kind != "int" and isinstance(value, dt.datetime)):
        return value
    if kind == "comparable" and isinstance(value, dt.date):
        return value
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _number(value)):
        return float(value) if kind == "comparable" else int(float(value))
    if isinstance(value, str) and kind != "int":
        if kind == "comparable" and _ISO_DATE.fullmatch(value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:  # "2024-1-1", "2024-02-30": GX decides what it means
                raise Unsupported(f"bound {value!r}: GX decides what it means") from None
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            pass
    raise Unsupported(f"bound {value!r}: GX decides what it means")


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _in_set(exp: dict, kw: dict, types: dict[str, str]) -> Check:
    values = kw.get("value_set")
    if not isinstance(values, list | tuple | set):  # None too: GX cannot build it, and says why
        raise Unsupported("value_set must be a list")
    values = [v for v in values if v is not None]  # GX drops None: `IN (..., NULL)` is never TRUE
    if not values:
        return _map(exp, kw, "FALSE")  # GX: `IN ()`, every non-NULL value unexpected
    return _map(exp, kw, f"{quote(_column(kw))} IN ({', '.join('?' * len(values))})", values)


def _length(exp: dict, kw: dict, types: dict[str, str]) -> Check:
    value = kw.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise Unsupported("value must be a number")
    return _map(exp, kw, f"length({quote(_column(kw))}) = ?", [value])


def _unique(exp: dict, kw: dict, types: dict[str, str]) -> Check:
    col = _column(kw)
    return Check(
        exp, kw, "unique", (col,), domain=f"{quote(col)} IS NOT NULL", group=(col,), sample=(col,)
    )


_PAIR_IGNORE = {
    "both_values_are_missing": "NOT ({a} IS NULL AND {b} IS NULL)",
    "either_value_is_missing": "NOT ({a} IS NULL OR {b} IS NULL)",
    "neither": "TRUE",
}


def _pair(exp: dict, kw: dict, types: dict[str, str]) -> Check:
    a, b = kw.get("column_A"), kw.get("column_B")
    if not isinstance(a, str) or not isinstance(b, str):
        raise Unsupported("column_A and column_B must be names")
    ignore = kw.get("ignore_row_if", "both_values_are_missing")
    if ignore not in _PAIR_IGNORE:
        raise Raises(f'ValueError: Unrecognized value of ignore_row_if ("{ignore}").')
    qa, qb = quote(a), quote(b)
    domain = _PAIR_IGNORE[ignore].format(a=qa, b=qb)
    expected = (
        f"{qa} >= {qb} OR ({qa} IS NULL AND {qb} IS NULL)" if kw.get("or_equal") else f"{qa} > {qb}"
    )
    return Check(
        exp, kw, "map", (a, b), domain=domain, unexpected=f"({domain}) AND NOT ({expected})",
        sample=(a, b),
    )  # fmt: skip


def _compound(exp: dict, kw: dict, types: dict[str, str]) -> Check:
    columns = kw.get("column_list")
    if not isinstance(columns, list | tuple) or not columns:
        raise Unsupported("column_list must be a list of names")
    if not all(isinstance(c, str) for c in columns):
        raise Unsupported("column_list must be a list of names")
    ignore = kw.get("ignore_row_if", "all_values_are_missing")
    qs = [quote(c) for c in columns]
    domains = {
        "all_values_are_missing": f"NOT ({' AND '.join(f'{q} IS NULL' for q in qs)})",
        "any_value_is_missing": f"NOT ({' OR '.join(f'{q} IS NULL' for q in qs)})",
        "never": "TRUE",
    }
    if ignore not in domains:
        raise Raises(f'ValueError: Unrecognized value of ignore_row_if ("{ignore}").')
    return Check(
        exp, kw, "unique", tuple(columns), domain=domains[ignore], group=tuple(columns),
        sample=tuple(columns), dict_sample=True,
    )  # fmt: skip


def _metric(sql: str, kind: str):
    def compile_metric(exp: dict, kw: dict, types: dict[str, str]) -> Check:
        columns = () if "{col}" not in sql else (_column(kw),)
        metric = sql.format(col=quote(columns[0])) if columns else sql
        bounds = {k: kw.get(k) for k in _BETWEEN}
        bounds["min_value"], bounds["max_value"] = _bounds(exp, kw, kind)
        return Check(exp, kw, "metric", columns, metric=metric, bounds=bounds)

    return compile_metric


_COMPILERS = {
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_value_lengths_to_equal": _length,
    "expect_column_values_to_be_unique": _unique,
    "expect_column_pair_values_a_to_be_greater_than_b": _pair,
    "expect_compound_columns_to_be_unique": _compound,
    "expect_table_row_count_to_be_between": _metric("count(*)", "count"),
    "expect_column_max_to_be_between": _metric("max({col})", "comparable"),
    "expect_column_unique_value_count_to_be_between": _metric("count(DISTINCT {col})", "int"),
}
