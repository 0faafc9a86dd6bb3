"""Shared fixtures. The real engine starts once per test session (30–60 s on CPU, plus about
2 minutes the first time, when vLLM compiles the model).

Tests run with ``COVEY_HOME`` set to a test home (``$COVEY_TEST_HOME`` or
``.covey-home/test`` in the checkout), so the prepared model is reused between runs and
nothing touches the user's own Covey home or its engine. Set ``COVEY_TEST_ENGINE_URL`` (and
``COVEY_TEST_ENGINE_KEY``) to reuse an engine that is already running.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_HOME = Path(os.environ.get("COVEY_TEST_HOME", REPO / ".covey-home" / "test"))
TEST_HOME.mkdir(parents=True, exist_ok=True)
os.environ["COVEY_HOME"] = str(TEST_HOME)
# The test engine gets a port of its own: `make demo` leaves the user's engine on 8733.
if not (TEST_HOME / "specialists.toml").exists():
    (TEST_HOME / "specialists.toml").write_text("[engine]\nport = 8743\n")
os.environ.pop("COVEY_ENGINE_URL", None)


@dataclass(frozen=True)
class Engine:
    url: str
    api_key: str
    managed: bool


@pytest.fixture(scope="session")
def prepared_model() -> Path:
    """The default model, prepared once in the test home (a session fixture is set up
    before any test's own ``COVEY_HOME``), and reused between runs."""
    from covey_specialists import base_model

    return base_model.prepare_default_model()


@pytest.fixture(scope="session")
def engine(request) -> Engine:
    """A real vLLM engine serving the base model and the table's adapters."""
    url = os.environ.get("COVEY_TEST_ENGINE_URL")
    if url:
        yield Engine(url.rstrip("/"), os.environ.get("COVEY_TEST_ENGINE_KEY", ""), managed=False)
        return
    from covey_specialists import engine as manager
    from covey_specialists.table import load_table

    request.getfixturevalue("prepared_model")
    table = load_table()
    status = manager.status(table)
    if status.state in ("up", "starting"):  # already running in the test home: share it
        status = manager.ensure_up(table)
        yield Engine(status.url, manager.api_key(), managed=False)
        return
    status = manager.up(table)
    try:
        yield Engine(status.url, manager.api_key(), managed=True)
    finally:
        manager.down(table)


def pytest_collection_modifyitems(config, items):
    """Every test that uses the real engine is marked ``engine`` (so ``-m "not engine"``
    leaves them out); tests that kill and restart the shared engine run last."""
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)
    items.sort(key=lambda item: item.get_closest_marker("restarts_engine") is not None)


@pytest.fixture
def covey_home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty Covey home for one test (CLI and log tests)."""
    home = tmp_path / "covey-home"
    home.mkdir()
    monkeypatch.setenv("COVEY_HOME", str(home))
    return home


class EngineLaunched(Exception):
    """Raised where ``engine.up`` would start vLLM; ``env`` is what vLLM would get."""

    def __init__(self, env: dict[str, str]):
        super().__init__("vLLM would start here")
        self.env = env


@pytest.fixture
def no_launch(monkeypatch):
    """Let ``engine.up`` run up to starting vLLM (on a CPU), then stop it there with
    :class:`EngineLaunched`, the fixture's value."""
    from covey_specialists import engine

    def launch(cmd, **kwargs):
        raise EngineLaunched(kwargs["env"])

    monkeypatch.setattr(engine, "resolve_base", lambda base: "/model")
    monkeypatch.setattr(engine, "resolve_adapter", lambda spec: None)
    monkeypatch.setattr(engine, "detect_device", lambda: "cpu")
    monkeypatch.setattr(engine.subprocess, "Popen", launch)
    return EngineLaunched
