"""Write, audit, publish: a model's staged output reaches its published relation only after the
gate passed, in one transaction together with the state that describes it.

A crash before COMMIT leaves the published relation and its state exactly as they were; DuckDB's
write-ahead log makes the COMMIT itself atomic. The gate is handed in (materialisations know
nothing of Great Expectations).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import duckdb

from profiler.materialize import Staged
from profiler.runlog import ValidationResult
from profiler.state import ModelState, write_state


@dataclass
class GateOutcome:
    passed: bool = True
    errors: list[str] = field(default_factory=list)  # block the model and its descendants
    warnings: list[str] = field(default_factory=list)  # reported, published anyway
    raised: list[str] = field(default_factory=list)  # an expectation that crashed: a gate error
    results: list[ValidationResult] = field(default_factory=list)  # one per expectation run
    seconds: float = 0.0  # time the gate took, for the run results


class Gate(Protocol):
    def start_run(self, run_id: str, as_of: datetime) -> None: ...

    def check(self, con: duckdb.DuckDBPyConnection, staged: Staged) -> GateOutcome: ...

    def suite_fingerprint(self, table: str) -> str: ...

    def check_source(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        after: int,
        through: int,
        before: datetime | None = None,
    ) -> GateOutcome: ...


class OpenGate:
    """The gate of a project without expectations: everything passes."""

    def start_run(self, run_id: str, as_of: datetime) -> None:
        pass

    def check(self, con: duckdb.DuckDBPyConnection, staged: Staged) -> GateOutcome:
        return GateOutcome()

    def suite_fingerprint(self, table: str) -> str:
        return ""

    def check_source(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        after: int,
        through: int,
        before: datetime | None = None,
    ) -> GateOutcome:
        return GateOutcome()


def publish(
    con: duckdb.DuckDBPyConnection, staged: Staged, gate: Gate, new_state: ModelState
) -> GateOutcome:
    """Audit the staged output; publish it and its state atomically when the gate passes.

    On any error the first one is what the caller sees: a COMMIT the disk refused has already
    ended the transaction, so ROLLBACK and dropping the staging relations may fail too (a full
    disk, a lost WAL); the next build drops what is left (`build.clean_leftovers`). After a
    COMMIT the model is published, whatever happens to its staging relations: a DROP the disk
    refuses then leaves them to the next build, and the model is still reported as published.
    """
    try:
        outcome = gate.check(con, staged)
        if outcome.passed:
            _swap(con, staged, new_state)
    except BaseException:
        with suppress(duckdb.Error):
            staged.drop(con)
        raise
    if not outcome.passed:
        staged.drop(con)
        return outcome
    with suppress(duckdb.Error):
        staged.drop(con)
    return outcome


def _swap(con: duckdb.DuckDBPyConnection, staged: Staged, new_state: ModelState) -> None:
    """The published relation and its state, in one transaction: both change or neither."""
    con.execute("BEGIN TRANSACTION")
    try:
        staged.apply(con)
        write_state(con, new_state)
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
