"""Project macros: a SQL rule several models share, defined once (`macros/*.sql`).

A macro file holds DuckDB `CREATE MACRO name(arguments) AS expression` statements. Models call a
macro by name, as they call DuckDB's own functions. A build checks them (in a scratch catalog,
once per edit: the parse cache remembers) and installs them in the catalog it builds in (the
warehouse, or a point-in-time build's scratch catalog) before the first model with work runs, and a model's data fingerprint holds the text of every macro it calls (directly or through
another macro), so editing a macro rebuilds the models that call it, and only those.

A macro computes a value from its arguments: it reads no table (no subquery, no table macro), so
the lineage always sees every table a model reads, and it takes no name DuckDB's own functions
have (it would replace that function for everything in the warehouse, ingest too).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from functools import cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.sqltext import literal, quote

MACRO_DIR = "macros"
SETTING = "macros"  # `_profiler.settings`: name -> [its text, DuckDB's definition of it]
_CREATE = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?P<temp>TEMP(?:ORARY)?\s+)?(?:MACRO|FUNCTION)\s+"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.\"]*)\s*\(",
    re.IGNORECASE,
)
_SHAPE = "`CREATE MACRO name(x) AS expression`"


@dataclass(frozen=True)
class Macro:
    name: str  # lower case
    path: Path
    line: int
    sql: str  # the statement as written, without its comments
    normal: str  # the same, whitespace outside string literals collapsed: its fingerprint
    # the comment lines right above it, as one line: its description in DuckDB's catalog (what
    # an analyst's `duckdb_functions()` shows) and on the docs site; no part of its fingerprint
    doc: str = ""

    @property
    def fingerprint(self) -> str:
        """What a caller's data fingerprint holds of it: its name and normal form."""
        return f"macro {self.name}:{self.normal}"

    @property
    def installed(self) -> str:
        """What a catalog records of it: a new text or description installs it again."""
        return f"{self.sql}\n-- {self.doc}" if self.doc else self.sql

    def create_in(self, catalog: str = "") -> list[str]:
        """The statements that install it, replacing an earlier version, in the current catalog
        or the `main` schema of another (the serving copy's)."""
        found = _CREATE.match(self.sql)
        assert found is not None
        name = f"{catalog}.main.{quote(self.name)}" if catalog else quote(self.name)
        statements = [f"CREATE OR REPLACE MACRO {name}{self.sql[found.end('name') :]}"]
        if self.doc:
            statements.append(f"COMMENT ON MACRO {name} IS {literal(self.doc)}")
        return statements

    @property
    def body(self) -> str:
        """Its arguments and expression: where the macros it calls are named."""
        return self.sql[_CREATE.match(self.sql).end() :]


def _tokens(sql: str) -> list[tuple[str, object]]:
    """DuckDB's tokens of `sql` with their text (its offsets count UTF-8 bytes)."""
    raw = sql.encode()
    found = duckdb.tokenize(sql)
    ends = [offset for offset, _ in found[1:]] + [len(raw)]
    return [(raw[o:e].decode(), kind) for (o, kind), e in zip(found, ends, strict=True)]


def _texts(statement: str) -> tuple[str, str]:
    """The statement without comments (string literals kept byte for byte), and its normal form.
    A comment's token runs to the next token, so it takes the space after it along."""
    comment = duckdb.token_type.comment
    tokens = _tokens(statement)
    sql = "".join(" " if k == comment else t for t, k in tokens).strip().rstrip(";").strip()
    normal = " ".join(
        t.strip() for t, k in tokens if k != comment and t.strip() and t.strip() != ";"
    )
    return sql, normal


def _expression(body: str) -> str:
    """The expression of a macro's `args) AS expression`."""
    depth, tokens = 1, _tokens(body)
    for i, (text, kind) in enumerate(tokens):
        if kind == duckdb.token_type.operator:
            depth += text.count("(") - text.count(")")
        elif depth == 0 and kind == duckdb.token_type.keyword and text.strip().upper() == "AS":
            return "".join(t for t, _ in tokens[i + 1 :])
    return body


def _reads_a_table(body: str) -> bool:
    """A subquery in the expression, as DuckDB's parser sees it (`(SELECT ...)`, `x IN (TABLE t)`,
    `EXISTS (DESCRIBE t)`, `(FROM t)`; helper-91: a look for SELECT and FROM missed the others)."""
    with duckdb.connect() as con:
        tree = con.execute("SELECT json_serialize_sql(?)", [f"SELECT {_expression(body)}"])
        return re.search(r'"(class|type)":"SUBQUERY"', tree.fetchone()[0]) is not None


@cache
def _duckdb_functions() -> frozenset[str]:
    with duckdb.connect() as con:
        # and its keywords: `coalesce` is parsed as a form of its own, so a macro of that name
        # could never be called, while every COALESCE read as a call to it (helper-92)
        rows = con.execute(
            "SELECT lower(function_name) FROM duckdb_functions() "
            "UNION SELECT lower(keyword_name) FROM duckdb_keywords()"
        )
        return frozenset(r[0] for r in rows.fetchall())


