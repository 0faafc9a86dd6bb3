"""Server settings: typed defaults, the config file, initializationOptions, bad values."""

from __future__ import annotations

import dataclasses

from covey_server.config import EngineOptions, ServerConfig, load_config


def test_defaults_without_any_source(tmp_path):
    config, problems = load_config(None, tmp_path / "missing.toml")
    assert config == ServerConfig() and problems == []


def test_every_field_has_a_docstring():
    import ast
    import inspect

    from covey_server import config as module

    tree = ast.parse(inspect.getsource(module))
    for cls in (ServerConfig, EngineOptions):
        node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
        documented = {
            stmt.target.id for stmt, nxt in zip(node.body, node.body[1:], strict=False)
            if isinstance(stmt, ast.AnnAssign) and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)}
        assert {f.name for f in dataclasses.fields(cls)} == documented, cls.__name__


def test_editor_options_override_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[server]\ndebounce_ms = 200\nstore_text = true\n'
                    '[server.engine]\nurl = "http://file:1"\n')
    config, problems = load_config({"debounceMs": 30, "engine": {"apiKeyEnv": "MY_KEY"},
                                    "specialists": {"completion": {"maxTokens": 16}}}, path)
    assert problems == []
    assert config.debounce_ms == 30 and config.store_text is True
    assert config.engine == EngineOptions(url="http://file:1", api_key_env="MY_KEY")
    assert config.specialists == {"completion": {"max_tokens": 16}}


def test_bad_values_fall_back_with_one_problem_each(tmp_path):
    config, problems = load_config({"debounceMs": "fast", "languages": "python",
                                    "engine": {"url": 5}, "storeText": "yes", "colour": 1},
                                   tmp_path / "none.toml")
    assert config == ServerConfig()
    assert len(problems) == 5
    assert any(p.startswith("initializationOptions: debounce_ms: expected int, got 'fast'")
               for p in problems)
    assert any("colour: unknown key" in p for p in problems)


def test_a_bad_value_in_the_file_names_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[server]\ndebounceMs = -5\n')
    config, problems = load_config({"storeText": True}, path)
    assert config.debounce_ms is None and config.store_text is True  # None: automatic
    assert problems == [f"{path}: debounce_ms: must not be negative, got -5; "
                        "using the default None"]


def test_editor_nulls_mean_not_set(tmp_path):
    config, problems = load_config({"engine": {"url": None},
                                    "baseline": {"url": None, "model": None}},
                                   tmp_path / "none.toml")
    assert config == ServerConfig() and problems == []


def test_managed_is_gone(tmp_path):
    config, problems = load_config({"engine": {"managed": False}}, tmp_path / "none.toml")
    assert problems == ["initializationOptions: engine.managed: unknown key"]


def test_broken_config_file_is_reported_not_raised(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[server\n")
    config, problems = load_config({}, path)
    assert config == ServerConfig()
    assert len(problems) == 1 and "cannot be read" in problems[0]


def test_non_object_options():
    config, problems = load_config(["not", "an", "object"])
    assert config == ServerConfig() and problems
