"""The VS Code extension's setting defaults are the server's, but for the one on purpose.

The extension sends its settings as ``initializationOptions``; sent with nothing changed,
they must give the server's own defaults, or VS Code users and other editors' users get
different Coveys without anyone deciding so. A ``null`` default means "not set": the
server's default applies.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

from covey_server.config import ServerConfig, load_config
from covey_settings.layers import snake

PACKAGE_JSON = Path(__file__).resolve().parents[2] / "editor-ext" / "package.json"

EXTENSION_ONLY = {"pythonPath", "trace.server"}
"""Settings of the extension itself, never sent to the server."""

DIFFERENT_ON_PURPOSE = {"debounce_ms": (0, 75)}
"""(VS Code's, the server's). VS Code waits about 100 ms before it asks for ghost text, so
the extension adds no second wait (docs/engine.md has the figures; server/config.py says
why)."""


def extension_defaults() -> dict:
    """``covey.*`` defaults from package.json, nested as the extension sends them."""
    properties = json.loads(PACKAGE_JSON.read_text())["contributes"]["configuration"][
        "properties"]
    sent: dict = {}
    for key, schema in properties.items():
        name = key.removeprefix("covey.")
        if name in EXTENSION_ONLY:
            continue
        *parents, leaf = name.split(".")
        node = sent
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = schema["default"]
    return sent


def test_every_setting_the_extension_sends_is_the_servers():
    server_fields = {f.name for f in fields(ServerConfig)}
    unknown = {k for k in extension_defaults() if snake(k) not in server_fields}
    assert not unknown, f"package.json declares settings the server lacks: {unknown}"


def test_the_extensions_defaults_give_the_servers_defaults(tmp_path):
    sent = extension_defaults()
    assert {"debounceMs", "languages", "storeText", "engine", "baseline"} <= set(sent)
    config, problems = load_config(sent, config_file=tmp_path / "absent.toml")
    assert problems == []
    got, server = asdict(config), asdict(ServerConfig())
    differ = {k: (got[k], server[k]) for k in server if got[k] != server[k]}
    assert differ == DIFFERENT_ON_PURPOSE
