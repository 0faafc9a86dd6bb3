"""One way to read settings: layers (later wins, each value's source remembered), cattrs
conversion with one message per bad value, and the one engine resolver."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from covey_settings import layer, structure
from covey_specialists import engine
from covey_specialists.table import EngineSettings, load_table


@dataclass(frozen=True)
class Inner:
    port: int = 1
    """A port."""


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    """A name."""
    ratio: float = 0.5
    """A ratio."""
    inner: Inner = field(default_factory=Inner)
    """A nested table."""


def test_layers_stack_in_order_and_remember_each_source(tmp_path, monkeypatch):
    user = tmp_path / "user.toml"
    user.write_text('name = "user"\n[inner]\nport = 2\n')
    monkeypatch.setenv("TEST_NAME", "env")
    layered = layer(shipped=('name = "shipped"\nratio = 1\n', "shipped"), user_file=user,
                    env={"TEST_NAME": "name"}, editor={"inner": {"port": 3}})
    assert structure(Outer, layered) == Outer(name="env", ratio=1.0, inner=Inner(port=3))
    assert layered.origin(("ratio",)) == "shipped"
    assert layered.origin(("name",)) == "$TEST_NAME"
    assert layered.origin(("inner", "port")) == "initializationOptions"


def test_a_bad_value_is_one_message_and_its_default(tmp_path):
    user = tmp_path / "user.toml"
    user.write_text('ratio = "half"\n[inner]\nport = true\n')
    problems: list[str] = []
    value = structure(Outer, layer(user_file=user, editor={"name": "ok", "extra": 1}),
                      problems=problems)
    assert value == Outer(name="ok")
    assert sorted(problems) == sorted([
        f"{user}: ratio: expected float, got 'half'; using the default 0.5",
        f"{user}: inner.port: expected int, got True; using the default 1",
        "initializationOptions: extra: unknown key"])


def test_with_an_error_class_the_first_bad_value_raises():
    with pytest.raises(KeyError, match="inner: expected a table"):
        structure(Outer, {"inner": 5}, error=KeyError)


def test_resolver_prefers_a_given_url_and_reads_its_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("COVEY_ENGINE_API_KEY", "k-env")
    monkeypatch.setenv("MY_KEY", "k-mine")
    settings = EngineSettings(url="http://table:1/")
    assert engine.resolve(settings) == engine.EngineTarget("http://table:1", "k-env", False)
    assert engine.resolve(settings, url="http://editor:2", api_key_env="MY_KEY") == \
        engine.EngineTarget("http://editor:2", "k-mine", False)
    assert engine.resolve(settings, url="http://cli:3", key="k-flag").api_key == "k-flag"


def test_without_a_url_covey_manages_the_engine(covey_home, monkeypatch):
    monkeypatch.delenv("COVEY_ENGINE_URL", raising=False)
    state = covey_home / "engine"
    state.mkdir(exist_ok=True)
    (state / "engine.json").write_text(json.dumps({"port": 9001}))
    key = engine.api_key(create=True)
    target = engine.resolve(load_table().engine)
    assert target == engine.EngineTarget("http://127.0.0.1:9001", key, True)


def test_covey_engine_url_is_the_environment_layer_of_the_table(covey_home, monkeypatch):
    monkeypatch.setenv("COVEY_ENGINE_URL", "http://shared:8000")
    table = load_table()
    assert table.engine.url == "http://shared:8000"
    assert not engine.resolve(table.engine).managed
