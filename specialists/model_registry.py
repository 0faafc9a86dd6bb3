"""Bases of the user's choosing: ``covey models add`` registers a local Hugging Face model.

A registered base is a record, ``$COVEY_HOME/models/<name>/covey-model.json``, that points at
the user's own folder (nothing is copied or downloaded) and holds what Covey needs to serve
and train on it, read once from the folder:
- the architecture, checked against the ones vLLM serves, and the context length;
- the fill-in-the-middle format, from the tokenizer's own special tokens (Qwen's
  ``<|fim_prefix|>``, StarCoder's ``<fim_prefix>``, DeepSeek-Coder's ``<｜fim▁begin｜>``,
  CodeLlama's ``<PRE>``); a model without any gets ``fim-smol``, markers an adapter learns;
- its repository tokens (``<|repo_name|>``, ``<|file_sep|>``), which the repository context
  uses where the format has them;
- the LoRA target modules: the linear layers inside its decoder blocks.

A specialist's ``base`` names it; an adapter records the base it was trained on
(``base_model_name_or_path``), and the engine refuses an adapter trained on another.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from covey_settings import home
from covey_specialists.base_model import MANIFEST, ModelError, resolve_base
from covey_specialists.tasks.common import FIM_MARKERS

log = logging.getLogger("covey.models")

DEFAULT_BASE_NAME = "SmolLM2-135M-Instruct"
"""The name adapters trained on the embedded default model record as their base."""
DEFAULT_TARGET_MODULES = ("down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj",
                          "v_proj")
"""The default model's (Llama-shaped) linear layers, the shipped adapters' targets."""
LEARNED_FORMAT = "fim-smol"
"""The format of a base without FIM tokens: markers the completion adapter learns."""
REPO_TOKENS = {
    "repo_name": ("<|repo_name|>", "<repo_name>", "<reponame>"),
    "file_sep": ("<|file_sep|>", "<file_sep>"),
}
"""Repository tokens by role, each role's spellings in the families that have them."""
CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class ModelCard:
    """What Covey read from a model folder when it was registered."""

    name: str
    path: str
    architecture: str
    context_length: int
    vocab_size: int
    fim_format: str
    """The completion prompt format that suits it (``fim-smol`` without FIM tokens)."""
    fim_tokens: dict[str, int] = field(default_factory=dict)
    """The format's prefix, suffix and middle markers and their token ids; empty for
    ``fim-smol``."""
    repo_tokens: dict[str, str] = field(default_factory=dict)
    """Role (``repo_name``, ``file_sep``) → the token, for those it has."""
    target_modules: tuple[str, ...] = ()
    registered_at: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def card_file(name: str) -> Path:
    return home.models_dir() / name / MANIFEST


