"""Several processes writing one usage log at once, and a writer killed mid-burst."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlite_utils

from covey_usage import schema

WRITER = textwrap.dedent("""
    import logging, sys, time
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    from covey_usage import open_usage_log
    from covey_usage.calls import ModelCall, new_call_id

    path, name, bursts, per_burst = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    log = open_usage_log(path, meter=False, settle_s=0)
    for burst in range(bursts):
        for i in range(per_burst):
            log.record(ModelCall(
                id=new_call_id(), task="completion", specialist=name, model=name, adapter="",
                base_model="smol", engine_url="http://127.0.0.1:1", started_at=time.time(),
                prompt_tokens=100, completion_tokens=10, latency_ms=5.0,
                prompt_text="p" * 500, completion_text="c" * 50))
        log.flush()
        # everything up to here is committed: tell the parent
        print("committed", log.stats.written, flush=True)
    log.close()
    print("failures", log.stats.failures, "dropped", log.stats.dropped, flush=True)
""")


def spawn(path: Path, name: str, bursts: int, per_burst: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(bursts),
                             str(per_burst)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.slow
def test_three_processes_write_at_once_without_losing_rows(tmp_path: Path):
    path = tmp_path / "usage.db"  # fresh: the three also race to create and migrate it
    bursts, per_burst = 20, 50
    procs = [spawn(path, f"writer{i}", bursts, per_burst) for i in range(3)]
    results = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err, err
        assert out.strip().splitlines()[-1] == "failures 0 dropped 0", out + err
    db = sqlite_utils.Database(path)
    counts = dict(db.execute("SELECT specialist, count(*) FROM calls GROUP BY specialist"))
    assert counts == {f"writer{i}": bursts * per_burst for i in range(3)}
    # each migration applied once, although three processes raced to apply them
    names = [row[0] for row in db.execute("SELECT name FROM _covey_migrations")]
    assert sorted(names) == sorted(name for name, _ in schema.MIGRATIONS)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_a_writer_killed_mid_burst_keeps_every_committed_row(tmp_path: Path):
    path = tmp_path / "usage.db"
    proc = spawn(path, "victim", 10_000, 200)
    committed = 0
    for line in proc.stdout:
        committed = int(line.split()[1])
        if committed >= 3000:
            break
    proc.send_signal(signal.SIGKILL)  # mid-burst: rows are queued and being written
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    db = sqlite_utils.Database(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    count = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    assert count >= committed >= 3000
    # and the log keeps working afterwards
    from covey_usage import open_usage_log
    from covey_usage.calls import ModelCall, new_call_id

    log = open_usage_log(path, meter=False, settle_s=0)
    log.record(ModelCall(id=new_call_id(), task="doc", specialist="doc", model="doc",
                         adapter="", base_model="", engine_url="http://127.0.0.1:1"))
    log.close()
    assert db.execute("SELECT count(*) FROM calls").fetchone()[0] == count + 1
