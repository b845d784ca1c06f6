"""What the docs site shows, read from the warehouse (or its serving copy) into plain data.

Every reader tolerates a missing table: a project that has not trained a model or run a gate yet
still gets a site, with those sections saying so.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

PROFILE = "user_profile"
HISTORY = "user_profile_history"
RECOMMENDATIONS = "user_recommendations"
LOOKUP_CAP = 50_000  # users embedded in the profile lookup
MAX_PERIODS = 60  # history snapshots drawn per distribution
MAX_CATEGORIES = 12  # tracked columns with more distinct values are not drawn
DIMENSION_ORDER = ("basic", "behaviour", "preference", "rfm", "sentiment", "scores")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    try:
        cur = con.execute(sql, params or [])
    except duckdb.Error:
        return []
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def has_table(con: duckdb.DuckDBPyConnection, name: str, schema: str = "main") -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )


def model_states(con) -> dict[str, dict]:
    return {r["name"]: r for r in _rows(con, "SELECT * FROM _profiler.models")}


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
    rows = _rows(
        con,
        """SELECT * FROM _profiler.validations
        QUALIFY run_id = first_value(run_id) OVER (PARTITION BY table_name ORDER BY validated_at DESC)
        ORDER BY table_name, expectation""",
    )
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


def _json_rows(con, table: str, key: str, where: str = "TRUE", order: str = "") -> dict:
    """{key: [[values...], ...]} for a table, as JSON made by DuckDB (no Python loop over rows)."""
    cols = [c for c, _ in column_types(con).get(table, []) if c != key]
    if not cols:
        return {"columns": [], "rows": {}}
    values = ", ".join(
        f"round({_q(c)}, 4)" if t in ("DOUBLE", "FLOAT") else _q(c)
        for c, t in column_types(con)[table]
        if c != key
    )
    data = con.execute(
        f"""SELECT coalesce(json_group_object(k, v), '{{}}')::VARCHAR FROM (
            SELECT {_q(key)} AS k, to_json(list(json_array({values}) {order})) AS v
            FROM {_q(table)} WHERE {where} GROUP BY {_q(key)})"""
    ).fetchone()[0]
    return {"columns": cols, "rows": json.loads(data)}


def lookup_data(con, dimensions: dict[str, str], audiences: list[str]) -> dict:
    """Compact JSON for the profile lookup: profile, scores, recommendations, audiences, history."""
    if not has_table(con, PROFILE):
        return {"total": 0, "shown": 0}
    total = con.execute(f"SELECT count(*) FROM {PROFILE}").fetchone()[0]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __docs_users AS SELECT user_id FROM {PROFILE} "
        f"ORDER BY user_id LIMIT {LOOKUP_CAP}"
    )
    where = "user_id IN (SELECT user_id FROM __docs_users)"
    try:
        profile = _json_rows(con, PROFILE, "user_id", where)
        profile["rows"] = {k: v[0] for k, v in profile["rows"].items()}
        data = {
            "total": total,
            "shown": min(total, LOOKUP_CAP),
            "profile": profile,
            "dimensions": {"user_id": "basic", "as_of": "basic", **dimensions},
            "dimension_order": [*DIMENSION_ORDER, "other"],
        }
        if has_table(con, "user_scores"):
            data["scores"] = _json_rows(
                con, "user_scores", "user_id", where, "ORDER BY model, as_of DESC"
            )
        if has_table(con, RECOMMENDATIONS):
            data["recommendations"] = _json_rows(
                con, RECOMMENDATIONS, "user_id", where, "ORDER BY rank"
            )
        if has_table(con, HISTORY):
            data["history"] = _json_rows(con, HISTORY, "user_id", where, "ORDER BY valid_from")
        members = {}
        for name in audiences:
            ids = con.execute(
                f"SELECT coalesce(list(DISTINCT user_id ORDER BY user_id), []) FROM {_q(name)} "
                f"WHERE {where}"
            ).fetchone()[0]
            members[name] = ids
        data["audiences"] = members
    finally:
        con.execute("DROP TABLE IF EXISTS __docs_users")
    return data
