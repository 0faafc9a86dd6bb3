"""The language server's settings: typed, defaulted, parsed once.

Sources, later wins: the ``[server]`` table of ``$COVEY_HOME/config.toml``, then the
editor's ``initializationOptions`` (same keys; camelCase or snake_case), layered and
converted by :mod:`covey_settings.layers`. A bad value is reported in one message and
replaced by its default; parsing never fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from covey_settings import home, layer, structure
from covey_specialists.baseline import BaselineSettings
from covey_specialists.engine import ENGINE_KEY_ENV


@dataclass(frozen=True)
class EngineOptions:
    url: str = ""
    """An OpenAI-compatible engine to use (empty: the specialists table's ``[engine] url``,
    ``COVEY_ENGINE_URL``, else the engine Covey manages)."""
    api_key_env: str = ENGINE_KEY_ENV
    """Environment variable holding the API key of an engine given by a URL."""
    autostart: bool = False
    """Start the managed engine when the server starts and none is running."""


@dataclass(frozen=True)
class ServerConfig:
    debounce_ms: int = 75
    """Per-document debounce for completion requests, in milliseconds (0 disables). The
    VS Code extension sends 0 on purpose: VS Code waits about 100 ms itself before it asks,
    and a second wait here took the server's part of keystroke → ghost text from 9 to 82 ms
    (p50). 75 is for clients that ask on every keystroke."""
    languages: tuple[str, ...] = ("python", "javascript", "typescript")
    """Language ids the server completes in; other documents are ignored."""
    store_text: bool = False
    """Opt-in: keep prompt and completion text in the usage log."""
    max_document_bytes: int = 2_000_000
    """Documents larger than this are not parsed and get no completions."""
    engine: EngineOptions = field(default_factory=EngineOptions)
    """Which engine to talk to."""
    specialists: dict[str, dict] = field(default_factory=dict)
    """Per-specialist overrides of the table, e.g. ``{"completion": {"max_tokens": 32}}``."""
    baseline: BaselineSettings = field(default_factory=BaselineSettings)
    """The large LLM escalations go to. Without a ``url`` nothing is ever sent anywhere,
    whatever the specialists' routing policies say."""


def load_config(init_options: dict | None = None,
                config_file: Path | None = None) -> tuple[ServerConfig, list[str]]:
    """Settings from the config file and ``initializationOptions``, plus the problems found."""
    layered = layer(user_file=config_file or home.user_config_file(), section="server",
                    editor=init_options, camel_case_files=True)
    problems = list(layered.problems)
    config = structure(ServerConfig, layered, problems=problems)
    return config, problems
