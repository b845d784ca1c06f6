"""Quoting for the SQL text the engine writes, by DuckDB's rules: one identifier, one literal.

The one place these rules live; modules that build SQL import them (some under a short local
name, `_q`, as their code reads).

>>> quote('a"b'), literal("it's")
('"a""b"', "'it''s'")
"""

from __future__ import annotations


def quote(name: str) -> str:
    """`name` as a quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """`text` as a string literal."""
    return "'" + text.replace("'", "''") + "'"
