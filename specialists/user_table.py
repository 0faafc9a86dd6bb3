"""Writing the user's specialists table ($COVEY_HOME/specialists.toml): whole or not at all."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from covey_settings import home


def read_user_table(user_file: Path | None = None) -> tuple[Path, dict]:
    """The user's table file and its contents (empty when there is none yet)."""
    user_file = user_file or home.user_specialists_file()
    return user_file, tomllib.loads(user_file.read_text()) if user_file.exists() else {}


def write_user_table(user_file: Path, data: dict) -> Path:
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
