"""A team engine without an engine: one key per user, added and revoked while the guard
runs, the request log that splits costs per user, and the flags that reach vLLM. The real
engine over TLS with several users is tests/engine/test_team_engine.py."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from covey_cli import main
from covey_specialists import engine, team
from covey_specialists.engine_guard import KeyGuard
from covey_specialists.table import TableError, load_table

OWNER_KEY = "o" * 43
USAGE = b'{"usage": {"prompt_tokens": 120, "completion_tokens": 7}}'


class _Answering:
    """An app that, like vLLM on /v1, wants the engine's own key."""

    async def __call__(self, scope, receive, send) -> None:
        if (b"authorization", f"Bearer {OWNER_KEY}".encode()) not in scope["headers"]:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b'data: {"choices": []}\n\n', b"data: " + USAGE + b"\n\n"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def _status(guard: KeyGuard, key: str, path: str = "/v1/completions") -> int:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path,
             "headers": [(b"authorization", f"Bearer {key}".encode())]}
    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"]


@pytest.fixture
def guard(covey_home, monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", OWNER_KEY)
    monkeypatch.setenv("COVEY_ENGINE_TEAM_KEYS", str(team.keys_file()))
    monkeypatch.setenv("COVEY_ENGINE_REQUEST_LOG", str(team.requests_file()))
    return KeyGuard(_Answering())


def test_a_key_added_or_revoked_counts_from_the_next_request_without_a_restart(guard):
    alice = CliRunner().invoke(main, ["engine", "keys", "add", "alice"]).output.strip()
    assert _status(guard, alice) == 200
    assert _status(guard, "covey-not-a-key") == 401
    bob = team.add_key("bob")
    assert (_status(guard, bob), _status(guard, OWNER_KEY)) == (200, 200)
    revoked = CliRunner().invoke(main, ["engine", "keys", "revoke", "alice"])
    assert revoked.exit_code == 0, revoked.output
    assert (_status(guard, alice), _status(guard, bob)) == (401, 200)
    assert [row["user"] for row in team.list_keys()] == ["bob"]
    assert alice not in team.keys_file().read_text()  # digests only
    assert oct(team.keys_file().stat().st_mode & 0o777) == "0o600"


def test_a_damaged_keys_file_grants_nothing_but_the_owners_key(guard):
    bob = team.add_key("bob")
    assert _status(guard, bob) == 200
    team.keys_file().write_text("{not json")
    assert (_status(guard, bob), _status(guard, OWNER_KEY)) == (401, 200)
    result = CliRunner().invoke(main, ["engine", "keys", "add", "carol"])
    assert result.exit_code == 1 and "cannot be read" in result.output


def test_each_request_is_recorded_with_its_user_and_tokens(guard):
    alice = team.add_key("alice")
    for key, path in ((alice, "/v1/completions"), (alice, "/v1/chat/completions"),
                      (OWNER_KEY, "/v1/completions"), (alice, "/health"),
                      ("wrong", "/v1/completions")):
        _status(guard, key, path)
    records = [json.loads(line) for line in team.requests_file().read_text().splitlines()]
    assert [(r["user"], r["path"], r["status"]) for r in records] == [
        ("alice", "/v1/completions", 200), ("alice", "/v1/chat/completions", 200),
        ("owner", "/v1/completions", 200)]
    summary = {r["user"]: r for r in team.request_summary()}
    assert summary["alice"]["model_calls"] == 2
    assert summary["alice"]["prompt_tokens"] == 240
    assert summary["owner"]["completion_tokens"] == 7
    shown = CliRunner().invoke(main, ["engine", "requests"])
    assert shown.exit_code == 0 and "alice" in shown.output and "66.7%" in shown.output


@pytest.mark.parametrize("bad", ["owner", "has space", ""])
def test_a_user_name_that_cannot_be_told_apart_is_refused(covey_home, bad):
    result = CliRunner().invoke(main, ["engine", "keys", "add", bad])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_tls_and_parallelism_reach_the_vllm_command(covey_home, tmp_path):
    (covey_home / "specialists.toml").write_text(
        f'[engine]\nssl_certfile = "{tmp_path}/c.pem"\nssl_keyfile = "{tmp_path}/k.pem"\n'
        'tensor_parallel_size = 2\ngpu_memory_utilization = 0.9\n'
        'extra_args = ["--max-num-seqs", "32"]\n')
    table = load_table()
    cmd = engine.build_command(table, "/model", 8733, {}, "cuda")
    assert cmd[cmd.index("--ssl-certfile") + 1] == f"{tmp_path}/c.pem"
    assert cmd[cmd.index("--ssl-keyfile") + 1] == f"{tmp_path}/k.pem"
    assert cmd[cmd.index("--tensor-parallel-size") + 1] == "2"
    assert "--pipeline-parallel-size" not in cmd
    assert cmd[cmd.index("--gpu-memory-utilization") + 1] == "0.9"
    assert cmd[-2:] == ["--max-num-seqs", "32"]
    assert engine.resolve(table.engine).url == "https://127.0.0.1:8733"


def test_tls_needs_both_the_certificate_and_its_key(covey_home):
    (covey_home / "specialists.toml").write_text('[engine]\nssl_certfile = "/c.pem"\n')
    with pytest.raises(TableError, match="go together"):
        load_table()


def test_engine_up_passes_parallelism_flags_and_refuses_unreadable_certificates(
        covey_home, no_launch, monkeypatch, tmp_path):
    commands = []

    def launch(cmd, **kwargs):
        commands.append(cmd)
        raise no_launch(kwargs["env"])

    monkeypatch.setattr(engine.subprocess, "Popen", launch)
    with pytest.raises(no_launch) as launched:
        CliRunner().invoke(main, ["engine", "up", "--tensor-parallel-size", "4"],
                           catch_exceptions=False)
    assert commands[0][commands[0].index("--tensor-parallel-size") + 1] == "4"
    assert launched.value.env["COVEY_ENGINE_TEAM_KEYS"] == str(team.keys_file())
    (covey_home / "specialists.toml").write_text(
        f'[engine]\nssl_certfile = "{tmp_path}/none.pem"\nssl_keyfile = "{tmp_path}/k.pem"\n')
    result = CliRunner().invoke(main, ["engine", "up"])
    assert result.exit_code == 1 and f"cannot read {tmp_path}/none.pem" in result.output
