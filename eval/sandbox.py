"""Run untrusted generated code: one process per candidate, with limits and isolation.

Each candidate gets:
- its own process and temporary working directory (removed afterwards);
- CPU-time, address-space, file-size, open-file and process-count limits (``setrlimit``);
- a wall-clock timeout, after which its whole process tree is killed;
- a scrubbed environment (only PATH, HOME=TMPDIR=its directory, LANG), and ``python -I -S``;
- no network and its own PID namespace, through ``unshare``: as root directly, otherwise in
  a user namespace (``unshare --user --map-root-user --net``); killing the namespace's first
  process kills every process the candidate started;
- where the kernel has Landlock (Linux >= 5.13): writing only inside its directory (so not
  /tmp either), reading only there and in system and interpreter directories (not the
  user's home), no TCP, and no signals to processes outside;
- when Covey runs as root, the candidate itself runs as ``nobody``: it cannot read other
  users' files or /proc/*/environ, and RLIMIT_NPROC applies (the kernel exempts root).

Nothing of the candidate is read before the limits, Landlock and the uid drop are in place
(see :mod:`covey_eval.sandbox_child`). Where no network namespace can be had, execution is
refused with :class:`IsolationUnavailable`, never run unisolated. Without Landlock, a
candidate that is not dropped to ``nobody`` can write where the invoking user can
(``describe()`` says so). :func:`isolation` says what this machine gives; the eval report
shows it.
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

from covey_eval import sandbox_child

NOBODY = 65534
UNSHARE = ("unshare", "--net", "--pid", "--fork", "--kill-child")
UNSHARE_USER = ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork",
                "--kill-child")
CHILD = os.path.abspath(sandbox_child.__file__)
TAIL = 2000


class IsolationUnavailable(RuntimeError):
    """Generated code cannot be isolated here; execution-based metrics are refused."""


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 5
    wall_s: float = 10.0
    memory_mb: int = 1024
    """Address-space limit; Python itself needs about 30 MiB."""
    nproc: int = 32
    """Processes the sandbox may start (counted per user; root is exempt, so as root it
    binds candidates, which run as nobody, but not ``run_command``)."""
    file_mb: int = 16
    open_files: int = 64


@dataclass(frozen=True)
class Isolation:
    namespace: tuple[str, ...]
    """The ``unshare`` prefix used, or empty when namespaces are unavailable."""
    run_as: int | None
    """The uid candidates run as, or None to stay the invoking user."""
    landlock: int = 0
    """The kernel's Landlock ABI version (0: none): confines writes and reads."""
    reason: str = ""
    """Why there is no network namespace, when there is none."""

    @property
    def network(self) -> bool:
        return bool(self.namespace)

    def describe(self) -> str:
        parts = ["own process", "rlimits", "wall timeout", "temp dir", "scrubbed env"]
        parts.append("no network + own PID namespace" if self.network
                     else f"NETWORK NOT ISOLATED ({self.reason}): execution refused")
        parts.append(f"landlock v{self.landlock} (writes only in its dir)" if self.landlock
                     else "no landlock (writes wherever its user may)")
        parts.append("runs as nobody" if self.run_as is not None else "runs as the invoking user")
        return ", ".join(parts)

    def require(self) -> None:
        """Raise :class:`IsolationUnavailable` (one line) unless candidates can be isolated."""
        if not self.network:
            raise IsolationUnavailable(
                f"cannot isolate generated code here ({self.reason}); execution-based "
                "metrics (pass@1, tests, behaviour checks) need network isolation")


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
    root = os.geteuid() == 0
    prefix = UNSHARE if root else UNSHARE_USER
    namespace: tuple[str, ...] = ()
    reason = ""
    if not shutil.which(prefix[0]):
        reason = "no unshare command"
    elif _probe([*prefix, "true"]):
        namespace = prefix
    else:
        reason = ("unshare --net is not permitted" if root else
                  "unprivileged user namespaces are not permitted for this user")
    return Isolation(namespace=namespace, run_as=NOBODY if root else None,
                     landlock=sandbox_child.landlock_abi(), reason=reason)


def _probe(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def run_python(source: str, limits: Limits = Limits()) -> Outcome:
    """Run ``source`` as a Python program in a fresh sandbox; exit status 0 means passed.

    Raises :class:`IsolationUnavailable` where the candidate cannot be kept off the network.
    """
    iso = isolation()
    iso.require()
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
        argv = [*iso.namespace, sys.executable, "-I", "-S", CHILD, workdir,
                str(limits.cpu_s), str(limits.memory_mb), str(nproc), str(limits.file_mb),
                str(limits.open_files), uid]
        return _run(argv, workdir, limits.wall_s)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_command(argv: list[str], cwd: str, limits: Limits, env: dict | None = None) -> Outcome:
    """Run a test command (e.g. a repository's pytest) with limits, namespaces and a timeout.

    Unlike :func:`run_python` it runs as the invoking user, because a repository's test
    tooling lives in the user's environment; network and process-tree isolation, the
    process-count limit and (with Landlock) writing only beneath ``cwd`` still apply.
    Raises :class:`IsolationUnavailable` where there is no network isolation.
    """
    iso = isolation()
    iso.require()
    nproc = limits.nproc + (_user_process_count() if os.geteuid() != 0 else 0)
    scratch = tempfile.mkdtemp(prefix="covey-sandbox-tmp-")

    def limit() -> None:
        import resource

        for res, value in ((resource.RLIMIT_CPU, limits.cpu_s),
                           (resource.RLIMIT_AS, limits.memory_mb * 1024 * 1024),
                           (resource.RLIMIT_FSIZE, limits.file_mb * 1024 * 1024),
                           (resource.RLIMIT_NPROC, nproc),
                           (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(res, (value, value))

    confine = ([sys.executable, "-I", "-S", CHILD, "--confine", cwd, scratch, "--"]
               if iso.landlock else [])
    full_env = {**_clean_env(cwd), "TMPDIR": scratch, **(env or {})}
    try:
        return _run([*iso.namespace, *confine, *argv], cwd, limits.wall_s, preexec=limit,
                    env=full_env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_many(sources: Iterable[str], limits: Limits = Limits(), workers: int | None = None,
             on_done: Callable[[int, Outcome], None] | None = None) -> list[Outcome]:
    """Run many programs in parallel sandboxes; results keep the input order."""
    isolation().require()
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
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home,
            "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}

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