def registered(name: str) -> ModelCard | None:
    """The registered base called ``name``, or None (also for a damaged record)."""
    if not _NAME.fullmatch(name) or not card_file(name).is_file():
        return None
    path = card_file(name)
    try:
        data = json.loads(path.read_text())
        return ModelCard(**{**data, "target_modules": tuple(data["target_modules"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def base_name(base: str) -> str:
    """The name an adapter trained on the table's ``base`` records: the default model's
    own name, a registered base's name, else the folder's or the Hugging Face id's last
    part."""
    if base == "default":
        return DEFAULT_BASE_NAME
    if registered(base) is not None:
        return base
    return Path(base.rstrip("/")).name or base


def same_base(recorded: str, base: str) -> bool:
    """Whether an adapter that records ``recorded`` was trained on the table's ``base``."""
    return recorded.rstrip("/").rsplit("/", 1)[-1].lower() == base_name(base).lower()


def target_modules(base: str) -> tuple[str, ...]:
    """The LoRA target modules for the table's ``base``."""
    if base == "default":
        return DEFAULT_TARGET_MODULES
    card = registered(base)
    if card is not None:
        return card.target_modules
    return linear_modules(_config(Path(resolve_base(base))))


def add(source: str, name: str = "") -> ModelCard:
    """Register the model folder ``source`` (or a Hugging Face id the local cache holds)
    under ``name`` (default: the folder's name). Raises ModelError with one clear line."""
    folder = _local_folder(source)
    name = name or folder.name.lower()
    if not _NAME.fullmatch(name) or name == "default":
        raise ModelError(f"{name!r} is not a usable model name (letters, digits, '.', '_', "
                         "'-'; not 'default'): pass --name")
    card = inspect(folder, name)
    target = card_file(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(card.as_dict(), indent=2, ensure_ascii=False) + "\n")
    tmp.replace(target)
    return card


def inspect(folder: Path, name: str) -> ModelCard:
    """Read a model folder: architecture (one vLLM serves), context, FIM and repository
    tokens, LoRA targets."""
    config = _config(folder)
    archs = list(getattr(config, "architectures", None) or [])
    if not archs:
        raise ModelError(f"{folder}/config.json names no architecture; is it a causal LM?")
    served = _vllm_archs()
    if served is not None and archs[0] not in served:
        raise ModelError(f"vLLM does not serve {archs[0]} (from {folder}/config.json); "
                         "pick a model whose architecture vLLM supports")
    tokenizer = _tokenizer(folder)
    fmt, fim = detect_fim(tokenizer)
    return ModelCard(
        name=name, path=str(folder), architecture=archs[0],
        context_length=next((int(getattr(config, f)) for f in CONTEXT_FIELDS
                             if isinstance(getattr(config, f, None), int)), 0),
        vocab_size=int(getattr(config, "vocab_size", 0) or len(tokenizer)),
        fim_format=fmt, fim_tokens=fim, repo_tokens=detect_repo_tokens(tokenizer),
        target_modules=linear_modules(config),
        registered_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def detect_fim(tokenizer) -> tuple[str, dict[str, int]]:
    """The FIM format whose three markers are each one token of ``tokenizer``, with their
    ids; ``fim-smol`` and nothing when none fits."""
    for fmt, markers in FIM_MARKERS.items():
        if fmt == LEARNED_FORMAT:
            continue
        ids = {m.strip(): single_token(tokenizer, m.strip()) for m in markers}
        if all(i is not None for i in ids.values()):
            return fmt, ids
    return LEARNED_FORMAT, {}


def detect_repo_tokens(tokenizer) -> dict[str, str]:
    found = {}
    for role, spellings in REPO_TOKENS.items():
        for token in spellings:
            if single_token(tokenizer, token) is not None:
                found[role] = token
                break
    return found


def single_token(tokenizer, text: str) -> int | None:
    """The id of ``text`` when the tokenizer reads it as one token of its own (a
    SentencePiece vocabulary may spell it with a leading ``▁``), else None."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) == 1:
        return ids[0]
    vocab = tokenizer.get_vocab()
    return vocab.get(f"▁{text}")


def linear_modules(config) -> tuple[str, ...]:
    """The names of the linear layers inside the decoder blocks (LoRA's targets), from the
    architecture alone: the model is built on the meta device, without weights."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    names = {path.rsplit(".", 1)[-1] for path, module in model.named_modules()
             if isinstance(module, torch.nn.Linear | Conv1D)
             and any(part.isdigit() for part in path.split("."))}
    if not names:
        raise ModelError(f"found no linear layers in {type(model).__name__}'s blocks to "
                         "train LoRA on")
    return tuple(sorted(names))


def _local_folder(source: str) -> Path:
    folder = Path(source).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelError(f"{folder} holds no config.json: not a Hugging Face model folder")
        return folder.resolve()
    if "/" in source and not source.startswith((".", "/", "~")):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(source, local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached takes several exception types
            raise ModelError(f"{source} is neither a folder nor a model in the local "
                             "Hugging Face cache (Covey downloads nothing)") from None
    raise ModelError(f"{source} is not a folder")


def _config(folder: Path):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {folder}/config.json: {exc}") from None


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the tokenizer in {folder}: {exc}") from None


def _vllm_archs() -> set[str] | None:
    """The architectures vLLM serves; None where vLLM is not installed (not checked)."""
    try:
        from vllm import ModelRegistry
    except ImportError:
        log.warning("vLLM is not installed here: the architecture is not checked")
        return None
    return set(ModelRegistry.get_supported_archs())
