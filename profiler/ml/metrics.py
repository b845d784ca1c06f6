"""Honest evaluation: metrics on the out-of-time validation cutoff, and the two baselines.

Every number here is computed on rows the model never saw (a later cutoff). The baselines are
fitted on the training rows only: the base rate (class frequencies), and a heuristic a person
would try first - for purchases, days since the last purchase turned into a probability by an
isotonic (monotone) fit; for the next category, the hit rate of each of the user's own top
categories (by position, for users with as many of them) on the training rows.

For multi-class targets the binary metrics generalise as follows: `roc_auc` is the macro
one-vs-rest AUC over the classes present in the validation rows, `pr_auc` the micro-averaged
average precision, `brier` the mean squared error summed over classes, `base_rate` the share of
the most frequent class, `accuracy` the share of rows whose written label (`pick`: the class
each row is given) is right, and `lift_top_decile` that accuracy over the 10% most confident rows
divided by the accuracy over all rows (as the binary lift divides the top decile's rate of
positives by the overall rate).

Ties in the top decile (many rows with one score) count at their average: the lift a random
order among the tied rows gives on average, never an order by user id.
"""

from __future__ import annotations

import math

EPS = 1e-6
METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "lift_top_decile")


def _top_decile(order_key, hits) -> float:
    """Mean of `hits` over the 10% of rows with the highest `order_key`; the rows tied at the
    boundary score count with their mean (helper-76: a stable sort chose them by user id)."""
    import numpy as np

    key, hits = np.asarray(order_key, dtype=float), np.asarray(hits, dtype=float)
    key = np.where(np.isnan(key), -np.inf, key)  # a missing score ranks last, never first
    n = len(hits)
    top = max(1, math.ceil(n / 10))
    threshold = np.sort(key)[::-1][top - 1]
    above = key > threshold
    tied = key == threshold
    from_tied = top - int(above.sum())
    return float((hits[above].sum() + from_tied * hits[tied].mean()) / top)


def roc_points(y, scores, max_points: int = 101) -> list[list[float]] | None:
    """The ROC curve as [false positive rate, true positive rate] pairs, thinned to `max_points`
    (for the docs site's plot); None unless both classes occur."""
    import numpy as np
    from sklearn.metrics import roc_curve

    y = np.asarray(y, dtype=int)
    if not 0 < y.sum() < len(y):
        return None
    fpr, tpr, _ = roc_curve(y, np.asarray(scores, dtype=float))
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).round().astype(int))
    return [[round(float(fpr[i]), 4), round(float(tpr[i]), 4)] for i in keep]


def roc_points_multiclass(y, P, classes, max_points: int = 101) -> list[list[float]] | None:
    """The micro-averaged ROC curve: every (row, class) pair as one binary decision."""
    import numpy as np

    onehot = (
        np.asarray(y, dtype=object)[:, None] == np.asarray(list(classes), dtype=object)[None, :]
    )
    return roc_points(onehot.ravel().astype(int), np.asarray(P, dtype=float).ravel(), max_points)


def binary_metrics(y, p) -> dict[str, float | None]:
    """ROC AUC, PR AUC, log loss, Brier, base rate and lift in the top decile of scores."""
    import numpy as np
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    rate = float(y.mean()) if len(y) else 0.0
    both = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "base_rate": rate,
        "lift_top_decile": _top_decile(p, y) / rate if rate else None,
    }


def multiclass_metrics(y, P, classes, pick=None) -> dict[str, float | None]:
    """`pick`: the class index each row is given (default: its most likely class)."""
    import numpy as np
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    classes = list(classes)
    P = np.clip(np.asarray(P, dtype=float), EPS, 1)
    P = P / P.sum(axis=1, keepdims=True)
    onehot = np.asarray(y, dtype=object)[:, None] == np.asarray(classes, dtype=object)[None, :]
    onehot = onehot.astype(int)
    present = [k for k in range(len(classes)) if 0 < onehot[:, k].sum() < len(y)]
    aucs = [roc_auc_score(onehot[:, k], P[:, k]) for k in present]
    shares = onehot.mean(axis=0)
    base = float(shares.max()) if len(y) else 0.0
    pick = P.argmax(axis=1) if pick is None else np.asarray(pick, dtype=int)
    correct = onehot[np.arange(len(y)), pick]
    accuracy = float(correct.mean()) if len(y) else None
    return {
        "roc_auc": float(np.mean(aucs)) if aucs else None,
        "pr_auc": float(average_precision_score(onehot.ravel(), P.ravel()))
        if onehot.any()
        else None,
        "log_loss": float(log_loss(onehot.argmax(axis=1), P, labels=list(range(len(classes))))),
        "brier": float(np.mean(np.sum((P - onehot) ** 2, axis=1))),
        "base_rate": base,
        "accuracy": accuracy,
        "lift_top_decile": _top_decile(P[np.arange(len(y)), pick], correct) / accuracy
        if accuracy
        else None,
    }


def calibration_table(y, p, bins: int = 10) -> list[dict]:
    """Quantile bins of the predicted probability: rows, mean prediction, observed rate.

    For multi-class targets, pass the top class's probability and whether it was right.
    """
    import numpy as np

    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    out = []
    for i, idx in enumerate(np.array_split(order, min(bins, max(len(p), 1)))):
        if len(idx):
            out.append(
                {
                    "bin": i + 1,
                    "rows": int(len(idx)),
                    "mean_predicted": round(float(p[idx].mean()), 6),
                    "observed": round(float(y[idx].mean()), 6),
                    "min_predicted": round(float(p[idx].min()), 6),
                    "max_predicted": round(float(p[idx].max()), 6),
                }
            )
    return out


