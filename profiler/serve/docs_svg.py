"""Inline SVG for the docs site, drawn here so the site needs no library and no network.

Pure functions from plain data to an SVG string: the lineage graph (a layered layout), line
charts (ROC curves, calibration), horizontal bars (feature importances) and stacked bars
(distributions over time). Every text goes through `esc`.
"""

from __future__ import annotations

from html import escape

PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
KIND_COLOURS = {
    "source": "#e8e8e8",
    "view": "#dbe9f6",
    "table": "#dff0d8",
    "incremental_by_time": "#fcf3cf",
    "incremental_by_key": "#fde2c8",
    "scd2": "#ead7f2",
}


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


# --- lineage -------------------------------------------------------------------------------------


def layered_layout(
    nodes: list[str], parents: dict[str, tuple[str, ...]]
) -> dict[str, tuple[int, int]]:
    """(layer, position) per node: layer = longest path from a source; positions ordered by the
    mean position of the parents (a few barycentre sweeps), so edges cross less.

    >>> layered_layout(["a", "b", "c"], {"b": ("a",), "c": ("a", "b")})
    {'a': (0, 0), 'b': (1, 0), 'c': (2, 0)}
    """
    layer: dict[str, int] = {}

    def depth(n: str, seen: frozenset = frozenset()) -> int:
        if n not in layer:
            ps = [p for p in parents.get(n, ()) if p in nodes and p not in seen]
            layer[n] = 1 + max((depth(p, seen | {n}) for p in ps), default=-1)
        return layer[n]

    for n in nodes:
        depth(n)
    layers: dict[int, list[str]] = {}
    for n in sorted(nodes):
        layers.setdefault(layer[n], []).append(n)
    pos = {n: i for members in layers.values() for i, n in enumerate(members)}
    for _ in range(4):
        for k in sorted(layers)[1:]:

            def centre(n: str) -> float:
                ps = [pos[p] for p in parents.get(n, ()) if p in pos]
                return sum(ps) / len(ps) if ps else pos[n]

            layers[k].sort(key=lambda n: (centre(n), n))
            pos.update({n: i for i, n in enumerate(layers[k])})
    return {n: (layer[n], pos[n]) for n in nodes}


