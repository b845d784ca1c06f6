"""Suites: `expectations/<table>.json`, GX 1.x ExpectationSuites read as plain JSON (no GX import).

`meta.severity` is `error` (the default: the model and everything downstream are blocked) or
`warn` (reported, published anyway); GX's own `severity` field is honoured too (`critical` is
error, `warning` and `info` are warn). `slice_local` says which expectations an incremental slice
decides on its own (see `profiler.gate`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from profiler.errors import ProfilerError

SUITE_DIR = "expectations"
SEVERITIES = ("error", "warn")
_GX_SEVERITY = {"critical": "error", "warning": "warn", "info": "warn"}

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

    @property
    def fingerprint(self) -> str:
        """Changes with what the suite checks (its expectations and key columns)."""
        body = json.dumps([self.expectations, self.key_columns], sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


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
        if exp.get("severity", "critical") not in tuple(_GX_SEVERITY):  # GX refuses it too
            raise ProfilerError(
                f"{where} ({exp['type']}): GX's severity {exp['severity']!r} must be critical, "
                "warning or info (or meta.severity error or warn)"
            )
        if expectation_severity(exp) not in SEVERITIES:
            raise ProfilerError(
                f"{where} ({exp['type']}): severity {expectation_severity(exp)!r} must be error or warn"
            )
    exps = tuple({"kwargs": {}, "meta": {}, **e} for e in data["expectations"])
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        raise ProfilerError(f"{path}: the suite's `meta` must be an object")
    keys = meta.get("key_columns") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ProfilerError(f"{path}: meta.key_columns must be a list of column names")
    return Suite(path.stem, path, str(data.get("name") or path.stem), exps, tuple(keys))


def load_suites(project_dir: Path) -> dict[str, Suite]:
    """`expectations/<table>.json` for every gated table, by table name."""
    return {p.stem: read_suite(p) for p in sorted((Path(project_dir) / SUITE_DIR).glob("*.json"))}
