"""`profiler docs --out DIR`: a static site about the project and its data, opened from disk.

Pages: `index.html` (summary, the lineage graph with every node a link, the profile lookup),
`models.html` (every model, and every macro with its callers) and `models/<model>.html` (header,
columns with types and docs, SQL, state, expectations with their latest results, macros called),
`sources.html`, `quality.html` (every suite and its latest results), `ml.html` (per trained
model: metrics against both baselines, ROC curve, calibration plot, feature importances; the
recommendation evaluation), `distributions.html` (tracked profile columns over time, from the
SCD2 history) and `audiences.html` (sizes, overlaps).
No server and no network: CSS, JS and SVG are inline; the lookup's data is in
`assets/profiles/<shard>.js`, loaded with a relative script tag for the one user looked up.
The site is written to a temporary folder and renamed into place. Its data is read by `docs_data`,
its HTML and SVG pieces are `docs_html`'s and `docs_svg`'s, and `ml.html` is `docs_ml`'s.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from profiler.project import Kind
from profiler.serve import docs_data as data
from profiler.serve.docs_html import LOOKUP_JS, esc, fmt, page, status, table
from profiler.serve.docs_ml import ml_page
from profiler.serve.docs_svg import KIND_COLOURS, lineage_svg, stacked_bars
from profiler.serve.outdir import SITE_MARKER


def docs_command(settings, out: Path, evaluate_cutoff: str | None, horizon_days: int) -> list[str]:
    from profiler.lock import folder_lock
    from profiler.serve.catalog import open_reader
    from profiler.serve.outdir import site_folder, writing_to

    out = site_folder(Path(out))  # before any work: a folder of other files is never replaced
    lines: list[str] = []
    if evaluate_cutoff:
        from profiler.serve.recommend_eval import evaluate_command

        lines += evaluate_command(settings, evaluate_cutoff, horizon_days).lines()
    kept = "the site there is as it was (it is only ever replaced whole)"
    with (
        open_reader(settings) as (con, source),
        writing_to(out, kept, "docs"),
        folder_lock(out, "docs"),  # one site build at a time: they share `.<out>.tmp` and `.old`
    ):
        pages = build_site(con, settings, out)
    lines.append(f"docs of {source}: {pages} pages -> {out / 'index.html'}")
    return lines


def build_site(con, settings, out: Path) -> int:
    """Write the whole site into `out` (replaced as a whole: `outdir.site_folder` says when it
    may be); returns the number of pages."""
    from profiler.dag import build_dag
    from profiler.project import load_project
    from profiler.serve.audiences import audience_report, audience_tables
    from profiler.serve.catalog import analyst_tables
    from profiler.serve.recommend_eval import latest_evaluations
    from profiler.serve.show import column_dimensions

    dag = build_dag(load_project(settings.project_dir))
    ctx = {
        "dag": dag,
        "states": data.model_states(con),
        "types": data.column_types(con),
        "run": data.latest_run(con),
        "suites": data.read_suites(settings.project_dir),
        "validations": data.latest_validations(con),
        "runs": data.model_runs(con),
        "recs": latest_evaluations(con),
        "project": settings.project_dir,
    }
    audiences = audience_tables(analyst_tables(con, settings.project_dir))
    history = dag.models.get(data.HISTORY)
    ctx["distributions"] = data.distributions(con, history.track_columns if history else ())
    ctx["audiences"] = audience_report(con, audiences)
    lookup = data.lookup_data(con, column_dimensions(settings), audiences)

    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        pages = _write_site(tmp, dag, ctx, lookup)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a site cut short is never left beside it
        raise
    old = out.with_name(f".{out.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return pages


def _write_site(tmp: Path, dag, ctx: dict, lookup: dict) -> int:
    """The site's files in `tmp`; returns the number of pages."""
    (tmp / "models").mkdir(parents=True)
    (tmp / "assets").mkdir()
    (tmp / SITE_MARKER).write_text("written by `profiler docs`, which replaces this folder whole\n")
    files = {
        "index.html": _index(ctx, lookup),
        "models.html": _models(ctx),
        "sources.html": _sources(ctx),
        "quality.html": _quality(ctx),
        "ml.html": ml_page(ctx),
        "distributions.html": _distributions(ctx),
        "audiences.html": _audiences(ctx),
    }
    for name in dag.order():
        files[f"models/{name}.html"] = _model_page(ctx, name)
    for rel, html in files.items():
        (tmp / rel).write_text(html, encoding="utf-8")
    (tmp / "assets" / "profiles").mkdir()
    for shard, text in lookup["shards"].items():
        (tmp / "assets" / "profiles" / f"{shard}.js").write_text(
            f"window.PROFILER_SHARD({shard}, {text});\n"
        )
    return len(files)


# --- pages ---------------------------------------------------------------------------------------


