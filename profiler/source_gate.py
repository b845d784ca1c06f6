"""A source's suite gates the batches a build reads from it, before any model runs.

`expectations/raw_events.json` validates the raw rows loaded since it last passed; a refusal holds
those batches back (the build's readers of that source keep their tables) until a batch is
replaced or the suite is edited.
"""

from __future__ import annotations

import time
from datetime import datetime

import duckdb

from profiler.dag import Dag
from profiler.publish import Gate, GateOutcome
from profiler.runlog import ModelResult
from profiler.sources import SOURCES, Source
from profiler.state import AS_OF_SOURCES, SCHEMA, get_setting, has_table, put_setting


def gate_sources(
    con: duckdb.DuckDBPyConnection,
    dag: Dag,
    selected: list[str],
    gate: Gate,
    as_of: datetime,
) -> list[tuple[ModelResult, tuple[int, int] | None]]:
    """A source's suite (`expectations/raw_events.json`) gates the batches a build's models read
    straight from it, before they run (helper-78: a rule added to a source's suite ran in
    `profiler check` only, and the build published the row it refused).

    What is validated: the batches loaded since the suite last passed (every batch after an edit
    of the suite or a replaced batch; `_profiler.settings` `gated:<table>`), up to the as-of. A
    refusal sticks to its batches (`refused:<table>`) until one is replaced or the suite edited:
    batches loaded later are judged on their own, never with it (helper-81: a `mostly` refusal
    passed once a clean batch joined it). A failure blocks the source's readers, which keep their
    tables; the raw rows stay as ingest loaded them. Returns, per source that failed or warned,
    its result and its refused batches (first, last), None when it passed."""
    read = {p for name in selected for p in dag.run_parents(name) if p not in dag.models}
    said = []
    for source in (s for s in SOURCES.values() if s.table in read):
        table = source.table
        fingerprint = gate.suite_fingerprint(table)
        if not fingerprint or not has_table(con, table):
            continue
        (newest,) = con.execute(
            f"SELECT max(batch_id) FROM {SCHEMA}.batches WHERE source = ?", [source.name]
        ).fetchone()
        after, stuck = _gate_marks(con, table, fingerprint)
        # a standing refusal's batches are judged alone; once they pass, the batches loaded after
        # them are judged in the same build, which reads them (helper-119: a refusal by a
        # table-level rule that passed published the later batches unvalidated, exit 0)
        while newest is not None and newest > after:
            last = stuck or newest
            result, out = _gate_batches(con, gate, source, fingerprint, (after, last), as_of)
            if not out.passed or out.warnings:  # a pass says nothing unless it warns
                said.append((result, None if out.passed else (after + 1, last)))
            if not out.passed or last == newest:
                break
            after, stuck = last, 0
    return said


def _gate_batches(
    con: duckdb.DuckDBPyConnection,
    gate: Gate,
    source: Source,
    fingerprint: str,
    span: tuple[int, int],
    as_of: datetime,
) -> tuple[ModelResult, GateOutcome]:
    """Validate a source's batches after `span[0]` up to `span[1]` and record a pass or a
    refusal; returns what the build says and the gate's outcome."""
    table, (after, last) = source.table, span
    # a look at the past reads its rows up to the as-of: those are checked, and nothing is
    # recorded as passed (helper-81: batches it never reads refused it)
    (latest,) = con.execute(
        f"SELECT max(max_ts) FROM {SCHEMA}.batches WHERE source = ? AND batch_id > ? "
        "AND batch_id <= ?",
        [source.name, after, last],
    ).fetchone()
    before = as_of if source.time_column and latest is not None and latest > as_of else None
    t0 = time.perf_counter()
    out = gate.check_source(con, table, after, last, before)
    if out.passed and before is None:
        put_setting(con, f"gated:{table}", f"{last} {fingerprint}")
    elif not out.passed:
        put_setting(con, f"refused:{table}", f"{last} {fingerprint}")
    batches = (
        "every batch (its suite is new or changed, or a batch was replaced)"
        if after == 0
        else f"batch(es) {after + 1}..{last}, loaded since its suite last passed"
    )
    fix = (
        f"correct the batch (`profiler ingest {source.name} FILE --replace-batch N`, N the "
        f"_batch_id of the rows above) or "
        if out.errors
        else ""
    )
    result = ModelResult(
        table,
        "source",
        "success" if out.passed else "error",
        "skip" if out.passed else "gate",
        batches,
        message="\n".join(
            [*out.warnings, *out.errors, *out.raised]
            + (
                []
                if out.passed
                else [
                    f"the rows stay as loaded, and every model reading {table} keeps its last "
                    f"table: {fix}fix expectations/{table}.json, then build"
                ]
            )
        ),
        execution_time=round(time.perf_counter() - t0, 3),
        validations=out.results,
        gate_time=round(out.seconds, 3),
    )
    return result, out


def _gate_marks(con: duckdb.DuckDBPyConnection, table: str, fingerprint: str) -> tuple[int, int]:
    """What a source's suite (at this fingerprint) passed and refused: (the last batch it
    passed, 0 for none; the last batch of its standing refusal, 0 for none)."""
    marks = []
    for key in ("gated", "refused"):
        batch, _, suite = (get_setting(con, f"{key}:{table}") or "").partition(" ")
        marks.append(int(batch) if batch and suite == fingerprint else 0)
    after, stuck = marks
    return after, stuck if stuck > after else 0


def refused_batches(con: duckdb.DuckDBPyConnection, gate: Gate) -> dict[str, tuple]:
    """Per source of the data's as-of whose suite refused batches that nothing has replaced
    since: the batches not passed, (first, last): the refused ones and any loaded after them, not
    validated yet (`newest_data` leaves them out)."""
    held = {}
    for table in (f"raw_{source}" for source in AS_OF_SOURCES):
        fingerprint = gate.suite_fingerprint(table)
        after, stuck = _gate_marks(con, table, fingerprint) if fingerprint else (0, 0)
        if stuck:
            held[table] = (after + 1, 2**62)
    return held
