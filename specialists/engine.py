"""The engine manager: one local vLLM process serving the base model plus every
specialist's LoRA adapter, bound to 127.0.0.1, with a random API key checked on every
route (``engine_guard``; docs/engine-security.md says why vLLM's own check is not enough).

State lives in ``$COVEY_HOME/engine/`` (mode 0700): ``api_key`` (mode 0600, refused when
wider or someone else's), ``engine.json`` (pid, port, what is served), ``routes.json``
(the routes the running app registers) and ``engine.log``. A non-loopback ``[engine] host``
needs ``allow_remote = true``. A user can instead point Covey at an existing engine with
``[engine] url`` in the specialists table or ``COVEY_ENGINE_URL``; Covey then sends
``COVEY_ENGINE_API_KEY`` and changes nothing else. :func:`resolve` is the one place that
decides which engine and key Covey uses.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from stat import S_IMODE

import httpx
import psutil

from covey_settings import home, tls
from covey_specialists import model_registry, team, vllm_cpu_lora
from covey_specialists.base_model import ModelError, resolve_base
from covey_specialists.engine_guard import REQUEST_LOG_ENV, ROUTES_ENV, TEAM_KEYS_ENV
from covey_specialists.table import PARALLELISM, EngineSettings, Specialist, SpecialistsTable
from covey_usage import sessions
from covey_usage.energy import energy_counter_now

log = logging.getLogger("covey.engine")

BASE_SERVED_NAME = "base"
GUARD = "covey_specialists.engine_guard.KeyGuard"
"""vLLM ``--middleware`` that checks the API key on every route, not only under /v1."""
REMOTE_KEY_MIN_CHARS = 32


class EngineError(RuntimeError):
    """The engine cannot be started, reached or stopped; the message says why."""


@dataclass
class EngineStatus:
    state: str
    """up, down, starting or remote."""
    url: str
    """Where clients reach the engine (HTTP; every route wants the bearer key)."""
    key: str = ""
    """Where that key comes from: the key file, or ``$COVEY_ENGINE_API_KEY`` (remote)."""
    listen: str = ""
    """host:port the local engine is bound to; empty for a remote engine."""
    pid: int | None = None
    device: str = ""
    models: list[str] = field(default_factory=list)
    uptime_s: float | None = None
    reason: str = ""
    base_model: str = ""
    lora: str = ""
    """How LoRA runs: ``vllm`` (its own kernels), ``cpu-grouped-compiled`` or ``cpu-grouped``
    (see :func:`lora_mode`)."""
    model_cores: str = ""
    """On CPU, which cores the model computes on (see :func:`cpu_model_cores`)."""
    specialists: dict[str, dict] = field(default_factory=dict)
    """Each specialist's served model name and whether the engine serves it."""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# ------------------------------------------------------------------ files and endpoint

def _state_file() -> Path:
    return home.engine_dir() / "engine.json"


def log_file() -> Path:
    return home.engine_dir() / "engine.log"


def key_file() -> Path:
    return home.engine_dir() / "api_key"


def routes_file() -> Path:
    """The routes the running engine's app registers, written by the guard at startup."""
    return home.engine_dir() / "routes.json"


