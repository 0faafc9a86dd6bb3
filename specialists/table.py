"""The specialists table: which model, adapter, prompt format and decoding each task uses.

The table ships as ``specialists.toml`` beside this module; a user file in the Covey home
overrides it key by key, and ``COVEY_ENGINE_URL`` the engine's URL (layered and converted
by :mod:`covey_settings.layers`). Validation errors name the file, the key and the problem.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePath

from covey_settings import Layered, home, layer, structure
from covey_specialists.tasks import NAMES

TASKS = NAMES
"""The tasks a specialist may serve: the registry's (:mod:`covey_specialists.tasks`)."""
ROUTING_POLICIES = ("never", "on-failure", "on-low-confidence", "always-baseline")
PARALLELISM = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size")
"""The engine settings that are vLLM's parallelism flags of the same name."""


class TableError(ValueError):
    """A specialists table that cannot be used; the message names file, key and problem."""


@dataclass(frozen=True)
class EngineSettings:
    url: str = ""
    """An existing OpenAI-compatible engine's base URL; empty means Covey manages one.
    ``COVEY_ENGINE_URL`` overrides the files."""
    host: str = "127.0.0.1"
    """Where the managed engine listens. Anything but loopback needs ``allow_remote``."""
    port: int = 8733
    """The managed engine's TCP port."""
    max_model_len: int = 2048
    """Longest prompt plus completion the engine accepts, in tokens."""
    max_lora_rank: int = 16
    """Highest LoRA rank an adapter may have."""
    cpu_kv_cache_gib: int = 1
    """KV cache size on CPU hosts (VLLM_CPU_KVCACHE_SPACE)."""
    gpu_memory_utilization: float = 0.5
    """Share of the GPU's memory vLLM may take."""
    start_timeout_s: float = 300.0
    """How long ``covey engine up`` waits for the engine to answer."""
    allow_remote: bool = False
    """Let a non-loopback ``host`` expose the engine to the network (key still required)."""
    ssl_certfile: str = ""
    """Serve over TLS with this certificate (PEM; vLLM's ``--ssl-certfile``), with
    ``ssl_keyfile``; empty: plain HTTP (fine on loopback)."""
    ssl_keyfile: str = ""
    """The certificate's private key (vLLM's ``--ssl-keyfile``)."""
    ssl_ca_file: str = ""
    """The CA that signed ``ssl_certfile``, for Covey's own calls to the engine it started;
    empty: the certificate itself (self-signed)."""
    tensor_parallel_size: int = 1
    """GPUs one copy of the model is split across (vLLM's ``--tensor-parallel-size``)."""
    pipeline_parallel_size: int = 1
    """Pipeline stages, e.g. one per node (vLLM's ``--pipeline-parallel-size``)."""
    data_parallel_size: int = 1
    """Copies of the model in one engine (vLLM's ``--data-parallel-size``)."""
    extra_args: tuple[str, ...] = ()
    """More vLLM command-line arguments, passed as they are (e.g. ``["--max-num-seqs",
    "64"]``); Covey's own come first, so a repeated flag here wins."""


@dataclass(frozen=True)
class WorkspaceAdapter:
    """An adapter that serves one workspace folder only (``covey train TASK REPO``)."""

    root: str
    """The folder: files under it get ``adapter`` instead of the specialist's own."""
    adapter: str
    """As the specialist's ``adapter``: a path, a registered name or ``builtin:NAME``."""


