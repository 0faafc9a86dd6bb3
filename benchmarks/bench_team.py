"""A team engine under load: N language-server sessions against one engine, each typing a
real file at a human pace for a bounded time (prints figures; asserts nothing).

Each session is a user: a language server of its own (its own Covey home and usage log)
with a key of its own (`covey engine keys add`), pointed at the engine's URL. It retypes a
stretch of a standard-library file's code (``textwrap``), its own stretch, as an editor
sends it: one
``didChange`` and one inline-completion request per keystroke, ``--cps`` keystrokes a
second, a ``--think`` pause at each line's end. Requests are not awaited before the next
keystroke: the server supersedes them, as it does for an editor. The server's debounce is
its automatic one (with its load-aware pacing, server/pacing.py).

Printed per run (plain HTTP, then TLS): keystroke-to-answer p50 and p95 over every request
answered with a suggestion; the line ends answered (the requests someone waits for) and
their p50 and p95; errors (failed requests, and calls the server logged as error or
timeout; target 0), and fairness: the slowest session's line-end p95 against the median
session's (target at most 2x).

In the TLS run the first user's key is revoked halfway (`covey engine keys revoke`): that
session's calls are refused with 401 from then on, counted apart, and every other
session's errors still count.

The engine is the product's: the embedded model and the shipped adapters, started for each
run in a scratch Covey home on a free loopback port (`covey engine up`), with a
self-signed certificate for the TLS run, and stopped after.

    python benchmarks/bench_team.py [--sessions 16] [--seconds 60] [--only tls|plain]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import os
import sqlite3
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


def code_lines(path: Path) -> list[str]:
    """The file's lines without docstrings, multi-line strings, comments and blank lines:
    the server asks for nothing inside a string or a comment, so typing them would measure
    nothing."""
    source = path.read_text()
    skip: set[int] = set()
    for stmt in ast.walk(ast.parse(source)):
        if not isinstance(stmt, ast.stmt) or hasattr(stmt, "body"):
            continue  # compound statements: their simple statements are visited too
        docstring = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        if docstring or any(isinstance(node, ast.Constant) and isinstance(node.value, str)
                            and node.end_lineno > node.lineno for node in ast.walk(stmt)):
            skip.update(range(stmt.lineno, stmt.end_lineno + 1))
    return [line for number, line in enumerate(source.splitlines(keepends=True), 1)
            if number not in skip and line.strip() and not line.lstrip().startswith("#")]


SOURCE = code_lines(Path(textwrap.__file__))
ERROR_STATUSES = ("error", "timeout")
"""Calls the server logged as failed (``cancelled`` ones were superseded by a keystroke)."""
FIRST_LINE = 10
"""Where the first session's stretch starts; each next one starts 11 lines further."""


async def session(n: int, url: str, key: str, ca_file: str, start: asyncio.Barrier,
                  seconds: float, cps: float, think: float, adaptive: bool) -> dict:
    try:
        client = await start_client(
            {"engine": {"url": url}, "adaptiveDebounce": adaptive,
             "specialists": {"completion": {"minShowLogprob": "-inf"}}},
            env={"COVEY_ENGINE_API_KEY": key, "COVEY_ENGINE_CA_FILE": ca_file},
            server_log=False)
    except BaseException:
        await start.abort()  # the others stop waiting, and fail too
        raise
    first = FIRST_LINE + 11 * n
    uri = f"file:///bench/user{n}/textwrap.py"
    text = "".join(SOURCE[:first] + ["\n"] * 200 + SOURCE[first:])
    open_doc(client, uri, text)
    latencies, line_ends, pending, failed = [], [], [], []
    version, row = 1, first

    async def ask(pressed: float, line: int, col: int, line_end: bool) -> None:
        try:
            result = await client.text_document_inline_completion_async(
                inline_params(uri, line, col))
        except Exception as exc:  # noqa: BLE001 - any failure counts as an error
            failed.append(type(exc).__name__)
            return
        answered = result is not None and bool(result.items)
        if answered:
            latencies.append((time.perf_counter() - pressed) * 1000)
        if line_end:
            line_ends.append(latencies[-1] if answered else None)

    try:
        await start.wait()  # every server is up: sixteen starting at once take seconds of CPU
        until = time.perf_counter() + seconds
        for line in SOURCE[first:]:
            if time.perf_counter() >= until:
                break
            chars = line.rstrip("\n")
            for col, char in enumerate(chars):
                version += 1
                type_at(client, uri, version, row, col, char)
                pending.append(asyncio.create_task(
                    ask(time.perf_counter(), row, col + 1, col == len(chars) - 1)))
                await asyncio.sleep(1 / cps)
            await asyncio.sleep(think)
            row += 1
        await asyncio.gather(*pending)
        await asyncio.sleep(0.5)  # the last calls' notifications
    finally:
        await stop_client(client)
    statuses = Counter(call.status for call in client.calls)
    return {"latencies": latencies, "line_ends": line_ends, "requests": len(pending),
            "failed": Counter(failed), "statuses": statuses,
            "refused": _refused(Path(client.covey_home) / "usage.db")}


