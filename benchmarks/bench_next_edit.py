"""Edit pause → next edit through the language server, on 21-line windows.

For each task of the held-out ``next-edit`` suite: open its file as it was before its last
edit, send that edit as an editor would (``didChange``), then ask ``covey/nextEdit`` at once
(the editor has already waited for the pause) and time the answer, a proposed edit or
``null``. The server's own wait (``NEXT_EDIT_PAUSE_S``) is inside the figure. The model's
part comes from ``covey/callFinished``. Target: p50 ≤ 1 s on a CPU.

    python benchmarks/bench_next_edit.py -n 60 [--engine-url URL]

Without ``--engine-url`` it uses the managed engine (``covey engine up``) and its key; with
it, the key comes from COVEY_ENGINE_API_KEY. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from covey_eval.suites import load
from covey_specialists import engine as manager
from covey_specialists.table import load_table
from covey_specialists.tasks import next_edit


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<26} n=0"
    return (f"{name:<26} n={len(values):<4} p50={statistics.median(values):8.1f}  "
            f"p95={pct(values, 0.95):8.1f}  mean={statistics.fmean(values):8.1f}")


async def bench(url: str, key: str, n: int, seed: int) -> dict[str, list[float]]:
    client = LanguageClient("covey-bench", "1")
    calls: list = []
    client.feature("covey/callFinished")(lambda ls, params: calls.append(params))
    for method in ("covey/engineStatus", types.WINDOW_SHOW_MESSAGE, types.WINDOW_LOG_MESSAGE):
        client.feature(method)(lambda ls, params: None)
    os.environ["COVEY_ENGINE_API_KEY"] = key
    await client.start_io(sys.executable, "-m", "covey_server")
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(),
        initialization_options={"engine": {"url": url}, "workspaceIndex": False}))
    client.initialized(types.InitializedParams())
    figures: dict[str, list[float]] = {"pause → answer (ms)": [], "model (ms)": [],
                                       "first token (ms)": [], "prompt tokens": [],
                                       "answer tokens": []}
    answered = 0
    for i, task in enumerate(load("next-edit", limit=n + 2, seed=seed)):
        doc, where = next_edit.eval_target(task)
        last = where.edits[-1]
        before = doc.text[:where.offset] + last.before + doc.text[where.offset + len(last.after):]
        uri = f"file:///bench/{i}/{task.meta['path']}"
        client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text=before)))
        line = doc.position_at(where.offset)[0]
        end = types.Position(line + last.before.count("\n"), 0)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            [types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(line, 0), end), text=last.after)]))
        seen = len(calls)
        t0 = time.perf_counter()
        found = await client.protocol.send_request_async("covey/nextEdit", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": 0}})
        elapsed = (time.perf_counter() - t0) * 1000
        for _ in range(100):  # the notification follows the answer
            if len(calls) > seen:
                break
            await asyncio.sleep(0.01)
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            types.TextDocumentIdentifier(uri)))
        if i < 2 or len(calls) == seen:
            continue  # the first two warm the engine up; no call: nothing was asked
        call = calls[-1]
        answered += found is not None
        figures["pause → answer (ms)"].append(elapsed)
        figures["model (ms)"].append(call.latencyMs)
        figures["first token (ms)"].append(call.ttftMs or 0.0)
        figures["prompt tokens"].append(call.promptTokens or 0)
        figures["answer tokens"].append(call.completionTokens or 0)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    figures["_answered"] = [answered]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine-url", default="")
    parser.add_argument("-n", type=int, default=60, help="next edits asked (default 60)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    target = manager.resolve(load_table().engine, url=args.engine_url,
                             key=os.environ.get("COVEY_ENGINE_API_KEY", ""))
    figures = asyncio.run(bench(target.url, target.api_key, args.n, args.seed))
    answered = int(figures.pop("_answered")[0])
    spec = load_table().for_task("next-edit")
    print(f"Next edit through the language server, {args.n} held-out tasks (21-line windows), "
          f"engine {target.url}, adapter {spec.adapter or '(untuned base)'}:")
    for name, values in figures.items():
        print("  " + summary(name, values))
    print(f"  proposed an edit: {answered} of {len(figures['model (ms)'])}  "
          f"(target: pause → answer p50 ≤ 1,000 ms)")


if __name__ == "__main__":
    main()
