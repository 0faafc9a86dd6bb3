"""Run untrusted generated code: one process per candidate, with limits and isolation.

Each candidate gets:
- its own process and temporary working directory (removed afterwards);
- CPU-time, address-space, file-size, open-file and process-count limits (``setrlimit``);
- a wall-clock timeout, after which its whole process tree is killed;
- a scrubbed environment (only PATH, HOME=its directory, LANG), and ``python -I -S``;
- no network and its own PID namespace when ``unshare`` works here (root, or a kernel that
  allows unprivileged user namespaces); killing the namespace's first process kills every
  process the candidate started;
- when Covey runs as root, the candidate itself runs as ``nobody``: it cannot write outside
  its directory (except world-writable places such as /tmp, bounded by the file-size limit),
  cannot read other users' files or /proc/*/environ, and RLIMIT_NPROC applies (the kernel
  exempts root from it). Python cannot import modules as ``nobody`` when the interpreter
  lives under a private home (pyenv in /root), so the modules the candidate imports
  statically are loaded before the privileges are dropped.

:func:`isolation` says which of these this machine gives; the eval report shows it.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

NOBODY = 65534
UNSHARE = ("unshare", "--net", "--pid", "--fork", "--kill-child")
UNSHARE_USER = ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork",
                "--kill-child")
TAIL = 2000


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 5
    wall_s: float = 10.0
    memory_mb: int = 1024
    """Address-space limit; Python itself needs about 30 MiB."""
    nproc: int = 32
    """Processes the sandbox user may have in all (only enforced for non-root users)."""
    file_mb: int = 16
    open_files: int = 64


@dataclass(frozen=True)
class Isolation:
    namespace: tuple[str, ...]
    """The ``unshare`` prefix used, or empty when namespaces are unavailable."""
    run_as: int | None
    """The uid candidates run as, or None to stay the invoking user."""

    @property
    def network(self) -> bool:
        return bool(self.namespace)

    def describe(self) -> str:
        parts = ["own process", "rlimits", "wall timeout", "temp dir", "scrubbed env"]
        parts.append("no network + own PID namespace" if self.network
                     else "NETWORK NOT ISOLATED (unshare unavailable)")
        parts.append("runs as nobody" if self.run_as is not None else "runs as the invoking user")
        return ", ".join(parts)


@dataclass
class Outcome:
    status: str
    """``passed`` (exit 0), ``failed`` (non-zero exit), ``timeout`` or ``error``."""
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@functools.cache
def isolation() -> Isolation:
    """Probe once what this machine allows."""
    namespace: tuple[str, ...] = ()
    candidates = [UNSHARE] if os.geteuid() == 0 else [UNSHARE_USER]
    for prefix in candidates:
        if shutil.which(prefix[0]) and _probe([*prefix, "true"]):
            namespace = prefix
            break
    return Isolation(namespace=namespace, run_as=NOBODY if os.geteuid() == 0 else None)


def _probe(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


# Runs inside the sandbox process before the candidate: pre-import, limit, drop, run.
_BOOTSTRAP = r"""
import ast, os, resource, sys
d, cpu, mem, nproc, fsize, nofile, uid = sys.argv[1:8]
src = open(os.path.join(d, "candidate.py"), encoding="utf-8").read()
try:
    tree = ast.parse(src)
except SyntaxError:
    tree = None
if tree is not None:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(node.module + "." + a.name for a in node.names)
    for name in sorted(names):
        try:
            __import__(name)
        except BaseException:
            pass
for enc in ("utf_16", "utf_32", "latin_1", "ascii", "cp1252", "unicode_escape", "idna"):
    __import__("encodings." + enc)
def lim(res, value):
    resource.setrlimit(res, (value, value))
lim(resource.RLIMIT_CPU, int(cpu))
lim(resource.RLIMIT_AS, int(mem) * 1024 * 1024)
lim(resource.RLIMIT_FSIZE, int(fsize) * 1024 * 1024)
lim(resource.RLIMIT_NOFILE, int(nofile))
lim(resource.RLIMIT_CORE, 0)
lim(resource.RLIMIT_NPROC, int(nproc))
if uid != "-":
    os.setgroups([])
    os.setgid(int(uid))
    os.setuid(int(uid))
os.chdir(d)
sys.argv = ["candidate.py"]
code = compile(open("candidate.py", encoding="utf-8").read(), "candidate.py", "exec")
exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
"""


def run_python(source: str, limits: Limits = Limits()) -> Outcome:
    """Run ``source`` as a Python program in a fresh sandbox; exit status 0 means passed."""
    iso = isolation()
    workdir = tempfile.mkdtemp(prefix="covey-sandbox-")
    try:
        path = os.path.join(workdir, "candidate.py")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(source)
        if iso.run_as is not None:
            os.chown(workdir, iso.run_as, iso.run_as)
            os.chown(path, iso.run_as, iso.run_as)
        nproc = limits.nproc if iso.run_as is not None else _user_process_count() + limits.nproc
        uid = "-" if iso.run_as is None else str(iso.run_as)
        argv = [*iso.namespace, sys.executable, "-I", "-S", "-c", _BOOTSTRAP, workdir,
                str(limits.cpu_s), str(limits.memory_mb), str(nproc), str(limits.file_mb),
                str(limits.open_files), uid]
        return _run(argv, workdir, limits.wall_s)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_command(argv: list[str], cwd: str, limits: Limits, env: dict | None = None) -> Outcome:
    """Run a test command (e.g. a repository's pytest) with limits, namespaces and a timeout.

    Unlike :func:`run_python` it runs as the invoking user, because a repository's test
    tooling lives in the user's environment; network and process-tree isolation still apply.
    """
    iso = isolation()

    def limit() -> None:
        import resource

        for res, value in ((resource.RLIMIT_CPU, limits.cpu_s),
                           (resource.RLIMIT_AS, limits.memory_mb * 1024 * 1024),
                           (resource.RLIMIT_FSIZE, limits.file_mb * 1024 * 1024),
                           (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(res, (value, value))

    full_env = {**_clean_env(cwd), **(env or {})}
    return _run([*iso.namespace, *argv], cwd, limits.wall_s, preexec=limit, env=full_env)


def run_many(sources: Iterable[str], limits: Limits = Limits(), workers: int | None = None,
             on_done: Callable[[int, Outcome], None] | None = None) -> list[Outcome]:
    """Run many programs in parallel sandboxes; results keep the input order."""
    sources = list(sources)
    results: list[Outcome | None] = [None] * len(sources)
    workers = workers or max(1, os.cpu_count() or 1)

    def one(i: int) -> None:
        results[i] = run_python(sources[i], limits)
        if on_done:
            on_done(i, results[i])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(len(sources))))
    return results  # type: ignore[return-value]


def _clean_env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1"}


def _run(argv: list[str], cwd: str, wall_s: float, preexec=None,
         env: dict | None = None) -> Outcome:
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env or _clean_env(cwd),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=preexec)
    except OSError as exc:
        return Outcome("error", None, "", f"could not start sandbox: {exc}", 0.0)
    try:
        out, err = proc.communicate(timeout=wall_s)
        status = "passed" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        status = "timeout"
    finally:
        _kill_group(proc.pid)  # anything the candidate left behind in its session
    return Outcome(status, proc.returncode, out.decode("utf-8", "replace")[-TAIL:],
                   err.decode("utf-8", "replace")[-TAIL:], time.perf_counter() - started)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _user_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count
