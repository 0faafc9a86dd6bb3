"""LoRA fine-tuning with peft: a small, deterministic loop with checkpoints and resume.

Loss is taken on the target tokens only, and the vocabulary projection is applied only at
those positions — on a 49k vocabulary that saves a fifth of the compute on CPU.

At scale (100k examples on a GPU) three things matter:
- packing: several examples share one row of ``max_len`` tokens instead of padding each
  to the longest. A block-diagonal causal mask and positions restarting at each example
  keep examples from attending to each other, so a packed row computes exactly what the
  examples would alone (a test checks this);
- bf16 autocast on CUDA, and on CPUs that multiply bf16 in hardware (the LoRA weights and
  optimizer stay fp32; docs/training.md has the CPU figures);
- micro-batches sized to the device (``batch_tokens=0``: from free GPU memory) with
  gradient accumulation for a larger effective batch.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from covey_specialists.model_registry import DEFAULT_BASE_NAME, DEFAULT_TARGET_MODULES
from covey_training.examples import Example

log = logging.getLogger("covey.train")

MAX_RANK = 16


@dataclass
class TrainConfig:
    steps: int = 80
    lr: float = 1e-3
    rank: int = 8
    alpha: int = 16
    batch_tokens: int = 1024
    """Padded tokens per micro-batch (batch size adapts to example length); 0 sizes it from
    the free GPU memory."""
    max_len: int = 640
    """Longest example, and the length of a packed row."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    pack: bool = True
    """Pack several examples into each row (no attention across them)."""
    warmup_steps: int = 4
    seed: int = 0
    threads: int = 1
    checkpoint_every: int = 10
    device: str = "auto"
    init_adapter: str = ""
    """A LoRA adapter folder (peft format, same rank, alpha and target modules) whose
    weights training starts from instead of a fresh LoRA (continue the shipped adapter);
    empty: a fresh one. A checkpoint in the work folder still wins (resume)."""
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    """The base's linear layers LoRA trains (``model_registry.target_modules``)."""
    base_name: str = DEFAULT_BASE_NAME
    """The base the adapter records as its own; the engine refuses it on any other."""

    def __post_init__(self) -> None:
        if not 1 <= self.rank <= MAX_RANK:
            raise ValueError(f"rank must be between 1 and {MAX_RANK} (the engine's max_lora_rank)")
        if self.steps <= 0:
            raise ValueError("steps must be positive")
        if self.grad_accum <= 0:
            raise ValueError("grad_accum must be positive")



@dataclass
class TrainResult:
    steps: int
    examples_seen: int
    tokens_seen: int
    first_loss: float
    final_loss: float
    seconds: float
    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0
    device: str = ""
    batch_tokens: int = 0
    """Tokens per micro-batch actually used (resolved when the config said 0)."""


def pick_device(name: str) -> str:
    import torch

    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


BYTES_PER_TOKEN_PER_LAYER_PER_WIDTH = 40
"""Activation memory kept for the backward pass, per token, layer and hidden unit (bf16,
LoRA on every projection); measured loosely, with headroom."""
MAX_AUTO_BATCH_TOKENS = 65_536


