"""kind: scd2. Type 2 history of a model's tracked columns, stamped with the build's as-of.

The SELECT gives the current state (one row per key). Publishing closes the open row of every key
whose tracked columns changed or that disappeared (valid_to = as-of) and opens a row for every key
without an open row. The history records builds, so unlike every other kind it is not rebuilt
from scratch by --full-refresh, and a change to its SQL keeps it, as a dbt snapshot does: new
columns are added (NULL on earlier versions, filled on the open ones when untracked), dropped ones
stay, a type every earlier value casts to is taken and one the new values fit in is kept; only a
new key or a type change lossy both ways starts a new history, the old one set aside in
`_profiler`, and the build says so.

A build at an as-of the history has already passed or reached replaces what was recorded from
that as-of on: the rows opened at or after it are removed and the rows closed at or after it
reopened, then the current state is merged. So late data at an unchanged as-of never leaves a row
valid for zero time, and the history is the same as if only the last build at that as-of had run.
Changes stamped after the newest data they were built from (a build --as-of in the future) are
taken back by the next build that merges when data for that stretch has arrived since or its as-of
is earlier (`Plan.rewind_after`, decided in `build`; a day's build at 23:59:59 stays), and so are
those stamped after a load `ingest --replace` took out; a look at the past is skipped and leaves
the history as it is.
"""

from __future__ import annotations

import duckdb

from profiler.materialize import STAGE_PREFIX, Staged, quote, relation_type
from profiler.plan import IN_HISTORY, BuildContext, Plan, ts_literal
from profiler.project import Model
from profiler.state import clear_history_mark

STAMPS = ("valid_from", "valid_to", "is_current")


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return {name: kind for name, kind, *_ in con.execute(f"DESCRIBE {relation}").fetchall()}


def _loses(con, relation: str, column: str, old: str, new: str) -> bool:
    """Whether some value of `column` (of type `old`) does not survive a cast to `new` and back."""
    c = quote(column)
    return bool(
        con.execute(
            f"SELECT count(*) FROM {relation} WHERE {c} IS NOT NULL AND (TRY_CAST({c} AS {new}) "
            f"IS NULL OR TRY_CAST(TRY_CAST({c} AS {new}) AS {old}) IS DISTINCT FROM {c})"
        ).fetchone()[0]
    )


def _kept(
    con, model: Model, staging: str
) -> tuple[list[tuple[str, str]], str | None, list[tuple[str, str]]]:
    """A rebuilt history (its SQL changed) keeps its versions, as a dbt snapshot does: returns
    the columns to add (NULL on earlier versions), why it cannot (a new history starts), and the
    columns whose type changes to one every old value casts to (INTEGER -> BIGINT). A column the
    SQL no longer gives stays, NULL from now on; a column whose new values fit its old type keeps
    it (DOUBLE -> INTEGER)."""
    if relation_type(con, model.name) is None:
        return [], "no history yet", []
    have, new = _columns(con, quote(model.name)), _columns(con, quote(staging))
    if any(s not in have for s in STAMPS):
        return [], f"{model.name} was no history before (kind changed)", []
    if any(k not in have for k in model.unique_key):
        return [], f"its key {', '.join(model.unique_key)} is new", []
    retyped, keep_old = [], []
    for c, t in [(c, t) for c, t in new.items() if c in have and have[c] != t]:
        if not _loses(con, quote(model.name), c, have[c], t):
            retyped.append((c, t))  # every earlier value casts: the column takes the new type
        elif not _loses(con, quote(staging), c, t, have[c]):
            keep_old.append((c, have[c]))  # the new values fit the old type (DOUBLE -> INTEGER)
        else:
            return [], f"{c} changed type ({have[c]} -> {t}) both ways lossy", []
    for c, t in keep_old:  # staged in the history's type, so they compare and insert alike
        con.execute(f"ALTER TABLE {quote(staging)} ALTER COLUMN {quote(c)} TYPE {t}")
    return [(c, t) for c, t in new.items() if c not in have], None, retyped


