"""The language server's settings: typed, defaulted, parsed once.

Sources, later wins: the ``[server]`` table of ``$COVEY_HOME/config.toml``, then the
editor's ``initializationOptions`` (same keys; camelCase or snake_case). A bad value is
reported in one message and replaced by its default; parsing never fails.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from covey_usage import home

log = logging.getLogger("covey.config")


@dataclass(frozen=True)
class EngineOptions:
    url: str = ""
    """An OpenAI-compatible engine to use instead of the managed one (empty: managed)."""
    managed: bool = True
    """Use the engine that ``covey engine up`` manages when no ``url`` is given."""
    api_key_env: str = "COVEY_ENGINE_API_KEY"
    """Environment variable holding the API key of an engine given by ``url``."""
    autostart: bool = False
    """Start the managed engine when the server starts and none is running."""


@dataclass(frozen=True)
class ServerConfig:
    debounce_ms: int = 75
    """Per-document debounce for completion requests, in milliseconds (0 disables)."""
    languages: tuple[str, ...] = ("python", "javascript", "typescript")
    """Language ids the server completes in; other documents are ignored."""
    store_text: bool = False
    """Opt-in: keep prompt and completion text in the usage log."""
    max_document_bytes: int = 2_000_000
    """Documents larger than this are not parsed and get no completions."""
    engine: EngineOptions = field(default_factory=EngineOptions)
    """Which engine to talk to."""
    specialists: dict = field(default_factory=dict)
    """Per-specialist overrides of the table, e.g. ``{"completion": {"max_tokens": 32}}``."""
    baseline: dict = field(default_factory=dict)
    """The large LLM escalations go to: ``{url, model, apiKeyEnv, api}``. Without a ``url``
    nothing is ever sent anywhere, whatever the specialists' routing policies say."""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _check(name: str, default, value, problems: list[str]):
    """``value`` coerced to the type of ``default``, or ``default`` with a problem noted."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
        if value is None:
            return default
    elif isinstance(default, tuple):
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif isinstance(default, dict):
        if isinstance(value, dict):
            return value
        if value is None:
            return default
    problems.append(f"{name}: {value!r} is not valid (expected {_kind(default)}); "
                    f"using {default!r}")
    return default


def _kind(default) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "a non-negative integer"
    if isinstance(default, tuple):
        return "a list of strings"
    return type(default).__name__


def _build(cls, raw: dict, prefix: str, problems: list[str]):
    if not isinstance(raw, dict):
        problems.append(f"{prefix or 'options'}: expected a table/object; using defaults")
        return cls()
    defaults = cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        name = _snake(key)
        where = f"{prefix}{key}"
        if name not in fields:
            problems.append(f"{where}: unknown setting (ignored)")
            continue
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.", problems)
        elif name == "specialists" and isinstance(value, dict):
            kwargs[name] = _specialist_overrides(value, where, problems)
        else:
            kwargs[name] = _check(where, default, value, problems)
    return cls(**kwargs)


def _specialist_overrides(raw: dict, where: str, problems: list[str]) -> dict:
    out = {}
    for key, fields in raw.items():
        if not isinstance(fields, dict):
            problems.append(f"{where}.{key}: expected an object of fields (ignored)")
            continue
        out[key] = {_snake(k): v for k, v in fields.items()}
    return out


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _normalise(raw: dict) -> dict:
    """Snake-case the keys (recursively) so file and editor settings merge key by key."""
    return {_snake(k): _normalise(v) if isinstance(v, dict) and k != "specialists" else v
            for k, v in raw.items()}


def read_config_file(path: Path | None = None) -> tuple[dict, list[str]]:
    """The ``[server]`` table of the config file, and any problem reading it."""
    path = path or home.user_config_file()
    if not path.exists():
        return {}, []
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {}, [f"{path}: cannot be read ({exc}); using defaults"]
    server = data.get("server", {})
    if not isinstance(server, dict):
        return {}, [f"{path}: [server] must be a table; using defaults"]
    return server, []


def load_config(init_options: dict | None = None,
                config_file: Path | None = None) -> tuple[ServerConfig, list[str]]:
    """Settings from the config file and ``initializationOptions``, plus the problems found."""
    file_raw, problems = read_config_file(config_file)
    editor_raw = init_options if isinstance(init_options, dict) else {}
    if init_options is not None and not isinstance(init_options, dict):
        problems.append("initializationOptions: expected an object; ignored")
    merged = _merge(_normalise(file_raw), _normalise(editor_raw))
    config = _build(ServerConfig, merged, "", problems)
    return config, problems


def engine_endpoint(config: ServerConfig, table) -> tuple[str, str]:
    """(URL, API key) of the engine: the editor's ``engine.url``, else the engine manager's."""
    if config.engine.url:
        return config.engine.url.rstrip("/"), os.environ.get(config.engine.api_key_env, "")
    from covey_specialists import engine

    return engine.endpoint(table)
