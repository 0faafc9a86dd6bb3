"""The VS Code extension's setting defaults are the server's, and the debounce's one
resolver.

The extension sends its settings as ``initializationOptions``; sent with nothing changed,
they must give the server's own defaults, or VS Code users and other editors' users get
different Coveys without anyone deciding so. A ``null`` default means "not set": the
server's default applies. Where the editors should differ (the debounce: VS Code waits
itself), the server tells them apart by ``clientInfo``, not by a second default.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from covey_server.config import ServerConfig, debounce_s, load_config
from covey_settings.layers import snake

PACKAGE_JSON = Path(__file__).resolve().parents[2] / "editor-ext" / "package.json"

EXTENSION_ONLY = {"pythonPath", "trace.server", "nextEdit.enabled"}
"""Settings of the extension itself, never sent to the server."""

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
    assert differ == {}
    assert config.debounce_ms is None  # automatic: debounce_s decides by the client


@pytest.mark.parametrize("client", ["Visual Studio Code", "Visual Studio Code - Insiders",
                                    "code-server", "VSCodium", "Code - OSS"])
def test_clients_that_wait_themselves_get_no_debounce(client):
    assert debounce_s(None, client) == 0


@pytest.mark.parametrize("client", ["Neovim", "Emacs (eglot)", "helix", "", None])
def test_clients_that_ask_on_every_keystroke_get_75_ms(client):
    assert debounce_s(None, client) == pytest.approx(0.075)


@pytest.mark.parametrize("client", ["Visual Studio Code", "Neovim", None])
def test_a_configured_debounce_wins_for_any_client(client):
    assert debounce_s(30, client) == pytest.approx(0.03)
    assert debounce_s(0, client) == 0