def _graph(ctx: dict, root: str) -> str:
    from profiler.dag import BUILTINS

    dag = ctx["dag"]
    parents = {n: tuple(p for p in ps if p not in BUILTINS) for n, ps in dag.parents.items()}
    sources = sorted({p for ps in parents.values() for p in ps if p not in dag.models})
    nodes = sources + dag.order()
    kinds = {n: dag.models[n].kind.value if n in dag.models else "source" for n in nodes}
    hrefs = {
        n: f"{root}models/{n}.html" if n in dag.models else f"{root}sources.html#{n}" for n in nodes
    }
    legend = "".join(
        f'<span style="background:{c}">{esc(k)}</span>' for k, c in KIND_COLOURS.items()
    )
    return (
        f'<div class="panel scroll" id="lineage">{lineage_svg(nodes, parents, kinds, hrefs)}</div>'
        f'<p class="legend-kinds muted">{legend} Click a node for its page.</p>'
    )


def _index(ctx: dict, lookup: dict) -> str:
    run, states = ctx["run"], ctx["states"]
    as_of = max((s["as_of"] for s in states.values() if s.get("as_of")), default=None)
    cards = [
        ("users in the profile", fmt(lookup["meta"].get("total", 0))),
        ("models", fmt(len(ctx["dag"].models))),
        ("as of", fmt(as_of)),
        ("last build", f"{fmt(run['status'])}, {str(run['finished_at'])[:19]}" if run else "-"),
    ]
    cards_html = "".join(
        f'<div class="card"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>'
        for k, v in cards
    )
    body = f"""
<h1>User profiles</h1>
<p class="muted">Project <code>{esc(ctx["project"])}</code>: SQL models built by <code>profiler build</code>, gated by
expectation suites, scored by the model layer.</p>
<div class="cards">{cards_html}</div>
<h2 id="profile-lookup">Profile lookup</h2>
<form id="lookup" class="panel"><label for="user-id">User id </label>
<input id="user-id" name="user" autocomplete="off" placeholder="e.g. a user_id from user_profile">
<button type="submit">Show</button> <span id="lookup-count" class="muted"></span></form>
<div id="profile"></div>
<h2 id="lineage-graph">Lineage</h2>
{_graph(ctx, "")}
<h2>Sections</h2>
<ul>
<li><a href="models.html">Models</a>: every model's header, columns, SQL and checks</li>
<li><a href="quality.html">Quality</a>: expectation suites and their latest results</li>
<li><a href="ml.html">Model metrics</a>: classifiers against their baselines; recommendations</li>
<li><a href="distributions.html">Distributions</a>: segments and lifecycle stages over time</li>
<li><a href="audiences.html">Audiences</a>: sizes and overlaps</li>
<li><a href="sources.html">Sources</a>: the raw tables</li>
</ul>"""
    meta = json.dumps(lookup["meta"], separators=(",", ":"), default=str).replace("</", "<\\/")
    scripts = f"<script>window.PROFILER_META = {meta};</script><script>{LOOKUP_JS}</script>"
    return page("Overview", body, scripts=scripts)


def _models(ctx: dict) -> str:
    dag, states = ctx["dag"], ctx["states"]
    rows = []
    for name in dag.order():
        m = dag.models[name]
        s = states.get(name, {})
        rows.append(
            [
                f'<a href="models/{esc(name)}.html">{esc(name)}</a>',
                esc(m.kind.value),
                esc(fmt(s.get("rows"))),
                esc(fmt(s.get("as_of"))),
                esc(m.description[:160] + ("..." if len(m.description) > 160 else "")),
            ]
        )
    body = (
        "<h1>Models</h1>"
        + _graph(ctx, "")
        + table(["model", "kind", "rows", "as of", "description"], rows, raw=True)
        + _all_macros(ctx)
    )
    return page("Models", body)


def _all_macros(ctx: dict) -> str:
    """Every project macro, called or not, with the models calling it (dbt docs' macro list): a
    macro no model calls yet is documented too."""
    from profiler.macros import load_macros

    dag = ctx["dag"]
    callers: dict[str, list[str]] = {}
    for name in dag.order():
        for x in _called(ctx, dag.models[name]):
            callers.setdefault(x.name, []).append(name)
    rows = [
        [
            f'<span id="macro-{esc(x.name)}">{esc(x.name)}</span>',
            f"<code>{esc(x.path.name)}:{x.line}</code>",
            esc(x.doc),
            ", ".join(
                f'<a href="models/{esc(n)}.html">{esc(n)}</a>' for n in callers.get(x.name, [])
            )
            or '<span class="muted">none yet</span>',
        ]
        for x in load_macros(ctx["project"])
    ]
    if not rows:
        return ""
    return (
        "<h2>Macros</h2><p>SQL macros from <code>macros/</code>, installed in the warehouse and "
        "the serving copy.</p>"
        + table(["macro", "file", "description", "called by"], rows, raw=True)
    )


