"""What the docs site shows, read from the warehouse (or its serving copy) into plain data.

Every reader tolerates a missing table: a project that has not trained a model or run a gate yet
still gets a site, with those sections saying so.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from profiler.serve.as_of import history_seen, scores_seen
from profiler.serve.catalog import LATEST_VALIDATIONS
from profiler.sqltext import quote as _q
from profiler.state import has_table

PROFILE = "user_profile"
HISTORY = "user_profile_history"
RECOMMENDATIONS = "user_recommendations"
LOOKUP_CAP = 50_000  # users embedded in the profile lookup
SHARD_USERS = 1_000  # users per file the lookup loads
MAX_PERIODS = 60  # history snapshots drawn per distribution
MAX_CATEGORIES = 12  # tracked columns with more distinct values are not drawn
DIMENSION_ORDER = ("basic", "behaviour", "preference", "rfm", "sentiment", "scores")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    try:
        cur = con.execute(sql, params or [])
    except duckdb.Error:
        return []
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def model_states(con) -> dict[str, dict]:
    states = {r["name"]: r for r in _rows(con, "SELECT * FROM _profiler.models")}
    # a history's state counts its current rows (what a build merged): the site shows the table's
    # (helper-70: 5,000 rows said of a history of 8,239)
    tables = {r["table_name"] for r in _rows(con, "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'")}  # fmt: skip
    for name, state in states.items():
        if state["kind"] == "scd2" and name in tables:
            state["rows"] = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
    return states


def column_types(con) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for r in _rows(
        con,
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = 'main' "
        "ORDER BY table_name, ordinal_position",
    ):
        out.setdefault(r["table_name"], []).append((r["column_name"], r["data_type"]))
    return out


def latest_run(con) -> dict | None:
    rows = _rows(con, "SELECT * FROM _profiler.runs ORDER BY finished_at DESC LIMIT 1")
    return rows[0] if rows else None


def read_suites(project_dir: Path) -> dict[str, dict]:
    """`expectations/<table>.json`, as plain JSON (the docs never need Great Expectations)."""
    out = {}
    for path in sorted((Path(project_dir) / "expectations").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("expectations"), list):
            out[path.stem] = {"path": path, **data}
    return out


def latest_validations(con) -> dict[str, list[dict]]:
    """Per table, the results of the newest run that validated it."""
    rows = _rows(con, f"{LATEST_VALIDATIONS} ORDER BY table_name, expectation")
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["table_name"], []).append(r)
    return out


def model_runs(con) -> list[dict]:
    """Trained classifier versions, newest first per model, with their JSON columns parsed."""
    rows = _rows(
        con,
        "SELECT * FROM _profiler.model_runs WHERE model <> 'user_recommendations' "
        "ORDER BY model, as_of DESC",
    )
    for r in rows:
        for key in ("calibration", "importances", "metrics"):
            r[key] = json.loads(r[key]) if isinstance(r.get(key), str) else (r.get(key) or {})
    return rows


def distributions(con, columns: tuple[str, ...]) -> dict[str, dict]:
    """Per tracked column of the history: counts per value at each build's as-of (newest 60)."""
    if not has_table(con, HISTORY):
        return {}
    present = {c for c, _ in column_types(con).get(HISTORY, [])}
    out = {}
    for column in columns:
        if column not in present:
            continue
        distinct = con.execute(f"SELECT count(DISTINCT {_q(column)}) FROM {HISTORY}").fetchone()[0]
        if distinct > MAX_CATEGORIES:
            continue
        rows = con.execute(
            f"""WITH periods AS (
                SELECT DISTINCT valid_from AS period FROM {HISTORY} ORDER BY period DESC LIMIT {MAX_PERIODS}
            )
            SELECT CAST(p.period AS VARCHAR), coalesce(CAST(h.{_q(column)} AS VARCHAR), '(none)'), count(*)
            FROM periods AS p
            JOIN {HISTORY} AS h ON h.valid_from <= p.period AND (h.valid_to IS NULL OR h.valid_to > p.period)
            GROUP BY ALL ORDER BY 1, 2"""
        ).fetchall()
        periods = sorted({r[0] for r in rows})
        values = sorted({r[1] for r in rows})
        out[column] = {
            "periods": periods,
            "values": values,
            "counts": {(r[0], r[1]): r[2] for r in rows},
        }
    return out


