"""Engine benchmark (prints figures; asserts nothing about time).

Starts engines one after the other, each in its own temporary Covey home: the base model
alone, then the base plus three LoRA adapters (the shipped ones when present, else random
rank-16 adapters made here with peft) as Covey runs them, with --compare-eager once more
uncompiled (COVEY_CPU_COMPILE=off), and with --compare-fallback once more with vLLM's own
CPU LoRA fallback. It prints start time and resident memory, and for
each LoRA engine the adapter/base ratios on one ~700-token prompt: time to first token and
a 32-token completion (targets: both at most 1.2).

    python benchmarks/bench_engine.py [--requests 10] [--port 8790] [--compare-eager]
                                      [--compare-fallback]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

from covey_specialists import base_model, engine, vllm_cpu_lora
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
    """Adapter and base on the same ~700-token prompt, alternating so that load drifts hit
    both alike: time to first token (1 token) and a 32-token completion. Each request's
    prompt opens with its own number, so vLLM's prefix cache (on by default) cannot serve
    a prefill that an earlier request computed: every figure includes the whole prefill."""
    table = load_table()
    spec = table.for_task("completion")
    source = Path(textwrap.__file__).read_text()[:2600]
    numbers = iter(range(10_000, 100_000))

    def fresh_prompt():
        ctx = CompletionContext(prefix=f"# {next(numbers)}\n{source}", suffix="\n",
                                multiline=True)
        return completion_prompt(ctx, spec.prompt_format, 4000)

    figures = {m: {"ttft": [], "tokens32": [], "decode": []} for m in ("base", spec.key)}
    async with EngineClient(url, key) as client:
        for model in figures:  # warm-up
            await client.complete(spec, fresh_prompt(), max_tokens=4, model=model)
        for i in range(requests):
            for model in (list(figures) if i % 2 else list(figures)[::-1]):
                first = await client.complete(spec, fresh_prompt(), max_tokens=1, model=model,
                                              extra_body={"ignore_eos": True, "stop": []})
                r = await client.complete(spec, fresh_prompt(), max_tokens=32, model=model,
                                          extra_body={"ignore_eos": True, "stop": []})
                figures[model]["ttft"].append(first.call.latency_ms)
                figures[model]["tokens32"].append(r.call.latency_ms)
                figures[model]["decode"].append((r.call.completion_tokens - 1) / max(
                    1e-9, (r.call.latency_ms - r.call.ttft_ms) / 1000))
    return {"base": figures["base"], "adapter": figures[spec.key],
            "prompt_tokens": r.call.prompt_tokens}


def report(label: str, figures: dict) -> None:
    base, adapter = figures["base"], figures["adapter"]
    ttft_b, ttft_a = statistics.median(base["ttft"]), statistics.median(adapter["ttft"])
    lat_b, lat_a = (statistics.median(base["tokens32"]),
                    statistics.median(adapter["tokens32"]))
    print(f"[{label}] prompt {figures['prompt_tokens']} tokens, "
          f"{len(base['ttft'])} requests each")
    print(f"[{label}] time to first token p50: adapter {ttft_a:6.0f} ms, base {ttft_b:6.0f} ms,"
          f" ratio {ttft_a / ttft_b:.2f}")
    print(f"[{label}] 32-token completion p50: adapter {lat_a:6.0f} ms, base {lat_b:6.0f} ms,"
          f" ratio {lat_a / lat_b:.2f}")
    print(f"[{label}] decode p50: adapter {statistics.median(adapter['decode']):.1f}, "
          f"base {statistics.median(base['decode']):.1f} tokens/s")


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--compare-eager", action="store_true",
                        help="Also run Covey's CPU LoRA uncompiled (COVEY_CPU_COMPILE=off).")
    parser.add_argument("--compare-fallback", action="store_true",
                        help="Also run the engine with vLLM's own CPU LoRA fallback.")
    args = parser.parse_args()
    model_dir = SOURCE_HOME / "models" / base_model.DEFAULT_NAME
    if not base_model.is_prepared(model_dir):
        raise SystemExit(f"prepare the model first: COVEY_HOME={SOURCE_HOME} covey models prepare")
    runs = {}
    with tempfile.TemporaryDirectory(prefix="covey-bench-") as tmp:
        tmp = Path(tmp)
        adapters = make_adapters(model_dir, tmp / "adapters")

        table, status, base_start = start(tmp / "home-base", args.port, None)
        base_rss = group_rss_mb(status.pid)
        engine.down(table)

        modes = (["covey"] + (["covey-eager"] if args.compare_eager else [])
                 + (["vllm-fallback"] if args.compare_fallback else []))
        for mode in modes:
            # COVEY_CPU_LORA other than "grouped" leaves vLLM's fallback in place
            os.environ[vllm_cpu_lora.ENV] = "off" if mode == "vllm-fallback" else vllm_cpu_lora.MODE
            os.environ[vllm_cpu_lora.COMPILE_ENV] = "off" if mode == "covey-eager" else "on"
            table, status, lora_start = start(tmp / f"home-{mode}", args.port, adapters)
            lora_rss = group_rss_mb(status.pid)
            try:
                runs[mode] = asyncio.run(measure(status.url, engine.api_key(), args.requests))
            finally:
                engine.down(table)
            runs[mode]["lora"] = status.lora or "vllm"
            runs[mode]["start_s"], runs[mode]["rss_mb"] = lora_start, lora_rss

    print(f"device: {status.device}")
    print(f"engine start, base only:          {base_start:6.1f} s")
    print(f"resident memory, base only:       {base_rss:7.0f} MB")
    for mode, figures in runs.items():
        label = f"{mode}: lora={figures['lora']}"
        rss = figures["rss_mb"]
        print(f"[{label}] engine start, base + 3 adapters: {figures['start_s']:.1f} s; "
              f"resident memory {rss:.0f} MB (ratio to base only {rss / base_rss:.2f})")
        report(label, figures)


if __name__ == "__main__":
    main()
