"""The docs site's page shell: inline CSS, navigation, small HTML helpers and the lookup script.

Nothing here is fetched from the network: styles and scripts are inline; the lookup's data
files (`assets/profiles/<shard>.js`) are siblings loaded with a relative `<script src>`, which
browsers allow from file://.
"""

from __future__ import annotations

from html import escape

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; --bg:#f7f9fb; --accent:#2f6fab; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--ink); background:var(--bg); }
header { background:#102a43; color:#fff; padding:10px 24px; display:flex; gap:24px; align-items:center; flex-wrap:wrap; }
header .brand { font-weight:700; font-size:17px; color:#fff; text-decoration:none; }
header nav a { color:#d9e2ec; margin-right:16px; text-decoration:none; }
header nav a:hover { color:#fff; text-decoration:underline; }
main { max-width:1200px; margin:0 auto; padding:18px 24px 48px; }
h1 { font-size:24px; margin:8px 0 4px; } h2 { font-size:18px; margin:28px 0 8px; border-bottom:1px solid var(--line); padding-bottom:4px; }
h3 { font-size:15px; margin:18px 0 6px; }
a { color:var(--accent); }
.muted { color:var(--muted); }
.cards { display:flex; gap:12px; flex-wrap:wrap; margin:12px 0; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 14px; min-width:150px; }
.card .v { font-size:20px; font-weight:600; } .card .k { color:var(--muted); font-size:12px; }
.panel { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 16px; margin:10px 0; }
.scroll { overflow:auto; }
table { border-collapse:collapse; background:#fff; margin:6px 0 12px; }
th, td { border:1px solid var(--line); padding:4px 8px; text-align:left; vertical-align:top; }
th { background:#f0f4f8; font-weight:600; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
pre { white-space:pre-wrap; overflow-wrap:anywhere; background:#0f1720; color:#e4e7eb; padding:12px; border-radius:6px; overflow:auto; font-size:12.5px; line-height:1.4; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
.ok { color:#1b7f3b; font-weight:600; } .bad { color:#b42318; font-weight:600; } .warn { color:#a15c07; font-weight:600; }
.tag { display:inline-block; background:#e6eef7; color:#243b53; border-radius:10px; padding:0 8px; margin-right:4px; font-size:12px; }
svg.lineage { max-width:100%; height:auto; display:block; margin:0 auto; }
svg.lineage .edge { fill:none; stroke:#9fb3c8; stroke-width:1.3; }
svg.lineage .node rect { stroke:#627d98; stroke-width:1; }
svg.lineage .node:hover rect { stroke:var(--accent); stroke-width:2.5; }
svg.lineage text { font:12px ui-monospace,Menlo,Consolas,monospace; fill:#102a43; }
svg.chart .axis { stroke:#52606d; } svg.chart .diag { stroke:#bcccdc; stroke-dasharray:4 4; }
svg.chart text { font:11px system-ui,sans-serif; fill:#334e68; } svg.chart .label { font-size:12px; fill:#243b53; }
figure { margin:0; } figcaption { margin-bottom:6px; }
.charts { display:flex; gap:18px; flex-wrap:wrap; align-items:flex-start; }
.legend-kinds span { display:inline-block; padding:1px 8px; margin-right:6px; border:1px solid #9fb3c8; border-radius:4px; font-size:12px; }
#lookup input { font-size:15px; padding:6px 10px; width:280px; border:1px solid #9fb3c8; border-radius:6px; }
#lookup button { font-size:14px; padding:6px 14px; margin-left:6px; border:0; border-radius:6px; background:var(--accent); color:#fff; cursor:pointer; }
#profile .dims { display:flex; gap:14px; flex-wrap:wrap; align-items:flex-start; }
#profile table { font-size:13px; }
"""

NAV = (
    ("index.html", "Overview"),
    ("models.html", "Models"),
    ("quality.html", "Quality"),
    ("ml.html", "Model metrics"),
    ("distributions.html", "Distributions"),
    ("audiences.html", "Audiences"),
)


def esc(text: object) -> str:
    return escape("" if text is None else str(text), quote=True)


def page(title: str, body: str, *, root: str = "", scripts: str = "") -> str:
    """A complete HTML page; `root` is the relative path back to the site's top folder."""
    nav = "".join(f'<a href="{root}{href}">{esc(label)}</a>' for href, label in NAV)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} - profiler docs</title><style>{CSS}</style></head><body>"
        f'<header><a class="brand" href="{root}index.html">profiler</a><nav>{nav}</nav></header>'
        f"<main>{body}</main>{scripts}</body></html>\n"
    )


def table(headers: list[str], rows: list[list[object]], *, raw: bool = False, cls: str = "") -> str:
    """An HTML table; cells are escaped unless `raw` (then they are trusted HTML)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers) if any(headers) else ""
    body = []
    for row in rows:
        cells = []
        for v in row:
            num = isinstance(v, int | float) and not isinstance(v, bool)
            text = v if raw and isinstance(v, str) else esc(fmt(v))
            cells.append(f'<td class="num">{text}</td>' if num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{cls}">{f"<thead><tr>{head}</tr></thead>" if head else ""}<tbody>{"".join(body)}</tbody></table>'


def fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def status(success: object) -> str:
    if success is None:
        return '<span class="muted">not run</span>'
    return '<span class="ok">pass</span>' if success else '<span class="bad">fail</span>'


LOOKUP_JS = r"""
(function () {
  var M = window.PROFILER_META || {total: 0, shown: 0, starts: [], columns: {}};
  var input = document.getElementById('user-id');
  var out = document.getElementById('profile');
  var cache = {}, waiting = {};
  window.PROFILER_SHARD = function (n, data) {
    cache[n] = data;
    (waiting[n] || []).forEach(function (f) { f(); });
    delete waiting[n];
  };
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined) return '-';
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Math.round(v * 10000) / 10000);
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    return String(v);
  }
  function grid(title, columns, rows) {
    var box = el('div', null, 'panel');
    box.appendChild(el('h3', title));
    var t = el('table'), head = el('tr');
    columns.forEach(function (c) { head.appendChild(el('th', c)); });
    t.appendChild(head);
    rows.forEach(function (r) {
      var tr = el('tr');
      r.forEach(function (v) { tr.appendChild(el('td', fmt(v))); });
      t.appendChild(tr);
    });
    box.appendChild(t);
    return box;
  }
  function shardOf(id) {  // the last shard whose first id is <= id (ids sorted as DuckDB does)
    var lo = 0, hi = M.starts.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (M.starts[mid] <= id) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    return found;
  }
  function load(n, then) {
    if (cache[n]) { then(); return; }
    if (waiting[n]) { waiting[n].push(then); return; }
    waiting[n] = [then];
    var s = document.createElement('script');
    s.src = 'assets/profiles/' + n + '.js';
    s.onerror = function () { out.textContent = ''; out.appendChild(el('p', 'Could not load ' + s.src, 'bad')); };
    document.body.appendChild(s);
  }
  function missing(id) {
    // helper-70: every user embedded, yet the miss read as if the site had left it out
    var where = M.shown >= M.total
      ? 'User ' + id + ' is not in user_profile (all ' + M.total.toLocaleString('en') + ' users are embedded in this site).'
      : 'User ' + id + ' is not among the ' + M.shown.toLocaleString('en') +
        ' most active users embedded in this site (of ' + M.total.toLocaleString('en') + ').';
    if (id.indexOf('@') >= 0) {
      where += ' Users sent as e-mail addresses are stored as keyed pseudonyms, which this site cannot compute: use profiler show ADDRESS.';
    }
    out.appendChild(el('p', where + ' profiler show ID looks any user up.', 'bad'));
  }
  function render(id, D) {
    out.textContent = '';
    out.setAttribute('data-user', id);
    var prof = D.profile && D.profile[id];
    if (!prof) { missing(id); return; }
    out.appendChild(el('h3', 'User ' + id));
    var groups = {}, order = [];
    M.columns.profile.forEach(function (c, i) {
      var g = (M.dimensions || {})[c] || 'other';
      if (!groups[g]) { groups[g] = []; order.push(g); }
      groups[g].push([c, prof[i]]);
    });
    var rank = M.dimension_order || [];
    order.sort(function (a, b) {
      var ia = rank.indexOf(a), ib = rank.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
    });
    var dims = el('div', null, 'dims');
    order.forEach(function (g) { dims.appendChild(grid(g, ['column', 'value'], groups[g])); });
    out.appendChild(dims);
    [['scores', 'Scores'], ['recommendations', 'Recommendations'], ['history', 'Profile history']].forEach(function (p) {
      if (D[p[0]] && D[p[0]][id]) out.appendChild(grid(p[1], M.columns[p[0]], D[p[0]][id]));
    });
    var aud = Object.keys(D).filter(function (k) {
      return k.indexOf('audience:') === 0 && D[k].indexOf(id) >= 0;
    }).map(function (k) { return [k.slice(9)]; });
    out.appendChild(grid('Audiences', ['audience'], aud.length ? aud : [['(none)']]));
  }
  function show(id) {
    id = (id || '').trim();
    out.textContent = '';
    if (!id) return;
    var n = shardOf(id);
    if (n < 0) { missing(id); return; }
    out.appendChild(el('p', 'Loading ...', 'muted'));
    load(n, function () { render(id, cache[n]); });
  }
  function fromHash() {
    var m = /(?:^#|&)user=([^&]*)/.exec(location.hash);
    if (m) { var id = decodeURIComponent(m[1]); input.value = id; show(id); }
  }
  document.getElementById('lookup').addEventListener('submit', function (e) {
    e.preventDefault();
    location.hash = 'user=' + encodeURIComponent(input.value.trim());
    show(input.value);
  });
  window.addEventListener('hashchange', fromHash);
  document.getElementById('lookup-count').textContent =
    M.shown.toLocaleString('en') + ' of ' + M.total.toLocaleString('en') + ' users searchable';
  fromHash();
})();
"""
