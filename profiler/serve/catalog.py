"""The tables people read, their docs, and a consistent way to open them for reading.

Analyst-facing tables are the published models of `features/` (feature tables, the profile, its
history, recommendations, audiences) that are not tagged `internal`, plus the model layer's
`user_scores` (a python model of the build graph, or a table `profiler train` wrote) and the
ingest's `quarantine` (the lines it could not load, which GUIDE's contract lists among the tables
people read; served without their raw text, which may name people). The serving copy and the
Parquet export serve this one list, the docs site its models. Cleaning and integration tables
(`sql/`) and engine state stay in the warehouse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.project import Kind, Model, load_project
from profiler.sqltext import quote as _q

ANALYST_DIR = "features"
INTERNAL_TAG = "internal"
SCORES = "user_scores"
SCORES_DOC = (
    "Model scores: one row per user, model and as-of (a newer training replaces the scores it "
    "supersedes). Written by `profiler train` and the model layer (profiler.ml.score)."
)
SCORES_COLUMNS = {
    "user_id": "the shop's user id, a pseudonym (one sent as an e-mail address is stored as its keyed hash)",
    "model": "the model spec's name (models/<model>.toml)",
    "score": "P(purchase within the horizon) for purchase models; for next-category models the probability of the predicted category",
    "as_of": "the as-of time the score describes (UTC)",
    "model_version": "content hash of the spec, feature schema and training data fingerprint",
    "label": "next-category models: the predicted category; NULL for purchase models",
    "decile": "1..10 within the model and as-of, 1 = the highest tenth of scores",
    "horizon_days": "the days after as-of the model predicts for (its spec's horizon_days, or train --horizon-days); NULL on scores from before this column",
}
QUARANTINE = "quarantine"
QUARANTINE_DOC = (
    "Input lines `profiler ingest` could not load, one row each with its reason: nothing is "
    "dropped silently. Written by ingest (docs/ingest.md lists the reasons), never by a build."
)
QUARANTINE_COLUMNS = {
    "batch_id": "the load the line came with (`_profiler.batches`; the ingest summary names it)",
    "source": "events, users, items or feedback",
    "file": "the file as ingest was given it",
    "record": "the record's number in the file, 1 = its first record (after the header line when it has one)",
    "reason": "why it was not loaded, e.g. missing_user_id, bad_timestamp, unknown_event_type",
}
# the record itself stays in the warehouse's quarantine: a review's free text (helper-74: "call
# Alice Martin on +33 ...") must not reach BI tools
QUARANTINE_SELECT = "* EXCLUDE (raw)"


@dataclass(frozen=True)
class ServedTable:
    name: str
    description: str
    columns: dict[str, str] = field(default_factory=dict)
    model: Model | None = None
    select: str = "*"  # what of the table is served

    @property
    def partition_by(self) -> tuple[str, str] | None:
        """(partition column name, SQL expression) for the Parquet export, where it helps.

        SCD2 histories grow by build: one folder per month of `valid_from` means a new build
        rewrites the month it changed, not the whole history.
        """
        if self.model is not None and self.model.kind is Kind.SCD2:
            return "valid_from_month", "strftime(valid_from, '%Y-%m')"
        return None

    @property
    def tags(self) -> tuple[str, ...]:
        return self.model.tags if self.model else ()


def relations(con: duckdb.DuckDBPyConnection, schema: str = "main") -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = ?",
        [schema],
    ).fetchall()
    return {r[0] for r in rows}


def analyst_tables(con: duckdb.DuckDBPyConnection, project_dir: Path) -> list[ServedTable]:
    """The analyst-facing tables that exist in the open database, by name.

    Reads the model headers only (no lineage parsing): it runs after every build.
    """
    existing = relations(con)
    models = load_project(Path(project_dir))
    base = (Path(project_dir) / ANALYST_DIR).resolve()
    out = []
    for name in sorted(models):
        model = models[name]
        if name not in existing or INTERNAL_TAG in model.tags:
            continue
        if model.kind is not Kind.PYTHON and not model.path.resolve().is_relative_to(base):
            continue
        out.append(ServedTable(name, model.description, dict(model.columns), model))
    if SCORES in existing and SCORES not in {t.name for t in out}:
        out.append(ServedTable(SCORES, SCORES_DOC, dict(SCORES_COLUMNS)))
    if QUARANTINE in existing and QUARANTINE not in {t.name for t in out}:
        out.append(
            ServedTable(
                QUARANTINE, QUARANTINE_DOC, dict(QUARANTINE_COLUMNS), select=QUARANTINE_SELECT
            )
        )
    return out


# Per table, the rows of its newest validating run: an aggregate, not a sort of every row ever
# written (helper-88: 3.8M rows, a year of hourly builds, took 4.5 s and 2.3 GB in a window)
LATEST_VALIDATIONS = """SELECT v.* FROM _profiler.validations AS v
JOIN (
    SELECT table_name, arg_max(run_id, validated_at) AS run_id
    FROM _profiler.validations GROUP BY table_name
) AS newest USING (table_name, run_id)"""


def mixed_as_ofs(con: duckdb.DuckDBPyConnection, names: list[str]) -> dict[str, str]:
    """Each table's as-of and last batch when the tables are not all of one build (the models'
    recorded state: a whole build leaves every model at its as-of and newest batch; a late
    batch inside the span keeps the as-of, so the batch counts too, helper-49)."""
    try:
        rows = con.execute(
            "SELECT name, CAST(as_of AS VARCHAR) || ' (batch ' || watermark || ')' "
            "FROM _profiler.models WHERE list_contains(?, name) ORDER BY as_of, watermark, name",
            [names],
        ).fetchall()
    except duckdb.Error:
        return {}  # a serving copy from before the models table was copied
    return dict(rows) if len({state for _, state in rows}) > 1 else {}


def table_state(con: duckdb.DuckDBPyConnection, table: ServedTable) -> dict:
    """What identifies the table's content: the engine's state for models, a checksum otherwise.

    Equal states mean equal content, so a serving copy or an export can skip the table.
    """
    if table.model is not None:
        row = con.execute(
            "SELECT data_fingerprint, metadata_fingerprint, version, watermark, as_of, rows "
            "FROM _profiler.models WHERE name = ?",
            [table.name],
        ).fetchone()
        if row is not None:
            keys = ("data", "metadata", "version", "watermark", "as_of", "rows")
            return {k: (str(v) if k == "as_of" else v) for k, v in zip(keys, row, strict=True)}
    rows, checksum = table_checksum(con, table.name)
    docs = hashlib.sha256(json.dumps([table.description, table.columns]).encode()).hexdigest()
    return {"rows": rows, "checksum": checksum, "metadata": docs[:16]}


def table_checksum(
    con: duckdb.DuckDBPyConnection, name: str, where: str = "TRUE"
) -> tuple[int, str]:
    """Row count and an order-independent hash of every row (equal tables, equal checksums)."""
    rows, total = con.execute(
        f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM {_q(name)} AS t WHERE {where}"
    ).fetchone()
    return int(rows), str(total)


def serving_path(warehouse: Path) -> Path:
    """`<stem>.serving.duckdb` beside the warehouse: the read-only copy BI tools open."""
    return warehouse.with_name(f"{warehouse.stem}.serving.duckdb")


@contextlib.contextmanager
def open_reader(settings) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
    """A read-only connection to the published tables, and which file it reads.

    The warehouse itself when nobody writes it; while a build holds it, the serving copy (the
    state of the last successful build), so reading never waits for a build and never blocks one.
    """
    from profiler.settings import connect

    serving = serving_path(settings.warehouse)
    con, refused = None, None
    source = str(settings.warehouse)
    if settings.warehouse.exists():
        try:
            con = connect(settings, read_only=True)
        except ProfilerError as err:
            refused = err  # held by a build, or no warehouse at all (another kind of file)
    if con is None:
        if refused and "lock" in str(refused):
            refused = ProfilerError(
                f"{settings.warehouse} is held by another process (a first build?) and there is "
                f"no serving copy {serving.name} yet; wait for it to finish"
            )
        if not serving.exists():
            from profiler.settings import no_warehouse

            raise refused or ProfilerError(no_warehouse(settings))
        con = duckdb.connect(str(serving), read_only=True)
        source = str(serving)
    try:
        yield con, source
    finally:
        con.close()