def stage(
    con: duckdb.DuckDBPyConnection, model: Model, sql: str, plan: Plan, ctx: BuildContext
) -> Staged:
    staging = STAGE_PREFIX + model.name
    con.execute(f"CREATE OR REPLACE TABLE {quote(staging)} AS {sql}")
    rows = con.execute(f"SELECT count(*) FROM {quote(staging)}").fetchone()[0]
    added, anew, retyped = _kept(con, model, staging)
    messages = []
    if plan.reason.endswith(IN_HISTORY) and anew is None:
        messages.append(
            f"{model.name}: {plan.reason.removesuffix(IN_HISTORY)}; earlier versions kept"
            + (
                f", new column(s) {', '.join(c for c, _ in added)} NULL on them (filled on the "
                "open versions when untracked)"
                if added
                else ""
            )
        )
    aside = f"{model.name}_before_{ctx.as_of:%Y%m%d%H%M%S}"
    # a second new history at the same as-of (a key edited, then edited back) sets its old one
    # aside beside the first, never over it (helper-100: the history of many builds was replaced
    # by the one-build history of the mistaken edit)
    base, n = aside, 1
    while anew is not None and relation_type(con, aside, "_profiler"):
        n += 1
        aside = f"{base}_{n}"
    if anew is not None and anew != "no history yet":
        messages.append(
            f"{model.name}: a new history starts: {anew}; the old one is kept as _profiler.{aside}"
        )
    elif added and not plan.reason.endswith(IN_HISTORY):  # a history from before a column
        messages.append(f"{model.name}: new column(s) {', '.join(c for c, _ in added)}")
    if retyped and anew is None:
        messages.append(
            f"{model.name}: "
            + ", ".join(f"{c} is {t} now" for c, t in retyped)
            + " (earlier versions' values cast)"
        )
    target, stg, as_of = quote(model.name), quote(staging), ts_literal(ctx.as_of)
    keys = [quote(k) for k in model.unique_key]
    on = " AND ".join(f"h.{k} = s.{k}" for k in keys)
    changed = " OR ".join(
        f"h.{quote(c)} IS DISTINCT FROM s.{quote(c)}" for c in model.track_columns
    )

    def apply(c: duckdb.DuckDBPyConnection) -> None:
        # a replaced load's mark goes in the merge's own transaction (helper-104: cleared after
        # the publish, a stop in between kept it, and the next build took back what this recorded)
        clear_history_mark(c, model.name)
        if anew is not None or relation_type(c, model.name) is None:
            if anew is not None and anew != "no history yet":  # never dropped: set aside
                c.execute(f"CREATE TABLE _profiler.{quote(aside)} AS FROM {target}")
            c.execute(f"DROP TABLE IF EXISTS {target}")
            c.execute(
                f"CREATE TABLE {target} AS SELECT *, {as_of} AS valid_from, "
                f"CAST(NULL AS TIMESTAMP) AS valid_to, TRUE AS is_current FROM {stg}"
            )
            return
        for column, kind in retyped:
            c.execute(f"ALTER TABLE {target} ALTER COLUMN {quote(column)} TYPE {kind}")
        for column, kind in added:
            c.execute(f"ALTER TABLE {target} ADD COLUMN {quote(column)} {kind}")
        # what moved since the last recorded state, said under the build line ("out" there is
        # the current state's rows; helper-86: counts of rows rewritten said 4,504 "opened" when
        # a rebuild at the same as-of changed nothing)
        first_key = quote(model.unique_key[0])
        (new, moved) = c.execute(
            f"SELECT count(*) FILTER (WHERE h.{first_key} IS NULL), "
            f"count(*) FILTER (WHERE h.{first_key} IS NOT NULL AND ({changed})) "
            f"FROM {stg} AS s LEFT JOIN {target} AS h ON h.is_current AND {on}"
        ).fetchone()
        (gone,) = c.execute(
            f"SELECT count(*) FROM {target} AS h WHERE h.is_current "
            f"AND NOT EXISTS (SELECT 1 FROM {stg} AS s WHERE {on})"
        ).fetchone()
        # rewind to this as-of, and past anything stamped ahead of its data
        ahead = f" OR {{0}} > {ts_literal(plan.rewind_after)}" if plan.rewind_after else ""
        c.execute(f"DELETE FROM {target} WHERE valid_from >= {as_of}{ahead.format('valid_from')}")
        c.execute(
            f"UPDATE {target} SET valid_to = NULL, is_current = TRUE "
            f"WHERE valid_to >= {as_of}{ahead.format('valid_to')}"
        )
        c.execute(
            f"UPDATE {target} AS h SET valid_to = {as_of}, is_current = FALSE "
            f"WHERE h.is_current AND NOT EXISTS (SELECT 1 FROM {stg} AS s WHERE {on} AND NOT ({changed}))"
        )
        c.execute(
            f"INSERT INTO {target} BY NAME SELECT s.*, {as_of} AS valid_from, "
            f"CAST(NULL AS TIMESTAMP) AS valid_to, TRUE AS is_current FROM {stg} AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS h WHERE h.is_current AND {on})"
        )
        messages.append(
            f"{model.name}: {moved:,} changed, {new:,} new, {gone:,} gone since the last version"
        )
        if ctx.edited and (moved or new or gone):
            names = sorted(ctx.edited)
            messages.append(
                f"note: the SQL of {', '.join(names[:3])}{' and more' if len(names) > 3 else ''} "
                "changed since the last version: a change recorded now may be the new SQL's, "
                "not the user's"
            )
        untracked = [name for name, _ in added if name not in model.track_columns]
        if untracked:  # the open versions are the current state: they show it (helper-31)
            sets = ", ".join(f"{quote(n)} = s.{quote(n)}" for n in untracked)
            c.execute(
                f"UPDATE {target} AS h SET {sets} FROM {stg} AS s WHERE h.is_current AND {on}"
            )

    return Staged(
        model,
        plan,
        staging,
        rows,
        apply,
        cleanup=[f"DROP TABLE IF EXISTS {stg}"],
        messages=messages,
    )
