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
    ("[[specialists.doc.workspaces]]\nroot = 'src'\nadapter = 'x'\n",
     "workspaces: root 'src' is not an absolute path"),
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


def test_a_workspace_adapter_serves_the_files_under_its_folder_only(covey_home, tmp_path):
    outer, inner = tmp_path / "mono", tmp_path / "mono" / "svc"
    (covey_home / "specialists.toml").write_text(
        "[specialists.completion]\nmax_tokens = 40\nworkspaces = [\n"
        f"  {{ root = '{outer}', adapter = '/a/outer' }},\n"
        f"  {{ root = '{inner}', adapter = '/a/inner' }},\n"
        "  { root = '/elsewhere/svc', adapter = '/a/other' },\n]\n")
    table = load_table()
    general = table.for_task("completion")
    in_inner = table.for_task("completion", str(inner / "app" / "main.py"))
    in_outer = table.for_task("completion", str(outer / "lib.py"))
    assert (in_inner.key, in_inner.adapter) == ("completion@svc-1", "/a/inner")  # innermost
    assert (in_outer.key, in_outer.adapter) == ("completion@mono", "/a/outer")
    assert in_inner.max_tokens == 40 and in_inner.workspaces == ()  # the rest is the general's
    # a sibling whose name only starts like the folder, or no file at all: the general one
    assert table.for_task("completion", str(tmp_path / "mono2" / "x.py")) == general
    assert table.for_task("completion", None) == general
    assert [s.key for s in table.served_specialists() if s.task == "completion"] == [
        "completion", "completion@mono", "completion@svc-1", "completion@svc-2"]


def test_a_workspace_folder_matches_through_a_link(covey_home, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    (covey_home / "specialists.toml").write_text(
        f"[[specialists.completion.workspaces]]\nroot = '{tmp_path / 'link'}'\nadapter = '/a'\n")
    assert load_table().for_task("completion", str(real / "m.py")).adapter == "/a"


def test_registering_for_a_workspace_keeps_the_general_adapter(covey_home, tmp_path):
    from covey_training import registry

    registry.point_table_at("completion", tmp_path / "v1")
    registry.point_workspace_at("completion", tmp_path / "repo", tmp_path / "v2")
    registry.point_workspace_at("completion", tmp_path / "other", tmp_path / "v3")
    registry.point_workspace_at("completion", tmp_path / "repo", tmp_path / "v4")  # replaces
    table = load_table()
    assert table.for_task("completion").adapter == str(tmp_path / "v1")
    assert [(ws.root, ws.adapter) for ws in table.for_task("completion").workspaces] == [
        (str(tmp_path / "other"), str(tmp_path / "v3")),
        (str(tmp_path / "repo"), str(tmp_path / "v4"))]
