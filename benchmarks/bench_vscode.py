"""Keystroke → visible ghost text in real VS Code (code-server + headless Chromium), split
into model, server and editor parts (prints figures; asserts nothing).

The driver (tests/editors/e2e_vscode/run.mjs, ``--scenario latency``) types into fresh
function bodies and times each keystroke from the key going down in the page to the ghost
text changing in the editor's DOM. From the extension's LSP trace it takes the request whose
answer is on screen: its round trip (as the language client measured it) and the model call
behind it (``covey/callFinished``: ``latencyMs``). Then

- model  = the model call's latency (0 when the answer came from the completion cache);
- server = round trip − model (debounce, context, cache, JSON-RPC);
- editor = total − round trip (VS Code's own debounce, rendering, the extension host).

Keystrokes are *fresh* when a new model call was on the way to the ghost text and
*typed-through* when none was: the server answered from its completion cache, or VS Code
kept the rest of the suggestion on screen before the server even answered (then it is all
editor time, and the model call the key may still have caused is off the critical path).

    python benchmarks/bench_vscode.py [--keystrokes 24]

Uses the engine at ``COVEY_ENGINE_URL`` (key: ``COVEY_ENGINE_API_KEY``) when set, else the
managed engine of ``COVEY_HOME``, started for the run and stopped after if it was not up.
Screenshots, the LSP trace and result.json go to artifacts/vscode-latency/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers.vscode import REPO, build_vsix, drive, install_code_server  # noqa: E402

ARTIFACTS = REPO / "artifacts" / "vscode-latency"
PARTS = ("totalMs", "modelMs", "serverMs", "editorMs")


@contextlib.contextmanager
def engine() -> Iterator[tuple[str, str]]:
    """(url, key) of an engine that is up for the duration."""
    url = os.environ.get("COVEY_ENGINE_URL", "").strip()
    if url:
        yield url.rstrip("/"), os.environ.get("COVEY_ENGINE_API_KEY", "")
        return
    from covey_specialists import engine as manager
    from covey_specialists.table import load_table

    table = load_table()
    state = manager.status(table).state
    print(f"engine: {state}" + ("" if state == "up" else "; starting it"), flush=True)
    status = manager.ensure_up(table)
    try:
        yield status.url, manager.api_key()
    finally:
        if state not in ("up", "starting"):
            manager.down(table)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def loads(values: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in values)


def table(keystrokes: list[dict]) -> list[str]:
    shown = [k for k in keystrokes if k.get("shown")]
    groups = {"fresh (model call)": [k for k in shown if k["kind"] == "fresh"],
              "typed-through (no call)": [k for k in shown if k["kind"] == "typed-through"],
              "all": shown}
    lines = [f"{'':<24} {'n':>3}  " + "  ".join(f"{p[:-2]:>17}" for p in PARTS),
             f"{'':<24} {'':>3}  " + "  ".join(f"{'p50 / p95 ms':>17}" for _ in PARTS)]
    for name, group in groups.items():
        if not group:
            lines.append(f"{name:<24} {0:>3}")
            continue
        cells = []
        for part in PARTS:
            values = [float(k[part]) for k in group]
            cells.append(f"{statistics.median(values):>8.0f} / {pct(values, 0.95):>6.0f}")
        lines.append(f"{name:<24} {len(group):>3}  " + "  ".join(cells))
    return lines


def report(result: dict) -> None:
    keystrokes = result.get("keystrokes", [])
    if not keystrokes:
        print("\nNo keystrokes were timed.")
        return
    shown = [k for k in keystrokes if k.get("shown")]
    print(f"\nKeystroke → visible ghost text in VS Code ({len(keystrokes)} keystrokes timed, "
          f"{len(shown)} showed ghost text):")
    for line in table(keystrokes):
        print("  " + line)
    unmatched = sum(bool(k.get("unmatched")) for k in shown)
    if unmatched:
        print(f"  {unmatched} keys showed ghost text other than the server's answer (counted "
              "as the editor's own)")
    early = [k for k in shown if k.get("shownBeforeAnswer")]
    trips = [k["roundTripMs"] for k in early if k.get("roundTripMs") is not None]
    if early:
        print(f"  {len(early)} typed-through keys showed before the server answered (VS Code "
              "kept the suggestion): all editor time"
              + (f"; the server's cached answer took {statistics.median(trips):.0f} ms (p50) "
                 "round trip, off the critical path" if trips else ""))
    answered = [k for k in shown if not k.get("shownBeforeAnswer")]
    if answered:
        before = [k["editorBeforeMs"] for k in answered]
        after = [k["editorAfterMs"] for k in answered]
        print(f"  editor part where the answer was on the way ({len(answered)} keys): key → "
              f"request p50 {statistics.median(before):.0f} ms, answer → DOM p50 "
              f"{statistics.median(after):.0f} ms")
    tokens = [k["promptTokens"] for k in shown if k.get("promptTokens")]
    if tokens:  # the workspace's second module makes these carry repository context
        print(f"  prompt tokens of the fresh calls: p50 {statistics.median(tokens):.0f}, "
              f"max {max(tokens)}")
    missing = len(keystrokes) - len(shown)
    if missing:
        print(f"  {missing} keystrokes showed no ghost text (the server answered nothing); "
              "not in the figures")
    load = result.get("loadAverage")
    if load:
        print(f"  load average (1, 5, 15 min) on {load['cpus']} CPUs: {loads(load['start'])} "
              f"at the first keystroke, {loads(load.get('end', []))} at the last")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keystrokes", type=int, default=24,
                        help="keystrokes that end in ghost text (default 24)")
    parser.add_argument("--result", type=Path,
                        help="print the figures of an earlier run's result.json, run nothing")
    args = parser.parse_args()
    if args.result:
        report(json.loads(args.result.read_text()))
        return
    code_server = install_code_server()
    vsix = build_vsix()
    with engine() as (url, key):
        print(f"engine {url}; driving VS Code…", flush=True)
        run = drive(["--scenario", "latency", "--keystrokes", str(args.keystrokes),
                     "--code-server", code_server, "--vsix", vsix, "--python", sys.executable,
                     "--engine-url", url], ARTIFACTS,
                    {**os.environ, "COVEY_ENGINE_API_KEY": key}, timeout=1800)
    print(run.stdout[-6000:])
    if run.returncode != 0:
        print(run.failure, file=sys.stderr)
    report(run.result)
    print(f"  details: {ARTIFACTS / 'result.json'}")
    sys.exit(0 if run.returncode == 0 else 1)


if __name__ == "__main__":
    main()
