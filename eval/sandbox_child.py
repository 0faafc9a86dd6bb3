"""The first code a sandboxed candidate process runs: limit, drop, confine, then the candidate.

Run as ``python -I -S sandbox_child.py DIR CPU MEM NPROC FSIZE NOFILE UID``. It uses the
standard library only (``-S``: no site-packages) and reads nothing of the candidate before
the limits are set, Landlock confines the process and the uid is dropped: until then the
candidate's source is not even opened, so nothing it names is imported or run with
privileges. With ``--confine`` it wraps ``run_command``'s command instead.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys

# Landlock (Linux >= 5.13), see linux/landlock.h. Rights by the ABI version that added them.
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_WRITE_DIR = sum(1 << bit for bit in range(4, 13))  # remove/make dir, file, sock, fifo...
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_ALL = 1 | 2  # bind_tcp | connect_tcp
_SCOPE_ALL = 1 | 2  # abstract unix sockets | signals
_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446  # the same on every architecture
_PR_SET_NO_NEW_PRIVS = 38
# Readable by a confined candidate besides its directory and the interpreter's own path.
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/dev", "/proc")


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 where Landlock is unavailable."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        version = libc.syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (AttributeError, OSError):
        return 0
    return max(0, int(version))


def landlock(write: list[str], read: list[str] | None, tcp: bool = False) -> int:
    """Confine this process (and what it starts) with Landlock; return the ABI used, 0 if none.

    Writing (creating, removing, renaming, truncating) is allowed only beneath ``write`` and
    to /dev/null; with ``read`` given, reading is allowed only beneath ``read`` and ``write``.
    Unless ``tcp``, TCP bind/connect is denied (ABI 4), on top of the network namespace;
    signals and abstract sockets stay inside (ABI 6).
    """
    abi = landlock_abi()
    if abi < 1:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    fs = _FS_WRITE_FILE | _FS_WRITE_DIR
    fs |= _FS_REFER if abi >= 2 else 0
    fs |= _FS_TRUNCATE if abi >= 3 else 0
    fs |= _FS_IOCTL_DEV if abi >= 5 else 0
    if read is not None:
        fs |= _READ
    fields = [fs, _NET_ALL if abi >= 4 and not tcp else 0, _SCOPE_ALL if abi >= 6 else 0]
    size = 8 * (3 if abi >= 6 else 2 if abi >= 4 else 1)
    attr = (ctypes.c_uint64 * 3)(*fields)
    ruleset = libc.syscall(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        rules = [(path, fs) for path in write] + [("/dev/null", fs)]
        rules += [(path, fs & _READ) for path in read or ()]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH)
            except OSError:
                continue  # e.g. no /lib32 here
            try:
                if not os.path.isdir(path):
                    access &= _FILE_RIGHTS
                rule = _PathBeneath(access, fd)
                if libc.syscall(_SYS_ADD_RULE, ruleset, ctypes.c_int(1), ctypes.byref(rule),
                                ctypes.c_uint32(0)) < 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule({path}) failed")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT, ruleset, ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def _reachable_import_path() -> None:
    """Keep the interpreter's import path usable after dropping to an unprivileged uid.

    An interpreter under a private home (pyenv in /root) cannot be searched by ``nobody``;
    a directory descriptor opened now still can, through /proc/self/fd, and it gives no
    access to anything but that directory's (world-readable) tree. Packages already
    imported (``collections``, ``encodings``) get their ``__path__`` moved the same way.
    """
    moved = {}
    for entry in sys.path:
        if os.path.isdir(entry):
            fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
            moved[entry.rstrip("/")] = f"/proc/self/fd/{fd}"
    sys.path[:] = list(moved.values())
    sys.path_importer_cache.clear()
    for module in list(sys.modules.values()):
        path = getattr(module, "__path__", None)
        if isinstance(path, list):
            path[:] = [_moved(p, moved) for p in path]


def _moved(path: str, moved: dict[str, str]) -> str:
    for old, new in moved.items():
        if path == old or path.startswith(old + "/"):
            return new + path[len(old):]
    return path


def main(argv: list[str]) -> None:
    workdir, cpu, mem, nproc, fsize, nofile, uid = argv
    read = [workdir, *SYSTEM_READ, sys.prefix, sys.base_prefix, sys.exec_prefix,
            os.path.dirname(os.path.realpath(sys.executable)), *sys.path]
    for name in ("utf_16", "utf_32", "latin_1", "ascii", "cp1252", "unicode_escape", "idna"):
        __import__("encodings." + name)  # codecs the candidate may ask for by name
    if uid != "-":
        _reachable_import_path()
        read += sys.path
    for res, value in ((resource.RLIMIT_CPU, int(cpu)),
                       (resource.RLIMIT_AS, int(mem) * 1024 * 1024),
                       (resource.RLIMIT_FSIZE, int(fsize) * 1024 * 1024),
                       (resource.RLIMIT_NOFILE, int(nofile)),
                       (resource.RLIMIT_CORE, 0),
                       (resource.RLIMIT_NPROC, int(nproc))):
        resource.setrlimit(res, (value, value))
    landlock(write=[workdir], read=read)  # before the drop: it may open paths under /root
    if uid != "-":
        os.setgroups([])
        os.setgid(int(uid))
        os.setuid(int(uid))
    os.chdir(workdir)
    # Only now is anything of the candidate read.
    with open("candidate.py", encoding="utf-8") as fh:
        code = compile(fh.read(), "candidate.py", "exec", dont_inherit=True)  # not our flags
    sys.argv = ["candidate.py"]
    exec(code, {"__name__": "__main__", "__builtins__": __builtins__})


def confine_and_exec(argv: list[str]) -> None:
    """``--confine DIR... -- COMMAND...``: allow writes only beneath the DIRs, run COMMAND.

    For ``run_command``: inside the namespaces (``unshare`` must write its uid map first).
    TCP is left to the network namespace (it reaches nothing outside; note that its
    loopback is down, so tests that serve on 127.0.0.1 fail there).
    """
    sep = argv.index("--")
    landlock(write=argv[:sep], read=None, tcp=True)
    os.execvp(argv[sep + 1], argv[sep + 1:])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--confine"]:
        confine_and_exec(sys.argv[2:])
    else:
        main(sys.argv[1:8])