@dataclass(frozen=True)
class Specialist:
    key: str
    """The specialist's name: its key in the table and its served model name."""
    task: str = ""
    """The task it serves: completion, doc or refactor (default: its key)."""
    base: str = "default"
    """Base model: ``default`` (the embedded SmolLM2), a folder or a Hugging Face id."""
    adapter: str = ""
    """LoRA adapter: a path, a registered name, ``builtin:NAME`` or empty for the base."""
    prompt_format: str = "prefix"
    """One of the formats in ``covey_specialists.tasks``."""
    temperature: float = 0.0
    """Sampling temperature, 0 to 2."""
    top_p: float = 1.0
    """Nucleus sampling cut-off."""
    frequency_penalty: float = 0.0
    """Lowers a token's odds by this much for each time the answer already used it (OpenAI
    semantics: the prompt is not counted, so names from the code stay cheap); breaks the
    loops a small model falls into under greedy decoding."""
    max_tokens: int = 64
    """Most tokens one answer may have."""
    stop: tuple[str, ...] = ()
    """Stop sequences."""
    extra_body: dict = field(default_factory=dict)
    """Engine-specific request fields added to every call, e.g. vLLM's ``top_k``,
    ``min_p``, ``repetition_penalty`` or ``ignore_eos``; they override Covey's own."""
    timeout_s: float = 10.0
    """How long a call may take before it is abandoned."""
    max_prompt_chars: int = 3000
    """Longest window of the document sent, in characters (the context is cut to fit)."""
    repo_context_share: float = 0.25
    """Share of the engine's context window given to context from other files of the
    workspace (definitions in use, similar chunks; :mod:`covey_specialists.repo_context`);
    0 sends none."""
    workspaces: tuple[WorkspaceAdapter, ...] = ()
    """Adapters for single workspace folders; a file under one is served by it (the
    innermost folder wins), with every other setting of this specialist."""
    routing: str = "never"
    """Escalation policy (issue: small-model-first routing); ``never`` keeps calls local."""
    min_mean_logprob: float = -1.0
    """``on-low-confidence``: escalate when the mean token log-prob is below this."""
    min_token_logprob: float = -6.0
    """``on-low-confidence``: escalate when any token's log-prob is below this."""
    min_show_logprob: float = -math.inf
    """Inline completion shows nothing when the specialist's own answer has a mean token
    log-prob below this (like Copilot's contextual filter); ``-inf`` (the string ``"-inf"``
    in JSON settings, which have no infinity) shows every answer.
    Separate from ``min_mean_logprob``, which decides escalation to the baseline. ``covey
    eval sweep`` recommends a value from precision against coverage. Docstrings and
    refactors, which the user asked for, are always answered."""

    @property
    def served_name(self) -> str:
        """The OpenAI ``model`` field that selects this specialist in the engine."""
        return self.key if self.adapter else "base"

    def for_path(self, path: str | None) -> Specialist:
        """This specialist as it serves the file at ``path``: with the adapter of the
        innermost workspace folder holding it, under its own key (``completion@myrepo``,
        the engine's name for it and the usage log's); itself when no folder holds it."""
        if not path or not self.workspaces:
            return self
        holding = [n for n, ws in enumerate(self.workspaces) if _holds(ws.root, path)]
        if not holding:
            return self
        return self.workspace_variants()[max(holding,
                                             key=lambda n: len(self.workspaces[n].root))]

    def workspace_variants(self) -> list[Specialist]:
        """One specialist per workspace adapter, in order, each under a distinct key."""
        names = [PurePath(ws.root).name or "root" for ws in self.workspaces]
        return [dataclasses.replace(
                    self, key=f"{self.key}@{name}" + (f"-{n}" if names.count(name) > 1 else ""),
                    adapter=ws.adapter, workspaces=())
                for n, (name, ws) in enumerate(zip(names, self.workspaces, strict=True))]


@functools.lru_cache(maxsize=256)
def _root_forms(root: str) -> tuple[str, ...]:
    """The folder as written and as resolved (an editor may open it through a link)."""
    written = os.path.normpath(os.path.expanduser(root))
    return tuple({written, os.path.realpath(written)})


def _holds(root: str, path: str) -> bool:
    return any(PurePath(path).is_relative_to(form) for form in _root_forms(root))


@dataclass(frozen=True)
class SpecialistsTable:
    engine: EngineSettings
    specialists: dict[str, Specialist] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def for_task(self, task: str, path: str | None = None) -> Specialist:
        """The task's specialist; for a file at ``path``, as it serves that file (its
        workspace's adapter, if it has one: :meth:`Specialist.for_path`)."""
        for spec in self.specialists.values():
            if spec.task == task:
                return spec.for_path(path)
        raise TableError(f"{', '.join(self.sources)}: no specialist serves task {task!r}")

    def served_specialists(self) -> list[Specialist]:
        """Every specialist the engine serves: the table's, and each workspace adapter's."""
        return [v for s in self.specialists.values() for v in (s, *s.workspace_variants())]

    def with_overrides(self, overrides: dict[str, dict]) -> SpecialistsTable:
        """A copy with per-specialist field overrides (e.g. from editor settings)."""
        raw = {k: dataclasses.asdict(v) for k, v in self.specialists.items()}
        for key, fields in overrides.items():
            raw.setdefault(key, {}).update(fields)
        layered = Layered(raw={"specialists": raw}, sources=("overrides",))
        return dataclasses.replace(self, specialists=_specialists(layered))


