"""The specialists table: which model, adapter, prompt format and decoding each task uses.

The table ships as ``specialists.toml`` beside this module; a user file in the Covey home
overrides it key by key. Validation errors name the file, the key and the problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from covey_usage import home
from covey_usage.layered_toml import load_layers

TASKS = ("completion", "doc", "refactor")
ROUTING_POLICIES = ("never", "on-failure", "on-low-confidence", "always-baseline")


class TableError(ValueError):
    """A specialists table that cannot be used; the message names file, key and problem."""


@dataclass(frozen=True)
class EngineSettings:
    url: str = ""
    """An existing OpenAI-compatible engine's base URL; empty means Covey manages one."""
    host: str = "127.0.0.1"
    """Where the managed engine listens. Anything but loopback needs ``allow_remote``."""
    port: int = 8733
    max_model_len: int = 2048
    max_lora_rank: int = 16
    cpu_kv_cache_gib: int = 1
    """KV cache size on CPU hosts (VLLM_CPU_KVCACHE_SPACE)."""
    gpu_memory_utilization: float = 0.5
    start_timeout_s: float = 300.0
    allow_remote: bool = False
    """Let a non-loopback ``host`` expose the engine to the network (key still required)."""


@dataclass(frozen=True)
class Specialist:
    key: str
    task: str = ""
    base: str = "default"
    adapter: str = ""
    """LoRA adapter: a path, a registered name, ``builtin:NAME`` or empty for the base."""
    prompt_format: str = "prefix"
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 64
    stop: tuple[str, ...] = ()
    timeout_s: float = 10.0
    max_prompt_chars: int = 3000
    routing: str = "never"
    """Escalation policy (issue: small-model-first routing); ``never`` keeps calls local."""
    min_mean_logprob: float = -1.0
    min_token_logprob: float = -6.0

    @property
    def served_name(self) -> str:
        """The OpenAI ``model`` field that selects this specialist in the engine."""
        return self.key if self.adapter else "base"


@dataclass(frozen=True)
class SpecialistsTable:
    engine: EngineSettings
    specialists: dict[str, Specialist] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def for_task(self, task: str) -> Specialist:
        for spec in self.specialists.values():
            if spec.task == task:
                return spec
        raise TableError(f"{', '.join(self.sources)}: no specialist serves task {task!r}")

    def with_overrides(self, overrides: dict[str, dict]) -> SpecialistsTable:
        """A copy with per-specialist field overrides (e.g. from editor settings)."""
        raw = {k: dataclasses.asdict(v) for k, v in self.specialists.items()}
        for key, fields in overrides.items():
            raw.setdefault(key, {}).update(fields)
        specs = {k: _specialist(k, v, "overrides") for k, v in raw.items()}
        return dataclasses.replace(self, specialists=specs)


def shipped_table_text() -> str:
    return resources.files("covey_specialists").joinpath("specialists.toml").read_text()


def load_table(user_file: Path | None = None) -> SpecialistsTable:
    """Load the shipped table, then apply the user's override file if it exists."""
    raw, sources = load_layers(shipped_table_text(), "specialists.toml (shipped)",
                               user_file or home.user_specialists_file(), TableError)
    where = " + ".join(sources)
    engine = _engine(raw.get("engine", {}), where)
    specs = {k: _specialist(k, v, where) for k, v in raw.get("specialists", {}).items()}
    missing = [t for t in TASKS if t not in {s.task for s in specs.values()}]
    if missing:
        raise TableError(f"{where}: no specialist for task(s) {', '.join(missing)}")
    return SpecialistsTable(engine=engine, specialists=specs, sources=sources)


def _coerce(cls, raw: dict, where: str, prefix: str, skip: tuple[str, ...] = ()) -> dict:
    """Check keys and types of ``raw`` against dataclass ``cls``; return constructor kwargs."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    out = {}
    for key, value in raw.items():
        if key not in fields:
            raise TableError(f"{where}: {prefix}.{key}: unknown key (known: {', '.join(fields)})")
        default = fields[key].default
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise TableError(f"{where}: {prefix}.{key}: expected a list of strings")
            value = tuple(value)
        elif isinstance(default, bool) or isinstance(value, bool):
            if type(value) is not type(default):
                raise TableError(f"{where}: {prefix}.{key}: expected {type(default).__name__}")
        elif isinstance(default, float) and isinstance(value, int):
            value = float(value)
        elif not isinstance(value, type(default)):
            raise TableError(
                f"{where}: {prefix}.{key}: expected {type(default).__name__}, "
                f"got {type(value).__name__} {value!r}"
            )
        out[key] = value
    return out


def _engine(raw: dict, where: str) -> EngineSettings:
    kwargs = _coerce(EngineSettings, raw, where, "engine")
    settings = EngineSettings(**kwargs)
    if settings.port <= 0 or settings.port > 65535:
        raise TableError(f"{where}: engine.port: {settings.port} is not a TCP port")
    return settings


def _specialist(key: str, raw: dict, where: str) -> Specialist:
    from covey_specialists.tasks import FORMATS

    prefix = f"specialists.{key}"
    kwargs = _coerce(Specialist, {k: v for k, v in raw.items() if k != "key"}, where, prefix,
                     skip=("key",))
    spec = Specialist(key=key, **{"task": key, **kwargs})
    if spec.task not in TASKS:
        raise TableError(f"{where}: {prefix}.task: {spec.task!r} is not one of {', '.join(TASKS)}")
    if spec.prompt_format not in FORMATS:
        raise TableError(f"{where}: {prefix}.prompt_format: {spec.prompt_format!r} is unknown "
                         f"(known: {', '.join(sorted(FORMATS))})")
    if spec.routing not in ROUTING_POLICIES:
        raise TableError(f"{where}: {prefix}.routing: {spec.routing!r} is not one of "
                         f"{', '.join(ROUTING_POLICIES)}")
    if spec.max_tokens <= 0:
        raise TableError(f"{where}: {prefix}.max_tokens: must be positive")
    if spec.timeout_s <= 0:
        raise TableError(f"{where}: {prefix}.timeout_s: must be positive")
    if not 0.0 <= spec.temperature <= 2.0:
        raise TableError(f"{where}: {prefix}.temperature: must be between 0 and 2")
    return spec