def shortfalls(model: dict, baseline: dict) -> list[str]:
    """Where the model is not better than the baseline, with both numbers: log loss (lower is
    better), ROC AUC and, for a written label, accuracy (higher), each when both are defined."""
    out = []
    for name, key, lower in (("log loss", "log_loss", True), ("ROC AUC", "roc_auc", False),
                             ("accuracy", "accuracy", False)):  # fmt: skip
        mine, theirs = model.get(key), baseline.get(key)
        if key == "log_loss" and (mine is None or theirs is None):
            return ["log loss not measured"]
        if mine is None or theirs is None:
            continue
        if (mine >= theirs) if lower else (mine <= theirs):
            out.append(f"{name} {mine:.4f} vs {theirs:.4f}")
    return out


def heuristic_name(target: str) -> str:
    """What the second baseline (stored as `recency`) is, in words: days since the last purchase
    for purchase models, the user's own top categories for next-category ones."""
    return "recency" if target == "purchase" else "top category"


def what_it_means(short: list[str]) -> str:
    """What a model that misses the heuristic baseline (`shortfalls`) means for its user."""
    if short and all(s.startswith("accuracy") for s in short):
        return "the category it writes is right no more often than the user's top category"
    return "do not trust its scores"


def beats(model: dict, baseline: dict) -> bool:
    """Better on every measure `shortfalls` compares."""
    return not shortfalls(model, baseline)


# Baselines: fitted on training rows, applied to validation rows.


def prior_binary(y_train, n: int):
    import numpy as np

    return np.full(n, float(np.mean(y_train)))


def recency_binary(recency_train, y_train, recency_valid):
    """Days since the last purchase -> probability by a decreasing isotonic fit on training rows.

    Users who never bought (NaN) get the training rate of never-buyers.
    """
    import numpy as np
    from sklearn.isotonic import IsotonicRegression

    r, y = np.asarray(recency_train, dtype=float), np.asarray(y_train, dtype=float)
    seen = ~np.isnan(r)
    never_rate = float(y[~seen].mean()) if (~seen).any() else float(y.mean())
    out = np.full(len(recency_valid), never_rate)
    rv = np.asarray(recency_valid, dtype=float)
    if seen.sum() >= 2:
        iso = IsotonicRegression(increasing=False, out_of_bounds="clip", y_min=0, y_max=1)
        iso.fit(r[seen], y[seen])
        has = ~np.isnan(rv)
        out[has] = iso.predict(rv[has])
    return out


def prior_multiclass(y_train, classes, n: int):
    import numpy as np

    y = np.asarray(y_train, dtype=object)
    freq = np.array([(y == c).mean() for c in classes]) + EPS
    return np.tile(freq / freq.sum(), (n, 1))


def top_candidate_multiclass(count_train, y_train, count_valid, classes):
    """Baseline "the next category is one of the user's own top ones, as often as before": for a
    user with k top categories, each class's share among the training rows of users with k of
    them (the prior where no training row has k). Its written label is the position hit most
    often: in practice "the top category again"."""
    import numpy as np

    classes = list(classes)
    y = np.asarray(y_train, dtype=object)
    k_train, k_valid = np.asarray(count_train, int), np.asarray(count_valid, int)
    P = np.tile(prior_multiclass(y, classes, 1)[0], (len(k_valid), 1))
    for k in np.unique(k_valid):
        rows = y[k_train == k]
        if len(rows):
            P[k_valid == k] = [(rows == c).mean() + EPS for c in classes]
    return P / P.sum(axis=1, keepdims=True)


def permutation_importance(
    predict, score, X, y, *, n_repeats: int = 3, random_state: int = 0, max_rows: int = 20_000
):
    """Mean drop of `score(y, predict(X))` when one column of X is shuffled, per column.

    The numbers of scikit-learn's `permutation_importance(..., n_repeats, random_state)` with a
    scorer that calls `predict`: the same shuffles (one RandomState per column, all from the same
    seed, each repeat shuffling the column again), but every shuffled copy is scored in a few large
    `predict` calls instead of one call per column and repeat. A random forest pays its per-call
    overhead once per call whatever the rows (about 20 ms for 200 trees), and 83 features x 3
    repeats made 249 calls per spec: most of the 26 s the example shop's first build trained.
    `max_rows` bounds a call: larger calls cost memory and were slower (20,000 validation rows,
    200,000 rows a call: 1.1 GB and 26 s against 0.3 GB and 19 s one copy a call).

    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    >>> first_column, loss = (lambda X: X[:, 0]), (lambda y, p: -abs(y - p).sum())
    >>> drops = permutation_importance(first_column, loss, X, X[:, 0])
    >>> float(drops[1])  # the model never looks at column 1
    0.0
    """
    import numpy as np

    n, k = X.shape
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    rng, idx, orders = np.random.RandomState(seed), np.arange(n), []
    for _ in range(n_repeats):  # sklearn shuffles the already shuffled column with idx anew
        rng.shuffle(idx)
        orders.append(idx.copy() if not orders else orders[-1][idx])
    baseline = score(y, predict(X))
    blocks = [(j, order) for j in range(k) for order in orders]
    drops = np.zeros(k)
    per_call = max(1, max_rows // max(n, 1))
    for start in range(0, len(blocks), per_call):
        chunk = blocks[start : start + per_call]
        stacked = np.concatenate([X] * len(chunk))
        for b, (j, order) in enumerate(chunk):
            stacked[b * n : (b + 1) * n, j] = X[order, j]
        predicted = predict(stacked)
        for b, (j, _) in enumerate(chunk):
            drops[j] += baseline - score(y, predicted[b * n : (b + 1) * n])
    return drops / n_repeats
