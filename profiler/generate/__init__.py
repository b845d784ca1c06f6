"""Synthetic shop data: events, users, items and feedback that behave like a real shop's.

The real slices in ../shared/data are small and lack prices, sessions or user attributes. Volume
tests, benchmarks and demos need millions of events with the structure features look for:
heavy-tailed activity, churn, sessions, view -> cart -> purchase funnels, category and brand
affinities, repeat buyers, and feedback that agrees with behaviour.

Batches continue one shop. Ids, the catalogue and each user's lasting traits (activity level,
favourite categories and brands, staple item and buying cycle, satisfaction, personal details) come
from fixed seeds and depend only on `users`; `seed`, `start` and `days` decide only what happens in
the batch's window. Everything is vectorised with numpy, and strings are Arrow dictionaries plus
indices, so no Python code runs per row.

The package follows the flow of a batch: `shop` (catalogue and population, fixed by `users`),
`behaviour` (sessions and funnels in the window, driven by `seed`), `feedback`, then `tables`
(Arrow tables and files). `draws` and `columns` are the numpy and Arrow helpers they share.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from profiler.errors import ProfilerError
from profiler.generate.behaviour import _events
from profiler.generate.feedback import _feedback
from profiler.generate.shop import _catalogue, _population
from profiler.generate.tables import _events_table, _feedback_table, _users_table, _write

FORMATS = ("parquet", "csv")


def generate(
    out: Path,
    *,
    users: int,
    events: int,
    days: int,
    start: date,
    seed: int,
    fmt: str = "parquet",
) -> dict[str, int]:
    """Write one batch of a synthetic shop to `out`; return the rows written per source.

    Writes `events`, `users`, `items` and `feedback` (`.parquet` or `.csv`) in the canonical
    columns of `profiler.sources`, so they ingest without a column map. A later batch (`start` =
    the next day, another `seed`) continues the same shop: same users, same items, new events.
    The same arguments give the same tables.

    For example, `generate(Path("data"), users=1_000, events=50_000, days=30,
    start=date(2024, 1, 1), seed=1)` returns `{"events": 50000, "users": 1000, "items": 200,
    "feedback": ...}`.
    """
    _check(users=users, events=events, days=days, seed=seed, fmt=fmt)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file in its place: fail before any work
        raise ProfilerError(f"cannot write to {out}: {err.strerror}") from None
    import numpy as np

    start = date(start.year, start.month, start.day)  # a datetime counts from its day
    rng = np.random.default_rng([seed, users, events, days, start.toordinal()])
    cat = _catalogue(max(200, users // 5))
    pop = _population(users, cat, days)
    ev = _events(rng, cat, pop, n_events=events, days=days, start=start)
    tables = {
        "events": _events_table(ev, cat, start),
        "users": _users_table(pop, start),
        "items": cat.table,
        "feedback": _feedback_table(_feedback(rng, ev, cat, pop, days), ev, cat, start),
    }
    for name, table in tables.items():
        _write(table, out / f"{name}.{fmt}", fmt)
    return {name: table.num_rows for name, table in tables.items()}


def _check(*, users: int, events: int, days: int, seed: int, fmt: str) -> None:
    """Fail before any work, with a message that names the argument to fix."""
    if fmt not in FORMATS:
        raise ProfilerError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    for name, value, least in (("users", users, 1), ("events", events, 0), ("days", days, 1)):
        if value < least:
            raise ProfilerError(f"{name} must be at least {least}, got {value}")
    if seed < 0:
        raise ProfilerError(f"seed must be a non-negative integer, got {seed}")
