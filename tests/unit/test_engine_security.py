"""Who may use the local engine, without starting one: the key guard on every route, the
refusal of a non-loopback host without ``allow_remote``, and the key file's mode and owner.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from covey_cli import main
from covey_specialists import engine
from covey_specialists.engine_guard import KeyGuard
from covey_specialists.table import EngineSettings, load_table

KEY = "k" * 43


# ---------------------------------------------------------------------- the guard

class _Inner:
    def __init__(self) -> None:
        self.calls = []

    async def __call__(self, scope, receive, send) -> None:
        self.calls.append(scope)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"generated"})


def _call(guard: KeyGuard, scope: dict) -> list[dict]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return sent


def _http(path: str, method: str = "POST", headers=()) -> dict:
    return {"type": "http", "method": method, "path": path, "headers": list(headers)}


@pytest.fixture
def guard(monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", KEY)
    monkeypatch.delenv("COVEY_ENGINE_ROUTES_FILE", raising=False)
    inner = _Inner()
    return KeyGuard(inner), inner


@pytest.mark.parametrize("path", ["/invocations", "/metrics", "/tokenize", "/health",
                                  "/adapters", "/v1/completions", "/nowhere"])
@pytest.mark.parametrize("headers", [(), ((b"authorization", b"Bearer wrong"),),
                                     ((b"authorization", f"Basic {KEY}".encode()),)])
def test_guard_refuses_any_path_without_the_key(guard, path, headers):
    guard, inner = guard
    for method in ("GET", "POST", "DELETE", "OPTIONS"):
        sent = _call(guard, _http(path, method, headers))
        assert sent[0]["status"] == 401
        assert b"generated" not in b"".join(m.get("body", b"") for m in sent)
    assert inner.calls == []


def test_guard_passes_the_right_key_in_any_case_of_the_scheme(guard):
    guard, inner = guard
    for scheme in (b"Bearer", b"bearer"):
        sent = _call(guard, _http("/invocations", headers=[(b"authorization",
                                                             scheme + b" " + KEY.encode())]))
        assert sent[0]["status"] == 200
    assert len(inner.calls) == 2


def test_guard_refuses_a_websocket_without_the_key(guard):
    guard, inner = guard
    sent = _call(guard, {"type": "websocket", "path": "/v1/realtime", "headers": []})
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert inner.calls == []


def test_guard_writes_the_apps_routes_at_startup(monkeypatch, tmp_path):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def ok(request):
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/invocations", ok, methods=["POST"]),
                            Mount("/metrics", app=ok)])
    routes = tmp_path / "routes.json"
    monkeypatch.setenv("VLLM_API_KEY", KEY)
    monkeypatch.setenv("COVEY_ENGINE_ROUTES_FILE", str(routes))
    guard = KeyGuard(_Inner())
    _call(guard, {"type": "lifespan", "app": app})
    assert json.loads(routes.read_text()) == [
        {"path": "/invocations", "kind": "Route", "methods": ["POST"]},
        {"path": "/metrics", "kind": "Mount", "methods": None},
    ]


def test_guard_refuses_to_serve_without_a_key(monkeypatch):
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="refusing to serve without a key"):
        KeyGuard(_Inner())


def test_engine_command_loads_the_guard():
    cmd = engine.build_command(load_table(), "/model", 8733, {}, "cpu")
    assert cmd[cmd.index("--middleware") + 1] == engine.GUARD


# ---------------------------------------------------------------------- the host

@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_need_nothing(host):
    assert engine.check_exposure(EngineSettings(host=host)) == ""


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org", ""])
def test_other_hosts_are_refused_without_allow_remote(host):
    with pytest.raises(engine.EngineError, match="allow_remote = true") as refused:
        engine.check_exposure(EngineSettings(host=host))
    assert "\n" not in str(refused.value)


def _user_table(covey_home: Path, engine_lines: str) -> None:
    (covey_home / "specialists.toml").write_text(f"[engine]\n{engine_lines}\n")


def test_engine_up_refuses_a_network_host_before_anything_listens(covey_home, monkeypatch):
    def no_start(*args, **kwargs):
        raise AssertionError("the engine was started")

    monkeypatch.setattr(subprocess, "Popen", no_start)
    _user_table(covey_home, 'host = "0.0.0.0"\nport = 8799')
    result = CliRunner().invoke(main, ["engine", "up"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: refusing to start the engine on '0.0.0.0'")
    assert len(result.output.strip().splitlines()) == 1
    assert not (covey_home / "engine" / "engine.json").exists()
    assert not (covey_home / "engine" / "api_key").exists()


def test_allow_remote_starts_with_a_key_and_a_loud_warning(covey_home, no_launch, caplog):
    _user_table(covey_home, 'host = "0.0.0.0"\nport = 8799\nallow_remote = true')
    with caplog.at_level(logging.WARNING, "covey.engine"), pytest.raises(no_launch) as started:
        engine.up(load_table())
    key = started.value.env["VLLM_API_KEY"]
    assert len(key) >= engine.REMOTE_KEY_MIN_CHARS
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING: the engine listens on 0.0.0.0")


def test_allow_remote_refuses_a_weak_key(covey_home, no_launch):
    _user_table(covey_home, 'host = "0.0.0.0"\nport = 8799\nallow_remote = true')
    key_file = covey_home / "engine" / "api_key"
    key_file.parent.mkdir()
    key_file.write_text("short")
    key_file.chmod(0o600)
    with pytest.raises(engine.EngineError, match="5-character key"):
        engine.up(load_table())


def test_status_says_how_to_reach_a_wildcard_bound_engine(covey_home):
    _user_table(covey_home, 'host = "0.0.0.0"\nport = 8799\nallow_remote = true')
    result = CliRunner().invoke(main, ["engine", "status", "--json"])
    status = json.loads(result.output)
    assert status["url"] == "http://127.0.0.1:8799"
    assert status["listen"] == "0.0.0.0:8799"
    assert status["key"] == str(covey_home / "engine" / "api_key")


def test_status_of_an_external_engine_names_the_key_variable(covey_home, monkeypatch):
    monkeypatch.setenv("COVEY_ENGINE_URL", "http://127.0.0.1:1/")
    monkeypatch.setenv("COVEY_ENGINE_API_KEY", "secret")
    status = json.loads(CliRunner().invoke(main, ["engine", "status", "--json"]).output)
    assert status["url"] == "http://127.0.0.1:1"
    assert status["key"] == "$COVEY_ENGINE_API_KEY"
    assert status["listen"] == ""


# ---------------------------------------------------------------------- the key file

def _key_file(covey_home: Path, mode: int) -> Path:
    path = covey_home / "engine" / "api_key"
    path.parent.mkdir(exist_ok=True)
    path.write_text(KEY)
    path.chmod(mode)
    return path


def test_a_private_key_file_is_read(covey_home):
    _key_file(covey_home, 0o600)
    assert engine.api_key() == KEY


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o700])
def test_a_key_file_wider_than_0600_is_refused(covey_home, mode):
    path = _key_file(covey_home, mode)
    with pytest.raises(engine.EngineError) as refused:
        engine.api_key()
    assert str(refused.value) == (f"refusing the engine key {path}: mode {mode:04o} is wider "
                                  f"than 0600; run `chmod 600 {path}`")


def test_a_key_file_of_another_user_is_refused(covey_home, monkeypatch):
    path = _key_file(covey_home, 0o600)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)  # nobody
    else:  # the file is ours: be someone else
        monkeypatch.setattr(engine.os, "getuid", lambda: os.geteuid() + 1)
    with pytest.raises(engine.EngineError, match="not to you") as refused:
        engine.api_key()
    assert str(path) in str(refused.value) and f"rm {path}" in str(refused.value)


def test_the_cli_refuses_a_wide_key_file_in_one_line(covey_home):
    path = _key_file(covey_home, 0o644)
    result = CliRunner().invoke(main, ["engine", "status"])
    assert result.exit_code == 1
    assert result.output == (f"Error: refusing the engine key {path}: mode 0644 is wider than "
                             f"0600; run `chmod 600 {path}`\n")
