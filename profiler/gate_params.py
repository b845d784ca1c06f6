"""Suite parameters: the numbers a suite's `{"$PARAMETER": "<expression>"}` kwargs read.

GX has no "compared with the previous table" expectation, but it evaluates `$PARAMETER`
expressions in kwargs with its own parser at validation time. The gate supplies the values:

    as_of                     the build's as-of time
    published_row_count       rows of the published table before this build (0 when there is none,
                              or when this build's as-of is earlier than the one it was built at:
                              going back in time shrinks tables legitimately)
    published_distinct_<col>  distinct values of <col> in it (0 likewise, or without such a column)

so `"min_value": {"$PARAMETER": "trunc(published_row_count * 0.5)"}` keeps the rule in the suite,
in GX's language; only the number comes from the warehouse.

`evaluate` is GX's expression language re-implemented (`great_expectations/core/suite_parameters.py`:
`+ - * / ^`, unary minus, `PI`, `E`, and the functions below, positional or keyword arguments),
so the compiled gate can resolve kwargs without importing GX. It follows GX's quirks on purpose:
a lone name is returned as is; in a larger expression every name is substituted as text and read
back as int, float or date, and the result is made JSON-ready (a datetime becomes ISO text). An
expression it cannot read raises `Unsupported`: that expectation then runs through GX.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
from typing import Any

import duckdb

from profiler.errors import ProfilerError
from profiler.gate_results import is_parameter
from profiler.materialize import quote

_NAME = re.compile(r"(?<![A-Za-z0-9_$.])([A-Za-z][A-Za-z0-9_$]*)(\s*[(=])?")
_GX_CONSTANTS = {"E", "PI", "e", "pi"}
SUPPLIED = "as_of, published_row_count, published_distinct_<column>"


class Unsupported(Exception):
    """An expression (or kwarg) the compiled gate does not evaluate: GX must."""


def parameter_names(expectations: tuple[dict, ...] | list[dict]) -> set[str]:
    """Variables the expressions use (not GX's functions such as trunc() or their keywords)."""
    names: set[str] = set()
    for exp in expectations:
        for value in exp["kwargs"].values():
            if is_parameter(value):
                for m in _NAME.finditer(str(value["$PARAMETER"])):
                    if not m.group(2) and m.group(1) not in _GX_CONSTANTS:
                        names.add(m.group(1))
    return names


def supply_parameters(
    con: duckdb.DuckDBPyConnection,
    names: set[str],
    published: str | None,
    as_of: dt.datetime | None,
) -> dict[str, Any]:
    """Values for the names; `published` is a SELECT of the published table, None when new."""
    values: dict[str, Any] = {}
    columns = columns_of(con, published) if published else set()
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


def columns_of(con: duckdb.DuckDBPyConnection, query: str) -> set[str]:
    return {r[0].lower() for r in con.execute(f"DESCRIBE {query}").fetchall()}


# GX's expression language, without GX.

_FUNCTIONS = {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "exp": math.exp,
    "abs": abs,
    "trunc": int,
    "round": round,
    "sgn": lambda a: -1 if a < -1e-12 else 1 if a > 1e-12 else 0,
    "now": dt.datetime.now,
    "datetime": dt.datetime,
    "timedelta": dt.timedelta,
}
_OPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": operator.pow,
}
_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+|\.\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z][A-Za-z0-9_$]*)"
    r"|(?P<op>[-+*/^(),=]))"
)


def evaluate(expression: str, values: dict[str, Any]) -> Any:
    """The value GX gives `{"$PARAMETER": expression}` with these suite parameters."""
    tokens = _tokens(expression)
    if len(tokens) == 1 and tokens[0][0] == "name" and tokens[0][1].upper() not in ("PI", "E"):
        if tokens[0][1] not in values:
            raise Unsupported(f"no value for $PARAMETER {tokens[0][1]}")
        return values[tokens[0][1]]  # GX substitutes a lone name as it is
    parser = _Parser(tokens, values)
    result = parser.expr()
    if parser.pos != len(tokens):
        raise Unsupported(f"cannot read $PARAMETER expression {expression!r}")
    if isinstance(result, dt.datetime | dt.date | dt.time):
        return result.isoformat()  # what GX's convert_to_json_serializable makes of it
    if isinstance(result, bool) or not isinstance(result, int | float):
        raise Unsupported(f"$PARAMETER {expression!r} gives a {type(result).__name__}")
    return result


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if not m:
            raise Unsupported(f"cannot read $PARAMETER expression {text!r}")
        kind = m.lastgroup or "op"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _operand(text: str) -> Any:
    """GX reads every operand back from text: int, else float, else a date."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    from dateutil import parser

    try:
        return parser.parse(text)
    except (ValueError, OverflowError) as err:
        raise Unsupported(f"$PARAMETER operand {text!r} is not a number or a date") from err


class _Parser:
    """expr: term (+|- term)*; term: factor (*|/ factor)*; factor: atom (^ factor)?."""

    def __init__(self, tokens: list[tuple[str, str]], values: dict[str, Any]) -> None:
        self.tokens, self.values, self.pos = tokens, values, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens) or (expected and self.peek() != expected):
            raise Unsupported(f"$PARAMETER expression: expected {expected or 'more'}")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expr(self) -> Any:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            value = _OPS[op](value, self.term())
        return value

    def term(self) -> Any:
        value = self.factor()
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            value = _OPS[op](value, self.factor())
        return value

    def factor(self) -> Any:
        value = self.atom()
        if self.peek() == "^":
            self.take()
            value = value ** self.factor()
        return value

    def atom(self) -> Any:
        signs = 0
        while self.peek() in ("+", "-"):
            signs += self.take()[1] == "-"
        kind, text = self.take()
        if text == "(":
            value = self.expr()
            self.take(")")
        elif kind == "num":
            value = _operand(text)
        elif kind == "name" and self.peek() == "(":
            value = self.call(text)
        elif kind == "name" and text.upper() == "PI":
            value = math.pi
        elif kind == "name" and text.upper() == "E":
            value = math.e
        elif kind == "name" and text in self.values:
            value = _operand(str(self.values[text]))
        else:
            raise Unsupported(f"$PARAMETER expression: cannot read {text!r}")
        return -value if signs % 2 else value

    def call(self, name: str) -> Any:
        if name not in _FUNCTIONS:
            raise Unsupported(f"$PARAMETER function {name}() is not one GX knows")
        self.take("(")
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        while self.peek() != ")":
            if self.pos + 1 < len(self.tokens) and self.tokens[self.pos + 1][1] == "=":
                key = self.take()[1]
                self.take("=")
                kwargs[key] = self.expr()
            else:
                args.append(self.expr())
            if self.peek() == ",":
                self.take()
        self.take(")")
        if args and kwargs:
            raise Unsupported(f"$PARAMETER {name}(): GX takes positional or keyword arguments")
        return _FUNCTIONS[name](*args, **kwargs)
