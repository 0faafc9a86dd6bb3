"""A small OpenAI-compatible HTTP server whose answers are scripted (not a model).

It stands in for the engine where a test checks a *mechanism* (stop reading after one line,
confidence from log-probs, cancellation, refusing a bad answer) and must not depend on
what a real model happens to say, and for the baseline in escalation tests.

Each POST gets the answer ``by_model`` holds for the model it names, else the next entry of
``script``, else ``reply``. An answer is a string (streamed in 4-character pieces), a
function of the request body returning one, or a :class:`Scripted` answer: tokens one per
chunk, optional log-probs, and optionally an endless tail that runs until the client
closes the stream. Every request is recorded in ``requests`` with how many tokens were sent
and whether the client went away before the end.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Scripted:
    """One scripted answer."""

    tokens: Sequence[str] = ()
    """Streamed one per chunk."""
    logprobs: Sequence[float] | None = None
    """One per token (completions API), or None to send none."""
    endless: str | None = None
    """After ``tokens``, keep sending this token until the client closes the stream (at most
    ``limit`` tokens), so a test can see that the client stopped reading."""
    limit: int = 20_000
    pause_s: float = 0.0
    """Pause before each token (slow engines; cancellation mid-stream)."""
    endless_logprob: float = -0.1
    usage_tokens: int | None = None
    """``completion_tokens`` in the usage chunk; None: the number of tokens sent."""

    @classmethod
    def text(cls, text: str, **kwargs) -> Scripted:
        kwargs.setdefault("usage_tokens", 7)
        return cls(tokens=[text[i:i + 4] for i in range(0, len(text), 4)], **kwargs)


@dataclass
class Request:
    path: str
    body: dict
    auth: str | None
    sent: int = 0
    """Tokens written to the client."""
    disconnected: bool = False
    """The client closed the stream before the answer ended."""
    done: threading.Event = field(default_factory=threading.Event)

    def __getitem__(self, key):  # older tests read requests as dicts
        return getattr(self, key)

    def wait(self, timeout: float = 30.0) -> Request:
        """Block until the server has finished (or abandoned) this answer."""
        assert self.done.wait(timeout), "the fake server never finished its answer"
        return self


class FakeOpenAI:
    """Streams scripted answers; fails the first ``fail_first`` requests with ``fail_status``.

    ``GET /health`` answers 200 and ``GET /v1/models`` lists ``models`` (by default ``base``
    and every specialist's served name), so the fake can stand in for the engine.
    """

    def __init__(self, reply: str | Scripted = "    return 0", *,
                 script: Sequence[str | Scripted] = (), fail_first: int = 0,
                 fail_status: int = 429, retry_after: str | None = "0",
                 models: Sequence[str] | None = None,
                 by_model: dict[str, str | Scripted] | None = None):
        self.reply = reply
        self.script = list(script)
        self.by_model = dict(by_model or {})
        """Answers for requests naming a model (the specialist's served name), every time."""
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.retry_after = retry_after
        self.models = list(models) if models is not None else None
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    models = fake.models if fake.models is not None else default_models()
                    payload = {"data": [{"id": m, "object": "model"} for m in models]}
                elif self.path == "/health":
                    payload = {}
                else:
                    self.send_error(404)
                    return
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = Request(self.path, body, self.headers.get("Authorization"))
                with fake.lock:
                    fake.requests.append(request)
                    failing = len(fake.requests) <= fake.fail_first
                    if body.get("model") in fake.by_model:
                        answer = fake.by_model[body["model"]]
                    else:
                        answer = fake.script.pop(0) if fake.script else fake.reply
                try:
                    if failing:
                        self._fail()
                    else:
                        self._stream(request, answer)
                except (BrokenPipeError, ConnectionResetError):
                    request.disconnected = True
                finally:
                    request.done.set()

            def _fail(self):
                self.send_response(fake.fail_status)
                if fake.retry_after is not None:
                    self.send_header("Retry-After", fake.retry_after)
                self.end_headers()
                self.wfile.write(b'{"error": {"message": "slow down"}}')

            def _stream(self, request: Request, answer):
                if callable(answer):  # answers that depend on the request (benchmarks)
                    answer = answer(request.body)
                if isinstance(answer, str):
                    answer = Scripted.text(answer)
                chat = self.path.endswith("/chat/completions")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                # a real engine stops at the request's max_tokens, with finish_reason "length"
                budget = request.body.get("max_tokens") or float("inf")
                for token, logprob, pause_s in self._tokens(answer):
                    cut = request.sent + 1 >= budget
                    self._token(request, token, chat, logprob, pause_s,
                                "length" if cut else None)
                    if cut:
                        break
                tokens = request.sent if answer.usage_tokens is None else answer.usage_tokens
                usage = {"prompt_tokens": 100, "completion_tokens": tokens,
                         "total_tokens": 100 + tokens}
                self._send({"choices": [], "usage": usage})
                self.wfile.write(b"data: [DONE]\n\n")

            @staticmethod
            def _tokens(answer: Scripted):
                """(token, log-prob, pause) for the scripted tokens, then the endless tail."""
                logprobs = list(answer.logprobs) if answer.logprobs is not None else None
                for i, token in enumerate(answer.tokens):
                    yield token, logprobs[i] if logprobs else None, answer.pause_s
                if answer.endless is not None:
                    for _ in range(answer.limit):
                        yield (answer.endless,
                               answer.endless_logprob if logprobs is not None else None,
                               answer.pause_s or 0.002)

            def _token(self, request: Request, token: str, chat: bool, logprob: float | None,
                       pause_s: float, finish: str | None = None):
                if pause_s:
                    time.sleep(pause_s)
                if chat:
                    choice = {"index": 0, "delta": {"content": token}}
                else:
                    choice = {"index": 0, "text": token}
                    if logprob is not None:
                        choice["logprobs"] = {"tokens": [token], "token_logprobs": [logprob],
                                              "top_logprobs": [{token: logprob}],
                                              "text_offset": [0]}
                if finish:
                    choice["finish_reason"] = finish
                self._send({"choices": [choice]})
                request.sent += 1

            def _send(self, chunk: dict):
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def completions(self) -> list[Request]:
        """The requests for /v1/completions (the engine's endpoint), in order."""
        return [r for r in self.requests if r.path.endswith("/v1/completions")]


def default_models() -> list[str]:
    """``base`` and every specialist's served name from the current home's table."""
    from covey_specialists.table import load_table

    return ["base", *sorted({s.served_name for s in load_table().specialists.values()} - {"base"})]
