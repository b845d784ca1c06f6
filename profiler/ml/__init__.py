"""The model layer: scikit-learn classifiers trained on the profile, evaluated honestly.

One job per module:

- `spec`: `models/<name>.toml`, what to predict and from which feature tables/columns.
- `pit`: point-in-time builds: the project's own models built as of a cutoff, in a scratch catalog.
- `features`: the feature columns a spec reads, their schema, and the SELECT that reads them.
- `targets`: labels, from raw events in (cutoff, cutoff + horizon].
- `estimators`: the six estimators and the preprocessing pipeline around them.
- `train`: cutoffs, out-of-time evaluation against baselines, refit; the model version.
- `metrics`: ROC/PR AUC, log loss, Brier, lift, calibration; the two baselines.
- `artifacts`: `target/models/NAME/VERSION/` (joblib + metadata.json); feature-schema check.
- `score`: scores for every user, and the `user_scores` table.
- `runs`: `_profiler.model_runs`, one row per trained version.
- `step`: what `profiler build` calls (`scores_for_build`, `spec_fingerprint`, `feature_tables`).
- `command`: `profiler train`.

scikit-learn and pyarrow are imported inside functions, so importing this package is cheap.
"""