def _json_parts(
    con,
    table: str,
    *,
    order: str = "",
    skip: tuple[str, ...] = (),
    one: bool = False,
    source: str | None = None,
) -> tuple[list[str], dict[int, str]]:
    """Columns, and per shard a JSON object {user_id: [[values...], ...]} made by DuckDB.

    No Python loop over rows: DuckDB groups rows into one JSON text per shard of `__docs_users`.
    Users in id order: grouped by DuckDB's threads, a shard's file changed bytes on every
    `profiler docs` of one warehouse (helper-115).
    `one`: a single row per user, so {user_id: [values...]}. `source`: a query of the table's
    rows to read instead of the whole table.
    """
    types = [
        (c, t) for c, t in column_types(con).get(table, []) if c != "user_id" and c not in skip
    ]
    if not types:
        return [], {}
    values = ", ".join(
        f"round({_q(c)}, 4)" if t in ("DOUBLE", "FLOAT") else _q(c) for c, t in types
    )
    per_user = f"json_array({values})" if one else f"to_json(list(json_array({values}) {order}))"
    group = "" if one else "GROUP BY u.shard, t.user_id"
    rows = con.execute(
        f"""SELECT shard, '{{' || string_agg(
                to_json(CAST(user_id AS VARCHAR))::VARCHAR || ':' || v::VARCHAR, ',' ORDER BY user_id
            ) || '}}' FROM (
            SELECT u.shard, t.user_id, {per_user} AS v
            FROM {f"({source})" if source else _q(table)} AS t
            JOIN __docs_users AS u ON u.user_id = t.user_id {group})
        GROUP BY shard"""
    ).fetchall()
    return [c for c, _ in types], {int(k): v for k, v in rows}


def lookup_data(con, dimensions: dict[str, str], audiences: list[str]) -> dict:
    """The profile lookup's data: a small index for the page, and one JSON text per shard.

    Users (at most LOOKUP_CAP: the most active, helper-64: the first 50,000 ids in text order
    were `1`, `10`, `100`...) are cut into shards of about SHARD_USERS consecutive ids;
    the page finds a user's shard from the first id of each and loads only that file, so the
    site stays quick to open however many users it holds. Per user: the profile row, scores,
    recommendations, history and the audiences the user is in.
    """
    if not has_table(con, PROFILE):
        return {"meta": {"total": 0, "shown": 0, "starts": []}, "shards": {}}
    total = con.execute(f"SELECT count(*) FROM {PROFILE}").fetchone()[0]
    shown = min(total, LOOKUP_CAP)
    shards = max(1, -(-shown // SHARD_USERS))
    columns = {r[0] for r in con.execute(f"DESCRIBE {PROFILE}").fetchall()}
    active = "events_lifetime DESC NULLS LAST, " if "events_lifetime" in columns else ""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __docs_users AS
        SELECT user_id, ntile({shards}) OVER (ORDER BY user_id) - 1 AS shard
        FROM (SELECT user_id FROM {PROFILE} ORDER BY {active}user_id LIMIT {LOOKUP_CAP})"""
    )
    try:
        starts = [
            r[0]
            for r in con.execute(
                "SELECT min(user_id) FROM __docs_users GROUP BY shard ORDER BY shard"
            ).fetchall()
        ]
        meta = {
            "total": total,
            "shown": shown,
            "starts": starts,
            "dimensions": {"user_id": "basic", "as_of": "basic", **dimensions},
            "dimension_order": [*DIMENSION_ORDER, "other"],
            "columns": {},
        }
        parts: dict[str, dict[int, str]] = {}
        # scores and versions up to the profile's as-of, as `profiler show` lists them
        wanted = [
            ("profile", PROFILE, {"one": True}),
            ("scores", "user_scores", {"order": "ORDER BY model, as_of DESC", "source": scores_seen(con)}),
            ("recommendations", RECOMMENDATIONS, {"order": "ORDER BY rank", "skip": ("as_of", "brand")}),
            ("history", HISTORY, {"order": "ORDER BY valid_from", "source": history_seen(con)}),
        ]  # fmt: skip
        for part, table, options in wanted:
            if has_table(con, table):
                meta["columns"][part], parts[part] = _json_parts(con, table, **options)
        for name in audiences:
            rows = con.execute(
                f"""SELECT u.shard, to_json(list(DISTINCT a.user_id ORDER BY a.user_id))::VARCHAR
                FROM {_q(name)} AS a JOIN __docs_users AS u ON u.user_id = a.user_id
                GROUP BY u.shard"""
            ).fetchall()
            parts[f"audience:{name}"] = {int(k): v for k, v in rows}
    finally:
        con.execute("DROP TABLE IF EXISTS __docs_users")
    texts = {}
    for shard in range(len(starts)):
        body = ",".join(
            f"{json.dumps(part)}:{texts_by_shard.get(shard, '{}' if not part.startswith('audience:') else '[]')}"
            for part, texts_by_shard in parts.items()
        )
        texts[shard] = "{" + body + "}"
    return {"meta": meta, "shards": texts}
