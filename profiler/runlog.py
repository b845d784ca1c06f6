"""`target/run_results.json`: what a build did, per model, in a versioned schema.

Modelled on dbt's run results artifact: dataclasses with a schema version, written atomically, and
an upgrade path for older files (`read_run_results` accepts every version it knows).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from profiler.files import write_whole

SCHEMA_VERSION = 1


@dataclass
class ValidationResult:
    expectation: str
    kwargs: dict
    success: bool
    severity: str = "error"
    unexpected_count: int | None = None
    sample: list = field(default_factory=list)
    exception: str | None = None  # set when the expectation raised: an error of the gate
    scope: str = "table"  # what it ran on: the (would-be) table, or an incremental slice
    observed_value: Any = None
    element_count: int | None = None
    sample_keys: list = field(default_factory=list)  # key columns of a few unexpected rows


@dataclass
class ModelResult:
    model: str
    kind: str
    status: str  # success | skipped | blocked | error
    action: str  # full | slice | skip
    reason: str
    rows_in: int = 0
    rows_out: int = 0
    execution_time: float = 0.0
    message: str = ""
    validations: list[ValidationResult] = field(default_factory=list)
    gate_time: float = 0.0  # of execution_time: validating the staged output


@dataclass
class RunResults:
    run_id: str
    command: str
    as_of: str | None
    started_at: str
    elapsed_time: float
    status: str
    results: list[ModelResult] = field(default_factory=list)
    metadata: dict = field(default_factory=lambda: _metadata())


def _metadata() -> dict:
    """Which writer and schema made the file. Not dbt's schema, so no `dbt_schema_version` key."""
    try:
        profiler_version = version("profiler")
    except PackageNotFoundError:  # run from a source tree that was never installed
        profiler_version = None
    return {"schema_version": SCHEMA_VERSION, "profiler_version": profiler_version}


def write_run_results(target_dir: Path, run: RunResults) -> Path:
    """Written whole (`files.write_whole`): readers never see half a file."""
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / "run_results.json"
    write_whole(path, json.dumps(asdict(run), indent=2, default=str))
    return path


def _upgrade(data: dict) -> dict:
    """Bring an older artifact to the current schema. Version 1 is the first; later ones add here."""
    version = data.get("metadata", {}).get("schema_version", 1)
    if version > SCHEMA_VERSION:
        raise ValueError(
            f"run_results.json has schema version {version}; this profiler reads up to {SCHEMA_VERSION}"
        )
    return data


def read_run_results(path: Path) -> RunResults:
    data = _upgrade(json.loads(path.read_text()))
    results = [
        ModelResult(
            **{**r, "validations": [ValidationResult(**v) for v in r.get("validations", [])]}
        )
        for r in data.pop("results", [])
    ]
    return RunResults(**data, results=results)
