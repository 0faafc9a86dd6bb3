"""The sandbox against escape attempts. Each test runs a real candidate process."""

import os
import socket
import threading

import pytest

from covey_eval import sandbox

ISO = sandbox.isolation()
needs_drop = pytest.mark.skipif(ISO.run_as is None, reason="candidates run as this user "
                                "(not root): no uid to drop to")
needs_netns = pytest.mark.skipif(not ISO.network, reason="unshare not available here")


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


@needs_drop
def test_cannot_write_outside_its_directory(tmp_path):
    target = tmp_path / "escaped.txt"
    outcome = sandbox.run_python(f"open({str(target)!r}, 'w').write('x')")
    assert outcome.status == "failed" and "PermissionError" in outcome.stderr
    assert not target.exists()


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


@needs_netns
def test_no_network():
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
