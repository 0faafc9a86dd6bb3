"""The engine manager: one local vLLM process serving the base model plus every
specialist's LoRA adapter, bound to 127.0.0.1 and guarded by a random API key.

State lives in ``$COVEY_HOME/engine/``: ``api_key`` (mode 0600), ``engine.json`` (pid,
port, what is served) and ``engine.log``. A user can instead point Covey at an existing
engine with ``[engine] url`` in the specialists table or ``COVEY_ENGINE_URL``;
:func:`resolve` is the one place that decides which engine and key Covey uses.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import httpx
import psutil

from covey_specialists.base_model import ModelError, resolve_base
from covey_specialists.table import EngineSettings, Specialist, SpecialistsTable
from covey_usage import home

log = logging.getLogger("covey.engine")

BASE_SERVED_NAME = "base"


class EngineError(RuntimeError):
    """The engine cannot be started, reached or stopped; the message says why."""


@dataclass
class EngineStatus:
    state: str
    """up, down, starting or remote."""
    url: str
    pid: int | None = None
    device: str = ""
    models: list[str] = field(default_factory=list)
    uptime_s: float | None = None
    reason: str = ""
    base_model: str = ""
    specialists: dict[str, dict] = field(default_factory=dict)
    """Each specialist's served model name and whether the engine serves it."""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# ------------------------------------------------------------------ files and endpoint

def _state_file() -> Path:
    return home.engine_dir() / "engine.json"


def log_file() -> Path:
    return home.engine_dir() / "engine.log"


def api_key(create: bool = False) -> str:
    """The local engine's API key; created with mode 0600 when asked."""
    path = home.engine_dir() / "api_key"
    if path.is_file():
        return path.read_text().strip()
    if not create:
        return ""
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


ENGINE_KEY_ENV = "COVEY_ENGINE_API_KEY"


@dataclass(frozen=True)
class EngineTarget:
    """The engine Covey talks to."""

    url: str
    """Base URL, without a trailing slash."""
    api_key: str
    """Bearer key for the engine's API ("" when none is known)."""
    managed: bool
    """Covey runs this engine (``covey engine up/down``); False for a URL the user gave."""


def resolve(settings: EngineSettings, *, url: str = "", key: str = "",
            api_key_env: str = ENGINE_KEY_ENV) -> EngineTarget:
    """The one answer to "which engine, with which key": the server, the one-shot
    commands, the eval, training and the demo all ask here.

    A ``url`` given by the caller (``--engine-url``, the editor's ``engine.url``) wins over
    the settings' (the specialists table, or ``COVEY_ENGINE_URL``). Such an engine's key is
    ``key``, else the environment variable ``api_key_env``. Without any URL Covey
    manages a local engine, with the key it created for it.
    """
    remote = (url or settings.url).strip()
    if remote:
        return EngineTarget(remote.rstrip("/"), key or os.environ.get(api_key_env, ""),
                            managed=False)
    port = _read_state().get("port", settings.port)
    return EngineTarget(f"http://{settings.host}:{port}", key or api_key(), managed=True)


def remote_url(table: SpecialistsTable) -> str:
    """The URL of an engine Covey does not manage, or "" when it manages one."""
    return table.engine.url.strip().rstrip("/")


def _read_state() -> dict:
    try:
        return json.loads(_state_file().read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _write_state(state: dict) -> None:
    tmp = _state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(_state_file())


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


# ------------------------------------------------------------------ device and adapters

def detect_device() -> str:
    """The first NVIDIA GPU's name, or ``cpu``."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            if pynvml.nvmlDeviceGetCount() > 0:
                name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
                return name.decode() if isinstance(name, bytes) else str(name)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no library, no device: all mean CPU
        pass
    return "cpu"


def resolve_adapter(spec: Specialist) -> Path | None:
    """The folder of a specialist's adapter, or None for the untuned base."""
    ref = spec.adapter
    if not ref:
        return None
    if ref.startswith("builtin:"):
        path = Path(str(resources.files("covey_specialists").joinpath("adapters", ref[8:])))
    elif Path(ref).expanduser().is_absolute() or ref.startswith("."):
        path = Path(ref).expanduser()
    else:
        path = home.adapters_dir() / ref
    if not (path / "adapter_config.json").is_file():
        raise EngineError(f"specialist {spec.key!r}: adapter {ref!r} not found at {path} "
                          "(no adapter_config.json)")
    return path


# ------------------------------------------------------------------ start / stop

def build_command(table: SpecialistsTable, model_path: str, port: int,
                  adapters: dict[str, Path], device: str) -> list[str]:
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_path, "--served-model-name", BASE_SERVED_NAME,
        "--host", table.engine.host, "--port", str(port),
        "--generation-config", "vllm",  # our decoding settings, not the model's defaults
        "--max-model-len", str(table.engine.max_model_len),
        "--disable-uvicorn-access-log",
    ]
    if device != "cpu":
        cmd += ["--gpu-memory-utilization", str(table.engine.gpu_memory_utilization)]
    # LoRA is always on, with one slot spare, so `covey train` can hot-load a new adapter
    # into the running engine without a restart.
    cmd += ["--enable-lora", "--max-lora-rank", str(table.engine.max_lora_rank),
            "--max-loras", str(len(adapters) + 1)]
    if adapters:
        cmd += ["--lora-modules", *(f"{name}={path}" for name, path in adapters.items())]
    return cmd


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def log_tail(lines: int = 25) -> str:
    try:
        text = log_file().read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _failure_reason(tail: str) -> str:
    """Pick the line of the engine log that explains a failed start."""
    for line in reversed(tail.splitlines()):
        if any(k in line for k in ("Error:", "ERROR", "error:", "Exception")):
            return line.strip()[:300]
    return ""