def _refused(usage_db: Path) -> int:
    """Calls the engine refused with 401, from the session's own usage log."""
    with sqlite3.connect(usage_db) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'calls'").fetchone():
            return 0  # no call was logged
        return db.execute("SELECT count(*) FROM calls WHERE status = 'error' "
                          "AND error LIKE '%HTTP 401%'").fetchone()[0]


def run(tls_on: bool, sessions: int, seconds: float, cps: float, think: float,
        adaptive: bool) -> dict:
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
        start = asyncio.Barrier(sessions + 1)  # the sessions and the revoker

        async def revoke_first_halfway():
            await start.wait()
            if tls_on:
                await asyncio.sleep(seconds / 2)
                team.revoke_key("user0")

        async def everyone():
            revoking = asyncio.create_task(revoke_first_halfway())
            results = await asyncio.gather(*(session(n, url, k, cert, start, seconds, cps, think,
                                                     adaptive)
                                             for n, k in enumerate(keys)),
                                           return_exceptions=True)
            revoking.cancel()
            return results

        results = asyncio.run(everyone())
        for n, result in enumerate(results):
            if isinstance(result, BaseException):
                print(f"session {n} failed: {type(result).__name__}: {result}")
                results[n] = {"latencies": [], "line_ends": [], "requests": 0, "refused": 0,
                              "failed": Counter({type(result).__name__: 1}),
                              "statuses": Counter()}
        for n in range(1 if tls_on else 0, sessions):
            team.revoke_key(f"user{n}")
    finally:
        engine.down(table)
    return summarise(results, revoked=0 if tls_on else None)


def summarise(results: list[dict], revoked: int | None) -> dict:
    """Figures over all sessions; session ``revoked``'s 401 refusals are counted apart."""
    every = [ms for r in results for ms in r["latencies"]]
    ends = [ms for r in results for ms in r["line_ends"]]
    answered_ends = [ms for ms in ends if ms is not None]
    answered_by_session = [[ms for ms in r["line_ends"] if ms is not None] for r in results]
    p95s = [_p95(answered) for answered in answered_by_session if answered]
    errors = Counter()
    for n, r in enumerate(results):
        errors += r["failed"] + Counter({k: v for k, v in r["statuses"].items()
                                         if k in ERROR_STATUSES})
        if n == revoked:
            errors["error"] -= r["refused"]
    return {"p50": _median(every), "p95": _p95(every), "answers": len(every),
            "requests": sum(r["requests"] for r in results),
            "line_ends": len(ends), "line_ends_answered": len(answered_ends),
            "line_end_p50": _median(answered_ends), "line_end_p95": _p95(answered_ends),
            "errors": +errors, "refused": results[revoked]["refused"] if revoked is not None
            else 0,
            "calls": sum((r["statuses"] for r in results), Counter()),
            "fairness": max(p95s) / statistics.median(p95s) if p95s else float("nan"),
            "sessions_answered": len(p95s)}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


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
    parser.add_argument("--fixed-debounce", action="store_true",
                        help="The server's debounce without its load-aware pacing, to compare.")
    args = parser.parse_args()
    models = ROOT / ".covey-home" / "test" / "models"
    (SCRATCH / "owner").mkdir(parents=True, exist_ok=True)
    if models.is_dir():  # reuse the prepared model rather than convert it again
        (SCRATCH / "owner" / "models").symlink_to(models)
    base_model.prepare_default_model()
    print(f"{args.sessions} sessions, {args.seconds:g} s of typing at {args.cps:g} keystrokes/s "
          f"with {args.think:g} s at each line's end, one engine on this machine "
          f"({os.cpu_count()} cores); debounce "
          f"{'fixed' if args.fixed_debounce else 'load-aware'}")
    for tls_on in (False, True):
        if args.only and args.only != ("tls" if tls_on else "plain"):
            continue
        f = run(tls_on, args.sessions, args.seconds, args.cps, args.think,
                adaptive=not args.fixed_debounce)
        print(f"{'TLS  ' if tls_on else 'plain'}: keystroke-to-answer p50 {f['p50']:.0f} ms, "
              f"p95 {f['p95']:.0f} ms over {f['answers']} answers to {f['requests']} "
              f"requests; line ends answered {f['line_ends_answered']} of {f['line_ends']}, "
              f"p50 {f['line_end_p50']:.0f} ms, p95 {f['line_end_p95']:.0f} ms; errors "
              f"{sum(f['errors'].values())} {dict(f['errors'])}; slowest session's line-end "
              f"p95 / median session's {f['fairness']:.2f}x ({f['sessions_answered']} "
              f"sessions answered at line ends); model calls by status {dict(f['calls'])}"
              + (f"; revoked halfway: {f['refused']} calls refused with 401" if tls_on
                 else ""))


if __name__ == "__main__":
    main()