def api_key(create: bool = False) -> str:
    """The local engine's API key; created with mode 0600 when asked.

    A key file wider than 0600 or owned by someone else is refused: anyone who can read it
    can use the engine."""
    path = key_file()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        fd = None
    except OSError as exc:
        raise EngineError(f"cannot read the engine key {path}: {exc.strerror}; remove it "
                          f"(`rm {path}`) and `covey engine up` makes a new one") from None
    if fd is not None:
        with os.fdopen(fd) as fh:
            check_key_file(path, os.fstat(fh.fileno()))
            return fh.read().strip()
    if not create:
        return ""
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def check_key_file(path: Path, st: os.stat_result) -> None:
    """Refuse, in one line naming the file and the fix, a key others could read."""
    if st.st_uid != os.getuid():
        raise EngineError(f"refusing the engine key {path}: it belongs to uid {st.st_uid}, "
                          f"not to you (uid {os.getuid()}); remove it (`rm {path}`) and "
                          "`covey engine up` makes a new one")
    mode = S_IMODE(st.st_mode)
    if mode & ~0o600:
        raise EngineError(f"refusing the engine key {path}: mode {mode:04o} is wider than "
                          f"0600; run `chmod 600 {path}`")


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
    manages a local engine, with the key it created for it, sent as a bearer token on
    every request.
    """
    remote = (url or settings.url).strip()
    if remote:
        return EngineTarget(remote.rstrip("/"), key or os.environ.get(api_key_env, ""),
                            managed=False)
    state = _read_state()
    port = state.get("port", settings.port)
    tls_on = state.get("tls", bool(settings.ssl_certfile))
    return EngineTarget(_local_url(state.get("host", settings.host), port, tls_on),
                        key or api_key(), managed=True)


def remote_url(table: SpecialistsTable) -> str:
    """The URL of an engine Covey does not manage, or "" when it manages one."""
    return table.engine.url.strip().rstrip("/")


def _local_url(host: str, port: int, tls_on: bool = False) -> str:
    """The URL that reaches an engine bound to ``host``: a wildcard bind is reached on
    loopback."""
    connect = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    scheme = "https" if tls_on else "http"
    return f"{scheme}://[{connect}]:{port}" if ":" in connect else f"{scheme}://{connect}:{port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a hostname other than localhost, or empty (every interface)
        return False


def check_exposure(settings: EngineSettings) -> str:
    """Refuse a non-loopback ``host`` unless ``allow_remote`` is set; return the warning to
    give when it is (empty for loopback)."""
    host = settings.host
    if is_loopback(host):
        return ""
    if not settings.allow_remote:
        raise EngineError(f"refusing to start the engine on {host or 'every interface'!r}: "
                          "it would be reachable from the network; use host = \"127.0.0.1\", "
                          "or set allow_remote = true under [engine] in "
                          "$COVEY_HOME/specialists.toml if you mean it")
    return (f"WARNING: the engine listens on {host}:{settings.port} (allow_remote = true): "
            "anyone on the network who has the key in "
            f"{key_file()} can use it, and HTTP sends it unencrypted")


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
    check_adapter_base(spec, path)
    return path


def check_adapter_base(spec: Specialist, path: Path) -> None:
    """Refuse an adapter trained on another base than the specialist's: its weights would
    not fit, or would fit and mean nothing."""
    try:
        recorded = json.loads((path / "adapter_config.json").read_text()).get(
            "base_model_name_or_path") or ""
    except (OSError, ValueError):
        raise EngineError(f"specialist {spec.key!r}: {path}/adapter_config.json is not "
                          "readable JSON") from None
    if recorded and not model_registry.same_base(recorded, spec.base):
        raise EngineError(
            f"specialist {spec.key!r}: adapter {spec.adapter!r} was trained on {recorded}, "
            f"not on the base {model_registry.base_name(spec.base)}; train one for this base "
            f"(`covey train {spec.task}`) or set its adapter to \"\" to serve the untuned base")


# ------------------------------------------------------------------ start / stop

CPU_GROUPED = "cpu-grouped"
CPU_COMPILED = "cpu-grouped-compiled"


def lora_mode(device: str, env: dict[str, str]) -> str:
    """How the engine runs LoRA. On GPU, vLLM's own kernels (multi-LoRA is cheap there). On
    CPU, vLLM has none and its PyTorch fallback copies each adapter matrix per token, so
    Covey swaps in grouped products (:mod:`covey_specialists.vllm_cpu_lora`), compiled with
    the rest of the model unless ``COVEY_CPU_COMPILE=off``. ``COVEY_CPU_LORA=off`` keeps
    vLLM's fallback (benchmarks compare). Without a C++ compiler the plugin cannot build its
    op, and vLLM runs the grouped products uncompiled."""
    if device != "cpu" or env.get(vllm_cpu_lora.ENV) != vllm_cpu_lora.MODE:
        return "vllm"
    if env.get(vllm_cpu_lora.COMPILE_ENV) == "off" or not shutil.which(env.get("CXX", "c++")):
        return CPU_GROUPED
    return CPU_COMPILED


EDITOR_CORES = "all but one (kept for vLLM's front end and the editor)"


def cpu_model_cores(env: dict[str, str], all_cores: bool) -> str:
    """Which cores the CPU engine's model computes on, as ``status`` names them; with
    ``all_cores`` it sets ``env`` so vLLM keeps none back. vLLM keeps one for its front end
    by default, and the editor is faster that way (VS Code p50 505 against 648 ms on two
    cores); a batch job such as an eval eight requests wide gets through faster with every
    core (README: "Other CPU settings")."""
    if env.get("VLLM_CPU_OMP_THREADS_BIND", "auto") != "auto":  # the user's own binding
        return f"VLLM_CPU_OMP_THREADS_BIND={env['VLLM_CPU_OMP_THREADS_BIND']}"
    if all_cores:
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
        return "all (for batch jobs)"
    if "VLLM_CPU_NUM_OF_RESERVED_CPU" in env:
        return f"all but VLLM_CPU_NUM_OF_RESERVED_CPU={env['VLLM_CPU_NUM_OF_RESERVED_CPU']}"
    return EDITOR_CORES


def build_command(table: SpecialistsTable, model_path: str, port: int,
                  adapters: dict[str, Path], device: str) -> list[str]:
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_path, "--served-model-name", BASE_SERVED_NAME,
        "--host", table.engine.host, "--port", str(port),
        "--generation-config", "vllm",  # our decoding settings, not the model's defaults
        "--max-model-len", str(table.engine.max_model_len),
        "--disable-uvicorn-access-log",
        "--middleware", GUARD,  # the key on every route; VLLM_API_KEY covers only /v1 & co.
    ]
    if device != "cpu":
        cmd += ["--gpu-memory-utilization", str(table.engine.gpu_memory_utilization)]
    # LoRA is always on, with one slot spare, so `covey train` can hot-load a new adapter
    # into the running engine without a restart.
    cmd += ["--enable-lora", "--max-lora-rank", str(table.engine.max_lora_rank),
            "--max-loras", str(len(adapters) + 1)]
    if adapters:
        cmd += ["--lora-modules", *(f"{name}={path}" for name, path in adapters.items())]
    settings = table.engine
    if settings.ssl_certfile:
        cmd += ["--ssl-certfile", settings.ssl_certfile, "--ssl-keyfile", settings.ssl_keyfile]
    for name in PARALLELISM:
        if getattr(settings, name) > 1:
            cmd += [f"--{name.replace('_', '-')}", str(getattr(settings, name))]
    return cmd + list(settings.extra_args)


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


def up(table: SpecialistsTable, *, wait: bool = True, port: int | None = None,
       all_cores: bool = False) -> EngineStatus:
    """Start the local engine and wait until it answers; refuse a second instance.
    ``all_cores``: on CPU the model computes on every core (:func:`cpu_model_cores`)."""
    if remote_url(table):
        raise EngineError(f"the engine is remote ({remote_url(table)}); there is nothing to start")
    exposure = check_exposure(table.engine)  # before anything listens
    current = status(table)
    if current.state in ("up", "starting"):
        raise EngineError(f"an engine is already {current.state} (pid {current.pid}, "
                          f"{current.url}); run `covey engine down` first")
    crashed = _cleanup_stale()
    port = port or table.engine.port
    if not _port_released(table.engine.host, port, crashed):
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
    for spec in table.served_specialists():
        path = resolve_adapter(spec)
        if path is not None:
            adapters[spec.key] = path
    for path in filter(None, (table.engine.ssl_certfile, table.engine.ssl_keyfile,
                              table.engine.ssl_ca_file)):
        if not os.access(path, os.R_OK):
            raise EngineError(f"cannot read {path} (TLS, [engine] in the specialists table)")
    os.chmod(home.engine_dir(), 0o700)
    key = api_key(create=True)
    if exposure and len(key) < REMOTE_KEY_MIN_CHARS:
        raise EngineError(f"refusing to expose the engine with a {len(key)}-character key in "
                          f"{key_file()}: remove it (`rm {key_file()}`) and Covey makes a "
                          "strong one")
    if exposure:
        log.warning("%s", exposure)
    device = detect_device()
    cmd = build_command(table, model_path, port, adapters, device)
    routes_file().unlink(missing_ok=True)
    env = dict(os.environ)
    env["VLLM_API_KEY"] = key  # kept out of the process list; the guard reads it too
    env[ROUTES_ENV] = str(routes_file())
    env[TEAM_KEYS_ENV] = str(team.keys_file())  # the team's keys, re-read as they change
    env[REQUEST_LOG_ENV] = str(team.requests_file())
    env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(table.engine.cpu_kv_cache_gib))
    if device == "cpu":
        env.setdefault(vllm_cpu_lora.ENV, vllm_cpu_lora.MODE)
    mode = lora_mode(device, env)
    cores = cpu_model_cores(env, all_cores) if device == "cpu" else ""
    env.setdefault("VLLM_LOGGING_LEVEL", "INFO")
    env.setdefault("PYTHONUNBUFFERED", "1")
    with log_file().open("w") as logfh:
        proc = subprocess.Popen(cmd, stdout=logfh, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    tls_on = bool(table.engine.ssl_certfile)
    _write_state({"pid": proc.pid, "port": port, "host": table.engine.host,
                  "started_at": time.time(), "device": device, "lora": mode,
                  "model_cores": cores, "tls": tls_on,
                  "model": model_path,
                  "adapters": {k: str(v) for k, v in adapters.items()}, "command": cmd})
    url = _local_url(table.engine.host, port, tls_on)
    if tls_on:  # Covey's own calls verify the engine against its certificate
        tls.remember_managed(url, table.engine.ssl_ca_file or table.engine.ssl_certfile)
    else:
        tls.forget_managed()
    _session_started(url, proc.pid, device)
    if not wait:
        return status(table)
    return wait_until_up(table, proc)


def wait_until_up(table: SpecialistsTable, proc: subprocess.Popen | None = None) -> EngineStatus:
    deadline = time.monotonic() + table.engine.start_timeout_s
    target = resolve(table.engine)
    url, key = target.url, target.api_key
    state = _read_state()
    while time.monotonic() < deadline:
        exited = proc.poll() if proc else (None if _alive(state.get("pid")) else -1)
        if exited is not None:
            tail = log_tail()
            _cleanup_stale()
            reason = _failure_reason(tail) or f"the engine exited with code {exited}"
            raise EngineError(f"the engine failed to start: {reason}\n--- engine log (tail) ---\n"
                              f"{tail}")
        if _healthy(url, key):
            return status(table)
        time.sleep(0.5)
    tail = log_tail()
    down(table)
    raise EngineError(f"the engine did not become healthy within "
                      f"{table.engine.start_timeout_s:g}s\n--- engine log (tail) ---\n{tail}")


def _healthy(url: str, key: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0, verify=tls.verify_for(url),
                         headers={"Authorization": f"Bearer {key}"}).status_code == 200
    except httpx.HTTPError:
        return False


def _cleanup_stale() -> dict:
    """Forget an engine whose process is gone; returns its state (empty if none). Its
    session ends when its log was last written (the best record of when it died)."""
    state = _read_state()
    if state and not _alive(state.get("pid")):
        try:
            ended = log_file().stat().st_mtime
        except OSError:
            ended = state.get("started_at")
        _session_stopped(state.get("pid"), "exited", ended)
        _state_file().unlink(missing_ok=True)
        return state
    return {}


def _session_started(url: str, pid: int, device: str) -> None:
    """Record the engine's start in the usage log (its uptime is charged as idle time)."""
    try:
        sessions.record_start(home.usage_db_path(), engine_url=url, pid=pid,
                              device="cpu" if device == "cpu" else f"cuda:{device}",
                              energy_j=energy_counter_now())
    except Exception as exc:  # the engine runs even when its uptime cannot be recorded
        log.warning("could not record the engine session in the usage log: %s", exc)


