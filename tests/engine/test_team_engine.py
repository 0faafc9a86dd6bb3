"""One engine for a team, on the real vLLM CPU engine: served over TLS, two users' language
servers at once, each with a key of their own, each logging its own calls; the engine's
request log splits the tokens per user; a key revoked while the engine runs is refused
from the next request on. A tiny random-weight Qwen2 model keeps the engine light."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess

import httpx
import pytest
from click.testing import CliRunner
from helpers.lsp_client import inline_params, open_doc, start_client, stop_client
from helpers.net import free_port
from helpers.tiny_models import build_tiny_model

from covey_cli import main
from covey_specialists import engine
from covey_specialists.table import load_table

pytestmark = [pytest.mark.slow, pytest.mark.engine]
SOURCE = "def scale(values, factor):\n    return "


def _covey(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _self_signed(folder) -> tuple[str, str]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


async def test_a_team_engine_serves_each_user_with_their_own_key_over_tls(covey_home,
                                                                          tmp_path):
    cert, key = _self_signed(tmp_path)
    (covey_home / "specialists.toml").write_text(
        f'[engine]\nport = {free_port()}\nssl_certfile = "{cert}"\nssl_keyfile = "{key}"\n')
    _covey("models", "add", str(build_tiny_model("qwen", tmp_path / "model")), "--name", "tiny")
    _covey("models", "use", "tiny")
    _covey("engine", "up")
    try:
        url = engine.resolve(load_table().engine).url
        pid = engine.status(load_table()).pid
        keys = {user: _covey("engine", "keys", "add", user).strip() for user in ("alice", "bob")}
        clients = {user: await start_client(
            {"engine": {"url": url}, "debounceMs": 0, "specialists": {"completion": {
                "adapter": "", "minShowLogprob": "-inf", "maxTokens": 8}}},
            env={"COVEY_ENGINE_API_KEY": user_key, "COVEY_ENGINE_CA_FILE": cert})
            for user, user_key in keys.items()}
        try:
            await asyncio.gather(*(_type(client, user) for user, client in clients.items()))
        finally:
            for client in clients.values():
                await stop_client(client)
        used = {row["user"]: row for row in json.loads(_covey("engine", "requests", "--json"))}
        _covey("engine", "keys", "revoke", "bob")
        after = {user: _models_status(url, user_key, cert) for user, user_key in keys.items()}
        still = engine.status(load_table()).pid
        with pytest.raises(httpx.HTTPError):  # no plain HTTP beside TLS
            httpx.get(url.replace("https:", "http:") + "/health", timeout=5)
    finally:
        _covey("engine", "down")
    for user, client in clients.items():
        assert [(c.specialist, c.status) for c in client.calls] == [("completion", "ok")] * 3
        assert used[user]["model_calls"] == 3 and used[user]["errors"] == 0
        assert used[user]["prompt_tokens"] > 0 and used[user]["completion_tokens"] > 0
    assert after == {"alice": 200, "bob": 401} and still == pid


async def _type(client, user: str) -> None:
    """Three completions in a file of the user's own, as someone typing would ask."""
    uri = f"file:///tmp/{user}/work.py"
    open_doc(client, uri, SOURCE)
    for _ in range(3):
        await client.text_document_inline_completion_async(inline_params(uri, 1, 11))
    await asyncio.sleep(0.3)  # the last call's notification


def _models_status(url: str, key: str, cert: str) -> int:
    return httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"},
                     verify=ssl.create_default_context(cafile=cert), timeout=10).status_code
