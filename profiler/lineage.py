"""What a model's SQL reads, and the SQL rewrites the engine applies to it (sqlglot AST in, SQL out).

Dependencies come from sqlglot scopes, so CTE names, subqueries, aliases and string literals never
look like tables. The rewrites wrap a referenced relation in a filtered subquery; that is how the
engine applies the as-of time and restricts an incremental model to the slice it recomputes,
without templates in the model files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from profiler import parse_cache
from profiler.errors import ProfilerError

if TYPE_CHECKING:  # sqlglot is imported where SQL is parsed, so a warm cache never loads it
    from collections.abc import Collection

    from sqlglot import exp

DIALECT = "duckdb"
# the schemas a model may name: the project's (`main`), profiler's own state and DuckDB's catalogs
SCHEMAS = frozenset({"main", "_profiler", "information_schema", "pg_catalog"})
SLOT = "__profiler_slot_"  # a placeholder in cached rewrites (see `rewrite`)


@dataclass(frozen=True)
class TableRef:
    name: str
    line: int  # 1-based line within the SQL body


def parse(sql: str, *, where: str = "<sql>", line_offset: int = 0) -> exp.Expression:
    """Parse one statement; a syntax error names the file and line."""
    import duckdb
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:  # DuckDB's parser first: sqlglot reads `a,, b` and writes it back as valid SQL, so the
        # model built from SQL its author never wrote (helper-60)
        duckdb.extract_statements(sql)
    except duckdb.ParserException as err:
        text = str(err).removeprefix("Parser Error: ")
        # DuckDB shows the line as `LINE 2:   b * FROM t` and a caret under the place
        found = re.search(r"\n(LINE (\d+): )(.*)\n( *)\^", text)
        line = (int(found.group(2)) if found else 1) + line_offset
        # a long line is shown cut (`LINE 5: ...`), and the caret stands at a display width (a tab
        # 0, a CJK character 2): the column is then unknown (helpers 65, 67)
        shown = found.group(3) if found else ""
        whole = found and not shown.startswith("...") and shown.isascii() and "\t" not in shown
        column = f" (column {len(found.group(4)) - len(found.group(1)) + 1})" if whole else ""
        raise ProfilerError(
            f"{where}:{line}: SQL does not parse{column}: {text.splitlines()[0]}"
        ) from None
    try:
        statements = sqlglot.parse(sql, read=DIALECT)
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        line = (first.get("line") or 1) + line_offset
        near = (first.get("highlight") or "").strip()
        what = str(first.get("description", err))
        if what.startswith("Required keyword"):  # sqlglot's words for a half-written expression
            what = "something is missing there (an operand, a condition, a closing bracket?)"
        raise ProfilerError(
            f"{where}:{line}: SQL does not parse"
            # sqlglot's col is where the token ends
            + (f" near {near!r} (column {(first.get('col') or 0) - len(near) + 1})" if near else "")
            + f": {what}"
        ) from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ProfilerError(f"{where}:{line_offset + 1}: a model is exactly one SELECT statement")
    return statements[0]


def _source_tables(tree: exp.Expression) -> list[exp.Table]:
    """Table nodes that read a relation, not a CTE or a table function.

    >>> [t.name for t in _source_tables(parse("WITH a AS (SELECT 1) SELECT * FROM a, b"))]
    ['b']
    """
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    found: list[exp.Table] = []
    for scope in traverse_scope(tree):
        for source in scope.sources.values():
            if (
                isinstance(source, exp.Table)
                and source.name
                and not isinstance(source.this, exp.Func)
            ):
                found.append(source)
    # Tables inside scalar subqueries of a lateral/udtf position are covered by traverse_scope;
    # dedupe by identity because a scope may list a node twice under different aliases.
    unique = {id(t): t for t in found}
    return list(unique.values())


def _outside_project(table: exp.Table) -> bool:
    """Qualified by another database or schema than the warehouse's `main`. DuckDB's names are
    case-insensitive: `MAIN.raw_events` is the project's raw_events (helper-110: it was read
    unfiltered past the as-of, and left out of the DAG)."""
    return bool(table.catalog) or bool(table.db and table.db.lower() != "main")


def upstream_tables(sql: str, *, where: str = "<sql>", line_offset: int = 0) -> list[TableRef]:
    """The relations a SELECT reads, in order of appearance, each with the line it appears on.

    >>> [t.name for t in upstream_tables("SELECT 'raw_x' AS s FROM (SELECT * FROM b) AS sub JOIN c USING (k)")]
    ['b', 'c']
    """
    entry = parse_cache.key("lineage", line_offset, sql)
    cached = parse_cache.get(entry)
    if cached is not None:
        return [TableRef(name, line) for name, line in cached]
    refs = _upstream_tables(sql, where, line_offset)
    parse_cache.put(entry, [[r.name, r.line] for r in refs])
    return list(refs)


@lru_cache(maxsize=1024)
def _upstream_tables(sql: str, where: str, line_offset: int) -> tuple[TableRef, ...]:
    # Cached: a build asks for the lineage of the same model text many times (the DAG, the plan,
    # the model layer's fingerprints), and parsing is the expensive part of a build with no work.
    from sqlglot import exp

    tree = parse(sql, where=where, line_offset=line_offset)
    _put_output_columns(sql, tree)  # the DAG asks for them next: one parse for both
    refs: dict[str, TableRef] = {}
    for table in _source_tables(tree):
        line = table.this.meta.get("line", 1) if isinstance(table.this, exp.Identifier) else 1
        if table.catalog or (table.db or "main").lower() not in SCHEMAS:
            # `wh.main.raw_events` or `wh.raw_events` (DuckDB reads a qualifier that is no schema
            # as a database): the warehouse by its own name, read past the as-of and outside the
            # DAG (helpers 110, 113); any other database is no project's data
            raise ProfilerError(
                f"{where}:{line + line_offset}: {exp.table_name(table)} names a database; a "
                f"model reads the warehouse's tables without one ({table.name}), so that every "
                "build applies its as-of and its slice to them"
            )
        if _outside_project(table):
            continue  # an explicitly qualified relation outside the project is the author's choice
        name = table.name.lower()
        if name not in refs or line < refs[name].line:
            refs[name] = TableRef(name, line + line_offset)
    return tuple(sorted(refs.values(), key=lambda r: (r.line, r.name)))


def cross_key(
    sql: str,
    key: str,
    keyed: Collection[str],
    *,
    where: str = "<sql>",
    line_offset: int = 0,
) -> str | None:
    """The first part of an incremental_by_key model that spans keys, as `file:line: why`; None
    when there is none. A slice reads the relations `keyed` (those with the key's column) for the
    touched keys alone, so a rank, total or share over their rows would see those keys only
    (helper-116: a percent_rank over users differed for 926 of 928 Taobao users after one batch).
    Flagged, over rows read from a keyed relation: a window not partitioned by the key; an
    aggregate not grouped by it; a SELECT whose rows drop the key (the categories the touched
    users used); two keyed relations joined on other columns (the users who viewed my items); a
    LIMIT or OFFSET (the 100 most active users); and a DISTINCT ON without the key (each item's
    first viewer). A subquery correlated on the key is key-local; rows of other relations (a
    rank of items, read whole) pass.

    >>> cross_key("SELECT u, rank() OVER (ORDER BY n) FROM t", "u", {"t"}) is not None
    True
    >>> cross_key("SELECT u, lag(n) OVER (PARTITION BY t.u ORDER BY d) FROM t", "u", {"t"})
    >>> cross_key("SELECT i, rank() OVER (ORDER BY price) FROM items", "u", {"t"})
    >>> cross_key("SELECT u, n / (SELECT sum(n) FROM t) FROM t", "u", {"t"}) is not None
    True
    >>> cross_key("SELECT a.u FROM t AS a JOIN t AS b ON a.i = b.i", "u", {"t"}) is not None
    True
    """
    entry = parse_cache.key("across", line_offset, sql)
    found = parse_cache.get(entry)
    if found is None:
        found = _spans(sql, where, line_offset)
        parse_cache.put(entry, found)
    key, keyed = key.lower(), set(keyed)
    said = [_across(span, key, keyed) for span in found["spans"]]
    said += [_keyless(scope, key, keyed) for scope in found["scopes"]]
    said += [_joined(scope, key, keyed) for scope in found["scopes"]]
    said += [_limited(scope, key, keyed) for scope in found["scopes"]]
    said += [_distinct_on(scope, key, keyed) for scope in found["scopes"]]
    found_at = [s for s in said if s]
    if not found_at:
        return None
    line, what, how = min(found_at, key=lambda s: s[0])
    return (
        f"{where}:{line}: {what}; an incremental_by_key build reads only the rows of the {key} "
        f"values new data touched, so it would differ from a full build. {how}, or make the "
        "model a `table`"
    )


def _across(span: list, key: str, keyed: set[str]) -> tuple | None:
    """A window not partitioned by the key, or an aggregate not grouped by it, over keyed rows."""
    line, function, window, columns, constructs, reads, correlated = span
    if key in columns or any(all(key in c for c in choices) for choices in constructs):
        return None  # partitioned or grouped by the key
    if key in correlated or keyed.isdisjoint(reads):
        return None  # a subquery correlated on the key, or rows the slice does not filter
    how = (
        ("window is not partitioned", "Partition") if window else ("SELECT is not grouped", "Group")
    )
    return (
        line,
        f"{function} is computed across {key} values (its {how[0]} by {key})",
        f"{how[1]} it by {key}",
    )


def _key_names(plain: list, star: bool, key: str) -> set[str]:
    """The names a relation gives its key under: `user_id AS u` gives u, and a column named as
    the key (`lower(user_id) AS user_id`) is taken as it."""
    return {out for column, out in plain if key in (column, out)} | ({key} if star else set())


def _slice_read(scope: dict, key: str, keyed: set[str]) -> str | None:
    """The first keyed relation a SELECT reads rows of, which a slice holds for the touched keys
    alone; None when it reads none, or is a subquery correlated on the key (one key's rows)."""
    read = sorted(keyed.intersection(scope["reads"]))
    return read[0] if read and key not in scope["correlated"] else None


def _keyless(scope: dict, key: str, keyed: set[str]) -> tuple | None:
    """A SELECT whose rows of keyed relations drop the key: what it gives (`SELECT DISTINCT
    category`, each user's last purchased item grouped by the key) is made of the touched keys'
    rows."""
    read = _slice_read(scope, key, keyed)
    if read is None or _key_names(scope["plain"], scope["star"], key):
        return None
    what = f"a SELECT reads rows of {read} without their {key}"
    return scope["line"], what, f"Keep {key} in what it gives"


def _limited(scope: dict, key: str, keyed: set[str]) -> tuple | None:
    """A LIMIT or OFFSET over keyed rows (the 100 most active users): it picks among the touched
    keys' rows alone, unless a subquery correlated on the key reads one key's rows."""
    read = _slice_read(scope, key, keyed)
    if not scope["limit"] or read is None:
        return None
    what = f"a LIMIT picks among the rows of {read} of all {key} values"
    return scope["limit"], what, f"Limit each {key}'s rows (QUALIFY ... PARTITION BY {key})"


def _distinct_on(scope: dict, key: str, keyed: set[str]) -> tuple | None:
    """A DISTINCT ON without the key over keyed rows: one row per item (its first viewer) is
    chosen among the touched keys' rows alone."""
    read = _slice_read(scope, key, keyed)
    if not scope["distinct_on"] or read is None or key in scope["distinct_on"][1]:
        return None
    line = scope["distinct_on"][0]
    what = f"DISTINCT ON picks one row of {read} across {key} values"
    return line, what, f"Put {key} in it"


def _joined(scope: dict, key: str, keyed: set[str]) -> tuple | None:
    """Two keyed relations of one SELECT joined on other columns than the key: each row of one
    meets rows of other keys of the other, and a slice holds the touched keys' rows alone."""
    named: dict[str, set[str]] = {}  # alias -> the names its key column has there
    lines: dict[str, int] = {}
    for alias, line, table, plain, star, reads in scope["sources"]:
        if table is not None and table in keyed:
            named[alias], lines[alias] = {key}, line
        elif table is None and not keyed.isdisjoint(reads) and _key_names(plain, star, key):
            named[alias], lines[alias] = _key_names(plain, star, key), line
    if len(named) < 2:
        return None
    group = {alias: alias for alias in named}

    def root(alias: str) -> str:
        while group[alias] != alias:
            alias = group[alias]
        return alias

    for left, left_column, right, right_column in scope["equal"]:
        if left_column in named.get(left, ()) and right_column in named.get(right, ()):
            group[root(left)] = root(right)
    for alias, columns, earlier in scope["using"]:
        if (key in columns or columns == ["*"]) and key in named.get(alias, ()):
            for other in earlier:
                if key in named.get(other, ()):
                    group[root(alias)] = root(other)
    first, *others = named
    for alias in others:
        if root(alias) != root(first):
            what = f"{alias} is joined to {first} on other columns than {key}"
            return lines[alias], what, f"Join it on {key} too"
    return None


def _spans(sql: str, where: str, line_offset: int) -> dict:
    """What `cross_key` judges, none of it depending on the key (so it can be cached):
    "spans", [line, function, is a window, the columns it is partitioned or grouped by, the
    grouping constructs (`_grouping`), the tables its rows are read from, the outer columns a
    correlated subquery is bound to (`_correlated_on`)] of each window and each aggregating
    SELECT of the SQL (named windows by their definition: `OVER w` itself partitions nothing);
    and "scopes", per SELECT: its line, the tables its rows are read from, its correlated
    columns, the line of its LIMIT or OFFSET (0 without), its DISTINCT ON's line and columns,
    what it gives ("plain": `_plain`) and whether it gives `*`, its sources ([alias, line, table
    or None, and for a subquery its plain, star and reads]), and the columns its joins equate
    ("equal": [alias, column, alias, column]; "using": [alias, columns, the aliases before
    it])."""
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    scopes = traverse_scope(parse(sql, where=where, line_offset=line_offset))
    reads: dict[int, list[str]] = {}
    gives: dict[int, tuple[list, bool]] = {}  # plain, star
    for scope in scopes:  # inner scopes first
        names = set()
        for _, source in _read_sources(scope).values():
            if isinstance(source, exp.Table):
                names.add(source.name.lower())
            else:
                names.update(reads.get(id(source), ()))
        for inner in [*scope.subquery_scopes, *scope.set_operation_scopes, *scope.udtf_scopes]:
            names.update(reads.get(id(inner), ()))
        reads[id(scope)] = sorted(names)
        if isinstance(scope.expression, exp.Select):
            gives[id(scope)] = _plain(scope.expression)
        elif scope.set_operation_scopes:  # a UNION's columns are its first SELECT's
            gives[id(scope)] = gives.get(id(scope.set_operation_scopes[0]), ([], True))

    def line_of(node: exp.Expression) -> int:
        # any node's: `count(*) OVER ()` names no identifier (it was said at the SQL's line 1)
        return (
            min((n.meta["line"] for n in node.walk() if "line" in n.meta), default=1) + line_offset
        )

    out: list[list] = []
    selects: list[dict] = []
    for scope in scopes:
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        correlated = _correlated_on(scope) if scope.is_correlated_subquery else []
        for window in select.find_all(exp.Window):
            if window.find_ancestor(exp.Select) is not select:
                continue
            if not window.args.get("partition_by") and window.args.get("alias"):
                continue  # `OVER w`: the definition `WINDOW w AS (...)` is checked itself
            if isinstance(window.this, exp.Identifier):  # WINDOW w AS (...)
                name = f"window {window.this.name}"
            else:
                name = window.this.sql(dialect=DIALECT).split("(")[0] + "()"
            partition = _key_columns(window.args.get("partition_by") or [])
            out.append([line_of(window), name, True, partition, [], reads[id(scope)], correlated])
        aggregates = [
            a
            for a in select.find_all(exp.AggFunc)
            if a.find_ancestor(exp.Select) is select and not _windowed(a)
        ]
        if aggregates:
            first = min(aggregates, key=line_of)
            name = first.sql(dialect=DIALECT).split("(")[0] + "()"
            out.append(
                [line_of(first), name, False, *_grouping(select), reads[id(scope)], correlated]
            )
        sources = []
        for alias, (node, source) in _read_sources(scope).items():
            if isinstance(source, exp.Table):
                sources.append([alias.lower(), line_of(node), source.name.lower(), [], False, []])
            elif id(source) in gives:
                plain, star = gives[id(source)]
                sources.append([alias.lower(), line_of(node), None, plain, star, reads[id(source)]])
        plain, star = gives[id(scope)]
        limit = _limit(select)
        on = select.args["distinct"].args.get("on") if select.args.get("distinct") else None
        if scope.is_subquery and not isinstance(select.parent.parent, (exp.In, exp.Any, exp.All)):
            plain, star = [], False  # EXISTS (SELECT * ...), a scalar: no key reaches the outer row
        selects.append(
            {
                "line": line_of(select.expressions[0]) if select.expressions else line_of(select),
                "reads": reads[id(scope)],
                "correlated": correlated,
                "plain": plain,
                "star": star,
                "limit": line_of(limit) if limit else 0,
                "distinct_on": [line_of(on), _key_columns(on.expressions)] if on else [],
                "sources": sources,
                **_joins(select),
            }
        )
    return {"spans": sorted(out, key=lambda row: row[0]), "scopes": selects}


def _read_sources(scope) -> dict:
    """A scope's sources in FROM and its joins, as sqlglot's `selected_sources`, with the right side
    of a SEMI or ANTI join, which that leaves out (its columns are seen in the join's ON alone)."""
    return {
        name: (node, scope.sources[name])
        for name, node in scope.references
        if name in scope.sources
    }


def _limit(select: exp.Select) -> exp.Expression | None:
    """The LIMIT or OFFSET of a SELECT, or of the UNION (INTERSECT, EXCEPT) it is a part of."""
    from sqlglot import exp

    node = select
    while not (node.args.get("limit") or node.args.get("offset")):
        if not isinstance(node.parent, exp.SetOperation):
            return None
        node = node.parent
    return node.args.get("limit") or node.args.get("offset")


def _plain(select: exp.Select) -> tuple[list, bool]:
    """What a SELECT gives, as [the column it is (or casts; "" for another expression), name],
    and whether it gives `*` (or `t.*`)."""
    from sqlglot import exp

    plain, star = [], False
    for projection in select.expressions:
        inner = projection.unalias()
        inner = inner.this if isinstance(inner, (exp.Cast, exp.TryCast)) else inner
        if isinstance(inner, exp.Star) or (isinstance(inner, exp.Column) and inner.is_star):
            star = True
        else:
            column = inner.name.lower() if isinstance(inner, exp.Column) else ""
            plain.append([column, projection.alias_or_name.lower()])
    return plain, star


def _equated(select: exp.Select) -> list[tuple[exp.Column, exp.Column]]:
    """The qualified column pairs a SELECT's ON and WHERE conditions equate, each in a condition
    that must hold (`a.u = b.u AND ...`; one side of an OR binds nothing)."""
    from sqlglot import exp

    def column(e: exp.Expression) -> exp.Column | None:
        e = e.this if isinstance(e, (exp.Cast, exp.TryCast)) else e
        return e if isinstance(e, exp.Column) and e.table else None

    def conjuncts(e: exp.Expression):
        e = e.unnest()
        if isinstance(e, exp.And):
            yield from conjuncts(e.left)
            yield from conjuncts(e.right)
        else:
            yield e

    conditions = [j.args.get("on") for j in select.args.get("joins") or []]
    where = select.args.get("where")
    conditions.append(where.this if where else None)
    pairs = []
    for condition in filter(None, conditions):
        for eq in conjuncts(condition):
            if isinstance(eq, (exp.EQ, exp.NullSafeEQ)):
                left, right = column(eq.left), column(eq.right)
                if left and right:
                    pairs.append((left, right))
    return pairs


def _correlated_on(scope) -> list[str]:
    """The outer columns a correlated subquery equates with its own column of that name
    (`f.user_id = e.user_id`): it reads the outer row's value's rows alone. Another reference
    (`f.user_id <> e.user_id`: the other users) binds nothing."""
    outer = {id(c) for c in scope.external_columns}
    return sorted(
        {
            left.name.lower()
            for left, right in _equated(scope.expression)
            if (id(left) in outer) != (id(right) in outer)
            and left.name.lower() == right.name.lower()
        }
    )


def _joins(select: exp.Select) -> dict:
    """The column pairs a SELECT's ON and WHERE equate, and its joins' USING columns (`*` for a
    NATURAL join)."""
    equal = [
        [left.table.lower(), left.name.lower(), right.table.lower(), right.name.lower()]
        for left, right in _equated(select)
    ]
    using, earlier = [], []
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is not None:
        earlier.append(from_.this.alias_or_name.lower())
    for join in select.args.get("joins") or []:
        alias = join.this.alias_or_name.lower()
        columns = [c.name.lower() for c in join.args.get("using") or []]
        if join.args.get("method") == "NATURAL":
            columns = ["*"]  # every column of one name on both sides
        if columns:
            using.append([alias, columns, list(earlier)])
        earlier.append(alias)
    return {"equal": equal, "using": using}


def _windowed(agg: exp.Expression) -> bool:
    """`sum(x) OVER (...)`, `count(*) FILTER (WHERE ...) OVER (...)`: a window, not an aggregate."""
    from sqlglot import exp

    parent = agg.parent
    while isinstance(parent, (exp.Filter, exp.IgnoreNulls, exp.RespectNulls)):
        parent = parent.parent
    return isinstance(parent, exp.Window)


def _key_columns(expressions: list) -> list[str]:
    """The columns among `expressions` that are a column itself (or cast): `substr(user_id, 1, 3)`
    or `user_id IS NULL` names it and still spans other keys' rows."""
    from sqlglot import exp

    unwrapped = (e.this if isinstance(e, (exp.Cast, exp.TryCast)) else e for e in expressions)
    return sorted({e.name.lower() for e in unwrapped if isinstance(e, exp.Column)})


def _grouping(select: exp.Select) -> list:
    """[columns, constructs]: the columns a SELECT's aggregates are always computed per (none
    without GROUP BY), and for each GROUPING SETS, ROLLUP or CUBE the column sets it adds, one of
    which joins them in each grouping (a ROLLUP's or CUBE's grand total adds none). A position, or
    an alias of a column, stands for that column; GROUP BY ALL for every plain one."""
    from sqlglot import exp

    group = select.args.get("group")
    if not group:
        return [[], []]
    projections = [p.unalias() for p in select.expressions]
    aliases = {p.alias.lower(): p.unalias() for p in select.expressions if p.alias}

    def columns(expressions) -> list[str]:
        resolved = []
        for e in expressions:
            if isinstance(e, exp.Literal) and e.is_int and 0 < int(e.name) <= len(projections):
                e = projections[int(e.name) - 1]
            elif isinstance(e, exp.Column) and not e.table and e.name.lower() in aliases:
                # an alias of a column (DuckDB takes a source column of the name first: an
                # expression aliased as one keeps it)
                alias = aliases[e.name.lower()]
                e = alias if _key_columns([alias]) else e
            resolved.append(e)
        return _key_columns(resolved)

    sets = (exp.GroupingSets, exp.Rollup, exp.Cube)
    if group.args.get("all"):
        plain = [p for p in projections if not p.find(exp.AggFunc)]
    else:
        plain = [e for e in group.expressions if not isinstance(e, sets)]
    constructs = []
    for e in group.expressions:
        if isinstance(e, exp.GroupingSets):  # `(a)` is a column in brackets, `(a, b)` a tuple
            items = [s.unnest() for s in e.expressions]
            constructs.append(
                [columns(i.expressions if isinstance(i, exp.Tuple) else [i]) for i in items]
            )
        elif isinstance(e, (exp.Rollup, exp.Cube)):
            constructs.append([[], columns(e.expressions)])
    return [columns(plain), constructs]


def output_columns(sql: str) -> list[str] | None:
    """The names of the columns a model's SELECT gives (lower case); None when it selects `*`."""
    found = parse_cache.get(parse_cache.key("columns", sql))
    return (found or _put_output_columns(sql, parse(sql)))["names"]


def _put_output_columns(sql: str, tree: exp.Query) -> dict:
    names = [n.lower() for n in tree.named_selects]
    found = {"names": None if "*" in names else names}
    parse_cache.put(parse_cache.key("columns", sql), found)
    return found


@lru_cache(maxsize=1024)
def normalized_sql(sql: str) -> str:
    """The SQL without comments or formatting, so cosmetic edits do not force a rebuild."""
    entry = parse_cache.key("normalized", sql)
    cached = parse_cache.get(entry)
    if cached is not None:
        return cached
    try:
        normal = parse(sql).sql(dialect=DIALECT, comments=False)
    except ProfilerError:
        normal = " ".join(sql.split())
    parse_cache.put(entry, normal)
    return normal


def rewrite(
    sql: str,
    *,
    inline: dict[str, str] | None = None,
    predicates: dict[str, list[str]] | None = None,
    replace: dict[str, str] | None = None,
) -> str:
    """The engine's three rewrites of a model, in one parse: the SQL a build runs.

    Each reference to a relation in `inline` becomes that SELECT (an ephemeral model), rewritten
    the same way itself; one in `replace` becomes that SELECT as is (the as-of time); one with
    `predicates` is read through `WHERE` all of them. Subqueries keep the reference's alias (or its
    name), so the rest of the query is untouched.

    >>> rewrite("SELECT * FROM e JOIN t USING (k)", inline={"e": "SELECT * FROM raw_events"}, predicates={"raw_events": ["ts <= 5"]})
    'SELECT * FROM (SELECT * FROM (SELECT * FROM raw_events WHERE (ts <= 5)) AS raw_events) AS e JOIN t USING (k)'
    """
    inline = {k.lower(): v for k, v in (inline or {}).items()}
    replace = {k.lower(): v for k, v in (replace or {}).items()}
    conditions = {
        k.lower(): " AND ".join(f"({p})" for p in preds)
        for k, preds in (predicates or {}).items()
        if preds
    }
    if not (inline or replace or conditions):
        return sql
    values = [*conditions.values(), *replace.values()]
    if any(SLOT in text for text in [sql, *inline.values(), *values]):
        return _rewrite_directly(sql, inline, replace, conditions)  # slots could be confused
    # The values (as-of time, slice bounds, key tables) change with every build, the shape of the
    # rewrite only with the model: rewrite once with numbered slots for the values, keep that text
    # in the parse cache, and fill the slots in. A build with a warm cache never loads sqlglot.
    names = sorted({*conditions, *replace})
    entry = parse_cache.key(
        "rewrite", sql, sorted(inline.items()), sorted(conditions), sorted(replace)
    )
    template = parse_cache.get(entry)
    if template is None:
        slot = {name: f"{SLOT}{i}__" for i, name in enumerate(names)}
        template = _rewrite_tree(
            parse(sql),
            inline,
            {k: f"SELECT * FROM {slot[k]}" for k in replace},
            {k: f"SELECT * FROM {k} WHERE {slot[k]}" for k in conditions},
        ).sql(dialect=DIALECT)
        parse_cache.put(entry, template)

    def fill(match: re.Match) -> str:
        prefix, name = match.group(1) or "", names[int(match.group(2))]
        if name not in replace:
            return prefix + conditions[name]
        if not prefix:
            raise ValueError(name)  # not rendered as expected: do it the slow way
        return replace[name]

    try:  # one pass, so a filled-in value is never searched for slots again
        return re.sub(rf"(SELECT \* FROM )?{SLOT}(\d+)__", fill, template)
    except ValueError:
        return _rewrite_directly(sql, inline, replace, conditions)


def _rewrite_directly(
    sql: str, inline: dict[str, str], replace: dict[str, str], conditions: dict[str, str]
) -> str:
    filters = {k: f"SELECT * FROM {k} WHERE {c}" for k, c in conditions.items()}
    return _rewrite_tree(parse(sql), inline, replace, filters).sql(dialect=DIALECT)


def _rewrite_tree(
    tree: exp.Expression, inline: dict[str, str], replace: dict[str, str], filters: dict[str, str]
) -> exp.Expression:
    import sqlglot
    from sqlglot import exp

    # the tables are listed before any replacement, so the new subqueries stay as given
    for table in _source_tables(tree):
        name = table.name.lower()
        if _outside_project(table):
            continue
        if name in inline:
            inner = _rewrite_tree(parse(inline[name]), inline, replace, filters)
        elif name in replace or name in filters:
            inner = sqlglot.parse_one(replace.get(name) or filters[name], read=DIALECT)
        else:
            continue
        alias = table.alias or table.name
        table.replace(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return tree
