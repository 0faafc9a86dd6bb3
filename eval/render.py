"""Terminal tables for runs and comparisons (rich)."""

from __future__ import annotations

from rich.table import Table

from covey_eval.summary import QUALITY, STRATUM_AXES, headline_metric, stratum_axes

SHORT = {"pass@1": "pass@1", "success": "success", "behaviour_preserved": "behaviour",
         "exact_match": "EM",
         "edit_similarity": "edit sim", "delta_chrf": "Δ-chrF",
         "no_change_precision": "no-change prec.", "no_change_recall": "no-change recall",
         "rouge_l": "ROUGE-L", "bleu": "BLEU",
         "parses": "parses", "params_documented": "params doc'd",
         "instruction_satisfied": "instr. ok", "diff_lines": "diff lines",
         "shown": "shown", "precision": "precision", "right_per_hole": "right/hole"}


def fmt_metric(m: dict | None, name: str = "") -> str:
    if not m:
        return "–"
    if name == "diff_lines":
        return f"{m['mean']:.1f} [{m['lo']:.1f}, {m['hi']:.1f}]"
    return f"{m['mean'] * 100:.1f}% [{m['lo'] * 100:.1f}, {m['hi'] * 100:.1f}]"


def fmt_ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def fmt_usd(value: float | None) -> str:
    if value is None:
        return "–"
    if 0 < value < 0.001:  # local CPU costs per 1,000 tasks can be fractions of a cent
        return f"${value:.2g}"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def run_table(result: dict) -> Table:
    summary = result["summary"]
    present = [m for m in QUALITY if any(m in s["metrics"] for s in summary.values())]
    meta = result.get("meta", {})
    table = Table(title=f"eval run {result['run_id']} — {meta.get('suite')}{setup_text(meta)} "
                        f"({result.get('n_tasks')} tasks), 95% bootstrap intervals",
                  caption=strata_text(summary))
    table.add_column("system")
    for name in present:
        table.add_column(SHORT[name], justify="right")
    routed = any("escalation_rate" in s for s in summary.values())
    extra = ("escalated", "$/1k spent") if routed else ()
    for col in ("ttft p50/p95 ms", "total p50/p95 ms", "tokens in/out", "$/1k local",
                "$/1k fully loaded", "$/1k LLM-eq", "ratio m/f", "$/correct m/f", "errors",
                *extra):
        table.add_column(col, justify="right")
    for name, s in summary.items():
        lat, cost, tok = s["latency_ms"], s["cost"], s["tokens"]
        table.add_row(
            name,
            *(fmt_metric(s["metrics"].get(m), m) for m in present),
            f"{fmt_ms(lat['ttft_p50'])}/{fmt_ms(lat['ttft_p95'])}",
            f"{fmt_ms(lat['total_p50'])}/{fmt_ms(lat['total_p95'])}",
            f"{tok['prompt']:,}/{tok['completion']:,}",
            fmt_usd(cost["local_per_1k"]), fmt_usd(cost.get("fully_per_1k")),
            fmt_usd(cost["llm_equiv_per_1k"]), ratio_text(cost),
            f"{fmt_usd(cost.get('per_correct'))}/{fmt_usd(cost.get('fully_per_correct'))}",
            str(s["errors"]),
            *((fmt_rate(s.get("escalation_rate")), fmt_usd(cost.get("spent_per_1k")))
              if routed else ()),
        )
    return table


def setup_text(meta: dict) -> str:
    """The repo suite's holes and context (``, holes cross-file, context repo``); empty for
    other suites."""
    if not meta.get("holes"):
        return ""
    return f", holes {meta['holes']}, context {meta.get('context') or 'none'}"