def _sources(ctx: dict) -> str:
    from profiler.sources import SOURCES

    parts = ["<h1>Sources</h1><p>Raw tables appended by <code>profiler ingest</code>.</p>"]
    for source in SOURCES.values():
        readers = [
            f'<a href="models/{esc(n)}.html">{esc(n)}</a>'
            for n in ctx["dag"].order()
            if source.table in ctx["dag"].parents[n]
        ]
        cols = [[c, t] for c, t in ctx["types"].get(source.table, [])]
        parts.append(
            f'<h2 id="{esc(source.table)}">{esc(source.table)}</h2>'
            f"<p>Read by: {', '.join(readers) or '-'}</p>" + table(["column", "type"], cols)
        )
    return page("Sources", "".join(parts))


def _suite_html(ctx: dict, name: str) -> str:
    suite = ctx["suites"].get(name)
    results = ctx["validations"].get(name, [])
    if not suite and not results:
        return '<p class="muted">No expectation suite.</p>'
    out = []
    if suite:
        rows = [
            [
                e.get("type"),
                json.dumps(e.get("kwargs", {}), sort_keys=True),
                (e.get("meta") or {}).get("severity", "error"),
                (e.get("meta") or {}).get("notes", ""),
            ]
            for e in suite["expectations"]
        ]
        out.append(
            f"<p>Suite <code>expectations/{esc(suite['path'].name)}</code>: "
            f"{len(rows)} expectation(s).</p>"
            + table(["expectation", "kwargs", "severity", "notes"], rows)
        )
    if results:
        r0 = results[0]
        rows = [
            [
                r["expectation"],
                esc(r["kwargs"]),
                r["severity"],
                r["scope"],
                status(r["success"]),
                esc(fmt(r["unexpected_count"])),
                esc(fmt(r["observed_value"])),
            ]
            for r in results
        ]
        out.append(
            f"<p>Latest results: run <code>{esc(r0['run_id'])}</code> ({esc(r0['command'])}) at "
            f"{esc(fmt(r0['validated_at']))}, as of {esc(fmt(r0['as_of']))}.</p>"
            + table(
                ["expectation", "kwargs", "severity", "scope", "result", "unexpected", "observed"],
                [[esc(v) if i in (0, 2, 3) else v for i, v in enumerate(r)] for r in rows],
                raw=True,
            )
        )
    else:
        out.append('<p class="muted">No results recorded yet.</p>')
    return "".join(out)


def _model_page(ctx: dict, name: str) -> str:
    dag = ctx["dag"]
    m = dag.models[name]
    s = ctx["states"].get(name, {})

    def link(n: str) -> str:
        if n in dag.models:
            return f'<a href="{esc(n)}.html">{esc(n)}</a>'
        return (
            f'<a href="../sources.html#{esc(n)}">{esc(n)}</a>'
            if n != "as_of_time"
            else "as_of_time"
        )

    facts = [
        ["kind", esc(m.kind.value)],
        [
            "file",
            f"<code>{esc(m.path.relative_to(ctx['project']) if m.path.is_relative_to(ctx['project']) else m.path)}</code>",
        ],
        ["tags", "".join(f'<span class="tag">{esc(t)}</span>' for t in m.tags) or "-"],
        ["unique key", esc(", ".join(m.unique_key) or "-")],
        ["time column", esc(m.time_column or "-")],
        ["grain", esc(", ".join(m.grain) or "-")],
        ["reads", ", ".join(link(p) for p in dag.parents[name]) or "-"],
        ["read by", ", ".join(link(c) for c in sorted(dag.children(name))) or "-"],
        ["rows", esc(fmt(s.get("rows")))],
        ["as of", esc(fmt(s.get("as_of")))],
        ["version", esc(fmt(s.get("version")))],
        [
            "fingerprints",
            esc(
                f"data {s.get('data_fingerprint', '-')}, metadata {s.get('metadata_fingerprint', '-')}"
            ),
        ],
    ]
    types = dict(ctx["types"].get(name, []))
    names = list(types) or list(m.columns)
    cols = [[c, types.get(c, "-"), m.columns.get(c, "")] for c in names]
    body = (
        f'<p><a href="../models.html">Models</a> / {esc(name)}</p><h1>{esc(name)}</h1>'
        f"<p>{esc(m.description)}</p>"
        + table(["", ""], facts, raw=True)
        + f"<h2>Columns</h2>{table(['column', 'type', 'description'], cols)}"
        + f"<h2>Expectations</h2>{_suite_html(ctx, name)}"
        + _source(m)
        + _macros(ctx, m)
    )
    return page(name, body, root="../")


