"""How much the language server adds to a completion, and what a keystroke costs.

1. The same completion N times straight from the engine (EngineClient) and N times through
   the server (inlineCompletion over stdio, debounce 0), interleaved so both see the same
   engine load: p50/p95 of each and their ratio. Target: the server adds ≤ 5 % at p50.
2. Per keystroke on a 10,000-line file: apply the LSP change (text, line index, the edit
   recorded on the syntax tree, the edit history the next-edit specialist reads), then
   what a completion request does with it: bring the tree up to date (incremental
   parse), decide the trigger, build the context.
   Target: single-digit milliseconds.

    python benchmarks/bench_lsp.py -n 200 [--engine-url URL]

Without ``--engine-url`` it uses the managed engine and its key; with it, the key comes from
COVEY_ENGINE_API_KEY.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from covey_server.triggers import trigger_at
from covey_specialists.client import EngineClient
from covey_specialists.document import Document, cursor_context
from covey_specialists.edit_history import EditHistory
from covey_specialists.table import load_table
from covey_specialists.tasks import Where, completion
from covey_specialists.tasks.completion import LINE_MAX_TOKENS

SOURCE = '''import math


def circle_area(radius):
    return math.pi * radius * radius


def fibonacci(n):
    if n < 2:
        return n
    return <CURSOR>
'''
CURSOR_TEXT = SOURCE.replace("<CURSOR>", "")
LINE, COL = 10, len("    return ")
# the one-line budget, so the line can end: a line the budget cuts off is not shown
OVERRIDES = {"completion": {"prompt_format": "prefix", "max_tokens": LINE_MAX_TOKENS,
                            "stop": ["\n"]}}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def summary(name: str, values: list[float]) -> str:
    return (f"{name:<28} n={len(values):<4} p50={statistics.median(values):8.2f} ms  "
            f"p95={pct(values, 0.95):8.2f} ms  mean={statistics.fmean(values):8.2f} ms")


async def bench_server(url: str, key: str, n: int) -> tuple[list[float], list[float]]:
    table = load_table().with_overrides(OVERRIDES)
    spec = table.for_task("completion")
    doc = Document("file:///bench/fib.py", CURSOR_TEXT, "python")
    offset = doc.offset_at(LINE, COL)
    plan = completion.plan(doc, Where(offset=offset, multiline=trigger_at(doc, offset).multiline),
                           spec)

    client = LanguageClient("covey-bench", "1")
    for method in ("covey/callFinished", "covey/engineStatus", types.WINDOW_SHOW_MESSAGE,
                   types.WINDOW_LOG_MESSAGE):
        client.feature(method)(lambda ls, params: None)  # consumed quietly
    os.environ["COVEY_ENGINE_API_KEY"] = key
    await client.start_io(sys.executable, "-m", "covey_server")
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(),
        initialization_options={"engine": {"url": url}, "debounceMs": 0,
                                "specialists": {"completion": {
                                    "promptFormat": "prefix", "maxTokens": LINE_MAX_TOKENS,
                                    "stop": ["\n"], "minShowLogprob": "-inf"}}}))
    client.initialized(types.InitializedParams())
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(
        uri=doc.uri, language_id="python", version=1, text=CURSOR_TEXT)))
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(doc.uri), position=types.Position(LINE, COL),
        context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Invoked))

    direct, served, failed = [], [], 0
    async with EngineClient(url, key) as engine:
        models = await engine.models()
        model = spec.served_name if spec.served_name in models else models[0]
        for i in range(n + 2):  # the first two rounds warm both paths up
            t0 = time.perf_counter()
            straight = await engine.complete(spec, plan.prompt, model=model)
            # a new version of the same text: the server's completion cache answers a repeat
            # at the same position and version without the model
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=doc.uri, version=i + 2),
                [types.TextDocumentContentChangeWholeDocument(text=CURSOR_TEXT)]))
            t1 = time.perf_counter()
            result = await client.text_document_inline_completion_async(params)
            t2 = time.perf_counter()
            if not straight.ok or not result.items:
                failed += 1  # an error or an empty answer would flatter either side
                continue
            if i >= 2:
                direct.append((t1 - t0) * 1000)
                served.append((t2 - t1) * 1000)
    if failed:
        print(f"warning: {failed} rounds dropped (engine error or empty answer)",
              file=sys.stderr)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return direct, served


def bench_keystrokes(lines: int = 10_000, keystrokes: int = 1000) -> dict[str, list[float]]:
    body = "".join(f"def function_{i}(a, b):\n    value = a * {i} + b\n    return value\n\n"
                   for i in range(lines // 4))
    doc = Document("file:///bench/big.py", body, "python")
    budget = load_table().for_task("completion").max_prompt_chars
    rnd = random.Random(0)
    history = EditHistory()
    history.opened(doc.uri, "big.py", body)
    update, parse, context = [], [], []
    for _ in range(keystrokes):
        row = rnd.randrange(0, doc.line_count - 1, 4) + 1  # a "    value = ..." line
        col = len(doc.line(row))
        change = types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(row, col), types.Position(row, col)), text="x")
        t0 = time.perf_counter()
        span = doc.apply_change(change)
        history.changed(doc.uri, span, change.text)  # the next-edit history follows it
        t1 = time.perf_counter()
        offset = doc.offset_at(row, col + 1)
        doc.tree  # noqa: B018 - the incremental parse, timed on its own
        t2 = time.perf_counter()
        trigger_at(doc, offset)
        cursor_context(doc, offset, budget)
        t3 = time.perf_counter()
        update.append((t1 - t0) * 1000)
        parse.append((t2 - t1) * 1000)
        context.append((t3 - t2) * 1000)
    total = [u + p + c for u, p, c in zip(update, parse, context, strict=True)]
    return {"apply LSP change + edit history": update, "incremental parse": parse,
            "trigger + context": context, "keystroke total": total,
            "_lines": [float(doc.line_count)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine-url", default="")
    parser.add_argument("-n", type=int, default=200, help="completions per path (default 200)")
    parser.add_argument("--skip-engine", action="store_true", help="only the keystroke part")
    args = parser.parse_args()

    figures = bench_keystrokes()
    lines = int(figures.pop("_lines")[0])
    print(f"Keystrokes on a {lines}-line Python file (1000 single-character inserts):")
    for name, values in figures.items():
        print("  " + summary(name, values))

    if args.skip_engine:
        return
    from covey_specialists import engine as manager

    table = load_table()
    target = manager.resolve(table.engine, url=args.engine_url,
                             key=os.environ.get("COVEY_ENGINE_API_KEY", ""))
    url, key = target.url, target.api_key
    direct, served = asyncio.run(bench_server(url, key, args.n))
    print(f"\nCompletion latency, {args.n} requests each, engine {url}:")
    print("  " + summary("engine directly", direct))
    print("  " + summary("through the server (LSP)", served))
    p50_ratio = statistics.median(served) / statistics.median(direct)
    p95_ratio = pct(served, 0.95) / pct(direct, 0.95)
    print(f"  server/engine ratio: p50 {p50_ratio:.3f} ({(p50_ratio - 1) * 100:+.1f} %), "
          f"p95 {p95_ratio:.3f}  (target: p50 ≤ +5 %)")


if __name__ == "__main__":
    main()
