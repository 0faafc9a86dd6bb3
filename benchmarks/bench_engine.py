"""Engine benchmark (prints figures; asserts nothing about time).

Starts two engines one after the other, each in its own temporary Covey home: the base
model alone, then the base plus three LoRA adapters (the shipped ones when present, else
random rank-16 adapters made here with peft). For each it prints start time and resident
memory; on the second it measures time to first token, decode speed, and the same
completion with and without an adapter as a latency ratio.

    python benchmarks/bench_engine.py [--requests 20] [--port 8790]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from covey_specialists import base_model, engine
from covey_specialists.client import EngineClient
from covey_specialists.table import load_table
from covey_specialists.tasks.completion import CompletionContext, completion_prompt

SOURCE_HOME = Path(os.environ.get("COVEY_HOME", Path(__file__).parent.parent / ".covey-home/test"))


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in the engine's process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(") ", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e6


def make_adapters(model_dir: Path, out: Path) -> dict[str, Path]:
    shipped = Path(__file__).parent.parent / "specialists" / "adapters"
    found = {t: shipped / t for t in ("completion", "doc", "refactor")
             if (shipped / t / "adapter_config.json").is_file()}
    if len(found) == 3:
        return found
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapters = {}
    for i, task in enumerate(("completion", "doc", "refactor")):
        torch.manual_seed(i)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
        config = LoraConfig(r=16, lora_alpha=32, init_lora_weights=False,
                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                            "gate_proj", "up_proj", "down_proj"])
        peft_model = get_peft_model(model, config)
        adapters[task] = out / task
        peft_model.save_pretrained(adapters[task])
    return adapters


def start(home: Path, port: int, adapters: dict[str, Path] | None):
    os.environ["COVEY_HOME"] = str(home)
    (home / "models").mkdir(parents=True, exist_ok=True)
    link = home / "models" / base_model.DEFAULT_NAME
    if not link.exists():
        link.symlink_to(SOURCE_HOME / "models" / base_model.DEFAULT_NAME)
    lines = [f"[engine]\nport = {port}\n"]
    for task in ("completion", "doc", "refactor"):
        adapter = str(adapters[task]) if adapters else ""
        lines.append(f'[specialists.{task}]\nadapter = "{adapter}"\n')
    (home / "specialists.toml").write_text("".join(lines))
    table = load_table()
    began = time.perf_counter()
    status = engine.up(table)
    return table, status, time.perf_counter() - began


async def measure(url: str, key: str, requests: int) -> dict:
    table = load_table()
    spec = table.for_task("completion")
    ctx = CompletionContext(prefix="def fibonacci(n):\n    ", suffix="\n", multiline=True)
    prompt = completion_prompt(ctx, spec.prompt_format, 2000)
    ttft, decode, with_adapter, without = [], [], [], []
    async with EngineClient(url, key) as client:
        for _ in range(2):  # warm-up
            await client.complete(spec, prompt, max_tokens=8)
        for i in range(requests):
            r = await client.complete(spec, prompt, max_tokens=64,
                                      extra_body={"ignore_eos": True, "stop": []},
                                      model="base" if i % 2 else spec.key)
            (without if i % 2 else with_adapter).append(r.call.latency_ms)
            ttft.append(r.call.ttft_ms)
            decode.append((r.call.completion_tokens - 1) /
                          max(1e-9, (r.call.latency_ms - r.call.ttft_ms) / 1000))
    return {"ttft": ttft, "decode": decode, "with": with_adapter, "without": without}


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args()
    model_dir = SOURCE_HOME / "models" / base_model.DEFAULT_NAME
    if not base_model.is_prepared(model_dir):
        raise SystemExit(f"prepare the model first: COVEY_HOME={SOURCE_HOME} covey models prepare")
    with tempfile.TemporaryDirectory(prefix="covey-bench-") as tmp:
        tmp = Path(tmp)
        adapters = make_adapters(model_dir, tmp / "adapters")

        table, status, base_start = start(tmp / "home-base", args.port, None)
        base_rss = group_rss_mb(status.pid)
        engine.down(table)

        table, status, lora_start = start(tmp / "home-lora", args.port, adapters)
        lora_rss = group_rss_mb(status.pid)
        try:
            figures = asyncio.run(measure(status.url, engine.api_key(), args.requests))
        finally:
            engine.down(table)

    print(f"device: {status.device}")
    print(f"engine start, base only:          {base_start:6.1f} s")
    print(f"engine start, base + 3 adapters:  {lora_start:6.1f} s")
    print(f"resident memory, base only:       {base_rss:7.0f} MB")
    print(f"resident memory, base + 3 LoRA:   {lora_rss:7.0f} MB  "
          f"(ratio {lora_rss / base_rss:.2f})")
    print(f"time to first token p50/p95:      {pct(figures['ttft'], 50):6.0f} / "
          f"{pct(figures['ttft'], 95):.0f} ms")
    print(f"decode speed p50:                 {statistics.median(figures['decode']):6.1f} "
          "tokens/s")
    w, wo = statistics.median(figures["with"]), statistics.median(figures["without"])
    print(f"64-token completion p50, adapter: {w:6.0f} ms; base: {wo:.0f} ms; "
          f"ratio {w / wo:.2f}")


if __name__ == "__main__":
    main()