def _session_stopped(pid: int | None, reason: str, at: float | None = None) -> None:
    if not pid:
        return
    try:
        sessions.record_stop(home.usage_db_path(), pid=pid, reason=reason, stopped_at=at,
                             energy_j=energy_counter_now())
    except Exception as exc:
        log.warning("could not record the engine's stop in the usage log: %s", exc)


CRASH_RELEASE_WAIT_S = 20.0
"""How long ``up`` waits, after a crash, for the dead engine's processes and port to go."""


def _port_released(host: str, port: int, crashed: dict) -> bool:
    """Whether ``port`` is free to listen on. After a crash (``crashed`` is the dead
    engine's state) the rest of its process group may hold the port for a few seconds
    while it dies: wait, bounded, for the group to go and the port to close. A port held
    by anything else is answered at once."""
    if _port_free(host, port):
        return True
    if not crashed.get("pid") or crashed.get("port") != port:
        return False
    deadline = time.monotonic() + CRASH_RELEASE_WAIT_S
    log.info("waiting up to %gs for the crashed engine (group %s) to release port %s",
             CRASH_RELEASE_WAIT_S, crashed["pid"], port)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if not _group_alive(crashed["pid"]) and _port_free(host, port):
            return True
    return _port_free(host, port)


def down(table: SpecialistsTable | None, timeout_s: float = 15.0) -> bool:
    """Stop the whole process group. Returns False if nothing was running. The state file
    names the engine Covey started, so stopping it needs no table (``None``: the table
    does not load): an edited specialists.toml must not strand a running engine."""
    state = _read_state()
    pid = state.get("pid")
    if not _alive(pid):
        _cleanup_stale()
        _state_file().unlink(missing_ok=True)
        if table is not None and remote_url(table):
            raise EngineError(f"the engine is remote ({remote_url(table)}); there is nothing "
                              "to stop")
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
    _session_stopped(pid, "stopped")
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
        for s in table.served_specialists()
    }
    return st


