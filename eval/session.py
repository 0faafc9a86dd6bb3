"""One eval run end to end: open the usage log, build the systems, run, store the result.

The usage log is injected (``usage``) so tests can give a temporary one; by default it is
``$COVEY_HOME/usage.db``. Every model call goes to it with client ``eval`` and the run id.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from covey_eval import runner, store
from covey_eval.systems import (
    STAND_IN_LABEL,
    UNTUNED,
    BaselineSystem,
    EmptySystem,
    EngineSystem,
    OracleSystem,
    RoutedSystem,
    System,
)
from covey_eval.tasks import Task
from covey_specialists.baseline import BaselineClient, BaselineConfig
from covey_usage.writer import PricingSink

NO_BASELINE = ("No baseline LLM endpoint is configured (set COVEY_BASELINE_URL, "
               "COVEY_BASELINE_MODEL and COVEY_BASELINE_API_KEY, or pass --baseline-url), "
               "so this run has no LLM; the untuned base model is shown in its place.")
STAND_IN = ("No baseline LLM endpoint is configured, so the untuned base model on the same "
            "engine (model `base`) stands in for the baseline LLM: escalations go to it, "
            "and its calls are priced at the baseline LLM's per-token price ({model}). "
            "Its quality is a small model's, not an LLM's.")

WIDE_BATCH = ("The CPU engine keeps a core for vLLM's front end and the editor; with {n} "
              "requests in flight they queue for the model's one core and the slowest may run "
              "past the specialist's timeout. For a batch this wide while you are not typing, "
              "`covey engine down && covey engine up --all-cores` gives the model every core.")
ENGINE_SYSTEMS = ("specialist", *UNTUNED, "routed")


class SessionError(RuntimeError):
    """The run cannot start (engine down, bad table…); the message says why."""


@dataclass
class Settings:
    engine_url: str | None = None
    engine_key: str | None = None
    baseline_url: str | None = None
    baseline_model: str | None = None
    baseline_api: str | None = None
    routing: dict | None = None
    """Overrides of the specialists' routing fields for the ``routed`` system."""
    signals: bool = False
    """Record log-probs and validation on specialist and baseline answers (the sweep)."""
    stand_in: bool = False
    """Without a configured baseline, let the untuned base stand in for ``baseline`` too."""
    context: str = "repo"
    """``repo``: the engine systems get the workspace the editor would have for tasks cut
    from a repository (:class:`covey_eval.repo.RepoContext`; other suites have none);
    ``none``: nothing beyond the task's file."""


def resolve_systems(names: list[str], baseline: BaselineConfig | None, *,
                    stand_in: bool = False) -> tuple[list[str], list[str]]:
    """Replace an unconfigured baseline by the untuned base, and say so. Routing (and,
    with ``stand_in``, the baseline itself) escalates to the untuned base standing in."""
    notes = []
    if baseline is None and ("routed" in names or (stand_in and "baseline" in names)):
        notes.append(STAND_IN.format(model=_baseline_price_name()))
    if "baseline" in names and baseline is None and not stand_in:
        notes.append(NO_BASELINE)
        names = [n for n in names if n != "baseline"]
        if "base" not in names:
            names.append("base")
    return names, notes


def run_eval(suite: str, names: list[str], tasks: list[Task], settings: Settings, *,
             limit: int | None = None, seed: int = 0, concurrency: int = 8,
             workers: int | None = None, progress=None, usage=None,
             usage_path: Path | None = None, extend=None, holes: str | None = None) -> dict:
    """Run, store and return the result; ``extend(result)`` may add to it (e.g. a sweep)
    before it is stored. The run's meta records the context the engine systems were given
    (``repo`` only where the tasks come from a repository) and, for the repo suite, which
    ``holes`` were cut."""
    try:
        baseline_cfg = BaselineConfig.from_env(settings.baseline_url, settings.baseline_model,
                                               settings.baseline_api)
    except ValueError as exc:  # a bad COVEY_BASELINE_* value or flag
        raise SessionError(str(exc)) from None
    names, notes = resolve_systems(names, baseline_cfg, stand_in=settings.stand_in)
    notes += wide_batch_notes(names, settings, concurrency)
    spec = runner.RunSpec(suite=suite, systems=names, limit=limit, seed=seed,
                          concurrency=concurrency, notes=notes)
    workspace = None
    if settings.context == "repo" and set(names) & set(ENGINE_SYSTEMS):
        from covey_eval.repo import RepoContext

        workspace = RepoContext.for_tasks(tasks)  # the repository's index, scanned once
    has_repo = any(t.meta.get("root") for t in tasks)
    run_meta = {"context": settings.context if has_repo else "none", "holes": holes}
    owns_log = usage is None
    if owns_log:
        from covey_usage import open_usage_log

        usage_path = usage_path or store.db_path()
        usage = open_usage_log(usage_path)
    try:
        run_id = usage.start_eval_run({**spec.meta(), **run_meta})
        sink = PricingSink(usage)  # each call goes to the log and is priced here at once

        def costs() -> dict:
            return {c.id: {"local": c.local_cost_usd, "llm": c.llm_cost_usd, "source": c.source,
                           "status": c.status, "device": c.device, "energy": c.energy_j}
                    for c in sink.priced().values()}

        result = asyncio.run(_run(spec, tasks, settings, baseline_cfg, sink, run_id, costs,
                                  progress, workers, workspace))
        result["meta"].update(run_meta)
        if extend is not None:
            extend(result)
        usage.finish_eval_run(run_id, {k: v for k, v in result.items() if k != "run_id"})
        usage.flush()
    finally:
        if owns_log:
            usage.close()
    return result


