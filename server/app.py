"""The Covey language server: its state (one :class:`Session` per connection) and setup.

Handlers live one feature per file (``features_*.py``); each reads the document, calls one
pure function and converts the result. This module owns the lifecycle: initialize (config,
specialists table, engine client, usage log), document sync, and the one-time notices.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from lsprotocol import types
from pygls.exceptions import JsonRpcServerNotInitialized
from pygls.lsp.server import LanguageServer

from covey_server import __version__, protocol
from covey_server.completion_cache import CompletionCache
from covey_server.config import ServerConfig, debounce_s, load_config
from covey_server.feedback import Feedback
from covey_server.next_edit_outcomes import NextEditOutcomes
from covey_server.scheduler import Scheduler
from covey_server.workspace import WorkspaceService, WorkspaceState, roots_from
from covey_specialists import engine
from covey_specialists.baseline import BaselineClient, BaselineConfig
from covey_specialists.client import EngineClient
from covey_specialists.document import DocumentStore
from covey_specialists.edit_history import EditHistory
from covey_specialists.engine import EngineTarget
from covey_specialists.routing import Router
from covey_specialists.table import SpecialistsTable, TableError, load_table
from covey_usage.calls import CallSink, LogSink, ModelCall
from covey_usage.schema import RETENTION_COLUMNS

log = logging.getLogger("covey.server")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Bodies announced as larger are not read (a hostile Content-Length must not make the
server allocate it); their bytes are then skipped as header noise."""
MAX_HEADER_LINE = 64 * 1024
OVERSIZED = b'{"jsonrpc": "2.0", "method": "$/covey/oversizedMessage"}'
"""Handed to pygls in place of a body that was not read: a notification it ignores."""


class BoundedInput:
    """stdin for pygls' reader with bounded reads: a header line is read at most
    ``MAX_HEADER_LINE`` bytes at a time, and a body above ``MAX_MESSAGE_BYTES`` is refused
    (pygls would allocate the announced length at once: MemoryError, and the server died)."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw

    def readline(self) -> bytes:
        return self.raw.readline(MAX_HEADER_LINE)

    def read(self, n: int) -> bytes:
        if n > MAX_MESSAGE_BYTES:
            log.warning("ignored a message of %d bytes (at most %d)", n, MAX_MESSAGE_BYTES)
            return OVERSIZED
        return self.raw.read(n)


class NotifyingSink:
    """Records each call in the usage log, then tells the editor (``covey/callFinished``)."""

    def __init__(self, inner: CallSink, notify):
        self.inner = inner
        self.notify = notify

    def record(self, call: ModelCall) -> None:
        try:
            self.inner.record(call)
        finally:
            self.notify(call)

    def watch_engine(self, url: str, api_key: str) -> None:
        watch = getattr(self.inner, "watch_engine", None)
        if watch is not None:
            watch(url, api_key)

    def mark_accepted(self, call_id: str, accepted: bool | None) -> None:
        self._mark("mark_accepted", call_id, accepted)

    def mark_outcome(self, call_id: str, fields: dict) -> None:
        self._mark("mark_outcome", call_id, fields)

    def _mark(self, method: str, call_id: str, value) -> None:
        """Pass a later fact about a call to the log; a sink without it (only logs) logs it."""
        mark = getattr(self.inner, method, None)
        if mark is not None:
            mark(call_id, value)
        else:
            log.info("call %s %s: %s", call_id, method, value)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


NEXT_EDIT_PAUSE_S = 0.1
"""The server's wait before it asks for a next edit (the editor waits its own pause first);
a newer request for the document supersedes it."""

NOTIFIED_FIELDS = ("task", "specialist", "status", "ttft_ms", "latency_ms", "prompt_tokens",
                   "completion_tokens", "local_cost_usd", "llm_cost_usd", "source")
"""The fields of a finished :class:`ModelCall` that ``covey/callFinished`` sends the editor."""


def call_payload(call: ModelCall) -> dict:
    """The call's id as ``callId`` and its :data:`NOTIFIED_FIELDS` under camelCase names."""
    payload = {"callId": call.id}
    for name in NOTIFIED_FIELDS:
        first, *rest = name.split("_")
        payload[first + "".join(word.title() for word in rest)] = getattr(call, name)
    return payload


