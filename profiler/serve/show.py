"""`profiler show USER_ID`: one user's profile, grouped by dimension, readable by a person.

A column's dimension is the tag of the feature model that documents it (`-- tags: behaviour`), or,
for a column user_profile computes itself (the predictions), the tag of the model its qualifier
reads (`user_scores`: scores), so adding a feature puts it in the right group without touching
this file. After the profile: the user's newest score per model (`user_scores`), recommendations,
the audiences the user is in, and the profile's history. While a build holds the warehouse, the
serving copy is read.
"""

from __future__ import annotations

import os

from profiler.errors import ProfilerError
from profiler.settings import Settings

DIMENSIONS = ("basic", "behaviour", "preference", "rfm", "sentiment", "scores")
VALUE_WIDTH = 28  # a longer value wraps, so the columns' meanings keep their room


def column_dimensions(settings: Settings) -> dict[str, str]:
    from profiler.project import load_project

    found: dict[str, str] = {}
    models = load_project(settings.project_dir)
    # a column the basic information documents is basic (first_active_day: int_users), whatever
    # other model documents it too
    for model in sorted(models.values(), key=lambda m: "basic" not in m.tags):
        dims = [t for t in model.tags if t in DIMENSIONS]
        if not dims or model.name == "user_profile":
            continue
        for column in model.columns:
            found.setdefault(column, dims[0])
    found.update(
        user_id="basic", as_of="basic"
    )  # every feature table has them; they are the user's
    profile = models.get("user_profile")
    if profile is not None:  # columns user_profile makes itself: the dimension of what they read
        tags = {n.lower(): [t for t in m.tags if t in DIMENSIONS] for n, m in models.items()}
        for column, tables in _profile_sources(profile.sql).items():
            dims = [d for t in tables for d in tags.get(t, [])]
            if column not in found and dims:
                found[column] = dims[0]
    return found


def _profile_sources(sql: str) -> dict[str, list[str]]:
    """Each output column of user_profile's SELECT -> the tables behind its columns' qualifiers
    (`sc.p_purchase_30d` -> the subquery or CTE named `sc` -> `user_scores`), by sqlglot scope;
    names compare case-insensitively, as in DuckDB."""
    from sqlglot import exp
    from sqlglot.optimizer.scope import Scope, build_scope

    from profiler.lineage import parse

    root = build_scope(parse(sql, where="user_profile"))
    if root is None or not isinstance(root.expression, exp.Select):
        return {}

    def tables(source) -> list[str]:
        if isinstance(source, exp.Table):
            return [source.name.lower()]
        if isinstance(source, Scope):
            return [t.name.lower() for t in source.expression.find_all(exp.Table)]
        return []

    relations = {alias.lower(): tables(source) for alias, source in root.sources.items()}
    only = next(iter(relations.values())) if len(relations) == 1 else []
    out = {}
    for projection in root.expression.expressions:
        found = [
            t
            for c in projection.find_all(exp.Column)
            for t in (relations.get(c.table.lower(), []) if c.table else only)
        ]
        if found:
            out[projection.alias_or_name] = found
    return out