def up(table: SpecialistsTable, *, wait: bool = True, port: int | None = None) -> EngineStatus:
    """Start the local engine and wait until it answers; refuse a second instance."""
    if remote_url(table):
        raise EngineError(f"the engine is remote ({remote_url(table)}); there is nothing to start")
    current = status(table)
    if current.state in ("up", "starting"):
        raise EngineError(f"an engine is already {current.state} (pid {current.pid}, "
                          f"{current.url}); run `covey engine down` first")
    _cleanup_stale()
    port = port or table.engine.port
    if not _port_free(table.engine.host, port):
        raise EngineError(f"port {port} on {table.engine.host} is busy; free it or set "
                          "[engine] port in $COVEY_HOME/specialists.toml")
    bases = {s.base for s in table.specialists.values()}
    if len(bases) != 1:
        raise EngineError(f"all specialists must share one base model, got {sorted(bases)}")
    try:
        model_path = resolve_base(bases.pop())
    except ModelError as exc:
        raise EngineError(str(exc)) from None
    adapters = {}
    for spec in table.specialists.values():
        path = resolve_adapter(spec)
        if path is not None:
            adapters[spec.key] = path
    device = detect_device()
    cmd = build_command(table, model_path, port, adapters, device)
    env = dict(os.environ)
    env["VLLM_API_KEY"] = api_key(create=True)  # kept out of the process list
    env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(table.engine.cpu_kv_cache_gib))
    env.setdefault("VLLM_LOGGING_LEVEL", "INFO")
    env.setdefault("PYTHONUNBUFFERED", "1")
    with log_file().open("w") as logfh:
        proc = subprocess.Popen(cmd, stdout=logfh, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    _write_state({"pid": proc.pid, "port": port, "host": table.engine.host,
                  "started_at": time.time(), "device": device, "model": model_path,
                  "adapters": {k: str(v) for k, v in adapters.items()}, "command": cmd})
    if not wait:
        return status(table)
    return wait_until_up(table, proc)


def wait_until_up(table: SpecialistsTable, proc: subprocess.Popen | None = None) -> EngineStatus:
    deadline = time.monotonic() + table.engine.start_timeout_s
    state = _read_state()
    url = f"http://{state.get('host', table.engine.host)}:{state.get('port')}"
    while time.monotonic() < deadline:
        exited = proc.poll() if proc else (None if _alive(state.get("pid")) else -1)
        if exited is not None:
            tail = log_tail()
            _cleanup_stale()
            reason = _failure_reason(tail) or f"the engine exited with code {exited}"
            raise EngineError(f"the engine failed to start: {reason}\n--- engine log (tail) ---\n"
                              f"{tail}")
        if _healthy(url):
            return status(table)
        time.sleep(0.5)
    tail = log_tail()
    down(table)
    raise EngineError(f"the engine did not become healthy within "
                      f"{table.engine.start_timeout_s:g}s\n--- engine log (tail) ---\n{tail}")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _cleanup_stale() -> None:
    state = _read_state()
    if state and not _alive(state.get("pid")):
        _state_file().unlink(missing_ok=True)


def down(table: SpecialistsTable, timeout_s: float = 15.0) -> bool:
    """Stop the whole process group. Returns False if nothing was running."""
    if remote_url(table):
        raise EngineError(f"the engine is remote ({remote_url(table)}); there is nothing to stop")
    state = _read_state()
    pid = state.get("pid")
    if not _alive(pid):
        _state_file().unlink(missing_ok=True)
        return False
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if not _group_alive(pid):
            break
    _state_file().unlink(missing_ok=True)
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # only zombies left (our own unreaped children) count as dead
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


# ------------------------------------------------------------------ status

def status(table: SpecialistsTable) -> EngineStatus:
    st = _status(table)
    st.specialists = {
        s.key: {"task": s.task, "model": s.served_name, "adapter": s.adapter,
                "served": s.served_name in st.models}
        for s in table.specialists.values()
    }
    return st


def _status(table: SpecialistsTable) -> EngineStatus:
    target = resolve(table.engine)
    url, key = target.url, target.api_key
    if not target.managed:
        models = _served_models(url, key)
        return EngineStatus(state="remote" if models is not None else "down", url=url,
                            models=models or [], device="remote",
                            reason="" if models is not None else f"no answer from {url}")
    state = _read_state()
    if not state:
        return EngineStatus(state="down", url=url, reason="not started (`covey engine up`)")
    pid = state.get("pid")
    if not _alive(pid):
        reason = _failure_reason(log_tail()) or "the engine process is gone"
        return EngineStatus(state="down", url=url, pid=pid,
                            reason=f"{reason} (`covey engine up` recovers)")
    models = _served_models(url, key)
    uptime = time.time() - state.get("started_at", time.time())
    if models is None:
        return EngineStatus(state="starting", url=url, pid=pid, device=state.get("device", ""),
                            uptime_s=uptime, base_model=state.get("model", ""))
    return EngineStatus(state="up", url=url, pid=pid, device=state.get("device", ""),
                        models=models, uptime_s=round(uptime, 1),
                        base_model=state.get("model", ""))


def _served_models(url: str, key: str) -> list[str] | None:
    try:
        response = httpx.get(f"{url}/v1/models", timeout=2.0,
                             headers={"Authorization": f"Bearer {key}"} if key else {})
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return [m["id"] for m in response.json().get("data", [])]


def ensure_up(table: SpecialistsTable) -> EngineStatus:
    """Start the engine unless it is already up (used by the main job and the server)."""
    current = status(table)
    if current.state in ("up", "remote"):
        return current
    if current.state == "starting":
        return wait_until_up(table)
    return up(table)
