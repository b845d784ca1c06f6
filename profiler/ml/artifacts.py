"""Trained models on disk: `target/models/NAME/VERSION/model.joblib` and `metadata.json`.

The metadata says what the model needs (the feature list with DuckDB types, the classes) and how
good it was (metrics, baselines, training window), so a person can read it and scoring can refuse
features that do not match the ones the model was trained on.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from profiler.errors import ProfilerError
from profiler.files import write_whole
from profiler.ml.features import Feature

SCHEMA_VERSION = 1
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"


@dataclass
class Artifact:
    path: Path
    metadata: dict
    pipeline: object

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def version(self) -> str:
        return self.metadata["version"]

    @property
    def classes(self) -> list:
        return self.metadata["classes"]

    def check_features(self, features: list[Feature]) -> None:
        """Refuse to score features the model was not trained on: one line saying what differs."""
        expected = [(f["name"], f["dtype"], f["categorical"]) for f in self.metadata["features"]]
        actual = [(f.name, f.dtype, f.categorical) for f in features]
        if expected == actual:
            return
        missing = [e[0] for e in expected if e[0] not in {a[0] for a in actual}]
        extra = [a[0] for a in actual if a[0] not in {e[0] for e in expected}]
        retyped = [
            f"{a[0]} {e[1]}->{a[1]}" for e in expected for a in actual if e[0] == a[0] and e != a
        ]
        what = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"new {', '.join(extra)}" if extra else "",
                f"changed {', '.join(retyped)}" if retyped else "",
                "columns in another order" if not (missing or extra or retyped) else "",
            )
            if part
        )
        raise ProfilerError(
            f"model {self.name} version {self.version} ({self.path}) was trained on other "
            f"features than the tables now have ({what}); retrain it: `profiler train {self.name}`"
        )


def artifact_dir(target_dir: Path, name: str, version: str) -> Path:
    return Path(target_dir) / "models" / name / version


def _plain_params(pipeline) -> dict:
    model = pipeline.named_steps["model"]
    return {
        k: v
        for k, v in model.get_params(deep=False).items()
        if v is None or isinstance(v, bool | int | float | str)
    }


def metadata_for(trained) -> dict:
    cuts = trained.cutoffs
    return {
        "schema_version": SCHEMA_VERSION,
        "name": trained.name,
        "version": trained.version,
        "spec": trained.spec.raw,
        "target": trained.spec.target,
        "horizon_days": trained.spec.horizon_days,
        "estimator": trained.spec.estimator,
        # what the estimator was fitted with: the spec's params over the defaults and the row cap
        "estimator_params": _plain_params(trained.pipeline),
        "features": [f.as_dict() for f in trained.features],
        "classes": trained.classes,
        "data_fingerprint": trained.data_fingerprint,
        "inputs_fingerprint": trained.inputs_fingerprint,
        "data_lineage": trained.data_lineage,
        "training_window": {
            "as_of": cuts.as_of.isoformat(),
            "final_cutoffs": [c.isoformat() for c in cuts.final],
            "labels_until": cuts.labels_until.isoformat(),
        },
        "validation": {
            "train_cutoffs": [c.isoformat() for c in cuts.train],
            "validation_cutoff": cuts.validation.isoformat(),
            "rows": trained.rows,
        },
        "metrics": trained.metrics,
        "baselines": trained.baselines,
        "recency_baseline": trained.recency_baseline,
        "beats_recency": trained.beats_recency,
        "beats_base_rate": trained.beats_base_rate,
        "calibration": trained.calibration,
        "importances": trained.importances,
    }


def save_artifact(target_dir: Path, trained) -> Path:
    """Write the model and its metadata; the folder appears complete or not at all.

    A version is one spec, feature SQL and data (lineage, batches, as-of), so an intact folder
    of it stands: a build of a copy of this warehouse saved it at the same moment, or this one
    did before. Only a damaged one is replaced (it was deleted, then renamed over: two builds
    saving one version at once failed with `Directory not empty`, helper-113)."""
    import shutil

    import joblib

    final = artifact_dir(target_dir, trained.name, trained.version)
    if load_artifact(target_dir, trained.name, trained.version) is not None:
        return final
    tmp = final.with_name(final.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    joblib.dump(trained.pipeline, tmp / MODEL_FILE)
    (tmp / METADATA_FILE).write_text(json.dumps(metadata_for(trained), indent=2, default=str))
    old = final.with_name(final.name + f".old{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        final.rename(old)  # the damaged one, moved aside in one step
    try:
        tmp.rename(final)
    except OSError:  # saved by another build in between: theirs stands
        if load_artifact(target_dir, trained.name, trained.version) is None:
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_artifact(target_dir: Path, name: str, version: str) -> Artifact | None:
    """The artifact of that version, or None when it was never trained, is incomplete or cannot
    be read (a file cut short or edited: helper-46, every build failed on it): trained again."""
    folder = artifact_dir(target_dir, name, version)
    if not (folder / MODEL_FILE).exists() or not (folder / METADATA_FILE).exists():
        return None
    try:
        return read_artifact(folder)
    except ProfilerError:
        raise  # another artifact schema: said
    except Exception:  # unpickling or JSON errors of a damaged file, whatever their type
        return None


def recent_artifact(
    target_dir: Path, name: str, inputs_fp: str, as_of, max_age_days: int, lineage: str | None
) -> Artifact | None:
    """The newest artifact trained on the same spec and feature SQL, on this warehouse's data
    (`lineage`, see `state.data_lineage`), at most `max_age_days` of as-of time before `as_of`:
    what `profiler build` scores with instead of retraining."""
    from datetime import datetime, timedelta

    best: tuple[datetime, Path] | None = None
    for meta_path in (Path(target_dir) / "models" / name).glob(f"*/{METADATA_FILE}"):
        try:
            meta = json.loads(meta_path.read_text())
            trained_at = datetime.fromisoformat(meta["training_window"]["as_of"])
        except (OSError, ValueError, KeyError):
            continue
        fresh = timedelta(0) <= as_of - trained_at <= timedelta(days=max_age_days)
        if (
            meta.get("inputs_fingerprint") == inputs_fp
            and meta.get("data_lineage") == lineage
            and fresh
            and (best is None or trained_at > best[0])
        ):
            best = (trained_at, meta_path.parent)
    return load_artifact(target_dir, name, best[1].name) if best else None


FAILED_FILE = "nothing_to_learn.json"  # beside the versions: the build's last failed training


GROWTH = 1.1  # data grown by a tenth since a training found nothing to learn: try again


def remember_failure(
    target_dir: Path,
    name: str,
    inputs_fp: str,
    lineage: str | None,
    as_of,
    loaded: int,
    reason: str,
) -> None:
    """A build's training that found nothing to learn, kept as `recent_artifact` keeps a model,
    with the lines loaded then (`loaded`)."""
    folder = Path(target_dir) / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "inputs_fingerprint": inputs_fp,
        "data_lineage": lineage,
        "as_of": as_of.isoformat(),
        "loaded": loaded,
        "reason": reason,
    }
    write_whole(folder / FAILED_FILE, json.dumps(record, indent=2))  # the folder is shared


def recent_failure(
    target_dir: Path,
    name: str,
    inputs_fp: str,
    as_of,
    max_age_days: int,
    lineage: str | None,
    loaded: int,
) -> str | None:
    """Why the last build's training of the same spec and feature SQL on this warehouse's data,
    at most `max_age_days` of as-of time before `as_of` and on less than a tenth fewer lines
    than `loaded` now, found nothing to learn; None otherwise. A build then does not pay for the
    training sets again (helper-83: 15 s on every daily batch of a shop whose categories were
    too fine), and a shop whose data grows fast (a young one) is tried again soon (helper-86)."""
    from datetime import datetime, timedelta

    try:
        record = json.loads((Path(target_dir) / "models" / name / FAILED_FILE).read_text())
        failed_at = datetime.fromisoformat(record["as_of"])
    except (OSError, ValueError, KeyError):
        return None
    if (
        record.get("inputs_fingerprint") != inputs_fp
        or record.get("data_lineage") != lineage
        or not timedelta(0) <= as_of - failed_at <= timedelta(days=max_age_days)
        or loaded >= GROWTH * record.get("loaded", 0)
    ):
        return None
    return (
        f"{record['reason']} (at as-of {failed_at:%Y-%m-%d %H:%M:%S}, on {record['loaded']:,} "
        f"lines; a build tries again once {max_age_days} day(s) of data or a tenth more lines "
        f"arrive, or the spec or its feature SQL changes; `profiler train {name}` now)"
    )


def read_artifact(folder: Path) -> Artifact:
    import joblib

    metadata = json.loads((folder / METADATA_FILE).read_text())
    if metadata.get("schema_version") != SCHEMA_VERSION:
        raise ProfilerError(
            f"{folder}: artifact schema {metadata.get('schema_version')} is not {SCHEMA_VERSION}; retrain"
        )
    return Artifact(folder, metadata, joblib.load(folder / MODEL_FILE))
