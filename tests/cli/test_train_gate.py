"""The gate and registration: an adapter that does not beat the base is refused (the
decision itself: tests/unit/test_gate_decision.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers.train_repo import tiny_repo

from covey_cli import main
from covey_training import registry


def test_toml_writer_round_trips_the_user_table(covey_home):
    from covey_specialists.table import load_table

    user = covey_home / "specialists.toml"
    user.write_text('[engine]\nport = 9001\n\n[specialists.doc]\nstop = ["a", "b"]\n'
                    'temperature = 0.2\n')
    registry.point_table_at("doc", covey_home / "adapters" / "doc" / "v1")
    table = load_table()
    assert table.engine.port == 9001
    assert table.specialists["doc"].stop == ("a", "b")
    assert table.specialists["doc"].temperature == 0.2
    assert table.specialists["doc"].adapter == str(covey_home / "adapters" / "doc" / "v1")


@pytest.mark.slow
def test_cli_refuses_an_adapter_that_does_not_improve(covey_home, tmp_path):
    from covey_specialists import base_model
    from covey_specialists.table import load_table

    base = base_model.prepare_default_model()
    repo = tiny_repo(tmp_path / "repo")
    out = tmp_path / "run"
    # lr 0 and a fresh LoRA: the adapter's B matrices stay zero, so it is exactly the base
    result = CliRunner().invoke(main, [
        "train", "completion", str(repo), "--steps", "1", "--lr", "0", "--gate-examples", "3",
        "--base", str(base), "--out", str(out), "--no-usage", "--fresh", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    # the lr-0 adapter is the untuned base sent FIM markers it never learned; the gate's
    # base is prompted fairly (a plain continuation), so the adapter cannot beat it
    assert summary["gate"]["tuned"]["exact_match"] <= summary["gate"]["base"]["exact_match"]
    assert summary["gate"]["improved"] is False
    # the shipped adapter is the one a new one would replace: compared too, with intervals
    assert [c["other"] for c in summary["gate"]["comparisons"]] == ["base", "previous"]
    assert summary["gate"]["previous_adapter"] == "builtin:completion"
    assert all(c["n"] == 3 and c["lo"] <= c["mean_diff"] <= c["hi"]
               for c in summary["gate"]["comparisons"])
    assert summary["registered"] is None and "not registered" in summary["message"]
    assert not (covey_home / "adapters" / "completion").exists()
    assert not (covey_home / "specialists.toml").exists()
    card = (out / "README.md").read_text()
    assert "Accepted: **no**" in card and "| exact_match |" in card
    assert "| previous | " in card  # the paired comparison with the adapter it replaces
    for name in ("adapter_model.safetensors", "adapter_config.json", "gate.json"):
        assert (out / name).is_file()

    # --force path, through the same registration code: a version, the table, resolvable
    from covey_training.pipeline import register
    version, message = register("completion", "completion", out)
    assert version == covey_home / "adapters" / "completion" / "v1"
    assert "engine not running" in message
    spec = load_table().for_task("completion")
    assert spec.adapter == str(version)
    from covey_specialists.engine import resolve_adapter
    assert resolve_adapter(spec) == version
    assert registry.next_version_dir("completion").name == "v2"


@pytest.mark.slow
def test_an_adapter_trained_on_a_repository_serves_that_repository_only(covey_home, tmp_path):
    from covey_specialists import base_model
    from covey_specialists.table import load_table

    base = base_model.prepare_default_model()
    repo = tiny_repo(tmp_path / "repo")
    result = CliRunner().invoke(main, [
        "train", "completion", str(repo), "--steps", "1", "--gate-examples", "0", "--force",
        "--base", str(base), "--out", str(tmp_path / "run"), "--no-usage", "--fresh", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    version = covey_home / "adapters" / "completion" / "v1"
    assert summary["registered"] == str(version)
    table = load_table()
    assert table.for_task("completion").adapter == "builtin:completion"  # elsewhere: as before
    served = table.for_task("completion", str(repo.resolve() / "pkg" / "mod.py"))
    assert (served.key, served.adapter) == ("completion@repo", str(version))