def _parse_error(path: Path, err: duckdb.Error) -> ProfilerError:
    text = str(err).removeprefix("Parser Error: ")
    found = re.search(r"\nLINE (\d+):", text)
    return ProfilerError(
        f"{path}:{found.group(1) if found else 1}: SQL does not parse: {text.splitlines()[0]}"
    )


def load_macros(project_dir: Path) -> tuple[Macro, ...]:
    """The macros of `macros/*.sql`, each after the macros it calls; anything else is refused
    at its file and line. Read once per process while the files stay as they are."""
    paths = sorted((Path(project_dir) / MACRO_DIR).glob("*.sql"))
    return _load(tuple((p, p.stat().st_mtime_ns, p.stat().st_size) for p in paths))


@cache
def _load(files: tuple[tuple[Path, int, int], ...]) -> tuple[Macro, ...]:
    from profiler import parse_cache

    texts = [(path, path.read_text(encoding="utf-8")) for path, _, _ in files]
    entry = parse_cache.key("macros 2", duckdb.__version__, *(f"{p}\x1e{t}" for p, t in texts))
    cached = parse_cache.get(entry)  # what these files held when last read: no DuckDB parsing
    if cached is not None:
        return tuple(Macro(n, Path(p), *rest) for n, p, *rest in cached)
    macros = _parse(texts)
    with duckdb.connect() as con:  # created where nothing else is: what they call must exist
        for macro in macros:  # (helper-91: an idle build installs none, and said nothing)
            _create(con, macro)
    parse_cache.put(entry, [[m.name, str(m.path), m.line, m.sql, m.normal, m.doc] for m in macros])
    return macros


def _parse(texts: list[tuple[Path, str]]) -> tuple[Macro, ...]:
    macros: dict[str, Macro] = {}
    for path, text in texts:
        try:
            statements = duckdb.extract_statements(text)
        except duckdb.ParserException as err:
            raise _parse_error(path, err) from None
        raw, at = text.encode(), 0
        for statement in statements:
            sql, normal = _texts(statement.query)
            if not sql:
                continue
            query = statement.query.encode()
            found_at = max(raw.find(query, at), 0)
            at = found_at + len(query)
            first = next(  # the statement's first word: its line, after any comment
                (o for o, k in duckdb.tokenize(statement.query) if k != duckdb.token_type.comment),
                0,
            )
            line = raw.count(b"\n", 0, found_at + first) + 1
            macro = _checked(path, line, sql, normal, macros)
            macros[macro.name] = dataclasses.replace(macro, doc=_doc(text, line))
    return _in_order(macros)


def _said(comment: str) -> str:
    """A `--` comment line's words: a ruler's dashes (`--- name -----`, `----------`) go, a
    minus sign (`-- -1 is none`, `-- - 1`) stays."""
    dashes = len(comment) - len(comment.lstrip("-"))
    text = comment[dashes if dashes >= 3 else 2 :].strip()
    return re.sub(r"(?<=\s)-{2,}$", "", text).strip()


def _doc(text: str, line: int) -> str:
    """The `--` comment lines right above line `line` (1-based), joined: a blank line ends them,
    so a file's opening comment describes the file, not its first macro."""
    lines, said = text.splitlines()[: line - 1], []
    while lines and lines[-1].strip().startswith("--"):
        said.insert(0, _said(lines.pop().strip()))
    return " ".join(w for w in said if w)


def _checked(path: Path, line: int, sql: str, normal: str, macros: dict[str, Macro]) -> Macro:
    where = f"{path}:{line}"
    found = _CREATE.match(sql)
    if not found:
        raise ProfilerError(f"{where}: a macro file holds macros only, as {_SHAPE}")
    name = found["name"]
    if "." in name or '"' in name:
        raise ProfilerError(f"{where}: macro {name}: a plain name, without schema or quotes")
    name = name.lower()
    if found["temp"]:
        raise ProfilerError(f"{where}: macro {name}: TEMP macros live in one connection; {_SHAPE}")
    macro = Macro(name, path, line, sql, normal)
    if re.match(r"\s*[^)]*\)\s*AS\s+TABLE\b", macro.body, re.IGNORECASE) or _reads_a_table(
        macro.body
    ):
        raise ProfilerError(
            f"{where}: macro {name} reads a table; a macro computes a value from its "
            "arguments (a query over tables is a model, so the lineage sees what it reads)"
        )
    if name in _duckdb_functions():  # listed only when the files changed (parse cache)
        raise ProfilerError(
            f"{where}: macro {name} has the name of a DuckDB function or keyword, which it would "
            "replace or never be called by, in everything in the warehouse; name it otherwise"
        )
    if name in macros:
        raise ProfilerError(f"{where}: macro {name!r} is also defined in {macros[name].path}")
    return macro