def lineage_svg(
    nodes: list[str],
    parents: dict[str, tuple[str, ...]],
    kinds: dict[str, str],
    hrefs: dict[str, str],
) -> str:
    """The model graph, top (sources) to bottom (profile and serving); every node is a link.

    Each layer is a row of boxes sized to their names and centred, so the graph stays about as
    wide as its widest layer; it scales down to the page width when wider.
    """
    if not nodes:
        return "<p>No models.</p>"
    place = layered_layout(nodes, parents)
    char_w, height, gap_x, gap_y, pad = 7.3, 28, 14, 46, 10
    width = {n: round(char_w * len(n) + 22) for n in nodes}
    rows: dict[int, list[str]] = {}
    for n, (layer, _) in sorted(place.items(), key=lambda kv: kv[1]):
        rows.setdefault(layer, []).append(n)
    row_w = {k: sum(width[n] for n in r) + gap_x * (len(r) - 1) for k, r in rows.items()}
    total_w = max(row_w.values()) + 2 * pad
    x: dict[str, float] = {}
    y: dict[str, float] = {}
    for k, r in rows.items():
        cursor = pad + (total_w - 2 * pad - row_w[k]) / 2
        for n in r:
            x[n], y[n] = cursor, pad + k * (height + gap_y)
            cursor += width[n] + gap_x
    total_h = max(y.values()) + height + pad
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{_fmt(total_w)}" '
        f'height="{_fmt(total_h)}" viewBox="0 0 {_fmt(total_w)} {_fmt(total_h)}" role="img" '
        f'aria-label="model lineage graph">'
    ]
    for n in nodes:
        for p in parents.get(n, ()):
            if p not in place:
                continue
            x1, y1 = x[p] + width[p] / 2, y[p] + height
            x2, y2 = x[n] + width[n] / 2, y[n]
            mid = (y1 + y2) / 2
            parts.append(
                f'<path class="edge" d="M{_fmt(x1)},{_fmt(y1)} C{_fmt(x1)},{_fmt(mid)} '
                f'{_fmt(x2)},{_fmt(mid)} {_fmt(x2)},{_fmt(y2)}"/>'
            )
    for n in nodes:
        fill = KIND_COLOURS.get(kinds.get(n, "table"), "#eeeeee")
        parts.append(
            f'<a href="{esc(hrefs[n])}" class="node" data-model="{esc(n)}">'
            f"<title>{esc(n)} ({esc(kinds.get(n, ''))})</title>"
            f'<rect x="{_fmt(x[n])}" y="{_fmt(y[n])}" width="{width[n]}" height="{height}" rx="5" '
            f'fill="{fill}"/><text x="{_fmt(x[n] + width[n] / 2)}" y="{_fmt(y[n] + 18)}" '
            f'text-anchor="middle">{esc(n)}</text></a>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --- charts --------------------------------------------------------------------------------------


def _axes(w: int, h: int, m: int, xlabel: str, ylabel: str) -> list[str]:
    out = [
        f'<line class="axis" x1="{m}" y1="{h - m}" x2="{w - m // 2}" y2="{h - m}"/>',
        f'<line class="axis" x1="{m}" y1="{m // 2}" x2="{m}" y2="{h - m}"/>',
    ]
    for t in (0, 0.25, 0.5, 0.75, 1):
        px = m + t * (w - 1.5 * m)
        py = h - m - t * (h - 1.5 * m)
        out.append(
            f'<text class="tick" x="{_fmt(px)}" y="{h - m + 14}" text-anchor="middle">{t:g}</text>'
        )
        out.append(
            f'<text class="tick" x="{m - 6}" y="{_fmt(py + 4)}" text-anchor="end">{t:g}</text>'
        )
    out.append(
        f'<text class="label" x="{w / 2}" y="{h - 6}" text-anchor="middle">{esc(xlabel)}</text>'
    )
    out.append(
        f'<text class="label" x="12" y="{h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {h / 2})">{esc(ylabel)}</text>'
    )
    return out


def line_chart(
    series: list[tuple[str, list[tuple[float, float]]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    diagonal: bool = True,
    markers: bool = False,
) -> str:
    """Lines on the unit square (ROC curves, calibration); a legend names each series."""
    w, h, m = 380, 320, 44
    sx = lambda v: m + max(0.0, min(1.0, v)) * (w - 1.5 * m)  # noqa: E731
    sy = lambda v: h - m - max(0.0, min(1.0, v)) * (h - 1.5 * m)  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{w}" height="{h + 18 * len(series)}" '
        f'role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>',
        *_axes(w, h, m, xlabel, ylabel),
    ]
    if diagonal:
        parts.append(f'<line class="diag" x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}"/>')
    for i, (name, pts) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        if pts:
            d = " ".join(f"{_fmt(sx(a))},{_fmt(sy(b))}" for a, b in pts)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{d}"/>')
            if markers:
                parts += [
                    f'<circle cx="{_fmt(sx(a))}" cy="{_fmt(sy(b))}" r="3" fill="{colour}"/>'
                    for a, b in pts
                ]
        ly = h + 4 + 18 * i
        parts.append(f'<rect x="{m}" y="{ly}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text class="legend" x="{m + 18}" y="{ly + 10}">{esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(values: list[tuple[str, float]], *, title: str, limit: int = 15) -> str:
    """Horizontal bars, largest first (feature importances); negative values drawn as zero."""
    values = sorted(values, key=lambda kv: -kv[1])[:limit]
    if not values:
        return "<p>Nothing to show.</p>"
    label_w = max(80, 7 * max(len(k) for k, _ in values))
    bar_w, row = 260, 20
    top = max(max(v for _, v in values), 1e-12)
    h = row * len(values) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{label_w + bar_w + 80}" '
        f'height="{h}" role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>'
    ]
    for i, (name, v) in enumerate(values):
        y = 4 + i * row
        length = bar_w * max(v, 0) / top
        parts.append(
            f'<text class="tick" x="{label_w - 6}" y="{y + 13}" text-anchor="end">{esc(name)}</text>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{_fmt(length)}" height="{row - 6}" fill="{PALETTE[0]}"/>'
        )
        parts.append(
            f'<text class="tick" x="{_fmt(label_w + length + 4)}" y="{y + 13}">{v:.4g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(
    periods: list[str], categories: list[str], counts: dict[tuple[str, str], int], *, title: str
) -> str:
    """One 100% bar per period, split by category (segment shares over time)."""
    if not periods:
        return "<p>No history yet.</p>"
    bar, gap, h, m = 28, 8, 220, 40
    w = m + len(periods) * (bar + gap) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{max(w, m + 3 * 150 + 10)}" '
        f'height="{h + 60 + 18 * ((len(categories) + 2) // 3)}" role="img" aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>",
        f'<line class="axis" x1="{m - 4}" y1="{h}" x2="{w}" y2="{h}"/>',
    ]
    for t in (0, 0.5, 1):
        parts.append(
            f'<text class="tick" x="{m - 8}" y="{_fmt(h - t * (h - 10) + 4)}" text-anchor="end">{t:.0%}</text>'
        )
    for i, period in enumerate(periods):
        total = sum(counts.get((period, c), 0) for c in categories) or 1
        x, y = m + i * (bar + gap), float(h)
        for j, c in enumerate(categories):
            n = counts.get((period, c), 0)
            if not n:
                continue
            seg = (h - 10) * n / total
            y -= seg
            parts.append(
                f'<rect x="{x}" y="{_fmt(y)}" width="{bar}" height="{_fmt(seg)}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{esc(period)} {esc(c)}: {n:,} '
                f"({n / total:.1%})</title></rect>"
            )
        parts.append(
            f'<text class="tick" x="{x + bar / 2}" y="{h + 12}" text-anchor="end" '
            f'transform="rotate(-45 {x + bar / 2} {h + 12})">{esc(period[:10])}</text>'
        )
    for j, c in enumerate(categories):
        lx, ly = m + (j % 3) * 150, h + 48 + 18 * (j // 3)
        parts.append(
            f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{PALETTE[j % len(PALETTE)]}"/>'
        )
        parts.append(f'<text class="legend" x="{lx + 18}" y="{ly + 10}">{esc(c)}</text>')
    parts.append("</svg>")
    return "".join(parts)
