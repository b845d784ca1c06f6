"""`profiler export --out DIR`: Parquet (zstd) of the analyst tables, for analysts and BI tools.

Layout of DIR:

- `<table>.parquet`: one file per table, replaced with `os.replace` (atomic).
- `<table>/valid_from_month=YYYY-MM/part-0.parquet`: SCD2 histories, partitioned by month
  (hive style; DuckDB, pyarrow and Spark read the folder and add `valid_from_month`). `<table>` is
  a symbolic link to a generation folder under `.tables/`; a new generation hard-links the
  partitions that did not change and writes the ones that did, then the link is swapped
  atomically. The previous generation is kept until the next export, for readers still on it.
- `_manifest.json`: per table the engine state it was exported at (`_profiler.models`: data and
  metadata fingerprints, version, watermark, as-of, rows; a checksum for `user_scores`) and per
  partition its row count and checksum. A table whose state did not change is skipped; a
  partition whose checksum did not change is not rewritten.
- `audiences/<audience>.csv` with `--audiences-csv`: the user ids of each audience (the category affinity one with each user's category).

Every file carries the table's description and column docs (from the model headers) in its
Parquet metadata: `profiler.description`, `profiler.columns`, `profiler.state` and
`profiler.time_zone` (the shop's zone, whose wall clock every timestamp is in) in the schema
metadata, and `description` in each field's metadata.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from profiler.errors import ProfilerError
from profiler.files import write_whole
from profiler.lock import folder_lock
from profiler.plan import edited_since_built
from profiler.project import Kind
from profiler.serve.catalog import (
    ServedTable,
    analyst_tables,
    open_reader,
    table_state,
)
from profiler.serve.outdir import make_folder, writing_to
from profiler.settings import cursor as settings_cursor
from profiler.shop_time import warehouse_zone
from profiler.sqltext import literal as _lit
from profiler.sqltext import quote as _q

MANIFEST = "_manifest.json"
GENERATIONS = ".tables"
BATCH_ROWS = 131_072
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


@dataclass
class ExportResult:
    out: Path
    source: str
    written: dict[str, str] = field(default_factory=dict)  # table -> what was written
    skipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # exported before, served no more
    audiences: object | None = None  # AudienceReport
    csvs: list[Path] = field(default_factory=list)
    as_ofs: dict[str, str] = field(default_factory=dict)  # table -> as-of, when not all one
    edited: list[str] = field(default_factory=list)  # models built by SQL edited since

    def lines(self) -> list[str]:
        out = [f"export of {self.source} -> {self.out}"]
        if self.as_ofs:  # helper-46: a build stopped halfway left tables of two builds, unsaid
            tables = ", ".join(f"{name} {as_of}" for name, as_of in self.as_ofs.items())
            out.append(
                f"  warning: the tables here are of more than one as-of ({tables}): a build stopped "
                "halfway, a build or an export with --select, or a build --as-of in the past "
                "(which leaves the history as it was)? `profiler build` and an export of all "
                "tables make them one"
            )
        if self.edited:  # helper-87: after an upgrade, the old SQL's tables under the new docs
            out.append(
                f"  warning: {', '.join(self.edited)} were built by SQL edited since (a model "
                "file changed, profiler upgraded): `profiler build` first, then export"
            )
        out += [f"  {name}: {what}" for name, what in self.written.items()]
        if self.skipped:
            out.append(f"  unchanged since the last export: {', '.join(self.skipped)}")
        if self.removed:
            out.append(f"  removed (no longer served: model file gone): {', '.join(self.removed)}")
        if self.audiences is not None:
            out += self.audiences.lines()
        if self.csvs:
            out.append(f"audience ids: {', '.join(str(p) for p in self.csvs)}")
        return out


def _mixed_in_folder(manifest: dict) -> dict[str, str]:
    """Each exported table's as-of and last batch when they are not all of one build (as
    `catalog.mixed_as_ofs` says of the warehouse's)."""
    states = {
        name: f"{entry['state']['as_of']} (batch {entry['state']['watermark']})"
        for name, entry in manifest["tables"].items()
        if "as_of" in entry.get("state", {})
    }
    if len(set(states.values())) < 2:
        return {}
    return dict(sorted(states.items(), key=lambda kv: (kv[1], kv[0])))


def read_manifest(out: Path) -> dict:
    path = out / MANIFEST
    if not path.exists():
        return {"version": 1, "tables": {}}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return {"version": 1, "tables": {}}
    data.setdefault("tables", {})
    return data


def _write_manifest(out: Path, manifest: dict) -> None:
    write_whole(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))


