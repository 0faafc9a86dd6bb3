"""Acceptance figures for an adapter: the eval harness's suites, base vs adapter, locally.

Uses the eval harness's own task definitions, and the task modules' prompt building,
post-processing and scoring (``covey_eval.suites``, ``systems``, ``execute``; the base
prompted fairly, as the eval's ``base``) — including sandboxed execution for
HumanEval pass@1 and for refactor behaviour (the module's tests with the function
replaced) — with greedy generation through transformers, so no engine is needed.

    python -m covey_training.acceptance completion specialists/adapters/completion \
        --suite humaneval-sl --limit 100
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from statistics import mean

SUITE_FOR = {"completion": "humaneval-sl", "doc": "stdlib-doc", "refactor": "stdlib-refactor"}


def evaluate(task: str, adapter: Path, base_model: Path, suite: str, limit: int, seed: int,
             batch_size: int = 8) -> dict:
    from covey_eval import execute, suites, systems
    from covey_specialists.table import load_table
    from covey_specialists.tasks import task_module
    from covey_training.gate import LocalGenerator

    module = task_module(task)
    spec = load_table().for_task(task)
    tasks = suites.load(suite, limit=limit, seed=seed)
    out = {"suite": suite, "tasks": len(tasks), "seed": seed, "systems": {}}
    for name, adapter_dir in (("base", None), ("adapter", adapter)):
        built = [systems.plan(t, spec, fair_base=adapter_dir is None) for t in tasks]
        generate = LocalGenerator(base_model, adapter_dir, min(spec.max_tokens,
                                                               module.GATE_MAX_NEW_TOKENS),
                                  batch_size=batch_size)
        raws = generate([p.prompt.text for p in built])
        rows = []
        for t, planned, raw in zip(tasks, built, raws, strict=True):
            answer = systems.finish(t, planned, raw)
            row = dict(module.scores(t, answer))
            found = execute.job(t, answer)
            if found is not None:
                metric, job = found
                row[metric] = float(job().passed) if job is not None else 0.0
            if "instruction_satisfied" in row:  # a refactor succeeds on all three
                row["success"] = float(row["parses"] and row["instruction_satisfied"]
                                       and row.get(module.EXECUTION_METRIC, 0.0))
            rows.append(row)
        keys = sorted({k for r in rows for k in r})
        out["systems"][name] = {k: round(mean(r[k] for r in rows if r.get(k) is not None), 4)
                                for k in keys if any(r.get(k) is not None for r in rows)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=sorted(SUITE_FOR))
    parser.add_argument("adapter", type=Path)
    parser.add_argument("--suite", default=None)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from covey_specialists.base_model import prepare_default_model

    result = evaluate(args.task, args.adapter, args.base or prepare_default_model(),
                      args.suite or SUITE_FOR[args.task], args.limit, args.seed)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
