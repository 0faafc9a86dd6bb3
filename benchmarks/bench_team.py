"""A team engine under load: N language-server sessions against one engine, each typing a
real file at a human pace for a bounded time (prints figures; asserts nothing).

Each session is a user: a language server of its own (its own Covey home and usage log)
with a key of its own (`covey engine keys add`), pointed at the engine's URL. It retypes a
stretch of a standard-library file, its own stretch, as an editor sends it: one
``didChange`` and one inline-completion request per keystroke, ``--cps`` keystrokes a
second, a ``--think`` pause at each line's end. Requests are not awaited before the next
keystroke: the server supersedes them, as it does for an editor.

Printed per run (plain HTTP, then TLS): keystroke-to-answer p50 and p95 over every request
answered with a suggestion, requests and answers, errors (failed requests, and calls the
server logged as error or timeout; target 0), and fairness: the slowest session's p95
against the median session's (target at most 2x).

The engine is the product's: the embedded model and the shipped adapters, started for each
run in a scratch Covey home on a free loopback port (`covey engine up`), with a
self-signed certificate for the TLS run, and stopped after.

    python benchmarks/bench_team.py [--sessions 16] [--seconds 60] [--only tls|plain]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
SCRATCH = Path(tempfile.mkdtemp(prefix="covey-bench-team-"))
os.environ["COVEY_HOME"] = str(SCRATCH / "owner")  # before Covey reads its home

from helpers.lsp_client import (  # noqa: E402
    inline_params,
    open_doc,
    start_client,
    stop_client,
    type_at,
)
from helpers.net import free_port  # noqa: E402

from covey_specialists import base_model, engine, team  # noqa: E402
from covey_specialists.table import load_table  # noqa: E402

SOURCE = Path(textwrap.__file__).read_text().splitlines(keepends=True)
ERROR_STATUSES = ("error", "timeout")
"""Calls the server logged as failed (``cancelled`` ones were superseded by a keystroke)."""
FIRST_LINE = 120
"""Where the first session's stretch starts; each next one starts 20 lines further."""


async def session(n: int, url: str, key: str, ca_file: str, until: float, cps: float,
                  think: float) -> dict:
    client = await start_client(
        {"engine": {"url": url}, "debounceMs": 10,
         "specialists": {"completion": {"minShowLogprob": "-inf"}}},
        env={"COVEY_ENGINE_API_KEY": key, "COVEY_ENGINE_CA_FILE": ca_file}, server_log=False)
    first = FIRST_LINE + 20 * n
    uri = f"file:///bench/user{n}/textwrap.py"
    text = "".join(SOURCE[:first] + ["\n"] * 200 + SOURCE[first:])
    open_doc(client, uri, text)
    latencies, pending, failed = [], [], []
    version, row = 1, first

    async def ask(pressed: float, line: int, col: int) -> None:
        try:
            result = await client.text_document_inline_completion_async(
                inline_params(uri, line, col))
        except Exception as exc:  # noqa: BLE001 - any failure counts as an error
            failed.append(type(exc).__name__)
            return
        if result is not None and result.items:
            latencies.append((time.perf_counter() - pressed) * 1000)

    try:
        for line in SOURCE[first:]:
            if time.perf_counter() >= until:
                break
            for col, char in enumerate(line.rstrip("\n")):
                version += 1
                type_at(client, uri, version, row, col, char)
                pending.append(asyncio.create_task(ask(time.perf_counter(), row, col + 1)))
                await asyncio.sleep(1 / cps)
            await asyncio.sleep(think)
            row += 1
        await asyncio.gather(*pending)
        await asyncio.sleep(0.5)  # the last calls' notifications
    finally:
        await stop_client(client)
    statuses = Counter(call.status for call in client.calls)
    return {"latencies": latencies, "requests": len(pending), "failed": Counter(failed),
            "statuses": statuses}


def run(tls_on: bool, sessions: int, seconds: float, cps: float, think: float) -> dict:
    folder = SCRATCH / ("tls" if tls_on else "plain")
    folder.mkdir()
    lines = [f"[engine]\nport = {free_port()}\n"]
    cert = ""
    if tls_on:
        cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "1", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        lines.append(f'ssl_certfile = "{cert}"\nssl_keyfile = "{key}"\n')
    (SCRATCH / "owner" / "specialists.toml").write_text("".join(lines))
    table = load_table()
    engine.up(table)
    try:
        url = engine.resolve(table.engine).url
        keys = [team.add_key(f"user{n}") for n in range(sessions)]
        until = time.perf_counter() + seconds

        async def everyone():
            return await asyncio.gather(*(session(n, url, k, cert, until, cps, think)
                                          for n, k in enumerate(keys)))

        results = asyncio.run(everyone())
        for n in range(sessions):
            team.revoke_key(f"user{n}")
    finally:
        engine.down(table)
    return summarise(results)


def summarise(results: list[dict]) -> dict:
    every = [ms for r in results for ms in r["latencies"]]
    p95s = [_p95(r["latencies"]) for r in results if r["latencies"]]
    return {"p50": statistics.median(every) if every else float("nan"),
            "p95": _p95(every), "answers": len(every),
            "requests": sum(r["requests"] for r in results),
            "errors": sum((r["failed"] + Counter({k: v for k, v in r["statuses"].items()
                                                  if k in ERROR_STATUSES})
                           for r in results), Counter()),
            "calls": sum((r["statuses"] for r in results), Counter()),
            "fairness": max(p95s) / statistics.median(p95s) if p95s else float("nan"),
            "sessions_answered": len(p95s)}


def _p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="How long the sessions type (then they finish what is pending).")
    parser.add_argument("--cps", type=float, default=5.0, help="Keystrokes a second.")
    parser.add_argument("--think", type=float, default=1.0,
                        help="Pause at each line's end, in seconds.")
    parser.add_argument("--only", choices=("plain", "tls"), default=None)
    args = parser.parse_args()
    models = ROOT / ".covey-home" / "test" / "models"
    (SCRATCH / "owner").mkdir(parents=True, exist_ok=True)
    if models.is_dir():  # reuse the prepared model rather than convert it again
        (SCRATCH / "owner" / "models").symlink_to(models)
    base_model.prepare_default_model()
    print(f"{args.sessions} sessions, {args.seconds:g} s of typing at {args.cps:g} keystrokes/s "
          f"with {args.think:g} s at each line's end, one engine on this machine "
          f"({os.cpu_count()} cores)")
    for tls_on in (False, True):
        if args.only and args.only != ("tls" if tls_on else "plain"):
            continue
        f = run(tls_on, args.sessions, args.seconds, args.cps, args.think)
        print(f"{'TLS  ' if tls_on else 'plain'}: keystroke-to-answer p50 {f['p50']:.0f} ms, "
              f"p95 {f['p95']:.0f} ms over {f['answers']} answers to {f['requests']} "
              f"requests; errors {sum(f['errors'].values())} {dict(f['errors'])}; slowest "
              f"session's p95 / median session's {f['fairness']:.2f}x "
              f"({f['sessions_answered']} sessions answered); model calls by status "
              f"{dict(f['calls'])}")


if __name__ == "__main__":
    main()
