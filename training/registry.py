"""Registering a trained adapter: a new version folder, the user's table, the running engine.

Versions live in ``$COVEY_HOME/adapters/<task>/vN/`` and are never overwritten. The user's
specialists table points the task's specialist at the chosen version. A running engine gets
the new weights through vLLM's runtime LoRA endpoint, loaded in place under the served name:
vLLM validates the new adapter first and swaps it between engine steps, so requests in
flight finish (the engine manager starts vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True).
"""

from __future__ import annotations

import logging
import re
import shutil
import tomllib
from pathlib import Path

from covey_settings import home

log = logging.getLogger("covey.train.registry")

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json", "README.md", "gate.json",
                 "dataset.json", "train.json")


def versions(task: str) -> list[Path]:
    root = home.adapters_dir() / task
    found = [p for p in root.glob("v*") if p.is_dir() and re.fullmatch(r"v\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name[1:]))


def next_version_dir(task: str) -> Path:
    existing = versions(task)
    n = int(existing[-1].name[1:]) + 1 if existing else 1
    return home.adapters_dir() / task / f"v{n}"


def store_version(task: str, adapter_dir: Path) -> Path:
    """Copy a trained adapter (and its card) into a new version folder."""
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir} holds no adapter_config.json")
    target = next_version_dir(task)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in ADAPTER_FILES:
        if (adapter_dir / name).is_file():
            shutil.copy2(adapter_dir / name, partial / name)
    partial.rename(target)  # a version appears whole or not at all
    return target


def point_table_at(specialist_key: str, adapter_path: Path, user_file: Path | None = None) -> Path:
    """Set ``[specialists.<key>].adapter`` in the user's table, keeping every other setting."""
    user_file = user_file or home.user_specialists_file()
    data = tomllib.loads(user_file.read_text()) if user_file.exists() else {}
    data.setdefault("specialists", {}).setdefault(specialist_key, {})["adapter"] = str(adapter_path)
    return _write_table(user_file, data)


def point_workspace_at(specialist_key: str, root: Path, adapter_path: Path,
                       user_file: Path | None = None) -> Path:
    """Serve ``adapter_path`` for files under ``root`` only: add (or replace) the folder's
    entry in ``[specialists.<key>].workspaces`` of the user's table."""
    user_file = user_file or home.user_specialists_file()
    data = tomllib.loads(user_file.read_text()) if user_file.exists() else {}
    spec = data.setdefault("specialists", {}).setdefault(specialist_key, {})
    others = [ws for ws in spec.get("workspaces", []) if ws.get("root") != str(root)]
    spec["workspaces"] = [*others, {"root": str(root), "adapter": str(adapter_path)}]
    return _write_table(user_file, data)


def _write_table(user_file: Path, data: dict) -> Path:
    user_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = user_file.with_suffix(".toml.tmp")
    tmp.write_text("# Covey user specialists table (overrides the shipped one key by key).\n"
                   + dumps_toml(data))
    tmp.replace(user_file)
    return user_file


def dumps_toml(data: dict, prefix: str = "") -> str:
    """TOML for the table's shape: nested tables of strings, numbers, booleans, and lists
    of those or of inline tables."""
    scalars, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            scalars.append(f"{_key(key)} = {_value(value)}")
    out = "\n".join(scalars) + ("\n" if scalars else "")
    for key, value in tables:
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        has_scalars = any(not isinstance(v, dict) for v in value.values())
        out += (f"\n[{name}]\n" if has_scalars else "") + dumps_toml(value, name)
    return out


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _value(key)


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. one of a specialist's workspaces
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def hot_load(url: str, api_key: str, served_name: str, adapter_path: Path,
             timeout_s: float = 120.0) -> tuple[bool, str]:
    """Load (or replace in place) ``served_name`` in a running engine: (ok, message)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {"lora_name": served_name, "lora_path": str(adapter_path), "load_inplace": True}
    try:
        resp = httpx.post(f"{url.rstrip('/')}/v1/load_lora_adapter", json=body,
                          headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return False, f"engine at {url} not reachable ({exc.__class__.__name__})"
    if resp.status_code == 404 and '"Not Found"' in resp.text:  # the route itself is absent
        return False, ("engine does not allow runtime LoRA loading "
                       "(start it with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)")
    if resp.status_code >= 400:
        return False, f"engine refused the adapter: {resp.status_code} {resp.text[:200]}"
    return True, resp.text.strip()[:200]
