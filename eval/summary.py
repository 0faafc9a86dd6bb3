"""Per-system summary of a run: every metric with its bootstrap 95% interval, latency
percentiles, tokens and cost per 1,000 tasks (local and LLM-equivalent)."""

from __future__ import annotations

from collections import defaultdict

from covey_eval import metrics

QUALITY = ("pass@1", "behaviour_preserved", "exact_match", "edit_similarity", "rouge_l",
           "bleu", "parses", "params_documented", "instruction_satisfied", "diff_lines")
HEADLINE = ("pass@1", "behaviour_preserved", "rouge_l", "edit_similarity", "exact_match",
            "parses")


def headline_metric(summary: dict) -> str | None:
    """The first headline metric every system in the summary has."""
    for name in HEADLINE:
        if summary and all(name in s["metrics"] for s in summary.values()):
            return name
    return None


def summarise(rows: list[dict], systems_info: dict[str, dict], *, seed: int = 0) -> dict:
    by_system: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_system[row["system"]].append(row)
    out = {}
    for name, info in systems_info.items():
        system_rows = by_system.get(name, [])
        out[name] = {**info, "n": len(system_rows),
                     "metrics": _metrics(system_rows, seed),
                     "latency_ms": _latency(system_rows),
                     "tokens": _tokens(system_rows),
                     "cost": _cost(system_rows, info.get("kind", "sanity")),
                     "errors": sum(1 for r in system_rows if r.get("status") not in ("ok", None))}
        out[name]["by_stratum"] = by_stratum(system_rows)
        asked = [r["escalated"] for r in system_rows if r.get("escalated") is not None]
        if asked:
            out[name]["escalation_rate"] = sum(asked) / len(asked)
    return out


def by_stratum(rows: list[dict]) -> dict:
    """Mean of each quality metric per stratum: per instruction on refactor suites (success
    differs a lot between, say, type hints and early returns), per span kind on FIM."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row.get("stratum"):
            groups[row["stratum"]].append(row)
    out = {}
    for stratum, group in sorted(groups.items()):
        means = {}
        for name in QUALITY:
            values = [r[name] for r in group if r.get(name) is not None]
            if values:
                means[name] = sum(values) / len(values)
        out[stratum] = {"n": len(group), **means}
    return out


def _metrics(rows: list[dict], seed: int) -> dict:
    out = {}
    for name in QUALITY:
        values = [r[name] for r in rows if r.get(name) is not None]
        if values:
            mean, lo, hi = metrics.bootstrap_ci(values, seed=seed)
            out[name] = {"mean": mean, "lo": lo, "hi": hi, "n": len(values)}
    return out


def _latency(rows: list[dict]) -> dict:
    ttft = [r["ttft_ms"] for r in rows if r.get("ttft_ms") is not None]
    total = [r["latency_ms"] for r in rows if r.get("latency_ms") is not None]
    return {"ttft_p50": metrics.percentile(ttft, 50), "ttft_p95": metrics.percentile(ttft, 95),
            "total_p50": metrics.percentile(total, 50),
            "total_p95": metrics.percentile(total, 95)}


def _tokens(rows: list[dict]) -> dict:
    return {"prompt": sum(r.get("prompt_tokens") or 0 for r in rows),
            "completion": sum(r.get("completion_tokens") or 0 for r in rows)}


def _cost(rows: list[dict], kind: str) -> dict:
    """Dollars per 1,000 tasks; None where the calls have not been priced.

    ``spent_per_1k`` is what the system really costs: local hardware plus whatever the
    baseline API charged (routed systems pay both).
    """
    if not rows or kind == "sanity":
        return {"local_per_1k": None, "llm_equiv_per_1k": None, "ratio": None,
                "spent_per_1k": None}
    local = [r["local_cost_usd"] for r in rows if r.get("local_cost_usd") is not None]
    llm = [r["llm_cost_usd"] for r in rows if r.get("llm_cost_usd") is not None]
    spent = [r["spent_usd"] for r in rows if r.get("spent_usd") is not None]
    local_1k = sum(local) / len(rows) * 1000 if local else None
    llm_1k = sum(llm) / len(rows) * 1000 if llm else None
    ratio = llm_1k / local_1k if local_1k and llm_1k else None
    return {"local_per_1k": local_1k, "llm_equiv_per_1k": llm_1k, "ratio": ratio,
            "spent_per_1k": sum(spent) / len(rows) * 1000 if spent else None}
