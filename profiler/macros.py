"""Project macros: a SQL rule several models share, defined once (`macros/*.sql`).

A macro file holds DuckDB `CREATE MACRO name(arguments) AS expression` statements. Models call a
macro by name, as they call DuckDB's own functions. A build installs the project's macros in the
catalog it builds in (the warehouse, or a point-in-time build's scratch catalog) before any model
runs, and a model's data fingerprint holds the text of every macro it calls (directly or through
another macro), so editing a macro rebuilds the models that call it, and only those.

Only scalar macros: a shared query is a model (an ephemeral one is inlined into its readers), so
the lineage always sees every table a model reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.sqltext import quote

MACRO_DIR = "macros"
SETTING = "macros"  # `_profiler.settings`: the macros installed in this catalog, name -> text
_CREATE = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?P<temp>TEMP(?:ORARY)?\s+)?(?:MACRO|FUNCTION)\s+"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\(",
    re.IGNORECASE,
)
_TABLE_MACRO = re.compile(r"\)\s*AS\s+TABLE\b", re.IGNORECASE)


@dataclass(frozen=True)
class Macro:
    name: str  # lower case
    path: Path
    line: int
    sql: str  # the statement without comments, whitespace collapsed

    @property
    def create(self) -> str:
        """The statement that installs it, replacing an earlier version."""
        found = _CREATE.match(self.sql)
        assert found is not None
        return f"CREATE OR REPLACE MACRO {quote(self.name)}{self.sql[found.end('name') :]}"


def _without_comments(sql: str) -> str:
    """The statement's text with its comments blanked (DuckDB's tokenizer finds them; its
    offsets count UTF-8 bytes)."""
    raw = sql.encode()
    tokens = duckdb.tokenize(sql)
    out, start = [], 0
    for i, (offset, kind) in enumerate(tokens):
        if kind == duckdb.token_type.comment:
            end = tokens[i + 1][0] if i + 1 < len(tokens) else len(raw)
            out.append(raw[start:offset] + b" ")
            start = end
    out.append(raw[start:])
    return " ".join(b"".join(out).decode().split()).rstrip(";").strip()


def load_macros(project_dir: Path) -> tuple[Macro, ...]:
    """The macros of `macros/*.sql`, in file order; a file holding anything else is an error."""
    macros: dict[str, Macro] = {}
    for path in sorted((Path(project_dir) / MACRO_DIR).glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        try:
            statements = duckdb.extract_statements(text)
        except duckdb.ParserException as err:
            first = str(err).removeprefix("Parser Error: ").splitlines()[0]
            raise ProfilerError(f"{path}: SQL does not parse: {first}") from None
        raw, at = text.encode(), 0
        for statement in statements:
            sql = _without_comments(statement.query)
            if not sql:
                continue
            query = statement.query.encode()
            found_at = max(raw.find(query, at), 0)
            at = found_at + len(query)
            first = next(  # the statement's first word: its line, after any comment
                (
                    o
                    for o, kind in duckdb.tokenize(statement.query)
                    if kind != duckdb.token_type.comment
                ),
                0,
            )
            line = raw.count(b"\n", 0, found_at + first) + 1
            where = f"{path}:{line}"
            found = _CREATE.match(sql)
            if not found or found["temp"] or _TABLE_MACRO.search(sql):
                raise ProfilerError(
                    f"{where}: a macro file holds scalar macros only, as `CREATE MACRO name(x) AS "
                    "expression`; a shared query is a model (kind: ephemeral is inlined)"
                )
            name = found["name"].lower()
            if name in macros:
                raise ProfilerError(
                    f"{where}: macro {name!r} is also defined in {macros[name].path}"
                )
            macros[name] = Macro(name, path, line, sql)
    return tuple(macros.values())


def called(texts: list[str], macros: tuple[Macro, ...]) -> list[Macro]:
    """The macros the SQL texts call, directly or through other macros, by name."""
    by_name = {m.name: m for m in macros}
    if not by_name:
        return []
    call = re.compile(r"\b(" + "|".join(re.escape(n) for n in by_name) + r")\s*\(", re.IGNORECASE)
    seen: dict[str, Macro] = {}
    todo = list(texts)
    while todo:
        for name in call.findall(todo.pop()):
            macro = by_name[name.lower()]
            if macro.name not in seen:
                seen[macro.name] = macro
                todo.append(macro.sql[_CREATE.match(macro.sql).end() :])
    return sorted(seen.values(), key=lambda m: m.name)


def fingerprint_parts(texts: list[str], macros: tuple[Macro, ...]) -> list[str]:
    """What a fingerprint of SQL texts adds for the macros they call (nothing when none)."""
    return [f"macro {m.name}:{m.sql}" for m in called(texts, macros)]


def install(con: duckdb.DuckDBPyConnection, macros: tuple[Macro, ...]) -> None:
    """Create the project's macros in the current catalog and drop the ones no file defines any
    more; nothing is written when they are installed as they are."""
    from profiler.state import get_setting, put_setting

    want = {m.name: m.sql for m in macros}
    had = json.loads(get_setting(con, SETTING) or "{}")
    if had == want:
        return
    for name in had.keys() - want.keys():
        con.execute(f"DROP MACRO IF EXISTS {quote(name)}")
    for macro in macros:
        if had.get(macro.name) == macro.sql:
            continue
        try:
            con.execute(macro.create)
        except duckdb.Error as err:
            first = str(err).splitlines()[0]
            raise ProfilerError(f"{macro.path}:{macro.line}: macro {macro.name}: {first}") from None
    put_setting(con, SETTING, json.dumps(want, sort_keys=True))