def _status(table: SpecialistsTable) -> EngineStatus:
    target = resolve(table.engine)
    url, key = target.url, target.api_key
    if not target.managed:
        models = _served_models(url, key)
        return EngineStatus(state="remote" if models is not None else "down", url=url,
                            key="$COVEY_ENGINE_API_KEY" if key else "",
                            models=models or [], device="remote",
                            reason="" if models is not None else f"no answer from {url}")
    state = _read_state()
    reach = {"url": url, "key": str(key_file()),
             "listen": f"{state.get('host', table.engine.host)}:"
                       f"{state.get('port', table.engine.port)}"}
    if not state:
        return EngineStatus(state="down", **reach, reason="not started (`covey engine up`)")
    pid = state.get("pid")
    if not _alive(pid):
        reason = _failure_reason(log_tail()) or "the engine process is gone"
        return EngineStatus(state="down", **reach, pid=pid,
                            reason=f"{reason} (`covey engine up` recovers)")
    models = _served_models(url, key)
    uptime = time.time() - state.get("started_at", time.time())
    if models is None:
        return EngineStatus(state="starting", **reach, pid=pid, device=state.get("device", ""),
                            uptime_s=uptime, base_model=state.get("model", ""))
    return EngineStatus(state="up", **reach, pid=pid, device=state.get("device", ""),
                        models=models, uptime_s=round(uptime, 1),
                        base_model=state.get("model", ""), lora=state.get("lora", ""),
                        model_cores=state.get("model_cores", ""))


def _served_models(url: str, key: str) -> list[str] | None:
    try:
        response = httpx.get(f"{url}/v1/models", timeout=2.0, verify=tls.verify_for(url),
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
