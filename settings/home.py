"""Where Covey keeps its state: the Covey home (COVEY_HOME or the platform's data dir)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def covey_home() -> Path:
    """The Covey home directory, created on first use."""
    env = os.environ.get("COVEY_HOME")
    home = Path(env).expanduser() if env else Path(platformdirs.user_data_dir("covey"))
    home.mkdir(parents=True, exist_ok=True)
    return home


def models_dir() -> Path:
    return covey_home() / "models"


def adapters_dir() -> Path:
    return covey_home() / "adapters"


def engine_dir() -> Path:
    path = covey_home() / "engine"
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_specialists_file() -> Path:
    return covey_home() / "specialists.toml"


def user_config_file() -> Path:
    return covey_home() / "config.toml"


def usage_db_path() -> Path:
    return covey_home() / "usage.db"
