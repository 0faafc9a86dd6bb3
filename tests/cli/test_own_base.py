"""`covey models add` and `covey models use`: a user's own code model as the base, without
an engine. Real tokenizers (Qwen's, StarCoder's) on tiny random-weight models; the engine
serving them is tests/engine/test_own_model.py."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from helpers.tiny_models import build_tiny_model, tokenizer_folder

from covey_cli import main
from covey_specialists import engine, model_registry
from covey_specialists.table import load_table, shipped_specialists

FIM_PREFIX = {"qwen": "<|fim_prefix|>", "starcoder": "<fim_prefix>"}


@pytest.fixture(scope="module", params=["qwen", "starcoder"])
def tiny_model(request, tmp_path_factory):
    return request.param, build_tiny_model(request.param,
                                           tmp_path_factory.mktemp(request.param) / "model")


def _add(folder, name: str):
    result = CliRunner().invoke(main, ["models", "add", str(folder), "--name", name, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{"):])


def test_models_add_reads_the_fim_and_repository_tokens_from_the_tokenizer(covey_home,
                                                                           tiny_model):
    from transformers import AutoTokenizer

    family, folder = tiny_model
    card = _add(folder, f"tiny-{family}")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert card["fim_format"] == f"fim-{family}"
    prefix = FIM_PREFIX[family]
    assert card["fim_tokens"][prefix] == tokenizer.convert_tokens_to_ids(prefix)
    assert card["repo_tokens"]["file_sep"] in {"<|file_sep|>", "<file_sep>"}
    assert card["context_length"] == 4096
    expected_mlp = {"qwen": {"gate_proj", "up_proj", "down_proj"}, "starcoder": {"c_fc", "c_proj"}}
    assert set(card["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj",
                                           *expected_mlp[family]}
    listed = CliRunner().invoke(main, ["models", "list", "--json"])
    row = next(r for r in json.loads(listed.output)["models"] if r["name"] == f"tiny-{family}")
    assert (row["path"], row["status"], row["fim_format"]) == (str(folder), "ok", f"fim-{family}")


def test_a_model_id_in_the_local_hugging_face_cache_is_registered_without_a_download(
        covey_home, tiny_model, tmp_path, monkeypatch):
    family, folder = tiny_model
    cache = tmp_path / "hf-cache"
    snapshot = cache / "models--someone--tiny-coder" / "snapshots" / ("0" * 40)
    shutil.copytree(folder, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # read when imported
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a download would fail, not hang
    card = _add("someone/tiny-coder", "cached")
    assert (card["path"], card["fim_format"]) == (str(snapshot), f"fim-{family}")


def test_a_fim_format_is_detected_only_where_its_markers_are_single_tokens():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_folder("qwen")))
    assert model_registry.detect_fim(tokenizer)[0] == "fim-qwen"
    starcoder = AutoTokenizer.from_pretrained(str(tokenizer_folder("starcoder")))
    assert model_registry.detect_fim(starcoder)[0] == "fim-starcoder"
    assert model_registry.single_token(starcoder, "<|fim_prefix|>") is None
    assert model_registry.detect_fim(_word_tokenizer(["<a>", "<b>"])) == ("fim-smol", {})
    deepseek = _word_tokenizer(["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"])
    fmt, ids = model_registry.detect_fim(deepseek)
    assert fmt == "fim-deepseek" and set(ids) == {"<｜fim▁begin｜>", "<｜fim▁hole｜>",
                                                 "<｜fim▁end｜>"}


def _word_tokenizer(specials: list[str]):
    """A whitespace word-level tokenizer whose ``specials`` are special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"[UNK]": 0, "def": 1}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]")
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    return tokenizer


def test_models_add_refuses_what_it_cannot_serve_in_one_line(covey_home, tmp_path):
    from transformers import Qwen2Config

    made_up = tmp_path / "made-up"
    made_up.mkdir()
    config = Qwen2Config(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=1, intermediate_size=32)
    config.architectures = ["MadeUpForCausalLM"]
    config.save_pretrained(made_up)
    for args, message in (([str(made_up)], "vLLM does not serve MadeUpForCausalLM"),
                          ([str(tmp_path)], "holds no config.json"),
                          (["some-org/not-cached-model"], "Covey downloads nothing"),
                          ([str(made_up), "--name", "default"], "not a usable model name")):
        result = CliRunner().invoke(main, ["models", "add", *args])
        assert result.exit_code == 1, result.output
        assert message in result.output and "Traceback" not in result.output
        assert result.output.count("\n") == 1


def test_models_use_switches_every_specialist_and_sets_aside_adapters_of_another_base(
        covey_home, tiny_model):
    family, folder = tiny_model
    _add(folder, "mine")
    result = CliRunner().invoke(main, ["models", "use", "mine"])
    assert result.exit_code == 0, result.output
    table = load_table()
    assert {s.base for s in table.specialists.values()} == {"mine"}
    assert table.for_task("completion").prompt_format == f"fim-{family}"
    # the shipped adapters were trained on SmolLM2: the untuned base serves until trained
    assert {s.adapter for s in table.specialists.values()} == {""}
    # the show threshold was the shipped adapter's: it shows everything until calibrated
    assert table.for_task("completion").min_show_logprob == float("-inf")
    assert "adapter builtin:completion -> (none" in result.output

    back = CliRunner().invoke(main, ["models", "use", "default"])
    assert back.exit_code == 0, back.output
    table = load_table()
    assert {s.base for s in table.specialists.values()} == {"default"}
    assert table.for_task("completion").prompt_format == "fim-smol"
    assert table.for_task("completion").adapter == "builtin:completion"
    shipped = shipped_specialists()["completion"].min_show_logprob
    assert table.for_task("completion").min_show_logprob == shipped > float("-inf")


def test_an_adapter_trained_on_another_base_is_refused_with_the_base_it_was_trained_on(
        covey_home, tiny_model):
    family, folder = tiny_model
    _add(folder, "mine")
    (covey_home / "specialists.toml").write_text("".join(
        f'[specialists.{task}]\nbase = "mine"\nadapter = "{adapter}"\n'
        for task, adapter in (("completion", "builtin:completion"), ("doc", ""),
                              ("refactor", ""), ("next-edit", ""))))
    spec = load_table().for_task("completion")
    with pytest.raises(engine.EngineError) as refused:
        engine.resolve_adapter(spec)
    assert ("adapter 'builtin:completion' was trained on SmolLM2-135M-Instruct, not on the "
            "base mine") in str(refused.value)
    result = CliRunner().invoke(main, ["engine", "up", "--no-wait"])
    assert result.exit_code == 1
    assert "was trained on SmolLM2-135M-Instruct, not on the base mine" in result.output
    assert engine.status(load_table()).state == "down"  # refused before anything started
