"""A Covey home whose specialists table the shared test engine can serve.

An engine started before an adapter shipped serves only the base; evaluating the table's
specialists against it would measure errors. Such specialists get ``adapter = ""`` (the
untuned base) in the home's own table, and the test says so by using this helper.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from covey_specialists.table import load_table


def served_models(engine) -> set[str]:
    response = httpx.get(f"{engine.url}/v1/models", timeout=10,
                         headers={"Authorization": f"Bearer {engine.api_key}"})
    return {m["id"] for m in response.json()["data"]}


def serveable_home(engine, home: Path) -> list[str]:
    """Write ``home``/specialists.toml so every specialist is one the engine serves; the keys
    switched to the base."""
    served = served_models(engine)
    unserved = [s.key for s in load_table().specialists.values()
                if s.adapter and s.served_name not in served]
    (home / "specialists.toml").write_text(
        "".join(f'[specialists.{key}]\nadapter = ""\n' for key in unserved))
    return unserved
