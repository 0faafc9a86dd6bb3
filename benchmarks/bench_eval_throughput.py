"""Eval throughput: concurrent vs sequential engine requests, and sandbox parallelism.

Prints figures; asserts nothing about time. The engine part needs a running engine:

    python benchmarks/bench_eval_throughput.py --engine-url http://127.0.0.1:8733 \
        --engine-key "$(cat $COVEY_HOME/engine/api_key)" --limit 24
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from covey_eval import humaneval, sandbox, suites
from covey_eval.runner import answer_all
from covey_eval.systems import EngineSystem
from covey_specialists.client import EngineClient
from covey_specialists.table import load_table


class Discard:
    def record(self, call) -> None:
        pass


async def engine_speedup(url: str, key: str, limit: int, concurrency: int) -> None:
    tasks = suites.load("humaneval-sl", limit=limit, seed=0)
    table = load_table()
    async with EngineClient(url, key, sink=Discard(), client_name="eval") as client:
        system = EngineSystem("base", client, table, None, untuned=True)
        await answer_all(system, tasks[:2], 1)  # warm-up
        _, sequential = await answer_all(system, tasks, 1)
        answers, concurrent = await answer_all(system, tasks, concurrency)
    errors = sum(1 for a in answers if a.call and a.call.status != "ok")
    print(f"engine: {len(tasks)} humaneval-sl prompts, base model")
    print(f"  sequential      {sequential:7.2f} s  ({len(tasks) / sequential:.2f} tasks/s)")
    print(f"  concurrency {concurrency:<3} {concurrent:7.2f} s  "
          f"({len(tasks) / concurrent:.2f} tasks/s)  errors={errors}")
    print(f"  speed-up        {sequential / concurrent:.2f}×")


def sandbox_speedup(n: int) -> None:
    programs = [t.program(t.reference) for t in humaneval.single_line()[:n]]
    cores = os.cpu_count() or 1
    print(f"sandbox: {n} HumanEval programs, {cores} cores, isolation: "
          f"{sandbox.isolation().describe()}")
    base = None
    for workers in (1, cores, 4 * cores):
        started = time.perf_counter()
        outcomes = sandbox.run_many(programs, workers=workers)
        took = time.perf_counter() - started
        base = base or took
        print(f"  workers {workers:<3} {took:6.2f} s  {n / took:6.1f} programs/s  "
              f"speed-up {base / took:.2f}×  passed {sum(o.passed for o in outcomes)}/{n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine-url")
    parser.add_argument("--engine-key", default="")
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sandbox-programs", type=int, default=120)
    args = parser.parse_args()
    sandbox_speedup(args.sandbox_programs)
    if args.engine_url:
        asyncio.run(engine_speedup(args.engine_url, args.engine_key, args.limit,
                                   args.concurrency))
    else:
        print("engine: skipped (pass --engine-url)")


if __name__ == "__main__":
    main()
