"""``covey train`` end to end: data → scrub → LoRA → gate → card → register → hot-load.

Kept apart from the click command so tests can drive it with small settings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from covey_specialists.table import Specialist, load_table
from covey_specialists.tasks import task_module
from covey_training import gate as gate_mod
from covey_training import registry
from covey_training.card import write_card
from covey_training.dataset import build_dataset
from covey_training.examples import Example, write_jsonl
from covey_training.lora import TrainConfig, train

log = logging.getLogger("covey.train")


@dataclass
class TrainRequest:
    task: str
    roots: list[Path]
    base_model: Path
    out_dir: Path
    config: TrainConfig
    usage_examples: list[Example] = field(default_factory=list)
    source_sets: list = field(default_factory=list)
    """Extra training code (installed packages) beside ``roots``; the gate uses ``roots``."""
    per_file: int | None = None
    generic_share: float = 0.0
    """Share of the training set from the standard library's training files (training on
    the user's repositories: so the adapter keeps what it knew); the gate uses ``roots``."""
    limit: int | None = None
    data_only: bool = False
    """Build and describe the dataset, then stop (no model is loaded)."""
    repo_context: bool = True
    """Prompts carry context from other files of the example's package, as served (a task
    whose builder takes a workspace: completion); the gate's held-out examples too."""
    gate_examples: int = 40
    gate_batch_size: int = 8
    """Prompts per batch when the gate generates locally (transformers)."""
    gate_concurrency: int = 16
    """Gate requests in flight at once through an engine, which batches them."""
    engine_url: str = ""
    engine_key: str = ""
    engine_base_name: str = "base"
    command: str = ""
    previous_adapter: Path | None = None
    """The adapter the new one would replace (the specialist's registered or shipped one);
    the gate compares with it too. None: compare with the base only."""
    previous_label: str = ""
    """How the table names it (``builtin:completion``, a version folder…)."""
    spec: Specialist | None = None
    """The task's specialist, whose stop strings and decoding the gate uses (default: the
    table's)."""


@dataclass
class TrainOutcome:
    out_dir: Path
    dataset: dict
    result: dict
    gate: dict | None


def heldout_examples(task: str, roots: list[Path], n: int, seed: int,
                     repo_context: bool = True) -> list[Example]:
    """``n`` examples from held-out files, a fixed sample for a given seed."""
    examples, _ = build_dataset(task, roots, split="heldout", seed=seed,
                                repo_context=repo_context)
    if task_module(task).SPREAD_HELDOUT:  # one example per file and kind, so no file dominates
        seen, spread = set(), []
        for ex in examples:
            key = (ex.source.split(":")[0], ex.meta.get("kind"))
            if key not in seen:
                seen.add(key)
                spread.append(ex)
        examples = spread + [ex for ex in examples if ex not in spread]
    return examples[:n]


def run(req: TrainRequest, progress: Callable[[int, int, float], None] | None = None,
        resume: bool = True) -> TrainOutcome:
    examples, info = build_dataset(req.task, req.roots, split="train", seed=req.config.seed,
                                   limit=req.limit, per_file=req.per_file,
                                   usage_examples=req.usage_examples,
                                   source_sets=req.source_sets,
                                   repo_context=req.repo_context,
                                   generic_share=req.generic_share)
    if not examples:
        raise ValueError(f"no {req.task} training examples found under "
                         f"{', '.join(map(str, req.roots))}")
    req.out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(examples, req.out_dir / "train.jsonl")
    dataset = asdict(info)
    (req.out_dir / "dataset.json").write_text(json.dumps(dataset, indent=2))
    if req.data_only:
        return TrainOutcome(out_dir=req.out_dir, dataset=dataset, result={}, gate=None)
    result = train(examples, req.base_model, req.out_dir, req.config, resume=resume,
                   progress=progress)
    result_d = asdict(result)
    (req.out_dir / "train.json").write_text(json.dumps({"config": asdict(req.config),
                                                        **result_d}, indent=2))
    gate = None
    if req.gate_examples > 0:
        gate = run_gate(req)
        (req.out_dir / "gate.json").write_text(json.dumps(gate, indent=2))
    write_card(req.out_dir, req.task, dataset, asdict(req.config), result_d, gate, req.command)
    return TrainOutcome(out_dir=req.out_dir, dataset=dataset, result=result_d, gate=gate)


def run_gate(req: TrainRequest, adapter_dir: Path | None = None) -> dict:
    """Held-out comparison of the new adapter with the fair base and the previous adapter
    (when there is one); also writes per-example samples."""
    adapter_dir = adapter_dir or req.out_dir
    examples = heldout_examples(req.task, req.roots, req.gate_examples, req.config.seed,
                                req.repo_context)
    if not examples:
        raise ValueError("no held-out examples to gate on")
    max_new = task_module(req.task).GATE_MAX_NEW_TOKENS
    spec = req.spec or load_table().for_task(req.task)
    metas = gate_mod.prompt_metas(examples)
    if req.engine_url:
        def generator(adapter: Path | None, name: str = "",
                      fair_base: bool = False) -> gate_mod.Generate:
            model = req.engine_base_name
            if adapter is not None:  # served under a gate-only name beside the table's
                model = f"{req.task}-{name}"
                ok, message = registry.hot_load(req.engine_url, req.engine_key, model, adapter)
                if not ok:
                    raise RuntimeError(message)
            return gate_mod.EngineGenerator(req.engine_url, req.engine_key, spec, model,
                                            max_new, adapter=str(adapter or ""),
                                            fair_base=fair_base, metas=metas,
                                            concurrency=req.gate_concurrency)
    else:
        def generator(adapter: Path | None, name: str = "",
                      fair_base: bool = False) -> gate_mod.Generate:
            return gate_mod.LocalGenerator(req.base_model, adapter, spec, max_new,
                                           fair_base=fair_base, metas=metas,
                                           batch_size=req.gate_batch_size,
                                           threads=req.config.threads)
    tuned = generator(adapter_dir, "candidate")
    previous = (None if req.previous_adapter is None
                else generator(req.previous_adapter, "previous"))
    base = generator(None, fair_base=True)
    result = gate_mod.evaluate(req.task, examples, base, tuned, previous,
                               previous_adapter=req.previous_label, seed=req.config.seed)
    with (adapter_dir / "gate_samples.jsonl").open("w") as fh:
        for sample in result.samples:
            fh.write(json.dumps(sample) + "\n")
    return result.as_dict()


def register(task: str, specialist_key: str, adapter_dir: Path, engine_url: str = "",
             engine_key: str = "", workspaces: list[Path] | None = None) -> tuple[Path, str]:
    """Store a new version, point the user table at it (for files under ``workspaces``
    only, when given), hot-load it if an engine is up."""
    version = registry.store_version(task, adapter_dir)
    if workspaces:
        for root in workspaces:
            registry.point_workspace_at(specialist_key, root, version)
        spec = load_table().specialists[specialist_key]
        names = [spec.for_path(str(root)).key for root in workspaces]
    else:
        registry.point_table_at(specialist_key, version)
        names = [specialist_key]
    message = "engine not running: the adapter is used from the next `covey engine up`"
    if engine_url:
        loaded = [registry.hot_load(engine_url, engine_key, name, version) for name in names]
        failed = [detail for ok, detail in loaded if not ok]
        message = failed[0] if failed else f"loaded into the engine as {', '.join(names)}"
    return version, message
