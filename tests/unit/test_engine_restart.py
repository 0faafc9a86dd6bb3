"""`covey engine up` after a crash: it waits (bounded) for the dead engine's process group
to release the port, and still refuses at once, in one line, a port held by anything else.

A crash is staged without vLLM: a process-group leader binds the port, forks a child that
keeps it (as vLLM's engine core does) and dies; the engine state file names the leader.
``resolve_base`` stands in for the start itself: reaching it means the port check passed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from helpers.net import free_port

from covey_specialists import engine as manager
from covey_specialists.base_model import ModelError
from covey_specialists.table import load_table

CRASH = """
import os, socket, sys, time
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
if os.fork() == 0:  # the child keeps the port a while after the leader is gone
    time.sleep(float(sys.argv[2]))
    os._exit(0)
os._exit(0)
"""
PASSED = "the port check passed"


@pytest.fixture
def crashed_engine(covey_home, monkeypatch):
    """Stage a crash whose leftover child holds a port for ``hold_s``; returns the port."""
    groups = []

    def stage(hold_s: float) -> int:
        port = free_port()
        leader = subprocess.Popen([sys.executable, "-c", CRASH, str(port), str(hold_s)],
                                  start_new_session=True, stdout=subprocess.DEVNULL)
        assert leader.wait(timeout=30) == 0  # the leader is dead; its child holds the port
        groups.append(leader.pid)
        manager._write_state({"pid": leader.pid, "port": port, "host": "127.0.0.1"})
        return port

    def reached_the_start(ref):
        raise ModelError(PASSED)

    monkeypatch.setattr(manager, "resolve_base", reached_the_start)
    yield stage
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_up_after_a_crash_waits_for_the_dead_engines_port(crashed_engine):
    port = crashed_engine(hold_s=1.0)
    assert not manager._port_free("127.0.0.1", port), "the staged child holds the port"
    with pytest.raises(manager.EngineError, match=PASSED):
        manager.up(load_table(), port=port)
    assert manager._port_free("127.0.0.1", port)


def test_a_port_held_past_the_wait_is_refused_in_one_line(crashed_engine, monkeypatch):
    monkeypatch.setattr(manager, "CRASH_RELEASE_WAIT_S", 1.0)
    port = crashed_engine(hold_s=120.0)
    with pytest.raises(manager.EngineError, match=f"port {port} on 127.0.0.1 is busy") as err:
        manager.up(load_table(), port=port)
    assert "\n" not in str(err.value)


def test_a_busy_port_without_a_crash_is_refused_at_once(covey_home, monkeypatch):
    """No dead engine to wait for: a live listener is someone else's (no wait at all)."""
    monkeypatch.setattr(manager, "CRASH_RELEASE_WAIT_S", 3600.0)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(manager.EngineError, match=f"port {port} .* is busy"):
            manager.up(load_table(), port=port)
