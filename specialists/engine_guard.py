"""The API-key check on every route of the local engine, loaded into vLLM's own app.

vLLM 0.32 checks its API key only on paths under ``/v1``, ``/v2``, ``/inference`` and
``/cohere``: ``POST /invocations`` generates, ``/metrics`` shows the counters and the
SageMaker routes load adapters, all without it. Covey starts vLLM with
``--middleware covey_specialists.engine_guard.KeyGuard``, so vLLM adds this class to the
app it builds. It answers 401 to every HTTP request and refuses every websocket that lacks
``Authorization: Bearer <key>``, whatever the path or method, before any route sees it.
The key is the one vLLM reads (``VLLM_API_KEY``); without one the engine refuses to start.

At startup it writes the app's routes to ``COVEY_ENGINE_ROUTES_FILE`` (when set), so the
tests can call every route the running app serves. docs/engine-security.md has the design.

This module runs inside the vLLM process: it imports the standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

KEY_ENV = "VLLM_API_KEY"
ROUTES_ENV = "COVEY_ENGINE_ROUTES_FILE"


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
        self._routes_file = os.environ.get(ROUTES_ENV, "")

    def authorized(self, scope) -> bool:
        for name, value in scope.get("headers") or ():
            if name.lower() == b"authorization":
                scheme, _, token = value.partition(b" ")
                return scheme.lower() == b"bearer" and secrets.compare_digest(
                    _digest(token.strip()), self._key)
        return False

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            if self._routes_file and "app" in scope:
                write_routes(scope["app"], Path(self._routes_file))
                self._routes_file = ""
            await self.app(scope, receive, send)
        elif kind not in ("http", "websocket") or self.authorized(scope):
            await self.app(scope, receive, send)
        elif kind == "websocket":
            # closing before accepting answers the handshake with 403
            await send({"type": "websocket.close", "code": 1008})
        else:
            body = b'{"error": "Unauthorized"}'
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                    (b"www-authenticate", b"Bearer")]})
            await send({"type": "http.response.body", "body": body})


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
