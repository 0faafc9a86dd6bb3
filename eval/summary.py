"""Per-system summary of a run: every metric with its bootstrap 95% interval, latency
percentiles, tokens and cost per 1,000 tasks (local and LLM-equivalent), marginal and
fully loaded, and $ per correct answer.

Fully loaded, in an eval: the engine is taken to be the system's alone while it answers,
so its device's hourly rate over the system's wall time (idle gaps included) is spread
over its tasks, when that exceeds the calls' own marginal costs. $ per correct answer is
what the system cost ÷ its correct answers (pass@1, else exact match)."""

from __future__ import annotations

from collections import defaultdict

from covey_eval import metrics
from covey_usage.cost import Prices, load_prices
from covey_usage.sessions import fully_loaded_total, uptime_cost

QUALITY = ("pass@1", "success", "behaviour_preserved", "exact_match", "edit_similarity",
           "delta_chrf", "no_change_precision", "no_change_recall",
           "rouge_l", "bleu", "parses", "params_documented", "instruction_satisfied",
           "diff_lines", "shown", "precision", "right_per_hole")
"""Scored over every answer, but the last three: what the editor shows (``shown``: the
share of tasks where it shows something; ``precision``: right among shown;
``right_per_hole``: shown and right, over all tasks)."""
CORRECT = ("pass@1", "success", "behaviour_preserved", "exact_match")
"""Metrics that say an answer was right; the first a system has counts its correct answers."""
HEADLINE = ("pass@1", "success", "behaviour_preserved", "rouge_l", "edit_similarity", "exact_match",
            "parses")


STRATUM_AXES = ("cross-file", "in-file", "one-line", "multi-line")
"""The values of the repo suite's two stratum axes (a stratum such as ``cross-file/one-line``
names one of each): each value also gets a stratum of its own in :func:`by_stratum`, so
one-line is reported against multi-line and cross-file against in-file."""


def stratum_axes(stratum: str) -> list[str]:
    """The axis values a stratum names (``cross-file/one-line``), or none (``HumanEval/3``)."""
    parts = stratum.split("/")
    return parts if len(parts) > 1 and all(p in STRATUM_AXES for p in parts) else []


def headline_metric(summary: dict) -> str | None:
    """The first headline metric every system in the summary has."""
    for name in HEADLINE:
        if summary and all(name in s["metrics"] for s in summary.values()):
            return name
    return None


def summarise(rows: list[dict], systems_info: dict[str, dict], *, seed: int = 0,
              prices: Prices | None = None) -> dict:
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
                     "cost": _cost(system_rows, info.get("kind", "sanity"),
                                   info.get("wall_s"), prices),
                     "errors": sum(1 for r in system_rows if r.get("status") not in ("ok", None))}
        out[name]["by_stratum"] = by_stratum(system_rows)
        asked = [r["escalated"] for r in system_rows if r.get("escalated") is not None]
        if asked:
            out[name]["escalation_rate"] = sum(asked) / len(asked)
    return out


def by_stratum(rows: list[dict]) -> dict:
    """Mean of each quality metric per stratum: per instruction on refactor suites (success
    differs a lot between, say, type hints and early returns), per span kind on FIM; on the
    repo suite per ``cross-file/one-line`` and the like, and per axis value alone
    (``cross-file``, ``one-line``: :func:`stratum_axes`)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row.get("stratum"):
            groups[row["stratum"]].append(row)
            for axis in stratum_axes(row["stratum"]):
                groups[axis].append(row)
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


def _prices() -> Prices | None:
    try:
        return load_prices()
    except ValueError:  # a broken user file: the shipped prices
        return load_prices(user=False)


def correct_answers(rows: list[dict]) -> tuple[str, float] | None:
    """(metric, number of correct answers) by the first of :data:`CORRECT` the rows have."""
    for name in CORRECT:
        values = [r[name] for r in rows if r.get(name) is not None]
        if values:
            return name, float(sum(values))
    return None


def _per(total: float | None, count: float) -> float | None:
    return total / count if total is not None and count > 0 else None


def _cost(rows: list[dict], kind: str, wall_s: float | None = None,
          prices: Prices | None = None) -> dict:
    """Dollars per 1,000 tasks and per correct answer; None where the calls have not been
    priced.

    ``spent_per_1k`` is what the system really costs: local hardware plus whatever the
    baseline API charged (routed systems pay both). ``fully_per_1k`` adds the engine's
    idle time during the system's run (see the module docstring).
    """
    empty = {"local_per_1k": None, "llm_equiv_per_1k": None, "ratio": None,
             "spent_per_1k": None, "fully_per_1k": None, "ratio_fully": None,
             "per_correct": None, "fully_per_correct": None,
             "correct": None, "correct_metric": None, "unpriced": 0, "energy_unmeasured": 0}
    if not rows or kind == "sanity":
        return empty
    local = [r["local_cost_usd"] for r in rows if r.get("local_cost_usd") is not None]
    llm = [r["llm_cost_usd"] for r in rows if r.get("llm_cost_usd") is not None]
    spent = [r["spent_usd"] for r in rows if r.get("spent_usd") is not None]
    n = len(rows)
    if any(r.get("unpriced") for r in rows):  # a partial sum would understate the cost
        local, spent = [], []
    local_1k = sum(local) / n * 1000 if local else None
    llm_1k = sum(llm) / n * 1000 if llm else None
    ratio = llm_1k / local_1k if local_1k and llm_1k else None
    spent_total = sum(spent) if spent else None
    if kind == "llm" and spent_total is None and llm:
        spent_total = sum(llm)  # an API system costs what the API charges
    devices = {r["device"] for r in rows if r.get("device")}
    fully_total = spent_total
    if spent_total is not None and wall_s and len(devices) == 1:
        prices = prices or _prices()
        uptime = uptime_cost(prices, devices.pop(), wall_s) if prices else None
        if uptime is not None:
            extra = sum(spent) - sum(local) if spent else 0.0  # what an API charged
            fully_total = fully_loaded_total(sum(local), uptime) + extra
    fully_1k = fully_total / n * 1000 if fully_total is not None else None
    found = correct_answers(rows)
    correct = found[1] if found else 0.0
    return {"local_per_1k": local_1k, "llm_equiv_per_1k": llm_1k, "ratio": ratio,
            "spent_per_1k": sum(spent) / n * 1000 if spent else None,
            "fully_per_1k": fully_1k,
            "ratio_fully": llm_1k / fully_1k if llm_1k and fully_1k else None,
            "per_correct": _per(spent_total, correct),
            "fully_per_correct": _per(fully_total, correct),
            "correct": correct if found else None, "correct_metric": found and found[0],
            "unpriced": sum(1 for r in rows if r.get("unpriced")),
            "energy_unmeasured": sum(1 for r in rows if r.get("device")
                                     and r.get("energy_j") is None)}
