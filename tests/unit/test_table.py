"""The specialists table: shipped defaults, user overrides, and validation messages."""

from __future__ import annotations

import pytest

from covey_specialists.table import TASKS, TableError, load_table


def test_shipped_table_declares_every_task(covey_home):
    table = load_table()
    assert {s.task for s in table.specialists.values()} == set(TASKS)
    for spec in table.specialists.values():
        assert spec.max_tokens > 0 and spec.timeout_s > 0 and spec.stop
    assert table.engine.host == "127.0.0.1"


def test_user_file_overrides_one_key(covey_home):
    (covey_home / "specialists.toml").write_text(
        "[specialists.doc]\nmax_tokens = 99\n[engine]\nport = 9100\n")
    table = load_table()
    assert table.for_task("doc").max_tokens == 99
    assert table.for_task("doc").prompt_format == "chatml-doc"  # untouched keys keep defaults
    assert table.engine.port == 9100


@pytest.mark.parametrize("body, message", [
    ("[specialists.doc]\nmax_tokens = 'many'\n", "specialists.doc.max_tokens: expected int"),
    ("[specialists.doc]\ncolour = 'blue'\n", "specialists.doc.colour: unknown key"),
    ("[specialists.doc]\nprompt_format = 'haiku'\n", "prompt_format: 'haiku' is unknown"),
    ("[specialists.doc]\nrouting = 'sometimes'\n", "routing: 'sometimes' is not one of"),
    ("[specialists.doc]\nstop = [1, 2]\n", "stop: expected a list of strings"),
    ("[specialists.doc]\nfrequency_penalty = 3.0\n", "frequency_penalty: must be between"),
    ("[engine]\nport = 70000\n", "engine.port: 70000 is not a TCP port"),
    ("[specialists.doc\n", "not valid TOML"),
])
def test_validation_names_file_key_and_problem(covey_home, body, message):
    path = covey_home / "specialists.toml"
    path.write_text(body)
    with pytest.raises(TableError) as err:
        load_table()
    assert message in str(err.value)
    if "TOML" not in message:
        assert str(path) in str(err.value)


def test_overrides_from_editor_settings(covey_home):
    table = load_table().with_overrides({"completion": {"max_tokens": 12}})
    assert table.for_task("completion").max_tokens == 12
    with pytest.raises(TableError, match="max_tokens"):
        load_table().with_overrides({"completion": {"max_tokens": -1}})


def test_min_show_logprob_minus_inf_as_a_string_shows_every_answer(covey_home):
    """JSON has no infinity (and null means "not set"): ``"-inf"`` turns the filter off."""
    shipped = load_table().for_task("completion").min_show_logprob
    assert shipped > float("-inf")  # the shipped table filters
    off = load_table().with_overrides({"completion": {"min_show_logprob": "-inf"}})
    assert off.for_task("completion").min_show_logprob == float("-inf")
    with pytest.raises(TableError, match="min_show_logprob"):
        load_table().with_overrides({"completion": {"min_show_logprob": "off"}})
