"""Fuzz the language server over stdio with malformed and hostile messages.

Starts ``python -m covey_server`` (engine URL: a closed port on 127.0.0.1, so no model is
needed; COVEY_HOME: a temporary directory), initializes it, opens a document, then sends
``n`` messages drawn with a seeded RNG: random JSON-RPC, wrong types, truncated JSON, wrong
Content-Length, garbage headers, huge and deeply nested payloads, unknown methods, requests
on closed documents and ``$/cancelRequest``s. Every ``probe_every`` messages it sends a
valid request (``textDocument/codeAction`` or ``covey/usageSummary``) and times its answer.

Reports crashes (the server process exited; it is restarted and the run goes on), hangs (a
valid request unanswered within ``hang_s``) and p50/p95 of the time to answer the valid
request. Bounded in count and in time (``max_s``); stops by itself.

    python benchmarks/fuzz_lsp.py -n 10000 --seed 0

tests/lsp/test_fuzz.py runs :func:`fuzz` with n=500.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

URI = "file:///fuzz/module.py"
TEXT = "import os\n\n\ndef area(r):\n    return 3.14 * r * r\n\n\ndef total(xs):\n" \
       "    s = 0\n    for x in xs:\n        s += x\n    return s\n"
METHODS = [
    "initialize", "initialized", "shutdown", "exit", "textDocument/didOpen",
    "textDocument/didChange", "textDocument/didClose", "textDocument/didSave",
    "textDocument/completion", "textDocument/inlineCompletion", "textDocument/codeAction",
    "workspace/executeCommand", "workspace/didChangeConfiguration", "covey/usageSummary",
    "covey/engineStatus", "$/cancelRequest", "$/setTrace", "$/progress",
    "textDocument/hover", "completionItem/resolve", "codeAction/resolve",
]
# Never sent by the fuzzer: they end the session on purpose.
ENDING = {"shutdown", "exit"}
COMMANDS = ["covey.generateDocstring", "covey.refactor", "covey.accept", "covey.reject",
            "covey.engineStart", "covey.engineStop", "covey.usageSummary", "no.such.command"]


@dataclass
class Report:
    sent: int = 0
    probes: int = 0
    crashes: int = 0
    hangs: int = 0
    answer_s: list[float] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    crash_notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def summary(self) -> dict:
        ms = sorted(t * 1000 for t in self.answer_s)
        return {"messages": self.sent, "valid_probes": self.probes, "crashes": self.crashes,
                "hangs": self.hangs,
                "p50_ms": round(statistics.median(ms), 1) if ms else None,
                "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1) if ms else None,
                "elapsed_s": round(self.elapsed_s, 1), "kinds": dict(sorted(self.kinds.items())),
                "crash_notes": self.crash_notes[:5]}


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def encode(message: dict) -> bytes:
    return frame(json.dumps(message).encode())


class Server:
    """The server process, a reader thread collecting answers and a writer thread."""

    def __init__(self, home: str, engine_url: str):
        env = {**os.environ, "COVEY_HOME": home, "PYTHONUNBUFFERED": "1"}
        env.pop("COVEY_ENGINE_URL", None)
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "covey_server"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        self.answers: dict[str, float] = {}
        self.cond = threading.Condition()
        self.outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=64)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()
        self.engine_url = engine_url

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                elif line in (b"\r\n", b"\n") and length is not None:
                    break
            body = out.read(length)
            try:
                message = json.loads(body)
            except ValueError:
                continue
            if isinstance(message, dict) and "id" in message and "method" not in message:
                with self.cond:
                    self.answers[str(message["id"])] = time.perf_counter()
                    self.cond.notify_all()

    def _write(self) -> None:
        while (data := self.outbox.get()) is not None:
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                return

    def send(self, data: bytes, timeout: float) -> bool:
        try:
            self.outbox.put(data, timeout=timeout)
            return True
        except queue.Full:
            return False

    def wait(self, key: str, timeout: float) -> float | None:
        deadline = time.perf_counter() + timeout
        with self.cond:
            while key not in self.answers:
                left = deadline - time.perf_counter()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.5))
            return self.answers.pop(key)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")[-600:]

    def close(self) -> None:
        try:
            self.outbox.put_nowait(None)
        except queue.Full:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


class Fuzzer:
    def __init__(self, rng: random.Random, engine_url: str):
        self.rng = rng
        self.engine_url = engine_url
        self.next_id = 0

    def ident(self):
        self.next_id += 1
        return self.rng.choice([self.next_id, str(self.next_id), -self.next_id, None,
                                1.5, [1], {"a": 1}, True, "x" * 300, 2 ** 70])

    def junk(self, depth: int = 0):
        r = self.rng.random()
        if depth > 3 or r < 0.3:
            return self.rng.choice([None, True, False, -1, 0, 2 ** 64, 3.5e308, 1e-300, "",
                                    "é\u2028\x00", "a" * 70, URI, "file:///nope.py",
                                    "../../../../etc/passwd"])
        if r < 0.65:
            return [self.junk(depth + 1) for _ in range(self.rng.randint(0, 4))]
        keys = ["textDocument", "uri", "position", "range", "line", "character", "context",
                "command", "arguments", "id", "text", "version", "contentChanges", "since",
                "triggerKind", "languageId", "start", "end", "diagnostics", "zz"]
        return {self.rng.choice(keys): self.junk(depth + 1) for _ in range(self.rng.randint(0, 5))}

    def position(self):
        return {"line": self.rng.choice([0, 3, 4, 11, 12, 99999, -1, 2 ** 31, "4", None]),
                "character": self.rng.choice([0, 4, 10, 500, -3, 2 ** 40, "x", 1.5])}

    def doc_uri(self) -> str:
        return self.rng.choice([URI, URI, "file:///fuzz/closed.py", "untitled:1", "",
                                "file:///fuzz/" + "d/" * 200 + "x.py", "not a uri"])

    def wrong_types(self) -> dict:
        method = self.rng.choice([m for m in METHODS if m not in ENDING])
        params = self.rng.choice([
            {"textDocument": {"uri": self.doc_uri()}, "position": self.position()},
            {"textDocument": {"uri": self.doc_uri()}, "range": {"start": self.position(),
                                                                "end": self.position()},
             "context": self.rng.choice([{"diagnostics": []}, None, "x", {"only": [1]}])},
            {"textDocument": {"uri": self.doc_uri(), "version": self.rng.choice([1, -1, "v"])},
             "contentChanges": self.rng.choice([
                 [{"text": "x = 1\n"}],
                 [{"range": {"start": self.position(), "end": self.position()}, "text": "y"}],
                 "nope", [None], [{"range": None, "text": 5}]])},
            {"command": self.rng.choice(COMMANDS),
             "arguments": self.rng.choice([[], [URI], [URI, {"start": self.position()}],
                                           [1, 2, 3], "x", None, [self.junk()]])},
            {"since": self.rng.choice(["7d", "bogus", 5, None, "-1h", "9" * 40])},
            {"id": self.rng.choice([1, "x", None, [1]])},
            self.junk(), [], "params", 42,
        ])
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if self.rng.random() < 0.7:
            message["id"] = self.ident()
        return message

    def random_jsonrpc(self) -> dict:
        message = {}
        for key, values in (("jsonrpc", ["2.0", "1.0", 2, None]),
                            ("method", [*METHODS, "x/unknown", "", 7, None, "rpc.discover"]),
                            ("id", [self.ident()]), ("params", [self.junk()]),
                            ("result", [self.junk()]), ("error", [self.junk(), {"code": "x"}])):
            if self.rng.random() < 0.6:
                message[key] = self.rng.choice(values)
        if message.get("method") in ENDING:
            message["method"] = "x/" + message["method"]
        return message

    def message(self) -> tuple[str, bytes]:
        """One hostile message: (its kind, its bytes on the wire)."""
        kind = self.rng.choices(
            ["random", "wrong-types", "truncated", "short-length", "long-length",
             "bad-header", "huge", "nested", "unknown-method", "closed-doc", "cancel",
             "not-json", "non-object", "batch"],
            [12, 25, 6, 4, 4, 4, 1, 2, 6, 10, 10, 4, 4, 3])[0]
        rng = self.rng
        if kind == "random":
            return kind, encode(self.random_jsonrpc())
        if kind == "wrong-types":
            return kind, encode(self.wrong_types())
        if kind == "truncated":
            body = json.dumps(self.wrong_types()).encode()
            return kind, frame(body[:rng.randint(0, max(0, len(body) - 1))])
        if kind == "short-length":  # the rest of the body becomes junk header lines
            body = json.dumps(self.wrong_types()).encode()
            cut = rng.randint(1, max(1, len(body) - 1))
            return kind, b"Content-Length: %d\r\n\r\n%s\r\n" % (cut, body)
        if kind == "long-length":  # padded, so the stream stays in step
            body = json.dumps(self.wrong_types()).encode()
            pad = rng.randint(1, 200)
            return kind, b"Content-Length: %d\r\n\r\n%s%s" % (len(body) + pad, body,
                                                              rng.choice([b"x", b"}", b" "]) * pad)
        if kind == "bad-header":
            header = rng.choice([b"Content-Length: -5\r\n", b"Content-Length: abc\r\n",
                                 b"Content-Length: 99999999999999\r\n",
                                 b"Content-Length: 0\r\n", b"Content-Type: x\r\n",
                                 b"\x00\xff\xfe garbage\r\n", b"Content-Length:5\r\n",
                                 b"X" * 5000 + b"\r\n"])
            return kind, header + b"\r\n" + rng.choice([b"{}", b"", b"[1,2"]) + b"\r\n"
        if kind == "huge":
            text = "x = '" + "A" * rng.choice([10_000, 1_000_000, 4_000_000]) + "'\n"
            method = rng.choice(["textDocument/didChange", "textDocument/didOpen",
                                 "workspace/executeCommand"])
            params = {"textDocument": {"uri": URI if method != "textDocument/didOpen"
                                       else "file:///fuzz/huge.py", "version": 10 ** 6,
                                       "languageId": "python", "text": text},
                      "contentChanges": [{"text": text}], "command": "covey.accept",
                      "arguments": [text]}
            return kind, encode({"jsonrpc": "2.0", "method": method, "params": params})
        if kind == "nested":
            depth = rng.choice([100, 1000, 100_000])
            body = (b'{"jsonrpc":"2.0","id":1,"method":"textDocument/codeAction","params":'
                    + b"[" * depth + b"]" * depth + b"}")
            return kind, frame(body)
        if kind == "unknown-method":
            message = {"jsonrpc": "2.0", "method": rng.choice(["foo/bar", "covey/nothing",
                                                               "textDocument/x" * 50]),
                       "params": self.junk()}
            if rng.random() < 0.5:
                message["id"] = self.ident()
            return kind, encode(message)
        if kind == "closed-doc":
            uri = rng.choice(["file:///fuzz/closed.py", "file:///fuzz/never.py"])
            method = rng.choice(["textDocument/codeAction", "textDocument/completion",
                                 "textDocument/inlineCompletion", "textDocument/didChange",
                                 "textDocument/didClose", "workspace/executeCommand"])
            params = {"textDocument": {"uri": uri, "version": 3}, "position": self.position(),
                      "range": {"start": {"line": 0, "character": 0},
                                "end": {"line": 1, "character": 0}},
                      "context": {"diagnostics": [], "triggerKind": 1},
                      "contentChanges": [{"text": "a = 1\n"}],
                      "command": rng.choice(COMMANDS),
                      "arguments": [uri, {"start": {"line": 0, "character": 0},
                                          "end": {"line": 1, "character": 0}}]}
            message = {"jsonrpc": "2.0", "method": method, "params": params}
            if not method.startswith("textDocument/did"):
                message["id"] = self.ident()
            return kind, encode(message)
        if kind == "cancel":
            target = rng.choice([self.next_id, self.next_id - 1, "probe", None, "x", -1, [1]])
            return kind, encode({"jsonrpc": "2.0", "method": "$/cancelRequest",
                                 "params": rng.choice([{"id": target}, {}, None, [target]])})
        if kind == "not-json":
            return kind, frame(rng.choice([b"not json", b"\xff\xfe\x00", b"{'a': 1}",
                                           b"NaN", b'{"a": "\\ud800"}', b"", b"\x00" * 50]))
        if kind == "non-object":
            return kind, frame(json.dumps(rng.choice([1, "x", None, True, [], [[]]])).encode())
        batch = [self.wrong_types() for _ in range(rng.randint(1, 5))]
        return "batch", frame(json.dumps(batch).encode())


def _start(home: str, engine_url: str, hang_s: float) -> Server:
    server = Server(home, engine_url)
    init = {"jsonrpc": "2.0", "id": "init", "method": "initialize",
            "params": {"processId": None, "rootUri": None, "capabilities": {},
                       "initializationOptions": {"engine": {"url": engine_url,
                                                            "managed": False}}}}
    server.send(encode(init), hang_s)
    if server.wait("init", 60) is None:
        raise RuntimeError("the server did not answer initialize: " + server.stderr_tail())
    server.send(encode({"jsonrpc": "2.0", "method": "initialized", "params": {}}), hang_s)
    server.send(encode({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": TEXT}}}),
        hang_s)
    return server


def _probe(rng: random.Random, n: int) -> dict:
    """A valid, cheap request (no model is called)."""
    if rng.random() < 0.5:
        return {"jsonrpc": "2.0", "id": f"probe-{n}", "method": "covey/usageSummary",
                "params": {"since": "7d"}}
    return {"jsonrpc": "2.0", "id": f"probe-{n}", "method": "textDocument/codeAction",
            "params": {"textDocument": {"uri": "file:///fuzz/probe.py"},
                       "range": {"start": {"line": 3, "character": 0},
                                 "end": {"line": 5, "character": 0}},
                       "context": {"diagnostics": []}}}


def fuzz(n: int = 10_000, seed: int = 0, probe_every: int = 20, hang_s: float = 10.0,
         max_s: float = 900.0, log=None) -> Report:
    """Send ``n`` hostile messages (or stop after ``max_s``); see the module docstring."""
    rng = random.Random(seed)
    report = Report()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="covey-fuzz-") as home:
        engine_url = "http://127.0.0.1:9"  # discard port: nothing listens, nothing answers
        fuzzer = Fuzzer(rng, engine_url)
        server = _start(home, engine_url, hang_s)

        def reopen_probe_doc() -> None:
            server.send(encode({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
                "textDocument": {"uri": "file:///fuzz/probe.py", "languageId": "python",
                                 "version": 1, "text": TEXT}}}), hang_s)

        reopen_probe_doc()
        try:
            while report.sent < n and time.perf_counter() - started < max_s:
                kind, data = fuzzer.message()
                report.kinds[kind] = report.kinds.get(kind, 0) + 1
                server.send(data, hang_s)
                report.sent += 1
                if report.sent % probe_every and report.sent != n:
                    continue
                report.probes += 1
                probe = _probe(rng, report.probes)
                sent_at = time.perf_counter()
                server.send(encode(probe), hang_s)
                answered = server.wait(probe["id"], hang_s)
                if answered is not None:
                    report.answer_s.append(answered - sent_at)
                elif server.alive():
                    report.hangs += 1
                    if log:
                        log(f"hang after message {report.sent} ({kind})")
                if not server.alive():
                    report.crashes += 1
                    note = f"message {report.sent} ({kind}): {server.stderr_tail()}"
                    report.crash_notes.append(note)
                    if log:
                        log("crash: " + note)
                    server.close()
                    server = _start(home, engine_url, hang_s)
                    reopen_probe_doc()
        finally:
            server.close()
    report.elapsed_s = time.perf_counter() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="hostile messages to send")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe-every", type=int, default=20)
    parser.add_argument("--hang-s", type=float, default=10.0)
    parser.add_argument("--max-s", type=float, default=900.0)
    args = parser.parse_args()
    report = fuzz(args.n, args.seed, args.probe_every, args.hang_s, args.max_s,
                  log=lambda line: print(line, file=sys.stderr, flush=True))
    summary = report.summary()
    print(json.dumps(summary, indent=2))
    print(f"{summary['messages']} messages, {summary['crashes']} crashes, "
          f"{summary['hangs']} hangs, next valid answer p50 {summary['p50_ms']} ms "
          f"p95 {summary['p95_ms']} ms ({summary['valid_probes']} probes, "
          f"{summary['elapsed_s']} s)")
    sys.exit(1 if report.crashes or report.hangs else 0)


if __name__ == "__main__":
    main()