def ensure_pad_token(tokenizer) -> None:
    """Give the tokenizer a pad token if it has none (transformers 5 ships SmolLM2 without
    one). Padding is masked out of attention and loss, so any id will do: eos, else unk."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad, eos or unk token to pad with")


def auto_batch_tokens(model, device: str, max_len: int) -> int:
    """Tokens per micro-batch that fit in half of the free GPU memory (1,024 off GPU)."""
    import torch

    if not device.startswith("cuda"):
        return 1024
    free, _ = torch.cuda.mem_get_info()
    cfg = model.config
    per_token = (BYTES_PER_TOKEN_PER_LAYER_PER_WIDTH * cfg.num_hidden_layers
                 * max(cfg.hidden_size, cfg.intermediate_size // 2))
    tokens = int(free * 0.5 // per_token)
    return max(max_len, min(MAX_AUTO_BATCH_TOKENS, tokens // max_len * max_len))


def autocast_bf16(device: str) -> bool:
    """Whether the maths runs in bf16: on CUDA, and on CPUs with bf16 instructions (elsewhere
    bf16 products are slower than fp32 ones)."""
    from covey_specialists.vllm_cpu_lora import cpu_has_bf16

    return device.startswith("cuda") or (device == "cpu" and cpu_has_bf16())


def device_name(device: str) -> str:
    """What the card says the adapter was trained on."""
    import platform

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name()})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def tokenize(examples: list[Example], tokenizer, max_len: int) -> list[tuple[list[int], int]]:
    """(ids, prompt_length) per example; prompt and target are tokenized apart, as served."""
    out = []
    for i in range(0, len(examples), 1024):  # batched: the fast tokenizer works in parallel
        chunk = examples[i:i + 1024]
        prompts = tokenizer([ex.prompt for ex in chunk], add_special_tokens=False)["input_ids"]
        targets = tokenizer([ex.target for ex in chunk], add_special_tokens=False)["input_ids"]
        for prompt, target in zip(prompts, targets, strict=True):
            if len(prompt) + len(target) <= max_len and target:
                out.append((prompt + target, len(prompt)))
    return out


def make_batches(items: list[tuple[list[int], int]], steps: int, batch_tokens: int,
                 seed: int) -> list[list[int]]:
    """``steps`` batches of example indices, cycling through shuffled epochs."""
    rng = random.Random(seed)
    batches: list[list[int]] = []
    while len(batches) < steps:
        order = list(range(len(items)))
        rng.shuffle(order)
        current: list[int] = []
        longest = 0
        for i in order:
            n = len(items[i][0])
            if current and max(longest, n) * (len(current) + 1) > batch_tokens:
                batches.append(current)
                current, longest = [], 0
            current.append(i)
            longest = max(longest, n)
        if current:
            batches.append(current)
    return batches[:steps]


def pack_rows(items: list[tuple[list[int], int]], order: list[int],
              row_len: int) -> list[list[int]]:
    """Examples (in ``order``) packed first-fit into rows of at most ``row_len`` tokens."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(items[i][0])
        # first-fit over the last few rows keeps this linear and rows nearly full
        for r in range(max(0, len(rows) - 8), len(rows)):
            if room[r] >= n:
                rows[r].append(i)
                room[r] -= n
                break
        else:
            rows.append([i])
            room.append(row_len - n)
    return rows


