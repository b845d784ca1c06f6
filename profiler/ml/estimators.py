"""The scikit-learn estimators a spec can name, and the pipeline around them.

Every estimator gets the same preprocessing, fitted on training rows only: numeric features
through a signed log1p (counts and money are heavy-tailed; monotone, so trees do not care),
median imputation with missing-value indicators (a NULL often means "never": never bought, no
rating), and standard scaling; categorical features one-hot over their most frequent values.
Defaults are chosen for a few thousand rows and are overridden by the spec's `params`.
"""

from __future__ import annotations

from profiler.errors import ProfilerError

SEED = 0
# rows a random forest's tree draws at most: on the 10M-event benchmark shop (187,600 training
# rows, horizon 7 days) its two fits took 35 s at all rows and 17 s at 50,000 (training 76 s ->
# 57 s), ROC AUC 0.7965 -> 0.7958; shops under 50,000 training rows are unaffected
FOREST_TREE_ROWS = 50_000
ONEHOT_MAX = 20  # categorical features: the most frequent values, the rest as one "infrequent"

DEFAULTS: dict[str, dict] = {
    "logistic_regression": {"C": 0.5, "max_iter": 2000},
    "naive_bayes": {},
    "decision_tree": {"max_depth": 5, "min_samples_leaf": 20, "random_state": SEED},
    "random_forest": {
        "n_estimators": 300,
        "min_samples_leaf": 10,
        "max_features": "sqrt",
        "random_state": SEED,
        "n_jobs": 1,  # fit_pipeline grows the trees on every core; predictions stay serial
    },
    "linear_svm": {"C": 0.1, "max_iter": 5000, "random_state": SEED},
    "hist_gradient_boosting": {
        "max_iter": 150,
        "learning_rate": 0.05,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 20,
        "l2_regularization": 1.0,
        "early_stopping": False,
        "random_state": SEED,
    },
}


def one_thread():
    """Limit OpenMP/BLAS to one thread: on small data (and on busy 2-core machines) more threads
    make histogram gradient boosting 10x slower, not faster."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def signed_log1p(X):
    """sign(x) * log(1 + |x|) of a numeric block (object arrays are cast to float first)."""
    import numpy as np

    X = np.asarray(X, dtype=float)
    return np.sign(X) * np.log1p(np.abs(X))


def as_float(X):
    import numpy as np

    return np.asarray(X, dtype=float)


def make_estimator(name: str, params: dict, where: str = "spec"):
    """The bare classifier named by a spec, with the spec's parameters over the defaults."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.svm import LinearSVC
    from sklearn.tree import DecisionTreeClassifier

    classes = {
        "logistic_regression": LogisticRegression,
        "naive_bayes": GaussianNB,
        "decision_tree": DecisionTreeClassifier,
        "random_forest": RandomForestClassifier,
        "linear_svm": LinearSVC,
        "hist_gradient_boosting": HistGradientBoostingClassifier,
    }
    options = {**DEFAULTS[name], **params}
    calibration = options.pop("calibration", "sigmoid") if name == "linear_svm" else None
    try:
        est = classes[name](**options)
    except TypeError as err:
        raise ProfilerError(f"{where}: [estimator] params do not fit {name}: {err}") from None
    if name == "linear_svm":
        # LinearSVC has no probabilities; calibrate its margins on held-out folds of the training rows
        est = CalibratedClassifierCV(est, method=calibration, cv=3)
    return est


def make_pipeline(spec, n_numeric: int, n_categorical: int):
    """Preprocessing + the spec's estimator, as one pipeline fitted and saved together."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    steps = []
    if n_numeric:
        numeric = Pipeline(
            [
                ("float", FunctionTransformer(signed_log1p if spec.log1p else as_float)),
                (
                    "impute",
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                ),
                ("scale", StandardScaler()),
            ]
        )
        steps.append(("numeric", numeric, list(range(n_numeric))))
    if n_categorical:
        categorical = Pipeline(
            [
                (
                    "impute",
                    SimpleImputer(missing_values=None, strategy="constant", fill_value="(none)"),
                ),
                (
                    "onehot",
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        max_categories=ONEHOT_MAX,
                        sparse_output=False,
                    ),
                ),
            ]
        )
        steps.append(
            ("categorical", categorical, list(range(n_numeric, n_numeric + n_categorical)))
        )
    return Pipeline(
        [
            ("prepare", ColumnTransformer(steps)),
            ("model", make_estimator(spec.estimator, spec.params, str(spec.path))),
        ]
    )


def fit_pipeline(spec, n_numeric: int, n_categorical: int, X, y):
    """Fit; a parameter the estimator rejects becomes a one-line error naming the spec.

    A random forest (unless the spec sets these) draws at most FOREST_TREE_ROWS rows per tree
    (scikit-learn's `max_samples`, with bootstrap on), so fitting stops growing with the shop, and
    grows its trees on every core (the same forest: CDNOW's training 23 s -> 18 s). Its
    predictions then run on one thread: a parallel sum of the trees' votes changes the last bits
    of a score from run to run.
    """
    pipeline = make_pipeline(spec, n_numeric, n_categorical)
    forest = spec.estimator == "random_forest"
    if forest and "max_samples" not in spec.params and spec.params.get("bootstrap", True):
        pipeline.set_params(model__max_samples=min(1.0, FOREST_TREE_ROWS / max(len(y), 1)))
    parallel = forest and "n_jobs" not in spec.params
    if parallel:
        pipeline.set_params(model__n_jobs=-1)
    try:
        pipeline.fit(X, y)
    except (ValueError, TypeError) as err:
        raise ProfilerError(
            f"{spec.path}: {spec.estimator} could not be fitted: {str(err).splitlines()[0]}"
        ) from None
    if parallel:
        pipeline.set_params(model__n_jobs=1)
    return pipeline
