"""Every route the running engine's app registers refuses a request without the key.

The list comes from the app itself: the engine guard writes ``app.routes`` to
``$COVEY_HOME/engine/routes.json`` when the engine starts, so a route that a new vLLM adds
is tried too. Each is called with every method it allows (and OPTIONS), with no key, a
wrong key and the key under the wrong scheme. Then, with the key, the counters and the
served models show that nothing generated and no adapter was loaded or unloaded.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess

import httpx
import pytest

from covey_specialists import engine as manager

pytestmark = pytest.mark.engine

ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# a body each kind of route would act on if it let the request through
BODY = {"model": "completion", "prompt": "def add(a, b):\n    return", "max_tokens": 8,
        "messages": [{"role": "user", "content": "say hi"}], "input": "say hi",
        "text": "def add", "tokens": [1, 2, 3],
        "lora_name": "intruder", "lora_path": "/tmp", "name": "intruder", "src": "/tmp",
        "new_data_parallel_size": 2}
COUNTERS = ("vllm:generation_tokens_total", "vllm:prompt_tokens_total",
            "vllm:request_success_total")


@pytest.fixture(scope="module")
def routes(engine) -> list[dict]:
    if not engine.managed and os.environ.get("COVEY_TEST_ENGINE_URL"):
        pytest.skip("an engine given by COVEY_TEST_ENGINE_URL has no route list here")
    path = manager.routes_file()
    assert path.is_file(), f"the engine guard wrote no route list at {path}"
    return json.loads(path.read_text())


def _authorized(engine) -> dict:
    return {"Authorization": f"Bearer {engine.api_key}"}


def _counters(engine) -> dict[str, float]:
    text = httpx.get(f"{engine.url}/metrics", headers=_authorized(engine), timeout=10).text
    totals: dict[str, float] = {}
    for line in text.splitlines():
        name = re.split(r"[{\s]", line, maxsplit=1)[0]
        if name in COUNTERS:
            totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    assert set(totals) == set(COUNTERS), f"counters missing from /metrics: {totals}"
    return totals


def _served(engine) -> list[str]:
    resp = httpx.get(f"{engine.url}/v1/models", headers=_authorized(engine), timeout=10)
    resp.raise_for_status()
    return sorted(m["id"] for m in resp.json()["data"])


def test_the_route_list_is_the_running_apps(routes):
    paths = {r["path"] for r in routes}
    # the routes the issue found open, and the ones that act, must be in the list
    for path in ("/invocations", "/metrics", "/tokenize", "/health", "/v1/completions",
                 "/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
        assert path in paths, f"{path} missing from the engine's routes: {sorted(paths)}"


def test_every_route_refuses_a_request_without_the_key(engine, routes):
    served_before = _served(engine)
    counters_before = _counters(engine)
    refusals = [{}, {"Authorization": "Bearer wrong"},
                {"Authorization": f"Basic {engine.api_key}"}, {"X-Api-Key": engine.api_key}]
    tried = []
    with httpx.Client(base_url=engine.url, timeout=30) as http:
        for route in routes:
            # path parameters get a served adapter's name: a DELETE that got through would
            # unload it, which the check below would see
            path = re.sub(r"\{[^}]+\}", "completion", route["path"])
            if route["kind"] == "WebSocketRoute":
                _assert_websocket_refused(engine, path)
                tried.append(("WS", path))
                continue
            methods = route["methods"] or ANY_METHOD
            for method in (*methods, "OPTIONS"):
                for headers in refusals:
                    body = None if method in ("GET", "HEAD", "OPTIONS") else BODY
                    resp = http.request(method, path, json=body, headers=headers)
                    assert resp.status_code == 401, (method, path, headers, resp.status_code,
                                                     resp.text[:200])
                tried.append((method, path))
    print(f"{len(routes)} routes, {len(tried)} method/path pairs refused without the key:")
    for method, path in tried:
        print(f"  {method:7} {path}")
    # nothing generated, nothing counted, no adapter loaded or unloaded
    assert _counters(engine) == counters_before
    assert _served(engine) == served_before


def _assert_websocket_refused(engine, path: str) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = engine.url.replace("http://", "ws://", 1) + path
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=10).close()
    assert refused.value.response.status_code == 403, path


def test_with_the_key_health_and_metrics_answer(engine):
    assert httpx.get(f"{engine.url}/health", headers=_authorized(engine),
                     timeout=10).status_code == 200
    assert "vllm:" in httpx.get(f"{engine.url}/metrics", headers=_authorized(engine),
                                timeout=10).text


def test_key_file_and_engine_folder_are_private(engine, routes):
    key = manager.key_file().stat()
    assert stat.S_IMODE(key.st_mode) == 0o600 and key.st_uid == os.getuid()
    assert stat.S_IMODE(manager.key_file().parent.stat().st_mode) & 0o077 == 0


OTHER_USER = '''
import json, sys, urllib.error, urllib.request
key_file, url = sys.argv[1], sys.argv[2]
try:
    open(key_file).read()
    key = "read"
except OSError as exc:
    key = type(exc).__name__
body = json.dumps({"model": "completion", "prompt": "def add", "max_tokens": 4}).encode()
request = urllib.request.Request(url + "/v1/completions", data=body,
                                 headers={"Content-Type": "application/json"})
try:
    status = urllib.request.urlopen(request, timeout=30).status
except urllib.error.HTTPError as exc:
    status = exc.code
print(json.dumps({"key": key, "status": status}))
'''


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_another_user_can_neither_read_the_key_nor_generate(engine, routes):
    """Another local user (``nobody``) reaches the loopback port but not the key: the key
    file is unreadable to it, and every request without the key is refused."""
    proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           "/usr/bin/python3", "-c", OTHER_USER, str(manager.key_file()),
                           engine.url],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"key": "PermissionError", "status": 401}
