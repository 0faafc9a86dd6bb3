"""The API-key check on every route of the local engine, loaded into vLLM's own app.

vLLM 0.32 checks its API key only on paths under ``/v1``, ``/v2``, ``/inference`` and
``/cohere``: ``POST /invocations`` generates, ``/metrics`` shows the counters and the
SageMaker routes load adapters, all without it. Covey starts vLLM with
``--middleware covey_specialists.engine_guard.KeyGuard``, so vLLM adds this class to the
app it builds. It answers 401 to every HTTP request and refuses every websocket that lacks
``Authorization: Bearer <key>``, whatever the path or method, before any route sees it.
The key is the one vLLM reads (``VLLM_API_KEY``); without one the engine refuses to start.

A team engine (docs/team.md) also takes one key per user: ``COVEY_ENGINE_TEAM_KEYS`` names
a JSON file of their sha256 digests, which ``covey engine keys add|revoke`` rewrites and the
guard re-reads whenever it changes (one ``stat`` a request), so keys come and go without a
restart. Each request is then recorded, one JSON line in ``COVEY_ENGINE_REQUEST_LOG``: who
(the user's name, ``owner`` for the engine's own key), the path, the status, the time and
the tokens the answer reports, so costs can be split per user.

At startup it writes the app's routes to ``COVEY_ENGINE_ROUTES_FILE`` (when set), so the
tests can call every route the running app serves. docs/engine-security.md has the design.

This module runs inside the vLLM process: it imports the standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path

KEY_ENV = "VLLM_API_KEY"
ROUTES_ENV = "COVEY_ENGINE_ROUTES_FILE"
TEAM_KEYS_ENV = "COVEY_ENGINE_TEAM_KEYS"
REQUEST_LOG_ENV = "COVEY_ENGINE_REQUEST_LOG"
OWNER = "owner"
"""Who the engine's own key (``VLLM_API_KEY``) belongs to in the request log."""
UNLOGGED_PATHS = ("/health",)
"""Polled every half second by clients that wait for the engine: not worth a line each."""
REQUEST_LOG_MAX_BYTES = 64 << 20
"""The request log rolls over to ``<name>.1`` past this size."""
_USAGE_TAIL = 4096
_TOKENS = {field: re.compile(rb'"' + field.encode() + rb'"\s*:\s*(\d+)')
           for field in ("prompt_tokens", "completion_tokens")}


def _digest(text: bytes) -> bytes:
    return hashlib.sha256(text).digest()


class KeyGuard:
    """Pure ASGI middleware: the bearer key, on every path, method and websocket."""

    def __init__(self, app) -> None:
        key = os.environ.get(KEY_ENV, "")
        if not key:
            raise RuntimeError(f"covey engine guard: {KEY_ENV} is empty; refusing to serve "
                               "without a key")
        self.app = app
        self._key = _digest(key.encode())
        self._owner_header = b"Bearer " + key.encode()
        self._routes_file = os.environ.get(ROUTES_ENV, "")
        self._team = TeamKeys(os.environ.get(TEAM_KEYS_ENV, ""))
        self._log = RequestLog(os.environ.get(REQUEST_LOG_ENV, ""))

    def user(self, scope) -> str | None:
        """Whose key the request carries: ``owner``, a team member's name, or None."""
        for name, value in scope.get("headers") or ():
            if name.lower() == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return None
                digest = _digest(token.strip())
                if secrets.compare_digest(digest, self._key):
                    return OWNER
                return self._team.user(digest)
        return None

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            if self._routes_file and "app" in scope:
                write_routes(scope["app"], Path(self._routes_file))
                self._routes_file = ""
            await self.app(scope, receive, send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        user = self.user(scope)
        if user not in (None, OWNER):
            # vLLM checks its own key again on /v1: a team member's passes as the owner's
            scope = dict(scope, headers=[
                (name, self._owner_header if name.lower() == b"authorization" else value)
                for name, value in scope.get("headers") or ()])
        if user is None:
            await _refuse(kind, send)
        elif kind == "http" and self._log.path and scope.get("path") not in UNLOGGED_PATHS:
            await self._logged(user, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _logged(self, user: str, scope, receive, send) -> None:
        started, status, tail = time.time(), 0, b""

        async def watching(message) -> None:
            nonlocal status, tail
            if message["type"] == "http.response.start":
                status = message.get("status", 0)
            elif message["type"] == "http.response.body":
                tail = (tail + message.get("body", b""))[-_USAGE_TAIL:]
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            record = {"time": round(started, 3), "user": user, "method": scope.get("method"),
                      "path": scope.get("path"), "status": status,
                      "ms": round((time.time() - started) * 1000, 1)}
            for field, pattern in _TOKENS.items():  # an answer's usage is its last
                found = pattern.findall(tail)
                record[field] = int(found[-1]) if found else 0
            self._log.write(record)


async def _refuse(kind: str, send) -> None:
    if kind == "websocket":
        # closing before accepting answers the handshake with 403
        await send({"type": "websocket.close", "code": 1008})
        return
    body = b'{"error": "Unauthorized"}'
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b"Bearer")]})
    await send({"type": "http.response.body", "body": body})


class TeamKeys:
    """The team's keys: ``{"users": {name: {"sha256": hex digest, ...}}}`` in a JSON file,
    re-read when the file changes (it is replaced whole, so a new inode or size or time
    says so). A file that cannot be read grants nothing."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple | None = None
        self._users: dict[str, bytes] = {}

    def user(self, digest: bytes) -> str | None:
        self._refresh()
        for name, known in self._users.items():
            if secrets.compare_digest(digest, known):
                return name
        return None

    def _refresh(self) -> None:
        if not self.path:
            return
        try:
            st = os.stat(self.path)
        except OSError:
            self._stamp, self._users = None, {}
            return
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return
        try:
            with open(self.path, encoding="utf-8") as fh:
                users = json.load(fh)["users"]
            self._users = {str(name): bytes.fromhex(entry["sha256"])
                           for name, entry in users.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self._users = {}
        self._stamp = stamp


class RequestLog:
    """One JSON line per request, appended (a short line is one write), rolled over past
    :data:`REQUEST_LOG_MAX_BYTES`. A failed write loses that line, never the request."""

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, record: dict) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, separators=(",", ":")) + "\n")
                if fh.tell() > REQUEST_LOG_MAX_BYTES:
                    os.replace(self.path, self.path + ".1")
        except OSError:
            pass


def routes(app) -> list[dict]:
    """Every route of a Starlette/FastAPI app: path, methods (None: any) and kind."""
    out = []
    for route in getattr(app, "routes", ()):
        methods = getattr(route, "methods", None)
        out.append({"path": getattr(route, "path", ""), "kind": type(route).__name__,
                    "methods": sorted(methods) if methods else None})
    return out


def write_routes(app, path: Path) -> None:
    try:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(routes(app), indent=1))
        tmp.replace(path)
    except OSError:  # a missing list must not stop the engine; the tests notice it
        pass
