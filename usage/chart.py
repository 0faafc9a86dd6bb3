"""A self-contained HTML page with inline SVG charts of cost, latency and the suggestions
kept over time (no JavaScript, no external files: it opens anywhere, offline)."""

from __future__ import annotations

import html

WIDTH, HEIGHT, PAD = 760, 260, 56
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def line_chart(title: str, labels: list[str], series: dict[str, list[float | None]],
               unit: str, top: float | None = None) -> str:
    """One SVG line chart; ``series`` maps a name to one value (or None) per label.
    ``top``: the y axis's top (default: the largest value)."""
    values = [v for points in series.values() for v in points if v is not None]
    if top is None:
        top = max(values) if values else 1.0
    top = top if top > 0 else 1.0
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / max(len(labels) - 1, 1)

    def x(i: int) -> float:
        return PAD + (i * step if len(labels) > 1 else inner_w / 2)

    def y(v: float) -> float:
        return PAD + inner_h - v / top * inner_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'role="img" aria-label="{html.escape(title)}">',
             f'<text x="{PAD}" y="24" font-size="15" font-weight="bold">'
             f'{html.escape(title)}</text>',
             f'<line x1="{PAD}" y1="{PAD + inner_h}" x2="{PAD + inner_w}" y2="{PAD + inner_h}" '
             'stroke="#888"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{PAD + inner_h}" stroke="#888"/>']
    for frac in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{PAD - 6}" y="{y(top * frac) + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{_fmt(top * frac, unit)}</text>')
    every = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{PAD + inner_h + 16}" font-size="10" '
                         f'text-anchor="middle">{html.escape(label)}</text>')
    for n, (name, points) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        coords = [(x(i), y(v)) for i, v in enumerate(points) if v is not None]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                         f'points="{path}"/>')
        for cx, cy in coords:
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{PAD + 10 + n * 200}" y="{HEIGHT - 8}" font-size="11" '
                     f'fill="{colour}">■ {html.escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _fmt(value: float, unit: str) -> str:
    if unit == "$":
        return f"${value:.2g}" if value else "$0"
    return f"{value:.0f} {unit}"


def _kept(labels: list[str], rows: list[dict]) -> list[str]:
    """The share of suggestions shown that were kept, and still there after 30 s; none
    when the editor showed none (eval and CLI calls have no suggestions)."""
    if not any(r["shown"] for r in rows):
        return []

    def percent(key: str) -> list[float | None]:
        return [None if r[key] is None else r[key] * 100 for r in rows]

    return [line_chart("Suggestions kept, of those shown", labels, {
        "accepted in full": percent("acceptance_full_rate"),
        "accepted in part": percent("acceptance_partial_rate"),
        "still there after 30 s": percent("retained_30s_rate"),
    }, "%", top=100.0)]


def page(rows: list[dict], title: str = "Covey usage") -> str:
    """The HTML page for :func:`covey_usage.queries.buckets` rows."""
    labels = [r["bucket"] for r in rows]
    cost = line_chart("Cost per period", labels, {
        "spent (local + API)": [r["spent_usd"] for r in rows],
        "LLM-equivalent": [r["llm_equivalent_usd"] for r in rows],
    }, "$")
    latency = line_chart("Latency of successful calls", labels, {
        "p50": [r["latency_p50_ms"] for r in rows],
        "p95": [r["latency_p95_ms"] for r in rows],
        "time to first token p50": [r["ttft_p50_ms"] for r in rows],
    }, "ms")
    body = "\n".join([cost, latency, *_kept(labels, rows)]) if rows else (
        "<p>No calls logged yet.</p>")
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            "</title></head>\n<body style=\"font-family: sans-serif\">\n"
            f"<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")
