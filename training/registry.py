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
from pathlib import Path

from covey_settings import home, tls
from covey_specialists.user_table import read_user_table, write_user_table

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
    user_file, data = read_user_table(user_file)
    data.setdefault("specialists", {}).setdefault(specialist_key, {})["adapter"] = str(adapter_path)
    return write_user_table(user_file, data)


def point_workspace_at(specialist_key: str, root: Path, adapter_path: Path,
                       user_file: Path | None = None) -> Path:
    """Serve ``adapter_path`` for files under ``root`` only: add (or replace) the folder's
    entry in ``[specialists.<key>].workspaces`` of the user's table."""
    user_file, data = read_user_table(user_file)
    spec = data.setdefault("specialists", {}).setdefault(specialist_key, {})
    others = [ws for ws in spec.get("workspaces", []) if ws.get("root") != str(root)]
    spec["workspaces"] = [*others, {"root": str(root), "adapter": str(adapter_path)}]
    return write_user_table(user_file, data)


def hot_load(url: str, api_key: str, served_name: str, adapter_path: Path,
             timeout_s: float = 120.0) -> tuple[bool, str]:
    """Load (or replace in place) ``served_name`` in a running engine: (ok, message)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {"lora_name": served_name, "lora_path": str(adapter_path), "load_inplace": True}
    try:
        resp = httpx.post(f"{url.rstrip('/')}/v1/load_lora_adapter", json=body,
                          headers=headers, timeout=timeout_s, verify=tls.verify_for(url))
    except httpx.HTTPError as exc:
        return False, f"engine at {url} not reachable ({exc.__class__.__name__})"
    if resp.status_code == 404 and '"Not Found"' in resp.text:  # the route itself is absent
        return False, ("engine does not allow runtime LoRA loading "
                       "(start it with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)")
    if resp.status_code >= 400:
        return False, f"engine refused the adapter: {resp.status_code} {resp.text[:200]}"
    return True, resp.text.strip()[:200]
