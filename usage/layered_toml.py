"""Shipped TOML settings overlaid key by key with the user's file of the same shape."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path


def load_layers(shipped_text: str, shipped_name: str, user_file: Path | None,
                error: type[Exception]) -> tuple[dict, tuple[str, ...]]:
    """Parse the shipped text, overlay ``user_file`` when it exists; return (raw, sources).

    Invalid TOML raises ``error`` naming the file.
    """
    raw = _parse(shipped_text, shipped_name, error)
    sources = [shipped_name]
    if user_file is not None and user_file.exists():
        merge(raw, _parse(user_file.read_text(), str(user_file), error))
        sources.append(str(user_file))
    return raw, tuple(sources)


def _parse(text: str, where: str, error: type[Exception]) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where}: not valid TOML: {exc}") from None


def merge(base: dict, override: dict) -> None:
    """Overlay ``override`` onto ``base`` in place, recursing into tables."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
