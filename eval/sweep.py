"""Quality against cost as the routing policy and its thresholds vary.

One run collects, for every task, the specialist's answer with what routing reads (token
log-probs, why validation rejects it), the baseline's answer (validated too), and the empty
answer; each is scored and priced like any eval answer. Every operating point then replays
the live runner's choice (:func:`route_task`: the same
:class:`~covey_specialists.routing.Flow` that :func:`covey_specialists.routing.answer`
drives) over those answers: decoding is greedy, so a
live routed run at that point would get the same answers, at the same cost.

Points span ``never`` to ``always-baseline``: ``on-failure``, then ``on-low-confidence``
with the mean log-prob threshold at quantiles of the specialist's observed means (about
that share of answers escalate), and likewise the lowest-token threshold. The recommended
point is the cheapest whose quality is within ``tolerance`` of the best point's.

The same answers also give the show threshold (``min_show_logprob``, the editor's
confidence filter) — :func:`show_sweep`: for each threshold on the specialist's mean token
log-prob, **coverage** (the share of tasks where something is shown: the call succeeded,
the answer is not empty and its mean log-prob is not below the threshold; an answer without
log-probs is shown, as the server does) against **precision** (the share of shown answers
that are right: they pass the task's tests where it has them, else match exactly). The
recommended threshold is the lowest (most coverage) whose precision is at least the
unfiltered precision plus ``margin``, among points that still show ``min_shown`` answers;
none when no point gets there, and the filter stays off. Not max F-score: F weighs a
hidden right answer like a shown wrong one, while the filter exists to trade a little
coverage for a stated gain in precision, and the margin says how much.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from covey_eval import metrics
from covey_eval.runner import RIGHT, right
from covey_eval.summary import headline_metric
from covey_specialists.routing import Flow, Signals, withhold_reason
from covey_specialists.table import Specialist

SECONDARY = ("exact_match", "edit_similarity", "rouge_l", "parses")
OFF = -math.inf
"""A threshold that never fires (the other signal's series)."""


@dataclass(frozen=True)
class Routing:
    label: str
    policy: str
    signal: str = ""
    """``mean`` or ``token`` for on-low-confidence points."""
    threshold: float | None = None

    def spec(self) -> Specialist:
        return Specialist(key="sweep", routing=self.policy,
                          min_mean_logprob=self.threshold if self.signal == "mean" else OFF,
                          min_token_logprob=self.threshold if self.signal == "token" else OFF)


def route_task(spec: Specialist, specialist: dict, baseline: dict | None
               ) -> tuple[str, bool, bool]:
    """(served source, specialist asked, baseline asked) for one task's recorded answers:
    the live router's own :class:`~covey_specialists.routing.Flow`, fed the recorded
    answers instead of live calls."""
    flow = Flow(spec, baseline is not None)
    while (step := flow.next_step()) != "done":
        if step == "specialist":
            flow.specialist_answered(Signals(
                specialist.get("status", "ok"), specialist.get("invalid_reason"),
                specialist.get("mean_logprob"), specialist.get("min_logprob")))
        else:
            flow.baseline_answered(baseline.get("status") == "ok"
                                   and not baseline.get("invalid_reason"))
    return flow.source(), flow.asked_specialist, flow.asked_baseline


def routings(specialist_rows: list[dict], points: int) -> list[Routing]:
    """The operating points: never, on-failure, thresholds at quantiles of the kept answers'
    log-probs (per signal), always-baseline."""
    out = [Routing("never", "never"), Routing("on-failure", "on-failure")]
    # Quantiles of the answers on-failure keeps (valid ones): failures escalate anyway,
    # so thresholds spread the points between on-failure and always-baseline.
    kept = [r for r in specialist_rows if r.get("status") == "ok" and not r.get("invalid_reason")]
    for signal, key in (("mean", "mean_logprob"), ("token", "min_logprob")):
        values = sorted(r[key] for r in kept if r.get(key) is not None)
        if not values:
            continue
        chosen = []
        for i in range(1, points + 1):
            t = round(float(metrics.percentile(values, 100 * i / (points + 1))), 3)
            if t not in chosen:
                chosen.append(t)
        name = "mean log-prob" if signal == "mean" else "token log-prob"
        out += [Routing(f"{name} < {t:g}", "on-low-confidence", signal, t) for t in chosen]
    out.append(Routing("always-baseline", "always-baseline"))
    return out


def evaluate(routing: Routing, tasks: list[str], rows: dict[str, dict[str, dict]],
             metric_names: list[str], seed: int = 0) -> dict:
    """One point: quality (per metric, with its bootstrap interval), $ per 1,000 tasks, and
    the share of tasks escalated (baseline asked) and served by each source."""
    spec = routing.spec()
    served = {"specialist": 0, "baseline": 0, "none": 0}
    escalated, spent = 0, 0.0
    scores: dict[str, list[float]] = {m: [] for m in metric_names}
    for task in tasks:
        by_system = rows[task]
        source, asked_s, asked_b = route_task(spec, by_system["specialist"],
                                              by_system.get("baseline"))
        served[source] += 1
        escalated += asked_b
        spent += (by_system["specialist"].get("spent_usd") or 0.0) * asked_s
        if asked_b:
            spent += by_system["baseline"].get("spent_usd") or 0.0
        row = by_system.get({"none": "empty"}.get(source, source)) or {}
        for m in metric_names:
            if row.get(m) is not None:
                scores[m].append(row[m])
    n = len(tasks)
    quality = {}
    for m, values in scores.items():
        if values:
            mean, lo, hi = metrics.bootstrap_ci(values, seed=seed)
            quality[m] = {"mean": mean, "lo": lo, "hi": hi, "n": len(values)}
    return {"label": routing.label, "policy": routing.policy, "signal": routing.signal,
            "threshold": routing.threshold, "quality": quality,
            "spent_per_1k": spent / n * 1000 if n else None,
            "escalation_rate": escalated / n if n else None,
            "served": {k: v / n for k, v in served.items()} if n else served}


def recommend(points: list[dict], metric: str, tolerance: float) -> int | None:
    """The cheapest point whose quality is within ``tolerance`` of the best point's."""
    scored = [(i, p) for i, p in enumerate(points) if metric in p["quality"]]
    if not scored:
        return None
    best = max(p["quality"][metric]["mean"] for _, p in scored)
    near = [(p["spent_per_1k"] or 0.0, i) for i, p in scored
            if p["quality"][metric]["mean"] >= best - tolerance - 1e-12]
    return min(near)[1]


def sweep(result: dict, *, points: int = 9, tolerance: float = 0.01,
          metric: str | None = None, margin: float = 0.1, min_shown: int = 10,
          routing: bool = True) -> dict:
    """The sweep over a collection run's rows (systems specialist, baseline, empty); the
    curve and the recommendation use ``metric`` (default: the suite's headline metric).
    ``routing=False`` (a run without baseline answers) gives the show threshold only."""
    if not routing:
        tasks = {r["task"]: r for r in result["rows"] if r["system"] == "specialist"}
        return {"n_tasks": len(tasks),
                "show": show_sweep(list(tasks.values()), points=points, margin=margin,
                                   min_shown=min_shown)}
    summary = result["summary"]
    systems = {k: v for k, v in summary.items() if k != "empty"}
    if metric is not None and not all(metric in s["metrics"] for s in systems.values()):
        raise ValueError(f"this suite is not scored by {metric}")
    headline = headline_metric(systems)
    metric = metric or headline
    if metric is None:
        raise ValueError("the run has no quality metric common to its systems")
    rows: dict[str, dict[str, dict]] = {}
    for row in result["rows"]:
        rows.setdefault(row["task"], {})[row["system"]] = row
    tasks = [t for t, by in rows.items() if "specialist" in by]
    names = [metric] + [m for m in dict.fromkeys((headline, *SECONDARY))
                        if m and m != metric and all(m in s["metrics"] for s in systems.values())]
    seed = result.get("meta", {}).get("seed", 0)
    specialist_rows = [rows[t]["specialist"] for t in tasks
                       if rows[t]["specialist"].get("status") == "ok"]
    evaluated = [evaluate(r, tasks, rows, names, seed)
                 for r in routings(specialist_rows, points)]
    baseline = summary.get("baseline", {})
    return {"metric": metric, "metrics": names, "points": evaluated,
            "recommended": recommend(evaluated, metric, tolerance), "tolerance": tolerance,
            "baseline_label": baseline.get("label", ""), "n_tasks": len(tasks),
            "show": show_sweep([rows[t]["specialist"] for t in tasks], points=points,
                               margin=margin, min_shown=min_shown)}


# ------------------------------------------------------------------ show threshold

def _answered(row: dict) -> bool:
    return row.get("status") == "ok" and bool(row.get("answer"))


def _scored_right(row: dict) -> bool:
    return bool(right(row))


def show_point(rows: list[dict], threshold: float | None,
               is_right: Callable[[dict], bool] = _scored_right) -> dict:
    """Coverage and precision when the router's show filter sits at ``threshold`` (None:
    off), replayed with its own :func:`~covey_specialists.routing.withhold_reason`."""
    spec = Specialist(key="sweep", min_show_logprob=OFF if threshold is None else threshold)
    shown = [r for r in rows if _answered(r)
             and withhold_reason(spec, r.get("mean_logprob")) is None]
    right_ = sum(is_right(r) for r in shown)
    n = len(rows)
    return {"threshold": threshold, "shown": len(shown), "right": right_, "n": n,
            "coverage": len(shown) / n if n else None,
            "precision": right_ / len(shown) if shown else None}


def show_thresholds(rows: list[dict], points: int) -> list[float]:
    """Thresholds at quantiles of the answered rows' mean log-probs, rising."""
    values = sorted(r["mean_logprob"] for r in rows
                    if _answered(r) and r.get("mean_logprob") is not None)
    if not values:
        return []
    out: list[float] = []
    for i in range(1, points + 1):
        t = round(float(metrics.percentile(values, 100 * i / (points + 1))), 3)
        if t not in out:
            out.append(t)
    return out


def recommend_show(points: list[dict], margin: float, min_shown: int) -> int | None:
    """The index of the most-coverage point (the lowest threshold) whose precision is at
    least the unfiltered point's (``points[0]``) + ``margin`` and that shows ``min_shown``
    answers or more; None when there is none."""
    floor = points[0]["precision"] if points else None
    if floor is None:
        return None
    eligible = [(p["coverage"], -(p["threshold"] or 0.0), i) for i, p in enumerate(points)
                if p["threshold"] is not None and p["shown"] >= min_shown
                and p["precision"] is not None and p["precision"] >= floor + margin - 1e-12]
    return max(eligible)[2] if eligible else None


def show_sweep(rows: list[dict], *, points: int = 9, margin: float = 0.1,
               min_shown: int = 10, is_right: Callable[[dict], bool] = _scored_right,
               right_means: str = " or ".join(RIGHT)) -> dict:
    """Precision against coverage over the specialist's ``rows`` (one per task): the
    unfiltered point first, then thresholds at quantiles; and the recommended one."""
    evaluated = [show_point(rows, t, is_right)
                 for t in [None, *show_thresholds(rows, points)]]
    return {"points": evaluated, "recommended": recommend_show(evaluated, margin, min_shown),
            "margin": margin, "min_shown": min_shown, "right_means": right_means}


KEPT = ("accepted", "partial", "typed")
"""Outcomes of a suggestion the user kept (in full, in part, or by typing it)."""


def usage_rows(calls: list[dict]) -> list[dict]:
    """The editor's completion calls from the usage log whose suggestion has an outcome,
    as rows :func:`show_sweep` reads: their mean log-prob, and ``kept`` when the user kept
    it and did not remove it by the first retention check. Only what was shown has an
    outcome, so these can only tell how far to raise the threshold in use, not lower it."""
    out = []
    for call in calls:
        if call.get("shown_at") is None or call.get("outcome") is None:
            continue
        kept = call["outcome"] in KEPT and call.get("retained_30s") != 0
        out.append({"status": "ok", "answer": "shown", "mean_logprob": call.get("mean_logprob"),
                    "kept": kept})
    return out


def from_usage(calls: list[dict], *, points: int = 9, margin: float = 0.1,
               min_shown: int = 10) -> dict:
    """:func:`show_sweep` over the user's own history: right means kept."""
    return show_sweep(usage_rows(calls), points=points, margin=margin, min_shown=min_shown,
                      is_right=lambda r: r["kept"],
                      right_means="kept: accepted in full or part, or typed, and not removed")
