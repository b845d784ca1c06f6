"""Find the models in `sql/` and `features/` and read their headers (and the macros they call).

A model is one `.sql` file: a header of `-- key: value` comment lines, then one SELECT. The file
stem is the model's name and the name of the relation it publishes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from profiler.errors import ProfilerError
from profiler.macros import Macro, load_macros

MODEL_DIRS = ("sql", "features")
_HEADER_LINE = re.compile(r"^--\s?(?P<key>[a-z_]+):\s*(?P<value>.*)$")
_COLUMN_LINE = re.compile(r"^--\s{2,}(?P<name>[A-Za-z_][A-Za-z0-9_]*):\s*(?P<doc>.*)$")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# the warehouse's own tables and names, which a model of that name would overwrite or shadow
# (helper-60: a model `quarantine` replaced the quarantined lines with its one row)
RESERVED = ("raw_events", "raw_users", "raw_items", "raw_feedback", "quarantine", "as_of_time")


class Kind(StrEnum):
    VIEW = "view"
    TABLE = "table"
    INCREMENTAL_BY_TIME = "incremental_by_time"
    INCREMENTAL_BY_KEY = "incremental_by_key"
    SCD2 = "scd2"
    PYTHON = (
        "python"  # rows computed in Python (the model layer's scores), staged and gated like SQL
    )
    EPHEMERAL = "ephemeral"  # never built: inlined as a subquery into the models that read it

    @property
    def is_built(self) -> bool:
        """It has a relation, state and a gate of its own (all kinds but ephemeral)."""
        return self is not Kind.EPHEMERAL

    @property
    def is_incremental(self) -> bool:
        return self in (Kind.INCREMENTAL_BY_TIME, Kind.INCREMENTAL_BY_KEY)

    @property
    def keeps_history(self) -> bool:
        """Its rows record past builds, so a full refresh would lose information."""
        return self is Kind.SCD2


@dataclass(frozen=True)
class Model:
    name: str
    path: Path
    sql: str
    kind: Kind
    header_lines: int
    description: str = ""
    time_column: str | None = None
    unique_key: tuple[str, ...] = ()
    lookback: int = 0
    grain: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    track_columns: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()  # python models only: SQL models carry their lineage in SQL
    inlined: tuple[tuple[str, str], ...] = ()  # (name, SQL) of the ephemeral models it reads
    macros: tuple[Macro, ...] = ()  # the project's macros (macros/*.sql), called or not

    @property
    def data_fingerprint(self) -> str:
        """Changes to what the model computes; a change rebuilds it and everything downstream.

        Comments and whitespace in the SQL do not count; descriptions and column docs do not either
        (they are metadata, see `metadata_fingerprint`).
        """
        parts = [text for _, text in self._computes]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]

    @property
    def fingerprint_parts(self) -> dict[str, str]:
        """What each part of `data_fingerprint` hashed to, by the name a build's reason gives it
        (`its SQL`, `macro category_levels`, `ephemeral stg_events`, `unique_key`...)."""
        return {
            label: hashlib.sha256(text.encode()).hexdigest()[:12] for label, text in self._computes
        }

    @property
    def _computes(self) -> list[tuple[str, str]]:
        """(name, text) of what the model computes from: its SQL, the ephemeral models and
        macros it calls, its kind and settings."""
        from profiler.lineage import normalized_sql

        return [
            ("its SQL", normalized_sql(self.sql)),
            *((f"ephemeral {name}", f"{name}:{normalized_sql(sql)}") for name, sql in self.inlined),
            *((f"macro {m.name}", m.fingerprint) for m in self.macros_called),
            ("kind", self.kind.value),
            ("time_column", str(self.time_column)),
            ("unique_key", ",".join(self.unique_key)),
            ("lookback", str(self.lookback)),
            ("track_columns", ",".join(self.track_columns)),
        ]

    @property
    def macros_called(self) -> list[Macro]:
        """The project macros its SQL (and its ephemeral parents') calls outside comments, and
        those they call."""
        from profiler.lineage import normalized_sql
        from profiler.macros import called

        texts = [normalized_sql(sql) for sql in (self.sql, *(s for _, s in self.inlined))]
        return called(texts, self.macros)

    @property
    def metadata_fingerprint(self) -> str:
        parts = [self.description, repr(sorted(self.columns.items())), ",".join(self.tags)]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def parse_model(path: Path, text: str | None = None) -> Model:
    """Read one model file. Errors name the file and line, because that is where the fix goes."""
    text = path.read_text() if text is None else text
    lines = text.splitlines()
    header: dict[str, str] = {}
    columns: dict[str, str] = {}
    in_columns = False
    n = 0
    for n, line in enumerate(lines, start=1):
        if not line.startswith("--"):
            if line.strip():
                n -= 1
                break
            continue
        col = _COLUMN_LINE.match(line)
        if in_columns and col:
            columns[col.group("name")] = col.group("doc").strip()
            continue
        m = _HEADER_LINE.match(line)
        if not m:
            continue
        key, value = m.group("key"), m.group("value").strip()
        in_columns = key == "columns"
        if not in_columns:
            header[key] = value
    name = path.stem
    where = f"{path}:1"
    if not _NAME.match(name):
        raise ProfilerError(
            f"{where}: model name {name!r} must be lower_snake_case (it becomes a table name)"
        )
    if name in RESERVED:
        raise ProfilerError(
            f"{where}: {name!r} is the warehouse's own table or name, which a model would "
            f"overwrite; rename the file (reserved: {', '.join(RESERVED)})"
        )
    known = {
        "kind",
        "time_column",
        "unique_key",
        "lookback",
        "grain",
        "tags",
        "description",
        "track_columns",
    }
    unknown = set(header) - known
    if unknown:
        raise ProfilerError(
            f"{where}: unknown header key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
        )
    try:
        kind = Kind(header.get("kind", "table"))
    except ValueError:
        raise ProfilerError(
            f"{where}: kind {header['kind']!r} is not one of {', '.join(k.value for k in Kind)}"
        ) from None
    try:
        lookback = int(header.get("lookback", "0"))
    except ValueError:
        raise ProfilerError(f"{where}: lookback must be a whole number of days") from None
    model = Model(
        name=name,
        path=path,
        sql="\n".join(lines[n:]).strip().rstrip(";").strip(),
        kind=kind,
        header_lines=n,
        description=header.get("description", ""),
        time_column=header.get("time_column") or None,
        unique_key=_split_list(header.get("unique_key", "")),
        lookback=lookback,
        grain=_split_list(header.get("grain", "")),
        tags=_split_list(header.get("tags", "")),
        track_columns=_split_list(header.get("track_columns", "")),
        columns=columns,
    )
    _check_kind_options(model, where)
    return model


def _check_kind_options(model: Model, where: str) -> None:
    """Fail fast on a kind without what it needs, like dbt-duckdb's strategies do."""
    if not model.sql:
        raise ProfilerError(f"{where}: the model has no SQL after its header")
    if model.kind is Kind.PYTHON:  # helper-60: accepted, then failed at the gate
        raise ProfilerError(
            f"{where}: kind python is the model layer's (user_scores, from models/*.toml); a SQL "
            f"model is one of {', '.join(k.value for k in Kind if k is not Kind.PYTHON)}"
        )
    if model.kind is Kind.INCREMENTAL_BY_TIME and not model.time_column:
        raise ProfilerError(f"{where}: kind incremental_by_time needs a `-- time_column:` header")
    if model.kind in (Kind.INCREMENTAL_BY_KEY, Kind.SCD2) and not model.unique_key:
        raise ProfilerError(f"{where}: kind {model.kind.value} needs a `-- unique_key:` header")
    if model.kind is Kind.SCD2 and not model.track_columns:
        raise ProfilerError(f"{where}: kind scd2 needs a `-- track_columns:` header")
    if model.lookback < 0:
        raise ProfilerError(f"{where}: lookback cannot be negative")


def require_models(project_dir: Path) -> None:
    """Refuse a folder without models: a build there would do nothing and say it succeeded."""
    if not any(any((project_dir / folder).rglob("*.sql")) for folder in MODEL_DIRS):
        raise ProfilerError(
            f"{project_dir}: no models (no .sql file in {' or '.join(f'{d}/' for d in MODEL_DIRS)}); "
            "run profiler in the project folder or set PROFILER_PROJECT_DIR"
        )


def load_project(project_dir: Path) -> dict[str, Model]:
    """All models of the project, by name. Two files with one name are an error.

    The model layer adds one python model, `user_scores`, that reads the feature tables the
    classifier specs in `models/*.toml` name; without specs it is there only when a SQL model
    reads it (then as an empty table, so the profile can always join it).
    """
    from profiler import parse_cache

    parse_cache.use(project_dir / "target" / "partial_parse.json")
    models: dict[str, Model] = {}
    for folder in MODEL_DIRS:
        for path in sorted((project_dir / folder).rglob("*.sql")):
            model = parse_model(path)
            if model.name in models:
                raise ProfilerError(
                    f"{path}:1: model {model.name!r} is also defined in {models[model.name].path}"
                )
            models[model.name] = model
    if not models:
        require_models(project_dir)
    macros = load_macros(project_dir)
    if macros:  # each model's fingerprint holds the macros it calls
        models = {name: replace(model, macros=macros) for name, model in models.items()}
    specs = any((project_dir / "models").glob("*.toml"))
    if not specs and not any("user_scores" in m.sql.lower() for m in models.values()):
        return models
    from profiler.ml.step import scores_model

    scores = scores_model(project_dir)
    if scores.name in models:
        raise ProfilerError(
            f"{models[scores.name].path}:1: {scores.name} is the model layer's table; rename this model"
        )
    models[scores.name] = replace(scores, macros=macros)  # its labels may call them
    return models
