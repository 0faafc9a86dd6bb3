"""A self-contained HTML report for one run: tables and inline SVG charts, no scripts,
no external files — it opens offline and can be mailed as one file."""

from __future__ import annotations

import html as _html
import math

from covey_eval import metrics, render, sandbox
from covey_eval.summary import QUALITY, STRATUM_AXES, headline_metric, stratum_axes

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;padding:0 1em;max-width:1200px;
color:#222}h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0}td,th{padding:4px 10px;border-bottom:1px solid #eee;
text-align:right}td:first-child,th:first-child{text-align:left}.note{background:#fff6d6;
padding:8px 12px;border-left:4px solid #e0b000}.dim{color:#777;font-size:.9em}
svg text{font:12px system-ui,sans-serif}
.wide{overflow-x:auto;max-width:100%}
table.summary{font-size:13px}table.summary td,table.summary th{padding:3px 6px}
table.summary th{vertical-align:bottom}table.summary th .dim{display:block;font-weight:normal}
"""
"""``.wide``: a table wider than the window scrolls in its own box, never the page.
``table.summary``: smaller type and padding, and each cost cell holds marginal over fully
loaded, so a run with many metrics and systems fits a 1,300-pixel window."""


def esc(value: object) -> str:
    return _html.escape(str(value))


def html(result: dict) -> str:
    meta, summary = result.get("meta", {}), result["summary"]
    colour = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(summary)}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Covey eval "
             f"{esc(result['run_id'])}</title><style>{CSS}</style></head><body>",
             f"<h1>Covey eval — {esc(meta.get('suite'))}</h1>",
             f"<p class='dim'>run {esc(result['run_id'])} · {result.get('n_tasks')} tasks · "
             f"seed {esc(meta.get('seed'))} · limit {esc(meta.get('limit') or 'all')} · "
             + (f"holes {esc(meta['holes'])} · context {esc(meta.get('context') or 'none')} · "
                if meta.get("holes") else "") +
             f"sandbox: {esc(sandbox.isolation().describe())}</p>"]
    parts += [f"<p class='note'>{esc(n)}</p>" for n in meta.get("notes", [])]
    parts.append("<h2>Summary (95% bootstrap intervals)</h2>")
    parts.append(_summary_table(summary))
    headline = headline_metric(summary)
    strata = _strata_table(summary, headline)
    if strata:
        parts.append(f"<h2>{esc(render.SHORT.get(headline, headline))} by stratum</h2>")
        parts.append(strata)
    if headline:
        parts.append(f"<h2>Quality vs cost ({esc(render.SHORT[headline])} vs $ per 1,000 "
                     "tasks)</h2>")
        parts.append(quality_cost_svg(summary, headline, colour))
        parts.append(f"<h2>{esc(render.SHORT[headline])} per system</h2>")
        parts.append(metric_bars_svg(summary, headline, colour))
    if result.get("cost_runs"):
        parts.append("<h2>$ per correct answer against concurrency</h2>")
        parts.append("<p class='dim'>Every stored run of this suite, by its concurrency "
                     "(requests in flight, which the engine batches). Solid: marginal; dashed: "
                     "fully loaded (idle time included). Where the fully loaded line falls, "
                     "batching is paying for the hardware.</p>")
        parts.append(concurrency_cost_svg(result["cost_runs"]))
    if result.get("sweep", {}).get("points"):  # a --show-only sweep has no routing curve
        parts.append(sweep_section(result["sweep"]))
    latencies = _latencies(result.get("rows", []))
    if latencies:
        parts.append("<h2>Latency distributions (total per call, ms)</h2>")
        parts.append(latency_svg(latencies, colour))
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary_table(summary: dict) -> str:
    present = [m for m in QUALITY if any(m in s["metrics"] for s in summary.values())]
    head = "".join(f"<th>{esc(render.SHORT.get(m, m))}</th>" for m in present)
    rows = []
    for name, s in summary.items():
        lat, cost = s["latency_ms"], s["cost"]
        cells = "".join(f"<td>{esc(render.fmt_metric(s['metrics'].get(m), m))}</td>"
                        for m in present)
        ratio = render.ratio_text(cost).split("/")
        rows.append(
            f"<tr><td><b>{esc(name)}</b><br><span class='dim'>{esc(s['label'])}</span></td>"
            f"{cells}<td>{render.fmt_ms(lat['ttft_p50'])} / {render.fmt_ms(lat['ttft_p95'])}</td>"
            f"<td>{render.fmt_ms(lat['total_p50'])} / {render.fmt_ms(lat['total_p95'])}</td>"
            f"<td>{_usd_pair(cost, 'local_per_1k', 'fully_per_1k')}</td>"
            f"<td>{esc(render.fmt_usd(cost['llm_equiv_per_1k']))}</td>"
            f"<td>{_stacked(*ratio)}</td>"
            f"<td>{_usd_pair(cost, 'per_correct', 'fully_per_correct')}</td>"
            f"<td>{s['errors']}</td></tr>")
    pair = "<span class='dim'>marginal<br>fully loaded</span>"
    return (f"<div class='wide'><table class='summary'><tr><th>system</th>{head}"
            "<th>ttft ms<span class='dim'>p50 / p95</span></th>"
            "<th>total ms<span class='dim'>p50 / p95</span></th>"
            f"<th>$/1k tasks{pair}</th><th>$/1k LLM-equivalent</th>"
            f"<th>× cheaper{pair}</th><th>$ per correct{pair}</th>"
            f"<th>errors</th></tr>{''.join(rows)}</table></div>"
            "<p class='dim'>Marginal: each call's share of the engine's time, CPU time and "
            "measured energy. Fully loaded: the engine's device rate over the system's whole "
            "run, idle gaps included. LLM-equivalent: the tokens the baseline LLM would be "
            "sent in its own prompt format (about 4 characters a token).</p>")


def _strata_table(summary: dict, metric: str | None) -> str:
    """The repo suite's strata: cross-file against in-file, one-line against multi-line,
    then each pair; empty when the strata name no axes (other suites)."""
    strata = {k for s in summary.values() for k in s.get("by_stratum", {})}
    pairs = sorted(k for k in strata if stratum_axes(k))
    if metric is None or not pairs:
        return ""
    columns = [a for a in STRATUM_AXES if a in strata] + pairs
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    rows = []
    for name, s in summary.items():
        cells = []
        for column in columns:
            found = s.get("by_stratum", {}).get(column, {})
            cells.append(f"<td>{found[metric] * 100:.1f}% <span class='dim'>n {found['n']}"
                         "</span></td>" if metric in found else "<td>–</td>")
        rows.append(f"<tr><td><b>{esc(name)}</b></td>{''.join(cells)}</tr>")
    return (f"<div class='wide'><table><tr><th>system</th>{head}</tr>{''.join(rows)}</table>"
            "</div><p class='dim'>Cross-file: the answer uses a name imported from another "
            "file of the repository, so the file alone cannot give it.</p>")


def _stacked(marginal: str, fully: str) -> str:
    """Marginal over fully loaded in one cell (the header says which is which)."""
    return f"{esc(marginal)}<br>{esc(fully)}"


def _usd_pair(cost: dict, marginal: str, fully: str) -> str:
    return _stacked(render.fmt_usd(cost.get(marginal)), render.fmt_usd(cost.get(fully)))


def concurrency_points(runs: list[dict]) -> dict[str, list[tuple[int, float, float | None]]]:
    """{system: [(concurrency, $ per correct marginal, fully loaded)]} over stored runs,
    the latest run winning at each concurrency."""
    best: dict[str, dict[int, tuple[float, float | None]]] = {}
    for run in runs:
        level = run.get("meta", {}).get("concurrency")
        if not isinstance(level, int):
            continue
        for name, s in run["summary"].items():
            cost = s.get("cost") or {}
            if cost.get("per_correct") is not None:
                best.setdefault(name, {})[level] = (cost["per_correct"],
                                                    cost.get("fully_per_correct"))
    return {name: [(c, *v) for c, v in sorted(levels.items())]
            for name, levels in best.items()}


def concurrency_cost_svg(runs: list[dict], width: int = 640, height: int = 320) -> str:
    """$ per correct answer (log) against concurrency (log 2), one colour per system."""
    series = concurrency_points(runs)
    values = [v for pts in series.values() for p in pts for v in p[1:] if v]
    levels = sorted({p[0] for pts in series.values() for p in pts})
    if not values or not levels:
        return "<p class='dim'>no priced runs with correct answers to plot</p>"
    left, right, top, bottom = 80, 180, 20, 50
    lo, hi = min(values) / 1.5, max(values) * 1.5
    lo_l, hi_l = math.log2(levels[0]), math.log2(levels[-1])

    def x(level: int) -> float:
        span = (hi_l - lo_l) or 1.0
        return left + (math.log2(level) - lo_l) / span * (width - left - right)

    def y(v: float) -> float:
        return top + (math.log10(hi) - math.log10(v)) / (math.log10(hi) - math.log10(lo)) * (
            height - top - bottom)

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>",
           _axes(left, top, width - right, height - bottom)]
    for level in levels:
        out.append(f"<text x='{x(level):.1f}' y='{height - bottom + 16}' "
                   f"text-anchor='middle'>{level}</text>")
    for decade in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        v = 10 ** decade
        if lo <= v <= hi:
            out.append(f"<text x='{left - 8}' y='{y(v) + 4:.1f}' text-anchor='end'>${v:g}</text>")
    out.append(f"<text x='{(left + width - right) / 2}' y='{height - 8}' text-anchor='middle'>"
               "concurrency (requests in flight)</text>")
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        for index, dash in ((1, ""), (2, " stroke-dasharray='5,4'")):
            line = [(x(p[0]), y(p[index])) for p in pts if p[index]]
            if line:
                out.append(f"<polyline points='{' '.join(f'{a:.1f},{b:.1f}' for a, b in line)}'"
                           f" fill='none' stroke='{colour}' stroke-width='2'{dash}/>")
                out += [f"<circle cx='{a:.1f}' cy='{b:.1f}' r='3' fill='{colour}'/>"
                        for a, b in line]
        out.append(f"<text x='{width - right + 12}' y='{top + 16 * i + 10}' fill='{colour}'>"
                   f"● {esc(name)}</text>")
    out.append("</svg>")
    return "".join(out)


def _cost_of(s: dict) -> float:
    cost = s["cost"]
    if cost.get("spent_per_1k") is not None:
        return cost["spent_per_1k"]
    if s.get("kind") == "llm":
        return cost["llm_equiv_per_1k"] or 0.0
    return cost["local_per_1k"] or 0.0


def quality_cost_svg(summary: dict, metric: str, colour: dict, width: int = 640,
                     height: int = 320) -> str:
    """Each system a point (cost, quality) with its interval; log cost axis when costs vary."""
    left, right, top, bottom = 70, 180, 20, 50
    costs = {n: _cost_of(s) for n, s in summary.items()}
    positive = [c for c in costs.values() if c > 0]
    lo_c = min(positive) / 2 if positive else 0.001
    hi_c = max(positive) * 2 if positive else 1.0

    def x(c: float) -> float:
        c = max(c, lo_c)
        span = math.log10(hi_c) - math.log10(lo_c)
        return left + (math.log10(c) - math.log10(lo_c)) / span * (width - left - right)

    def y(v: float) -> float:
        return top + (1 - v) * (height - top - bottom)

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>",
           _axes(left, top, width - right, height - bottom)]
    for v in (0, 0.25, 0.5, 0.75, 1):
        out.append(f"<text x='{left - 8}' y='{y(v) + 4:.1f}' text-anchor='end'>{v:.0%}</text>")
    for decade in range(math.floor(math.log10(lo_c)), math.ceil(math.log10(hi_c)) + 1):
        c = 10 ** decade
        if lo_c <= c <= hi_c:
            out.append(f"<text x='{x(c):.1f}' y='{height - bottom + 16}' text-anchor='middle'>"
                       f"${c:g}</text>")
    out.append(f"<text x='{(left + width - right) / 2}' y='{height - 8}' text-anchor='middle'>"
               "$ per 1,000 tasks (log; free systems at the left edge)</text>")
    for i, (name, s) in enumerate(summary.items()):
        m = s["metrics"].get(metric)
        if not m:
            continue
        cx = x(costs[name])
        out.append(f"<line x1='{cx:.1f}' x2='{cx:.1f}' y1='{y(m['lo']):.1f}' "
                   f"y2='{y(m['hi']):.1f}' stroke='{colour[name]}' stroke-width='2'/>")
        out.append(f"<circle cx='{cx:.1f}' cy='{y(m['mean']):.1f}' r='5' "
                   f"fill='{colour[name]}'/>")
        out.append(f"<text x='{width - right + 12}' y='{top + 16 * i + 10}' "
                   f"fill='{colour[name]}'>● {esc(name)} ({m['mean']:.1%})</text>")
    out.append("</svg>")
    return "".join(out)


def metric_bars_svg(summary: dict, metric: str, colour: dict, width: int = 640) -> str:
    row_h, left = 28, 110
    height = row_h * len(summary) + 30
    scale = width - left - 60
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"]
    for i, (name, s) in enumerate(summary.items()):
        m = s["metrics"].get(metric)
        yy = 10 + i * row_h
        out.append(f"<text x='{left - 8}' y='{yy + 15}' text-anchor='end'>{esc(name)}</text>")
        if not m:
            continue
        out.append(f"<rect x='{left}' y='{yy}' width='{m['mean'] * scale:.1f}' height='20' "
                   f"fill='{colour[name]}' opacity='.75'/>")
        out.append(f"<line x1='{left + m['lo'] * scale:.1f}' x2='{left + m['hi'] * scale:.1f}' "
                   f"y1='{yy + 10}' y2='{yy + 10}' stroke='#000' stroke-width='1.5'/>")
        out.append(f"<text x='{left + max(m['hi'], m['mean']) * scale + 6:.1f}' y='{yy + 15}'>"
                   f"{m['mean']:.1%}</text>")
    out.append("</svg>")
    return "".join(out)


def _latencies(rows: list[dict]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for row in rows:
        if row.get("latency_ms") is not None:
            out.setdefault(row["system"], []).append(row["latency_ms"])
    return out


def latency_svg(latencies: dict[str, list[float]], colour: dict, width: int = 640) -> str:
    """Box plots (p5, p25, p50, p75, p95) on a shared axis, one row per system."""
    row_h, left, right = 36, 110, 190
    height = row_h * len(latencies) + 40
    top_value = max(metrics.percentile(v, 99) or 0 for v in latencies.values()) or 1.0
    scale = (width - left - right) / top_value

    def x(v: float) -> float:
        return left + min(v, top_value) * scale

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"]
    for i, (name, values) in enumerate(latencies.items()):
        p5, p25, p50, p75, p95 = (metrics.percentile(values, q) for q in (5, 25, 50, 75, 95))
        yy = 10 + i * row_h
        c = colour.get(name, "#444")
        out.append(f"<text x='{left - 8}' y='{yy + 15}' text-anchor='end'>{esc(name)}</text>")
        out.append(f"<line x1='{x(p5):.1f}' x2='{x(p95):.1f}' y1='{yy + 10}' y2='{yy + 10}' "
                   f"stroke='{c}'/>")
        out.append(f"<rect x='{x(p25):.1f}' y='{yy}' width='{max(x(p75) - x(p25), 1):.1f}' "
                   f"height='20' fill='{c}' opacity='.6'/>")
        out.append(f"<line x1='{x(p50):.1f}' x2='{x(p50):.1f}' y1='{yy}' y2='{yy + 20}' "
                   "stroke='#000' stroke-width='2'/>")
        out.append(f"<text x='{x(p95) + 6:.1f}' y='{yy + 15}' class='dim'>p50 {p50:.0f} · "
                   f"p95 {p95:.0f} ms</text>")
    axis_y = height - 18
    for k in range(5):
        v = top_value * k / 4
        out.append(f"<text x='{x(v):.1f}' y='{axis_y + 12}' text-anchor='middle'>{v:.0f}</text>")
    out.append("</svg>")
    return "".join(out)


def _axes(x0: float, y0: float, x1: float, y1: float) -> str:
    return (f"<line x1='{x0}' y1='{y1}' x2='{x1}' y2='{y1}' stroke='#888'/>"
            f"<line x1='{x0}' y1='{y0}' x2='{x0}' y2='{y1}' stroke='#888'/>")


# ---------------------------------------------------------------- routing sweep

SERIES_COLOURS = {"mean": "#1f77b4", "token": "#2ca02c", "": "#444"}


def sweep_section(sweep: dict) -> str:
    metric = sweep["metric"]
    name = render.SHORT.get(metric, metric)
    rec = sweep["recommended"]
    parts = [f"<h2>Routing sweep: {esc(name)} vs $ per 1,000 tasks</h2>",
             f"<p>Escalating to <b>{esc(sweep['baseline_label'] or 'the baseline')}</b>. "
             "Each point is a routing policy replayed over the same answers; the label is "
             "its escalation rate (share of tasks sent to the baseline). ★ marks the "
             f"recommended operating point: the cheapest within "
             f"{sweep['tolerance'] * 100:g} points of the best {esc(name)}.</p>",
             sweep_svg(sweep)]
    head = "".join(f"<th>{esc(render.SHORT.get(m, m))}</th>" for m in sweep["metrics"])
    rows = []
    for i, p in enumerate(sweep["points"]):
        cells = "".join(f"<td>{esc(render.fmt_metric(p['quality'].get(m), m))}</td>"
                        for m in sweep["metrics"])
        mark = "★ " if i == rec else ""
        style = " style='background:#eef6ff;font-weight:bold'" if i == rec else ""
        rows.append(f"<tr{style}><td>{mark}{esc(p['label'])}</td><td>{esc(p['policy'])}</td>"
                    f"<td>{esc(render.threshold_text(p))}</td>{cells}"
                    f"<td>{esc(render.fmt_usd(p['spent_per_1k']))}</td>"
                    f"<td>{render.fmt_rate(p['escalation_rate'])}</td>"
                    f"<td>{render.fmt_rate(p['served']['baseline'])}</td></tr>")
    parts.append(f"<table><tr><th>point</th><th>policy</th><th>threshold</th>{head}"
                 "<th>$/1k tasks</th><th>escalated</th><th>served by baseline</th></tr>"
                 f"{''.join(rows)}</table>")
    return "\n".join(parts)


def sweep_svg(sweep: dict, width: int = 760, height: int = 380) -> str:
    """Quality against cost, one line per confidence signal, the fixed policies as labelled
    dots, every point's escalation rate beside it (where it fits), the recommended point
    ringed. The cost axis is linear: escalation cost dominates, so the spread is there."""
    metric, points = sweep["metric"], sweep["points"]
    plotted = [p for p in points if metric in p["quality"] and p["spent_per_1k"] is not None]
    if not plotted:
        return "<p class='dim'>no points to plot</p>"
    left, right, top, bottom = 70, 230, 20, 50
    hi_c = max(p["spent_per_1k"] for p in plotted) * 1.05 or 1.0
    values = [p["quality"][metric]["mean"] for p in plotted]
    lo_v = max(0.0, math.floor(min(values) * 10) / 10 - 0.1)
    hi_v = min(1.0, math.ceil(max(values) * 10) / 10 + 0.1)

    def x(c: float) -> float:
        return left + c / hi_c * (width - left - right)

    def y(v: float) -> float:
        return top + (hi_v - v) / (hi_v - lo_v) * (height - top - bottom)

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>",
           _axes(left, top, width - right, height - bottom)]
    for k in range(5):
        v = lo_v + (hi_v - lo_v) * k / 4
        out.append(f"<text x='{left - 8}' y='{y(v) + 4:.1f}' text-anchor='end'>{v:.0%}</text>")
        c = hi_c * k / 4
        out.append(f"<text x='{x(c):.1f}' y='{height - bottom + 16}' text-anchor='middle'>"
                   f"{'$0' if not c else f'${c:.2g}'}</text>")
    out.append(f"<text x='{(left + width - right) / 2}' y='{height - 8}' "
               "text-anchor='middle'>$ per 1,000 tasks</text>")
    legend_y = top + 14
    for signal, title in (("mean", "mean log-prob threshold"),
                          ("token", "lowest-token threshold")):
        series = sorted((p for p in plotted if p["signal"] == signal),
                        key=lambda p: p["spent_per_1k"])
        if series:
            path = " ".join(f"{x(p['spent_per_1k']):.1f},{y(p['quality'][metric]['mean']):.1f}"
                            for p in series)
            out.append(f"<polyline points='{path}' fill='none' "
                       f"stroke='{SERIES_COLOURS[signal]}' stroke-width='1.5'/>")
            out.append(f"<text x='{width - right + 12}' y='{legend_y}' "
                       f"fill='{SERIES_COLOURS[signal]}'>— {title}</text>")
            legend_y += 16
    rec = sweep["recommended"]
    placed: list[tuple[float, float]] = []
    # fixed policies first, so their labels win the space
    for i, p in sorted(enumerate(points), key=lambda ip: bool(ip[1]["signal"])):
        if p not in plotted:
            continue
        cx, cy = x(p["spent_per_1k"]), y(p["quality"][metric]["mean"])
        out.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='4' "
                   f"fill='{SERIES_COLOURS[p['signal']]}'/>")
        rate = render.fmt_rate(p["escalation_rate"])
        label = rate if p["signal"] else f"{p['label']} ({rate})"
        lx, ly = cx + 6, cy - 7
        if all(abs(lx - px) > 40 or abs(ly - py) > 13 for px, py in placed):
            placed.append((lx, ly))
            out.append(f"<text x='{lx:.1f}' y='{ly:.1f}' class='dim'>{esc(label)}</text>")
        if i == rec:
            out.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='10' fill='none' "
                       "stroke='#d62728' stroke-width='2'/>")
            out.append(f"<text x='{width - right + 12}' y='{legend_y + 8}' fill='#d62728'>"
                       "◯ ★ recommended:</text>")
            out.append(f"<text x='{width - right + 12}' y='{legend_y + 24}' fill='#d62728'>"
                       f"{esc(p['label'])}</text>")
            out.append(f"<text x='{width - right + 12}' y='{legend_y + 40}' fill='#d62728'>"
                       f"{rate} escalated</text>")
    out.append("</svg>")
    return "".join(out)