def shipped_table_text() -> str:
    return resources.files("covey_specialists").joinpath("specialists.toml").read_text()


def shipped_specialists() -> dict[str, Specialist]:
    """The specialists as Covey ships them, without the user's overrides."""
    return _specialists(layer(shipped=(shipped_table_text(), "specialists.toml (shipped)"),
                              error=TableError))


def load_table(user_file: Path | None = None) -> SpecialistsTable:
    """The shipped table, the user's override file if it exists, then the environment."""
    layered = layer(shipped=(shipped_table_text(), "specialists.toml (shipped)"),
                    user_file=user_file or home.user_specialists_file(),
                    env={"COVEY_ENGINE_URL": "engine.url"}, error=TableError)
    engine = structure(EngineSettings, _part(layered, "engine"), error=TableError,
                       prefix=("engine",))
    if bool(engine.ssl_certfile) != bool(engine.ssl_keyfile):
        raise TableError(f"{' + '.join(layered.sources)}: engine.ssl_certfile and "
                         "engine.ssl_keyfile go together (TLS needs both)")
    for name in PARALLELISM:
        if getattr(engine, name) < 1:
            raise TableError(f"{layered.origin(('engine', name))}: engine.{name}: must be "
                             "1 or more")
    if not 0 < engine.port <= 65535:
        raise TableError(f"{layered.origin(('engine', 'port'))}: engine.port: {engine.port} "
                         "is not a TCP port")
    specs = _specialists(layered)
    missing = [t for t in TASKS if t not in {s.task for s in specs.values()}]
    if missing:
        raise TableError(f"{' + '.join(layered.sources)}: no specialist for task(s) "
                         f"{', '.join(missing)}")
    return SpecialistsTable(engine=engine, specialists=specs, sources=layered.sources)


def _part(layered: Layered, key: str) -> Layered:
    """The ``key`` table of ``layered``, keeping where each value came from."""
    raw = layered.raw.get(key, {})
    origins = {path[1:]: src for path, src in layered.origins.items() if path[:1] == (key,)}
    return Layered(raw=raw, origins=origins, sources=layered.sources)


def _specialists(layered: Layered) -> dict[str, Specialist]:
    part = _part(layered, "specialists")
    if not isinstance(part.raw, dict):
        raise TableError(f"{layered.origin(('specialists',))}: specialists: expected a table")
    for key, entry in part.raw.items():
        if isinstance(entry, dict):  # the key names the specialist and is its default task
            part.raw[key] = {"task": key, **entry, "key": key}
            if entry.get("min_show_logprob") == "-inf":  # JSON has no infinity
                part.raw[key]["min_show_logprob"] = -math.inf
    specs = structure(dict[str, Specialist], part, error=TableError, prefix=("specialists",))
    for spec in specs.values():
        _check(spec, lambda name, key=spec.key: part.origin((key, name)))
    return specs


def _check(spec: Specialist, origin) -> None:
    """What the types alone cannot say; ``origin(field)`` names the source of a field."""
    from covey_specialists.tasks import FORMATS

    def fail(name: str, problem: str) -> None:
        raise TableError(f"{origin(name)}: specialists.{spec.key}.{name}: {problem}")

    if spec.task not in TASKS:
        fail("task", f"{spec.task!r} is not one of {', '.join(TASKS)}")
    if spec.prompt_format not in FORMATS:
        fail("prompt_format", f"{spec.prompt_format!r} is unknown "
                              f"(known: {', '.join(sorted(FORMATS))})")
    if spec.routing not in ROUTING_POLICIES:
        fail("routing", f"{spec.routing!r} is not one of {', '.join(ROUTING_POLICIES)}")
    if spec.max_tokens <= 0:
        fail("max_tokens", "must be positive")
    for ws in spec.workspaces:
        if not os.path.isabs(os.path.expanduser(ws.root)):
            fail("workspaces", f"root {ws.root!r} is not an absolute path")
    if spec.timeout_s <= 0:
        fail("timeout_s", "must be positive")
    if not 0.0 <= spec.temperature <= 2.0:
        fail("temperature", "must be between 0 and 2")
    if not -2.0 <= spec.frequency_penalty <= 2.0:  # vLLM's and OpenAI's range
        fail("frequency_penalty", "must be between -2 and 2")
    if not spec.min_show_logprob <= 0.0:  # also refuses NaN, which would show everything
        fail("min_show_logprob", f"{spec.min_show_logprob!r} is not a log-prob "
                                 "(0 or below; -inf shows every answer)")
