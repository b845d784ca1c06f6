"""The docs site's `ml.html`: per trained model, its metrics against both baselines, ROC curve,
calibration plot and feature importances, then the recommendations' evaluation.
"""

from __future__ import annotations

from profiler.serve.docs_html import esc, fmt, page, table
from profiler.serve.docs_svg import bar_chart, line_chart


def ml_page(ctx: dict) -> str:
    from profiler.ml.metrics import METRICS, heuristic_name, shortfalls, what_it_means

    parts = [
        "<h1>Model metrics</h1><p>Out-of-time evaluation on the validation cutoff, against two baselines.</p>"
    ]
    latest: dict[str, dict] = {}
    for r in ctx["runs"]:
        latest.setdefault(r["model"], r)
    if not latest:
        parts.append(
            '<p class="muted">No model has been trained yet (<code>profiler train NAME</code>).</p>'
        )
    for name, r in latest.items():
        metrics = r["metrics"]
        heuristic = heuristic_name(r["target"])
        short = shortfalls(metrics.get("model") or {}, metrics.get("recency") or {})
        verdict = (
            f'<span class="ok">beats the {heuristic} baseline</span>'
            if r["beats_recency"]
            else f'<span class="bad">does NOT beat the {heuristic} baseline '
            f"({esc(', '.join(short))}): {what_it_means(short)}</span>"
        ) + (
            ' and <span class="ok">the base rate</span>'
            if r.get("beats_base_rate")
            else ', <span class="bad">does NOT beat the base rate</span>'
        )
        shown = [*METRICS, *(["accuracy"] if "accuracy" in (metrics.get("model") or {}) else [])]
        rows = [
            [label, *[(metrics.get(key) or {}).get(k) for k in shown]]
            for label, key in (
                ("model", "model"),
                ("base rate", "base_rate"),
                (heuristic, "recency"),
            )
        ]
        parts.append(
            f'<h2 id="{esc(name)}">{esc(name)} <span class="muted">{esc(r["model_version"])}</span></h2>'
            f"<p>{esc(r['estimator'])}, target {esc(r['target'])}, horizon {esc(r['horizon_days'])} days; "
            f"validated on {esc(fmt(r['validation_cutoff']))} ({esc(fmt(r['rows_validation']))} rows, "
            f"base rate {esc(fmt(r['base_rate']))}); {verdict}. Recency baseline: {esc(r['recency_baseline'])}.</p>"
            + table(["", *shown], rows)
        )
        roc = [
            (label, _curve(metrics, key))
            for label, key in (
                ("model", "model"),
                ("base rate", "base_rate"),
                (heuristic, "recency"),
            )
            if _curve(metrics, key)
        ]
        charts = []
        micro = " (micro-averaged over the classes)" if r["target"] != "purchase" else ""
        if roc:
            charts.append(
                _figure(
                    f"ROC curve{micro}",
                    line_chart(
                        roc,
                        xlabel="false positive rate",
                        ylabel="true positive rate",
                        title=f"ROC curve, {name}",
                    ),
                )
            )
        else:
            charts.append(
                '<p class="muted">No ROC points stored for this version (retrain to record them).</p>'
            )
        cal = [(float(b["mean_predicted"]), float(b["observed"])) for b in r["calibration"] or []]
        if cal:
            charts.append(_figure(
                "Calibration (deciles of the predicted probability)",
                line_chart([("model", cal)], xlabel="mean predicted probability", ylabel="observed rate",
                           title=f"Calibration, {name}", markers=True),
            ))  # fmt: skip
        imp = [(k, float(v)) for k, v in (r["importances"] or {}).items() if v is not None]
        if imp:
            charts.append(_figure(
                "Feature importances (permutation, top 15)",
                bar_chart(imp, title=f"Feature importances (permutation), {name}"),
            ))  # fmt: skip
        parts.append(f'<div class="charts">{"".join(charts)}</div>')
        older = [x for x in ctx["runs"] if x["model"] == name][1:]
        if older:
            parts.append(
                "<h3>Earlier versions</h3>"
                + table(
                    ["version", "as of", "ROC AUC", "log loss", "beats recency"],
                    [
                        [
                            x["model_version"],
                            x["as_of"],
                            x["roc_auc"],
                            x["log_loss"],
                            x["beats_recency"],
                        ]
                        for x in older
                    ],
                )
            )
    parts.append(_recommendation_section(ctx["recs"]))
    return page("Model metrics", "".join(parts))


def _curve(metrics: dict, key: str) -> list[tuple[float, float]]:
    pts = (metrics.get("roc_curves") or {}).get(key) or []
    return [(float(a), float(b)) for a, b in pts]


def _figure(caption: str, svg: str) -> str:
    return f'<figure class="panel"><figcaption><strong>{esc(caption)}</strong></figcaption>{svg}</figure>'


def _recommendation_section(evals: list[dict]) -> str:
    head = '<h2 id="recommendations">Recommendations</h2>'
    if not evals:
        return head + (
            '<p class="muted">Not evaluated yet: <code>profiler docs --out DIR '
            "--evaluate-recommendations CUTOFF</code>.</p>"
        )
    rows = []
    for e in evals:
        k = e.get("k", 10)
        for label, key in (("recommended", "model"), ("global popularity", "popularity")):
            m = e.get(key, {})
            rows.append(
                [e["version"], fmt(e["cutoff"]), e["horizon_days"], label, e.get("users_evaluated"),
                 m.get(f"hit_rate_at_{k}"), m.get(f"recall_at_{k}"), m.get(f"precision_at_{k}")]
            )  # fmt: skip
    best = evals[0]
    verdict = "beats" if best.get("beats_popularity") else "does NOT beat"
    return head + (
        f"<p><code>user_recommendations</code> built as of a cutoff and judged on what users bought "
        f"or carted in the next days; it {verdict} global popularity on the newest split.</p>"
        + table(
            [
                "version",
                "cutoff",
                "horizon days",
                "recommender",
                "users",
                "hit rate@10",
                "recall@10",
                "precision@10",
            ],
            rows,
        )  # fmt: skip
    )
