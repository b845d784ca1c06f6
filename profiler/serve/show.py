"""`profiler show USER_ID`: one user's profile, grouped by dimension, readable by a person.

A column's dimension is the tag of the feature model that documents it (`-- tags: behaviour`), so
adding a feature to a model puts it in the right group without touching this file.
"""

from __future__ import annotations

from profiler.errors import ProfilerError
from profiler.settings import Settings, connect

DIMENSIONS = ("basic", "behaviour", "preference", "rfm", "sentiment", "scores")


def column_dimensions(settings: Settings) -> dict[str, str]:
    from profiler.project import load_project

    found: dict[str, str] = {}
    for model in load_project(settings.project_dir).values():
        dims = [t for t in model.tags if t in DIMENSIONS]
        if not dims or model.name == "user_profile":
            continue
        for column in model.columns:
            found.setdefault(column, dims[0])
    return found


def show_user(settings: Settings, user_id: str, console) -> None:
    from rich.table import Table

    if not settings.warehouse.exists():
        raise ProfilerError(f"no warehouse at {settings.warehouse}; run `profiler build` first")
    con = connect(settings, read_only=True)
    try:
        try:
            cur = con.execute("SELECT * FROM user_profile WHERE user_id = ?", [user_id])
        except Exception:
            raise ProfilerError("no user_profile table yet; run `profiler build` first") from None
        row = cur.fetchone()
        if row is None:
            raise ProfilerError(f"user {user_id!r} is not in user_profile")
        names = [d[0] for d in cur.description]
        history = _history(con, user_id)
    finally:
        con.close()
    dims = column_dimensions(settings)
    groups: dict[str, list[tuple[str, object]]] = {}
    for name, value in zip(names, row, strict=True):
        groups.setdefault(
            dims.get(name, "basic" if name in ("user_id", "as_of") else "other"), []
        ).append((name, value))
    console.print(f"[bold]user {user_id}[/bold]")
    for dim in (*DIMENSIONS, "other"):
        if dim not in groups:
            continue
        table = Table(title=dim, title_justify="left", show_header=False, box=None, pad_edge=False)
        for name, value in groups[dim]:
            table.add_row(f"  {name}", _fmt(value))
        console.print(table)
    if history:
        table = Table(
            "valid_from",
            "valid_to",
            *history[0][2:],
            title="history",
            title_justify="left",
            box=None,
        )
        for h in history[1]:
            table.add_row(*(_fmt(v) for v in h))
        console.print(table)


def _history(con, user_id: str):
    try:
        cur = con.execute(
            "SELECT * FROM user_profile_history WHERE user_id = ? ORDER BY valid_from", [user_id]
        )
    except Exception:
        return None
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    if not rows:
        return None
    keep = [n for n in names if n not in ("user_id", "valid_from", "valid_to", "is_current")]
    idx = [names.index(n) for n in ("valid_from", "valid_to", *keep)]
    return (None, None, *keep), [[r[i] for i in idx] for r in rows]


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)
