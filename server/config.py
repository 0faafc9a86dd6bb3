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

DEBOUNCE_MS = 75
"""The automatic debounce for a client that asks on every keystroke (Neovim, Emacs, …)."""

WAITING_CLIENTS = ("visual studio code", "code - oss", "code-server", "vscodium",
                   "cursor", "windsurf")
"""Parts of an LSP ``clientInfo.name`` (case ignored) of clients that wait before they
ask for inline completions: VS Code and its builds and forks. vscode-languageclient sends
``vscode.env.appName`` ("Visual Studio Code", "Visual Studio Code - Insiders",
"Code - OSS", "code-server", "VSCodium", …)."""


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
    debounce_ms: int | None = None
    """Per-document debounce for completion requests, in milliseconds (0 disables); unset:
    automatic, by the client (:func:`debounce_s`)."""
    adaptive_debounce: bool = True
    """Wait longer while a shared engine is loaded, until the user pauses
    (:mod:`covey_server.pacing`); off: always the debounce above."""
    next_edit: bool = True
    """Answer ``covey/nextEdit``: the edit the user's recent edits imply next."""
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
    workspace_index: bool = True
    """Index the workspace folders' Python, JavaScript and TypeScript files (each module's
    definitions and imports, never whole files) so prompts carry the definitions the code
    near the cursor uses. The index stays in the server's memory. Off: no file is read from
    disk; only the documents open in the editor give context."""
    retention_horizons_s: tuple[float, float, float] = (30.0, 120.0, 300.0)
    """Seconds after an accept at which the accepted text is looked for, to log whether it
    was kept (the usage log's ``retained_30s``, ``retained_120s``, ``retained_300s``);
    tests shorten them."""
    index_rescan_s: float = 30.0
    """Seconds between re-scans of the workspace folders for files changed on disk (only
    those whose mtime changed are read again), for clients that do not report changes
    (``workspace/didChangeWatchedFiles``); 0: no re-scan. Tests set it low."""


def debounce_s(configured: int | None, client_name: str | None) -> float:
    """The debounce in seconds: the one configured, else automatic for the client.

    VS Code waits about 100 ms after a keystroke before it asks for inline completions, so
    a second wait in the server only makes ghost text later: 75 ms here took the server's
    part of keystroke → ghost text from 9 to 82 ms (p50, docs/engine.md). Such clients get
    none. A client that asks on every keystroke gets :data:`DEBOUNCE_MS`, so a burst of
    typing calls the model once.
    """
    if configured is not None:
        return configured / 1000
    name = (client_name or "").lower()
    if any(part in name for part in WAITING_CLIENTS):
        return 0.0
    return DEBOUNCE_MS / 1000


def load_config(init_options: dict | None = None,
                config_file: Path | None = None) -> tuple[ServerConfig, list[str]]:
    """Settings from the config file and ``initializationOptions``, plus the problems found."""
    layered = layer(user_file=config_file or home.user_config_file(), section="server",
                    editor=init_options, camel_case_files=True)
    problems = list(layered.problems)
    config = structure(ServerConfig, layered, problems=problems)
    return config, problems