def make_packed_batches(items: list[tuple[list[int], int]], count: int, batch_tokens: int,
                        row_len: int, seed: int) -> list[list[list[int]]]:
    """``count`` micro-batches of packed rows (lists of example indices), cycling through
    shuffled epochs; each micro-batch holds ``batch_tokens // row_len`` rows."""
    rng = random.Random(seed)
    per_batch = max(1, batch_tokens // row_len)
    batches: list[list[list[int]]] = []
    while len(batches) < count:
        order = list(range(len(items)))
        rng.shuffle(order)
        rows = pack_rows(items, order, row_len)
        batches.extend(rows[i:i + per_batch] for i in range(0, len(rows), per_batch))
    return batches[:count]


def load_base(base_model: Path, device: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    ensure_pad_token(tokenizer)
    # bf16 weights on CUDA; fp32 on CPU, where autocast over fp32 weights ran faster
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=dtype)
    return model.to(device), tokenizer


def attach_lora(model, cfg: TrainConfig):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def load_init_adapter(model, folder: Path, cfg: TrainConfig) -> int:
    """Copy the LoRA weights of the adapter in ``folder`` into ``model`` (a fresh peft
    model from :func:`attach_lora`); how many tensors. ValueError when its rank, alpha or
    target modules differ from ``cfg``'s, or a LoRA weight of the model is left unset."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        config = json.loads((folder / "adapter_config.json").read_text())
        state = load_file(str(folder / "adapter_model.safetensors"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the adapter to start from in {folder}: {exc}") from None
    found = (config.get("r"), config.get("lora_alpha"), sorted(config.get("target_modules") or []))
    wanted = (cfg.rank, cfg.alpha, sorted(cfg.target_modules))
    if found != wanted:
        raise ValueError(f"the adapter in {folder} has rank {found[0]}, alpha {found[1]} and "
                         f"targets {found[2]}; training uses rank {wanted[0]}, alpha "
                         f"{wanted[1]} and {wanted[2]} (set --rank to match)")
    expected = set(get_peft_model_state_dict(model))
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"the adapter in {folder} does not fit the model: "
                         f"{len(missing)} LoRA weight(s) missing ({missing[:2]}), "
                         f"{len(extra)} unexpected ({extra[:2]})")
    # bf16 as stored: copied into the fp32 LoRA weights training updates
    result = set_peft_model_state_dict(model, state)
    if getattr(result, "unexpected_keys", None):
        raise ValueError(f"the adapter in {folder} has weights the model lacks: "
                         f"{result.unexpected_keys[:2]}")
    return len(state)


def batch_tensors(items, batch: list[list[int]], pad_id: int):
    """Input ids, labels, positions and the attention mask for rows of packed examples.

    The mask is 2-D (plain padding) when every row holds one example, else a boolean
    (rows, 1, width, width) block-diagonal causal mask: True where a token may attend.
    """
    import torch

    widths = [sum(len(items[i][0]) for i in row) for row in batch]
    width = max(widths)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    positions = torch.zeros((len(batch), width), dtype=torch.long)
    segments = torch.full((len(batch), width), -1, dtype=torch.long)
    for r, row in enumerate(batch):
        at = 0
        for seg, i in enumerate(row):
            ids, plen = items[i]
            n = len(ids)
            input_ids[r, at:at + n] = torch.tensor(ids)
            labels[r, at + plen:at + n] = torch.tensor(ids[plen:])
            positions[r, at:at + n] = torch.arange(n)
            segments[r, at:at + n] = seg
            at += n
    if all(len(row) == 1 for row in batch):
        mask = (segments >= 0).long()
    else:
        causal = torch.tril(torch.ones((width, width), dtype=torch.bool))
        # padding (segment -1) attends to itself only, so no row of the mask is empty
        mask = ((segments[:, :, None] == segments[:, None, :]) & causal)[:, None]
    return input_ids, labels, positions, mask, int((segments >= 0).sum())


def _batch_loss(model, items, batch: list[list[int]], pad_id: int, device: str, bf16: bool):
    import torch

    input_ids, labels, positions, mask, ntok = batch_tensors(items, batch, pad_id)
    input_ids, labels = input_ids.to(device), labels.to(device)
    positions, mask = positions.to(device), mask.to(device)
    causal_lm = model.get_base_model()
    with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
        hidden = causal_lm.model(input_ids=input_ids, attention_mask=mask,
                                 position_ids=positions).last_hidden_state
        # position t predicts token t+1; never across examples (their labels start at -100
        # for the prompt, and a packed row's next example always starts with a prompt)
        shifted = labels[:, 1:]
        keep = shifted != -100
        logits = causal_lm.lm_head(hidden[:, :-1][keep])
    loss = torch.nn.functional.cross_entropy(logits.float(), shifted[keep])
    return loss, ntok


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = sorted((out_dir / "checkpoints").glob("step-*"),
                   key=lambda p: int(p.name.split("-")[1]))
    return ckpts[-1] if ckpts else None


def train(examples: list[Example], base_model: Path, out_dir: Path, cfg: TrainConfig,
          resume: bool = True, progress: Callable[[int, int, float], None] | None = None,
          ) -> TrainResult:
    """Fine-tune a LoRA adapter on ``examples`` and save it (peft format) into ``out_dir``."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    model, tokenizer = load_base(base_model, device)
    model = attach_lora(model, cfg)
    if cfg.init_adapter:
        count = load_init_adapter(model, Path(cfg.init_adapter), cfg)
        log.info("starting from the adapter in %s (%d LoRA tensors)", cfg.init_adapter, count)
    items = tokenize(examples, tokenizer, cfg.max_len)
    if not items:
        raise ValueError("no training example fits in max_len tokens")
    batch_tokens = cfg.batch_tokens or auto_batch_tokens(model, device, cfg.max_len)
    micro = cfg.steps * cfg.grad_accum
    if cfg.pack:
        # a row never outgrows the micro-batch (an example longer than it gets its own row)
        batches = make_packed_batches(items, micro, batch_tokens,
                                      min(cfg.max_len, batch_tokens), cfg.seed)
    else:
        batches = [[[i] for i in b] for b in make_batches(items, micro, batch_tokens, cfg.seed)]
    bf16 = autocast_bf16(device)
    precision = "bf16 autocast" if bf16 else "fp32"
    log.info("%d examples tokenized; %d tokens per micro-batch, %d per step on %s (%s)",
             len(items), batch_tokens, batch_tokens * cfg.grad_accum, device, precision)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)

    out_dir.mkdir(parents=True, exist_ok=True)
    losses: list[float] = []
    start_step, tokens_seen = 0, 0
    ckpt = _latest_checkpoint(out_dir) if resume else None
    if ckpt is not None:
        state = json.loads((ckpt / "state.json").read_text())
        if state.get("config") == json.loads(json.dumps(asdict(cfg))):  # as stored
            set_peft_model_state_dict(model, load_file(str(ckpt / "adapter_model.safetensors")))
            optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
            start_step, losses = state["step"], state["losses"]
            tokens_seen = state["tokens_seen"]
            log.info("resuming from %s", ckpt)
        else:
            log.warning("ignoring checkpoint %s: it was made with different settings", ckpt)

    model.train()
    started = time.monotonic()
    for step in range(start_step, cfg.steps):
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, cfg)
        step_loss = 0.0
        for k in range(cfg.grad_accum):
            loss, ntok = _batch_loss(model, items, batches[step * cfg.grad_accum + k],
                                     tokenizer.pad_token_id, device, bf16)
            (loss / cfg.grad_accum).backward()
            step_loss += loss.item() / cfg.grad_accum
            tokens_seen += ntok
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(step_loss, 4))
        log.info("step %d/%d loss %.4f", step + 1, cfg.steps, losses[-1])
        # the last step is checkpointed too: a rerun after a failed gate skips training
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            _save_checkpoint(model, optimizer, out_dir, step + 1, losses, tokens_seen, cfg)
        if progress:  # after the checkpoint, so an interrupt here loses nothing
            progress(step + 1, cfg.steps, losses[-1])

    model.save_pretrained(str(out_dir), safe_serialization=True)
    _finish_adapter(out_dir, cfg.base_name)
    seen = sum(len(row) for b in batches for row in b)
    window = max(1, min(10, len(losses) // 4))
    return TrainResult(steps=cfg.steps, examples_seen=seen, tokens_seen=tokens_seen,
                       first_loss=round(sum(losses[:window]) / window, 4),
                       final_loss=round(sum(losses[-window:]) / window, 4),
                       seconds=round(time.monotonic() - started, 1), losses=losses,
                       resumed_from=start_step,
                       device=f"{device_name(device)}, {precision}",
                       batch_tokens=batch_tokens)


def _save_checkpoint(model, optimizer, out_dir: Path, step: int, losses: list[float],
                     tokens_seen: int, cfg: TrainConfig) -> None:
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    path = out_dir / "checkpoints" / f"step-{step}"
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(state, str(path / "adapter_model.safetensors"))
    torch.save(optimizer.state_dict(), path / "optimizer.pt")
    (path / "state.json").write_text(json.dumps({"step": step, "losses": losses,
                                                 "tokens_seen": tokens_seen,
                                                 "config": asdict(cfg)}))
    # keep the newest two: enough to resume, without filling the disk on long runs
    older = sorted((out_dir / "checkpoints").glob("step-*"),
                   key=lambda p: int(p.name.split("-")[1]))[:-2]
    for old in older:
        shutil.rmtree(old, ignore_errors=True)


def _finish_adapter(out_dir: Path, base_name: str) -> None:
    """Store weights in bf16 (half the size; the engine serves bf16) and make the config
    portable: no machine-local base path, a sorted target module list."""
    import torch
    from safetensors.torch import load_file, save_file

    weights = out_dir / "adapter_model.safetensors"
    state = load_file(str(weights))
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in state.items()}, str(weights))
    path = out_dir / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = base_name
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