def show_user(settings: Settings, user_id: str, console) -> None:
    from rich.table import Table
    from rich.text import Text

    from profiler.serve.catalog import open_reader

    if not settings.warehouse.exists():
        from profiler.settings import no_warehouse

        raise ProfilerError(no_warehouse(settings))
    from profiler.ingest_values import trimmed, whole_id

    asked = user_id
    with open_reader(settings) as (con, _source):
        # the id as ingest stores it: `12001.0`, as a float column writes it, is user 12001;
        # `１２００１` (full-width) too, and an id with invisible marks (helper-70); an e-mail
        # address, its pseudonym
        (user_id,) = con.execute(
            f"SELECT coalesce({whole_id(trimmed('$1'))}, $1)", [user_id]
        ).fetchone()
        user_id = _pseudonym(settings, user_id)
        try:
            cur = con.execute("SELECT * FROM user_profile WHERE user_id = ?", [user_id])
        except Exception:
            raise ProfilerError("no user_profile table yet; run `profiler build` first") from None
        row = cur.fetchone()
        names = [d[0] for d in cur.description]  # before any other query on the connection
        # an address also finds the users registered with it (helper-45: orders keyed by
        # customer number, the address only in the users file, and `show ADDRESS` found none)
        twins = _registered_with(con, user_id) if "@" in asked else []
        if row is None and len(twins) == 1:
            user_id = twins.pop()
            row = con.execute("SELECT * FROM user_profile WHERE user_id = ?", [user_id]).fetchone()
        if row is None:
            also = f"; users registered with it: {', '.join(twins)}" if twins else ""
            # helper-80: with PROFILER_WAREHOUSE unset, the example shop's profile was read and
            # the id blamed
            raise ProfilerError(
                f"user {asked.strip()!r} is not in user_profile of {settings.warehouse}{also}"
                f"{_why_absent(con, user_id)}"
            )
        twins = [t for t in twins if t != user_id]
        history = _history(con, user_id)
        extras = _serving_parts(con, settings, user_id)
    dims = column_dimensions(settings)
    said, null = _what_each_says(settings)
    groups: dict[str, list[tuple[str, object]]] = {}
    for name, value in zip(names, row, strict=True):
        groups.setdefault(dims.get(name, "other"), []).append((name, value))
    named = f" ({asked.strip()})" if "@" in asked else ""  # the address the pseudonym stands for
    console.print(Text(f"user {user_id}{named}", style="bold"))
    if twins:  # one person, two ids: the profile does not merge them (README)
        console.print(f"  also registered with this address: user {', '.join(twins)}")
    for dim in (*DIMENSIONS, "other"):
        if dim not in groups:
            continue
        table = Table(title=dim, title_justify="left", show_header=False, box=None, pad_edge=False)
        # a NULL value's line says when the column is NULL, where its description says so
        rows = [
            (f"  {name}", _fmt(value), (value is None and null.get(name)) or said.get(name, ""))
            for name, value in groups[dim]
        ]
        # what each column means, in the room the name and the value leave (none when narrow);
        # a value longer than VALUE_WIDTH (a category path) takes its line's room for itself and
        # wraps there, so one long value does not take the meanings off every other line
        values = max((len(r[1]) for r in rows if len(r[1]) <= VALUE_WIDTH), default=0)
        room = console.width - max(len(r[0]) for r in rows) - values - 4
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for name, value, means in rows:
            if room < 24 or len(value) > values or not means:
                table.add_row(name, value)
                continue
            cut = means if len(means) <= room else means[: room - 3].rstrip() + "..."
            line = value.copy()
            line.pad_right(values + 2 - len(value))
            line.append(cut, style="dim")
            table.add_row(name, line)
        console.print(table)
    for title, (headers, rows) in extras.items():
        table = Table(title=title, title_justify="left", box=None, pad_edge=False)
        for header in headers:  # values wrap, never cut: an id or a category must read whole
            table.add_column(header, overflow="fold")
        for r in rows:
            table.add_row(*(_fmt(v) for v in r))
        if not rows:
            table.add_row("(none)", *[""] * (len(headers) - 1))
        console.print(table)
    if history:
        # how the profile moved: the first version whole, then what each change changed
        table = Table(title="history", title_justify="left", show_header=False, box=None)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        lines = _changes(*history)
        if len(lines) > HISTORY_LINES + 1:  # helper-88: 36 versions in 60 days of 4-hourly builds
            skipped = len(lines) - HISTORY_LINES - 1
            lines = [
                lines[0],
                ("...", f"{skipped} more version(s): user_profile_history holds them all"),
                *lines[-HISTORY_LINES:],
            ]
        for valid, change in lines:
            table.add_row(valid, Text(change))
        console.print(table)


