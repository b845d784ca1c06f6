"""Audiences: campaign and ad target groups declared as SQL models tagged `audience`.

Each audience is a table with one row per member and a `user_id` column (pseudonymous: personal
values never reach the warehouse raw). This module reports their sizes and pairwise overlaps,
which `profiler export` prints and the docs site shows, and writes them as CSV files of ids for
ad platforms and campaign tools.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from profiler.serve.catalog import ServedTable
from profiler.sqltext import quote as _q

TAG = "audience"


@dataclass
class AudienceReport:
    sizes: dict[str, int] = field(default_factory=dict)
    users: int = 0  # users in the profile, the base every share is of
    overlap: dict[tuple[str, str], int] = field(default_factory=dict)  # both orders, a != b

    def jaccard(self, a: str, b: str) -> float | None:
        union = self.sizes[a] + self.sizes[b] - self.overlap[(a, b)]
        return self.overlap[(a, b)] / union if union else None

    def lines(self) -> list[str]:
        if not self.sizes:
            return ["no audiences (models tagged `audience`) are built yet"]
        width = max(len(n) for n in self.sizes)
        out = [f"audiences (of {self.users:,} users):"]
        for name, size in self.sizes.items():
            share = f"{size / self.users:.1%}" if self.users else "-"
            out.append(f"  {name:<{width}}  {size:>9,}  {share:>6}")
        names = list(self.sizes)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                j = self.jaccard(a, b)
                out.append(
                    f"  overlap {a} & {b}: {self.overlap[(a, b)]:,}"
                    + (f" (Jaccard {j:.3f})" if j is not None else "")
                )
        return out


def audience_tables(tables: list[ServedTable]) -> list[str]:
    return [t.name for t in tables if TAG in t.tags]


def audience_report(con: duckdb.DuckDBPyConnection, names: list[str]) -> AudienceReport:
    """Distinct members per audience and members shared by every pair, in one query."""
    report = AudienceReport()
    try:
        report.users = con.execute("SELECT count(*) FROM user_profile").fetchone()[0]
    except duckdb.Error:
        report.users = 0
    if not names:
        return report
    union = " UNION ALL ".join(
        f"SELECT DISTINCT '{n}' AS audience, user_id FROM {_q(n)}" for n in names
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE __audience_members AS {union}")
    try:
        for name, size in con.execute(
            "SELECT audience, count(*) FROM __audience_members GROUP BY audience"
        ).fetchall():
            report.sizes[name] = size
        report.sizes = {n: report.sizes.get(n, 0) for n in names}
        pairs = con.execute(
            "SELECT a.audience, b.audience, count(*) FROM __audience_members AS a "
            "JOIN __audience_members AS b ON a.user_id = b.user_id AND a.audience <> b.audience "
            "GROUP BY a.audience, b.audience"
        ).fetchall()
        report.overlap = {(a, b): 0 for a in names for b in names if a != b}
        report.overlap.update({(a, b): n for a, b, n in pairs})
    finally:
        con.execute("DROP TABLE IF EXISTS __audience_members")
    return report


def user_audiences(con: duckdb.DuckDBPyConnection, names: list[str], user_id: str) -> list[str]:
    """The audiences one user is in (for `profiler show`)."""
    return [
        n
        for n in names
        if con.execute(f"SELECT count(*) FROM {_q(n)} WHERE user_id = ?", [user_id]).fetchone()[0]
    ]


def write_audience_csvs(
    con: duckdb.DuckDBPyConnection, names: list[str], out_dir: Path
) -> list[Path]:
    """`<out>/<audience>.csv`: a header `user_id` and one id per line, sorted; an audience that
    holds one audience per category (`audience_category_affinity`) keeps its `category` column,
    so a campaign for category X takes X's lines, not every category's users (helpers 52, 54).

    Written next to a temporary name and renamed, so a campaign tool never uploads half a file.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        path = out_dir / f"{name}.csv"
        tmp = out_dir / f".{name}.csv.tmp"
        target = "'" + str(tmp).replace("'", "''") + "'"
        has_category = con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = ? AND column_name = 'category'",
            [name],
        ).fetchall()[0][0]
        columns = "category, user_id" if has_category else "user_id"
        con.execute(
            f"COPY (SELECT DISTINCT {columns} FROM {_q(name)} ORDER BY ALL) TO {target} "
            "(HEADER, DELIMITER ',')"
        )
        os.replace(tmp, path)
        written.append(path)
    return written
