"""Validation results as the gate reports them, whichever engine computed them.

The GX runner (`gate_gx`) and the SQL compiler (`gate_sql`) both end in `ValidationResult`s built
with these helpers, so `describe`, `record` and `run_results.json` cannot tell them apart.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from profiler.gate_suites import expectation_severity
from profiler.runlog import ValidationResult

SAMPLE_SIZE = 5  # unexpected values (and their keys) kept per failed expectation


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def raised(exp: dict, message: str) -> ValidationResult:
    """An expectation that could not be evaluated: never a verdict on the data."""
    return ValidationResult(
        exp["type"],
        exp["kwargs"],
        False,
        expectation_severity(exp),
        exception=message,
    )


def plain(value: Any) -> Any:
    """JSON-ready values: datetimes as ISO text, NaN as None, containers recursively."""
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def distinct(values: list) -> list:
    """Five unexpected rows are often one value five times: show each value once."""
    seen: set[str] = set()
    out = []
    for v in values:
        key = json.dumps(v, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def is_parameter(value: Any) -> bool:
    return isinstance(value, dict) and "$PARAMETER" in value