def strata_text(summary: dict) -> str | None:
    """The headline metric per axis value (cross-file against in-file, one-line against
    multi-line), one line per system; None when the strata have no axes."""
    metric = headline_metric(summary)
    lines = []
    for name, s in summary.items():
        strata = s.get("by_stratum") or {}
        cells = [f"{axis} {strata[axis][metric] * 100:.1f}% (n {strata[axis]['n']})"
                 for axis in STRATUM_AXES if metric in strata.get(axis, {})]
        if cells and any(stratum_axes(k) for k in strata):
            lines.append(f"{name}: " + ", ".join(cells))
    if not lines:
        return None
    return f"{SHORT.get(metric, metric)} by stratum — " + "; ".join(lines)


def ratio_text(cost: dict) -> str:
    """LLM-equivalent ÷ local, marginal/fully loaded ("n× cheaper")."""
    def one(v):
        return "–" if v is None else f"{v:.1f}×"
    return f"{one(cost['ratio'])}/{one(cost.get('ratio_fully'))}"


def fmt_rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def threshold_text(point: dict) -> str:
    return "–" if point.get("threshold") is None else f"{point['threshold']:g}"


def sweep_table(result: dict) -> Table:
    sweep = result["sweep"]
    metric = sweep["metric"]
    table = Table(title=f"routing sweep — {sweep['n_tasks']} tasks, escalating to "
                        f"{sweep['baseline_label'] or 'the baseline'} (★ recommended: the "
                        f"cheapest point within {sweep['tolerance'] * 100:g} pts of the best "
                        f"{SHORT.get(metric, metric)})")
    table.add_column("point")
    table.add_column("policy")
    table.add_column("threshold", justify="right")
    for m in sweep["metrics"]:
        table.add_column(SHORT.get(m, m), justify="right")
    for col in ("$/1k tasks", "escalated", "served by baseline"):
        table.add_column(col, justify="right")
    for i, p in enumerate(sweep["points"]):
        star = "★ " if i == sweep["recommended"] else ""
        table.add_row(f"{star}{p['label']}", p["policy"], threshold_text(p),
                      *(fmt_metric(p["quality"].get(m), m) for m in sweep["metrics"]),
                      fmt_usd(p["spent_per_1k"]), fmt_rate(p["escalation_rate"]),
                      fmt_rate(p["served"]["baseline"]))
    return table


def show_table(result: dict) -> Table:
    """The show threshold's precision against coverage (``sweep["show"]``)."""
    show = result["sweep"]["show"]
    table = Table(title=f"show threshold — precision (shown answers that are right: "
                        f"{show['right_means']}) against coverage (★ recommended: most "
                        f"coverage with precision ≥ unfiltered + {show['margin'] * 100:g} pts, "
                        f"≥ {show['min_shown']} shown)")
    for col in ("min_show_logprob", "shown", "coverage", "right", "precision"):
        table.add_column(col, justify="right")
    for i, p in enumerate(show["points"]):
        star = "★ " if i == show["recommended"] else ""
        threshold = "off" if p["threshold"] is None else f"{p['threshold']:g}"
        table.add_row(f"{star}{threshold}", f"{p['shown']}/{p['n']}", fmt_rate(p["coverage"]),
                      str(p["right"]), fmt_rate(p["precision"]))
    return table


def compare_table(comparison: dict) -> Table:
    table = Table(title=f"{comparison['b']} − {comparison['a']} on "
                        f"{comparison['n_shared']} shared tasks (paired bootstrap 95%)")
    for col in ("system", "metric", "A", "B", "B − A", "interval", "verdict"):
        table.add_column(col, justify="left" if col in ("system", "metric") else "right")
    for row in comparison["rows"]:
        scale = 1 if row["metric"] == "diff_lines" else 100
        unit = "" if scale == 1 else " pts"
        table.add_row(row["system"], SHORT.get(row["metric"], row["metric"]),
                      f"{row['a'] * scale:.1f}", f"{row['b'] * scale:.1f}",
                      f"{row['diff'] * scale:+.1f}{unit}",
                      f"[{row['lo'] * scale:+.1f}, {row['hi'] * scale:+.1f}]", row["verdict"])
    return table