def select_tables(
    project_dir: Path, tables: list[ServedTable], select: str | None
) -> list[ServedTable]:
    """dbt selectors over the models (`user_profile+`, `tag:audience`), plus plain table names."""
    if not select:
        return tables
    from profiler.dag import build_dag
    from profiler.project import load_project

    by_name = {t.name: t for t in tables}
    parts = select.split()
    plain = {p for p in parts if p in by_name and by_name[p].model is None}
    rest = [p for p in parts if p not in plain]
    chosen = set(plain)
    if rest:
        chosen |= set(build_dag(load_project(Path(project_dir))).select(" ".join(rest)))
    picked = [t for t in tables if t.name in chosen]
    if not picked:
        raise ProfilerError(
            f"--select {select!r} picks no analyst table; exportable: {', '.join(by_name)}"
        )
    return picked


def _schema_with_docs(schema, table: ServedTable, state: dict):
    import pyarrow as pa

    fields = [
        f.with_metadata({"description": table.columns[f.name]}) if table.columns.get(f.name) else f
        for f in schema
    ]
    meta = {
        "profiler.table": table.name,
        "profiler.description": table.description,
        "profiler.columns": json.dumps(table.columns),
        "profiler.state": json.dumps(state, sort_keys=True, default=str),
    }
    if state.get("time_zone"):  # never guessed (helper-56: an old serving copy said UTC)
        meta["profiler.time_zone"] = state["time_zone"]
    return pa.schema(fields, metadata=meta)


