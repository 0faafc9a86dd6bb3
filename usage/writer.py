"""The usage log's writer: the :class:`~covey_usage.calls.CallSink` the server and the
eval harness report every model call to.

``record()`` only puts a copy of the call on a queue, so the asyncio loop never waits on
disk. One background thread runs the pipeline: queue → cost attribution
(:class:`~covey_usage.cost.CostStage`) → one ``BEGIN IMMEDIATE`` transaction per batch.
A locked, read-only, full or corrupt database never raises into the caller: the writer
logs, keeps the batch and retries with backoff, and drops the oldest rows only when its
backlog is full. ``close()`` (also run at exit) writes everything still queued.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import json
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from covey_usage import schema
from covey_usage.calls import FIELD_COLUMNS, TEXT_FIELDS, ModelCall, new_call_id
from covey_usage.cost import CostStage, is_local_engine

log = logging.getLogger("covey.usage")


@dataclass
class WriterStats:
    written: int = 0
    """Call rows committed by this writer."""
    dropped: int = 0
    """Call rows given up on (backlog full, or unwritable at close)."""
    failures: int = 0
    """Write attempts that failed (each is retried)."""
    last_error: str = ""


@dataclass
class _Batch:
    """Work waiting to be committed; kept across failed attempts."""

    rows: list[dict] = field(default_factory=list)
    accepted: list[tuple[str, int | None]] = field(default_factory=list)
    outcomes: list[tuple[str, dict]] = field(default_factory=list)
    runs: list[tuple[str, dict]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rows or self.accepted or self.outcomes or self.runs)


class UsageLog:
    """Append-only log of model calls in ``path`` (see :func:`open_usage_log`)."""

    def __init__(self, path: Path, cost: CostStage, *, store_text: bool = False,
                 batch_max: int = 1000, max_backlog: int = 100_000,
                 busy_timeout_s: float = schema.BUSY_TIMEOUT_S,
                 retry_max_s: float = 30.0):
        self.path = Path(path)
        self.cost = cost
        self.store_text = store_text
        self.stats = WriterStats()
        self._batch_max = batch_max
        self._max_backlog = max_backlog
        self._busy_timeout_s = busy_timeout_s
        self._retry_max_s = retry_max_s
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._db: sqlite_utils.Database | None = None
        self._backlog = _Batch()
        self._accepted_early: dict[str, int | None] = {}
        self._retry_at = 0.0
        self._retry_delay = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="covey-usage-writer",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # ------------------------------------------------------------------ caller side

    def record(self, call: ModelCall) -> None:
        """Queue one finished call; never blocks, never raises.

        Fills an immediate cost estimate on ``call`` (see ``CostStage.estimate``) so the
        caller can show it; the row gets the figures attributed after the settle period.
        """
        if self._closed:
            log.warning("usage log closed; call %s not logged", call.id)
            return
        try:
            self.cost.estimate(call)
        except Exception:  # an estimate is a nicety; never let it stop the record
            log.exception("cost estimate failed for call %s", call.id)
        # A copy: the caller may go on changing its record (e.g. status → escalated).
        self._queue.put(("call", copy.copy(call)))

    def watch_engine(self, url: str, api_key: str) -> None:
        """Read the engine's own served-token counters too, so that the cost of this
        process's calls is shared with every other caller of the same local engine."""
        meter = self.cost.meter
        if meter is not None and is_local_engine(url):
            meter.watch_engine(url, api_key)

    def mark_accepted(self, call_id: str, accepted: bool | None) -> None:
        """The editor reports whether the user kept the suggestion (None: unknown)."""
        self._queue.put(("accept", call_id, None if accepted is None else int(bool(accepted))))

    def mark_outcome(self, call_id: str, fields: dict) -> None:
        """What became of a suggestion (:data:`~covey_usage.schema.SUGGESTION_COLUMNS`,
        any of them): merged into its ``suggestions`` row as it is learned."""
        self._queue.put(("outcome", call_id, dict(fields)))

    def start_eval_run(self, meta: dict) -> str:
        """Open an eval run; calls made for it carry the returned id as ``eval_run_id``."""
        run_id = new_call_id()
        self._queue.put(("run", run_id, {"started_at": time.time(), "meta": dict(meta)}))
        return run_id

    def finish_eval_run(self, run_id: str, summary: dict) -> None:
        self._queue.put(("run", run_id, {"finished_at": time.time(), "summary": dict(summary)}))

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until everything queued so far is committed (or given up); True if done."""
        if not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put(("flush", done))
        return done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        done = threading.Event()
        self._queue.put(("stop", done))
        if not done.wait(timeout):
            log.error("usage log writer did not finish within %ss", timeout)
        self._thread.join(timeout=1)
        if self.cost.meter is not None:
            self.cost.meter.stop()
        atexit.unregister(self.close)

    def __enter__(self) -> UsageLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        stopping = False
        while not stopping:
            waiters: list[threading.Event] = []
            force = False
            ops = self._take(timeout=0.05 if (self.cost.pending or self._backlog) else 0.5)
            for op in ops:
                kind = op[0]
                if kind == "call":
                    self.cost.add(op[1])
                elif kind == "accept":
                    self._accept(op[1], op[2])
                elif kind == "outcome":
                    self._backlog.outcomes.append((op[1], op[2]))
                elif kind == "run":
                    self._backlog.runs.append((op[1], op[2]))
                else:  # flush / stop
                    force = True
                    waiters.append(op[1])
                    stopping = stopping or kind == "stop"
            try:
                self._step(force=force, final=stopping)
            except Exception:  # the writer thread must survive anything
                log.exception("usage log writer step failed")
            for event in waiters:
                event.set()
        if self._db is not None:
            self._db.close()

    def _take(self, timeout: float) -> list[tuple]:
        try:
            ops = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(ops) < self._batch_max:
            try:
                ops.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return ops

    def _accept(self, call_id: str, value: int | None) -> None:
        if any(c.id == call_id for c in self.cost.pending):
            self._accepted_early[call_id] = value  # applied when its row is built
        else:
            self._backlog.accepted.append((call_id, value))

    def _step(self, force: bool, final: bool) -> None:
        for call in self.cost.ready(force=force):
            self._backlog.rows.append(self._row(call))
        self._trim_backlog()
        if not self._backlog or (not force and time.monotonic() < self._retry_at):
            return
        attempts = 3 if final else 1
        for attempt in range(attempts):
            if self._write(self._backlog):
                self._backlog = _Batch()
                self._retry_delay = 0.0
                return
            if attempt + 1 < attempts:
                time.sleep(0.2)
        self._retry_delay = min(max(self._retry_delay * 2, 0.5), self._retry_max_s)
        self._retry_at = time.monotonic() + self._retry_delay
        if final and self._backlog.rows:
            log.error("usage log: %d call rows could not be written to %s and are lost: %s",
                      len(self._backlog.rows), self.path, self.stats.last_error)
            self.stats.dropped += len(self._backlog.rows)

    def _trim_backlog(self) -> None:
        excess = len(self._backlog.rows) - self._max_backlog
        if excess > 0:
            del self._backlog.rows[:excess]
            self.stats.dropped += excess
            log.warning("usage log backlog full; dropped %d oldest rows (%d in all)",
                        excess, self.stats.dropped)

    def _write(self, batch: _Batch) -> bool:
        try:
            db = self._open()
            db.execute("BEGIN IMMEDIATE")
            try:
                for run_id, fields in batch.runs:
                    _write_run(db, run_id, fields)
                if batch.rows:
                    db["calls"].insert_all(batch.rows, pk="id", replace=True,
                                           batch_size=500)
                for call_id, value in batch.accepted:
                    db.execute("UPDATE calls SET accepted = ? WHERE id = ?", [value, call_id])
                for call_id, fields in batch.outcomes:
                    db["suggestions"].upsert({"call_id": call_id, **fields}, pk="call_id")
                db.commit()
            except BaseException:
                db.rollback()
                raise
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)
            return False
        self.stats.written += len(batch.rows)
        return True

    def _open(self) -> sqlite_utils.Database:
        if self._db is None:
            self._db = schema.open_db(self.path, busy_timeout_s=self._busy_timeout_s)
        return self._db

    def _failed(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        self.stats.failures += 1
        if message != self.stats.last_error or self.stats.failures % 100 == 0:
            log.error("usage log %s: write failed (%s); will retry", self.path, message)
        self.stats.last_error = message
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            # e.g. "file is not a database": reopen on the next try in case it was replaced
            self._reset()

    def _reset(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    def _row(self, call: ModelCall) -> dict:
        row = {name: getattr(call, name) for name in FIELD_COLUMNS}
        row["datetime_utc"] = schema.utc_text(call.started_at or time.time())
        row["accepted"] = self._accepted_early.pop(call.id, None)
        for field_name, name in TEXT_FIELDS.items():
            text = getattr(call, field_name)
            row[name] = text if self.store_text else None
            row[f"{name}_chars"] = len(text)
            row[f"{name}_sha256"] = hashlib.sha256(text.encode()).hexdigest() if text else None
        return row


class PricingSink:
    """The usage log as seen by a process that wants the costs of the calls it makes (an
    eval run) without reading them back from the database: every call still goes to the
    log, and a copy is costed here, in this process, by a cost stage of its own with the
    log's prices, meter and settle period, as the writer costs its row. Anything else
    (``watch_engine``, ``mark_accepted`` …) is the log's."""

    def __init__(self, log: UsageLog):
        self.log = log
        self._stage = CostStage(log.cost.prices, log.cost.meter, settle_s=log.cost.settle_s)
        self._priced: dict[str, ModelCall] = {}

    def record(self, call: ModelCall) -> None:
        self.log.record(call)
        self._stage.add(copy.copy(call))  # as recorded: the caller may go on changing it
        self._keep(self._stage.ready())  # costed once their settle period is over

    def priced(self) -> dict[str, ModelCall]:
        """{call id: the call, costed} for every call recorded so far; those still settling
        are costed now, with every call that overlapped them known."""
        self._keep(self._stage.ready(force=True))
        return dict(self._priced)

    def _keep(self, calls: list[ModelCall]) -> None:
        self._priced.update((call.id, call) for call in calls)

    def __getattr__(self, name: str):
        return getattr(self.log, name)


def _write_run(db: sqlite_utils.Database, run_id: str, fields: dict) -> None:
    if "meta" in fields:
        meta = fields["meta"]
        db["eval_runs"].insert({
            "id": run_id, "datetime_utc": schema.utc_text(fields["started_at"]),
            "started_at": fields["started_at"], "name": str(meta.get("name", "")),
            "status": "running", "meta": json.dumps(meta, default=str),
        }, pk="id", replace=True)
    else:
        db.execute("UPDATE eval_runs SET finished_at = ?, status = 'finished', summary = ? "
                   "WHERE id = ?",
                   [fields["finished_at"], json.dumps(fields["summary"], default=str), run_id])