def _in_order(macros: dict[str, Macro]) -> tuple[Macro, ...]:
    """Each macro after those it calls: DuckDB looks a called function up when it creates one."""
    graph = {m.name: {c.name for c in called([m.body], tuple(macros.values()), deep=False)} for m in macros.values()}  # fmt: skip
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        cycle = err.args[1]
        raise ProfilerError(
            f"{macros[cycle[0]].path}:{macros[cycle[0]].line}: macros call each other in a "
            f"cycle: {' -> '.join(cycle)}"
        ) from None
    return tuple(macros[n] for n in order)


def _calls(names) -> re.Pattern:
    """A call of one of `names`: `main.name(x)` and DuckDB's `x.name()` too (helper-91)."""
    alternatives = "|".join(re.escape(n) for n in sorted(names))
    return re.compile(rf'(?<![\w"])"?({alternatives})"?\s*\(', re.IGNORECASE)


def called(texts: list[str], macros: tuple[Macro, ...], deep: bool = True) -> list[Macro]:
    """The macros the SQL texts call (and, `deep`, those they call in turn), by name."""
    by_name = {m.name: m for m in macros}
    if not by_name:
        return []
    call = _calls(by_name)
    seen: dict[str, Macro] = {}
    todo = list(texts)
    while todo:
        for name in call.findall(todo.pop()):
            macro = by_name[name.lower()]
            if macro.name not in seen:
                seen[macro.name] = macro
                if deep:
                    todo.append(macro.body)
    return sorted(seen.values(), key=lambda m: m.name)


def fingerprint_parts(texts: list[str], macros: tuple[Macro, ...]) -> list[str]:
    """What a fingerprint of SQL texts (without comments) adds for the macros they call."""
    return [m.fingerprint for m in called(texts, macros)]


def _create(con: duckdb.DuckDBPyConnection, macro: Macro) -> None:
    try:
        for statement in macro.create_in():
            con.execute(statement)
    except duckdb.Error as err:
        first = str(err).splitlines()[0]
        raise ProfilerError(f"{macro.path}:{macro.line}: macro {macro.name}: {first}") from None


def _recorded(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """What this catalog's setting says was installed: name -> [its text, DuckDB's definition]."""
    from profiler.state import get_setting

    return json.loads(get_setting(con, SETTING) or "{}")


def edited(con: duckdb.DuckDBPyConnection, macros: tuple[Macro, ...]) -> bool:
    """Whether the files say otherwise than what this catalog last installed (one settings
    read: a build with nothing else to do installs a new or edited macro, helper-92)."""
    had = _recorded(con)
    return {n: v[0] for n, v in had.items()} != {m.name: m.installed for m in macros}


def gone_called(con: duckdb.DuckDBPyConnection, macros: tuple[Macro, ...], sql: str) -> list[str]:
    """The installed macros no file defines any more that `sql` still calls: a model calling one
    fails rather than run on the old rule (they stay installed until a build publishes)."""
    gone = _recorded(con).keys() - {m.name for m in macros}
    return sorted({n.lower() for n in _calls(gone).findall(sql)}) if gone else []


def drop_gone(con: duckdb.DuckDBPyConnection, macros: tuple[Macro, ...]) -> None:
    """Drop the installed macros no file defines any more: after a build whose models all
    published, so a view that still called one keeps working until its own edit lands
    (helper-92: the drop came first, and the failed build broke the published view)."""
    from profiler.state import put_setting

    had = _recorded(con)
    gone = had.keys() - {m.name for m in macros}
    for name in gone:
        con.execute(f"DROP MACRO IF EXISTS {quote(name)}")
    if gone:
        put_setting(con, SETTING, json.dumps({n: v for n, v in had.items() if n not in gone}))


def install(con: duckdb.DuckDBPyConnection, macros: tuple[Macro, ...]) -> None:
    """Create the project's macros in the current catalog (the ones no file defines any more go
    in `drop_gone`). Nothing is written when the catalog holds them as they are (helper-90: a
    macro dropped or replaced by hand there was trusted, and the build failed or used it)."""
    from profiler.state import put_setting

    def present() -> dict[str, str]:
        rows = con.execute(
            "SELECT lower(function_name), string_agg(macro_definition, ';' ORDER BY "
            "macro_definition) FROM duckdb_functions() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND function_type = 'macro' AND NOT internal GROUP BY 1"
        ).fetchall()
        return dict(rows)

    had = _recorded(con)
    now = present()
    want = {m.name: m.installed for m in macros}
    if all(n in had and had[n][0] == s and now.get(n) == had[n][1] for n, s in want.items()):
        return
    for macro in macros:  # in order: each after the macros it calls
        _create(con, macro)
    now = present()
    gone = {n: v for n, v in had.items() if n not in want}  # dropped once a build publishes
    put_setting(con, SETTING, json.dumps({**gone, **{n: [s, now.get(n)] for n, s in want.items()}}))
