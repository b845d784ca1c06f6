"""Classifier specs: one `models/<name>.toml` per model, readable by an analyst.

A spec says what to predict (the target and its horizon), which feature tables and columns the
model reads, the scikit-learn estimator and its parameters, and how many stacked cutoffs make the
training set. The first `[[features]]` table is the population: one training row (and one score)
per user in it. Example, `models/purchase_propensity.toml`:

    target = "purchase"
    horizon_days = 30
    cutoffs = 2
    [[features]]
    table = "user_profile"
    columns = "numeric"
    [estimator]
    name = "hist_gradient_boosting"
    params = { max_iter = 150 }
    [baseline]
    recency = "rfm_age_days - rfm_recency_days"
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from profiler.errors import ProfilerError

SPEC_DIR = "models"
TARGETS = ("purchase", "next_category")
ESTIMATORS = (
    "logistic_regression",
    "naive_bayes",
    "decision_tree",
    "random_forest",
    "linear_svm",
    "hist_gradient_boosting",
)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_KNOWN = {
    "description",
    "target",
    "horizon_days",
    "cutoffs",
    "step_days",
    "features",
    "estimator",
    "baseline",
    "candidates",
    "label_events",
    "label_category",
    "log1p",
    "retrain_every_days",
}


@dataclass(frozen=True)
class FeatureSource:
    """Columns read from one feature table: `"numeric"` (all numeric columns) or a list."""

    table: str
    columns: str | tuple[str, ...] = "numeric"
    exclude: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    target: str
    horizon_days: int
    features: tuple[FeatureSource, ...]
    estimator: str
    params: dict = field(default_factory=dict)
    cutoffs: int = 1
    step_days: int | None = None  # between stacked cutoffs; default: the horizon
    recency: str | None = None  # SQL over the feature tables: days since the last purchase
    # next_category: SQL for the user's own top categories, best first
    candidates: tuple[str, ...] = ()
    label_events: tuple[str, ...] = ("purchase", "cart")
    # next_category: SQL over the raw event `e` and its item `i` giving the label's category, in
    # the same form as the candidates (e.g. the profile's normalised category path)
    label_category: str = "coalesce(e.category_id, i.category_id)"
    log1p: bool = True  # signed log1p of numeric features (counts are heavy-tailed)
    # `profiler build` reuses a model trained on the same spec and feature SQL up to this many
    # days (of as-of time) old, and only scores; `profiler train` always trains.
    retrain_every_days: int = 7
    description: str = ""
    raw: dict = field(default_factory=dict)

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.table for f in self.features))

    @property
    def step(self) -> int:
        return self.step_days or self.horizon_days

    @property
    def fingerprint(self) -> str:
        """What the spec computes: the parsed content, so comments and layout do not count (nor
        the retraining cadence, which says when to train, not what)."""
        what = {k: v for k, v in self.raw.items() if k != "retrain_every_days"}
        body = json.dumps(what, sort_keys=True, default=str)
        return hashlib.sha256(f"{self.name}\x1f{body}".encode()).hexdigest()[:16]

    def with_horizon(self, days: int | None) -> ModelSpec:
        """The spec with `--horizon-days` applied; stacked cutoffs keep their own step if set."""
        if days is None or days == self.horizon_days:
            return self
        if days < 1:
            raise ProfilerError("--horizon-days must be at least 1")
        from dataclasses import replace

        return replace(self, horizon_days=days, raw={**self.raw, "horizon_days": days})


def _tuple(value, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfilerError(f"{where}: {key} must be a list of names")
    return tuple(value)


def _features(raw, where: str) -> tuple[FeatureSource, ...]:
    if not isinstance(raw, list) or not raw:
        raise ProfilerError(
            f'{where}: add at least one [[features]] table, e.g. table = "user_profile"'
        )
    out = []
    for entry in raw:
        table = entry.get("table")
        if not isinstance(table, str) or not _NAME.match(table):
            raise ProfilerError(f'{where}: every [[features]] needs table = "<feature table>"')
        unknown = set(entry) - {"table", "columns", "exclude", "categorical"}
        if unknown:
            raise ProfilerError(f"{where}: [[features]] {table}: unknown key(s) {sorted(unknown)}")
        columns = entry.get("columns", "numeric" if "categorical" not in entry else [])
        if columns != "numeric":
            columns = _tuple(columns, where, "columns")
        out.append(
            FeatureSource(
                table,
                columns,
                _tuple(entry.get("exclude", []), where, "exclude"),
                _tuple(entry.get("categorical", []), where, "categorical"),
            )
        )
    return tuple(out)


def parse_spec(path: Path, text: str | None = None) -> ModelSpec:
    """Read one spec. Errors name the file, because that is where the fix goes."""
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text() if text is None else text)
    except tomllib.TOMLDecodeError as err:
        raise ProfilerError(f"{where}: not valid TOML: {err}") from None
    name = path.stem
    if not _NAME.match(name):
        raise ProfilerError(f"{where}: model name {name!r} must be lower_snake_case")
    unknown = set(raw) - _KNOWN
    if unknown:
        raise ProfilerError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KNOWN))}"
        )
    target = raw.get("target")
    if target not in TARGETS:
        raise ProfilerError(f"{where}: target must be one of {', '.join(TARGETS)}")
    est = raw.get("estimator", {})
    if est.get("name") not in ESTIMATORS:
        raise ProfilerError(f"{where}: [estimator] name must be one of {', '.join(ESTIMATORS)}")
    ints = {
        k: raw.get(k, d)
        for k, d in (("horizon_days", 30), ("cutoffs", 1), ("retrain_every_days", 7))
    }
    for key, value in ints.items():
        if not isinstance(value, int) or value < 1:
            raise ProfilerError(f"{where}: {key} must be a whole number >= 1")
    step = raw.get("step_days")
    if step is not None and (not isinstance(step, int) or step < 1):
        raise ProfilerError(f"{where}: step_days must be a whole number >= 1")
    baseline = raw.get("baseline", {})
    candidates = _tuple(raw.get("candidates", []), where, "candidates")
    if target == "next_category" and not candidates:
        raise ProfilerError(
            f"{where}: a next_category model needs candidates = [...]: the feature columns "
            "holding the user's own top categories, best first"
        )
    return ModelSpec(
        name=name,
        path=path,
        target=target,
        horizon_days=ints["horizon_days"],
        features=_features(raw.get("features"), where),
        estimator=est["name"],
        params=dict(est.get("params", {})),
        cutoffs=ints["cutoffs"],
        step_days=step,
        recency=baseline.get("recency"),
        candidates=candidates,
        label_events=_tuple(raw.get("label_events", ["purchase", "cart"]), where, "label_events"),
        label_category=str(raw.get("label_category", ModelSpec.label_category)),
        log1p=bool(raw.get("log1p", True)),
        retrain_every_days=ints["retrain_every_days"],
        description=str(raw.get("description", "")),
        raw=raw,
    )


def load_specs(project_dir: Path) -> dict[str, ModelSpec]:
    """Every spec of the project, by name (an empty dict when there is no models/ folder)."""
    folder = Path(project_dir) / SPEC_DIR
    return {p.stem: parse_spec(p) for p in sorted(folder.glob("*.toml"))}


def load_spec(project_dir: Path, name: str) -> ModelSpec:
    specs = load_specs(project_dir)
    if name not in specs:
        known = ", ".join(specs) or "none"
        raise ProfilerError(
            f"no model spec {SPEC_DIR}/{name}.toml in {project_dir} (specs: {known})"
        )
    return specs[name]
