"""Training examples: prompt text (exactly as served) and target text, plus where they came from."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from covey_training.scrub import ScrubReport, scrub_texts


@dataclass(frozen=True)
class Example:
    task: str
    prompt: str
    target: str
    """The model's expected output, ending with the task's stop token."""
    source: str
    """``rel/path.py:start-end`` (character offsets), or ``usage:<id>``."""
    meta: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Example:
        return cls(**json.loads(line))


def scrubbed(examples: Iterable[Example], report: ScrubReport) -> Iterator[Example]:
    """Examples with emails anonymised; any example holding a secret is dropped."""
    for ex in examples:
        keys = [k for k, v in ex.meta.items() if isinstance(v, str)]
        texts, kinds, emails = scrub_texts(ex.prompt, ex.target, *(ex.meta[k] for k in keys))
        if texts is None:
            for kind in kinds:
                report.dropped[kind] += 1
            continue
        report.kept += 1
        report.emails_replaced += emails
        meta = {**ex.meta, **dict(zip(keys, texts[2:], strict=True))}
        yield Example(ex.task, texts[0], texts[1], ex.source, meta)


def write_jsonl(examples: Iterable[Example], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(ex.to_json() + "\n")
            n += 1
    return n


def read_jsonl(path: Path) -> list[Example]:
    with path.open(encoding="utf-8") as fh:
        return [Example.from_json(line) for line in fh if line.strip()]
