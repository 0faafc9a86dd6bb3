"""The sandbox against escape attempts. Each test runs a real candidate process.

CI runs this file twice: as root (candidates drop to nobody) and as an unprivileged user
(scripts/test-sandbox-unprivileged.sh; candidates run in a user namespace). The escape tests
do not skip: where this machine cannot isolate, they assert the refusal instead.
"""

import dataclasses
import os
import socket
import sys
import threading

import click
import pytest

from covey_eval import cli as eval_cli
from covey_eval import sandbox
from covey_eval.tasks import Task

ISO = sandbox.isolation()
needs_landlock = pytest.mark.skipif(not ISO.landlock, reason="no Landlock in this kernel: "
                                    "candidates can write to world-writable places")


def refused() -> bool:
    """Without a network namespace every run must be refused, with one line."""
    if ISO.network:
        return False
    with pytest.raises(sandbox.IsolationUnavailable) as info:
        sandbox.run_python("print('never runs')")
    assert "cannot isolate generated code here" in str(info.value)
    assert "\n" not in str(info.value)
    return True


def test_passing_and_failing_programs():
    assert sandbox.run_python("import math\nassert math.isqrt(16) == 4\nprint('ok')").passed
    failed = sandbox.run_python("assert 1 == 2")
    assert failed.status == "failed" and "AssertionError" in failed.stderr


def test_infinite_loop_is_stopped_by_the_cpu_limit():
    outcome = sandbox.run_python("while True:\n    pass", sandbox.Limits(cpu_s=1, wall_s=20))
    assert not outcome.passed


def test_sleeping_forever_hits_the_wall_clock_timeout():
    outcome = sandbox.run_python("import time\ntime.sleep(600)", sandbox.Limits(wall_s=1))
    assert outcome.status == "timeout"


def test_fork_bomb_hits_the_process_limit():
    program = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(100000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError:\n"
        "    print('limited after', n)\n")
    outcome = sandbox.run_python(program, sandbox.Limits(nproc=16, wall_s=20))
    assert "limited after" in outcome.stdout
    forks = int(outcome.stdout.split()[-1])
    assert forks < 16 + (0 if ISO.run_as is not None else sandbox._user_process_count())


def test_huge_allocation_fails_inside_the_candidate():
    outcome = sandbox.run_python("x = bytearray(16 * 1024 ** 3)", sandbox.Limits(memory_mb=512))
    assert outcome.status == "failed" and "MemoryError" in outcome.stderr


def test_cannot_write_outside_its_directory(tmp_path):
    if refused():
        return
    os.chmod(tmp_path, 0o777)  # even a world-writable directory
    target = tmp_path / "escaped.txt"
    outcome = sandbox.run_python(f"open({str(target)!r}, 'w').write('x')")
    assert outcome.status == "failed" and "PermissionError" in outcome.stderr
    assert not target.exists()


@needs_landlock
def test_cannot_write_to_tmp():
    outcome = sandbox.run_python("import os\n"
                                 "open(f'/tmp/covey-escape-{os.getpid()}', 'w').write('x')")
    assert outcome.status == "failed" and "PermissionError" in outcome.stderr


def test_cannot_read_the_invoking_users_files(tmp_path):
    if refused():
        return
    secret = tmp_path / "id_rsa"
    secret.write_text("hunter2-private-key")
    secret.chmod(0o600)
    os.chmod(tmp_path, 0o755)
    outcome = sandbox.run_python(f"print(open({str(secret)!r}).read())")
    assert "hunter2" not in outcome.stdout
    assert outcome.status == "failed" and "PermissionError" in outcome.stderr


def test_limits_and_uid_are_in_place_before_the_candidate_runs():
    if refused():
        return
    outcome = sandbox.run_python(
        "import os, resource\n"
        "print(os.getuid(), resource.getrlimit(resource.RLIMIT_NPROC)[0],"
        " resource.getrlimit(resource.RLIMIT_CPU)[0])", sandbox.Limits(cpu_s=2))
    assert outcome.passed, outcome.stderr
    uid, nproc, cpu = map(int, outcome.stdout.split())
    assert cpu == 2 and nproc > 0
    if ISO.run_as is not None:
        assert uid == ISO.run_as


def test_can_write_inside_its_directory():
    assert sandbox.run_python("open('scratch.txt', 'w').write('x')\n"
                              "assert open('scratch.txt').read() == 'x'").passed


def test_environment_secrets_are_not_visible(monkeypatch):
    monkeypatch.setenv("COVEY_TEST_SECRET", "hunter2-secret-value")
    program = (
        "import os, glob\n"
        "print(dict(os.environ))\n"
        "for path in glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        print(open(path, 'rb').read().decode('latin-1'))\n"
        "    except OSError:\n"
        "        pass\n")
    outcome = sandbox.run_python(program, sandbox.Limits(wall_s=30))
    assert outcome.passed
    assert "hunter2-secret-value" not in outcome.stdout
    assert "COVEY_TEST_SECRET" not in outcome.stdout


def test_no_network():
    if refused():
        return
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    thread.start()
    try:
        outcome = sandbox.run_python(
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)")
    finally:
        server.close()
    assert outcome.status == "failed" and "Errno" in outcome.stderr
    assert not accepted


def test_run_many_keeps_order():
    outs = sandbox.run_many([f"import sys\nsys.exit({i % 2})" for i in range(6)], workers=3)
    assert [o.passed for o in outs] == [True, False] * 3


def test_workdir_is_removed_afterwards():
    outcome = sandbox.run_python("import os\nprint(os.getcwd())")
    assert outcome.passed
    assert not os.path.exists(outcome.stdout.strip())


def test_run_command_has_limits_and_no_network(tmp_path):
    if refused():
        return
    program = ("import resource, socket\n"
               "print(resource.getrlimit(resource.RLIMIT_NPROC)[0])\n"
               "socket.create_connection(('127.0.0.1', 9), timeout=3)\n")
    outcome = sandbox.run_command([sys.executable, "-I", "-c", program], str(tmp_path),
                                  sandbox.Limits(nproc=8))
    assert outcome.status == "failed" and "Errno" in outcome.stderr
    assert int(outcome.stdout.split()[0]) > 0


def test_without_network_isolation_execution_is_refused(monkeypatch):
    bare = dataclasses.replace(ISO, namespace=(), reason="no unshare command")
    monkeypatch.setattr(sandbox, "isolation", lambda: bare)
    with pytest.raises(sandbox.IsolationUnavailable, match="no unshare command"):
        sandbox.run_python("print('never runs')")
    with pytest.raises(sandbox.IsolationUnavailable):
        sandbox.run_command(["true"], ".", sandbox.Limits())
    task = Task(id="t", suite="humaneval", kind="completion", stratum="s", test="assert 1")
    with pytest.raises(click.ClickException) as info:
        eval_cli._require_isolation([task])
    assert info.value.message.startswith("cannot isolate generated code here (no unshare")
    assert "pass@1" in info.value.message and "\n" not in info.value.message
    eval_cli._require_isolation([dataclasses.replace(task, test="")])  # nothing to run: fine


def test_isolation_probe_reports_why_it_failed(monkeypatch):
    sandbox.isolation.cache_clear()
    monkeypatch.setattr(sandbox, "_probe", lambda argv: False)
    try:
        iso = sandbox.isolation()
        assert not iso.network and "not permitted" in iso.reason
        assert "NETWORK NOT ISOLATED" in iso.describe()
    finally:
        sandbox.isolation.cache_clear()

