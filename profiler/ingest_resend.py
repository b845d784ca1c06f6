"""Sending a file again: which loads of its content are in the warehouse, which load a
`--replace` or `--replace-batch` takes the place of, and taking that load out.

A file's content loads once (its fingerprints, `ingest_read.file_info`); a replace swaps a load
in one transaction, and the models that read it recompute (`take_out`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.ingest_read import one_row
from profiler.project import Kind
from profiler.serve.catalog import SCORES
from profiler.sources import BATCH_COLUMN, RECORD_COLUMN, Source, engine_columns
from profiler.sqltext import quote as quote_ident
from profiler.state import (
    SCHEMA,
    ensure_schema,
    forget_model,
    has_table,
    mark_history_stale,
    new_lineage,
    newest_data,
    read_states,
)


def take_out(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    replaced: tuple[int, ...],
    new_min_ts: datetime | None,
) -> None:
    """Remove earlier loads of a file (inside `ingest_write.commit`'s transaction) before it goes in again
    as batch `replaced[0]`: their raw and quarantine rows go, and that batch's row, written anew;
    another load of the same content (if any) keeps its row, marked superseded. The file keeps
    its batch id, so a newer users or items file still wins over it, and the histories see the
    corrected times of the batches they were built from (`build_model._history_plan` takes back a
    history stamped after them). Rows that left raw leave no trace the planner could slice by,
    so every other model forgets its state and the next build recomputes it in full; the data's
    lineage is new, so no classifier trained on them is reused, and the scores of as-ofs that saw
    either reading (from the earlier of the two first times on; all of them for a file without
    times) leave `user_scores`."""
    ids = ", ".join(str(int(b)) for b in replaced)
    (old_min_ts, old_loaded) = one_row(
        con, f"SELECT min(min_ts), sum(loaded) FROM {SCHEMA}.batches WHERE batch_id IN ({ids})"
    )
    if old_loaded:  # no table saw a load that kept no line (a file refused whole, helper-95:
        # its replace took every score out)
        _take_back_what_saw(con, src, replaced, old_min_ts, new_min_ts)
    con.execute(f"DELETE FROM {src.table} WHERE {BATCH_COLUMN} IN ({ids})")
    con.execute(f"DELETE FROM quarantine WHERE batch_id IN ({ids})")
    con.execute(
        f"INSERT INTO {SCHEMA}.replaced_contents (source, content_sha256, batch_id) "
        "SELECT source, content_sha256, ? "
        f"FROM {SCHEMA}.batches WHERE batch_id IN ({ids})",
        [replaced[0]],
    )
    con.execute(f"DELETE FROM {SCHEMA}.batches WHERE batch_id = ?", [replaced[0]])
    con.execute(
        f"UPDATE {SCHEMA}.batches SET superseded_by = ? WHERE batch_id IN ({ids})", [replaced[0]]
    )
    new_lineage(con)  # models trained on the rows that left are not reused
    # the source's suite validates the whole table at the next build: the new rows may carry the
    # batch id of rows it passed before (`source_gate.gate_sources`)
    con.execute(
        f"DELETE FROM {SCHEMA}.settings WHERE name IN (?, ?)",
        [f"gated:{src.table}", f"refused:{src.table}"],
    )
    for state in read_states(con).values():
        if not Kind(state.kind).keeps_history:
            forget_model(con, state.name)


def _take_back_what_saw(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    replaced: tuple[int, ...],
    old_min_ts: datetime | None,
    new_min_ts: datetime | None,
) -> None:
    """The scores and history changes that saw either reading of a replaced load leave (see
    `take_out`)."""
    since = min(old_min_ts, new_min_ts) if old_min_ts and new_min_ts else None
    if has_table(con, SCORES):
        con.execute(f"DELETE FROM {SCORES} WHERE ? IS NULL OR as_of >= ?", [since, since])
    # history changes that saw either reading: stamped from its first time on; for users and
    # items (no times), from the first build after the load on (helper-94: the versions of the
    # build before the load went too; helper-95: not only the history's last merge saw it)
    stale = since or old_min_ts or new_min_ts
    first = min(replaced)
    if src.time_column is None:  # users, items: from the first build that saw the load on
        before = newest_data(con, through_batch=first - 1) or datetime(1900, 1, 1)
        seen = [  # a run of an older profiler recorded no batch: it may have seen it
            r[0]
            for r in con.execute(
                f"SELECT as_of FROM {SCHEMA}.runs WHERE as_of >= ? "
                "AND (max_batch IS NULL OR max_batch >= ?)",
                [before, first],
            ).fetchall()
        ]
    for state in read_states(con).values():
        if not Kind(state.kind).keeps_history:
            continue
        if src.time_column is None:
            # a merge after the load (a build stopped before it recorded its run, too); not a
            # build at the day's end before it (helper-96: `--as-of ...T23:59:59`)
            merged = state.as_of if state.watermark >= first and state.as_of else None
            marks = [t for t in (*seen, merged) if t is not None and t >= before]
            stale = min(marks, default=None)
        if stale is not None:
            mark_history_stale(con, state.name, stale)


def batch_to_replace(
    con: duckdb.DuckDBPyConnection, src: Source, batch: int, loads: tuple[int, ...], path: Path
) -> tuple[int, ...]:
    """`--replace-batch N`: N must be a current send of this source; this content must not be
    loaded already under another batch (that would count it twice)."""
    other = [b for b in loads if b != batch]
    if other:
        raise ProfilerError(
            f"{path.name} is already loaded as batch {other[0]}; replacing batch {batch} with it "
            "would count it twice; nothing changed"
        )
    row = (
        next(
            iter(
                con.execute(
                    f"SELECT source, superseded_by FROM {SCHEMA}.batches WHERE batch_id = ?",
                    [batch],
                ).fetchall()
            ),
            None,
        )  # all: a result left open blocks the connection's next statement
        if has_table(con, "batches", SCHEMA)
        else None
    )
    if row is None:  # helper-54: the batch numbers were only in the table; the newest here
        newest = (
            con.execute(
                f"SELECT batch_id, file FROM {SCHEMA}.batches WHERE source = ? "
                "AND superseded_by IS NULL ORDER BY batch_id DESC LIMIT 5",
                [src.name],
            ).fetchall()
            if has_table(con, "batches", SCHEMA)
            else []
        )
        sent = "; ".join(f"{b} {Path(f).name}" for b, f in newest) or "none yet"
        raise ProfilerError(
            f"--replace-batch {batch}: no such batch; the newest {src.name} batches: {sent} "
            "(all in _profiler.batches); nothing loaded"
        )
    if row[0] != src.name:
        raise ProfilerError(
            f"--replace-batch {batch}: batch {batch} holds {row[0]}, not {src.name}"
        )
    if row[1] is not None:
        raise ProfilerError(
            f"--replace-batch {batch}: batch {batch} was already taken over by batch {row[1]}"
        )
    return (batch,)


def reads_as_before(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    replaced: tuple[int, ...],
    quarantined: int,
    typed: str,
) -> bool:
    """Does this reading give exactly the rows the replaced loads hold, and as many quarantined
    lines? Then a replace would change nothing but take back the history stamped since."""
    (before,) = one_row(
        con,
        f"SELECT coalesce(sum(quarantined), 0) FROM {SCHEMA}.batches "
        f"WHERE batch_id IN ({', '.join(map(str, replaced))}) AND source = ?",
        [src.name],
    )
    if before != quarantined:
        return False
    # the same lines quarantined for other reasons is another reading: an unknown word now
    # skipped (helper-59: `--event-type 'X=skip' --replace`, as the summary advises, was refused)
    (other_reasons,) = one_row(
        con,
        f"SELECT (SELECT count(*) FROM (SELECT reason FROM quarantine WHERE batch_id IN "
        f"({', '.join(map(str, replaced))}) EXCEPT ALL SELECT _reason FROM {typed} "
        "WHERE _reason IS NOT NULL))",
    )
    if other_reasons:
        return False
    cols = ", ".join(quote_ident(c.name) for c in src.columns)
    # users and items keep each line's number: the later line of a file wins (helper-42: a
    # reordered file is no same reading)
    numbered = RECORD_COLUMN in engine_columns(src)
    new = f"SELECT {cols}{', _rec' if numbered else ''} FROM {typed} WHERE _reason IS NULL"
    old = f"SELECT {cols}{f', {RECORD_COLUMN}' if numbered else ''} FROM raw_{src.name} WHERE {BATCH_COLUMN} IN ({', '.join(map(str, replaced))})"
    (differ,) = one_row(
        con,
        f"SELECT (SELECT count(*) FROM ({new} EXCEPT ALL {old})) "
        f"+ (SELECT count(*) FROM ({old} EXCEPT ALL {new}))",
    )
    return differ == 0


def loads_of(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    fingerprints: tuple[str, ...],
    *,
    in_raw: bool = True,
) -> tuple[int, ...]:
    """The batches whose rows of this content for this source are in raw now, oldest first;
    with `in_raw=False`, every batch that ever read it.

    A file whose every line went to quarantine may be sent again, read another way (`--map`,
    `--event-type`, `--ts-format`): none of its rows is in raw yet, so none can count twice.
    """
    if not has_table(con, "batches", SCHEMA):
        return ()
    ensure_schema(con)  # a warehouse from before `superseded_by` gets it
    now = "AND loaded > 0 AND superseded_by IS NULL " if in_raw else ""
    rows = con.execute(
        f"SELECT batch_id FROM {SCHEMA}.batches WHERE source = ? AND list_contains(?, content_sha256) "
        f"{now}ORDER BY batch_id",
        [src.name, list(fingerprints)],
    ).fetchall()
    return tuple(r[0] for r in rows)


def replaced_by(
    con: duckdb.DuckDBPyConnection, src: Source, fingerprints: tuple[str, ...]
) -> int | None:
    """The batch that now stands in place of this content, when a `--replace-batch` took it out."""
    if not has_table(con, "replaced_contents", SCHEMA):
        return None
    row = con.execute(
        f"SELECT max(batch_id) FROM {SCHEMA}.replaced_contents "
        "WHERE source = ? AND list_contains(?, content_sha256)",
        [src.name, list(fingerprints)],
    ).fetchall()
    return row[0][0]


def loads_elsewhere(
    con: duckdb.DuckDBPyConnection, src: Source, fingerprints: tuple[str, ...]
) -> tuple[tuple[str, int], ...]:
    """(source, batch) of current loads of this content as another source."""
    rows = con.execute(
        f"SELECT source, batch_id FROM {SCHEMA}.batches WHERE source <> ? "
        "AND list_contains(?, content_sha256) AND loaded > 0 AND superseded_by IS NULL "
        "ORDER BY batch_id",
        [src.name, list(fingerprints)],
    ).fetchall()
    return tuple((r[0], r[1]) for r in rows)
