"""Bad input and engine faults: each gets an empty result or a clear error, and the server
keeps running. Engine faults (down, slow, dropped, malformed) use a fake OpenAI-compatible
server, since a real engine cannot be made to misbehave on demand."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import pytest_asyncio
from helpers.lsp_client import SERVER, inline_params, open_doc, start_client, stop_client
from helpers.net import free_port
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

CODE = "def add(a, b):\n    return \n"
CURSOR = (1, 11)


class FakeEngine(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "ok"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        body = json.dumps({"data": [{"id": "base"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        mode = type(self).mode
        if mode == "slow":
            time.sleep(6)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if mode == "malformed":
            self._chunk(b"data: {this is not json\n\n")
        elif mode == "drop":
            self._chunk(b'data: {"choices": [{"text": "a + b"}]}\n\n')
            self.wfile.write(b"ff\r\npartial")  # a chunk cut short, then the socket closes
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        else:
            self._chunk(b'data: {"choices": [{"text": "a + b"}]}\n\n')
            self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@pytest.fixture(scope="module")
def fake_engine():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEngine)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def options(url: str) -> dict:
    return {"engine": {"url": url}, "debounceMs": 0,
            "specialists": {"completion": {"timeoutS": 2.0}}}


@pytest_asyncio.fixture
async def fake_client(fake_engine):
    FakeEngine.mode = "ok"
    client = await start_client(options(fake_engine))
    yield client
    await stop_client(client)


async def complete(client, uri: str = "file:///tmp/f.py", position=CURSOR):
    line, char = position
    return await client.text_document_inline_completion_async(inline_params(uri, line, char))


# ---------------------------------------------------------------------- engine faults

async def test_engine_down_warns_once_and_answers_empty():
    client = await start_client(options(f"http://127.0.0.1:{free_port()}"))
    try:
        open_doc(client, "file:///tmp/f.py", CODE)
        for _ in range(3):
            assert (await complete(client)).items == ()
        await asyncio.sleep(0.2)
        warnings = [m for m in client.messages if "not running" in m.message]
        assert len(warnings) == 1, [m.message for m in client.messages]
        assert [c.status for c in client.calls] == ["error"] * 3
    finally:
        await stop_client(client)


@pytest.mark.parametrize(("mode", "status"), [
    ("slow", "timeout"), ("drop", "error"), ("malformed", "error")])
async def test_engine_faults_answer_empty_and_the_server_keeps_going(fake_client, mode, status):
    open_doc(fake_client, "file:///tmp/f.py", CODE)
    FakeEngine.mode = mode
    assert (await complete(fake_client)).items == ()
    await asyncio.sleep(0.1)
    assert fake_client.calls[-1].status == status
    FakeEngine.mode = "ok"
    result = await complete(fake_client)
    assert [i.insert_text for i in result.items] == ["a + b"]


# ---------------------------------------------------------------------- bad input

async def test_huge_binary_unknown_and_out_of_range_input(fake_client):
    client = fake_client
    big = "x = 1\n" * 1_750_000  # 10.5 MB
    open_doc(client, "file:///tmp/big.py", big + "y = ")
    assert (await complete(client, "file:///tmp/big.py", (1_750_000, 4))).items == ()
    open_doc(client, "file:///tmp/bin.py", "x = 1\n\x00\x01\x02\xff binary \n")
    assert (await complete(client, "file:///tmp/bin.py", (0, 5))).items == ()
    assert (await complete(client, "file:///tmp/never-opened.py")).items == ()
    open_doc(client, "file:///tmp/f.py", CODE)
    for position in [(99, 0), (1, 999), (2**31 - 1, 2**31 - 1)]:
        assert (await complete(client, position=position)).items == ()
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier("file:///tmp/never-opened.py"),
        range=types.Range(types.Position(0, 0), types.Position(0, 0)),
        context=types.CodeActionContext(diagnostics=[])))
    assert not actions
    assert client.calls == [], "no input above reached the model"
    # still serving
    assert [i.insert_text for i in (await complete(client)).items] == ["a + b"]


async def test_bad_command_arguments_are_invalid_params(fake_client):
    client = fake_client
    open_doc(client, "file:///tmp/f.py", CODE)
    for command, args in [("covey.generateDocstring", ["file:///tmp/unknown.py", 0]),
                          ("covey.generateDocstring", ["file:///tmp/f.py", "one"]),
                          ("covey.refactor", ["file:///tmp/f.py", {"start": 1}, "x"]),
                          ("covey.accept", [])]:
        with pytest.raises(JsonRpcInvalidParams):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=command, arguments=args))
    # a line with no function: answered, and the user is told why
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="covey.generateDocstring", arguments=["file:///tmp/f.py", 2]))
    assert result["applied"] is False and "no function or class" in result["reason"]


# ---------------------------------------------------------------------- raw JSON-RPC

class RawServer:
    """The server over plain pipes, for messages a well-behaved client cannot send."""

    def __init__(self):
        self.proc = subprocess.Popen(SERVER[:3], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)

    def send_bytes(self, body: bytes) -> None:
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def send(self, message: dict) -> None:
        self.send_bytes(json.dumps(message).encode())

    def read(self) -> dict:
        length = 0
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("the server closed its output")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return json.loads(self.proc.stdout.read(length))

    def response(self, msg_id) -> dict:
        while True:
            message = self.read()
            if message.get("id") == msg_id and "method" not in message:
                return message

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def raw():
    server = RawServer()
    yield server
    server.close()


def initialize(raw: RawServer) -> None:
    raw.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"capabilities": {}, "initializationOptions": {
                  "engine": {"url": f"http://127.0.0.1:{free_port()}"}}}})
    assert "result" in raw.response(1)
    raw.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})


def test_requests_before_initialize_get_server_not_initialized(raw):
    raw.send({"jsonrpc": "2.0", "id": 7, "method": "textDocument/inlineCompletion",
              "params": {"textDocument": {"uri": "file:///a.py"},
                         "position": {"line": 0, "character": 0},
                         "context": {"triggerKind": 1}}})
    assert raw.response(7)["error"]["code"] == -32002
    initialize(raw)  # and the server still initializes afterwards


def test_invalid_utf8_and_lone_surrogates_do_not_stop_the_server(raw):
    initialize(raw)
    bad = (b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": '
           b'{"uri": "file:///b.py", "languageId": "python", "version": 1, '
           b'"text": "x = \xff\xfe\xc3("}}}')
    raw.send_bytes(bad)
    raw.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": "file:///s.py", "languageId": "python", "version": 1,
        "text": "s = '\ud800'\nt = "}}})
    for msg_id, uri, line in [(2, "file:///b.py", 0), (3, "file:///s.py", 1)]:
        raw.send({"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/inlineCompletion",
                  "params": {"textDocument": {"uri": uri},
                             "position": {"line": line, "character": 4},
                             "context": {"triggerKind": 1}}})
        answer = raw.response(msg_id)
        assert answer.get("result", {}).get("items") == [], answer
    raw.send({"jsonrpc": "2.0", "id": 9, "method": "shutdown"})
    assert "result" in raw.response(9)


def test_serve_rejects_a_bad_tcp_address():
    out = subprocess.run([sys.executable, "-m", "covey_server", "--tcp", "nonsense"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "HOST:PORT" in out.stderr and out.stdout == ""


async def test_usage_summary_reports_the_calls(fake_client):
    open_doc(fake_client, "file:///tmp/f.py", CODE)
    assert (await complete(fake_client)).items
    summary = None
    for _ in range(50):  # the usage log writes in the background, after a short settle
        summary = await fake_client.protocol.send_request_async(
            "covey/usageSummary", {"since": "today"})
        if summary.rows:
            break
        await asyncio.sleep(0.2)
    assert [(r.task, r.calls) for r in summary.rows] == [("completion", 1)]
    assert summary.rows[0].p50LatencyMs > 0
    with pytest.raises(JsonRpcInvalidParams):
        await fake_client.protocol.send_request_async("covey/usageSummary", {"since": "soon"})
