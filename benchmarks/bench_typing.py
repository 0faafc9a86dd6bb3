"""Replay a typing session through the language server and count the model calls the
completion cache saves (prints figures; asserts nothing).

The session retypes a stretch of a real file (the standard library's ``textwrap.py``)
character by character, as an editor sends it: one ``didChange`` and one inline-completion
request per keystroke. The engine is a scripted stand-in (no model) whose answer is the
true rest of the line with probability ``--accuracy`` and a wrong one otherwise, so the
figures show the cache itself, from a perfect model down to a poor one.

    python benchmarks/bench_typing.py [--lines 40] [--accuracy 1.0 0.5 0.15]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers.fake_openai import FakeOpenAI  # noqa: E402
from helpers.lsp_client import (  # noqa: E402
    inline_params,
    open_doc,
    start_client,
    stop_client,
    type_at,
)

FIRST_LINE = 300


async def replay(lines: int, accuracy: float, seed: int = 0) -> dict:
    source = Path(textwrap.__file__).read_text().splitlines(keepends=True)
    typed = source[FIRST_LINE:FIRST_LINE + lines]
    rnd = random.Random(seed)
    expected = {"rest": ""}

    def answer(body: dict) -> str:
        right = expected["rest"]
        return right if rnd.random() < accuracy else "unlikely_name(" + right[::-1]

    with FakeOpenAI(answer) as fake:
        client = await start_client({"engine": {"url": fake.url}, "debounceMs": 0,
                                     "specialists": {"completion": {"promptFormat": "prefix"}}},
                                    server_log=False)
        uri = "file:///bench/textwrap.py"
        # the stretch is cut out, leaving an empty line to type it into
        text = "".join(source[:FIRST_LINE] + ["\n"] + source[FIRST_LINE + lines:])
        open_doc(client, uri, text)
        version, keystrokes, hits, shown = 1, 0, 0, 0
        for row, line in enumerate(typed, start=FIRST_LINE):
            for col, char in enumerate(line):
                version += 1
                type_at(client, uri, version, row, col, char)
                if char == "\n":
                    continue
                keystrokes += 1
                expected["rest"] = line[col + 1:].rstrip("\n")
                before = len(fake.completions())
                result = await client.text_document_inline_completion_async(
                    inline_params(uri, row, col + 1))
                shown += bool(result.items)
                hits += bool(result.items) and len(fake.completions()) == before
        requests = len(fake.completions())
        await stop_client(client)
    return {"keystrokes": keystrokes, "requests": requests, "hits": hits, "shown": shown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=40)
    parser.add_argument("--accuracy", type=float, nargs="+", default=[1.0, 0.5, 0.15])
    args = parser.parse_args()
    for accuracy in args.accuracy:
        f = asyncio.run(replay(args.lines, accuracy))
        print(f"model right {accuracy:.0%} of the time: {f['keystrokes']} keystrokes, "
              f"{f['requests']} model requests, {f['hits']} answered from the cache "
              f"(hit rate {f['hits'] / f['keystrokes']:.1%}; "
              f"{f['hits'] / (f['hits'] + f['requests']):.1%} of suggestions shown without "
              "a model call)")


if __name__ == "__main__":
    main()
