"""Labels: what happened in (cutoff, cutoff + horizon], read from the raw events in SQL.

Labels are outcomes, not features, so they may (and must) look past the cutoff; they are the only
thing the model layer reads from raw events. The window is start-exclusive and end-inclusive,
matching the as-of filter `ts <= as_of` that the features were built with.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from profiler.plan import ts_literal
from profiler.sqltext import quote as _q


def window(cutoff: datetime, horizon_days: int, column: str = "ts") -> str:
    end = cutoff + timedelta(days=horizon_days)
    return f"{column} > {ts_literal(cutoff)} AND {column} <= {ts_literal(end)}"


def purchase_labels(catalog: str, cutoff: datetime, horizon_days: int) -> str:
    """1 for each user with at least one purchase in the window (others get 0 by the LEFT JOIN)."""
    return (
        f"SELECT CAST(user_id AS VARCHAR) AS user_id, 1 AS __label "
        f"FROM {_q(catalog)}.main.raw_events "
        f"WHERE event_type = 'purchase' AND {window(cutoff, horizon_days)} GROUP BY user_id"
    )


def next_category_labels(
    catalog: str, cutoff: datetime, horizon_days: int, events: tuple[str, ...], category: str
) -> str:
    """The category of each user's first purchase (or cart, per the spec) in the window.

    `category` is SQL over the event `e` and its item `i` (attributes from raw_items), so the label
    takes the same form as the profile's top categories. Ties at one timestamp go to the smallest
    category, so labels are deterministic.
    """
    kinds = ", ".join("'" + e.replace("'", "''") + "'" for e in events)
    raw = f"{_q(catalog)}.main"
    return f"""
        SELECT user_id, __label FROM (
            SELECT CAST(e.user_id AS VARCHAR) AS user_id, CAST(({category}) AS VARCHAR) AS __label,
                   row_number() OVER (PARTITION BY e.user_id
                                      ORDER BY e.ts, CAST(({category}) AS VARCHAR)) AS n
            FROM {raw}.raw_events AS e
            LEFT JOIN (SELECT item_id,  -- each column's newest value, as stg_items keeps it
                              arg_max(category_id, (_batch_id, coalesce(_record, -1)))
                                  FILTER (WHERE category_id IS NOT NULL) AS category_id,
                              arg_max(category_path, (_batch_id, coalesce(_record, -1)))
                                  FILTER (WHERE category_path IS NOT NULL) AS category_path
                       FROM {raw}.raw_items GROUP BY item_id) AS i USING (item_id)
            WHERE e.event_type IN ({kinds}) AND {window(cutoff, horizon_days, "e.ts")}
              AND ({category}) IS NOT NULL
        ) WHERE n = 1"""


def labels_sql(spec, catalog: str, cutoff: datetime) -> str:
    if spec.target == "purchase":
        return purchase_labels(catalog, cutoff, spec.horizon_days)
    return next_category_labels(
        catalog, cutoff, spec.horizon_days, spec.label_events, spec.label_category
    )
