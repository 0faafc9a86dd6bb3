"""Differences between two runs, per system and metric, on the tasks both ran."""

from __future__ import annotations

from covey_eval import metrics
from covey_eval.summary import QUALITY


def compare(a: dict, b: dict, *, seed: int = 0,
            systems: tuple[str, str] | None = None) -> dict:
    """B − A per system present in both runs; with ``systems`` (A's, B's), those two
    systems paired instead (``specialist`` against ``base`` in one run, say), named
    ``"B − A"``."""
    rows = []
    shared_tasks: set[str] = set()
    pairs = [systems] if systems else [(s, s) for s in a["summary"] if s in b["summary"]]
    for system_a, system_b in pairs:
        system = system_a if system_a == system_b else f"{system_b} − {system_a}"
        a_rows = {r["task"]: r for r in a["rows"] if r["system"] == system_a}
        b_rows = {r["task"]: r for r in b["rows"] if r["system"] == system_b}
        shared = sorted(set(a_rows) & set(b_rows))
        shared_tasks.update(shared)
        for name in QUALITY:
            pairs = [(a_rows[t].get(name), b_rows[t].get(name)) for t in shared]
            pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
            if not pairs:
                continue
            xs, ys = zip(*pairs, strict=True)
            diff, lo, hi = metrics.paired_bootstrap_ci(xs, ys, seed=seed)
            verdict = ("no difference" if lo <= 0 <= hi
                       else ("B higher" if diff > 0 else "B lower"))
            rows.append({"system": system, "metric": name, "n": len(pairs),
                         "a": sum(xs) / len(xs), "b": sum(ys) / len(ys), "diff": diff,
                         "lo": lo, "hi": hi, "verdict": verdict})
    return {"a": a["run_id"], "b": b["run_id"], "n_shared": len(shared_tasks), "rows": rows}
