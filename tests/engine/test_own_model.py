"""A user's own code model, end to end on the real vLLM CPU engine: `covey models add` a
tiny random-weight model that carries a real code tokenizer (Qwen's, StarCoder's), `covey
models use` it, serve it, train an adapter for it with `covey train`, hot-load it, and get
an answer through the language server whose prompt starts with the model's own FIM token.

Each family starts an engine of its own (in the test's Covey home, on a free port) beside
the session's default engine."""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest
from click.testing import CliRunner
from helpers.lsp_client import inline_params, open_doc, start_client, stop_client
from helpers.net import free_port
from helpers.tiny_models import build_tiny_model
from helpers.train_repo import tiny_repo

from covey_cli import main
from covey_settings import home
from covey_specialists import engine
from covey_specialists.table import load_table

pytestmark = [pytest.mark.slow, pytest.mark.engine]


def _covey(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("family", ["qwen", "starcoder"])
async def test_an_own_code_model_is_served_trained_and_answers_with_its_own_fim_tokens(
        family, covey_home, tmp_path):
    model = build_tiny_model(family, tmp_path / "model")
    (covey_home / "specialists.toml").write_text(f"[engine]\nport = {free_port()}\n")
    added = _covey("models", "add", str(model), "--name", f"tiny-{family}", "--json")
    card = json.loads(added[added.index("{"):])
    _covey("models", "use", f"tiny-{family}")
    prefix, suffix, middle = card["fim_tokens"].values()
    repo = tiny_repo(tmp_path / "repo")
    _covey("engine", "up")
    try:
        trained = _covey("train", "completion", str(repo), "--steps", "2", "--gate-examples",
                         "0", "--force", "--no-usage", "--threads", "2", "--json")
        summary = json.loads(trained[trained.index("{"):])
        assert "loaded into the engine as completion@repo" in summary["message"]
        adapter = json.loads((covey_home / "adapters" / "completion" / "v1" /
                              "adapter_config.json").read_text())
        assert adapter["base_model_name_or_path"] == f"tiny-{family}"
        assert sorted(adapter["target_modules"]) == card["target_modules"]
        card_text = (covey_home / "adapters" / "completion" / "v1" / "README.md").read_text()
        assert f"A LoRA adapter for the base `tiny-{family}`" in card_text

        calls = await _complete_in(repo / "mod_new.py", covey_home)
        target = engine.resolve(load_table().engine)
        tokens = httpx.post(f"{target.url}/tokenize", json={"model": "base",
                                                            "prompt": calls[0]["prompt"]},
                            headers={"Authorization": f"Bearer {target.api_key}"},
                            timeout=30).json()["tokens"]
    finally:
        _covey("engine", "down")
    assert [(c["model"], c["status"]) for c in calls] == [("completion@repo", "ok")]
    assert tokens[0] == prefix
    assert tokens.index(prefix) < tokens.index(suffix) < tokens.index(middle)


async def _complete_in(path, covey_home) -> list[dict]:
    """One inline completion through the language server, in the test's home (its table,
    engine and usage log); the usage log's rows, prompts kept (``storeText``). Repository
    context is off, so the prompt is the file's alone."""
    text = "def scale(values, factor):\n    return "
    client = await start_client(
        {"debounceMs": 0, "storeText": True, "specialists": {"completion": {
            "minShowLogprob": "-inf", "maxTokens": 8, "repoContextShare": 0}}},
        env={"COVEY_HOME": str(covey_home)})
    try:
        open_doc(client, path.as_uri(), text)
        await client.text_document_inline_completion_async(inline_params(path.as_uri(), 1, 11))
    finally:
        await stop_client(client)
    with sqlite3.connect(home.usage_db_path()) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(
            "select model, status, prompt from calls where task = 'completion'")]
