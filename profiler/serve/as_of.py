"""What a profile of one as-of shows of the tables that outlive it: scores and history versions.

`user_scores` keeps every as-of's scores and `user_profile_history` every build's versions, so
after `profiler build --as-of` in the past both hold rows of later profiles. `profiler show` and
the docs site's lookup read them through these relations, so the two say the same of a user: the
scores and versions up to the profile's as-of, the version the profile is of open as of it. A
profile without an `as_of` column (a project's own profile model) bounds nothing.
"""

from __future__ import annotations

import duckdb

PROFILE = "user_profile"


def profile_as_of(con: duckdb.DuckDBPyConnection) -> str:
    """The profile's as-of as an SQL scalar; `NULL` (no bound) when it has no `as_of` column."""
    (n,) = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_name = ? AND column_name = 'as_of'",
        [PROFILE],
    ).fetchone()
    return f"(SELECT max(as_of) FROM {PROFILE})" if n else "NULL"


def scores_seen(con: duckdb.DuckDBPyConnection) -> str:
    """`user_scores` up to the profile's as-of: a later as-of's score describes another profile."""
    return f"SELECT * FROM user_scores WHERE coalesce(as_of <= {profile_as_of(con)}, TRUE)"


def history_seen(con: duckdb.DuckDBPyConnection) -> str:
    """`user_profile_history` up to the profile's as-of, a version ended after it shown open."""
    as_of = profile_as_of(con)
    return (
        f"SELECT h.* REPLACE (CASE WHEN coalesce(h.valid_to <= {as_of}, TRUE) THEN h.valid_to "
        f"END AS valid_to) FROM user_profile_history AS h "
        f"WHERE coalesce(h.valid_from <= {as_of}, TRUE)"
    )