@dataclass
class Session:
    """Everything that exists between ``initialize`` and ``shutdown``."""

    config: ServerConfig
    table: SpecialistsTable
    router: Router
    sink: NotifyingSink
    store: DocumentStore
    scheduler: Scheduler
    engine: EngineTarget
    """The engine this session talks to, and whether Covey manages it."""
    workspace: WorkspaceService
    """The workspace index and the ring of recent chunks: repository context."""
    feedback: Feedback
    """What became of each suggestion shown, from the edits that follow it."""
    next_edits: NextEditOutcomes
    """What became of each next edit shown."""
    edits: EditHistory = field(default_factory=EditHistory)
    """The recent edits of each document: what the next-edit specialist reads."""
    next_edit_scheduler: Scheduler = field(
        default_factory=lambda: Scheduler(NEXT_EDIT_PAUSE_S, adaptive=False))
    cache: CompletionCache = field(default_factory=CompletionCache)
    """The suggestion last shown per document, reused while the user types into it."""
    notices_shown: set[str] = field(default_factory=set)
    background: set[asyncio.Task] = field(default_factory=set)


class CoveyServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("covey", __version__)
        self.session: Session | None = None
        self.pending_messages: list[str] = []

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None):
        super().start_io(BoundedInput(stdin or sys.stdin.buffer), stdout)

    def require_session(self) -> Session:
        if self.session is None:
            raise JsonRpcServerNotInitialized("the server has not been initialized")
        return self.session

    def notice(self, key: str, message: str,
               kind: types.MessageType = types.MessageType.Warning) -> None:
        """Show ``message`` once per session for ``key`` (e.g. one "engine down" warning)."""
        session = self.session
        if session is not None:
            if key in session.notices_shown:
                return
            session.notices_shown.add(key)
        log.warning("%s", message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def clear_notice(self, key: str) -> None:
        if self.session is not None:
            self.session.notices_shown.discard(key)

    def spawn(self, coro) -> asyncio.Task:
        """Run ``coro`` in the background, keeping a reference until it finishes."""
        task = asyncio.ensure_future(coro)
        if self.session is not None:
            self.session.background.add(task)
            task.add_done_callback(self.session.background.discard)
        return task


def open_sink(store_text: bool) -> CallSink:
    """The usage log if it can be opened, else a sink that only logs."""
    try:
        from covey_usage import open_usage_log

        return open_usage_log(store_text=store_text)
    except Exception as exc:  # noqa: BLE001 - a broken log must not stop completions
        log.error("usage log unavailable (%s); calls are only logged", exc)
        return LogSink()


def start_session(ls: CoveyServer, init_options, client_name: str | None = None,
                  roots: list[Path] | None = None) -> Session:
    config, problems = load_config(init_options)
    try:
        table = load_table()
    except TableError as exc:
        raise RuntimeError(f"Covey cannot start: {exc}") from None
    if config.specialists:
        try:
            table = table.with_overrides(config.specialists)
        except TableError as exc:
            problems.append(f"specialists: {exc}; using the table without overrides")
    target = engine.resolve(table.engine, url=config.engine.url,
                            api_key_env=config.engine.api_key_env)
    url = target.url

    scheduler = Scheduler(debounce_s(config.debounce_ms, client_name),
                          config.adaptive_debounce)

    def notify(call: ModelCall) -> None:
        ls.protocol.notify(protocol.CALL_FINISHED, call_payload(call))
        scheduler.pacing.observe(call)
        if call.status in ("error", "escalated") and "unreachable" in call.error:
            ls.notice("engine-down", f"Covey: the engine at {url} is not running; "
                      "start it with `covey engine up` (or the covey.engineStart command).")
        elif call.status == "ok" and call.source == "specialist":  # the engine answered
            ls.clear_notice("engine-down")

    sink = NotifyingSink(open_sink(config.store_text), notify)
    client = EngineClient(url, target.api_key, sink=sink, client_name="editor",
                          store_text=config.store_text)
    baseline = None
    try:
        baseline_config = BaselineConfig.from_settings(config.baseline)
    except ValueError as exc:
        problems.append(f"baseline: {exc}; escalation is off")
        baseline_config = None
    if baseline_config is not None:  # only a URL the user gave: code never leaves otherwise
        baseline = BaselineClient(baseline_config, sink=sink, client_name="editor")
    encoding = str(ls.workspace.position_encoding or "utf-16")
    store = DocumentStore(config.max_document_bytes, encoding)
    session = Session(
        config=config, table=table, router=Router(table, client, baseline), sink=sink,
        store=store,
        scheduler=scheduler, engine=target,
        workspace=WorkspaceService(ls, WorkspaceState(config.workspace_index), roots or [],
                                   config.index_rescan_s),
        feedback=Feedback(sink.mark_outcome, lambda uri: getattr(store.get(uri), "text", None),
                          dict(zip(RETENTION_COLUMNS, config.retention_horizons_s,
                                   strict=False))),
        next_edits=NextEditOutcomes(sink.mark_outcome),
    )
    if problems:
        ls.pending_messages.append("Covey settings: " + "; ".join(problems))
    return session


def build_server() -> CoveyServer:
    from covey_server import (
        features_actions,
        features_commands,
        features_completion,
        features_engine,
        features_next_edit,
        features_usage,
        workspace,
    )

    ls = CoveyServer()

    @ls.feature(types.INITIALIZE)
    def initialize(ls: CoveyServer, params: types.InitializeParams) -> None:
        ls.session = start_session(ls, params.initialization_options,
                                   params.client_info.name if params.client_info else None,
                                   roots_from(params))

    @ls.feature(types.INITIALIZED)
    async def initialized(ls: CoveyServer, params: types.InitializedParams) -> None:
        for message in ls.pending_messages:
            ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning, message))
        ls.pending_messages.clear()
        await ls.require_session().workspace.start()
        await features_engine.check_engine(ls)

    @ls.feature(types.SHUTDOWN)
    async def shutdown(ls: CoveyServer, params: None) -> None:
        session = ls.session
        if session is not None:
            session.workspace.stop()
            session.feedback.close()
            await session.router.aclose()
            await asyncio.to_thread(session.sink.close)

    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CoveyServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        session = ls.require_session()
        opened = session.store.open(doc.uri, doc.text, doc.language_id, doc.version)
        session.workspace.opened(opened)
        session.edits.opened(doc.uri, session.workspace.state.key(doc.uri), opened.text)

    @ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CoveyServer, params: types.DidChangeTextDocumentParams) -> None:
        doc = params.text_document
        session = ls.require_session()
        def edited(span: tuple[int, int] | None, text: str) -> None:
            session.edits.changed(doc.uri, span, text)
            if span is None:
                session.feedback.replaced(doc.uri)
                session.next_edits.closed(doc.uri)
            else:
                session.feedback.edited(doc.uri, *span, text)
                session.next_edits.edited(doc.uri, *span, text)

        changed = session.store.change(doc.uri, doc.version, params.content_changes, edited)
        if changed is not None:
            session.workspace.changed(changed, params.content_changes)

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CoveyServer, params: types.DidCloseTextDocumentParams) -> None:
        session = ls.require_session()
        for kind in features_completion.KINDS:
            queue = features_completion.key(params.text_document.uri, kind)
            session.scheduler.cancel(queue)
            session.cache.forget(queue)
        session.feedback.closed(params.text_document.uri)
        session.next_edits.closed(params.text_document.uri)
        session.next_edit_scheduler.cancel(features_next_edit.key(params.text_document.uri))
        session.edits.closed(params.text_document.uri)
        session.store.close(params.text_document.uri)
        session.workspace.closed(params.text_document.uri)

    features_completion.register(ls)
    features_actions.register(ls)
    features_commands.register(ls)
    features_engine.register(ls)
    features_usage.register(ls)
    features_next_edit.register(ls)
    workspace.register(ls)
    return ls
