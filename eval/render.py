"""Terminal tables for runs and comparisons (rich)."""

from __future__ import annotations

from rich.table import Table

from covey_eval.summary import QUALITY

SHORT = {"pass@1": "pass@1", "behaviour_preserved": "behaviour", "exact_match": "EM",
         "edit_similarity": "edit sim", "rouge_l": "ROUGE-L", "bleu": "BLEU",
         "parses": "parses", "params_documented": "params doc'd",
         "instruction_satisfied": "instr. ok", "diff_lines": "diff lines"}


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
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def run_table(result: dict) -> Table:
    summary = result["summary"]
    present = [m for m in QUALITY if any(m in s["metrics"] for s in summary.values())]
    meta = result.get("meta", {})
    table = Table(title=f"eval run {result['run_id']} — {meta.get('suite')} "
                        f"({result.get('n_tasks')} tasks), 95% bootstrap intervals")
    table.add_column("system")
    for name in present:
        table.add_column(SHORT[name], justify="right")
    for col in ("ttft p50/p95 ms", "total p50/p95 ms", "tokens in/out", "$/1k local",
                "$/1k LLM-eq", "ratio", "errors"):
        table.add_column(col, justify="right")
    for name, s in summary.items():
        lat, cost, tok = s["latency_ms"], s["cost"], s["tokens"]
        table.add_row(
            name,
            *(fmt_metric(s["metrics"].get(m), m) for m in present),
            f"{fmt_ms(lat['ttft_p50'])}/{fmt_ms(lat['ttft_p95'])}",
            f"{fmt_ms(lat['total_p50'])}/{fmt_ms(lat['total_p95'])}",
            f"{tok['prompt']:,}/{tok['completion']:,}",
            fmt_usd(cost["local_per_1k"]), fmt_usd(cost["llm_equiv_per_1k"]),
            "–" if cost["ratio"] is None else f"{cost['ratio']:.1f}×",
            str(s["errors"]),
        )
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