def _write_parquet(con, sql: str, path: Path, table: ServedTable, state: dict) -> int:
    """Stream a query into `path` (through a temporary name and a rename): Arrow batches, zstd."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp")
    cursor = settings_cursor(con)  # its own result: the stream never competes with other queries
    try:
        reader = cursor.sql(sql).to_arrow_reader(BATCH_ROWS)
        schema = _schema_with_docs(reader.schema, table, state)
        rows = 0
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            # row groups of BATCH_ROWS whatever sizes the batches come in (they follow DuckDB's
            # threads: helper-86 saw another file for the same rows at another thread count)
            pending: list = []
            for batch in reader:
                pending.append(batch)
                if sum(b.num_rows for b in pending) >= BATCH_ROWS:
                    whole = pa.Table.from_batches(pending, schema=reader.schema)
                    cut = whole.num_rows - whole.num_rows % BATCH_ROWS
                    writer.write_table(
                        whole.slice(0, cut).combine_chunks(), row_group_size=BATCH_ROWS
                    )
                    pending = whole.slice(cut).to_batches()
                    rows += cut
            if pending:
                rest = pa.Table.from_batches(pending, schema=reader.schema)
                writer.write_table(rest.combine_chunks(), row_group_size=BATCH_ROWS)
                rows += rest.num_rows
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or a stop leaves no half file behind
        raise
    finally:
        cursor.close()
    os.replace(tmp, path)
    return rows


def _order(table: ServedTable) -> str:
    """Rows in the order of the table's key (else of all its columns), so the same table gives the
    same file whatever threads or batches built it (helper-82: every file's checksum changed)."""
    model = table.model
    if model is None or not (model.unique_key or model.grain):
        return " ORDER BY ALL"
    if model.unique_key:
        keys = [*model.unique_key, *(["valid_from"] if model.kind is Kind.SCD2 else [])]
    else:
        keys = list(model.grain)  # helper-86: ORDER BY ALL cost 60% more than no order
    return " ORDER BY " + ", ".join(_q(k) for k in keys)


def _export_single(con, table: ServedTable, out: Path, state: dict) -> dict:
    path = out / f"{table.name}.parquet"
    sql = f"SELECT {table.select} FROM {_q(table.name)}{_order(table)}"
    rows = _write_parquet(con, sql, path, table, state)
    return {"state": state, "path": path.name, "rows": rows}


def _partitions(con, table: ServedTable) -> dict[str, dict]:
    column, expr = table.partition_by
    rows = con.execute(
        f"SELECT coalesce({expr}, '{NULL_PARTITION}') AS part, count(*), "
        f"coalesce(sum(hash(t)::HUGEINT), 0) FROM {_q(table.name)} AS t GROUP BY part ORDER BY part"
    ).fetchall()
    return {p: {"rows": int(n), "checksum": str(c)} for p, n, c in rows}


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _swap_link(out: Path, name: str, target: str) -> None:
    """Point `out/name` at `target` in one rename (a symlink replaced by a symlink)."""
    link = out / name
    tmp = out / f".{name}.link.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp, target_is_directory=True)
    if link.exists() and not link.is_symlink():
        shutil.rmtree(link)  # a plain folder left by someone else: replaced once, not atomic
    os.replace(tmp, link)


def _export_partitioned(
    con, table: ServedTable, out: Path, state: dict, previous: dict | None
) -> tuple[dict, str]:
    column, expr = table.partition_by
    parts = _partitions(con, table)
    generation = (previous or {}).get("generation", 0) + 1
    gens = out / GENERATIONS
    new_dir = gens / f"{table.name}-{generation}"
    if new_dir.exists():
        shutil.rmtree(new_dir)
    old_dir = out / (previous or {}).get("path", table.name)
    same_docs = bool(previous) and previous["state"].get("metadata") == state.get("metadata")
    old_parts = previous.get("partitions", {}) if same_docs else {}
    rewritten = 0
    for part, info in parts.items():
        folder = new_dir / f"{column}={part}"
        folder.mkdir(parents=True)
        old_file = old_dir / f"{column}={part}" / "part-0.parquet"
        if old_parts.get(part) == info and old_file.exists():
            _link_or_copy(old_file, folder / "part-0.parquet")
            continue
        where = f"coalesce({expr}, '{NULL_PARTITION}') = {_lit(part)}"
        _write_parquet(
            con,
            f"SELECT {table.select} FROM {_q(table.name)} WHERE {where}{_order(table)}",
            folder / "part-0.parquet",
            table,
            state,
        )
        rewritten += 1
    new_dir.mkdir(parents=True, exist_ok=True)
    _swap_link(out, table.name, f"{GENERATIONS}/{new_dir.name}")
    for old in gens.glob(f"{table.name}-*"):
        suffix = old.name.removeprefix(f"{table.name}-")
        if suffix.isdigit() and int(suffix) < generation - 1:
            shutil.rmtree(old, ignore_errors=True)
    entry = {
        "state": state,
        "path": table.name,
        "rows": sum(p["rows"] for p in parts.values()),
        "partitions": parts,
        "generation": generation,
    }
    return entry, f"{rewritten} of {len(parts)} partition(s) rewritten"


def _remove(out: Path, name: str, entry: dict) -> None:
    """A table's file, or its link and generations; only names the manifest gave them."""
    path = out / Path(entry.get("path") or name).name
    if path.is_symlink() or path.is_file():
        path.unlink()
    if entry.get("partitions") is not None:
        for old in (out / GENERATIONS).glob(f"{name}-*"):
            if old.name.removeprefix(f"{name}-").isdigit():
                shutil.rmtree(old, ignore_errors=True)


def _present(out: Path, entry: dict) -> bool:
    return (out / entry.get("path", "")).exists()


def export_tables(
    settings, out: Path, select: str | None = None, audiences_csv: bool = False
) -> ExportResult:
    """Export what changed since the last export into `out`; report sizes and overlaps of audiences."""
    from profiler.serve.audiences import audience_report, audience_tables, write_audience_csvs

    kept = "the tables written before it are there, with their manifest"
    with open_reader(settings) as (con, source), writing_to(Path(out), kept, "export"):
        out = make_folder(Path(out))  # once there is something to write
        # one export into a folder at a time: two would share the manifest and temporary names
        with folder_lock(out, "export"):
            tables = analyst_tables(con, settings.project_dir)
            if not tables:
                raise ProfilerError(
                    "no analyst tables are published yet; run `profiler build` first"
                )
            chosen = select_tables(settings.project_dir, tables, select)
            result = ExportResult(out, source)
            manifest = read_manifest(out)
            # timestamps are the shop's wall clock (Parquet: not adjusted to UTC); the zone says
            # which, for a BI tool joining shops (helper-52)
            zone = warehouse_zone(con)  # None: a serving copy from before it carried the zone
            for table in chosen:
                state = {**table_state(con, table), **({"time_zone": zone} if zone else {})}
                previous = manifest["tables"].get(table.name)
                if previous and previous.get("state") == state and _present(out, previous):
                    result.skipped.append(table.name)
                    continue
                # a kind changed to or from scd2: one file became month folders, or back
                moved = bool(previous) and ("partitions" in previous) != bool(table.partition_by)
                if table.partition_by:
                    entry, what = _export_partitioned(
                        con, table, out, state, None if moved else previous
                    )
                else:
                    entry = _export_single(con, table, out, state)
                    what = f"{entry['rows']:,} rows"
                if moved:  # the other layout goes once the new one is there, before the manifest
                    # says so: a stop between leaves the old entry, and the next export does it again
                    _remove(out, table.name, previous)
                manifest["tables"][table.name] = entry
                _write_manifest(out, manifest)  # after every table: a crash loses at most one
                result.written[table.name] = what
            served = {t.name for t in tables}
            for name in [n for n in manifest["tables"] if n not in served]:
                # a model whose file left: the serving copy dropped it, so does the export (helper-28)
                _remove(out, name, manifest["tables"].pop(name))
                _write_manifest(out, manifest)
                result.removed.append(name)
            # the folder's tables, not only this export's (helper-70: `--select user_profile` after
            # a build left it beside the other tables' older build, unsaid)
            result.as_ofs = _mixed_in_folder(manifest)
            result.edited = edited_since_built(con, settings.project_dir)
            names = audience_tables(chosen)  # the ones written or current here, not the others
            if names or not select:
                result.audiences = audience_report(con, names)
            if audiences_csv:
                result.csvs = write_audience_csvs(con, names, out / "audiences")
    return result