HISTORY_LINES = 10  # the first version, then the newest changes up to this many


def _what_each_says(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """Each profile column's description up to its first `;`, from user_profile's header
    (helper-80: `rfm_frequency 0` beside `purchases_lifetime 3`, `top_weekday 4` and
    `purchase_cycle_days 30` needed the docs to be read right); and, for the lines whose value is
    NULL, that clause and the one saying when it is NULL (helper-98: `birth_year -` beside "year
    of birth" said nothing of why), where a later clause says it."""
    from profiler.project import load_project

    profile = load_project(settings.project_dir).get("user_profile")
    said, when_null = {}, {}
    for name, doc in profile.columns.items() if profile else ():
        first, *rest = _clauses(doc)
        said[name] = first
        null = next((c for c in rest if "NULL" in c), None)
        if null and "NULL" not in first:
            when_null[name] = f"{first}; {null}"
    return said, when_null


def _clauses(doc: str) -> list[str]:
    """A description split at each `; ` outside parentheses (helper-81: "complaints per
    purchase day (an order proxy" was cut inside one)."""
    depth, start, out = 0, 0, []
    for i, ch in enumerate(doc):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and doc.startswith("; ", i):
            out.append(doc[start:i])
            start = i + 2
    return [*out, doc[start:]]


def _changes(names: list[str], rows: list[list]) -> list[tuple[str, str]]:
    """One line per version of the tracked columns: `FROM -> TO` (`now` while current), then the
    first version's values and, for each later one, the columns that changed (`was` the old)."""
    out, before = [], None
    for valid_from, valid_to, *values in rows:
        period = f"{_fmt(valid_from)} -> {'now' if valid_to is None else _fmt(valid_to)}"
        parts = [
            f"{n} {_fmt(v)}" + ("" if before is None else f" (was {_fmt(before[i])})")
            for i, (n, v) in enumerate(zip(names, values, strict=True))
            if before is None or v != before[i]
        ]
        out.append((period, ", ".join(parts) or "no tracked change"))
        before = values
    return out


def _pseudonym(settings: Settings, user_id: str) -> str:
    """An e-mail address is stored as its pseudonym (ingest): look that up, with the same key."""
    from profiler.pii import KEY_ENV, KEY_FILE, address_of, load_pii_key, user_id_pseudonym

    if address_of(user_id) is None:
        return user_id
    if not (os.environ.get(KEY_ENV) or (settings.state_dir / KEY_FILE).exists()):
        raise ProfilerError(
            f"{user_id} is an e-mail address, stored as its pseudonym, and there is no PII key "
            f"to make it ({KEY_ENV}, or {settings.state_dir / KEY_FILE}); use the user's stored id"
        )
    return user_id_pseudonym(load_pii_key(settings), user_id)


def _why_absent(con, user_id: str) -> str:
    """Why a user is not in the profile, where the raw tables can tell: first seen after its
    as-of (helper-48: a customer registered later got no reason), never ingested, or only
    browsing on bot-like days (helper-98: no reason)."""
    found = [
        got[1][0][0]
        for table, column in (
            ("raw_events", "ts"),
            ("raw_users", "signup_ts"),
            ("raw_feedback", "ts"),
        )
        if (got := _query(con, f"SELECT min({column}) FROM {table} WHERE user_id = ?", [user_id]))
    ]
    as_of = _query(con, "SELECT max(as_of) FROM user_profile", [])
    if not found or not as_of:
        return ""  # the serving copy holds no raw tables
    seen = [t for t in found if t is not None]
    first, built = (min(seen) if seen else None), as_of[1][0][0]
    if first is None:
        return ": no event, registration or feedback of that id was ingested"
    if built is not None and first > built:
        return (
            f": first seen at {_fmt(first)}, after the profile's as-of {_fmt(built)}; a build "
            "whose as-of reaches it shows the user"
        )
    bots = _query(con, "SELECT count(*) FROM stg_bot_bursts WHERE user_id = ?", [user_id])
    if bots and bots[1][0][0]:
        later = [  # a registration or feedback before the as-of would have given it a row
            what
            for what, table in (("registration", "raw_users"), ("feedback", "raw_feedback"))
            if (got := _query(con, f"SELECT count(*) FROM {table} WHERE user_id = ?", [user_id]))
            and got[1][0][0]
        ]
        return (
            f": its events are browsing on {bots[1][0][0]} bot-like day(s), left out of the "
            "profile (stg_bot_bursts says why), and "
            + (
                f"its {' and '.join(later)} came after the profile's as-of {_fmt(built)}"
                if later
                else "it never registered or sent feedback"
            )
        )
    return ""


def _registered_with(con, pseudonym: str) -> list[str]:
    """The users whose e-mail (its pseudonym, as stored) is this address's."""
    got = _query(
        con, "SELECT user_id FROM stg_users WHERE email = ? ORDER BY 1 LIMIT 5", [pseudonym]
    )
    return [r[0] for r in got[1]] if got else []


def _query(con, sql: str, params: list) -> tuple[list[str], list[tuple]] | None:
    try:
        cur = con.execute(sql, params)
    except Exception:
        return None  # the table is not built in this project (yet)
    return [d[0] for d in cur.description], cur.fetchall()


def _serving_parts(con, settings: Settings, user_id: str) -> dict[str, tuple[list[str], list]]:
    """Model scores (newest per model up to the profile's as-of), recommendations and audiences
    of one user."""
    from profiler.serve.as_of import scores_seen
    from profiler.serve.audiences import audience_tables, user_audiences
    from profiler.serve.catalog import analyst_tables

    parts: dict[str, tuple[list[str], list]] = {}
    scores = _query(
        con,
        # the newest scores up to the profile's as-of (a build or a training --as-of ahead, data
        # since replaced: a later one describes another profile), as the docs lookup lists them
        "SELECT model, score, label, decile, as_of, model_version "
        f"FROM ({scores_seen(con)}) WHERE user_id = ? "
        "QUALIFY row_number() OVER (PARTITION BY model ORDER BY as_of DESC) = 1 ORDER BY model",
        [user_id],
    )
    if scores:
        parts["model scores"] = scores
    recs = _query(
        con,
        "SELECT rank, item_id, score, reason, category, brand FROM user_recommendations "
        "WHERE user_id = ? ORDER BY rank",
        [user_id],
    )
    if recs:
        parts["recommendations"] = recs
    names = audience_tables(analyst_tables(con, settings.project_dir))
    member = user_audiences(con, names, user_id) if names else []
    if member:  # in none: no section (an empty one says nothing and wraps its title)
        parts["audiences"] = (["audience"], [(n,) for n in member])
    return parts


def _history(con, user_id: str):
    from profiler.serve.as_of import history_seen

    try:
        # up to the profile's as-of, the version it shows open (`now`), as the docs lookup
        cur = con.execute(
            f"SELECT * FROM ({history_seen(con)}) WHERE user_id = ? ORDER BY valid_from", [user_id]
        )
    except Exception:
        return None
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    if not rows:
        return None
    keep = [n for n in names if n not in ("user_id", "valid_from", "valid_to", "is_current")]
    idx = [names.index(n) for n in ("valid_from", "valid_to", *keep)]
    return keep, [[r[i] for i in idx] for r in rows]


def _fmt(value: object):
    """A cell as plain text: values are the shop's data (`[sale] shoes` is a search, not markup)."""
    from rich.text import Text

    if value is None:
        return Text("-")
    if isinstance(value, float):
        if abs(value) < 1:  # rates, shares, probabilities: four significant digits
            return Text(f"{value:.4g}")
        # money and counts keep every whole digit and the cents, without a thousands separator
        # (1,008 reads as about one in much of the world): 2252.03, 1008
        return Text(f"{value:.2f}".rstrip("0").rstrip("."))
    return Text(str(value))