def _source(m) -> str:
    """The model's SQL file; for the model layer's python node, its classifier specs."""
    if m.kind is Kind.PYTHON:  # its folder may be missing: a project with no specs
        specs = (
            "".join(
                f"<h3>{esc(p.name)}</h3><pre><code>{esc(p.read_text())}</code></pre>"
                for p in sorted(m.path.glob("*.toml"))
            )
            or '<p class="muted">None: the project has no <code>models/*.toml</code>.</p>'
        )
        return (
            f"<h2>Specs</h2><p>Computed in Python by the model layer from these specs.</p>{specs}"
        )
    return f"<h2>SQL</h2><pre><code>{esc(m.path.read_text())}</code></pre>"


def _called(ctx: dict, m) -> list:
    """The project macros a model calls; the model layer's python node: its specs' labels."""
    if m.kind is Kind.PYTHON:
        from profiler.macros import called
        from profiler.ml.spec import load_specs

        return called([s.label_category for s in load_specs(ctx["project"]).values()], m.macros)
    return m.macros_called


def _macros(ctx: dict, m) -> str:
    """The project macros the model calls, as defined: the rules its SQL names, on its page."""
    used = _called(ctx, m)
    if not used:
        return ""
    parts = "".join(
        f'<h3>{esc(x.name)} <span class="muted">{esc(x.path.name)}:{x.line}</span></h3>'
        + (f"<p>{esc(x.doc)}</p>" if x.doc else "")
        + f"<pre><code>{esc(x.sql)}</code></pre>"
        for x in used
    )
    return f"<h2>Macros it calls</h2><p>From <code>macros/</code>.</p>{parts}"


def _quality(ctx: dict) -> str:
    names = sorted(set(ctx["suites"]) | set(ctx["validations"]))
    summary = []
    for n in names:
        results = ctx["validations"].get(n, [])
        failed = sum(1 for r in results if r["success"] is False)
        target = f"models/{n}.html" if n in ctx["dag"].models else f"sources.html#{n}"
        summary.append(
            [
                f'<a href="#{esc(n)}">{esc(n)}</a> (<a href="{target}">table</a>)',
                esc(fmt(len(ctx["suites"].get(n, {}).get("expectations", [])))),
                esc(fmt(len(results))),
                f'<span class="{"bad" if failed else "ok"}">{failed}</span>' if results else "-",
            ]
        )
    parts = [
        "<h1>Quality</h1><p>Expectation suites gate every build; results of the newest run per table.</p>",
        table(["suite", "expectations", "results", "failed"], summary, raw=True),
    ]
    for n in names:
        parts.append(f'<h2 id="{esc(n)}">{esc(n)}</h2>{_suite_html(ctx, n)}')
    return page("Quality", "".join(parts))


def _distributions(ctx: dict) -> str:
    parts = [
        "<h1>Distributions over time</h1><p>From <code>user_profile_history</code> (SCD2): how many "
        "users held each value at each build's as-of.</p>"
    ]
    if not ctx["distributions"]:
        parts.append('<p class="muted">No history yet.</p>')
    for column, d in ctx["distributions"].items():
        parts.append(f'<h2 id="{esc(column)}">{esc(column)}</h2>')
        parts.append(
            '<div class="panel scroll">'
            + stacked_bars(d["periods"], d["values"], d["counts"], title=f"{column} over time")
            + "</div>"
        )
        rows = [[p, *[d["counts"].get((p, v), 0) for v in d["values"]]] for p in d["periods"]]
        parts.append(table(["as of", *d["values"]], rows))
    return page("Distributions", "".join(parts))


def _audiences(ctx: dict) -> str:
    report = ctx["audiences"]
    parts = ["<h1>Audiences</h1><p>Models tagged <code>audience</code>; export ids with "
             "<code>profiler export --out DIR --audiences-csv</code>.</p>"]  # fmt: skip
    if not report.sizes:
        parts.append('<p class="muted">No audiences built.</p>')
        return page("Audiences", "".join(parts))
    rows = [
        [f'<a href="models/{esc(n)}.html">{esc(n)}</a>', esc(fmt(size)),
         esc(f"{size / report.users:.1%}" if report.users else "-"),
         esc(ctx["dag"].models[n].description if n in ctx["dag"].models else "")]
        for n, size in report.sizes.items()
    ]  # fmt: skip
    parts.append(table(["audience", "users", "share of profile", "definition"], rows, raw=True))
    names = list(report.sizes)
    matrix = [
        [a, *[report.sizes[a] if a == b else report.overlap[(a, b)] for b in names]] for a in names
    ]
    parts.append(
        "<h2>Overlap</h2><p>Users in both audiences (the diagonal: the audience's size).</p>"
    )
    parts.append('<div class="scroll">' + table(["", *names], matrix) + "</div>")
    return page("Audiences", "".join(parts))
