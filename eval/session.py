"""One eval run end to end: open the usage log, build the systems, run, store the result.

The usage log is injected (``usage``) so tests can give a temporary one; by default it is
``$COVEY_HOME/usage.db``. Every model call goes to it with client ``eval`` and the run id.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import httpx

from covey_eval import runner, store
from covey_eval.systems import BaselineSystem, EmptySystem, EngineSystem, OracleSystem, System
from covey_eval.tasks import Task
from covey_specialists.baseline import BaselineClient, BaselineConfig

NO_BASELINE = ("No baseline LLM endpoint is configured (set COVEY_BASELINE_URL, "
               "COVEY_BASELINE_MODEL and COVEY_BASELINE_API_KEY, or pass --baseline-url), "
               "so this run has no LLM; the untuned base model is shown in its place.")


class SessionError(RuntimeError):
    """The run cannot start (engine down, bad table…); the message says why."""


@dataclass
class Settings:
    engine_url: str | None = None
    engine_key: str | None = None
    baseline_url: str | None = None
    baseline_model: str | None = None
    baseline_api: str | None = None


def resolve_systems(names: list[str], baseline: BaselineConfig | None
                    ) -> tuple[list[str], list[str]]:
    """Replace an unconfigured baseline by the untuned base, and say so."""
    notes = []
    if "baseline" in names and baseline is None:
        notes.append(NO_BASELINE)
        names = [n for n in names if n != "baseline"]
        if "base" not in names:
            names.append("base")
    return names, notes


def run_eval(suite: str, names: list[str], tasks: list[Task], settings: Settings, *,
             limit: int | None = None, seed: int = 0, concurrency: int = 8,
             workers: int | None = None, progress=None, usage=None,
             usage_path: Path | None = None) -> dict:
    baseline_cfg = BaselineConfig.from_env(settings.baseline_url, settings.baseline_model,
                                           settings.baseline_api)
    names, notes = resolve_systems(names, baseline_cfg)
    spec = runner.RunSpec(suite=suite, systems=names, limit=limit, seed=seed,
                          concurrency=concurrency, notes=notes)
    owns_log = usage is None
    if owns_log:
        from covey_server.usage import open_usage_log

        usage_path = usage_path or store.db_path()
        usage = open_usage_log(usage_path)
    usage_path = usage_path or getattr(usage, "path", store.db_path())
    try:
        run_id = usage.start_eval_run(spec.meta())

        def costs() -> dict:
            usage.flush()
            return store.call_costs(Path(usage_path), run_id)

        result = asyncio.run(_run(spec, tasks, settings, baseline_cfg, usage, run_id, costs,
                                  progress, workers))
        usage.finish_eval_run(run_id, {k: v for k, v in result.items() if k != "run_id"})
        usage.flush()
    finally:
        if owns_log:
            usage.close()
    return result


async def _run(spec, tasks, settings, baseline_cfg, usage, run_id, costs, progress, workers):
    closers = []
    try:
        systems = await _build(spec.systems, settings, baseline_cfg, usage, run_id, closers)
        return await runner.run(spec, tasks, systems, run_id=run_id, costs=costs,
                                progress=progress, workers=workers)
    finally:
        for close in closers:
            await close()


async def _build(names, settings, baseline_cfg, usage, run_id, closers) -> list[System]:
    systems: list[System] = []
    engine_client = None
    table = None
    if any(n in ("specialist", "base", "baseline") for n in names):
        from covey_specialists.table import TableError, load_table

        try:
            table = load_table()
        except TableError as exc:
            raise SessionError(str(exc)) from None
    if any(n in ("specialist", "base") for n in names):
        engine_client = await _engine_client(table, settings, usage)
        closers.append(engine_client.aclose)
    for name in names:
        if name == "oracle":
            systems.append(OracleSystem())
        elif name == "empty":
            systems.append(EmptySystem())
        elif name in ("specialist", "base"):
            systems.append(EngineSystem(name, engine_client, table, run_id,
                                        untuned=name == "base"))
        elif name == "baseline":
            client = BaselineClient(baseline_cfg, sink=usage, client_name="eval")
            closers.append(client.aclose)
            systems.append(BaselineSystem(client, table, run_id))
    return systems


async def _engine_client(table, settings, usage):
    from covey_specialists import engine
    from covey_specialists.client import EngineClient

    url, key = engine.endpoint(table)
    url, key = settings.engine_url or url, settings.engine_key or key
    client = EngineClient(url, key, sink=usage, client_name="eval", store_text=False)
    if not await client.health():
        await client.aclose()
        raise SessionError(f"the engine is not reachable at {url}: start it with "
                           "`covey engine up`, or pass --engine-url")
    try:
        served = await client.models()
    except httpx.HTTPError:
        served = []
    if served:
        client.base_model = served[0]
    return client