def wide_batch_notes(names: list[str], settings: Settings, concurrency: int) -> list[str]:
    """Say so when a batch wider than two runs on the managed CPU engine of a two-core
    machine while it keeps a core back for the editor (README, "Other CPU settings")."""
    if (concurrency <= 2 or settings.engine_url or not set(names) & set(ENGINE_SYSTEMS)
            or usable_cpus() > 2):
        return []
    from covey_specialists import engine
    from covey_specialists.table import TableError, load_table

    try:
        cores = engine.status(load_table()).model_cores
    except (TableError, engine.EngineError):  # the run itself will say what is wrong
        return []
    return [WIDE_BATCH.format(n=concurrency)] if cores == engine.EDITOR_CORES else []


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0))


async def _run(spec, tasks, settings, baseline_cfg, usage, run_id, costs, progress, workers,
               workspace=None):
    closers = []
    try:
        kinds = {t.kind for t in tasks}
        systems = await _build(spec.systems, settings, baseline_cfg, usage, run_id, closers,
                               kinds, workspace)
        return await runner.run(spec, tasks, systems, run_id=run_id, costs=costs,
                                progress=progress, workers=workers)
    finally:
        for close in closers:
            await close()


def _baseline_price_name() -> str:
    from covey_usage.cost import PriceError, load_prices

    try:
        return load_prices().baseline.name
    except PriceError:
        return "the baseline model"


async def _build(names, settings, baseline_cfg, usage, run_id, closers,
                 kinds, workspace=None) -> list[System]:
    """The systems by name; ``workspace`` (a task's workspace, or None) goes to the engine
    systems, as the editor's context goes with its requests."""
    systems: list[System] = []
    engine_client = None
    table = None
    if any(n in ("specialist", *UNTUNED, "baseline", "routed") for n in names):
        from covey_specialists.table import TableError, load_table

        try:
            table = load_table()
        except TableError as exc:
            raise SessionError(str(exc)) from None
    stand_in = baseline_cfg is None and ("routed" in names or "baseline" in names)
    if any(n in ("specialist", *UNTUNED, "routed") for n in names) or stand_in:
        engine_client, served = await _engine_client(table, settings, usage)
        closers.append(engine_client.aclose)
        if any(n in ("specialist", "routed") for n in names):
            _check_adapters_served(table, served, engine_client.base_url, kinds)
    baseline_label = None
    if stand_in:  # the same engine, untuned: a small model in the baseline's role
        url, key = _endpoint(table, settings)
        baseline_cfg = BaselineConfig(url=url, model="base", api_key=key, api="completions")
        baseline_label = f"{STAND_IN_LABEL} (base on {engine_client.base_url})"
    baseline_client = None
    if baseline_cfg is not None and ("baseline" in names or "routed" in names):
        baseline_client = BaselineClient(baseline_cfg, sink=usage, client_name="eval")
        closers.append(baseline_client.aclose)
    for name in names:
        if name == "oracle":
            systems.append(OracleSystem())
        elif name == "empty":
            systems.append(EmptySystem())
        elif name in ("specialist", *UNTUNED):
            systems.append(EngineSystem(name, engine_client, table, run_id,
                                        untuned=name in UNTUNED, fair_base=name == "base",
                                        signals=settings.signals, workspace=workspace))
        elif name == "baseline":
            systems.append(BaselineSystem(baseline_client, table, run_id, label=baseline_label,
                                          signals=settings.signals, workspace=workspace))
        elif name == "routed":
            systems.append(RoutedSystem(engine_client, baseline_client, table, run_id,
                                        routing=settings.routing,
                                        baseline_label=baseline_label or "",
                                        workspace=workspace))
    return systems


def _endpoint(table, settings) -> tuple[str, str]:
    from covey_specialists import engine

    try:
        target = engine.resolve(table.engine, url=settings.engine_url or "",
                                key=settings.engine_key or "")
    except engine.EngineError as exc:  # e.g. a key file others can read
        raise SessionError(str(exc)) from None
    return target.url, target.api_key


async def _engine_client(table, settings, usage):
    from covey_specialists.client import EngineClient

    url, key = _endpoint(table, settings)
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
    return client, served


def _check_adapters_served(table, served: list[str], url: str, kinds) -> None:
    """A specialist's adapter the engine does not serve would be measured as errors (or,
    with a fallback, as the base under the specialist's name): refuse, and say why."""
    missing = sorted(s.served_name for s in table.served_specialists()
                     if s.task in kinds and s.adapter and served
                     and s.served_name not in served)
    if missing:
        raise SessionError(
            f"the engine at {url} does not serve the adapter(s) {', '.join(missing)} named in "
            "the specialists table (it serves: " + ", ".join(served) + "); restart it with "
            "`covey engine down && covey engine up` so it loads them, or set adapter = \"\" "
            "for that specialist in $COVEY_HOME/specialists.toml to evaluate the untuned base")
